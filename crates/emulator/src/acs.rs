//! The number search API of Azure Communication Services, served on the
//! emulator's port beside the Provisioning API: searches and purchases as
//! long-running operations (`notStarted`, `running`, then `succeeded` or
//! `failed` after `--acs-operation-delay`, with `Retry-After` while they
//! run), search results, and the resource's authentication: requests
//! signed with the access key (checked exactly: date, body hash, host,
//! path and query), or Entra ID tokens for `https://communication.azure.com`.
//!
//! Stock is made up: numbers are generated per country and area code and
//! never handed out twice while reserved or bought; `--acs-stock` caps
//! what one search finds (partial results), `--acs-out-of-stock` makes
//! searches for given area codes fail with `OutOfStock`. Searches are not
//! kept in the state file: their reservations would have expired anyway.

use super::error::ApiError;
use super::store::{now_ms, Millis};
use super::App;
use crate::model::acs::{
    AssignmentType, Capabilities, CapabilityType, Cost, Operation, OperationStatus,
    PhoneNumberType, PurchaseBody, SearchBody, SearchResult, API_VERSION,
};
use crate::model::ErrorDetail;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use azure_core::credentials::SecretBytes;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// The api-versions served. 2025-06-01 (the default of the 1.4 SDKs) is
/// accepted because its search and purchase shapes are those of
/// 2022-12-01 plus optional fields (`agreeToNotResell` in a purchase,
/// `isAgreementToNotResellRequired` in a search result).
pub const API_VERSIONS: [&str; 2] = [API_VERSION, "2025-06-01"];

/// The api-version a request came with, for the links in its answer.
#[derive(Debug, Clone)]
pub struct RequestedVersion(pub String);

/// The audience of Entra ID tokens for Azure Communication Services.
pub const AUDIENCE: &str = "https://communication.azure.com";

/// The most numbers one search may ask for here.
pub const MAX_QUANTITY: u32 = 10_000;

/// How far `x-ms-date` may be from the emulator's clock.
const CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// How the search API behaves.
#[derive(Debug, Clone)]
pub struct AcsConfig {
    /// The access key requests may be signed with.
    pub access_key: Option<SecretBytes>,
    /// The most numbers one search finds; `None` finds all asked for.
    pub stock: Option<u32>,
    /// Area codes with no numbers left (`*`: none anywhere).
    pub out_of_stock: Vec<String>,
    /// How long an operation takes: half of it `notStarted`, half `running`.
    pub operation_delay: Duration,
    /// How long a search holds its numbers.
    pub reservation: Duration,
}

impl Default for AcsConfig {
    fn default() -> Self {
        AcsConfig {
            access_key: None,
            stock: None,
            out_of_stock: Vec::new(),
            operation_delay: Duration::from_secs(1),
            reservation: Duration::from_secs(15 * 60),
        }
    }
}

/// What happened, for `/_emulator/stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcsCounters {
    pub searches: u64,
    pub purchases: u64,
    pub operation_polls: u64,
    pub result_reads: u64,
    pub numbers_reserved: u64,
    pub numbers_purchased: u64,
    pub unauthorized: u64,
    /// The most polls any one operation had.
    pub max_polls_per_operation: u64,
}

struct Search {
    result: SearchResult,
    operation: String,
    expires: Millis,
    /// The purchase operation, once bought.
    purchase: Option<String>,
}

struct PendingOperation {
    operation_type: &'static str,
    created: Millis,
    resource_location: Option<String>,
    /// `None` when it succeeds.
    error: Option<ErrorDetail>,
    polls: u64,
}

/// The searches, operations and numbers handed out.
#[derive(Default)]
pub struct AcsState {
    searches: HashMap<String, Search>,
    operations: HashMap<String, PendingOperation>,
    taken: HashSet<String>,
    next: HashMap<String, u64>,
    pub counters: AcsCounters,
}

fn iso(ms: Millis) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn denied(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "Denied", message)
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("BadRequest", message)
}

/// Checks the api-version and the credentials, then runs the handler.
pub async fn guard(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let client_request_id = request.headers().get("x-ms-client-request-id").cloned();
    let mut response = match guarded(&app, request, next).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    if let Some(id) = client_request_id {
        response.headers_mut().insert("x-ms-client-request-id", id);
    }
    response
}

