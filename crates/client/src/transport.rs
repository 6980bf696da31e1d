//! The paced, retrying transport under the service clients.
//!
//! [`Transport::send`] sends one logical request: it waits for the pace,
//! adds the token (or a [`RequestSigner`]'s signature), a fresh
//! `x-ms-client-request-id` per attempt and the request's fixed
//! repeatability headers, and retries what is worth retrying: 429 after
//! `Retry-After` (slowing the pace), 5xx, time-outs and broken connections
//! after a jittered back-off on a fresh connection (new DNS lookup, as the
//! failover guidance asks), and a 401 once with a fresh token. What it
//! finally answers is for the service client to judge
//! ([`ServiceError`](super::ServiceError)).

use super::auth::{self, TokenProvider};
use super::pacer::{sleep_or_stop, Pacer, Stopped};
use crate::model::{ErrorResponse, API_VERSION};
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// How to reach the service.
#[derive(Debug, Clone)]
pub struct Connection {
    /// `https://provapi.<domain>` (no trailing slash needed).
    pub endpoint: url::Url,
    pub api_version: String,
    /// Extra PEM trust roots; TLS is always verified.
    pub ca_certs: Vec<PathBuf>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

impl Connection {
    pub fn new(endpoint: url::Url) -> Connection {
        Connection {
            endpoint,
            api_version: API_VERSION.to_owned(),
            ca_certs: Vec::new(),
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// A reqwest client that trusts the configured roots.
    pub fn http_client(&self) -> Result<reqwest::Client, ClientError> {
        let mut certificates = Vec::new();
        for path in &self.ca_certs {
            let pem = std::fs::read(path).map_err(|e| {
                ClientError::Config(format!(
                    "cannot read the CA certificate {}: {e}",
                    path.display()
                ))
            })?;
            let found = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ClientError::Config(format!("{}: not PEM certificates: {e}", path.display()))
            })?;
            if found.is_empty() {
                return Err(ClientError::Config(format!(
                    "{}: no certificate in it",
                    path.display()
                )));
            }
            certificates.extend(found);
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("acgbulk/", env!("CARGO_PKG_VERSION")))
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout);
        if !certificates.is_empty() {
            builder = builder.tls_certs_merge(certificates);
        }
        builder
            .build()
            .map_err(|e| ClientError::Config(format!("cannot set up HTTPS: {e}")))
    }
}

/// When to retry, and how long to wait.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts for a request that fails with 5xx, a time-out or a broken
    /// connection (429s, retried without limit, and the one 401 retry are
    /// not counted).
    pub max_attempts: u32,
    /// First back-off; each later one is four times longer, up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based): exponential, with
    /// jitter between half and all of it so clients do not retry in step.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exponential = self
            .backoff
            .saturating_mul(4u32.saturating_pow(retry.saturating_sub(1)));
        let capped = exponential.min(self.max_backoff);
        capped.mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}

/// One logical request.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    /// The path after the endpoint, already percent-encoded.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub headers: Vec<(String, String)>,
    /// `Repeatability-Request-ID` and `Repeatability-First-Sent`, the same on
    /// every attempt.
    pub repeatability: Option<(String, String)>,
    /// Whether the request may be sent again after a time-out or a broken
    /// connection, when the service may have acted on it without the
    /// answer arriving. A request that is not (an ACS search, which would
    /// reserve numbers twice) is only retried when it cannot have arrived:
    /// the connection failed, or the service answered 429 or 5xx.
    pub resend_when_unsure: bool,
}

impl ApiRequest {
    pub fn new(method: Method, path: impl Into<String>) -> ApiRequest {
        ApiRequest {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            headers: Vec::new(),
            repeatability: None,
            resend_when_unsure: true,
        }
    }

    pub fn json<T: serde::Serialize>(mut self, body: &T) -> ApiRequest {
        self.body = Some(serde_json::to_vec(body).expect("API bodies serialize"));
        self
    }
}

/// What the service finally answered.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
    /// The `x-ms-client-request-id` of the attempt that got this answer.
    pub request_id: String,
    pub attempts: u32,
}

impl ApiResponse {
    /// The error body, when there is one.
    pub fn error(&self) -> Option<crate::model::ErrorDetail> {
        serde_json::from_slice::<ErrorResponse>(&self.body)
            .ok()
            .map(|e| e.error)
    }

