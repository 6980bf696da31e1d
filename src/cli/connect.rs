//! Flags that say how to reach and authenticate to the Provisioning API,
//! shared by every command that talks to it, and the client they make.
//!
//! Secrets come from the environment (`AZURE_CLIENT_SECRET`, `ACG_TOKEN`,
//! `AZURE_CLIENT_CERTIFICATE_PASSWORD`) or from files, never from a flag's
//! value, so they stay out of shell history and process lists.

use super::emulator::{parse_rate, RateLimit};
use acgbulk::client::auth::{self, Credential, TokenProvider};
use acgbulk::client::pacer::Pacer;
use acgbulk::client::{Connection, ProvisioningClient, RetryPolicy};
use acgbulk::emulator::{Emulator, EmulatorConfig, SeedSource};
use anyhow::{bail, Context};
use azure_core::credentials::Secret;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where the API is and how to pace and retry requests to it.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectionArgs {
    /// The Provisioning API endpoint, `https://provapi.<domain>`
    #[arg(
        long,
        env = "ACG_ENDPOINT",
        value_name = "URL",
        help_heading = "Connection"
    )]
    pub endpoint: Option<url::Url>,

    /// Start an emulator in this process on a free port and use it instead
    /// of --endpoint (demo accounts; see `acgbulk emulator --help`)
    #[arg(long, conflicts_with = "endpoint", help_heading = "Connection")]
    pub emulator: bool,

    /// With --emulator: keep the emulator's data in this file between runs
    #[arg(
        long,
        value_name = "FILE",
        requires = "emulator",
        help_heading = "Connection"
    )]
    pub emulator_state: Option<PathBuf>,

    #[command(flatten)]
    pub transport: TransportArgs,

    /// The api-version to send
    #[arg(long, value_name = "VERSION", default_value = acgbulk::model::API_VERSION, help_heading = "Connection")]
    pub api_version: String,

    /// The scope of the Provisioning API
    #[arg(long, env = "ACG_SCOPE", value_name = "SCOPE", default_value = auth::DEFAULT_SCOPE, help_heading = "Authentication")]
    pub scope: String,

    #[command(flatten)]
    pub auth: AuthArgs,
}

/// How requests are paced, retried and secured, whatever the service.
#[derive(clap::Args, Debug, Clone)]
pub struct TransportArgs {
    /// An extra trust root (PEM) for HTTPS, for private CAs; TLS is always verified
    #[arg(long = "ca-cert", value_name = "FILE", help_heading = "Connection")]
    pub ca_certs: Vec<PathBuf>,

    /// Requests a minute for everything the run sends, polls included (the
    /// Provisioning API allows 100)
    #[arg(long, value_name = "N/min", default_value = "100/min", value_parser = parse_rate, help_heading = "Connection")]
    pub rate_limit: RateLimit,

    /// Attempts for a request that meets 5xx, a time-out or a broken connection
    #[arg(
        long,
        value_name = "N",
        default_value_t = 6,
        help_heading = "Connection"
    )]
    pub max_attempts: u32,

    /// First wait before a retry; each later wait is four times longer
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration, help_heading = "Connection")]
    pub retry_backoff: Duration,

    /// The longest wait between retries (the failover guidance waits about 60 s)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration, help_heading = "Connection")]
    pub max_backoff: Duration,

    /// Time limit of one request
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration, help_heading = "Connection")]
    pub timeout: Duration,
}

impl TransportArgs {
    /// A connection to `endpoint` with these settings.
    pub fn connection(&self, endpoint: url::Url, api_version: &str) -> Connection {
        let mut connection = Connection::new(endpoint);
        connection.api_version = api_version.to_owned();
        connection.ca_certs = self.ca_certs.clone();
        connection.timeout = self.timeout;
        connection
    }

    /// The one pace every request of the run keeps.
    pub fn pacer(&self) -> Arc<Pacer> {
        Arc::new(Pacer::new(self.rate_limit.0.unwrap_or(u32::MAX / 60)))
    }

    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts.max(1),
            backoff: self.retry_backoff,
            max_backoff: self.max_backoff.max(self.retry_backoff),
        }
    }
}

/// How to get a token.
#[derive(clap::Args, Debug, Clone)]
pub struct AuthArgs {
    /// none, token (ACG_TOKEN or --token-file), secret (AZURE_CLIENT_SECRET or
    /// --client-secret-file), certificate (AZURE_CLIENT_CERTIFICATE_PATH),
    /// managed-identity; auto picks from what is given
    #[arg(long, value_name = "METHOD", default_value = "auto", value_parser = ["auto", "none", "token", "secret", "certificate", "managed-identity"], help_heading = "Authentication")]
    pub auth: String,

    /// A file holding a bearer token (else ACG_TOKEN, or ACS_TOKEN for `acs`)
    #[arg(long, value_name = "FILE", help_heading = "Authentication")]
    pub token_file: Option<PathBuf>,

    /// Entra ID tenant of the application
    #[arg(
        long,
        env = "AZURE_TENANT_ID",
        value_name = "ID",
        help_heading = "Authentication"
    )]
    pub tenant_id: Option<String>,

    /// Application (client) id; for a managed identity, a user-assigned one
    #[arg(
        long,
        env = "AZURE_CLIENT_ID",
        value_name = "ID",
        help_heading = "Authentication"
    )]
    pub client_id: Option<String>,

    /// A file holding the client secret (else AZURE_CLIENT_SECRET)
    #[arg(long, value_name = "FILE", help_heading = "Authentication")]
    pub client_secret_file: Option<PathBuf>,

    /// The application's certificate: PEM with its key, or PKCS#12; its
    /// password, if any, from AZURE_CLIENT_CERTIFICATE_PASSWORD
    #[arg(
        long,
        env = "AZURE_CLIENT_CERTIFICATE_PATH",
        value_name = "FILE",
        help_heading = "Authentication"
    )]
    pub client_certificate: Option<PathBuf>,

    /// Entra ID authority
    #[arg(long, env = "AZURE_AUTHORITY_HOST", value_name = "URL", default_value = auth::DEFAULT_AUTHORITY, help_heading = "Authentication")]
    pub authority_host: String,
}