async fn guarded(app: &App, request: Request, next: Next) -> Result<Response, ApiError> {
    let latency = app.config.faults.latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let version = url::form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "api-version")
        .map(|(_, v)| v.into_owned());
    let version = match version {
        Some(v) if API_VERSIONS.contains(&v.as_str()) => v,
        Some(other) => {
            return Err(bad_request(format!(
                "api-version '{other}' is not supported; supported: {}",
                API_VERSIONS.join(", ")
            ))
            .target("api-version"))
        }
        None => {
            return Err(bad_request(format!(
                "the api-version query parameter is required ({})",
                API_VERSIONS.join(" or ")
            ))
            .target("api-version"))
        }
    };
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(RequestedVersion(version));
    let body = axum::body::to_bytes(body, super::guard::BODY_LIMIT)
        .await
        .map_err(|e| bad_request(format!("cannot read the body: {e}")))?;
    if let Err(error) = authenticate(app, &parts, &body) {
        app.acs().counters.unauthorized += 1;
        return Err(error);
    }
    // As Azure services do: who is asking first (401), then what (415).
    if !body.is_empty() {
        if let Some(error) = super::guard::media_type_error(&parts.headers) {
            return Err(error);
        }
    }
    Ok(next.run(Request::from_parts(parts, Body::from(body))).await)
}

fn authenticate(
    app: &App,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Result<(), ApiError> {
    let key = app.config.acs.access_key.as_ref();
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match authorization {
        Some(value) if value.starts_with("HMAC-SHA256 ") => {
            let key = key.ok_or_else(|| denied("this resource takes no access-key signatures"))?;
            check_signature(key.bytes(), value, parts, body)
        }
        Some(value) if value.starts_with("Bearer ") => {
            let issuer = app
                .issuer
                .as_ref()
                .ok_or_else(|| denied("this resource takes no Entra ID tokens"))?;
            issuer.verify(Some(value), AUDIENCE).map(drop)
        }
        _ if key.is_none() && app.issuer.is_none() => Ok(()),
        _ => Err(denied(
            "an Authorization header is required (HMAC-SHA256 or Bearer)",
        )),
    }
}

fn check_signature(
    key: &[u8],
    authorization: &str,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Result<(), ApiError> {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let fields = authorization.trim_start_matches("HMAC-SHA256 ");
    let mut signed_headers = None;
    let mut given = None;
    for field in fields.split('&') {
        match field.split_once('=') {
            Some(("SignedHeaders", value)) => signed_headers = Some(value),
            Some(("Signature", value)) => given = Some(value),
            _ => {}
        }
    }
    if signed_headers != Some(SIGNED_HEADERS) {
        return Err(denied(format!("SignedHeaders must be {}", SIGNED_HEADERS)));
    }
    let given = given.ok_or_else(|| denied("the Authorization header has no Signature"))?;
    let date = header("x-ms-date").ok_or_else(|| denied("x-ms-date is required"))?;
    let when = httpdate::parse_http_date(date)
        .map_err(|_| denied(format!("x-ms-date '{date}' is not an HTTP date")))?;
    let skew = match when.duration_since(std::time::SystemTime::now()) {
        Ok(ahead) => ahead,
        Err(behind) => behind.duration(),
    };
    if skew > CLOCK_SKEW {
        return Err(denied(format!(
            "x-ms-date '{date}' is more than 15 minutes from the server's clock"
        )));
    }
    let hash =
        header("x-ms-content-sha256").ok_or_else(|| denied("x-ms-content-sha256 is required"))?;
    if hash != content_hash(body) {
        return Err(denied("x-ms-content-sha256 is not the hash of the body"));
    }
    let host = header("host")
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
        .ok_or_else(|| denied("no Host"))?;
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let text = string_to_sign(parts.method.as_str(), path_and_query, date, &host, hash);
    let expected = signature(key, &text);
    // Equal lengths are public (base64 of 32 bytes); the bytes are compared
    // without an early exit.
    let same = expected.len() == given.len()
        && expected
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same {
        Ok(())
    } else {
        Err(denied(
            "the request signature is not valid for this resource's access key",
        ))
    }
}

fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| bad_request(format!("the body is not valid: {e}")))
}

