//! Where a run's bearer token comes from: none (emulators), a ready token
//! (a file or `ACG_TOKEN`), or Entra ID through azure_identity: client
//! credentials with a secret or a certificate, or a managed identity.
//!
//! Secrets are read from the environment or from files only, never from a
//! command-line value, and never printed: `Debug` shows where a secret
//! comes from, not what it is. Tokens are refreshed before they expire (the
//! credential's cache renews within five minutes of expiry) and once more,
//! with a new credential and so an empty cache, after a 401.

use azure_core::credentials::{Secret, TokenCredential};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The scope the reference documents for the Provisioning API.
pub const DEFAULT_SCOPE: &str =
    "https://func-voiceservice-rp-prod-eastuseuap.azurewebsites.net/.default";
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Config(String),
    #[error("cannot get a token from Entra ID: {0}")]
    Token(String),
}

/// What a credential is made of (secrets by where to find them).
#[derive(Clone)]
pub enum Credential {
    None,
    /// A bearer token obtained elsewhere.
    Token(Secret),
    ClientSecret {
        tenant: String,
        client_id: String,
        secret: Secret,
    },
    ClientCertificate {
        tenant: String,
        client_id: String,
        /// PKCS#12 (PFX) bytes, converted from PEM if need be.
        pkcs12: Secret,
        password: Option<Secret>,
    },
    ManagedIdentity {
        client_id: Option<String>,
    },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Credential {
    /// A description that names no secret.
    pub fn describe(&self) -> String {
        match self {
            Credential::None => "no authentication".into(),
            Credential::Token(_) => "a bearer token given to acgbulk".into(),
            Credential::ClientSecret {
                tenant, client_id, ..
            } => {
                format!("client {client_id} of tenant {tenant} with a client secret")
            }
            Credential::ClientCertificate {
                tenant, client_id, ..
            } => {
                format!("client {client_id} of tenant {tenant} with a certificate")
            }
            Credential::ManagedIdentity { client_id } => match client_id {
                Some(id) => format!("the managed identity {id}"),
                None => "the system-assigned managed identity".into(),
            },
        }
    }
}

/// Reads a secret from a file, trimming a final newline.
pub fn read_secret_file(path: &PathBuf) -> Result<Secret, AuthError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        AuthError::Config(format!(
            "cannot read the secret file {}: {e}",
            path.display()
        ))
    })?;
    let text = text.trim_end_matches(['\n', '\r']);
    if text.is_empty() {
        return Err(AuthError::Config(format!(
            "the secret file {} is empty",
            path.display()
        )));
    }
    Ok(Secret::new(text.to_owned()))
}

/// Reads a client certificate: PKCS#12 (`.pfx`, `.p12`) as is, or PEM with
/// the certificate and its private key, converted to PKCS#12.
pub fn read_certificate(path: &PathBuf, password: Option<&Secret>) -> Result<Secret, AuthError> {
    let bytes = std::fs::read(path).map_err(|e| {
        AuthError::Config(format!(
            "cannot read the certificate {}: {e}",
            path.display()
        ))
    })?;
    if !bytes.starts_with(b"-----BEGIN") {
        use base64::Engine;
        return Ok(Secret::new(
            base64::engine::general_purpose::STANDARD.encode(bytes),
        ));
    }
    let bad = |what: &str, e: openssl::error::ErrorStack| {
        AuthError::Config(format!("{}: {what}: {e}", path.display()))
    };
    let cert = openssl::x509::X509::from_pem(&bytes).map_err(|e| bad("no PEM certificate", e))?;
    let key = openssl::pkey::PKey::private_key_from_pem(&bytes)
        .map_err(|e| bad("no PEM private key", e))?;
    let pkcs12 = openssl::pkcs12::Pkcs12::builder()
        .name("acgbulk")
        .pkey(&key)
        .cert(&cert)
        .build2(password.map(|p| p.secret()).unwrap_or(""))
        .and_then(|p| p.to_der())
        .map_err(|e| bad("cannot bundle the certificate and key", e))?;
    use base64::Engine;
    Ok(Secret::new(
        base64::engine::general_purpose::STANDARD.encode(pkcs12),
    ))
}

/// Gets tokens for one scope.
pub struct TokenProvider {
    credential: Credential,
    scope: String,
    authority: String,
    http: reqwest::Client,
    entra: Mutex<Option<Arc<dyn TokenCredential>>>,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenProvider")
            .field("credential", &self.credential.describe())
            .field("scope", &self.scope)
            .finish()
    }
}

impl TokenProvider {
    /// `http` carries the run's trust roots to the token endpoint too.
    pub fn new(
        credential: Credential,
        scope: &str,
        authority: &str,
        http: reqwest::Client,
    ) -> TokenProvider {
        TokenProvider {
            credential,
            scope: scope.to_owned(),
            authority: authority.trim_end_matches('/').to_owned(),
            http,
            entra: Mutex::new(None),
        }
    }

