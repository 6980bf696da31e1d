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
//!
//! The circuit breaker: [`Liveness`] records when the service last
//! answered any request of the transport. While nothing is answered, a
//! request keeps retrying past its attempts (an outage is not its fault)
//! until nothing has been answered for [`RetryPolicy::outage_timeout`];
//! then it fails with [`ClientError::Outage`], which a job takes as a
//! resumable stop. Each retry logs one short line.

use super::auth::{self, TokenProvider};
use super::pacer::{sleep_or_stop, Pacer, Stopped};
use crate::model::{ErrorResponse, API_VERSION};
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
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
    /// The circuit breaker: how long the service may go without answering
    /// any request before requests stop retrying and fail with
    /// [`ClientError::Outage`]; `None` keeps to `max_attempts` alone.
    pub outage_timeout: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            outage_timeout: Some(DEFAULT_OUTAGE_TIMEOUT),
        }
    }
}

/// Longer than the documented failover (a fresh DNS lookup about 60 s
/// after a time-out or 5xx), so a regional failover is ridden out.
pub const DEFAULT_OUTAGE_TIMEOUT: Duration = Duration::from_secs(300);

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
    /// The circuit breaker: no request was answered for the outage timeout.
    #[error("no answer from {endpoint} for {} (the outage timeout); last: {cause}", words(*.silent))]
    Outage {
        endpoint: String,
        silent: Duration,
        cause: String,
    },
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
    liveness: Arc<Liveness>,
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

/// When the service last answered, shared by every request of a
/// transport: the circuit breaker's clock. Only time spent failing
/// counts, so a run that was busy elsewhere (reading its sheet) is not
/// taken for an outage.
#[derive(Debug, Default)]
pub struct Liveness {
    state: Mutex<LivenessState>,
}

#[derive(Debug, Default)]
struct LivenessState {
    last_answer: Option<Instant>,
    /// When the current run of failures began (none since the last answer
    /// when `None`).
    failing_since: Option<Instant>,
}

impl Liveness {
    /// The service answered (any 2xx or 4xx).
    pub fn answered(&self) {
        let mut state = self.state.lock().expect("liveness lock");
        state.last_answer = Some(Instant::now());
        state.failing_since = None;
    }

    /// An attempt begun at `began` got no answer (or a 5xx): how long the
    /// service has now been silent.
    pub fn failed(&self, began: Instant) -> Duration {
        let mut state = self.state.lock().expect("liveness lock");
        // Silent since the attempt began, unless something was answered
        // after that.
        let since = state.last_answer.map_or(began, |answer| answer.max(began));
        state.failing_since.get_or_insert(since).elapsed()
    }

    /// How long the service has been silent; zero while it answers.
    pub fn silent_for(&self) -> Duration {
        let state = self.state.lock().expect("liveness lock");
        state
            .failing_since
            .map_or(Duration::ZERO, |since| since.elapsed())
    }

    /// Whether any request was answered after `instant`.
    pub fn answered_since(&self, instant: Instant) -> bool {
        let state = self.state.lock().expect("liveness lock");
        state.last_answer.is_some_and(|answer| answer > instant)
    }
}

/// A duration for a log line: `850ms`, `3.2s`, `2m 5s`.
pub fn words(duration: Duration) -> String {
    let millis = duration.as_millis();
    match millis {
        0..=999 => format!("{millis}ms"),
        1_000..=59_999 if millis.is_multiple_of(1_000) => format!("{}s", millis / 1_000),
        1_000..=59_999 => format!("{:.1}s", duration.as_secs_f64()),
        _ => {
            let seconds = duration.as_secs();
            match seconds % 60 {
                0 => format!("{}m", seconds / 60),
                rest => format!("{}m {rest}s", seconds / 60),
            }
        }
    }
}

