//! Long-running operations: follow an `Operation-Location` until the
//! operation has `succeeded` or `failed`, waiting what `Retry-After` asks
//! between polls.

use super::model::{Operation, OperationStatus};
use super::{AcsError, PollOptions};
use crate::client::pacer::sleep_or_stop;
use crate::client::{retry_after, ApiRequest, ApiResponse, ProvisioningClient};
use reqwest::Method;
use std::time::Duration;
use tokio::sync::watch;

/// Polls are never closer than this, whatever `Retry-After` says.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Nor further apart than this.
const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// A finished operation and how many polls it took.
#[derive(Debug, Clone)]
pub struct Finished {
    pub operation: Operation,
    pub polls: u32,
}

impl Finished {
    pub fn succeeded(&self) -> bool {
        OperationStatus::parse_exact(&self.operation.status) == Some(OperationStatus::Succeeded)
    }
}

/// The URL of a location the service gave, relative or absolute. An
/// absolute one must be on the endpoint's origin: credentials go nowhere
/// else.
pub fn resolve(client: &ProvisioningClient, location: &str) -> Result<url::Url, AcsError> {
    let endpoint = &client.connection.endpoint;
    let mut url = endpoint
        .join(location)
        .map_err(|e| AcsError::Protocol(format!("the location '{location}' is not a URL: {e}")))?;
    if url.origin() != endpoint.origin() {
        return Err(AcsError::Protocol(format!(
            "the service pointed to {location}, outside {endpoint}; not following it with credentials"
        )));
    }
    if !url.query_pairs().any(|(k, _)| k == "api-version") {
        url.query_pairs_mut()
            .append_pair("api-version", &client.connection.api_version);
    }
    Ok(url)
}

/// GETs a location and expects 200 with JSON.
pub async fn get(
    client: &ProvisioningClient,
    location: &str,
    stop: &mut watch::Receiver<bool>,
) -> Result<ApiResponse, AcsError> {
    let url = resolve(client, location)?;
    let response = client
        .execute_url(&ApiRequest::new(Method::GET, url.path()), url, stop)
        .await?;
    if response.status.is_success() {
        Ok(response)
    } else {
        Err(AcsError::from_response(&response))
    }
}

/// Polls the operation at `location` until it ends or `options.timeout`
/// passes.
pub async fn wait(
    client: &ProvisioningClient,
    location: &str,
    options: &PollOptions,
    stop: &mut watch::Receiver<bool>,
) -> Result<Finished, AcsError> {
    let started = tokio::time::Instant::now();
    let mut polls = 0;
    loop {
        let response = get(client, location, stop).await?;
        polls += 1;
        let operation: Operation = response.json()?;
        match OperationStatus::parse_exact(&operation.status) {
            Some(status) if status.is_final() => return Ok(Finished { operation, polls }),
            Some(_) => {}
            None => {
                return Err(AcsError::Protocol(format!(
                    "the operation {} has the unknown status '{}'",
                    operation.id, operation.status
                )))
            }
        }
        let wait = retry_after(&response.headers)
            .unwrap_or(options.interval)
            .clamp(MIN_INTERVAL, MAX_INTERVAL);
        if started.elapsed() + wait > options.timeout {
            return Err(AcsError::TimedOut {
                operation: operation.id,
                after: started.elapsed(),
            });
        }
        tracing::debug!(
            operation = operation.id,
            status = operation.status,
            "waiting {wait:?}"
        );
        sleep_or_stop(wait, stop)
            .await
            .map_err(crate::client::ClientError::from)?;
    }
}