    /// `x-ms-error-code`, else the body's code.
    pub fn error_code(&self) -> Option<String> {
        self.headers
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| self.error().map(|e| e.code))
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ClientError> {
        serde_json::from_slice(&self.body).map_err(|e| ClientError::Decode {
            request_id: self.request_id.clone(),
            message: e.to_string(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error("the service refused the credentials twice (401, request {request_id}): {message}")]
    Unauthorized { request_id: String, message: String },
    #[error("no answer after {attempts} attempts (last request {request_id}): {message}")]
    Transport {
        attempts: u32,
        request_id: String,
        message: String,
    },
    #[error("an answer that is not the expected JSON (request {request_id}): {message}")]
    Decode { request_id: String, message: String },
    #[error("stopped")]
    Stopped,
}

impl From<Stopped> for ClientError {
    fn from(_: Stopped) -> Self {
        ClientError::Stopped
    }
}

/// What a run's requests met, for its summary.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub throttled: AtomicU64,
    pub token_refreshes: AtomicU64,
}

/// Signs one attempt of a request (ACS access keys): the headers to add.
pub trait RequestSigner: Send + Sync {
    fn sign(
        &self,
        method: &Method,
        url: &url::Url,
        body: &[u8],
    ) -> Vec<(&'static str, HeaderValue)>;
}

/// A paced, retrying sender of requests to one endpoint.
pub struct Transport {
    pub connection: Connection,
    http: RwLock<reqwest::Client>,
    auth: TokenProvider,
    signer: Option<Arc<dyn RequestSigner>>,
    pacer: Arc<Pacer>,
    pub policy: RetryPolicy,
    pub counters: Counters,
}

fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT || status.is_server_error()
}

/// `Retry-After` in seconds or as an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?;
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// A transport error in words an operator can act on.
fn describe_transport(error: &reqwest::Error, endpoint: &url::Url) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if error.is_timeout() {
        format!("timed out talking to {endpoint} ({text})")
    } else if error.is_connect() {
        format!(
            "cannot connect to {endpoint} ({text}); check the endpoint, and that this machine's address is on the gateway's Provisioning API IP allowlist"
        )
    } else {
        format!("{text} (a reset connection from {endpoint} can also mean this address is not on the gateway's IP allowlist)")
    }
}

impl Transport {
    pub fn new(
        connection: Connection,
        auth: TokenProvider,
        pacer: Arc<Pacer>,
        policy: RetryPolicy,
    ) -> Result<Transport, ClientError> {
        let http = connection.http_client()?;
        Ok(Transport {
            connection,
            http: RwLock::new(http),
            auth,
            signer: None,
            pacer,
            policy,
            counters: Counters::default(),
        })
    }

    /// Signs every request with `signer` instead of a bearer token.
    pub fn with_signer(mut self, signer: Arc<dyn RequestSigner>) -> Transport {
        self.signer = Some(signer);
        self
    }

    pub fn pacer(&self) -> &Pacer {
        &self.pacer
    }

    pub fn auth(&self) -> &TokenProvider {
        &self.auth
    }

    /// Drops pooled connections: the next request connects and resolves
    /// the name again.
    fn renew_connections(&self) {
        match self.connection.http_client() {
            Ok(fresh) => *self.http.write().expect("client lock") = fresh,
            Err(e) => tracing::warn!("cannot renew connections: {e}"),
        }
    }

