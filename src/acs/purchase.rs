//! Buying what a search reserved. It costs money, so the command line only
//! calls [`purchase`] when told so in so many words; [`reserved`] shows
//! what would be bought first.
//!
//! The purchase is not sent again after a time-out or a broken connection:
//! it may have gone through, and a second one would at best fail.

use super::model::{PurchaseBody, SearchResult};
use super::operation::{self, Finished};
use super::{AcsError, PollOptions};
use crate::client::{ApiRequest, ProvisioningClient};
use reqwest::{Method, StatusCode};
use tokio::sync::watch;

/// The result of search `search_id`: the numbers it holds and their cost.
pub async fn reserved(
    client: &ProvisioningClient,
    search_id: &str,
    stop: &mut watch::Receiver<bool>,
) -> Result<SearchResult, AcsError> {
    let location = format!("/availablePhoneNumbers/searchResults/{search_id}");
    Ok(operation::get(client, &location, stop).await?.json()?)
}

/// Buys the numbers search `search_id` found and waits for the purchase
/// to end. `Ok` with a failed operation when the service refused it then.
pub async fn purchase(
    client: &ProvisioningClient,
    search_id: &str,
    options: &PollOptions,
    stop: &mut watch::Receiver<bool>,
) -> Result<Finished, AcsError> {
    let mut request =
        ApiRequest::new(Method::POST, "/availablePhoneNumbers/:purchase").json(&PurchaseBody {
            search_id: search_id.to_owned(),
        });
    request.resend_when_unsure = false;
    let response = client.execute(&request, stop).await?;
    if response.status != StatusCode::ACCEPTED && response.status != StatusCode::OK {
        return Err(AcsError::from_response(&response));
    }
    let location = response
        .headers
        .get("operation-location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            AcsError::Protocol("the purchase was accepted without an Operation-Location".into())
        })?
        .to_owned();
    operation::wait(client, &location, options, stop).await
}
