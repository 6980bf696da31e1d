//! A local emulator of the ACG Provisioning API: a real HTTP(S) server that
//! behaves like the service in what a client can observe, including its
//! limits (rate, batch size, paging), its checks, ETags, repeatability,
//! asynchronous backend sync, Entra ID tokens and roles, and its failures
//! (injected 5xx answers, connections dropped after a write was applied,
//! latency). On the same port, [`acs`] serves the number search API of
//! Azure Communication Services.
//!
//! It builds on `acgbulk-core` only (the API's JSON, number metadata):
//! its checks, its idea of an unchanged write and its ACS signature check
//! are its own, so a mistake in acgbulk's client cannot hide on both sides.
//!
//! [`Emulator::start`] serves it on a tokio runtime; [`Emulator::stop`]
//! stops accepting, lets requests in flight finish, and saves the state.

pub mod acs;
pub mod api;
pub mod auth;
pub mod clock;
pub mod error;
pub mod guard;
pub mod paging;
pub mod prefixed;
pub mod repeat;
pub mod rules;
pub mod seed;
pub mod store;
pub mod tls;

// The core modules the emulator builds on, under the names the code uses.
use acgbulk_core::{durable, model, phone, sample};

use axum::extract::{DefaultBodyLimit, Path as AxumPath, State};
use axum::routing::{get, post};
use axum::{middleware, Router};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::SeedableRng;
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// Where the starting data comes from (unless a state file exists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedSource {
    /// The built-in demo accounts, civic addresses and RFIs.
    Demo,
    /// Nothing at all.
    Empty,
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub enum TlsSource {
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    /// Make a CA and server certificate; write the CA certificate here.
    SelfSigned {
        ca_out: PathBuf,
    },
}

/// Failures injected on purpose, reproducible with a seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    pub seed: u64,
    /// Share of API requests answered 500 or 503 before being applied.
    pub fault_rate: f64,
    /// Share of successful writes whose connection is closed with no answer.
    pub drop_after_commit_rate: f64,
    pub latency: Duration,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            seed: 0,
            fault_rate: 0.0,
            drop_after_commit_rate: 0.0,
            latency: Duration::ZERO,
        }
    }
}

/// An IP network, `address/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub address: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn parse(text: &str) -> Result<IpNet, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("'{text}' is not an IP address or network"))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("'{text}': bad prefix length"))?,
        };
        Ok(IpNet { address, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> u128 {
            match ip {
                IpAddr::V4(v4) => u32::from(v4) as u128,
                IpAddr::V6(v6) => u128::from(v6),
            }
        };
        let width = if self.address.is_ipv4() { 32 } else { 128 };
        let ip = match (self.address, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            (IpAddr::V6(_), IpAddr::V4(_)) => return false,
            _ => ip,
        };
        if self.prefix == 0 {
            return true;
        }
        let shift = width - self.prefix as u32;
        bits(ip) >> shift == bits(self.address) >> shift
    }
}

