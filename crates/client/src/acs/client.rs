//! The Azure Communication Services client: one method per operation of
//! the number search and purchase, over the same paced, retrying
//! [`Transport`] as the Provisioning API's, authenticated with an Entra ID
//! token or signed with the resource's access key.

use super::model::{Operation, PurchaseBody, SearchBody, SearchResult};
use super::AcsError;
use crate::auth::TokenProvider;
use crate::pacer::Pacer;
use crate::path::segment;
use crate::{
    retry_after, ApiRequest, ApiResponse, ClientError, Connection, Counters, RequestSigner,
    RetryPolicy, Transport,
};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// One poll of a long-running operation.
#[derive(Debug, Clone)]
pub struct Polled {
    pub operation: Operation,
    /// How long the service asks to wait before the next poll.
    pub retry_after: Option<Duration>,
}

pub struct AcsClient {
    transport: Transport,
}

impl AcsClient {
    pub fn new(
        connection: Connection,
        auth: TokenProvider,
        pacer: Arc<Pacer>,
        policy: RetryPolicy,
    ) -> Result<AcsClient, ClientError> {
        Ok(AcsClient {
            transport: Transport::new(connection, auth, pacer, policy)?,
        })
    }

    /// Signs every request with `signer` (the access key) instead of a
    /// bearer token.
    pub fn with_signer(self, signer: Arc<dyn RequestSigner>) -> AcsClient {
        AcsClient {
            transport: self.transport.with_signer(signer),
        }
    }

    pub fn auth(&self) -> &TokenProvider {
        self.transport.auth()
    }

    pub fn counters(&self) -> &Counters {
        &self.transport.counters
    }

    /// The URL of a location the service gave, relative or absolute. An
    /// absolute one must be on the endpoint's origin: credentials go
    /// nowhere else.
    pub fn resolve(&self, location: &str) -> Result<url::Url, AcsError> {
        let connection = &self.transport.connection;
        let endpoint = &connection.endpoint;
        let mut url = endpoint.join(location).map_err(|e| {
            AcsError::Protocol(format!("the location '{location}' is not a URL: {e}"))
        })?;
        if url.origin() != endpoint.origin() {
            return Err(AcsError::Protocol(format!(
                "the service pointed to {location}, outside {endpoint}; not following it with credentials"
            )));
        }
        if !url.query_pairs().any(|(k, _)| k == "api-version") {
            url.query_pairs_mut()
                .append_pair("api-version", &connection.api_version);
        }
        Ok(url)
    }

    /// `POST /availablePhoneNumbers/countries/{countryCode}/:search`: the
    /// accepted answer's headers (where to poll, the search id). Not sent
    /// again when unsure whether it arrived: it may have reserved numbers.
    pub async fn search_available_phone_numbers(
        &self,
        country: &str,
        body: &SearchBody,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<HeaderMap, AcsError> {
        let path = format!(
            "/availablePhoneNumbers/countries/{}/:search",
            segment(country)
        );
        let mut request = ApiRequest::new(Method::POST, path).json(body);
        request.resend_when_unsure = false;
        accepted(self.transport.send(&request, stop).await?)
    }

    /// `POST /availablePhoneNumbers/:purchase`: the accepted answer's
    /// headers. Not sent again when unsure: it may have gone through.
    pub async fn purchase_phone_numbers(
        &self,
        search_id: &str,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<HeaderMap, AcsError> {
        let body = PurchaseBody {
            search_id: search_id.to_owned(),
        };
        let mut request =
            ApiRequest::new(Method::POST, "/availablePhoneNumbers/:purchase").json(&body);
        request.resend_when_unsure = false;
        accepted(self.transport.send(&request, stop).await?)
    }

    /// `GET` an operation at the location the service gave.
    pub async fn get_operation(
        &self,
        location: &str,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Polled, AcsError> {
        let response = self.get(location, stop).await?;
        Ok(Polled {
            operation: response.json()?,
            retry_after: retry_after(&response.headers),
        })
    }

    /// `GET /availablePhoneNumbers/searchResults/{searchId}`.
    pub async fn get_search_result(
        &self,
        search_id: &str,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<SearchResult, AcsError> {
        let location = search_result_location(search_id);
        self.get_search_result_at(&location, stop).await
    }

    /// A search's result at the location the service gave.
    pub async fn get_search_result_at(
        &self,
        location: &str,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<SearchResult, AcsError> {
        Ok(self.get(location, stop).await?.json()?)
    }

    async fn get(
        &self,
        location: &str,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<ApiResponse, AcsError> {
        let url = self.resolve(location)?;
        let request = ApiRequest::new(Method::GET, url.path());
        let response = self.transport.send_to(&request, url, stop).await?;
        if response.status.is_success() {
            Ok(response)
        } else {
            Err(AcsError::from_response(&response))
        }
    }
}

/// Where the result of search `search_id` is.
pub fn search_result_location(search_id: &str) -> String {
    format!(
        "/availablePhoneNumbers/searchResults/{}",
        segment(search_id)
    )
}

fn accepted(response: ApiResponse) -> Result<HeaderMap, AcsError> {
    if response.status == StatusCode::ACCEPTED || response.status == StatusCode::OK {
        Ok(response.headers)
    } else {
        Err(AcsError::from_response(&response))
    }
}
