//! One classification of what can go wrong with a request, and one wording
//! for each: what the operator can do about it.
//!
//! [`ServiceError::classify`] is the only place that turns an answer (its
//! status and the service's error body) or a transport failure into a
//! failure; every service operation returns what it decided.

use super::transport::{ApiResponse, ClientError};
use crate::model::ErrorDetail;
use reqwest::StatusCode;

/// What the service said when it did not do what was asked.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: StatusCode,
    /// `x-ms-error-code`, else the body's code.
    pub code: Option<String>,
    /// The service's error body, when it sent one.
    pub error: Option<ErrorDetail>,
    /// The `x-ms-client-request-id` of the attempt that got this answer.
    pub request_id: String,
}

impl Refusal {
    pub fn from_response(response: &ApiResponse) -> Refusal {
        Refusal {
            status: response.status,
            code: response.error_code(),
            error: response.error(),
            request_id: response.request_id.clone(),
        }
    }

    pub fn message(&self) -> Option<&str> {
        self.error.as_ref().map(|e| e.message.as_str())
    }

    pub fn target(&self) -> Option<&str> {
        self.error.as_ref().and_then(|e| e.target.as_deref())
    }

    /// The code and message that best explain a refusal of one item: the
    /// first detail's, else the error's, else the bare code.
    pub fn explain(&self) -> (Option<String>, Option<String>) {
        match &self.error {
            Some(error) => match error.details.first() {
                Some(detail) => (Some(detail.code.clone()), Some(detail.message.clone())),
                None => (Some(error.code.clone()), Some(error.message.clone())),
            },
            None => (self.code.clone(), None),
        }
    }

    /// `403 AuthorizationFailed: message (request id)`.
    fn summary(&self) -> String {
        let mut text = self.status.as_u16().to_string();
        if let Some(code) = &self.code {
            text.push(' ');
            text.push_str(code);
        }
        if let Some(message) = self.message().filter(|m| !m.is_empty()) {
            text.push_str(": ");
            text.push_str(message);
        }
        text.push_str(&format!(" (request {})", self.request_id));
        text
    }

    /// A 403 for the credential (a role it lacks) rather than for the
    /// machine (an address not on the allowlist).
    fn is_missing_role(&self) -> bool {
        self.code.as_deref() == Some("AuthorizationFailed")
            || self.message().is_some_and(|m| m.contains("role"))
    }
}

/// Why a service operation did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("the service refused the credential ({}); grant the application the ProvisioningAPI role this operation needs (ProvisioningAPI.Read, .Write or .Delete, or .Admin for all)", .0.summary())]
    MissingRole(Box<Refusal>),
    #[error("the service refused this machine ({}); add this machine's address to the gateway's Provisioning API IP allowlist", .0.summary())]
    IpNotAllowed(Box<Refusal>),
    #[error("the service asks for a credential and none was sent ({}); set up one: an Entra ID application, a managed identity or a token", .0.summary())]
    NotAuthenticated(Box<Refusal>),
    #[error("still throttled after every retry ({}); lower the request rate or try again later", .0.summary())]
    Throttled(Box<Refusal>),
    #[error("not found ({})", .0.summary())]
    NotFound(Box<Refusal>),
    #[error("conflict ({})", .0.summary())]
    Conflict(Box<Refusal>),
    #[error("changed since it was read ({}); read it again and retry", .0.summary())]
    PreconditionFailed(Box<Refusal>),
    #[error("the service refused the request ({})", .0.summary())]
    BadRequest(Box<Refusal>),
    #[error("the service answered {}", .0.summary())]
    Failed(Box<Refusal>),
    /// No answer worth classifying: the transport's own failure (no
    /// credential, no answer after the retries, a body that is not JSON,
    /// a stop).
    #[error(transparent)]
    Client(#[from] ClientError),
}

impl ServiceError {
    /// The one classification: a successful answer passes, anything else
    /// becomes the failure it is.
    pub fn classify(sent: Result<ApiResponse, ClientError>) -> Result<ApiResponse, ServiceError> {
        let response = sent?;
        if response.status.is_success() {
            return Ok(response);
        }
        let refusal = Box::new(Refusal::from_response(&response));
        Err(match refusal.status {
            StatusCode::FORBIDDEN if refusal.is_missing_role() => {
                ServiceError::MissingRole(refusal)
            }
            StatusCode::FORBIDDEN => ServiceError::IpNotAllowed(refusal),
            StatusCode::UNAUTHORIZED => ServiceError::NotAuthenticated(refusal),
            StatusCode::TOO_MANY_REQUESTS => ServiceError::Throttled(refusal),
            StatusCode::NOT_FOUND => ServiceError::NotFound(refusal),
            StatusCode::CONFLICT => ServiceError::Conflict(refusal),
            StatusCode::PRECONDITION_FAILED => ServiceError::PreconditionFailed(refusal),
            StatusCode::BAD_REQUEST => ServiceError::BadRequest(refusal),
            _ => ServiceError::Failed(refusal),
        })
    }