/// Everything the emulator can be told.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub listen: SocketAddr,
    /// Load from here at start (if it exists), save here at stop and
    /// every `save_every` while changed.
    pub state: Option<PathBuf>,
    pub save_every: Duration,
    pub seed: SeedSource,
    /// Requests per minute across the API; `None` for no limit.
    pub rate_limit: Option<u32>,
    /// Requests allowed at once before the pace applies [default: a
    /// minute's worth].
    pub rate_burst: Option<u32>,
    pub default_page_size: usize,
    pub max_page_size: usize,
    /// How long backend sync takes.
    pub sync_delay: Duration,
    pub repeatability_window: Duration,
    /// `None` serves without authentication.
    pub clients: Option<Vec<auth::Client>>,
    /// An App Service style managed identity (`/msi/token`): its secret
    /// header and roles.
    pub managed_identity: Option<auth::Client>,
    pub token_lifetime: Duration,
    pub audience: String,
    pub faults: Faults,
    pub tls: Option<TlsSource>,
    /// Addresses allowed to call the API; empty allows all.
    pub allowed_ips: Vec<IpNet>,
    /// The Azure Communication Services number search API.
    pub acs: acs::AcsConfig,
    /// How long a client may take to send a request's headers (and, on a
    /// new connection, its TLS handshake) before the connection is closed.
    pub header_timeout: Duration,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            state: None,
            save_every: Duration::from_secs(5),
            seed: SeedSource::Demo,
            rate_limit: Some(100),
            rate_burst: None,
            default_page_size: 100,
            max_page_size: 1000,
            sync_delay: Duration::from_secs(2),
            repeatability_window: Duration::from_secs(24 * 3600),
            clients: None,
            managed_identity: None,
            token_lifetime: Duration::from_secs(3600),
            audience: auth::DEFAULT_AUDIENCE.to_owned(),
            faults: Faults::default(),
            tls: None,
            allowed_ips: Vec::new(),
            acs: acs::AcsConfig::default(),
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// Why the emulator could not start or save.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error("cannot save the state to {path}: {source}")]
    Save {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// State shared by every request.
pub struct App {
    pub config: EmulatorConfig,
    store: Mutex<Store>,
    acs: Mutex<acs::AcsState>,
    pub limiter: Option<DefaultDirectRateLimiter>,
    pub issuer: Option<auth::Issuer>,
    pub rng: Mutex<rand::rngs::StdRng>,
    local_addr: OnceLock<SocketAddr>,
}

impl App {
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn acs(&self) -> MutexGuard<'_, acs::AcsState> {
        self.acs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What happened so far.
    pub fn stats(&self) -> Stats {
        let acs = self.acs().counters.clone();
        Stats::of(&self.store(), acs)
    }

    pub fn list_query(&self, raw: Option<&str>) -> Result<paging::ListQuery, error::ApiError> {
        paging::parse(
            raw,
            self.config.default_page_size,
            self.config.max_page_size,
        )
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr.get().copied().unwrap_or(self.config.listen)
    }

    /// `scheme://host:port` as the client reached the emulator (its `Host`),
    /// for the links it hands out.
    pub fn base_url(&self, headers: &axum::http::HeaderMap) -> String {
        let scheme = if self.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| self.local_addr().to_string());
        format!("{scheme}://{host}")
    }

    pub fn ip_allowed(&self, ip: IpAddr) -> bool {
        self.config.allowed_ips.is_empty()
            || self.config.allowed_ips.iter().any(|net| net.contains(ip))
    }
}

/// `/_emulator/stats`: what happened, so tests can prove what was applied.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    #[serde(flatten)]
    pub counters: store::Counters,
    pub numbers: u64,
    pub accounts: u64,
    /// Numbers whose backend sync is still pending.
    pub pending: u64,
    /// The most writes any one number has had.
    pub max_writes_per_number: u32,
    pub repeatability_entries: u64,
    /// The Azure Communication Services side.
    #[serde(default)]
    pub acs: acs::AcsCounters,
}

impl Stats {
    pub fn of(store: &Store, acs: acs::AcsCounters) -> Stats {
        let now = store::now_ms();
        Stats {
            counters: store.counters.clone(),
            numbers: store.numbers.len() as u64,
            accounts: store.accounts.len() as u64,
            pending: store
                .numbers
                .values()
                .filter(|r| matches!(r.sync, store::BackendSync::Due(due) if due > now))
                .count() as u64,
            max_writes_per_number: store.numbers.values().map(|r| r.writes).max().unwrap_or(0),
            repeatability_entries: store.repeats.len() as u64,
            acs,
        }
    }
}

async fn stats(State(app): State<Arc<App>>) -> axum::Json<Stats> {
    axum::Json(app.stats())
}

