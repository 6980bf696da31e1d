//! Entra ID as far as the Provisioning API sees it: a client-credentials
//! token endpoint (`POST /{tenant}/oauth2/v2.0/token`) for the clients the
//! emulator was given, the OpenID configuration and signing keys MSAL-based
//! clients read first, RS256-signed JWTs with `roles`, `aud` and `exp`, and
//! the role each operation needs.
//!
//! Client assertions are checked as Entra checks them: RS256 with an `x5t`
//! (SHA-1) thumbprint, or PS256 with an `x5t#S256` (SHA-256) thumbprint,
//! signed by the key of the certificate registered for the client.

use super::error::ApiError;
use axum::http::{Method, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

pub const ROLE_ADMIN: &str = "ProvisioningAPI.Admin";
pub const ROLE_READ: &str = "ProvisioningAPI.Read";
pub const ROLE_WRITE: &str = "ProvisioningAPI.Write";
pub const ROLE_DELETE: &str = "ProvisioningAPI.Delete";

/// The audience of tokens for the Provisioning API: the documented scope
/// without `/.default`.
pub const DEFAULT_AUDIENCE: &str = "https://func-voiceservice-rp-prod-eastuseuap.azurewebsites.net";

/// A client the token endpoint knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: String,
    /// The client secret (test credentials for the emulator only).
    pub secret: Option<String>,
    /// A PEM certificate whose key signs the client's assertions.
    pub certificate: Option<PathBuf>,
    pub roles: Vec<String>,
}

impl Client {
    /// Parses `ID:SECRET:ROLE[,ROLE]`. A role may be given without its
    /// `ProvisioningAPI.` prefix.
    pub fn parse_secret(spec: &str) -> Result<Client, String> {
        let mut parts = spec.splitn(3, ':');
        let (Some(id), Some(secret), Some(roles)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("'{spec}': expected ID:SECRET:ROLE[,ROLE]"));
        };
        Ok(Client {
            id: id.to_owned(),
            secret: Some(secret.to_owned()),
            certificate: None,
            roles: parse_roles(roles)?,
        })
    }

    /// Parses `HEADER:ROLE[,ROLE]`: the managed identity's secret header.
    pub fn parse_managed_identity(spec: &str) -> Result<Client, String> {
        let (header, roles) = spec
            .split_once(':')
            .ok_or_else(|| format!("'{spec}': expected HEADER:ROLE[,ROLE]"))?;
        Ok(Client {
            id: "managed-identity".to_owned(),
            secret: Some(header.to_owned()),
            certificate: None,
            roles: parse_roles(roles)?,
        })
    }

    /// Parses `ID:CERT.pem:ROLE[,ROLE]`.
    pub fn parse_certificate(spec: &str) -> Result<Client, String> {
        let mut parts = spec.splitn(3, ':');
        let (Some(id), Some(cert), Some(roles)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("'{spec}': expected ID:CERTIFICATE.pem:ROLE[,ROLE]"));
        };
        Ok(Client {
            id: id.to_owned(),
            secret: None,
            certificate: Some(PathBuf::from(cert)),
            roles: parse_roles(roles)?,
        })
    }
}

fn parse_roles(text: &str) -> Result<Vec<String>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|role| {
            let full = if role.starts_with("ProvisioningAPI.") {
                role.to_owned()
            } else {
                format!("ProvisioningAPI.{role}")
            };
            let known = [ROLE_ADMIN, ROLE_READ, ROLE_WRITE, ROLE_DELETE];
            let user = known.iter().any(|k| full == format!("{k}User"));
            if known.contains(&full.as_str()) || user {
                Ok(full)
            } else {
                Err(format!(
                    "unknown role '{role}' (Admin, Read, Write, Delete, or their ...User twins)"
                ))
            }
        })
        .collect()
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub aud: String,
    pub iss: String,
    pub sub: String,
    pub appid: String,
    pub tid: String,
    pub roles: Vec<String>,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
}

/// Signs and checks tokens.
pub struct Issuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The public half of the signing key, as a JSON Web Key.
    jwk: serde_json::Value,
    key_id: String,
    lifetime: Duration,
    audience: String,
    clients: HashMap<String, Client>,
    /// Certificates of certificate clients.
    client_keys: HashMap<String, ClientCertificate>,
    /// The managed identity's secret header and roles.
    managed_identity: Option<(String, Vec<String>)>,
}

