//! Buying what a search reserved. It costs money, so the command line only
//! calls [`purchase`] when told so in so many words; [`reserved`] shows
//! what would be bought first.
//!
//! The purchase is not sent again after a time-out or a broken connection:
//! it may have gone through, and a second one would at best fail.

use super::client::AcsClient;
use super::model::SearchResult;
use super::operation::{self, Finished};
use super::{AcsError, PollOptions};
use tokio::sync::watch;

/// The result of search `search_id`: the numbers it holds and their cost.
pub async fn reserved(
    client: &AcsClient,
    search_id: &str,
    stop: &mut watch::Receiver<bool>,
) -> Result<SearchResult, AcsError> {
    client.get_search_result(search_id, stop).await
}

/// Buys the numbers search `search_id` found and waits for the purchase
/// to end. `Ok` with a failed operation when the service refused it then.
pub async fn purchase(
    client: &AcsClient,
    search_id: &str,
    options: &PollOptions,
    stop: &mut watch::Receiver<bool>,
) -> Result<Finished, AcsError> {
    let headers = client.purchase_phone_numbers(search_id, stop).await?;
    let location = headers
        .get("operation-location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            AcsError::Protocol("the purchase was accepted without an Operation-Location".into())
        })?
        .to_owned();
    operation::wait(client, &location, options, stop).await
}
