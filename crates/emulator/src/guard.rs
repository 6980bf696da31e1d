//! What stands between a request and its operation, in the order the
//! service applies it: counting, latency, the IP allowlist, `api-version`,
//! the bearer token and its role, the rate limit, injected faults, and
//! repeatability; after the operation, the fault that drops the connection
//! once the write is applied.

use super::error::ApiError;
use super::repeat::{Lookup, StoredResponse};
use super::store::now_ms;
use super::App;
use crate::model::API_VERSION;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

/// The peer of a connection, put on each of its requests by the server.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// Marks a response that must not reach the client: the server closes the
/// connection instead.
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

/// The largest request body read (a batch of 100 numbers is about 40 KB).
pub const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// The longest URL (path and query) served; longer ones get 414.
pub const MAX_URL: usize = 8 * 1024;

fn uri_too_long_error() -> ApiError {
    ApiError::new(
        StatusCode::URI_TOO_LONG,
        "UriTooLong",
        format!("the URL is longer than {MAX_URL} bytes"),
    )
}

/// The 414 answer's body, for a refusal written before hyper is involved.
pub fn uri_too_long_body() -> Vec<u8> {
    let response = crate::model::ErrorResponse {
        error: uri_too_long_error().detail.clone(),
    };
    serde_json::to_vec(&response).expect("an error serializes")
}

/// A 414 for a URL longer than [`MAX_URL`].
pub fn uri_too_long(uri: &axum::http::Uri) -> Option<Response> {
    let length = uri.path_and_query().map_or(0, |p| p.as_str().len());
    (length > MAX_URL).then(|| uri_too_long_error().into_response())
}

/// A request body that is not JSON gets 415: the API reads only
/// `application/json` (or another `+json` type). A request carries a body
/// when it says it has a length above zero or comes chunked.
pub fn unsupported_media_type(headers: &axum::http::HeaderMap) -> Option<ApiError> {
    let length = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let chunked = headers.contains_key(axum::http::header::TRANSFER_ENCODING);
    if !(chunked || length.is_some_and(|l| l > 0)) {
        return None;
    }
    media_type_error(headers)
}

/// `None` when the `Content-Type` is JSON.
pub fn media_type_error(headers: &axum::http::HeaderMap) -> Option<ApiError> {
    let given = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = given
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    (!json).then(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            if given.is_empty() {
                "the request has a body but no Content-Type: send application/json".to_owned()
            } else {
                format!("Content-Type '{given}' is not supported: send application/json")
            },
        )
    })
}

fn is_write(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// The action of `POST /accounts/{name}:action`, if any.
fn action(request: &Request) -> Option<String> {
    let last = request.uri().path().rsplit('/').next()?;
    let decoded = percent_encoding::percent_decode_str(last).decode_utf8_lossy();
    decoded.split_once(':').map(|(_, action)| action.to_owned())
}

/// `METHOD /route/template` (with the action for account POSTs): the key
/// of `perRoute` in the stats.
fn route_label(request: &Request) -> String {
    let template = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |m| m.as_str().to_owned(),
    );
    match action(request) {
        Some(action) if *request.method() == Method::POST => format!("POST {template}:{action}"),
        _ => format!("{} {template}", request.method()),
    }
}

pub async fn guard(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let client_request_id = request.headers().get("x-ms-client-request-id").cloned();
    {
        let mut store = app.store();
        store.counters.requests += 1;
        *store
            .counters
            .per_route
            .entry(route_label(&request))
            .or_default() += 1;
    }
    let mut response = match guarded(&app, request, next).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    let headers = response.headers_mut();
    if let Some(id) = client_request_id {
        headers.insert("x-ms-client-request-id", id);
    }
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("x-ms-request-id", id);
    }
    response
}

async fn guarded(app: &App, request: Request, next: Next) -> Result<Response, ApiError> {
    let config = &app.config;
    if !config.faults.latency.is_zero() {
        tokio::time::sleep(config.faults.latency).await;
    }
    if let Some(PeerAddr(peer)) = request.extensions().get::<PeerAddr>() {
        if !app.ip_allowed(peer.ip()) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "ClientIpAddressNotAllowed",
                format!(
                    "client address {} is not on the gateway's IP allowlist",
                    peer.ip()
                ),
            ));
        }
    }
    check_api_version(request.uri().query())?;
    if let Some(issuer) = &app.issuer {
        let authorization = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if let Err(error) =
            issuer.authorize(authorization, request.method(), action(&request).as_deref())
        {
            let mut store = app.store();
            if error.status == StatusCode::FORBIDDEN {
                store.counters.forbidden += 1;
            } else {
                store.counters.unauthorized += 1;
            }
            return Err(error);
        }
    }
    // Who is asking first (401, 403), then what (415).
    if let Some(error) = unsupported_media_type(request.headers()) {
        return Err(error);
    }
    if let Some(limiter) = &app.limiter {
        if let Err(not_until) = limiter.check() {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            app.store().counters.throttled += 1;
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                format!(
                    "more than {} requests a minute; retry after {} s",
                    config.rate_limit.unwrap_or(0),
                    seconds.max(1)
                ),
            )
            .header(axum::http::header::RETRY_AFTER, &seconds.max(1).to_string()));
        }
    }
    let (fault, drop) = {
        let mut rng = app.rng.lock().expect("rng lock");
        let fault =
            config.faults.fault_rate > 0.0 && rng.random_bool(config.faults.fault_rate.min(1.0));
        let drop = config.faults.drop_after_commit_rate > 0.0
            && rng.random_bool(config.faults.drop_after_commit_rate.min(1.0));
        (fault.then(|| rng.random_bool(0.5)), drop)
    };
    if let Some(unavailable) = fault {
        app.store().counters.faults_injected += 1;
        return Err(if unavailable {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "injected fault: the service is unavailable, retry later",
            )
            .header(axum::http::header::RETRY_AFTER, "1")
        } else {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "injected fault: internal error before the request was applied",
            )
        });
    }
    let write = is_write(request.method());
    let repeat_id = request
        .headers()
        .get("repeatability-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut response = match repeat_id {
        Some(id) if write => repeatable(app, id, request, next).await?,
        _ => next.run(request).await,
    };
    if write && drop && response.status().is_success() {
        app.store().counters.dropped_after_commit += 1;
        response.extensions_mut().insert(DropConnection);
    }
    Ok(response)
}

