//! Errors as the service answers them: a status, an `x-ms-error-code`
//! header and a `{ "error": { code, message, target, details } }` body.

use crate::model::{ErrorDetail, ErrorResponse};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// An error answer. Boxed, so results that carry it stay small.
#[derive(Debug, Clone)]
pub struct ApiError(Box<ErrorParts>);

#[derive(Debug, Clone)]
pub struct ErrorParts {
    pub status: StatusCode,
    pub detail: ErrorDetail,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl std::ops::Deref for ApiError {
    type Target = ErrorParts;

    fn deref(&self) -> &ErrorParts {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut ErrorParts {
        &mut self.0
    }
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError(Box::new(ErrorParts {
            status,
            detail: ErrorDetail {
                code: code.to_owned(),
                message: message.into(),
                ..ErrorDetail::default()
            },
            headers: Vec::new(),
        }))
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    pub fn target(mut self, target: impl Into<String>) -> ApiError {
        self.detail.target = Some(target.into());
        self
    }

    /// A 400 that lists one detail per bad field.
    pub fn invalid_fields(details: Vec<ErrorDetail>) -> ApiError {
        let first = details.first().cloned().unwrap_or_default();
        let mut error = ApiError::bad_request(
            "InvalidRequestBody",
            if details.len() == 1 {
                first.message.clone()
            } else {
                format!(
                    "{} fields are invalid; first: {}",
                    details.len(),
                    first.message
                )
            },
        );
        error.detail.target = first.target.clone();
        error.detail.details = details;
        error
    }

    pub fn header(mut self, name: HeaderName, value: &str) -> ApiError {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.push((name, value));
        }
        self
    }
}

/// One invalid field, for [`ApiError::invalid_fields`].
pub fn field(code: &str, target: impl Into<String>, message: impl Into<String>) -> ErrorDetail {
    ErrorDetail {
        code: code.to_owned(),
        message: message.into(),
        target: Some(target.into()),
        ..ErrorDetail::default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let parts = *self.0;
        let code = parts.detail.code.clone();
        let body = ErrorResponse {
            error: parts.detail,
        };
        let mut response = (parts.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&code) {
            headers.insert("x-ms-error-code", value);
        }
        for (name, value) in parts.headers {
            headers.insert(name, value);
        }
        response
    }
}