/// Why an attempt got no answer, in a few words ("connection refused",
/// "timed out"), from the deepest cause that says it: not reqwest's chain
/// of every layer.
pub fn short_cause(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".into();
    }
    let mut chain: Vec<&(dyn std::error::Error + 'static)> = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        chain.push(cause);
        source = cause.source();
    }
    for cause in &chain {
        if let Some(mut io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            // An I/O error may wrap another (its `source` skips it).
            while let Some(inner) = io
                .get_ref()
                .and_then(|e| e.downcast_ref::<std::io::Error>())
            {
                io = inner;
            }
            let words = match io.kind() {
                ErrorKind::ConnectionRefused => "connection refused",
                ErrorKind::ConnectionReset => "connection reset",
                ErrorKind::ConnectionAborted => "connection aborted",
                ErrorKind::TimedOut => "timed out",
                ErrorKind::UnexpectedEof | ErrorKind::BrokenPipe => "connection closed",
                ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => "no route to host",
                // What the TLS layer refused (rustls's errors come as
                // invalid data): a certificate, or no TLS at all.
                ErrorKind::InvalidData => return format!("TLS: {io}"),
                _ => continue,
            };
            return words.into();
        }
    }
    let deepest = chain
        .last()
        .map_or_else(|| error.to_string(), ToString::to_string);
    let texts: Vec<String> = chain.iter().map(|c| c.to_string().to_lowercase()).collect();
    if texts.iter().any(|t| t.contains("dns error")) {
        format!("name not resolved ({deepest})")
    } else if texts
        .iter()
        .any(|t| t.contains("certificate") || t.contains("tls") || t.contains("handshake"))
    {
        format!("TLS: {deepest}")
    } else if error.is_connect() {
        format!("cannot connect: {deepest}")
    } else {
        deepest
    }
}

/// A transport failure in words an operator can act on.
fn describe_transport(error: &reqwest::Error, endpoint: &url::Url) -> String {
    let endpoint = endpoint.as_str().trim_end_matches('/');
    let cause = short_cause(error);
    if error.is_timeout() {
        format!("no answer from {endpoint}: {cause}")
    } else if cause.starts_with("TLS:") {
        format!("cannot connect to {endpoint}: {cause}; check the endpoint, and give --ca-cert if the gateway's certificate comes from a private CA")
    } else if cause.starts_with("name not resolved") {
        format!("cannot connect to {endpoint}: {cause}; check the endpoint: https://provapi.<the gateway's domain>")
    } else if error.is_connect() {
        format!(
            "cannot connect to {endpoint}: {cause}; check the endpoint, and that this machine's address is on the gateway's Provisioning API IP allowlist"
        )
    } else {
        format!("{cause} talking to {endpoint} (a reset connection can also mean this address is not on the gateway's IP allowlist)")
    }
}

/// Why an attempt got no answer.
#[derive(Debug)]
struct NoAnswer {
    /// The connection failed, so the request cannot have arrived.
    never_arrived: bool,
    /// For the retry log line.
    cause: String,
    /// For the error, when the request gives up.
    description: String,
}

impl NoAnswer {
    fn of(error: &reqwest::Error, endpoint: &url::Url) -> NoAnswer {
        NoAnswer {
            never_arrived: error.is_connect(),
            cause: short_cause(error),
            description: describe_transport(error, endpoint),
        }
    }
}

/// What a failed attempt leads to.
enum Next {
    /// Wait this long, then try again.
    Retry(Duration),
    /// The attempts are spent: the failure is the request's.
    GiveUp,
    /// Nothing was answered for the outage timeout.
    Outage(Duration),
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
            liveness: Arc::new(Liveness::default()),
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

