//! Searches, many at once: each one POSTed, its operation polled to the
//! end, its result read; and the results file, one line per number found
//! plus one per search that found fewer than asked or failed.
//!
//! A search is not sent again after a time-out or a broken connection
//! (it may have reserved numbers without the answer arriving); it is
//! reported as failed, and running it again is the user's call.

use super::client::{search_result_location, AcsClient};
use super::model::{SearchResult, SEARCH_ERRORS};
use super::operation;
use super::requests::SearchSpec;
use super::{AcsError, PollOptions};
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use tokio::sync::watch;

/// The results file's columns.
pub const COLUMNS: [&str; 13] = [
    "requestRow",
    "searchId",
    "phoneNumber",
    "phoneNumberType",
    "assignmentType",
    "calling",
    "sms",
    "costAmount",
    "currencyCode",
    "billingFrequency",
    "searchExpiresBy",
    "error",
    "errorMessage",
];

/// The `error` of a search that found fewer numbers than asked while the
/// service reported no error.
pub const PARTIAL: &str = "PartialResult";

/// How one search ended.
#[derive(Debug, Clone)]
pub struct SearchOutcome {
    pub spec: SearchSpec,
    pub search_id: Option<String>,
    pub result: Option<SearchResult>,
    /// Why it found nothing or fewer than asked: a code and a message.
    pub error: Option<(String, String)>,
    pub polls: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    Complete,
    Partial,
    Failed,
    Stopped,
}

impl SearchOutcome {
    pub fn found(&self) -> usize {
        self.result.as_ref().map_or(0, |r| r.phone_numbers.len())
    }

    pub fn verdict(&self) -> Verdict {
        match (&self.error, self.found()) {
            (None, _) => Verdict::Complete,
            (Some((code, _)), 0) if code == "Stopped" => Verdict::Stopped,
            (Some(_), 0) => Verdict::Failed,
            (Some(_), _) => Verdict::Partial,
        }
    }
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

/// Runs one search to its end.
pub async fn search(
    client: &AcsClient,
    spec: &SearchSpec,
    options: &PollOptions,
    stop: &mut watch::Receiver<bool>,
) -> SearchOutcome {
    let mut outcome = SearchOutcome {
        spec: spec.clone(),
        search_id: None,
        result: None,
        error: None,
        polls: 0,
    };
    if let Err(error) = run_search(client, &mut outcome, options, stop).await {
        outcome.error = Some((error.code(), error.to_string()));
    }
    outcome
}

async fn run_search(
    client: &AcsClient,
    outcome: &mut SearchOutcome,
    options: &PollOptions,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), AcsError> {
    let spec = &outcome.spec;
    let headers = client
        .search_available_phone_numbers(&spec.country, &spec.body, stop)
        .await?;
    let operation_location = header(&headers, "operation-location")
        .ok_or_else(|| {
            AcsError::Protocol("the search was accepted without an Operation-Location".into())
        })?
        .to_owned();
    let search_id = header(&headers, "search-id")
        .map(str::to_owned)
        .or_else(|| {
            header(&headers, "operation-id")
                .and_then(|id| id.strip_prefix("search_"))
                .map(str::to_owned)
        })
        .ok_or_else(|| AcsError::Protocol("the search was accepted without a search-id".into()))?;
    let result_location = header(&headers, "location")
        .map(str::to_owned)
        .unwrap_or_else(|| search_result_location(&search_id));
    outcome.search_id = Some(search_id);
    let finished = operation::wait(client, &operation_location, options, stop).await?;
    outcome.polls = finished.polls;
    let succeeded = finished.succeeded();
    let operation = finished.operation;
    if !succeeded {
        let (code, message) = match operation.error {
            Some(error) => (error.code, error.message),
            None => (
                "UnknownSearchError".to_owned(),
                format!(
                    "the search operation {} failed without saying why",
                    operation.id
                ),
            ),
        };
        outcome.error = Some((code, message));
        return Ok(());
    }
    let location = operation.resource_location.unwrap_or(result_location);
    let result = client.get_search_result_at(&location, stop).await?;
    let asked = spec.quantity() as usize;
    let found = result.phone_numbers.len();
    let reported = result.error.clone().filter(|e| e != "NoError");
    if found < asked || reported.is_some() {
        let code = reported.unwrap_or_else(|| PARTIAL.to_owned());
        let known = if SEARCH_ERRORS.contains(&code.as_str()) || code == PARTIAL {
            ""
        } else {
            " (an error this tool does not know)"
        };
        outcome.error = Some((
            code,
            format!("found {found} of the {asked} numbers asked for{known}"),
        ));
    }
    outcome.result = Some(result);
    Ok(())
}

/// Writes the lines of one search: a line per number, then a line with
/// its error if it found fewer than asked or failed. Flushed, so a run cut
/// short keeps what it wrote.
pub fn write_outcome<W: Write>(
    writer: &mut csv::Writer<W>,
    outcome: &SearchOutcome,
) -> std::io::Result<()> {
    let spec = &outcome.spec;
    let row = spec.row.to_string();
    let search_id = outcome.search_id.as_deref().unwrap_or("");
    if let Some(result) = &outcome.result {
        let amount = result.cost.amount.to_string();
        for number in &result.phone_numbers {
            writer.write_record([
                row.as_str(),
                search_id,
                number,
                &result.phone_number_type,
                &result.assignment_type,
                &result.capabilities.calling,
                &result.capabilities.sms,
                &amount,
                &result.cost.currency_code,
                &result.cost.billing_frequency,
                &result.search_expires_by,
                "",
                "",
            ])?;
        }
    }
    if let Some((code, message)) = &outcome.error {
        let body = &spec.body;
        let expires = outcome
            .result
            .as_ref()
            .map_or("", |r| r.search_expires_by.as_str());
        writer.write_record([
            row.as_str(),
            search_id,
            "",
            &body.phone_number_type,
            &body.assignment_type,
            &body.capabilities.calling,
            &body.capabilities.sms,
            "",
            "",
            "",
            expires,
            code,
            message,
        ])?;
    }
    writer.flush()
}

/// The cost of what was found, per currency and billing frequency.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CostTotal {
    pub currency_code: String,
    pub billing_frequency: String,
    pub amount: f64,
}

