//! One pager over the API's lists: `{ "value": [...], "nextLink": ... }`,
//! followed until the link is absent. A link may be absolute or relative
//! (to the page it came with); a pager can start from a stored link, so a
//! stopped export goes on from its checkpoint.

use super::error::ServiceError;
use super::transport::{ApiRequest, ClientError, Transport};
use reqwest::Method;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use tokio::sync::watch;

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page is, resolved to a full URL; `None` on the last.
    pub next_link: Option<url::Url>,
    /// `x-ms-record-count`, when the list was asked to count.
    pub record_count: Option<u64>,
    pub request_id: String,
}

/// The pages of one list, fetched one at a time through the transport.
pub struct Pager<'t, T> {
    transport: &'t Transport,
    next: Option<url::Url>,
    items: PhantomData<fn() -> T>,
}

impl<'t, T: DeserializeOwned> Pager<'t, T> {
    /// A pager whose first page is `first`.
    pub fn new(transport: &'t Transport, first: url::Url) -> Pager<'t, T> {
        Pager {
            transport,
            next: Some(first),
            items: PhantomData,
        }
    }

    /// A pager that goes on from `link` (absolute, or relative to the
    /// endpoint).
    pub fn from_link(transport: &'t Transport, link: &str) -> Result<Pager<'t, T>, ServiceError> {
        let url = transport.url("/", &[]).join(link).map_err(|e| {
            ServiceError::from(ClientError::Config(format!(
                "a nextLink that is not a URL: {e}"
            )))
        })?;
        Ok(Pager::new(transport, url))
    }

    /// The URL of the page [`next_page`](Self::next_page) fetches, if any.
    pub fn next_link(&self) -> Option<&url::Url> {
        self.next.as_ref()
    }

    /// The next page; `None` once the last has been fetched. A failed page
    /// ends the pager.
    pub async fn next_page(
        &mut self,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Result<Page<T>, ServiceError>> {
        let url = self.next.take()?;
        let page = self.fetch(url, stop).await;
        if let Ok(page) = &page {
            self.next = page.next_link.clone();
        }
        Some(page)
    }

    async fn fetch(
        &self,
        url: url::Url,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Page<T>, ServiceError> {
        let request = ApiRequest::new(Method::GET, url.path().to_owned());
        let response =
            ServiceError::classify(self.transport.send_to(&request, url.clone(), stop).await)?;
        let page: crate::model::Page<T> = response.json()?;
        let next_link = match page.next_link.as_deref().filter(|l| !l.is_empty()) {
            None => None,
            Some(link) => Some(url.join(link).map_err(|e| ClientError::Decode {
                request_id: response.request_id.clone(),
                message: format!("a nextLink that is not a URL ({link}): {e}"),
            })?),
        };
        let record_count = response
            .headers
            .get("x-ms-record-count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        Ok(Page {
            items: page.value,
            next_link,
            record_count,
            request_id: response.request_id,
        })
    }

    /// Every item of every remaining page.
    pub async fn collect_all(
        mut self,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Vec<T>, ServiceError> {
        let mut items = Vec::new();
        while let Some(page) = self.next_page(stop).await {
            items.extend(page?.items);
        }
        Ok(items)
    }
}