/// The country's calling code, the number type, and how many national
/// digits such numbers have there.
fn check_search(
    country: &str,
    body: &SearchBody,
) -> Result<(u16, PhoneNumberType, usize), ApiError> {
    let meta = phonenumber::metadata::DATABASE
        .by_id(country)
        .ok_or_else(|| {
            bad_request(format!(
                "'{country}' is not a country this resource sells numbers in"
            ))
            .target("countryCode")
        })?;
    let kind = PhoneNumberType::parse_exact(&body.phone_number_type).ok_or_else(|| {
        bad_request(format!(
            "phoneNumberType must be one of {}",
            PhoneNumberType::NAMES.join(", ")
        ))
        .target("phoneNumberType")
    })?;
    AssignmentType::parse_exact(&body.assignment_type).ok_or_else(|| {
        bad_request(format!(
            "assignmentType must be one of {}",
            AssignmentType::NAMES.join(", ")
        ))
        .target("assignmentType")
    })?;
    for (name, value) in [
        ("calling", &body.capabilities.calling),
        ("sms", &body.capabilities.sms),
    ] {
        CapabilityType::parse_exact(value).ok_or_else(|| {
            bad_request(format!(
                "capabilities.{name} must be one of {}",
                CapabilityType::NAMES.join(", ")
            ))
            .target(format!("capabilities.{name}"))
        })?;
    }
    if let Some(area) = &body.area_code {
        if area.is_empty() || area.len() > 6 || !area.bytes().all(|b| b.is_ascii_digit()) {
            return Err(
                bad_request(format!("areaCode '{area}' is not an area code")).target("areaCode"),
            );
        }
    }
    let quantity = body.quantity.unwrap_or(1);
    if !(1..=MAX_QUANTITY).contains(&quantity) {
        return Err(
            bad_request(format!("quantity must be between 1 and {MAX_QUANTITY}"))
                .target("quantity"),
        );
    }
    let descriptors = meta.descriptors();
    let descriptor = match kind {
        PhoneNumberType::Geographic => descriptors.fixed_line(),
        PhoneNumberType::TollFree => descriptors.toll_free(),
    };
    let digits = descriptor
        .and_then(|d| d.possible_length().iter().max().copied())
        .unwrap_or(10) as usize;
    Ok((meta.country_code(), kind, digits))
}

impl AcsState {
    /// The next free number under `prefix` (`+` and country code and area),
    /// `digits` national digits in all.
    fn take(&mut self, prefix: &str, national_prefix_len: usize, digits: usize) -> Option<String> {
        let room = digits.saturating_sub(national_prefix_len).clamp(4, 9) as u32;
        let first = if prefix.starts_with("+1") {
            2_000_000
        } else {
            0
        };
        let limit = 10u64.pow(room);
        let next = self.next.entry(prefix.to_owned()).or_insert(first);
        while *next < limit {
            let number = format!("{prefix}{:0width$}", *next, width = room as usize);
            *next += 1;
            if self.taken.insert(number.clone()) {
                return Some(number);
            }
        }
        None
    }

    fn operation(&self, id: &str, now: Millis, delay: Duration) -> Option<(Operation, bool)> {
        let pending = self.operations.get(id)?;
        let elapsed = Duration::from_millis(now.saturating_sub(pending.created));
        let status = if elapsed >= delay {
            if pending.error.is_some() {
                OperationStatus::Failed
            } else {
                OperationStatus::Succeeded
            }
        } else if elapsed >= delay / 2 {
            OperationStatus::Running
        } else {
            OperationStatus::NotStarted
        };
        let done = status.is_final();
        Some((
            Operation {
                id: id.to_owned(),
                operation_type: pending.operation_type.to_owned(),
                status: status.as_str().to_owned(),
                resource_location: pending.resource_location.clone(),
                created_date_time: iso(pending.created),
                last_action_date_time: Some(iso(if done {
                    pending.created + delay.as_millis() as u64
                } else {
                    now
                })),
                error: pending.error.clone().filter(|_| done),
            },
            done,
        ))
    }
}