/// What a client assertion is checked against.
struct ClientCertificate {
    /// SubjectPublicKeyInfo (DER).
    public_key: Vec<u8>,
    /// `x5t`: base64url of the SHA-1 of the certificate (DER).
    sha1: String,
    /// `x5t#S256`: base64url of its SHA-256.
    sha256: String,
}

fn sha256(bytes: &[u8]) -> aws_lc_rs::digest::Digest {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The form of a client-credentials token request.
#[derive(Debug, Deserialize)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_assertion: Option<String>,
    pub client_assertion_type: Option<String>,
    pub scope: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub token_type: &'static str,
    pub expires_in: u64,
    pub ext_expires_in: u64,
    pub access_token: String,
}

/// The App Service managed identity answer (`expires_on` in Unix seconds,
/// as a string).
#[derive(Debug, Serialize)]
pub struct ManagedIdentityToken {
    pub access_token: String,
    pub expires_on: String,
    pub resource: String,
    pub token_type: &'static str,
}

/// Entra's error shape: `{ "error": "invalid_client", "error_description": "..." }`.
#[derive(Debug, Serialize)]
pub struct TokenError {
    pub error: &'static str,
    pub error_description: String,
}

impl Issuer {
    pub fn new(clients: &[Client], lifetime: Duration, audience: &str) -> Result<Issuer, String> {
        Issuer::with_managed_identity(clients, None, lifetime, audience)
    }