fn check_api_version(query: Option<&str>) -> Result<(), ApiError> {
    let version = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "api-version")
        .map(|(_, v)| v.into_owned());
    match version {
        None => Err(ApiError::bad_request(
            "MissingApiVersionParameter",
            format!("the api-version query parameter is required; supported: {API_VERSION}"),
        )),
        Some(v) if v != API_VERSION => Err(ApiError::bad_request(
            "InvalidApiVersionParameter",
            format!("api-version '{v}' is not supported; supported: {API_VERSION}"),
        )),
        Some(_) => Ok(()),
    }
}

fn stored_response(response: StoredResponse) -> Response {
    let mut out = Response::builder().status(response.status);
    for (name, value) in &response.headers {
        out = out.header(name, value);
    }
    out.header("repeatability-result", "accepted")
        .body(Body::from(response.body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Headers worth giving again with a replayed answer.
const KEPT_HEADERS: [&str; 5] = [
    "content-type",
    "etag",
    "last-modified",
    "x-ms-error-code",
    "location",
];

async fn repeatable(
    app: &App,
    id: String,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let window = app.config.repeatability_window.as_millis() as u64;
    let now = now_ms();
    if let Some(first_sent) = request.headers().get("repeatability-first-sent") {
        let text = first_sent.to_str().unwrap_or("");
        let sent = httpdate::parse_http_date(text).map_err(|_| {
            ApiError::bad_request(
                "InvalidRepeatabilityFirstSent",
                format!("Repeatability-First-Sent '{text}' is not an HTTP date"),
            )
        })?;
        let sent = sent
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let known = app.store().repeats.contains(&id);
        if !known && now.saturating_sub(sent) > window + 1000 {
            return Err(ApiError::bad_request(
                "RepeatabilityFirstSentTooOld",
                format!(
                    "Repeatability-First-Sent {text} is older than the {} s window: the server cannot tell whether it applied this request; send it with a new Repeatability-Request-ID",
                    window / 1000
                ),
            ));
        }
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|e| {
        ApiError::bad_request("InvalidRequestBody", format!("cannot read the body: {e}"))
    })?;
    let mut hasher = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    hasher.update(parts.method.as_str().as_bytes());
    hasher.update(b" ");
    hasher.update(parts.uri.path().as_bytes());
    hasher.update(b"\n");
    hasher.update(&bytes);
    let fingerprint = hex::encode(hasher.finish());
    let lookup = {
        let mut store = app.store();
        store.repeats.expire(now, window);
        let lookup = store.repeats.lookup(&id, &fingerprint, now);
        match lookup {
            Lookup::Replay(_) => store.counters.repeats_replayed += 1,
            Lookup::Mismatch => store.counters.repeats_rejected += 1,
            _ => {}
        }
        lookup
    };
    match lookup {
        Lookup::Replay(stored) => return Ok(stored_response(stored)),
        Lookup::Mismatch => {
            return Err(ApiError::conflict(
                "RepeatabilityRequestIdReused",
                format!("Repeatability-Request-ID {id} was used for a different request"),
            )
            .header(axum::http::HeaderName::from_static("repeatability-result"), "rejected"))
        }
        Lookup::InProgress => {
            return Err(ApiError::conflict(
                "RepeatabilityRequestInProgress",
                format!("the request with Repeatability-Request-ID {id} is still being processed; retry shortly"),
            )
            .header(axum::http::header::RETRY_AFTER, "1"))
        }
        Lookup::New => {}
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    {
        let mut store = app.store();
        if parts.status.is_server_error() {
            store.repeats.abandon(&id);
        } else {
            let headers = KEPT_HEADERS
                .iter()
                .filter_map(|name| {
                    parts
                        .headers
                        .get(*name)
                        .and_then(|v| v.to_str().ok())
                        .map(|v| (name.to_string(), v.to_owned()))
                })
                .collect();
            store.repeats.complete(
                &id,
                StoredResponse {
                    status: parts.status.as_u16(),
                    headers,
                    body: String::from_utf8_lossy(&bytes).into_owned(),
                },
            );
            store.dirty = true;
        }
    }
    parts
        .headers
        .insert("repeatability-result", HeaderValue::from_static("accepted"));
    Ok(Response::from_parts(parts, Body::from(bytes)))
}