fn accepted(operation: &str, version: &str, extra: &[(&'static str, String)]) -> Response {
    let mut response = StatusCode::ACCEPTED.into_response();
    let headers = response.headers_mut();
    let location = format!("/phoneNumbers/operations/{operation}?api-version={version}");
    for (name, value) in [
        ("operation-location", location),
        ("operation-id", operation.to_owned()),
    ]
    .iter()
    .chain(extra)
    {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(*name, value);
        }
    }
    response
}

/// `POST /availablePhoneNumbers/countries/{country}/:search`
pub async fn search(
    State(app): State<Arc<App>>,
    Path(country): Path<String>,
    axum::Extension(RequestedVersion(version)): axum::Extension<RequestedVersion>,
    body: axum::body::Bytes,
) -> Response {
    match start_search(&app, &country, &version, &body) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn start_search(
    app: &App,
    country: &str,
    version: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let body: SearchBody = json(body)?;
    let (country_code, kind, digits) = check_search(country, &body)?;
    let config = &app.config.acs;
    let now = now_ms();
    let quantity = body.quantity.unwrap_or(1);
    let nanp = country_code == 1;
    let area = body.area_code.clone().unwrap_or_else(|| {
        match (nanp, kind) {
            (true, PhoneNumberType::TollFree) => "800",
            (true, PhoneNumberType::Geographic) => "425",
            (false, PhoneNumberType::TollFree) => "800",
            (false, PhoneNumberType::Geographic) => "20",
        }
        .to_owned()
    });
    let sold_out = config.out_of_stock.iter().any(|a| a == "*" || *a == area);
    let wanted = if sold_out {
        0
    } else {
        config.stock.map_or(quantity, |s| s.min(quantity))
    };
    let search_id = uuid::Uuid::new_v4().to_string();
    let operation_id = format!("search_{search_id}");
    let mut state = app.acs();
    let prefix = format!("+{country_code}{area}");
    let mut numbers = Vec::with_capacity(wanted as usize);
    for _ in 0..wanted {
        match state.take(&prefix, area.len(), digits) {
            Some(number) => numbers.push(number),
            None => break,
        }
    }
    let error = numbers.is_empty().then(|| ErrorDetail {
        code: "OutOfStock".into(),
        message: format!(
            "no {} numbers are available in area code {area}",
            kind.as_str()
        ),
        ..ErrorDetail::default()
    });
    let result_location =
        format!("/availablePhoneNumbers/searchResults/{search_id}?api-version={version}");
    state.counters.searches += 1;
    state.counters.numbers_reserved += numbers.len() as u64;
    let cost = match kind {
        PhoneNumberType::TollFree => 2.0,
        PhoneNumberType::Geographic => 1.0,
    };
    state.searches.insert(
        search_id.clone(),
        Search {
            result: SearchResult {
                search_id: search_id.clone(),
                phone_numbers: numbers,
                phone_number_type: body.phone_number_type.clone(),
                assignment_type: body.assignment_type.clone(),
                capabilities: Capabilities {
                    calling: body.capabilities.calling.clone(),
                    sms: body.capabilities.sms.clone(),
                },
                cost: Cost {
                    amount: cost,
                    currency_code: "USD".into(),
                    billing_frequency: "monthly".into(),
                },
                search_expires_by: iso(now + config.reservation.as_millis() as u64),
                error: Some(
                    if error.is_some() {
                        "OutOfStock"
                    } else {
                        "NoError"
                    }
                    .into(),
                ),
                error_code: Some(if error.is_some() { 2 } else { 0 }),
            },
            operation: operation_id.clone(),
            expires: now + config.reservation.as_millis() as u64,
            purchase: None,
        },
    );
    state.operations.insert(
        operation_id.clone(),
        PendingOperation {
            operation_type: "search",
            created: now,
            resource_location: Some(result_location.clone()),
            error,
            polls: 0,
        },
    );
    Ok(accepted(
        &operation_id,
        version,
        &[("location", result_location), ("search-id", search_id)],
    ))
}

/// `GET /phoneNumbers/operations/{id}`
pub async fn get_operation(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let mut state = app.acs();
    let Some((operation, done)) = state.operation(&id, now_ms(), app.config.acs.operation_delay)
    else {
        return ApiError::not_found("NotFound", format!("no operation {id}")).into_response();
    };
    state.counters.operation_polls += 1;
    let pending = state.operations.get_mut(&id).expect("found above");
    pending.polls += 1;
    let polls = pending.polls;
    state.counters.max_polls_per_operation = state.counters.max_polls_per_operation.max(polls);
    // The service always sends `resourceLocation`: `null` for operations
    // with no result to fetch (a purchase), and its `Location` header too.
    let location = operation.resource_location.clone();
    let mut body = serde_json::to_value(&operation).unwrap_or_default();
    if let Some(object) = body.as_object_mut() {
        object
            .entry("resourceLocation")
            .or_insert(serde_json::Value::Null);
    }
    let mut response = axum::Json(body).into_response();
    let headers = response.headers_mut();
    if !done {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if let Some(value) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, value);
    }
    response
}

/// `GET /availablePhoneNumbers/searchResults/{id}`
pub async fn get_search_result(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let delay = app.config.acs.operation_delay;
    let mut state = app.acs();
    let Some(search) = state.searches.get(&id) else {
        return ApiError::not_found("NotFound", format!("no search {id}")).into_response();
    };
    let finished = state
        .operation(&search.operation, now_ms(), delay)
        .is_some_and(|(_, done)| done);
    if !finished {
        return ApiError::not_found("NotFound", format!("the search {id} has not finished"))
            .into_response();
    }
    let result = search.result.clone();
    state.counters.result_reads += 1;
    axum::Json(result).into_response()
}

/// `POST /availablePhoneNumbers/:purchase`
pub async fn purchase(
    State(app): State<Arc<App>>,
    axum::Extension(RequestedVersion(version)): axum::Extension<RequestedVersion>,
    body: axum::body::Bytes,
) -> Response {
    match start_purchase(&app, &version, &body) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn start_purchase(app: &App, version: &str, body: &[u8]) -> Result<Response, ApiError> {
    let body: PurchaseBody = json(body)?;
    let delay = app.config.acs.operation_delay;
    let now = now_ms();
    let mut state = app.acs();
    let search = state.searches.get(&body.search_id).ok_or_else(|| {
        ApiError::not_found("NotFound", format!("no search {}", body.search_id)).target("searchId")
    })?;
    if !state
        .operation(&search.operation, now, delay)
        .is_some_and(|(_, done)| done)
    {
        return Err(bad_request(format!(
            "the search {} has not finished",
            body.search_id
        )));
    }
    if let Some(earlier) = &search.purchase {
        return Err(ApiError::conflict(
            "Conflict",
            format!(
                "the numbers of search {} were already bought (operation {earlier})",
                body.search_id
            ),
        ));
    }
    if search.result.phone_numbers.is_empty() {
        return Err(bad_request(format!(
            "the search {} found no numbers to buy",
            body.search_id
        )));
    }
    let expired = now > search.expires;
    let count = search.result.phone_numbers.len() as u64;
    let purchase_id = uuid::Uuid::new_v4().to_string();
    let operation_id = format!("purchase_{purchase_id}");
    let error = expired.then(|| ErrorDetail {
        code: "ReservationExpired".into(),
        message: format!(
            "the reservation of search {} expired at {}",
            body.search_id, search.result.search_expires_by
        ),
        ..ErrorDetail::default()
    });
    if !expired {
        state.counters.numbers_purchased += count;
        state
            .searches
            .get_mut(&body.search_id)
            .expect("found above")
            .purchase = Some(operation_id.clone());
    }
    state.counters.purchases += 1;
    state.operations.insert(
        operation_id.clone(),
        PendingOperation {
            operation_type: "purchase",
            created: now,
            resource_location: None,
            error,
            polls: 0,
        },
    );
    Ok(accepted(
        &operation_id,
        version,
        &[("purchase-id", purchase_id)],
    ))
}

// The access-key scheme as ACS documents it ("Sign an HTTP request with
// HMAC"), written here again rather than borrowed from acgbulk's client, so
// that a mistake in the client's signing shows as a 401 instead of being
// shared by both sides.

/// The headers a signature must cover, in order.
const SIGNED_HEADERS: &str = "x-ms-date;host;x-ms-content-sha256";

/// Base64 of the SHA-256 of the body.
fn content_hash(body: &[u8]) -> String {
    BASE64.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body))
}

/// `VERB\npath-and-query\ndate;host;content-hash`.
fn string_to_sign(
    method: &str,
    path_and_query: &str,
    date: &str,
    host: &str,
    hash: &str,
) -> String {
    format!("{method}\n{path_and_query}\n{date};{host};{hash}")
}

/// Base64 of the HMAC-SHA256 of `text` keyed with the access key.
fn signature(key: &[u8], text: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    BASE64.encode(aws_lc_rs::hmac::sign(&key, text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_never_handed_out_twice() {
        let mut state = AcsState::default();
        let a = state.take("+1425", 3, 10).unwrap();
        let b = state.take("+1425", 3, 10).unwrap();
        assert_eq!(a, "+14252000000");
        assert_eq!(b, "+14252000001");
        assert_eq!(state.take("+4520", 2, 9).unwrap(), "+45200000000");
    }
}
