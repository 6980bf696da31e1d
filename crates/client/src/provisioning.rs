//! The Provisioning API, one method per operation (named after the API's),
//! typed bodies from [`crate::model`], over the paced, retrying
//! [`Transport`]. Every method answers a [`Response`] for a success and a
//! [`ServiceError`] for anything else.

use super::auth::TokenProvider;
use super::error::ServiceError;
use super::pacer::Pacer;
use super::pager::Pager;
use super::path::segment;
use super::transport::{
    ApiRequest, ApiResponse, ClientError, Connection, Counters, RetryPolicy, Transport,
};
use crate::model::{
    Account, CivicAddress, Number, NumberRefsBody, NumbersBody, RequestForInformation, RfiPatch,
};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A successful answer, its body decoded on demand.
#[derive(Debug, Clone)]
pub struct Response<T> {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The `x-ms-client-request-id` of the attempt that got this answer.
    pub request_id: String,
    body: bytes::Bytes,
    model: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Response<T> {
    fn new(response: ApiResponse) -> Response<T> {
        Response {
            status: response.status,
            headers: response.headers,
            request_id: response.request_id,
            body: response.body,
            model: PhantomData,
        }
    }

    /// The body as the operation's type.
    pub fn model(&self) -> Result<T, ServiceError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ServiceError::from(ClientError::Decode {
                request_id: self.request_id.clone(),
                message: e.to_string(),
            })
        })
    }

    pub fn etag(&self) -> Option<&str> {
        self.headers.get("etag").and_then(|v| v.to_str().ok())
    }
}

/// The condition a write is made under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    None,
    /// Only if the resource is still what was read (`If-Match`).
    IfMatch(String),
    /// Only if there is no such resource yet (`If-None-Match: *`).
    IfNoneMatchAny,
}

/// Knobs of a write.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `Repeatability-Request-ID` and `Repeatability-First-Sent`: the same
    /// on every send of one logical write, so the service applies it once.
    pub repeatability: Option<(String, String)>,
}

/// Knobs of a list.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// `maxpagesize`.
    pub max_page_size: Option<usize>,
    /// `countRecords=true`: the first page carries `x-ms-record-count`.
    pub count_records: bool,
}

impl ListOptions {
    pub fn page_size(size: usize) -> ListOptions {
        ListOptions {
            max_page_size: Some(size),
            count_records: false,
        }
    }

    pub fn query(&self) -> Vec<(String, String)> {
        let mut query = Vec::new();
        if let Some(size) = self.max_page_size {
            query.push(("maxpagesize".into(), size.to_string()));
        }
        if self.count_records {
            query.push(("countRecords".into(), "true".into()));
        }
        query
    }
}

/// The paths of the API's collections (already encoded), as an export's
/// checkpoint records them.
pub mod paths {
    use super::segment;

    pub const ACCOUNTS: &str = "/accounts";
    pub const NUMBERS: &str = "/numbers";
    pub const RFIS: &str = "/teamsRequestsForInformation";

    pub fn account(name: &str) -> String {
        format!("/accounts/{}", segment(name))
    }

    pub fn account_numbers(name: &str) -> String {
        format!("{}/numbers", account(name))
    }

    pub fn civic_addresses(name: &str) -> String {
        format!("{}/teamsCivicAddresses", account(name))
    }

    pub fn rfi(tenant_id: &str) -> String {
        format!("{RFIS}/{}", segment(tenant_id))
    }

    /// `POST /accounts/{name}:{action}`.
    pub fn account_action(name: &str, action: &str) -> String {
        format!("{}:{action}", account(name))
    }
}

/// Attempts of the check before a job's first request, and the time limit
/// of each: a wrong endpoint shows in seconds, not after minutes of
/// retries.
pub const PREFLIGHT_ATTEMPTS: u32 = 2;
pub const PREFLIGHT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the check before a job's first request failed: what would make
/// every request of the job fail.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// Nothing answered: a wrong name or port, a TLS failure, an address
    /// the gateway drops.
    #[error("{0}")]
    Unreachable(String),
    /// Something answered, but not the Provisioning API.
    #[error("{endpoint} does not answer as the Provisioning API (GET /accounts: {answer}); check the endpoint: https://provapi.<the gateway's domain>")]
    NotTheApi { endpoint: String, answer: String },
    /// The service refused (credentials, role, allowlist) or failed.
    #[error(transparent)]
    Service(ServiceError),
}

/// The Provisioning API's client.
pub struct ProvisioningClient {
    transport: Transport,
}

impl ProvisioningClient {
    pub fn new(
        connection: Connection,
        auth: TokenProvider,
        pacer: Arc<Pacer>,
        policy: RetryPolicy,
    ) -> Result<ProvisioningClient, ClientError> {
        Ok(ProvisioningClient::over(Transport::new(
            connection, auth, pacer, policy,
        )?))
    }

    pub fn over(transport: Transport) -> ProvisioningClient {
        ProvisioningClient { transport }
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// What the run's requests met.
    pub fn counters(&self) -> &Counters {
        &self.transport.counters
    }

    /// The full URL of `path` with `query` (and the api-version).
    pub fn url(&self, path: &str, query: &[(String, String)]) -> url::Url {
        self.transport.url(path, query)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        request: ApiRequest,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Response<T>, ServiceError> {
        ServiceError::classify(self.transport.send(&request, stop).await).map(Response::new)
    }

    fn list<T: DeserializeOwned>(&self, path: &str, options: &ListOptions) -> Pager<'_, T> {
        Pager::new(&self.transport, self.url(path, &options.query()))
    }

    /// A list that goes on from a stored `nextLink`.
    pub fn resume_list<T: DeserializeOwned>(
        &self,
        link: &str,
    ) -> Result<Pager<'_, T>, ServiceError> {
        Pager::from_link(&self.transport, link)
    }

