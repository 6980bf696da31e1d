//! Counting what a delete would release before anything is sent, so that a
//! run over its `--max-delete` limit can be refused whole.
//!
//! A count is one listing request with `countRecords=true` and a page of
//! one (the service answers `x-ms-record-count`); a server that does not
//! count is paged through instead.

use crate::client::{paths, ListOptions, ProvisioningClient, ServiceError};
use tokio::sync::watch;

/// A count that could not be made: nothing may be deleted on a guess.
#[derive(Debug, thiserror::Error)]
#[error("cannot count the numbers of {what} before deleting: {error}")]
pub struct CountError {
    pub what: String,
    #[source]
    pub error: ServiceError,
}

/// Items per page when the server does not count and the list is paged.
const PAGE_SIZE: usize = 1000;

/// The numbers provisioned in `account`, or on the whole gateway. An
/// account that does not exist holds none.
pub async fn count_numbers(
    client: &ProvisioningClient,
    account: Option<&str>,
    stop: &mut watch::Receiver<bool>,
) -> Result<u64, CountError> {
    let failed = |error| CountError {
        what: account.map_or_else(|| "the gateway".to_owned(), |a| format!("account '{a}'")),
        error,
    };
    let counted = ListOptions {
        max_page_size: Some(1),
        count_records: true,
    };
    let first = match client.list_numbers(account, &counted).next_page(stop).await {
        None => return Ok(0),
        Some(Err(ServiceError::NotFound(_))) if account.is_some() => return Ok(0),
        Some(page) => page.map_err(failed)?,
    };
    if let Some(count) = first.record_count {
        return Ok(count);
    }
    tracing::info!(
        "{}: no x-ms-record-count; counting page by page",
        account.map_or(paths::NUMBERS.to_owned(), paths::account_numbers)
    );
    let mut count = 0;
    let mut pager = client.list_numbers(account, &ListOptions::page_size(PAGE_SIZE));
    while let Some(page) = pager.next_page(stop).await {
        count += page.map_err(failed)?.items.len() as u64;
    }
    Ok(count)
}

/// The numbers each of `accounts` holds, in their order.
pub async fn numbers_held(
    client: &ProvisioningClient,
    accounts: &[String],
    stop: &mut watch::Receiver<bool>,
) -> Result<Vec<u64>, CountError> {
    let mut counts = Vec::with_capacity(accounts.len());
    for account in accounts {
        counts.push(count_numbers(client, Some(account), stop).await?);
    }
    Ok(counts)
}