    /// When the service last answered (the circuit breaker's clock).
    pub fn liveness(&self) -> &Liveness {
        &self.liveness
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

    /// One attempt: the answer, or why none came. An answer that is not a
    /// 5xx (nor 408) tells the circuit breaker the service is there.
    async fn attempt(
        &self,
        request: &ApiRequest,
        url: &url::Url,
        token: Option<&azure_core::credentials::Secret>,
        request_id: &str,
    ) -> Result<Result<ApiResponse, NoAnswer>, ClientError> {
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
        let endpoint = &self.connection.endpoint;
        Ok(match builder.send().await {
            Ok(response) => {
                let status = response.status();
                let headers = response.headers().clone();
                match response.bytes().await {
                    Ok(body) => {
                        if !is_retryable(status) {
                            self.liveness.answered();
                        }
                        Ok(ApiResponse {
                            status,
                            headers,
                            body,
                            request_id: request_id.to_owned(),
                            attempts: 1,
                        })
                    }
                    Err(e) => Err(NoAnswer {
                        never_arrived: false,
                        ..NoAnswer::of(&e, endpoint)
                    }),
                }
            }
            Err(e) => Err(NoAnswer::of(&e, endpoint)),
        })
    }

    /// One request on a short budget of its own, for the check before a
    /// job sends anything: at most `attempts` attempts of at most
    /// `per_attempt` each, a second apart, and one fresh token after a
    /// 401. The first answer is returned whatever its status (a 429 too:
    /// the service is there). Its retries log at debug level only: the
    /// caller's error is the one line that matters.
    pub async fn probe(
        &self,
        request: &ApiRequest,
        attempts: u32,
        per_attempt: Duration,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<ApiResponse, ClientError> {
        let url = self.url(&request.path, &request.query);
        let mut failures = 0u32;
        let mut fresh_token = false;
        let mut refreshed = false;
        loop {
            self.pacer.ready(stop).await?;
            let token = self.auth.token(fresh_token).await?;
            fresh_token = false;
            let request_id = uuid::Uuid::new_v4().to_string();
            let attempt = self.attempt(request, &url, token.as_ref(), &request_id);
            let cause = match tokio::time::timeout(per_attempt, attempt).await {
                Ok(outcome) => match outcome? {
                    Ok(response)
                        if response.status == StatusCode::UNAUTHORIZED
                            && !self.auth.is_none()
                            && !refreshed =>
                    {
                        refreshed = true;
                        fresh_token = true;
                        continue;
                    }
                    Ok(response)
                        if response.status == StatusCode::UNAUTHORIZED && !self.auth.is_none() =>
                    {
                        let message = response
                            .error()
                            .map(|e| e.message)
                            .unwrap_or_else(|| "no token accepted".into());
                        return Err(ClientError::Unauthorized {
                            request_id,
                            message,
                        });
                    }
                    Ok(response) if is_retryable(response.status) && failures + 1 < attempts => {
                        format!("{}", response.status)
                    }
                    Ok(response) => return Ok(response),
                    Err(no_answer) => no_answer.description,
                },
                Err(_) => format!(
                    "no answer from {} within {}",
                    self.connection.endpoint.as_str().trim_end_matches('/'),
                    words(per_attempt)
                ),
            };
            failures += 1;
            if failures >= attempts {
                return Err(ClientError::Transport {
                    attempts: failures,
                    request_id,
                    message: cause,
                });
            }
            tracing::debug!(
                "{} {}: {cause}; trying once more",
                request.method,
                url.path()
            );
            self.renew_connections();
            sleep_or_stop(Duration::from_secs(1), stop).await?;
        }
    }

    /// After failed attempt number `failures` (the first at `first`), with
    /// the service silent for `silent`: wait and retry, give up, or stop
    /// for an outage. `at_least` is the service's `Retry-After`.
    fn next(
        &self,
        failures: u32,
        first: Instant,
        silent: Duration,
        at_least: Option<Duration>,
    ) -> Next {
        let policy = &self.policy;
        if let Some(limit) = policy.outage_timeout {
            if silent >= limit {
                return Next::Outage(silent);
            }
        }
        if failures >= policy.max_attempts {
            // Nothing answered since this request began failing: an
            // outage, not this request's fault; the breaker decides.
            let outage = policy.outage_timeout.is_some() && !self.liveness.answered_since(first);
            if !outage {
                return Next::GiveUp;
            }
        }
        let backoff = policy.backoff(failures);
        let wait = at_least.map_or(backoff, |r| r.max(backoff));
        // One last attempt when the breaker's time is up decides.
        Next::Retry(match policy.outage_timeout {
            Some(limit) => wait.min(limit.saturating_sub(silent)),
            None => wait,
        })
    }

    fn outage(&self, silent: Duration, cause: String) -> ClientError {
        ClientError::Outage {
            endpoint: self
                .connection
                .endpoint
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
            silent,
            cause,
        }
    }

    /// One short line per retry: what, why, which attempt, how long until
    /// the next.
    fn log_retry(
        &self,
        request: &ApiRequest,
        url: &url::Url,
        cause: &str,
        failures: u32,
        silent: Duration,
        wait: Duration,
    ) {
        let max = self.policy.max_attempts;
        let attempt = match self.policy.outage_timeout {
            Some(limit) if failures >= max => format!(
                "attempt {failures}, nothing answered for {} of the {} outage timeout",
                words(silent),
                words(limit)
            ),
            _ => format!("attempt {failures}/{max}"),
        };
        tracing::warn!(
            "{} {}: {cause} ({attempt}); retrying in {}",
            request.method,
            url.path(),
            words(wait)
        );
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
        let mut first_failure = None;
        loop {
            self.pacer.ready(stop).await?;
            let token = self.auth.token(fresh_token).await?;
            fresh_token = false;
            let request_id = uuid::Uuid::new_v4().to_string();
            let began = Instant::now();
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
                    let silent = self.liveness.failed(began);
                    let first = *first_failure.get_or_insert(began);
                    let cause = format!(
                        "{} {} (request {request_id})",
                        response.status.as_u16(),
                        response.error_code().unwrap_or_else(|| response
                            .status
                            .canonical_reason()
                            .unwrap_or_default()
                            .to_owned())
                    );
                    match self.next(failures, first, silent, retry_after(&response.headers)) {
                        Next::GiveUp => return Ok(response),
                        Next::Outage(silent) => return Err(self.outage(silent, cause)),
                        Next::Retry(wait) => {
                            self.log_retry(request, &url, &cause, failures, silent, wait);
                            wait
                        }
                    }
                }
                Ok(response) => return Ok(response),
                Err(no_answer) => {
                    failures += 1;
                    let silent = self.liveness.failed(began);
                    let first = *first_failure.get_or_insert(began);
                    let next = if no_answer.never_arrived || request.resend_when_unsure {
                        self.next(failures, first, silent, None)
                    } else {
                        Next::GiveUp
                    };
                    match next {
                        Next::GiveUp => {
                            return Err(ClientError::Transport {
                                attempts: failures,
                                request_id,
                                message: no_answer.description,
                            })
                        }
                        Next::Outage(silent) => return Err(self.outage(silent, no_answer.cause)),
                        Next::Retry(wait) => {
                            self.log_retry(request, &url, &no_answer.cause, failures, silent, wait);
                            wait
                        }
                    }
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
            outage_timeout: None,
        };
        for _ in 0..50 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
            let third = policy.backoff(3);
            assert!(third >= Duration::from_secs(8) && third <= Duration::from_secs(16));
            assert!(policy.backoff(10) <= Duration::from_secs(60));
        }
    }

    fn transport(policy: RetryPolicy) -> Transport {
        let auth = TokenProvider::new(
            auth::Credential::None,
            auth::DEFAULT_SCOPE,
            auth::DEFAULT_AUTHORITY,
            reqwest::Client::new(),
        );
        let connection = Connection::new("http://127.0.0.1:9".parse().unwrap());
        Transport::new(connection, auth, Arc::new(Pacer::new(100)), policy).unwrap()
    }

    #[test]
    fn the_breaker_counts_only_time_spent_failing() {
        let liveness = Liveness::default();
        assert_eq!(liveness.silent_for(), Duration::ZERO);
        let began = Instant::now() - Duration::from_secs(10);
        assert!(liveness.failed(began) >= Duration::from_secs(10));
        // A later failure keeps the start of the run of failures.
        assert!(liveness.failed(Instant::now()) >= Duration::from_secs(10));
        assert!(liveness.silent_for() >= Duration::from_secs(10));
        liveness.answered();
        assert_eq!(liveness.silent_for(), Duration::ZERO);
        assert!(liveness.answered_since(began));
        // An attempt begun before the last answer counts from the answer.
        assert!(liveness.failed(began) < Duration::from_secs(5));
    }

    #[test]
    fn during_an_outage_the_breaker_decides_not_the_attempts() {
        let minute = Duration::from_secs(60);
        let t = transport(RetryPolicy {
            max_attempts: 2,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            outage_timeout: Some(minute),
        });
        let first = Instant::now();
        // The attempts are spent, but nothing was answered since the
        // request began failing: it goes on.
        assert!(matches!(
            t.next(2, first, Duration::from_secs(1), None),
            Next::Retry(_)
        ));
        assert!(matches!(t.next(9, first, minute, None), Next::Outage(_)));
        // A wait never passes the breaker's time: one last attempt then.
        let Next::Retry(wait) = t.next(5, first, Duration::from_secs(59), None) else {
            panic!("a retry")
        };
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        // The service answers others: the failure is the request's own.
        t.liveness().answered();
        assert!(matches!(
            t.next(2, first, Duration::ZERO, None),
            Next::GiveUp
        ));
        assert!(matches!(
            t.next(1, first, Duration::ZERO, None),
            Next::Retry(_)
        ));
        // Without a breaker the attempts alone decide.
        let t = transport(RetryPolicy {
            outage_timeout: None,
            ..RetryPolicy::default()
        });
        assert!(matches!(
            t.next(6, Instant::now(), Duration::from_secs(3600), None),
            Next::GiveUp
        ));
    }

    #[test]
    fn durations_in_a_few_characters() {
        assert_eq!(words(Duration::from_millis(850)), "850ms");
        assert_eq!(words(Duration::from_millis(3_400)), "3.4s");
        assert_eq!(words(Duration::from_secs(5)), "5s");
        assert_eq!(words(Duration::from_secs(125)), "2m 5s");
        assert_eq!(words(Duration::from_secs(300)), "5m");
    }

    #[tokio::test]
    async fn a_refused_connection_is_two_words_not_a_chain() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = free.local_addr().unwrap();
        drop(free);
        let error = reqwest::Client::new()
            .get(format!("http://{addr}/accounts"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(short_cause(&error), "connection refused");
        let endpoint: url::Url = format!("http://{addr}/").parse().unwrap();
        let text = describe_transport(&error, &endpoint);
        assert!(
            text.starts_with(&format!(
                "cannot connect to http://{addr}: connection refused; "
            )),
            "{text}"
        );
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