fn env_secret(name: &str) -> Option<Secret> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .map(Secret::new)
}

impl AuthArgs {
    /// The credential the flags and environment describe; a ready token
    /// may come from the variable `token_env`.
    pub fn credential(&self, emulator: bool, token_env: &str) -> anyhow::Result<Credential> {
        let method = match self.auth.as_str() {
            "auto" if emulator => "none",
            "auto" => {
                if self.token_file.is_some() || env_secret(token_env).is_some() {
                    "token"
                } else if self.client_secret_file.is_some()
                    || env_secret("AZURE_CLIENT_SECRET").is_some()
                {
                    "secret"
                } else if self.client_certificate.is_some() {
                    "certificate"
                } else if std::env::var_os("IDENTITY_ENDPOINT").is_some()
                    || std::env::var_os("MSI_ENDPOINT").is_some()
                {
                    "managed-identity"
                } else {
                    "none"
                }
            }
            other => other,
        };
        let tenant = || -> anyhow::Result<String> {
            self.tenant_id
                .clone()
                .context("this method needs the tenant: --tenant-id or AZURE_TENANT_ID")
        };
        let client = || -> anyhow::Result<String> {
            self.client_id
                .clone()
                .context("this method needs the application id: --client-id or AZURE_CLIENT_ID")
        };
        Ok(match method {
            "none" => Credential::None,
            "token" => Credential::Token(match &self.token_file {
                Some(path) => auth::read_secret_file(path)?,
                None => env_secret(token_env).with_context(|| format!("--auth token needs {token_env} or --token-file"))?,
            }),
            "secret" => Credential::ClientSecret {
                tenant: tenant()?,
                client_id: client()?,
                secret: match &self.client_secret_file {
                    Some(path) => auth::read_secret_file(path)?,
                    None => env_secret("AZURE_CLIENT_SECRET")
                        .context("--auth secret needs AZURE_CLIENT_SECRET or --client-secret-file (never a plain flag)")?,
                },
            },
            "certificate" => {
                let path = self.client_certificate.clone().context("--auth certificate needs AZURE_CLIENT_CERTIFICATE_PATH or --client-certificate")?;
                let password = env_secret("AZURE_CLIENT_CERTIFICATE_PASSWORD");
                Credential::ClientCertificate {
                    tenant: tenant()?,
                    client_id: client()?,
                    pkcs12: auth::read_certificate(&path, password.as_ref())?,
                    password,
                }
            }
            "managed-identity" => Credential::ManagedIdentity { client_id: self.client_id.clone() },
            other => bail!("unknown --auth {other}"),
        })
    }
}

/// A connected client (the Provisioning API's unless said), and the
/// in-process emulator when there is one.
pub struct Connected<C = ProvisioningClient> {
    pub client: Arc<C>,
    pub endpoint: String,
    pub emulator: Option<Emulator>,
}

impl<C> Connected<C> {
    /// Stops the in-process emulator, if any (saving its state).
    pub async fn close(self) -> anyhow::Result<()> {
        if let Some(emulator) = self.emulator {
            emulator.stop().await?;
        }
        Ok(())
    }
}

impl ConnectionArgs {
    /// Connects to `--endpoint`, or to `fallback` (a checkpoint's endpoint),
    /// or starts the in-process emulator. Call inside the runtime.
    pub async fn connect(&self, fallback: Option<&str>) -> anyhow::Result<Connected> {
        let (endpoint, emulator) = if self.emulator {
            let emulator = Emulator::start(EmulatorConfig {
                state: self.emulator_state.clone(),
                seed: SeedSource::Demo,
                rate_limit: self.transport.rate_limit.0,
                ..EmulatorConfig::default()
            })
            .await
            .context("cannot start the in-process emulator")?;
            eprintln!(
                "emulator: {} (in this process; demo accounts contoso, fabrikam, northwind, ...)",
                emulator.url
            );
            (emulator.url.parse::<url::Url>()?, Some(emulator))
        } else {
            let endpoint = match (&self.endpoint, fallback) {
                (Some(url), _) => url.clone(),
                (None, Some(recorded)) => recorded.parse().with_context(|| {
                    format!("the checkpoint's endpoint '{recorded}' is not a URL")
                })?,
                (None, None) => {
                    bail!("no endpoint: give --endpoint URL (or ACG_ENDPOINT), or --emulator")
                }
            };
            (endpoint, None)
        };
        let connection = self
            .transport
            .connection(endpoint.clone(), &self.api_version);
        let http = connection.http_client()?;
        let credential = self.auth.credential(self.emulator, "ACG_TOKEN")?;
        let provider = TokenProvider::new(credential, &self.scope, &self.auth.authority_host, http);
        provider.check()?;
        tracing::info!("authenticating as {}", provider.describe());
        let client = ProvisioningClient::new(
            connection,
            provider,
            self.transport.pacer(),
            self.transport.policy(),
        )?;
        Ok(Connected {
            client: Arc::new(client),
            endpoint: endpoint.as_str().trim_end_matches('/').to_owned(),
            emulator,
        })
    }
}