    /// With a managed identity: `Client::secret` is its secret header.
    pub fn with_managed_identity(
        clients: &[Client],
        managed_identity: Option<&Client>,
        lifetime: Duration,
        audience: &str,
    ) -> Result<Issuer, String> {
        let mut client_keys = HashMap::new();
        for client in clients {
            if let Some(path) = &client.certificate {
                client_keys.insert(client.id.clone(), read_certificate(path)?);
            }
        }
        // A fresh RSA key per run: tokens from an earlier run are refused,
        // as after a key rollover.
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
            .map_err(|e| format!("cannot make the token signing key: {e}"))?;
        // The raw public key is PKCS#1 (RSAPublicKey), as JWKs and
        // jsonwebtoken take it.
        let public = aws_lc_rs::rsa::PublicKey::from_der(key.public_key_raw())
            .map_err(|e| format!("cannot read the token signing key: {e}"))?;
        let modulus = public.modulus().big_endian_without_leading_zero();
        let key_id = base64url(&sha256(modulus).as_ref()[..20]);
        let jwk = serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": key_id,
            "n": base64url(modulus),
            "e": base64url(public.exponent().big_endian_without_leading_zero()),
        });
        Ok(Issuer {
            encoding: EncodingKey::from_rsa_pem(key.serialize_pem().as_bytes())
                .map_err(|e| e.to_string())?,
            decoding: DecodingKey::from_rsa_der(key.public_key_raw()),
            jwk,
            key_id,
            lifetime,
            audience: audience.trim_end_matches('/').to_owned(),
            clients: clients.iter().map(|c| (c.id.clone(), c.clone())).collect(),
            client_keys,
            managed_identity: managed_identity
                .map(|m| (m.secret.clone().unwrap_or_default(), m.roles.clone())),
        })
    }

    /// `/{tenant}/discovery/v2.0/keys`: the keys tokens are signed with.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.jwk] })
    }

    /// The OpenID configuration of `tenant` for an emulator reached at
    /// `base` (`https://host:port`), v2.0 or (with `v1`) the v1 endpoints.
    pub fn openid_configuration(&self, base: &str, tenant: &str, v1: bool) -> serde_json::Value {
        let (version, issuer) = if v1 {
            ("", format!("https://sts.windows.net/{tenant}/"))
        } else {
            ("/v2.0", format!("{base}/{tenant}/v2.0"))
        };
        serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{base}/{tenant}/oauth2{version}/authorize"),
            "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
            "device_authorization_endpoint": format!("{base}/{tenant}/oauth2{version}/devicecode"),
            "end_session_endpoint": format!("{base}/{tenant}/oauth2{version}/logout"),
            "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "grant_types_supported": ["client_credentials"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "roles", "appid"],
            "tenant_region_scope": "WW",
            "cloud_instance_name": "microsoftonline.com",
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
        })
    }

    /// Answers a token request; `endpoint` is the token URL the request was
    /// sent to (what a client assertion's `aud` must be).
    pub fn token(
        &self,
        tenant: &str,
        request: &TokenRequest,
        endpoint: &str,
    ) -> Result<TokenResponse, (StatusCode, TokenError)> {
        let fail = |status, error, description: String| {
            Err((
                status,
                TokenError {
                    error,
                    error_description: description,
                },
            ))
        };
        if request.grant_type.as_deref() != Some("client_credentials") {
            return fail(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "AADSTS70003: only client_credentials is supported".into(),
            );
        }
        let Some(client_id) = request.client_id.as_deref() else {
            return fail(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "AADSTS900144: client_id is required".into(),
            );
        };
        let Some(client) = self.clients.get(client_id) else {
            return fail(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                format!(
                    "AADSTS700016: application '{client_id}' was not found in tenant '{tenant}'"
                ),
            );
        };
        let scope = request.scope.as_deref().unwrap_or("");
        let Some(resource) = scope.strip_suffix("/.default") else {
            return fail(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                format!("AADSTS1002012: scope '{scope}' must end with /.default"),
            );
        };
        match (&request.client_secret, &request.client_assertion) {
            (Some(secret), _) if client.secret.as_deref() == Some(secret.as_str()) => {}
            (Some(_), _) => {
                return fail(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "AADSTS7000215: Invalid client secret provided.".into(),
                );
            }
            (None, Some(assertion)) => self
                .check_assertion(client_id, assertion, endpoint)
                .map_err(|description| {
                    (
                        StatusCode::UNAUTHORIZED,
                        TokenError {
                            error: "invalid_client",
                            error_description: description,
                        },
                    )
                })?,
            (None, None) => {
                return fail(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "AADSTS7000216: client_secret or client_assertion is required".into(),
                );
            }
        }
        let (access_token, expires_in) = self.sign(tenant, client_id, &client.roles, resource)?;
        Ok(TokenResponse {
            token_type: "Bearer",
            expires_in,
            ext_expires_in: expires_in,
            access_token,
        })
    }

    /// A signed token for `client_id` with `roles`, for `resource`; and
    /// its lifetime in seconds.
    fn sign(
        &self,
        tenant: &str,
        client_id: &str,
        roles: &[String],
        resource: &str,
    ) -> Result<(String, u64), (StatusCode, TokenError)> {
        let now = super::store::now_ms() / 1000;
        let lifetime = self.lifetime.as_secs().max(1);
        let claims = Claims {
            aud: resource.trim_end_matches('/').to_owned(),
            iss: format!("https://sts.windows.net/{tenant}/"),
            sub: client_id.to_owned(),
            appid: client_id.to_owned(),
            tid: tenant.to_owned(),
            roles: roles.to_vec(),
            iat: now,
            nbf: now,
            exp: now + lifetime,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.key_id.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(|e| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                TokenError {
                    error: "server_error",
                    error_description: e.to_string(),
                },
            )
        })?;
        Ok((token, lifetime))
    }

    /// The App Service managed identity endpoint: a token for `resource`
    /// when `header` is the identity's secret header.
    pub fn managed_identity_token(
        &self,
        header: Option<&str>,
        resource: &str,
    ) -> Result<ManagedIdentityToken, (StatusCode, TokenError)> {
        let Some((secret, roles)) = &self.managed_identity else {
            return Err((
                StatusCode::NOT_FOUND,
                TokenError {
                    error: "not_found",
                    error_description: "the emulator has no managed identity (--managed-identity)"
                        .into(),
                },
            ));
        };
        if header != Some(secret.as_str()) {
            return Err((
                StatusCode::UNAUTHORIZED,
                TokenError {
                    error: "invalid_request",
                    error_description: "the X-IDENTITY-HEADER is missing or wrong".into(),
                },
            ));
        }
        if resource.is_empty() {
            return Err((
                StatusCode::BAD_REQUEST,
                TokenError {
                    error: "invalid_request",
                    error_description: "resource is required".into(),
                },
            ));
        }
        let (access_token, lifetime) = self.sign("managed", "managed-identity", roles, resource)?;
        Ok(ManagedIdentityToken {
            access_token,
            expires_on: (super::store::now_ms() / 1000 + lifetime).to_string(),
            resource: resource.to_owned(),
            token_type: "Bearer",
        })
    }

    fn check_assertion(
        &self,
        client_id: &str,
        assertion: &str,
        endpoint: &str,
    ) -> Result<(), String> {
        let certificate = self.client_keys.get(client_id).ok_or_else(|| {
            format!("AADSTS700027: client '{client_id}' has no certificate registered")
        })?;
        let header = jsonwebtoken::decode_header(assertion)
            .map_err(|e| format!("AADSTS700027: the client assertion is not a JWT: {e}"))?;
        // Entra pairs the algorithm with the thumbprint: PS256 with the
        // SHA-256 one, RS256 with the SHA-1 one (or either, for RS256).
        let (given, expected, name) = match header.alg {
            Algorithm::PS256 => (
                header.x5t_s256.as_deref(),
                &certificate.sha256,
                "x5t#S256",
            ),
            Algorithm::RS256 => match &header.x5t_s256 {
                Some(s256) if header.x5t.is_none() => {
                    (Some(s256.as_str()), &certificate.sha256, "x5t#S256")
                }
                _ => (
                    header.x5t.as_deref(),
                    &certificate.sha1,
                    "x5t",
                ),
            },
            other => {
                return Err(format!(
                    "AADSTS5002730: InvalidAlgorithm: client assertions must be signed with RS256 or PS256, not {other:?}"
                ))
            }
        };
        match given {
            // Clients write thumbprints in base64url or plain base64.
            Some(given)
                if given
                    .trim_end_matches('=')
                    .replace('+', "-")
                    .replace('/', "_")
                    == *expected => {}
            Some(given) => {
                return Err(format!(
                    "AADSTS700027: the assertion's {name} thumbprint {given} is not that of the certificate registered for '{client_id}'"
                ))
            }
            None => {
                return Err(format!(
                    "AADSTS700027: a {:?} client assertion needs an {name} thumbprint header",
                    header.alg
                ))
            }
        }
        let key = DecodingKey::from_rsa_der(&certificate.public_key);
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[endpoint]);
        validation.set_issuer(&[client_id]);
        validation.leeway = 60;
        #[derive(Deserialize)]
        struct Assertion {
            sub: String,
        }
        let data =
            jsonwebtoken::decode::<Assertion>(assertion, &key, &validation).map_err(|e| {
                format!("AADSTS700027: client assertion failed signature or claim validation: {e}")
            })?;
        if data.claims.sub != client_id {
            return Err("AADSTS700027: assertion subject is not the client".into());
        }
        Ok(())
    }

    /// Checks a bearer token and the role the operation needs.
    pub fn authorize(
        &self,
        authorization: Option<&str>,
        method: &Method,
        action: Option<&str>,
    ) -> Result<Claims, ApiError> {
        let claims = self.verify(authorization, &self.audience)?;
        let needed = required_role(method, action);
        let has = |role: &str| {
            claims
                .roles
                .iter()
                .any(|r| r == role || *r == format!("{role}User"))
        };
        if has(ROLE_ADMIN) || has(needed) {
            Ok(claims)
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "AuthorizationFailed",
                format!("the client '{}' lacks the role {needed} (or {ROLE_ADMIN}) this operation needs", claims.appid),
            ))
        }
    }

    /// Checks a bearer token this issuer signed for `audience`.
    pub fn verify(&self, authorization: Option<&str>, audience: &str) -> Result<Claims, ApiError> {
        let unauthorized = |code: &str, message: String| {
            ApiError::new(StatusCode::UNAUTHORIZED, code, message).header(
                axum::http::header::WWW_AUTHENTICATE,
                "Bearer error=\"invalid_token\"",
            )
        };
        let token = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .ok_or_else(|| unauthorized("Unauthorized", "missing bearer token".into()))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[audience]);
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => unauthorized(
                    "ExpiredAuthenticationToken",
                    "the access token has expired".into(),
                ),
                jsonwebtoken::errors::ErrorKind::InvalidAudience => unauthorized(
                    "InvalidAuthenticationTokenAudience",
                    format!("the token's audience is not {audience}"),
                ),
                _ => unauthorized(
                    "InvalidAuthenticationToken",
                    format!("the access token is invalid: {e}"),
                ),
            })?
            .claims;
        Ok(claims)
    }
}