async fn token(
    State(app): State<Arc<App>>,
    AxumPath(tenant): AxumPath<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(issuer) = &app.issuer else {
        return no_auth();
    };
    let mut request = auth::TokenRequest {
        grant_type: None,
        client_id: None,
        client_secret: None,
        client_assertion: None,
        client_assertion_type: None,
        scope: None,
    };
    for (key, value) in url::form_urlencoded::parse(&body) {
        let value = Some(value.into_owned());
        match key.as_ref() {
            "grant_type" => request.grant_type = value,
            "client_id" => request.client_id = value,
            "client_secret" => request.client_secret = value,
            "client_assertion" => request.client_assertion = value,
            "client_assertion_type" => request.client_assertion_type = value,
            "scope" => request.scope = value,
            _ => {}
        }
    }
    let endpoint = format!("{}/{tenant}/oauth2/v2.0/token", app.base_url(&headers));
    match issuer.token(&tenant, &request, &endpoint) {
        Ok(response) => {
            app.store().counters.tokens_issued += 1;
            axum::Json(response).into_response()
        }
        Err((status, error)) => (status, axum::Json(error)).into_response(),
    }
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration` (and the v1
/// `/{tenant}/.well-known/openid-configuration`): what MSAL reads before
/// it asks for a token.
async fn openid_configuration(
    State(app): State<Arc<App>>,
    AxumPath(tenant): AxumPath<String>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(issuer) = &app.issuer else {
        return no_auth();
    };
    let v1 = !uri.path().contains("/v2.0/");
    axum::Json(issuer.openid_configuration(&app.base_url(&headers), &tenant, v1)).into_response()
}

/// `GET /{tenant}/discovery/v2.0/keys`: the keys that sign its tokens.
async fn jwks(State(app): State<Arc<App>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match &app.issuer {
        Some(issuer) => axum::Json(issuer.jwks()).into_response(),
        None => no_auth(),
    }
}

fn no_auth() -> axum::response::Response {
    use axum::response::IntoResponse;
    error::ApiError::not_found(
        "NotFound",
        "the emulator runs without authentication (--auth none)",
    )
    .into_response()
}

async fn managed_identity(
    State(app): State<Arc<App>>,
    headers: axum::http::HeaderMap,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(issuer) = &app.issuer else {
        return error::ApiError::not_found(
            "NotFound",
            "the emulator runs without authentication (--auth none)",
        )
        .into_response();
    };
    let resource = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "resource")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let header = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok());
    match issuer.managed_identity_token(header, &resource) {
        Ok(token) => {
            app.store().counters.tokens_issued += 1;
            axum::Json(token).into_response()
        }
        Err((status, error)) => (status, axum::Json(error)).into_response(),
    }
}

/// The routes: the API behind its guard, the search API behind its own,
/// plus the token endpoints and stats.
pub fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .without_v07_checks()
        .route("/accounts", get(api::list_accounts))
        .route(
            "/accounts/{account}",
            get(api::get_account)
                .put(api::put_account)
                .delete(api::delete_account)
                .post(api::account_action),
        )
        .route(
            "/accounts/{account}/numbers",
            get(api::list_account_numbers),
        )
        .route(
            "/accounts/{account}/numbers/{number}",
            get(api::get_number)
                .put(api::put_number)
                .delete(api::delete_number),
        )
        .route(
            "/accounts/{account}/teamsCivicAddresses",
            get(api::list_civic),
        )
        .route(
            "/accounts/{account}/teamsCivicAddresses/{id}",
            get(api::get_civic),
        )
        .route("/numbers", get(api::list_numbers))
        .route("/teamsRequestsForInformation", get(api::list_rfis))
        .route(
            "/teamsRequestsForInformation/{tenant}",
            get(api::get_rfi).patch(api::patch_rfi),
        )
        .route_layer(middleware::from_fn_with_state(app.clone(), guard::guard));
    // The search API's paths have segments that start with a colon
    // (`/:search`): literal text, not axum 0.7 captures.
    let acs = Router::new()
        .without_v07_checks()
        .route(
            "/availablePhoneNumbers/countries/{country}/:search",
            post(acs::search),
        )
        .route("/availablePhoneNumbers/:purchase", post(acs::purchase))
        .route(
            "/availablePhoneNumbers/searchResults/{id}",
            get(acs::get_search_result),
        )
        .route("/phoneNumbers/operations/{id}", get(acs::get_operation))
        .route_layer(middleware::from_fn_with_state(app.clone(), acs::guard));
    Router::new()
        .without_v07_checks()
        .merge(api)
        .merge(acs)
        .route("/_emulator/stats", get(stats))
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(jwks))
        .route("/{tenant}/discovery/keys", get(jwks))
        .route("/msi/token", get(managed_identity))
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(guard::BODY_LIMIT))
        .with_state(app)
}

/// A running emulator.
pub struct Emulator {
    /// `http://127.0.0.1:PORT` (or `https://...`).
    pub url: String,
    pub addr: SocketAddr,
    app: Arc<App>,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    saver: Option<tokio::task::JoinHandle<()>>,
}