    pub fn url(&self, path: &str, query: &[(String, String)]) -> url::Url {
        let mut url = self.connection.endpoint.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}{path}"));
        {
            let mut pairs = url.query_pairs_mut();
            pairs.clear();
            pairs.append_pair("api-version", &self.connection.api_version);
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    /// One attempt: the answer, or why none came and whether the request
    /// cannot have arrived (the connection failed).
    async fn attempt(
        &self,
        request: &ApiRequest,
        url: &url::Url,
        token: Option<&azure_core::credentials::Secret>,
        request_id: &str,
    ) -> Result<Result<ApiResponse, (bool, String)>, ClientError> {
        let http = self.http.read().expect("client lock").clone();
        let mut builder = http
            .request(request.method.clone(), url.clone())
            .header("x-ms-client-request-id", request_id)
            .header("accept", "application/json");
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.secret()))
                .map_err(|_| ClientError::Config("the token is not a valid header value".into()))?;
            value.set_sensitive(true);
            builder = builder.header("authorization", value);
        }
        if let Some((id, first_sent)) = &request.repeatability {
            builder = builder
                .header("repeatability-request-id", id)
                .header("repeatability-first-sent", first_sent);
        }
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(signer) = &self.signer {
            let body = request.body.as_deref().unwrap_or_default();
            for (name, value) in signer.sign(&request.method, url, body) {
                builder = builder.header(name, value);
            }
        }
        if let Some(body) = &request.body {
            builder = builder
                .header("content-type", "application/json")
                .body(body.clone());
        }
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        Ok(match builder.send().await {
            Ok(response) => {
                let status = response.status();
                let headers = response.headers().clone();
                match response.bytes().await {
                    Ok(body) => Ok(ApiResponse {
                        status,
                        headers,
                        body,
                        request_id: request_id.to_owned(),
                        attempts: 1,
                    }),
                    Err(e) => Err((false, describe_transport(&e, &self.connection.endpoint))),
                }
            }
            Err(e) => Err((
                e.is_connect(),
                describe_transport(&e, &self.connection.endpoint),
            )),
        })
    }

    /// Sends `request` until it gets an answer worth returning (see the
    /// module documentation), or gives up.
    pub async fn send(
        &self,
        request: &ApiRequest,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<ApiResponse, ClientError> {
        self.send_to(request, self.url(&request.path, &request.query), stop)
            .await
    }

    /// As [`send`](Self::send), for a full URL (a `nextLink`, an
    /// operation's location).
    pub async fn send_to(
        &self,
        request: &ApiRequest,
        url: url::Url,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<ApiResponse, ClientError> {
        let mut failures = 0u32;
        let mut throttles = 0u32;
        let mut fresh_token = false;
        let mut refreshed = false;
        loop {
            self.pacer.ready(stop).await?;
            let token = self.auth.token(fresh_token).await?;
            fresh_token = false;
            let request_id = uuid::Uuid::new_v4().to_string();
            let outcome = self
                .attempt(request, &url, token.as_ref(), &request_id)
                .await?
                .map(|mut response| {
                    response.attempts = failures + 1;
                    response
                });
            let wait = match outcome {
                Ok(response)
                    if response.status == StatusCode::UNAUTHORIZED && !self.auth.is_none() =>
                {
                    if refreshed {
                        let message = response
                            .error()
                            .map(|e| e.message)
                            .unwrap_or_else(|| "no token accepted".into());
                        return Err(ClientError::Unauthorized {
                            request_id,
                            message,
                        });
                    }
                    tracing::info!(request_id, "401: getting a fresh token and retrying once");
                    refreshed = true;
                    fresh_token = true;
                    self.counters
                        .token_refreshes
                        .fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Ok(response) if response.status == StatusCode::TOO_MANY_REQUESTS => {
                    throttles += 1;
                    self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                    let wait = retry_after(&response.headers)
                        .unwrap_or_else(|| self.policy.backoff(throttles));
                    tracing::debug!(request_id, "429 throttled; retrying after {wait:?}");
                    // The pacer holds every request (this one's retry too)
                    // for the wait and logs the slow-down once. A throttled
                    // request is retried for as long as the run goes on and
                    // never counts toward --max-attempts: no row fails
                    // because of throttling.
                    self.pacer.throttled(wait).await;
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Ok(response) if is_retryable(response.status) => {
                    failures += 1;
                    let code = response.error_code().unwrap_or_default();
                    tracing::warn!(
                        request_id,
                        status = response.status.as_u16(),
                        code,
                        attempt = failures,
                        "server error"
                    );
                    if failures >= self.policy.max_attempts {
                        return Ok(response);
                    }
                    let backoff = self.policy.backoff(failures);
                    retry_after(&response.headers).map_or(backoff, |r| r.max(backoff))
                }
                Ok(response) => return Ok(response),
                Err((never_arrived, message)) => {
                    failures += 1;
                    tracing::warn!(request_id, attempt = failures, "{message}");
                    if failures >= self.policy.max_attempts
                        || !(never_arrived || request.resend_when_unsure)
                    {
                        return Err(ClientError::Transport {
                            attempts: failures,
                            request_id,
                            message,
                        });
                    }
                    self.policy.backoff(failures)
                }
            };
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            self.renew_connections();
            sleep_or_stop(wait, stop).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_a_cap() {
        let policy = RetryPolicy {
            max_attempts: 5,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        };
        for _ in 0..50 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
            let third = policy.backoff(3);
            assert!(third >= Duration::from_secs(8) && third <= Duration::from_secs(16));
            assert!(policy.backoff(10) <= Duration::from_secs(60));
        }
    }

    #[test]
    fn urls_keep_the_endpoint_path_and_add_the_version() {
        let connection = Connection::new("http://127.0.0.1:9/base/".parse().unwrap());
        let auth = TokenProvider::new(
            auth::Credential::None,
            auth::DEFAULT_SCOPE,
            auth::DEFAULT_AUTHORITY,
            reqwest::Client::new(),
        );
        let client = Transport::new(
            connection,
            auth,
            Arc::new(Pacer::new(100)),
            RetryPolicy::default(),
        )
        .unwrap();
        let url = client.url(
            "/accounts/a:createOrUpdateNumbers",
            &[("maxpagesize".into(), "5".into())],
        );
        assert_eq!(url.as_str(), "http://127.0.0.1:9/base/accounts/a:createOrUpdateNumbers?api-version=2024-02-29&maxpagesize=5");
        assert_eq!(
            retry_after(&{
                let mut h = HeaderMap::new();
                h.insert("retry-after", HeaderValue::from_static("7"));
                h
            }),
            Some(Duration::from_secs(7))
        );
    }
}
