//! Long-running operations: follow an `Operation-Location` until the
//! operation has `succeeded` or `failed`, waiting what `Retry-After` asks
//! between polls.

use super::client::{AcsClient, Polled};
use super::model::{Operation, OperationStatus};
use super::{AcsError, PollOptions};
use crate::pacer::sleep_or_stop;
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

/// Polls the operation at `location` until it ends or `options.timeout`
/// passes.
pub async fn wait(
    client: &AcsClient,
    location: &str,
    options: &PollOptions,
    stop: &mut watch::Receiver<bool>,
) -> Result<Finished, AcsError> {
    let started = tokio::time::Instant::now();
    let mut polls = 0;
    loop {
        let Polled {
            operation,
            retry_after,
        } = client.get_operation(location, stop).await?;
        polls += 1;
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
        let wait = retry_after
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
            .map_err(crate::ClientError::from)?;
    }
}
