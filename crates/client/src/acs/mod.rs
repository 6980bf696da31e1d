//! Number search in Azure Communication Services: finding numbers to buy
//! ([`search`]), and buying what a search found ([`purchase`]), both
//! long-running operations polled to their end ([`operation`]).
//!
//! Requests go through the [`AcsClient`], over the same paced, retrying
//! [`Transport`](crate::Transport) as the Provisioning API's,
//! authenticated with an Entra ID token or signed with the resource's
//! access key ([`signing`]).

pub mod client;
pub use acgbulk_core::model::acs as model;
pub mod operation;
pub mod purchase;
pub mod requests;
pub mod search;
pub mod signing;

use crate::{ApiResponse, ClientError};
pub use client::AcsClient;
use std::time::Duration;

/// Why a search or a purchase did not get to its end.
#[derive(Debug, thiserror::Error)]
pub enum AcsError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{status} {code}: {message} (request {request_id})")]
    Service {
        status: u16,
        code: String,
        message: String,
        request_id: String,
    },
    #[error("{0}")]
    Protocol(String),
    #[error("the operation {operation} had not finished after {after:?}")]
    TimedOut { operation: String, after: Duration },
}

impl AcsError {
    /// The service's answer to a request that did not succeed.
    pub fn from_response(response: &ApiResponse) -> AcsError {
        let detail = response.error();
        AcsError::Service {
            status: response.status.as_u16(),
            code: response.error_code().unwrap_or_else(|| {
                response
                    .status
                    .canonical_reason()
                    .unwrap_or("Error")
                    .replace(' ', "")
            }),
            message: detail.map(|d| d.message).unwrap_or_else(|| {
                String::from_utf8_lossy(&response.body[..response.body.len().min(300)]).into_owned()
            }),
            request_id: response.request_id.clone(),
        }
    }

    /// A short code for a results file's `error` column.
    pub fn code(&self) -> String {
        match self {
            AcsError::Client(ClientError::Stopped) => "Stopped".into(),
            AcsError::Client(ClientError::Unauthorized { .. }) => "Unauthorized".into(),
            AcsError::Client(ClientError::Transport { .. }) => "NoAnswer".into(),
            AcsError::Client(ClientError::Outage { .. }) => "Outage".into(),
            AcsError::Client(ClientError::Auth(_) | ClientError::Config(_)) => {
                "Authentication".into()
            }
            AcsError::Client(ClientError::Decode { .. }) | AcsError::Protocol(_) => {
                "UnexpectedAnswer".into()
            }
            AcsError::Service { code, .. } => code.clone(),
            AcsError::TimedOut { .. } => "TimedOut".into(),
        }
    }
}

/// How long to wait for a long-running operation.
#[derive(Debug, Clone)]
pub struct PollOptions {
    /// Between polls when the service gives no `Retry-After`.
    pub interval: Duration,
    /// The longest any one operation may take.
    pub timeout: Duration,
}

impl Default for PollOptions {
    fn default() -> Self {
        PollOptions {
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(600),
        }
    }
}