fn build_app(config: EmulatorConfig) -> Result<App, EmulatorError> {
    let now = store::now_ms();
    let store = match &config.state {
        Some(path) if path.exists() => {
            Store::from_snapshot(seed::load_snapshot(path).map_err(EmulatorError::Config)?)
                .map_err(EmulatorError::Config)?
        }
        _ => {
            let seed = match &config.seed {
                SeedSource::Demo => seed::demo(),
                SeedSource::Empty => seed::Seed::default(),
                SeedSource::File(path) => seed::load_seed(path).map_err(EmulatorError::Config)?,
            };
            Store::from_seed(seed, now).map_err(EmulatorError::Config)?
        }
    };
    let limiter = match config.rate_limit {
        Some(rate) => {
            let rate = NonZeroU32::new(rate).ok_or_else(|| {
                EmulatorError::Config("the rate limit must be at least 1 a minute".into())
            })?;
            let mut quota = Quota::per_minute(rate);
            if let Some(burst) = config.rate_burst {
                let burst = NonZeroU32::new(burst).ok_or_else(|| {
                    EmulatorError::Config("the rate burst must be at least 1".into())
                })?;
                quota = quota.allow_burst(burst);
            }
            Some(RateLimiter::direct(quota))
        }
        None => None,
    };
    let issuer = match &config.clients {
        Some(clients) => Some(
            auth::Issuer::with_managed_identity(
                clients,
                config.managed_identity.as_ref(),
                config.token_lifetime,
                &config.audience,
            )
            .map_err(EmulatorError::Config)?,
        ),
        None => None,
    };
    for rate in [
        config.faults.fault_rate,
        config.faults.drop_after_commit_rate,
    ] {
        if !(0.0..=1.0).contains(&rate) {
            return Err(EmulatorError::Config(format!(
                "a fault rate must be between 0 and 1, not {rate}"
            )));
        }
    }
    Ok(App {
        rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(config.faults.seed)),
        config,
        store: Mutex::new(store),
        acs: Mutex::new(acs::AcsState::default()),
        limiter,
        issuer,
        local_addr: OnceLock::new(),
    })
}

