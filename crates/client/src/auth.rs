//! Where a run's bearer token comes from: none (emulators), a ready token
//! (a file or `ACG_TOKEN`), or Entra ID through azure_identity: client
//! credentials with a secret or a certificate, or a managed identity.
//!
//! A certificate credential signs its client assertion here (PS256 with an
//! `x5t#S256` thumbprint, as Entra recommends) with aws-lc-rs, the one
//! crypto stack of the build, and hands it to azure_identity's
//! client-assertion credential; no system OpenSSL is involved.
//!
//! Secrets are read from the environment or from files only, never from a
//! command-line value, and never printed: `Debug` shows where a secret
//! comes from, not what it is. Tokens are refreshed before they expire (the
//! credential's cache renews within five minutes of expiry) and once more,
//! with a new credential and so an empty cache, after a 401.

use aws_lc_rs::digest;
use aws_lc_rs::rsa::KeyPair;
use azure_core::credentials::{Secret, TokenCredential};
use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// How long a client assertion is valid (azure_identity's and MSAL's figure).
const ASSERTION_LIFETIME_SECS: u64 = 300;

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
        certificate: Arc<ClientCertificate>,
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

/// A client certificate with its private key (RSA, as Entra takes), and
/// any certificates of its chain that came in the same file.
pub struct ClientCertificate {
    /// The certificate (DER) first, then the rest of the chain.
    chain: Vec<CertificateDer<'static>>,
    key: KeyPair,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.thumbprint_sha256())
            .finish_non_exhaustive()
    }
}

impl ClientCertificate {
    /// `x5t#S256`: base64url of the SHA-256 of the certificate (DER).
    pub fn thumbprint_sha256(&self) -> String {
        base64url(digest::digest(&digest::SHA256, &self.chain[0]).as_ref())
    }

    /// A client assertion for `client_id` at the token endpoint `audience`,
    /// signed now: PS256 with the `x5t#S256` thumbprint, and with `x5c`
    /// (the chain, base64 DER) when `send_chain`.
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        send_chain: bool,
    ) -> Result<String, AuthError> {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
        header.x5t_s256 = Some(self.thumbprint_sha256());
        if send_chain {
            header.x5c = Some(
                self.chain
                    .iter()
                    .map(|cert| base64::engine::general_purpose::STANDARD.encode(cert))
                    .collect(),
            );
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        fn part<T: serde::Serialize>(value: &T) -> String {
            base64url(&serde_json::to_vec(value).expect("a JWT part serialises"))
        }
        let message = format!("{}.{}", part(&header), part(&claims));
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &aws_lc_rs::signature::RSA_PSS_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                message.as_bytes(),
                &mut signature,
            )
            .map_err(|_| AuthError::Config("cannot sign the client assertion".into()))?;
        Ok(format!("{message}.{}", base64url(&signature)))
    }
}

fn base64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Reads a client certificate: PEM with the certificate (and its chain)
/// and the private key, or PKCS#12 (`.pfx`, `.p12`) opened with `password`.
pub fn read_certificate(
    path: &PathBuf,
    password: Option<&Secret>,
) -> Result<Arc<ClientCertificate>, AuthError> {
    let bytes = std::fs::read(path).map_err(|e| {
        AuthError::Config(format!(
            "cannot read the certificate {}: {e}",
            path.display()
        ))
    })?;
    let bad = |what: String| AuthError::Config(format!("{}: {what}", path.display()));
    // PKCS#12 is DER, a SEQUENCE; PEM is text, which tools may start with
    // comments ("Bag Attributes" from `openssl pkcs12 -nodes`).
    let (chain, key) = if bytes.first() == Some(&0x30) {
        let contents = pkcs12::parse(&bytes, password.map_or("", |p| p.secret()))
            .map_err(|e| bad(format!("cannot open it as PKCS#12: {e}")))?;
        let key = KeyPair::from_der(&contents.rsa_key)
            .map_err(|e| bad(format!("the private key is not a usable RSA key: {e}")))?;
        (contents.chain, key)
    } else {
        let chain = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("no PEM certificate: {e}")))?;
        if chain.is_empty() {
            return Err(bad("no PEM certificate".into()));
        }
        let key = match PrivateKeyDer::from_pem_slice(&bytes) {
            Ok(PrivateKeyDer::Pkcs8(key)) => KeyPair::from_pkcs8(key.secret_pkcs8_der()),
            Ok(PrivateKeyDer::Pkcs1(key)) => KeyPair::from_der(key.secret_pkcs1_der()),
            Ok(_) => return Err(bad("the private key is not an RSA key".into())),
            Err(_) if bytes.windows(21).any(|w| w == b"ENCRYPTED PRIVATE KEY") => {
                return Err(bad("no PEM private key: an encrypted one is not read; give a PKCS#12 file and AZURE_CLIENT_CERTIFICATE_PASSWORD instead".into()));
            }
            Err(e) => return Err(bad(format!("no PEM private key: {e}"))),
        }
        .map_err(|e| bad(format!("the private key is not a usable RSA key: {e}")))?;
        (chain, key)
    };
    let chain = leaf_first(chain, &key).map_err(bad)?;
    Ok(Arc::new(ClientCertificate { chain, key }))
}