    /// The service's answer, when it answered.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            ServiceError::MissingRole(r)
            | ServiceError::IpNotAllowed(r)
            | ServiceError::NotAuthenticated(r)
            | ServiceError::Throttled(r)
            | ServiceError::NotFound(r)
            | ServiceError::Conflict(r)
            | ServiceError::PreconditionFailed(r)
            | ServiceError::BadRequest(r)
            | ServiceError::Failed(r) => Some(r),
            _ => None,
        }
    }

    /// Whether every other request of the run would meet it too, so the
    /// run should stop rather than fail item after item.
    pub fn stops_the_run(&self) -> bool {
        matches!(
            self,
            ServiceError::MissingRole(_)
                | ServiceError::IpNotAllowed(_)
                | ServiceError::Client(
                    ClientError::Unauthorized { .. }
                        | ClientError::Auth(_)
                        | ClientError::Config(_)
                )
        )
    }

    /// Whether the service answered (a refusal, or a body that was not the
    /// expected JSON) rather than the request going unanswered.
    pub fn answered(&self) -> bool {
        self.refusal().is_some() || matches!(self, ServiceError::Client(ClientError::Decode { .. }))
    }

    /// The request id to quote to support, when there is one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ServiceError::Client(
                ClientError::Unauthorized { request_id, .. }
                | ClientError::Transport { request_id, .. }
                | ClientError::Decode { request_id, .. },
            ) => Some(request_id),
            other => other.refusal().map(|r| r.request_id.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    fn answer(status: u16, body: &str) -> Result<ApiResponse, ClientError> {
        Ok(ApiResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: bytes::Bytes::from(body.to_owned()),
            request_id: "r-1".into(),
            attempts: 1,
        })
    }

    #[test]
    fn each_answer_is_classified_once() {
        assert!(ServiceError::classify(answer(201, "{}")).is_ok());
        let role = r#"{"error":{"code":"AuthorizationFailed","message":"lacks the role ProvisioningAPI.Write"}}"#;
        let error = ServiceError::classify(answer(403, role)).unwrap_err();
        assert!(matches!(error, ServiceError::MissingRole(_)));
        assert_eq!(
            error.to_string(),
            "the service refused the credential (403 AuthorizationFailed: lacks the role ProvisioningAPI.Write (request r-1)); grant the application the ProvisioningAPI role this operation needs (ProvisioningAPI.Read, .Write or .Delete, or .Admin for all)"
        );
        let error = ServiceError::classify(answer(403, "")).unwrap_err();
        assert!(matches!(error, ServiceError::IpNotAllowed(_)) && error.stops_the_run());
        assert!(error.to_string().contains("(403 (request r-1))"), "{error}");
        let throttled = ServiceError::classify(answer(429, "")).unwrap_err();
        assert!(matches!(throttled, ServiceError::Throttled(_)) && !throttled.stops_the_run());
        let failed = ServiceError::classify(answer(503, "not json")).unwrap_err();
        assert!(matches!(failed, ServiceError::Failed(_)) && failed.answered());
        let stopped = ServiceError::classify(Err(ClientError::Stopped)).unwrap_err();
        assert!(
            matches!(stopped, ServiceError::Client(ClientError::Stopped)) && !stopped.answered()
        );
    }

    #[test]
    fn a_refusal_is_explained_by_its_first_detail() {
        let body = r#"{"error":{"code":"InvalidRequestBody","message":"bad","target":"numbers","details":[{"code":"InvalidNumber","message":"+1 is short","target":"numbers[0]"}]}}"#;
        let ServiceError::BadRequest(refusal) =
            ServiceError::classify(answer(400, body)).unwrap_err()
        else {
            panic!("a bad request")
        };
        assert_eq!(refusal.target(), Some("numbers"));
        assert_eq!(
            refusal.explain(),
            (Some("InvalidNumber".into()), Some("+1 is short".into()))
        );
        let ServiceError::NotFound(bare) = ServiceError::classify(answer(404, "")).unwrap_err()
        else {
            panic!("not found")
        };
        assert_eq!(bare.explain(), (None, None));
    }
}