    pub fn describe(&self) -> String {
        self.credential.describe()
    }

    pub fn is_none(&self) -> bool {
        matches!(self.credential, Credential::None)
    }

    fn build(&self) -> Result<Arc<dyn TokenCredential>, AuthError> {
        // A few quick retries for the token endpoint; the run's own retries
        // cover longer outages, and a TLS or credential error is not worth
        // a minute of retrying.
        let retry = || {
            azure_core::http::RetryOptions::exponential(azure_core::http::ExponentialRetryOptions {
                max_retries: 3,
                max_total_elapsed: azure_core::time::Duration::seconds(6),
                ..Default::default()
            })
        };
        let client_options = || azure_core::http::ClientOptions {
            retry: retry(),
            transport: Some(azure_core::http::Transport::new(Arc::new(
                self.http.clone(),
            ))),
            cloud: Some(Arc::new({
                let mut custom = azure_core::cloud::CustomConfiguration::default();
                custom.authority_host = self.authority.clone();
                azure_core::cloud::CloudConfiguration::Custom(custom)
            })),
            ..Default::default()
        };
        let entra = |e: azure_core::Error| AuthError::Config(e.to_string());
        let credential: Arc<dyn TokenCredential> = match &self.credential {
            Credential::None | Credential::Token(_) => unreachable!("no credential to build"),
            Credential::ClientSecret {
                tenant,
                client_id,
                secret,
            } => azure_identity::ClientSecretCredential::new(
                tenant,
                client_id.clone(),
                secret.clone(),
                Some(azure_identity::ClientSecretCredentialOptions {
                    client_options: client_options(),
                }),
            )
            .map_err(entra)?,
            Credential::ClientCertificate {
                tenant,
                client_id,
                pkcs12,
                password,
            } => {
                use base64::Engine;
                let der = base64::engine::general_purpose::STANDARD
                    .decode(pkcs12.secret())
                    .map_err(|e| AuthError::Config(e.to_string()))?;
                azure_identity::ClientCertificateCredential::new(
                    tenant.clone(),
                    client_id.clone(),
                    azure_core::credentials::SecretBytes::new(der),
                    Some(azure_identity::ClientCertificateCredentialOptions {
                        client_options: client_options(),
                        password: password.clone(),
                    }),
                )
                .map_err(entra)?
            }
            Credential::ManagedIdentity { client_id } => {
                azure_identity::ManagedIdentityCredential::new(Some(
                    azure_identity::ManagedIdentityCredentialOptions {
                        user_assigned_id: client_id
                            .clone()
                            .map(azure_identity::UserAssignedId::ClientId),
                        client_options: azure_core::http::ClientOptions {
                            retry: retry(),
                            transport: Some(azure_core::http::Transport::new(Arc::new(
                                self.http.clone(),
                            ))),
                            ..Default::default()
                        },
                    },
                ))
                .map_err(entra)?
            }
        };
        Ok(credential)
    }

    /// Checks the configuration (builds the credential) without a request.
    pub fn check(&self) -> Result<(), AuthError> {
        match self.credential {
            Credential::None | Credential::Token(_) => Ok(()),
            _ => {
                let built = self.build()?;
                *self.entra.lock().expect("auth lock") = Some(built);
                Ok(())
            }
        }
    }

    /// A bearer token, `None` without authentication. `fresh` discards the
    /// cached token (after a 401).
    pub async fn token(&self, fresh: bool) -> Result<Option<Secret>, AuthError> {
        match &self.credential {
            Credential::None => Ok(None),
            Credential::Token(token) => Ok(Some(token.clone())),
            _ => {
                let credential = {
                    let mut slot = self.entra.lock().expect("auth lock");
                    if fresh || slot.is_none() {
                        *slot = Some(self.build()?);
                    }
                    slot.clone().expect("built")
                };
                let token = credential
                    .get_token(&[&self.scope], None)
                    .await
                    .map_err(|e| {
                        let mut text = e.to_string();
                        let mut source = std::error::Error::source(&e);
                        while let Some(cause) = source {
                            text.push_str(&format!(": {cause}"));
                            source = cause.source();
                        }
                        AuthError::Token(text)
                    })?;
                Ok(Some(token.token))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_name_no_secret() {
        let credential = Credential::ClientSecret {
            tenant: "t".into(),
            client_id: "c".into(),
            secret: Secret::new("hunter2"),
        };
        assert!(!format!("{credential:?}").contains("hunter2"));
        assert!(!credential.describe().contains("hunter2"));
        let token = Credential::Token(Secret::new("eyJ.secret.token"));
        assert!(!format!("{token:?}").contains("eyJ"));
    }
}