/// The chain with the key's certificate first: Entra would refuse an
/// assertion signed by another key than the certificate's, after a round
/// trip and with a vaguer message.
fn leaf_first(
    mut chain: Vec<CertificateDer<'static>>,
    key: &KeyPair,
) -> Result<Vec<CertificateDer<'static>>, String> {
    use aws_lc_rs::signature::KeyPair as _;
    let mut unreadable = false;
    let leaf = chain.iter().position(|certificate| {
        let public = webpki::EndEntityCert::try_from(certificate)
            .ok()
            .and_then(|parsed| {
                aws_lc_rs::rsa::PublicKey::from_der(&parsed.subject_public_key_info()).ok()
            });
        match public {
            Some(public) => public.as_ref() == key.public_key().as_ref(),
            None => {
                unreadable = true;
                false
            }
        }
    });
    match leaf {
        Some(at) => {
            let leaf = chain.remove(at);
            chain.insert(0, leaf);
            Ok(chain)
        }
        // webpki is stricter than Entra (it refuses X.509 v1, for one):
        // a certificate it cannot read is sent unchecked, Entra decides.
        None if unreadable => Ok(chain),
        None => Err("the private key is not the certificate's".into()),
    }
}

/// PKCS#12 through AWS-LC, the library under aws-lc-rs, which reads the
/// encryptions certificate stores write (PBES2 with AES, and the older
/// 3DES and RC2 ones), so the build needs no other crypto library.
mod pkcs12 {
    use aws_lc_sys as ffi;
    use rustls_pki_types::CertificateDer;
    use std::ffi::CString;
    use std::ptr;

    pub struct Contents {
        /// The RSA key, PKCS#1 DER.
        pub rsa_key: Vec<u8>,
        /// The certificate of the key first, then the others.
        pub chain: Vec<CertificateDer<'static>>,
    }

    /// Frees an AWS-LC object when dropped.
    struct Owned<T>(*mut T, unsafe extern "C" fn(*mut T));

    impl<T> Drop for Owned<T> {
        fn drop(&mut self) {
            if !self.0.is_null() {
                // SAFETY: the pointer came from AWS-LC, which allocated it
                // for us to free with this function, once.
                unsafe { (self.1)(self.0) }
            }
        }
    }

    /// The reason of AWS-LC's last error, and a clear queue.
    fn last_error() -> String {
        // SAFETY: reads and clears this thread's error queue; the buffer
        // is writable for its length and AWS-LC NUL-terminates it.
        unsafe {
            let code = ffi::ERR_get_error();
            ffi::ERR_clear_error();
            let mut buf = [0 as std::os::raw::c_char; 256];
            ffi::ERR_error_string_n(code, buf.as_mut_ptr(), buf.len());
            std::ffi::CStr::from_ptr(buf.as_ptr())
                .to_string_lossy()
                .into_owned()
        }
    }

    /// DER written by an AWS-LC `i2d_*` function that allocates its output.
    fn der(write: impl FnOnce(*mut *mut u8) -> std::os::raw::c_int) -> Result<Vec<u8>, String> {
        let mut out: *mut u8 = ptr::null_mut();
        let len = write(&mut out);
        if len <= 0 || out.is_null() {
            return Err(last_error());
        }
        // SAFETY: AWS-LC allocated `len` bytes at `out`, ours to free.
        unsafe {
            let bytes = std::slice::from_raw_parts(out, len as usize).to_vec();
            ffi::OPENSSL_free(out.cast());
            Ok(bytes)
        }
    }