impl Emulator {
    /// Starts serving on the configured address (port 0 picks a free one).
    pub async fn start(config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        let tls = match &config.tls {
            None => None,
            Some(TlsSource::Files { cert, key }) => {
                Some(tls::from_files(cert, key).map_err(EmulatorError::Config)?)
            }
            Some(TlsSource::SelfSigned { ca_out }) => {
                Some(tls::self_signed(ca_out).map_err(EmulatorError::Config)?)
            }
        };
        let app = Arc::new(build_app(config)?);
        let listener = TcpListener::bind(app.config.listen)
            .await
            .map_err(|source| EmulatorError::Listen {
                addr: app.config.listen,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Listen {
                addr: app.config.listen,
                source,
            })?;
        let _ = app.local_addr.set(addr);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{addr}");
        let (shutdown, stop) = watch::channel(false);
        let router = router(app.clone());
        let acceptor = tls.map(|config| tokio_rustls::TlsAcceptor::from(Arc::new(config)));
        let server = tokio::spawn(serve(
            listener,
            router,
            acceptor,
            app.config.header_timeout,
            stop.clone(),
        ));
        let saver = app
            .config
            .state
            .clone()
            .map(|path| tokio::spawn(save_periodically(app.clone(), path, stop)));
        Ok(Emulator {
            url,
            addr,
            app,
            shutdown,
            server,
            saver,
        })
    }

    pub fn stats(&self) -> Stats {
        self.app.stats()
    }

    /// Runs `f` on the store (tests use it to change state behind a
    /// client's back).
    pub fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        f(&mut self.app.store())
    }

    /// Stops accepting, waits up to five seconds for requests in flight,
    /// and saves the state.
    pub async fn stop(self) -> Result<(), EmulatorError> {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        if let Some(saver) = self.saver {
            let _ = saver.await;
        }
        if let Some(path) = &self.app.config.state {
            save(&self.app, path).await?;
        }
        Ok(())
    }
}

/// Saves the state now, building the snapshot under the lock and writing
/// it outside.
async fn save(app: &Arc<App>, path: &std::path::Path) -> Result<(), EmulatorError> {
    let snapshot = {
        let mut store = app.store();
        store.dirty = false;
        store.to_snapshot()
    };
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        seed::save_snapshot(&path, &snapshot).map_err(|source| EmulatorError::Save { path, source })
    })
    .await
    .map_err(|e| EmulatorError::Config(e.to_string()))?
}

async fn save_periodically(app: Arc<App>, path: PathBuf, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(app.config.save_every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if app.store().dirty {
                    if let Err(e) = save(&app, &path).await {
                        tracing::error!("{e}");
                    }
                }
            }
            _ = stop.changed() => break,
        }
    }
}

/// Accepts connections until told to stop, then lets open ones finish.
async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    header_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(guard::PeerAddr(peer));
                let router = router.clone();
                async move {
                    let response = match guard::uri_too_long(request.uri()) {
                        Some(refusal) => refusal,
                        None => router
                            .oneshot(request.map(axum::body::Body::new))
                            .await
                            .unwrap_or_else(|never| match never {}),
                    };
                    if response
                        .extensions()
                        .get::<guard::DropConnection>()
                        .is_some()
                    {
                        // An error from the service makes hyper close the
                        // connection without an answer: the write is applied and
                        // the client never hears of it.
                        Err(std::io::Error::other(
                            "connection dropped after commit (injected fault)",
                        ))
                    } else {
                        Ok(response)
                    }
                }
            },
        );
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            // Without a timer hyper waits for headers for ever: a client
            // that never finishes them would pin the connection.
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout);
            match tls {
                None => {
                    let Some(stream) = prefixed::first_line(stream, header_timeout).await else {
                        return;
                    };
                    let conn = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .into_owned();
                    let _ = watcher.watch(conn).await;
                }
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(e)) => {
                                tracing::debug!("TLS handshake with {peer} failed: {e}");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!("TLS handshake with {peer} timed out");
                                return;
                            }
                        };
                    let Some(stream) = prefixed::first_line(stream, header_timeout).await else {
                        return;
                    };
                    let conn = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .into_owned();
                    let _ = watcher.watch(conn).await;
                }
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_networks() {
        let net = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("127.0.0.1".parse().unwrap()));
        assert!(IpNet::parse("127.0.0.1")
            .unwrap()
            .contains("127.0.0.1".parse().unwrap()));
        assert!(IpNet::parse("0.0.0.0/0")
            .unwrap()
            .contains("192.0.2.1".parse().unwrap()));
        assert!(IpNet::parse("10.0.0.0/33").is_err());
    }
}