/// A client's certificate (PEM) and its thumbprints.
fn read_certificate(path: &std::path::Path) -> Result<ClientCertificate, String> {
    use rustls_pki_types::{pem::PemObject, CertificateDer};
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let cert = CertificateDer::from_pem_slice(&pem)
        .map_err(|e| format!("{}: not a PEM certificate: {e}", path.display()))?;
    let public_key = webpki::EndEntityCert::try_from(&cert)
        .map_err(|e| format!("{}: not a usable certificate: {e}", path.display()))?
        .subject_public_key_info()
        .to_vec();
    let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert);
    Ok(ClientCertificate {
        public_key,
        sha1: base64url(sha1.as_ref()),
        sha256: base64url(sha256(&cert).as_ref()),
    })
}

/// The role an operation needs: GET and the capability queries read, PUT,
/// PATCH and the batch create/update write, DELETE and the batch delete
/// delete.
pub fn required_role(method: &Method, action: Option<&str>) -> &'static str {
    match (method.as_str(), action) {
        ("GET" | "HEAD", _) => ROLE_READ,
        ("DELETE", _) | ("POST", Some("deleteNumbers")) => ROLE_DELETE,
        ("POST", Some("getTeamsCapabilityPlans" | "getTeamsAvailableCapabilities")) => ROLE_READ,
        _ => ROLE_WRITE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_specs() {
        let c = Client::parse_secret("app:s3cret:Read,ProvisioningAPI.Write").unwrap();
        assert_eq!(c.roles, vec![ROLE_READ, ROLE_WRITE]);
        assert!(Client::parse_secret("app:s3cret:Root").is_err());
        assert!(Client::parse_secret("app").is_err());
        assert_eq!(
            Client::parse_secret("a:b:AdminUser").unwrap().roles,
            vec!["ProvisioningAPI.AdminUser"]
        );
    }

    #[test]
    fn roles_by_operation() {
        assert_eq!(required_role(&Method::GET, None), ROLE_READ);
        assert_eq!(
            required_role(&Method::POST, Some("createOrUpdateNumbers")),
            ROLE_WRITE
        );
        assert_eq!(
            required_role(&Method::POST, Some("deleteNumbers")),
            ROLE_DELETE
        );
        assert_eq!(required_role(&Method::PATCH, None), ROLE_WRITE);
    }

    #[test]
    fn issue_and_authorize() {
        let clients = vec![Client::parse_secret("app:pw:Read").unwrap()];
        let issuer = Issuer::new(&clients, Duration::from_secs(60), DEFAULT_AUDIENCE).unwrap();
        let request = TokenRequest {
            grant_type: Some("client_credentials".into()),
            client_id: Some("app".into()),
            client_secret: Some("pw".into()),
            client_assertion: None,
            client_assertion_type: None,
            scope: Some(format!("{DEFAULT_AUDIENCE}/.default")),
        };
        let token = issuer.token("t", &request, "x").unwrap().access_token;
        let header = format!("Bearer {token}");
        assert!(issuer.authorize(Some(&header), &Method::GET, None).is_ok());
        let err = issuer
            .authorize(Some(&header), &Method::PUT, None)
            .unwrap_err();
        assert_eq!(err.status, StatusCode::FORBIDDEN);
        let err = issuer.authorize(None, &Method::GET, None).unwrap_err();
        assert_eq!(err.status, StatusCode::UNAUTHORIZED);
        let bad = TokenRequest {
            client_secret: Some("nope".into()),
            ..request
        };
        assert_eq!(
            issuer.token("t", &bad, "x").unwrap_err().0,
            StatusCode::UNAUTHORIZED
        );
    }
}