    pub fn parse(bytes: &[u8], password: &str) -> Result<Contents, String> {
        let password = CString::new(password).map_err(|_| "the password has a NUL byte")?;
        let mut input = bytes.as_ptr();
        // SAFETY: `input` points to `bytes.len()` readable bytes; every
        // object AWS-LC returns is owned by an `Owned` that frees it.
        unsafe {
            let p12 = Owned(
                ffi::d2i_PKCS12(ptr::null_mut(), &mut input, bytes.len()),
                ffi::PKCS12_free,
            );
            if p12.0.is_null() {
                return Err(last_error());
            }
            let (mut key, mut cert, mut others) =
                (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
            let parsed =
                ffi::PKCS12_parse(p12.0, password.as_ptr(), &mut key, &mut cert, &mut others);
            let key = Owned(key, ffi::EVP_PKEY_free);
            let cert = Owned(cert, ffi::X509_free);
            let others: Owned<ffi::OPENSSL_STACK> = Owned(others.cast(), free_certificates);
            if parsed != 1 {
                return Err(last_error());
            }
            if key.0.is_null() || cert.0.is_null() {
                return Err("it holds no private key with its certificate".into());
            }
            if ffi::EVP_PKEY_id(key.0) != ffi::EVP_PKEY_RSA {
                return Err("the private key is not an RSA key".into());
            }
            let rsa_key = der(|out| ffi::i2d_PrivateKey(key.0, out))?;
            let mut chain = vec![CertificateDer::from(der(|out| ffi::i2d_X509(cert.0, out))?)];
            let count = if others.0.is_null() {
                0
            } else {
                ffi::OPENSSL_sk_num(others.0)
            };
            for i in 0..count {
                let other = ffi::OPENSSL_sk_value(others.0, i).cast::<ffi::X509>();
                chain.push(CertificateDer::from(der(|out| ffi::i2d_X509(other, out))?));
            }
            Ok(Contents { rsa_key, chain })
        }
    }

    /// Frees a `STACK_OF(X509)` and the certificates in it.
    unsafe extern "C" fn free_certificates(stack: *mut ffi::OPENSSL_STACK) {
        // SAFETY: `stack` holds X509 pointers that it owns.
        unsafe {
            for i in 0..ffi::OPENSSL_sk_num(stack) {
                ffi::X509_free(ffi::OPENSSL_sk_value(stack, i).cast());
            }
            ffi::OPENSSL_sk_free(stack);
        }
    }
}

/// Signs a fresh client assertion for each token request.
struct CertificateAssertion {
    client_id: String,
    /// The token endpoint, the assertion's audience.
    endpoint: String,
    certificate: Arc<ClientCertificate>,
    send_chain: bool,
}

impl fmt::Debug for CertificateAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAssertion")
            .field("client_id", &self.client_id)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl azure_identity::ClientAssertion for CertificateAssertion {
    async fn secret(
        &self,
        _options: Option<azure_core::http::ClientMethodOptions<'_>>,
    ) -> azure_core::Result<String> {
        self.certificate
            .assertion(&self.client_id, &self.endpoint, self.send_chain)
            .map_err(|e| {
                azure_core::Error::with_message(
                    azure_core::error::ErrorKind::Credential,
                    e.to_string(),
                )
            })
    }
}

/// `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN`, read as azure_identity reads it:
/// `1` or `true` sends the chain (`x5c`) for subject name/issuer
/// authentication.
fn send_certificate_chain() -> bool {
    std::env::var("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN")
        .is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
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
                certificate,
            } => {
                // The endpoint azure_identity posts to, which the assertion
                // must name as its audience.
                let endpoint = url::Url::parse(&self.authority)
                    .and_then(|authority| authority.join(&format!("/{tenant}/oauth2/v2.0/token")))
                    .map_err(|e| {
                        AuthError::Config(format!(
                            "the authority {} and tenant {tenant} make no token URL: {e}",
                            self.authority
                        ))
                    })?;
                azure_identity::ClientAssertionCredential::new(
                    tenant.clone(),
                    client_id.clone(),
                    CertificateAssertion {
                        client_id: client_id.clone(),
                        endpoint: endpoint.to_string(),
                        certificate: certificate.clone(),
                        send_chain: send_certificate_chain(),
                    },
                    Some(azure_identity::ClientAssertionCredentialOptions {
                        client_options: client_options(),
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

    #[test]
    fn assertions_are_what_entra_checks() {
        use rcgen::{CertificateParams, KeyPair, PKCS_RSA_SHA256};
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate_for(&PKCS_RSA_SHA256).unwrap();
        let cert = CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        // A comment before the PEM, a CA-less chain, key last.
        let path = dir.path().join("client.pem");
        let pem = format!("Bag Attributes\n{}{}", cert.pem(), key.serialize_pem());
        std::fs::write(&path, pem).unwrap();
        let certificate = read_certificate(&path, None).unwrap();
        let endpoint = "https://login.example/tenant/oauth2/v2.0/token";
        let assertion = certificate.assertion("app", endpoint, true).unwrap();

        let header = jsonwebtoken::decode_header(&assertion).unwrap();
        assert_eq!(header.alg, jsonwebtoken::Algorithm::PS256);
        let sha256 = digest::digest(&digest::SHA256, cert.der());
        assert_eq!(
            header.x5t_s256.as_deref(),
            Some(&*base64url(sha256.as_ref()))
        );
        assert_eq!(header.x5c_der().unwrap(), Some(vec![cert.der().to_vec()]));
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::PS256);
        validation.set_audience(&[endpoint]);
        validation.set_issuer(&["app"]);
        validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            &assertion,
            &jsonwebtoken::DecodingKey::from_rsa_der(key.public_key_raw()),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["sub"], "app");
        assert!(claims["jti"].as_str().is_some_and(|j| j.len() == 36));
        let lifetime = claims["exp"].as_u64().unwrap() - claims["nbf"].as_u64().unwrap();
        assert_eq!(lifetime, ASSERTION_LIFETIME_SECS);
        let without_chain = certificate.assertion("app", endpoint, false).unwrap();
        assert!(jsonwebtoken::decode_header(&without_chain)
            .unwrap()
            .x5c
            .is_none());
        assert!(!format!("{certificate:?}").contains("PRIVATE"));
    }
}