    /// The check before a job sends anything: one cheap read (`GET
    /// /accounts`, one item) on a short budget of its own. A wrong
    /// endpoint, refused credentials, a missing role or an address not on
    /// the allowlist fails here within seconds. A 429 passes: the service
    /// is there.
    pub async fn preflight(&self, stop: &mut watch::Receiver<bool>) -> Result<(), PreflightError> {
        let request = ApiRequest {
            query: ListOptions::page_size(1).query(),
            ..ApiRequest::new(Method::GET, paths::ACCOUNTS)
        };
        let sent = self
            .transport
            .probe(
                &request,
                PREFLIGHT_ATTEMPTS,
                PREFLIGHT_ATTEMPT_TIMEOUT,
                stop,
            )
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(ClientError::Transport { message, .. }) => {
                return Err(PreflightError::Unreachable(message))
            }
            Err(other) => return Err(PreflightError::Service(other.into())),
        };
        let endpoint = || {
            self.transport
                .connection
                .endpoint
                .as_str()
                .trim_end_matches('/')
                .to_owned()
        };
        match response.status {
            StatusCode::TOO_MANY_REQUESTS => Ok(()),
            status if status.is_success() => {
                match serde_json::from_slice::<crate::model::Page<serde_json::Value>>(
                    &response.body,
                ) {
                    Ok(_) => Ok(()),
                    Err(_) => Err(PreflightError::NotTheApi {
                        endpoint: endpoint(),
                        answer: format!("{status} with a body that is not a list of accounts"),
                    }),
                }
            }
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => {
                Err(PreflightError::NotTheApi {
                    endpoint: endpoint(),
                    answer: response.status.to_string(),
                })
            }
            _ => match ServiceError::classify(Ok(response)) {
                Ok(_) => Ok(()),
                Err(e) => Err(PreflightError::Service(e)),
            },
        }
    }

    /// `GET /accounts`.
    pub fn list_accounts(&self, options: &ListOptions) -> Pager<'_, Account> {
        self.list(paths::ACCOUNTS, options)
    }

    /// `GET /accounts/{name}`.
    pub async fn get_account(
        &self,
        name: &str,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Response<Account>, ServiceError> {
        self.call(ApiRequest::new(Method::GET, paths::account(name)), stop)
            .await
    }

    /// `PUT /accounts/{name}`.
    pub async fn put_account(
        &self,
        name: &str,
        account: &Account,
        precondition: Precondition,
        options: &WriteOptions,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Response<Account>, ServiceError> {
        let mut request = write(Method::PUT, paths::account(name), options).json(account);
        match precondition {
            Precondition::None => {}
            Precondition::IfMatch(etag) => request.headers.push(("If-Match".into(), etag)),
            Precondition::IfNoneMatchAny => {
                request.headers.push(("If-None-Match".into(), "*".into()))
            }
        }
        self.call(request, stop).await
    }

    /// `DELETE /accounts/{name}`, with `?deleteNumbers=true` when
    /// `delete_numbers`.
    pub async fn delete_account(
        &self,
        name: &str,
        delete_numbers: bool,
        options: &WriteOptions,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Response<()>, ServiceError> {
        let mut request = write(Method::DELETE, paths::account(name), options);
        if delete_numbers {
            request.query.push(("deleteNumbers".into(), "true".into()));
        }
        self.call(request, stop).await
    }

    /// `POST /accounts/{name}:createOrUpdateNumbers` (at most 100).
    pub async fn create_or_update_numbers(
        &self,
        account: &str,
        numbers: &NumbersBody,
        options: &WriteOptions,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Response<NumbersBody>, ServiceError> {
        let path = paths::account_action(account, "createOrUpdateNumbers");
        self.call(write(Method::POST, path, options).json(numbers), stop)
            .await
    }

    /// `POST /accounts/{name}:deleteNumbers` (at most 100).
    pub async fn delete_numbers(
        &self,
        account: &str,
        numbers: &NumberRefsBody,
        options: &WriteOptions,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Response<()>, ServiceError> {
        let path = paths::account_action(account, "deleteNumbers");
        self.call(write(Method::POST, path, options).json(numbers), stop)
            .await
    }

    /// `GET /accounts/{name}/numbers`, or `GET /numbers` for every account.
    pub fn list_numbers(&self, account: Option<&str>, options: &ListOptions) -> Pager<'_, Number> {
        match account {
            Some(name) => self.list(&paths::account_numbers(name), options),
            None => self.list(paths::NUMBERS, options),
        }
    }

    /// `GET /accounts/{name}/teamsCivicAddresses`.
    pub fn list_civic_addresses(
        &self,
        account: &str,
        options: &ListOptions,
    ) -> Pager<'_, CivicAddress> {
        self.list(&paths::civic_addresses(account), options)
    }

    /// `GET /teamsRequestsForInformation`.
    pub fn list_rfis(&self, options: &ListOptions) -> Pager<'_, RequestForInformation> {
        self.list(paths::RFIS, options)
    }

    /// `PATCH /teamsRequestsForInformation/{tenantId}`.
    pub async fn patch_rfi(
        &self,
        tenant_id: &str,
        patch: &RfiPatch,
        options: &WriteOptions,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Response<RequestForInformation>, ServiceError> {
        let request = write(Method::PATCH, paths::rfi(tenant_id), options).json(patch);
        self.call(request, stop).await
    }
}

fn write(method: Method, path: String, options: &WriteOptions) -> ApiRequest {
    let mut request = ApiRequest::new(method, path);
    request.repeatability = options.repeatability.clone();
    request
}
