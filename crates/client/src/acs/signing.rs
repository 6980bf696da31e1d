//! Access-key authentication of Azure Communication Services: the
//! connection string that carries the key, and the HMAC-SHA256 signature
//! of each request (`x-ms-date`, `x-ms-content-sha256` and the
//! `Authorization` header built from them). The emulator checks requests
//! with the same pieces.
//!
//! The key is kept as [`SecretBytes`], whose `Debug` and `Display` do not
//! show it, and no error message quotes it.

use crate::RequestSigner;
use azure_core::credentials::SecretBytes;
use base64::Engine;
use reqwest::header::HeaderValue;
use reqwest::Method;
use std::fmt;

/// The headers that are signed, in the order signed.
pub const SIGNED_HEADERS: &str = "x-ms-date;host;x-ms-content-sha256";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConnectionStringError {
    #[error("the connection string has no {0}= part")]
    Missing(&'static str),
    #[error("the connection string's endpoint '{0}' is not an http(s) URL")]
    Endpoint(String),
    #[error("the connection string's accesskey is not base64")]
    AccessKey,
    #[error("the connection string has a part without '=': expected endpoint=URL;accesskey=KEY")]
    Malformed,
}

/// `endpoint=https://<resource>.communication.azure.com/;accesskey=<base64>`.
#[derive(Clone)]
pub struct ConnectionString {
    pub endpoint: url::Url,
    pub access_key: SecretBytes,
}

impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionString")
            .field("endpoint", &self.endpoint.as_str())
            .field("access_key", &"(hidden)")
            .finish()
    }
}

impl ConnectionString {
    /// Parses the connection string; the part names are case-insensitive
    /// and the endpoint is taken as is (so `http://127.0.0.1:PORT` works).
    pub fn parse(text: &str) -> Result<ConnectionString, ConnectionStringError> {
        let mut endpoint = None;
        let mut key = None;
        for part in text
            .trim()
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (name, value) = part
                .split_once('=')
                .ok_or(ConnectionStringError::Malformed)?;
            match name.trim().to_ascii_lowercase().as_str() {
                "endpoint" => endpoint = Some(value.trim()),
                "accesskey" => key = Some(value.trim()),
                _ => {}
            }
        }
        let endpoint = endpoint.ok_or(ConnectionStringError::Missing("endpoint"))?;
        let key = key.ok_or(ConnectionStringError::Missing("accesskey"))?;
        let url = url::Url::parse(endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| ConnectionStringError::Endpoint(endpoint.to_owned()))?;
        let access_key = base64::engine::general_purpose::STANDARD
            .decode(key)
            .ok()
            .filter(|k| !k.is_empty())
            .ok_or(ConnectionStringError::AccessKey)?;
        Ok(ConnectionString {
            endpoint: url,
            access_key: SecretBytes::new(access_key),
        })
    }
}

/// Base64 of the SHA-256 of `body`.
pub fn content_hash(body: &[u8]) -> String {
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body);
    base64::engine::general_purpose::STANDARD.encode(hash)
}

/// `VERB\npath-and-query\ndate;host;content-hash`.
pub fn string_to_sign(
    method: &str,
    path_and_query: &str,
    date: &str,
    host: &str,
    content_hash: &str,
) -> String {
    format!("{method}\n{path_and_query}\n{date};{host};{content_hash}")
}

/// Base64 of the HMAC-SHA256 of `string_to_sign` keyed with `key`.
pub fn signature(key: &[u8], string_to_sign: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let tag = aws_lc_rs::hmac::sign(&key, string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag)
}

/// The `Authorization` header value for a signature.
pub fn authorization(signature: &str) -> String {
    format!("HMAC-SHA256 SignedHeaders={SIGNED_HEADERS}&Signature={signature}")
}