/// What a run of searches found.
#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SearchSummary {
    pub searches: usize,
    pub complete: usize,
    pub partial: usize,
    pub failed: usize,
    pub interrupted: usize,
    pub numbers_requested: u64,
    pub numbers_found: u64,
    pub cost: Vec<CostTotal>,
    /// The earliest reservation expiry among the searches.
    pub earliest_expiry: Option<String>,
    pub search_ids: Vec<String>,
    /// Errors met, by code, with how many searches met each.
    pub errors: BTreeMap<String, usize>,
    pub stopped: bool,
    pub polls: u64,
}

impl SearchSummary {
    pub fn add(&mut self, outcome: &SearchOutcome) {
        self.searches += 1;
        self.numbers_requested += u64::from(outcome.spec.quantity());
        self.numbers_found += outcome.found() as u64;
        self.polls += u64::from(outcome.polls);
        match outcome.verdict() {
            Verdict::Complete => self.complete += 1,
            Verdict::Partial => self.partial += 1,
            Verdict::Failed => self.failed += 1,
            Verdict::Stopped => {
                self.interrupted += 1;
                self.stopped = true;
            }
        }
        if let Some((code, _)) = &outcome.error {
            if outcome.verdict() != Verdict::Stopped {
                *self.errors.entry(code.clone()).or_default() += 1;
            }
        }
        if let Some(result) = &outcome.result {
            self.search_ids.push(result.search_id.clone());
            let found = result.phone_numbers.len() as f64;
            match self.cost.iter_mut().find(|c| {
                c.currency_code == result.cost.currency_code
                    && c.billing_frequency == result.cost.billing_frequency
            }) {
                Some(total) => total.amount += result.cost.amount * found,
                None => self.cost.push(CostTotal {
                    currency_code: result.cost.currency_code.clone(),
                    billing_frequency: result.cost.billing_frequency.clone(),
                    amount: result.cost.amount * found,
                }),
            }
            if !result.phone_numbers.is_empty()
                && self
                    .earliest_expiry
                    .as_ref()
                    .is_none_or(|e| result.search_expires_by < *e)
            {
                self.earliest_expiry = Some(result.search_expires_by.clone());
            }
        }
    }
}

/// Runs `specs`, at most `concurrency` at once, calling `each` as each
/// ends (in the order they end). Searches not yet started when `stop`
/// turns true are not sent; they come back as `Stopped`.
pub async fn run(
    client: Arc<AcsClient>,
    specs: Vec<SearchSpec>,
    concurrency: usize,
    options: PollOptions,
    stop: watch::Receiver<bool>,
    mut each: impl FnMut(&SearchOutcome) -> std::io::Result<()>,
) -> std::io::Result<SearchSummary> {
    let mut summary = SearchSummary::default();
    let mut outcomes = futures_util::stream::iter(specs)
        .map(|spec| {
            let client = client.clone();
            let mut stop = stop.clone();
            let options = options.clone();
            async move {
                if *stop.borrow() {
                    return SearchOutcome {
                        spec,
                        search_id: None,
                        result: None,
                        error: Some(("Stopped".into(), "not sent: the run was stopped".into())),
                        polls: 0,
                    };
                }
                search(&client, &spec, &options, &mut stop).await
            }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(outcome) = outcomes.next().await {
        each(&outcome)?;
        summary.add(&outcome);
    }
    summary.stopped |= *stop.borrow();
    Ok(summary)
}
