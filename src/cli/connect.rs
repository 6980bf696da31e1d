//! The client that the connection flags (`flags::ConnectionArgs`) make,
//! shared by every command that talks to the Provisioning API.
//!
//! Secrets come from the environment (`AZURE_CLIENT_SECRET`, `ACG_TOKEN`,
//! `AZURE_CLIENT_CERTIFICATE_PASSWORD`) or from files, never from a flag's
//! value, so they stay out of shell history and process lists.

use super::flags::{AuthArgs, AuthMode, ConnectionArgs, TransportArgs};
use acgbulk::client::auth::{self, Credential, TokenProvider};
use acgbulk::client::pacer::Pacer;
use acgbulk::client::{Connection, ProvisioningClient, RetryPolicy};
use acgbulk::emulator::{Emulator, EmulatorConfig, SeedSource};
use anyhow::{bail, Context};
use azure_core::credentials::Secret;
use std::sync::Arc;

impl TransportArgs {
    /// A connection to `endpoint` with these settings.
    pub fn connection(&self, endpoint: url::Url, api_version: &str) -> Connection {
        let mut connection = Connection::new(endpoint);
        connection.api_version = api_version.to_owned();
        connection.ca_certs = self.ca_cert.clone();
        connection.timeout = self.timeout;
        connection
    }

    /// The one pace every request of the run keeps: `endpoint`'s budget,
    /// shared with every acgbulk process on this machine, unless the rate
    /// limit is off.
    pub fn pacer(&self, endpoint: &url::Url) -> Arc<Pacer> {
        Arc::new(match self.rate_limit.0 {
            Some(per_minute) => Pacer::shared(per_minute, endpoint),
            None => Pacer::new(u32::MAX / 60),
        })
    }

    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts.max(1),
            backoff: self.retry_backoff,
            max_backoff: self.max_backoff.max(self.retry_backoff),
            outage_timeout: Some(self.outage_timeout).filter(|t| !t.is_zero()),
        }
    }
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
        let method = match self.auth {
            AuthMode::Auto if emulator => AuthMode::None,
            AuthMode::Auto => {
                if self.token_file.is_some() || env_secret(token_env).is_some() {
                    AuthMode::Token
                } else if self.client_secret_file.is_some()
                    || env_secret("AZURE_CLIENT_SECRET").is_some()
                {
                    AuthMode::Secret
                } else if self.certificate_path.is_some() {
                    AuthMode::Certificate
                } else if std::env::var_os("IDENTITY_ENDPOINT").is_some()
                    || std::env::var_os("MSI_ENDPOINT").is_some()
                {
                    AuthMode::ManagedIdentity
                } else {
                    AuthMode::None
                }
            }
            chosen => chosen,
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
            AuthMode::None | AuthMode::Auto => Credential::None,
            AuthMode::Token => Credential::Token(match &self.token_file {
                Some(path) => auth::read_secret_file(path)?,
                None => env_secret(token_env).with_context(|| format!("--auth token needs {token_env} or --token-file"))?,
            }),
            AuthMode::Secret => Credential::ClientSecret {
                tenant: tenant()?,
                client_id: client()?,
                secret: match &self.client_secret_file {
                    Some(path) => auth::read_secret_file(path)?,
                    None => env_secret("AZURE_CLIENT_SECRET")
                        .context("--auth secret needs AZURE_CLIENT_SECRET or --client-secret-file (never a plain flag)")?,
                },
            },
            AuthMode::Certificate => {
                let path = self.certificate_path.clone().context("--auth certificate needs AZURE_CLIENT_CERTIFICATE_PATH or --certificate-path")?;
                let password = env_secret("AZURE_CLIENT_CERTIFICATE_PASSWORD");
                Credential::ClientCertificate {
                    tenant: tenant()?,
                    client_id: client()?,
                    certificate: auth::read_certificate(&path, password.as_ref())?,
                }
            }
            AuthMode::ManagedIdentity => Credential::ManagedIdentity { client_id: self.client_id.clone() },
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
        // Every command that talks to the API gets the profile here.
        super::profile::apply(self).connect_as_given(fallback).await
    }

    /// [`Self::connect`] with these settings as they are (the profile applied).
    async fn connect_as_given(&self, fallback: Option<&str>) -> anyhow::Result<Connected> {
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
                    bail!("no endpoint: give --endpoint URL (or ACG_ENDPOINT, or a --profile with an endpoint), or --emulator")
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
        let pacer = self.transport.pacer(&connection.endpoint);
        let client = ProvisioningClient::new(connection, provider, pacer, self.transport.policy())?;
        // Before anything is sent: what would fail every request shows
        // now, in one line, rather than after minutes of retries.
        let (_keep, mut no_stop) = tokio::sync::watch::channel(false);
        if let Err(e) = client.preflight(&mut no_stop).await {
            if let Some(emulator) = emulator {
                emulator.stop().await?;
            }
            bail!("{e}; nothing was sent");
        }
        Ok(Connected {
            client: Arc::new(client),
            endpoint: endpoint.as_str().trim_end_matches('/').to_owned(),
            emulator,
        })
    }
}