/// The host as signed: with the port when it is not the scheme's default,
/// as the `Host` header carries it.
pub fn signed_host(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// The path and query as sent on the request line.
pub fn path_and_query(url: &url::Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// Signs each attempt with the access key, dated now.
pub struct AccessKeySigner {
    key: SecretBytes,
}

impl AccessKeySigner {
    pub fn new(key: SecretBytes) -> AccessKeySigner {
        AccessKeySigner { key }
    }

    /// The three headers for a request at `date` (an HTTP date).
    pub fn headers_at(
        &self,
        method: &Method,
        url: &url::Url,
        body: &[u8],
        date: &str,
    ) -> [(&'static str, String); 3] {
        let hash = content_hash(body);
        let text = string_to_sign(
            method.as_str(),
            &path_and_query(url),
            date,
            &signed_host(url),
            &hash,
        );
        [
            ("x-ms-date", date.to_owned()),
            ("x-ms-content-sha256", hash),
            (
                "authorization",
                authorization(&signature(self.key.bytes(), &text)),
            ),
        ]
    }
}

impl RequestSigner for AccessKeySigner {
    fn sign(
        &self,
        method: &Method,
        url: &url::Url,
        body: &[u8],
    ) -> Vec<(&'static str, HeaderValue)> {
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        self.headers_at(method, url, body, &date)
            .into_iter()
            .filter_map(|(name, value)| {
                let mut value = HeaderValue::from_str(&value).ok()?;
                value.set_sensitive(name == "authorization");
                Some((name, value))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The expected values were computed apart from this code, with
    // Python's hmac and hashlib, from the documented recipe.
    const KEY: &str = "YW4gZW11bGF0b3IgYWNjZXNzIGtleSwgMzIgYnl0ZXM=";
    const BODY: &str = r#"{"phoneNumberType":"tollFree","assignmentType":"application","capabilities":{"calling":"none","sms":"inbound+outbound"},"quantity":1}"#;

    #[test]
    fn signs_as_documented() {
        let parsed = ConnectionString::parse(&format!(
            "endpoint=https://contoso.communication.azure.com/;accesskey={KEY}"
        ))
        .unwrap();
        let signer = AccessKeySigner::new(parsed.access_key);
        let url = parsed
            .endpoint
            .join("/availablePhoneNumbers/countries/US/:search?api-version=2022-12-01")
            .unwrap();
        let [date, hash, authorization] = signer.headers_at(
            &Method::POST,
            &url,
            BODY.as_bytes(),
            "Sat, 21 Nov 2026 10:00:00 GMT",
        );
        assert_eq!(date.1, "Sat, 21 Nov 2026 10:00:00 GMT");
        assert_eq!(hash.1, "4/hFIxcYwXqhguSdYcV2TsQR1Tf8cOFyLfVXdBF8OBU=");
        assert_eq!(
            authorization.1,
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=quymMlMIGcfnrYbjXq12QvdiWxdL37xqI3XSoKHVay0="
        );
        assert_eq!(
            content_hash(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn hosts_keep_their_port() {
        let url = url::Url::parse("http://127.0.0.1:8080/a?b=c").unwrap();
        assert_eq!(signed_host(&url), "127.0.0.1:8080");
        assert_eq!(path_and_query(&url), "/a?b=c");
        let url = url::Url::parse("https://x.communication.azure.com:443/a").unwrap();
        assert_eq!(signed_host(&url), "x.communication.azure.com");
    }

    #[test]
    fn connection_strings() {
        let parsed =
            ConnectionString::parse(&format!(" Endpoint=http://127.0.0.1:9;AccessKey={KEY}; "))
                .unwrap();
        assert_eq!(parsed.endpoint.as_str(), "http://127.0.0.1:9/");
        assert!(!format!("{parsed:?}").contains(KEY));
        assert_eq!(
            ConnectionString::parse("endpoint=https://x").unwrap_err(),
            ConnectionStringError::Missing("accesskey")
        );
        assert_eq!(
            ConnectionString::parse("endpoint=x;accesskey=AAAA").unwrap_err(),
            ConnectionStringError::Endpoint("x".into())
        );
        let bad = ConnectionString::parse("endpoint=https://x;accesskey=not base64!").unwrap_err();
        assert_eq!(bad, ConnectionStringError::AccessKey);
        assert!(!bad.to_string().contains("not base64!"));
    }
}
