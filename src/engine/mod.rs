//! Bulk import and delete: validate the whole sheet offline, plan batches,
//! send them at the rate limit with safe retries, and record every number's
//! outcome, with a checkpoint that lets a stopped or crashed run resume
//! exactly where it was.
//!
//! A run is two steps: [`prepare`] (blocking: read, validate, plan) and
//! [`execute`] (async: send). Resuming prepares again from the checkpoint's
//! header, checks that the input and the plan are unchanged, and executes
//! with the checkpoint's records: answered parts are skipped, parts sent but
//! not answered are sent again with their original repeatability id and
//! first-sent date.

pub mod body;
pub mod journal;
pub mod results;
pub mod sync;

use crate::client::{ProvisioningClient, ServiceError, WriteOptions};
use crate::model::{NumberRef, NumberRefsBody, NumbersBody};
use crate::plan::Plan;
use crate::sheet::{self, HeaderMap, RawRow, RowReader, Sheet, SheetError, SheetOptions};
use crate::validate::pipeline::{
    self, Expanded, Summary as ValidationSummary, ValidateError, NO_ACCOUNT,
};
use crate::validate::{e164, report::ReportWriter, Finding, RuleOptions, SHOWN_FINDINGS};
use journal::{Action, Header, Journal, JournalError, Record};
use results::{Outcome, ResultLine, ResultsWriter};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Everything that shapes a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub action: Action,
    pub input: PathBuf,
    pub sheet: SheetOptions,
    pub rules: RuleOptions,
    pub batch_size: usize,
    pub skip_invalid: bool,
    pub results: PathBuf,
    pub checkpoint: PathBuf,
    pub report: PathBuf,
    pub concurrency: usize,
    pub wait_sync: bool,
    pub sync_timeout: Duration,
    pub sync_poll: Duration,
    /// How long to wait for answers in flight when stopping.
    pub grace: Duration,
    /// On resume: send again the parts that failed for want of an answer
    /// (5xx or no answer), with their original repeatability ids.
    pub retry_failed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Validate(#[from] ValidateError),
    #[error(transparent)]
    Sheet(#[from] SheetError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{input} has changed since the run began ({was} then, {now} now); a resume needs the same input: start a new import instead")]
    InputChanged {
        input: PathBuf,
        was: String,
        now: String,
    },
    #[error("the plan of {input} differs from the checkpoint's (same bytes, other batches: was the checkpoint written by another acgbulk version?)")]
    PlanChanged { input: PathBuf },
    #[error("{checkpoint} holds an unfinished run; finish it with `acgbulk resume {checkpoint}`, or give --restart to start over")]
    Unfinished { checkpoint: PathBuf },
    #[error(
        "{checkpoint} is from a finished run; there is nothing to resume (results: {results})"
    )]
    AlreadyFinished {
        checkpoint: PathBuf,
        results: PathBuf,
    },
    #[error("{0}")]
    Fatal(String),
}

impl EngineError {
    /// The file that could not be written, when that is the trouble (a
    /// full disk): the run can go on once there is room.
    pub fn unwritable(&self) -> Option<&Path> {
        match self {
            EngineError::Write { path, .. } => Some(path),
            EngineError::Journal(e) => e.unwritable(),
            _ => None,
        }
    }
}

/// A validated, planned run, ready to execute.
pub struct Prepared {
    pub header: Header,
    pub validation: ValidationSummary,
    pub first_findings: Vec<Finding>,
    pub expanded: Expanded,
    pub plan: Plan,
    pub sheet_header: Arc<HeaderMap>,
}

impl Prepared {
    /// Leaves the rows of accounts the gateway does not have out of the
    /// plan; the results fail them with `AccountNotFound`.
    pub fn leave_out_accounts(&mut self, missing: Vec<journal::MissingAccount>) {
        if missing.is_empty() {
            return;
        }
        let ids: Vec<u32> = missing
            .iter()
            .filter_map(|m| self.expanded.accounts.iter().position(|a| *a == m.name))
            .map(|id| id as u32)
            .collect();
        self.plan = Plan::excluding(&self.expanded, self.header.batch_size, &ids);
        self.header.plan_fingerprint = self.plan.fingerprint.clone();
        self.header.batches = self.plan.batches.len() as u32;
        self.header.numbers = self.plan.numbers();
        self.header.missing_accounts = missing;
    }
}

/// Before the first write: which of the sheet's accounts (with a valid
/// number) the gateway does not have. One paged listing of the accounts,
/// through the run's pace; each missing account is named with the nearest
/// existing one, so a `Contoso` that should be `contoso` costs no request.
pub async fn missing_accounts(
    client: &ProvisioningClient,
    prepared: &Prepared,
    stop: &mut watch::Receiver<bool>,
) -> Result<Vec<journal::MissingAccount>, crate::export::ExportError> {
    let used: Vec<u32> = {
        let mut used: Vec<u32> = prepared.plan.batches.iter().map(|b| b.account).collect();
        used.dedup();
        used
    };
    if used.is_empty() {
        return Ok(Vec::new());
    }
    let existing = crate::export::account_names(client, 1000, stop).await?;
    let known: std::collections::HashSet<&str> = existing.iter().map(String::as_str).collect();
    Ok(used
        .into_iter()
        .map(|id| prepared.expanded.accounts[id as usize].as_str())
        .filter(|name| !known.contains(name))
        .map(|name| journal::MissingAccount {
            name: name.to_owned(),
            nearest: nearest_account(name, &existing),
        })
        .collect())
}

/// The existing account closest to `name`: one that differs only in case,
/// else the most similar by Jaro-Winkler when it is close enough.
fn nearest_account(name: &str, existing: &[String]) -> Option<String> {
    if let Some(same) = existing.iter().find(|a| a.eq_ignore_ascii_case(name)) {
        return Some(same.clone());
    }
    let lower = name.to_ascii_lowercase();
    existing
        .iter()
        .map(|a| (strsim::jaro_winkler(&lower, &a.to_ascii_lowercase()), a))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .filter(|(score, _)| *score >= 0.85)
        .map(|(_, a)| a.clone())
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Reads, validates (writing the report) and plans. Blocking.
///
/// The input must be a regular file (rows are read again to send them);
/// give standard input, a FIFO or a device to [`prepare_copying`].
pub fn prepare(
    options: &RunOptions,
    endpoint: &str,
    progress: &mut dyn FnMut(u64),
) -> Result<Prepared, EngineError> {
    let input = absolute(&options.input);
    if sheet::input::is_stream(&input) {
        return Err(EngineError::Fatal(format!(
            "{} is not a regular file (a pipe or a device): it cannot be read again to send its rows",
            input.display()
        )));
    }
    prepare_from(options, endpoint, progress, None)
}

/// [`prepare`] for input that can be read only once (`-` for standard
/// input, a FIFO, a device): `source` is validated as it is copied to
/// `options.input`, under the same caps as any sheet, so garbage stops at
/// its first bad bytes; the run then reads its rows from the copy. A copy
/// left incomplete by an error is removed.
pub fn prepare_copying(
    options: &RunOptions,
    endpoint: &str,
    progress: &mut dyn FnMut(u64),
    source: &Path,
) -> Result<Prepared, EngineError> {
    let prepared = prepare_from(options, endpoint, progress, Some(source));
    if prepared.is_err() {
        let _ = std::fs::remove_file(&options.input);
    }
    prepared
}

fn prepare_from(
    options: &RunOptions,
    endpoint: &str,
    progress: &mut dyn FnMut(u64),
    stream: Option<&Path>,
) -> Result<Prepared, EngineError> {
    let input = absolute(&options.input);
    // The fingerprint is taken as the sheet is read, not before: hashing
    // first read all of /dev/urandom before the reader could refuse it.
    let opened = match stream {
        Some(source) => Sheet::open_for_run(source, &options.sheet, Some(&input))?,
        None => Sheet::open_for_run(&input, &options.sheet, None)?,
    };
    let read_fingerprint = opened.fingerprint();
    let sheet_header = opened.header.clone();
    let mut report =
        ReportWriter::create_with(&options.report, opened.several_sheets()).map_err(|source| {
            EngineError::Write {
                path: options.report.clone(),
                source,
            }
        })?;
    let mut first = Vec::new();
    let validated = pipeline::validate(
        opened,
        &options.rules,
        &mut |finding| {
            if first.len() < SHOWN_FINDINGS {
                first.push(finding.clone());
            }
            report.write(finding)
        },
        progress,
    )
    .map_err(|e| match e {
        ValidateError::Report(source) => EngineError::Write {
            path: options.report.clone(),
            source,
        },
        other => other.into(),
    })?;
    report.finish().map_err(|source| EngineError::Write {
        path: options.report.clone(),
        source,
    })?;
    let fingerprint = match read_fingerprint.get() {
        Some(fingerprint) => fingerprint,
        // A workbook, read whole by calamine from a regular file.
        None => sheet::fingerprint(&input).map_err(|source| SheetError::Io {
            file: input.display().to_string(),
            source,
        })?,
    };
    let plan = Plan::new(&validated.expanded, options.batch_size);
    let header = Header {
        version: journal::VERSION,
        action: options.action,
        input,
        fingerprint,
        sheet: options.sheet.clone(),
        rules: options.rules.clone(),
        batch_size: options.batch_size,
        skip_invalid: options.skip_invalid,
        wait_sync: options.wait_sync,
        sync_timeout_secs: options.sync_timeout.as_secs(),
        endpoint: endpoint.to_owned(),
        api_version: crate::model::API_VERSION.to_owned(),
        results: absolute(&options.results),
        report: absolute(&options.report),
        plan_fingerprint: plan.fingerprint.clone(),
        batches: plan.batches.len() as u32,
        numbers: plan.numbers(),
        created: now_rfc3339(),
        missing_accounts: Vec::new(),
    };
    Ok(Prepared {
        header,
        validation: validated.summary,
        first_findings: first,
        expanded: validated.expanded,
        plan,
        sheet_header,
    })
}

/// Re-prepares a run from its checkpoint header, refusing a changed input.
pub fn prepare_resume(
    header: &Header,
    options: &RunOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<Prepared, EngineError> {
    if sheet::input::is_stream(&header.input) {
        return Err(EngineError::Fatal(format!(
            "{} is no longer a regular file; a resume needs the same input: start a new import instead",
            header.input.display()
        )));
    }
    let now = sheet::fingerprint(&header.input).map_err(|source| SheetError::Io {
        file: header.input.display().to_string(),
        source,
    })?;
    if now != header.fingerprint {
        return Err(EngineError::InputChanged {
            input: header.input.clone(),
            was: describe_fingerprint(&header.fingerprint),
            now: describe_fingerprint(&now),
        });
    }
    let mut prepared = prepare(options, &header.endpoint, progress)?;
    prepared.leave_out_accounts(header.missing_accounts.clone());
    if prepared.plan.fingerprint != header.plan_fingerprint {
        return Err(EngineError::PlanChanged {
            input: header.input.clone(),
        });
    }
    prepared.header = header.clone();
    Ok(prepared)
}

fn describe_fingerprint(fingerprint: &str) -> String {
    match fingerprint.split_once(':') {
        Some((size, hash)) => format!("{size} bytes, SHA-256 {}…", &hash[..12.min(hash.len())]),
        None => fingerprint.to_owned(),
    }
}

/// The options a checkpoint's header implies, with the run-time ones given.
pub fn options_from_header(
    header: &Header,
    checkpoint: &Path,
    concurrency: usize,
    retry_failed: bool,
    grace: Duration,
) -> RunOptions {
    RunOptions {
        action: header.action,
        input: header.input.clone(),
        sheet: header.sheet.clone(),
        rules: header.rules.clone(),
        batch_size: header.batch_size,
        skip_invalid: header.skip_invalid,
        results: header.results.clone(),
        checkpoint: checkpoint.to_owned(),
        report: header.report.clone(),
        concurrency,
        wait_sync: header.wait_sync,
        sync_timeout: Duration::from_secs(header.sync_timeout_secs),
        sync_poll: Duration::from_secs(2),
        grace,
        retry_failed,
    }
}

/// The final answer for some positions of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartDone {
    pub lo: u32,
    pub hi: u32,
    pub status: u16,
    pub ok: bool,
    pub code: Option<String>,
    pub message: Option<String>,
    pub request_id: String,
    pub sync: Option<String>,
}

impl PartDone {
    fn record(&self, b: u32) -> Record {
        Record::Done {
            b,
            lo: self.lo,
            hi: self.hi,
            status: self.status,
            ok: self.ok,
            code: self.code.clone(),
            message: self.message.clone(),
            req: self.request_id.clone(),
            sync: self.sync.clone(),
        }
    }

    /// Failed without an answer from the service (5xx or none): whether it
    /// was applied is unknown, so it may be sent again with its own id.
    fn unknown(&self) -> bool {
        !self.ok
            && (self.status == 0 || self.status >= 500 || self.status == 408 || self.status == 429)
    }
}

/// What the checkpoint says of each part.
#[derive(Debug, Default)]
struct Known {
    sent: HashMap<(u32, u32, u32), (String, String)>,
    split: HashMap<(u32, u32, u32), ()>,
    done: HashMap<(u32, u32, u32), PartDone>,
}

impl Known {
    fn from_records(records: &[Record]) -> (Known, bool) {
        let mut known = Known::default();
        let mut finished = false;
        for record in records {
            match record {
                Record::Header(_) => {}
                Record::Sent {
                    b,
                    lo,
                    hi,
                    id,
                    first,
                } => {
                    known
                        .sent
                        .insert((*b, *lo, *hi), (id.clone(), first.clone()));
                }
                Record::Split { b, lo, hi, .. } => {
                    known.split.insert((*b, *lo, *hi), ());
                }
                Record::Done {
                    b,
                    lo,
                    hi,
                    status,
                    ok,
                    code,
                    message,
                    req,
                    sync,
                } => {
                    known.done.insert(
                        (*b, *lo, *hi),
                        PartDone {
                            lo: *lo,
                            hi: *hi,
                            status: *status,
                            ok: *ok,
                            code: code.clone(),
                            message: message.clone(),
                            request_id: req.clone(),
                            sync: sync.clone(),
                        },
                    );
                }
                Record::Finished { .. } => finished = true,
            }
        }
        (known, finished)
    }
}

/// What a run did, for the summary (and `--json`).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub action: String,
    pub input: PathBuf,
    pub results: PathBuf,
    pub checkpoint: PathBuf,
    pub report: PathBuf,
    pub numbers: u64,
    pub ok: u64,
    pub failed: u64,
    pub invalid: u64,
    pub skipped: u64,
    pub batches: u64,
    pub requests: u64,
    pub retries: u64,
    pub throttled: u64,
    pub token_refreshes: u64,
    pub elapsed_seconds: f64,
    /// From the first batch sent to the last answer of this run.
    pub send_seconds: f64,
    /// Numbers answered per minute while sending, in this run.
    pub numbers_per_minute: f64,
    /// Numbers still pending backend sync when the run ended.
    pub sync_pending: u64,
    pub stopped: bool,
    /// Why the run stopped early, when it did for a reason of its own.
    pub stop_reason: Option<String>,
    /// The file that could not be written, when that stopped the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unwritable: Option<PathBuf>,
}

/// The engine's view of progress: numbers with a final answer, of all.
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// Reads the rows of a batch again, keeping the last row (a range's
/// numbers share one).
struct RowSource {
    reader: RowReader,
    last: Option<(u32, RawRow)>,
}

struct Ctx {
    action: Action,
    plan: Plan,
    expanded: Expanded,
    sheet_header: Arc<HeaderMap>,
    reader: Mutex<Option<RowSource>>,
    client: Arc<ProvisioningClient>,
    journal: Journal,
    known: Known,
    retry_failed: bool,
    stop: watch::Receiver<bool>,
    /// Set when the run must stop for a reason of its own (a fatal error).
    halt: watch::Sender<bool>,
    fatal: Mutex<Option<String>>,
}

/// What one part of a batch sends.
enum BatchBody {
    Import(NumbersBody),
    Delete(NumberRefsBody),
}

#[derive(Debug)]
enum PartError {
    Stopped,
    Fatal(String),
    Engine(EngineError),
}

impl From<JournalError> for PartError {
    fn from(e: JournalError) -> Self {
        PartError::Engine(e.into())
    }
}

fn new_repeatability() -> (String, String) {
    (
        uuid::Uuid::new_v4().to_string(),
        httpdate::fmt_http_date(std::time::SystemTime::now()),
    )
}

impl Ctx {
    fn account(&self, b: usize) -> &str {
        &self.expanded.accounts[self.plan.batches[b].account as usize]
    }

    fn body(&self, b: usize, lo: u32, hi: u32) -> Result<BatchBody, EngineError> {
        let entries = self.plan.entries(b, lo as usize, hi as usize);
        match self.action {
            Action::Delete => {
                let numbers = entries
                    .iter()
                    .map(|&e| NumberRef {
                        telephone_number: e164(self.expanded.entries[e as usize].number),
                    })
                    .collect();
                Ok(BatchBody::Delete(NumberRefsBody { numbers }))
            }
            Action::Import => {
                let account = &self.expanded.accounts[self.plan.batches[b].account as usize];
                let mut guard = self.reader.lock().expect("reader lock");
                let RowSource { reader, last } = guard.as_mut().expect("a row reader for imports");
                let mut numbers = Vec::with_capacity(entries.len());
                for &e in entries {
                    let entry = self.expanded.entries[e as usize];
                    let cached = matches!(last, Some((row, _)) if *row == entry.row);
                    if !cached {
                        let place = self.expanded.rows[entry.row as usize];
                        *last = Some((entry.row, reader.read(place.at, place.row)?));
                    }
                    let raw = &last.as_ref().expect("read").1;
                    numbers.push(body::number_from_row(
                        raw,
                        &self.sheet_header,
                        entry.number,
                        account,
                    ));
                }
                Ok(BatchBody::Import(NumbersBody { numbers }))
            }
        }
    }

    /// Sends positions `lo..hi` of batch `b` once (with the transport's
    /// retries): the status and request id of the success, with the
    /// backend sync letters of an import.
    async fn send_part(
        &self,
        b: usize,
        (lo, hi): (u32, u32),
        body: &BatchBody,
        options: &WriteOptions,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(u16, String, Option<String>), ServiceError> {
        let account = self.account(b);
        Ok(match body {
            BatchBody::Import(numbers) => {
                let response = self
                    .client
                    .create_or_update_numbers(account, numbers, options, stop)
                    .await?;
                let sync = response
                    .model()
                    .ok()
                    .and_then(|body| self.sync_letters(b, lo, hi, &body));
                (response.status.as_u16(), response.request_id, sync)
            }
            BatchBody::Delete(numbers) => {
                let response = self
                    .client
                    .delete_numbers(account, numbers, options, stop)
                    .await?;
                (response.status.as_u16(), response.request_id, None)
            }
        })
    }

    /// Backend sync letters for a part, from a 200's body.
    fn sync_letters(&self, b: usize, lo: u32, hi: u32, body: &NumbersBody) -> Option<String> {
        if self.action != Action::Import {
            return None;
        }
        let by_number: HashMap<&str, Option<&str>> = body
            .numbers
            .iter()
            .map(|n| {
                (
                    n.telephone_number.as_str(),
                    n.service_provisioning_status.as_deref(),
                )
            })
            .collect();
        let letters = self
            .plan
            .entries(b, lo as usize, hi as usize)
            .iter()
            .map(|&e| {
                match by_number.get(e164(self.expanded.entries[e as usize].number).as_str()) {
                    Some(Some("pending")) => 'p',
                    Some(Some("synced")) => 's',
                    Some(Some("failed")) => 'f',
                    _ => '-',
                }
            })
            .collect::<String>();
        Some(letters)
    }
}

/// Sends positions `lo..hi` of batch `b` until they have a final answer,
/// halving on a whole-part refusal.
fn process_part(
    ctx: Arc<Ctx>,
    b: u32,
    lo: u32,
    hi: u32,
) -> futures_util::future::BoxFuture<'static, Result<Vec<PartDone>, PartError>> {
    Box::pin(async move {
        let key = (b, lo, hi);
        if let Some(done) = ctx.known.done.get(&key) {
            if !(ctx.retry_failed && done.unknown()) {
                return Ok(vec![done.clone()]);
            }
        }
        if ctx.known.split.contains_key(&key) {
            return split(ctx, b, lo, hi).await;
        }
        let (mut id, mut first) = match ctx.known.sent.get(&key) {
            Some(sent) => sent.clone(),
            None => {
                let fresh = new_repeatability();
                ctx.journal
                    .append(&Record::Sent {
                        b,
                        lo,
                        hi,
                        id: fresh.0.clone(),
                        first: fresh.1.clone(),
                    })
                    .await?;
                fresh
            }
        };
        let body = ctx.body(b as usize, lo, hi).map_err(PartError::Engine)?;
        let mut stop = ctx.stop.clone();
        let mut renewed = false;
        loop {
            let options = WriteOptions {
                repeatability: Some((id.clone(), first.clone())),
            };
            let done = match ctx
                .send_part(b as usize, (lo, hi), &body, &options, &mut stop)
                .await
            {
                Ok((status, request_id, sync)) => PartDone {
                    lo,
                    hi,
                    status,
                    ok: true,
                    code: None,
                    message: None,
                    request_id,
                    sync,
                },
                Err(ServiceError::Stopped) => return Err(PartError::Stopped),
                Err(e) if e.stops_the_run() => return Err(PartError::Fatal(e.to_string())),
                Err(ServiceError::BadRequest(r))
                    if !renewed && r.code.as_deref() == Some("RepeatabilityFirstSentTooOld") =>
                {
                    // The service no longer knows the id; the batch is an
                    // idempotent upsert or delete, so a new id is safe.
                    tracing::warn!("batch {} part {lo}..{hi}: repeatability id expired on the service; sending with a new one", b + 1);
                    (id, first) = new_repeatability();
                    ctx.journal
                        .append(&Record::Sent {
                            b,
                            lo,
                            hi,
                            id: id.clone(),
                            first: first.clone(),
                        })
                        .await?;
                    renewed = true;
                    continue;
                }
                Err(ServiceError::Conflict(r))
                    if r.code.as_deref() == Some("RepeatabilityRequestInProgress") =>
                {
                    let wait = Duration::from_secs(1);
                    if crate::client::pacer::sleep_or_stop(wait, &mut stop)
                        .await
                        .is_err()
                    {
                        return Err(PartError::Stopped);
                    }
                    continue;
                }
                Err(ServiceError::BadRequest(r) | ServiceError::Conflict(r)) if hi - lo > 1 => {
                    ctx.journal
                        .append(&Record::Split {
                            b,
                            lo,
                            hi,
                            status: r.status.as_u16(),
                            code: r.code,
                            req: r.request_id,
                        })
                        .await?;
                    return split(ctx, b, lo, hi).await;
                }
                Err(e) => refused_part(lo, hi, &e),
            };
            ctx.journal.append(&done.record(b)).await?;
            return Ok(vec![done]);
        }
    })
}

/// A part the service refused, or that got no answer.
fn refused_part(lo: u32, hi: u32, error: &ServiceError) -> PartDone {
    match error.refusal() {
        Some(refusal) => {
            let (code, message) = refusal.explain();
            PartDone {
                lo,
                hi,
                status: refusal.status.as_u16(),
                ok: false,
                code,
                message,
                request_id: refusal.request_id.clone(),
                sync: None,
            }
        }
        None => PartDone {
            lo,
            hi,
            status: 0,
            ok: false,
            code: Some("NoAnswer".into()),
            message: Some(error.to_string()),
            request_id: error.request_id().unwrap_or_default().to_owned(),
            sync: None,
        },
    }
}

async fn split(ctx: Arc<Ctx>, b: u32, lo: u32, hi: u32) -> Result<Vec<PartDone>, PartError> {
    let mid = lo + (hi - lo) / 2;
    let mut parts = process_part(ctx.clone(), b, lo, mid).await?;
    parts.extend(process_part(ctx, b, mid, hi).await?);
    Ok(parts)
}

/// Sends every batch of `prepared` not yet answered, then (for imports with
/// `wait_sync`) waits for backend sync, and writes the results in input
/// order. `records` are the checkpoint's, when resuming.
pub async fn execute(
    prepared: Prepared,
    options: &RunOptions,
    client: Arc<ProvisioningClient>,
    journal: Journal,
    records: Vec<Record>,
    stop: watch::Receiver<bool>,
    progress: Progress,
) -> Result<RunSummary, EngineError> {
    let started = Instant::now();
    let (known, _) = Known::from_records(&records);
    let reader = match prepared.header.action {
        Action::Import if !prepared.plan.batches.is_empty() => Some(RowSource {
            reader: RowReader::open(
                &prepared.header.input,
                &prepared.header.sheet,
                prepared.sheet_header.clone(),
            )?,
            last: None,
        }),
        _ => None,
    };
    let (halt, halted) = watch::channel(false);
    // A stop from the user or from the run itself.
    let (either_tx, either) = watch::channel(false);
    {
        let mut user = stop.clone();
        let mut own = halted.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = user.wait_for(|s| *s) => {}
                _ = own.wait_for(|s| *s) => {}
            }
            let _ = either_tx.send(true);
        });
    }
    let ctx = Arc::new(Ctx {
        action: prepared.header.action,
        plan: prepared.plan,
        expanded: prepared.expanded,
        sheet_header: prepared.sheet_header,
        reader: Mutex::new(reader),
        client: client.clone(),
        journal,
        known,
        retry_failed: options.retry_failed,
        stop: either.clone(),
        halt,
        fatal: Mutex::new(None),
    });
    let header = prepared.header;
    let total = ctx.plan.numbers();
    let done_numbers = Arc::new(AtomicU64::new(0));
    let mut outcomes: Vec<Option<Vec<PartDone>>> = vec![None; ctx.plan.batches.len()];

    // The results file as the run goes: what the checkpoint already holds,
    // then each batch as it is answered.
    let results_path = header.results.clone();
    let write_err = |source| EngineError::Write {
        path: results_path.clone(),
        source,
    };
    let mut live = ResultsWriter::create_with(&header.results, ctx.expanded.several_sheets())
        .map_err(write_err)?;
    let mut pending = Vec::new();
    for (b, outcome) in outcomes.iter_mut().enumerate() {
        match known_batch(&ctx, b) {
            Some(parts) => {
                write_batch_lines(&ctx, b, &parts, &mut live, header.action).map_err(write_err)?;
                done_numbers.fetch_add(ctx.plan.batches[b].len as u64, Ordering::Relaxed);
                *outcome = Some(parts);
            }
            None => pending.push(b),
        }
    }
    live.flush().map_err(write_err)?;
    let mut live = Some(live);
    progress(done_numbers.load(Ordering::Relaxed), total);

    let done_before = done_numbers.load(Ordering::Relaxed);
    let sending = Instant::now();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut launched = pending.into_iter();
    let mut engine_error: Option<EngineError> = None;
    let handle =
        |result: Result<(usize, Result<Vec<PartDone>, PartError>), tokio::task::JoinError>,
         outcomes: &mut Vec<Option<Vec<PartDone>>>,
         live: &mut Option<ResultsWriter>,
         engine_error: &mut Option<EngineError>| {
            match result {
                Ok((b, Ok(parts))) => {
                    // The answer is in the checkpoint: a results file that
                    // cannot be written stops the run, and a resume writes
                    // it from the checkpoint.
                    if let Some(writer) = live {
                        let written = write_batch_lines(&ctx, b, &parts, writer, header.action)
                            .and_then(|()| writer.flush());
                        if let Err(source) = written {
                            *live = None;
                            if engine_error.is_none() {
                                *engine_error = Some(write_err(source));
                            }
                            let _ = ctx.halt.send(true);
                        }
                    }
                    done_numbers.fetch_add(ctx.plan.batches[b].len as u64, Ordering::Relaxed);
                    progress(done_numbers.load(Ordering::Relaxed), total);
                    outcomes[b] = Some(parts);
                }
                Ok((_, Err(PartError::Stopped))) => {}
                Ok((_, Err(PartError::Fatal(message)))) => {
                    let mut fatal = ctx.fatal.lock().expect("lock");
                    if fatal.is_none() {
                        tracing::error!("{message}");
                        *fatal = Some(message);
                    }
                    let _ = ctx.halt.send(true);
                }
                Ok((_, Err(PartError::Engine(e)))) => {
                    if engine_error.is_none() {
                        *engine_error = Some(e);
                    }
                    let _ = ctx.halt.send(true);
                }
                Err(join) if join.is_cancelled() => {}
                Err(join) => {
                    if engine_error.is_none() {
                        *engine_error =
                            Some(EngineError::Fatal(format!("a batch task failed: {join}")));
                    }
                    let _ = ctx.halt.send(true);
                }
            }
        };
    let mut either_wait = either.clone();
    loop {
        if *either.borrow() {
            break;
        }
        let Some(b) = launched.next() else { break };
        let permit = tokio::select! {
            permit = semaphore.clone().acquire_owned() => permit.expect("semaphore open"),
            _ = either_wait.wait_for(|s| *s) => break,
        };
        let ctx2 = ctx.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let len = ctx2.plan.batches[b].len;
            (b, process_part(ctx2, b as u32, 0, len).await)
        });
        while let Some(result) = tasks.try_join_next() {
            handle(result, &mut outcomes, &mut live, &mut engine_error);
        }
    }
    if *either.borrow() {
        // Answers in flight may still arrive: give them a moment.
        let deadline = tokio::time::Instant::now() + options.grace;
        while !tasks.is_empty() {
            match tokio::time::timeout_at(deadline, tasks.join_next()).await {
                Ok(Some(result)) => handle(result, &mut outcomes, &mut live, &mut engine_error),
                Ok(None) => break,
                Err(_) => {
                    tasks.abort_all();
                    while let Some(result) = tasks.join_next().await {
                        handle(result, &mut outcomes, &mut live, &mut engine_error);
                    }
                }
            }
        }
    } else {
        while let Some(result) = tasks.join_next().await {
            handle(result, &mut outcomes, &mut live, &mut engine_error);
        }
    }
    let send_seconds = sending.elapsed().as_secs_f64();
    let sent = done_numbers.load(Ordering::Relaxed) - done_before;
    drop(live);
    // A file that cannot be written (a full disk) stops the run like a
    // signal: what was answered is in the checkpoint, and a resume goes on
    // once there is room. Any other failure is the engine's own.
    let unwritable = engine_error.take_if(|e| e.unwritable().is_some());
    if let Some(error) = engine_error {
        return Err(error);
    }
    let user_stopped = *stop.borrow();
    let fatal = ctx.fatal.lock().expect("lock").clone();
    let complete = outcomes.iter().all(Option::is_some);

    // Backend sync, for an import that got through.
    let mut sync_state = sync::SyncState::from_outcomes(&ctx.plan, &ctx.expanded, &outcomes);
    if options.wait_sync && complete && header.action == Action::Import && sync_state.pending() > 0
    {
        let mut stop = either.clone();
        let deadline = Instant::now() + options.sync_timeout;
        sync::wait(
            &client,
            &ctx.expanded,
            &mut sync_state,
            options.sync_poll,
            deadline,
            &mut stop,
        )
        .await;
    }

    let mut summary = RunSummary {
        action: header.action.label().to_owned(),
        input: header.input.clone(),
        results: header.results.clone(),
        checkpoint: ctx.journal.path().to_owned(),
        report: header.report.clone(),
        batches: ctx.plan.batches.len() as u64,
        stopped: !complete,
        stop_reason: unwritable
            .as_ref()
            .filter(|_| !complete)
            .map(ToString::to_string)
            .or_else(|| fatal.clone())
            .or_else(|| user_stopped.then(|| "stopped by a signal".to_owned())),
        unwritable: unwritable
            .as_ref()
            .filter(|_| !complete)
            .and_then(|e| e.unwritable())
            .map(Path::to_owned),
        ..RunSummary::default()
    };
    if let Err(error) = write_final(&ctx, &header, &outcomes, &sync_state, &mut summary) {
        match unwritable {
            // The run is already stopping for a file it could not write;
            // the results are written again on resume. Count without them.
            Some(_) if !complete => count_outcomes(&ctx, &outcomes, &mut summary),
            _ => return Err(error),
        }
    }
    if complete {
        ctx.journal
            .append(&Record::Finished { at: now_rfc3339() })
            .await?;
    }
    let counters = client.counters();
    summary.requests = counters.requests.load(Ordering::Relaxed);
    summary.retries = counters.retries.load(Ordering::Relaxed);
    summary.throttled = counters.throttled.load(Ordering::Relaxed);
    summary.token_refreshes = counters.token_refreshes.load(Ordering::Relaxed);
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    summary.send_seconds = send_seconds;
    summary.numbers_per_minute = sent as f64 * 60.0 / send_seconds.max(0.001);
    summary.sync_pending = sync_state.pending();
    Ok(summary)
}

/// The sheet read again in order, each row asked for checked again: for
/// the words of invalid numbers' errors, which are not kept in memory.
struct RowsAgain {
    sheet: Sheet,
    chunk: Vec<RawRow>,
    filled: usize,
    next: usize,
    /// The last row checked (a range's numbers share one row).
    checked: Option<(u64, crate::validate::RowCheck)>,
}

impl RowsAgain {
    fn open(header: &Header) -> Result<RowsAgain, SheetError> {
        Ok(RowsAgain {
            sheet: Sheet::open(&header.input, &header.sheet)?,
            chunk: Vec::new(),
            filled: 0,
            next: 0,
            checked: None,
        })
    }

    /// The row found at `at` and its check, reading forward to it; `None`
    /// when it is not there (the file changed) or cannot be read.
    fn check(
        &mut self,
        at: u64,
        rules: &crate::validate::RowRules,
    ) -> Option<(&RawRow, &crate::validate::RowCheck)> {
        if self.checked.as_ref().is_none_or(|(was, _)| *was != at) {
            loop {
                while self.next < self.filled && self.chunk[self.next].at < at {
                    self.next += 1;
                }
                if self.next < self.filled {
                    break;
                }
                self.next = 0;
                self.filled = match self.sheet.read_chunk(&mut self.chunk, 256) {
                    Ok(filled) => filled,
                    Err(e) => {
                        tracing::warn!("cannot read rows again for the results: {e}");
                        0
                    }
                };
                if self.filled == 0 {
                    return None;
                }
            }
            let raw = &self.chunk[self.next];
            if raw.at != at {
                return None;
            }
            self.checked = Some((at, rules.check(raw)));
        }
        let raw = self.chunk.get(self.next).filter(|r| r.at == at)?;
        Some((raw, &self.checked.as_ref()?.1))
    }
}

/// The parts of batch `b` the checkpoint answered in full, if it did.
fn known_batch(ctx: &Ctx, b: usize) -> Option<Vec<PartDone>> {
    fn collect(ctx: &Ctx, b: u32, lo: u32, hi: u32, out: &mut Vec<PartDone>) -> bool {
        if let Some(done) = ctx.known.done.get(&(b, lo, hi)) {
            if ctx.retry_failed && done.unknown() {
                return false;
            }
            out.push(done.clone());
            return true;
        }
        if ctx.known.split.contains_key(&(b, lo, hi)) {
            let mid = lo + (hi - lo) / 2;
            return collect(ctx, b, lo, mid, out) && collect(ctx, b, mid, hi, out);
        }
        false
    }
    let mut parts = Vec::new();
    collect(ctx, b as u32, 0, ctx.plan.batches[b].len, &mut parts).then_some(parts)
}

fn sync_label(letter: char) -> Option<&'static str> {
    match letter {
        'p' => Some("pending"),
        's' => Some("synced"),
        'f' => Some("failed"),
        _ => None,
    }
}

fn write_batch_lines(
    ctx: &Ctx,
    b: usize,
    parts: &[PartDone],
    out: &mut ResultsWriter,
    action: Action,
) -> std::io::Result<()> {
    let account = &ctx.expanded.accounts[ctx.plan.batches[b].account as usize];
    for part in parts {
        let letters: Vec<char> = part
            .sync
            .as_deref()
            .map(|s| s.chars().collect())
            .unwrap_or_default();
        for (k, &e) in ctx
            .plan
            .entries(b, part.lo as usize, part.hi as usize)
            .iter()
            .enumerate()
        {
            let entry = ctx.expanded.entries[e as usize];
            let number = e164(entry.number);
            let row = &ctx.expanded.rows[entry.row as usize];
            out.write(&ResultLine {
                sheet: ctx.expanded.sheet_of(row),
                row: row.row,
                telephone_number: &number,
                account,
                action: action.label(),
                outcome: Some(if part.ok {
                    Outcome::Ok
                } else {
                    Outcome::Failed
                }),
                http_status: Some(part.status),
                error_code: part.code.as_deref(),
                error_message: part.message.as_deref(),
                sync: letters.get(k).copied().and_then(sync_label),
                batch: Some(b as u32 + 1),
                request_id: Some(&part.request_id),
            })?;
        }
    }
    Ok(())
}

/// Counts outcomes into `summary` from the answers alone, for a run whose
/// results could not be written.
fn count_outcomes(ctx: &Ctx, outcomes: &[Option<Vec<PartDone>>], summary: &mut RunSummary) {
    summary.numbers = ctx.expanded.entries.len() as u64;
    summary.invalid = (0..ctx.expanded.entries.len())
        .filter(|&e| ctx.expanded.is_invalid(e) || ctx.expanded.entries[e].account == NO_ACCOUNT)
        .count() as u64;
    let (mut ok, mut failed) = (0, 0);
    for part in outcomes.iter().flatten().flatten() {
        let n = (part.hi - part.lo) as u64;
        if part.ok {
            ok += n;
        } else {
            failed += n;
        }
    }
    summary.ok = ok;
    summary.failed = failed;
    summary.skipped = summary.numbers - summary.invalid - ok - failed;
}

/// Rewrites the results in input order, counting outcomes into `summary`.
fn write_final(
    ctx: &Ctx,
    header: &Header,
    outcomes: &[Option<Vec<PartDone>>],
    sync_state: &sync::SyncState,
    summary: &mut RunSummary,
) -> Result<(), EngineError> {
    // Where each planned entry sits: its batch and position.
    let mut place = vec![(u32::MAX, 0u32); ctx.expanded.entries.len()];
    for (b, batch) in ctx.plan.batches.iter().enumerate() {
        for (k, &e) in ctx
            .plan
            .entries(b, 0, batch.len as usize)
            .iter()
            .enumerate()
        {
            place[e as usize] = (b as u32, k as u32);
        }
    }
    // The words of invalid numbers' errors are not kept in memory: their
    // rows are read again, in order, and checked again.
    let invalid_entries = ctx.expanded.invalid_count() > 0
        || ctx.expanded.entries.iter().any(|e| e.account == NO_ACCOUNT);
    let mut again = if invalid_entries {
        match RowsAgain::open(header) {
            Ok(again) => Some(again),
            Err(e) => {
                tracing::warn!("cannot read rows again for the results: {e}");
                None
            }
        }
    } else {
        None
    };
    let rules = crate::validate::RowRules::new(&ctx.sheet_header, &header.rules).ok();
    let duplicates =
        invalid_entries.then(|| pipeline::DuplicateIndex::of_duplicates(&ctx.expanded));
    let stop_reason = summary.stop_reason.clone();
    let action = header.action.label();
    let mut counts = [0u64; 4];
    let missing_messages: HashMap<u32, String> = header
        .missing_accounts
        .iter()
        .filter_map(|m| {
            let id = ctx.expanded.accounts.iter().position(|a| *a == m.name)?;
            Some((id as u32, m.message()))
        })
        .collect();
    results::write_atomically(&header.results, ctx.expanded.several_sheets(), |out| {
        for (e, entry) in ctx.expanded.entries.iter().enumerate() {
            let row = ctx.expanded.rows[entry.row as usize];
            let mut number = if entry.number == 0 {
                String::new()
            } else {
                e164(entry.number)
            };
            let mut account = ctx.expanded.account_of(entry).unwrap_or("").to_owned();
            let mut line = ResultLine {
                sheet: ctx.expanded.sheet_of(&row),
                row: row.row,
                action,
                ..ResultLine::default()
            };
            let (b, k) = place[e];
            let sync_text;
            let errors_text;
            if ctx.expanded.is_invalid(e) || entry.account == NO_ACCOUNT {
                let checked = again
                    .as_mut()
                    .zip(rules.as_ref())
                    .and_then(|(again, rules)| again.check(row.at, rules));
                if let Some((raw, _)) = checked {
                    if number.is_empty() {
                        number = crate::validate::number_text(raw, &ctx.sheet_header);
                    }
                    if account.is_empty() {
                        account = raw
                            .get(&ctx.sheet_header, crate::sheet::Column::AccountName)
                            .unwrap_or("")
                            .to_owned();
                    }
                }
                line.outcome = Some(Outcome::Invalid);
                let duplicate;
                if let Some((code, _)) = ctx.expanded.error_of(e) {
                    line.error_code = Some(code.as_str());
                    let first = match code {
                        crate::validate::Code::Duplicate => {
                            duplicate = duplicates
                                .as_ref()
                                .and_then(|d| d.finding(&ctx.expanded, e));
                            duplicate.as_ref()
                        }
                        _ => checked
                            .and_then(|(_, check)| pipeline::first_error(&ctx.expanded, e, check)),
                    };
                    line.error_message = Some(match first {
                        Some(finding) => &finding.message,
                        None => "see the validation report",
                    });
                }
                counts[1] += 1;
                line.telephone_number = &number;
                line.account = &account;
                out.write(&line)?;
                continue;
            }
            if let Some(missing) = missing_messages.get(&entry.account) {
                line.outcome = Some(Outcome::Failed);
                line.error_code = Some("AccountNotFound");
                line.error_message = Some(missing);
                counts[2] += 1;
                line.telephone_number = &number;
                line.account = &account;
                out.write(&line)?;
                continue;
            }
            match outcomes[b as usize].as_ref() {
                None => {
                    line.outcome = Some(Outcome::Skipped);
                    line.error_message = Some(
                        stop_reason
                            .as_deref()
                            .unwrap_or("not sent: the run stopped early; resume it to send"),
                    );
                    line.batch = Some(b + 1);
                    counts[3] += 1;
                }
                Some(parts) => {
                    let part = parts
                        .iter()
                        .find(|p| p.lo <= k && k < p.hi)
                        .expect("parts cover the batch");
                    line.http_status = Some(part.status);
                    line.batch = Some(b + 1);
                    line.request_id = Some(&part.request_id);
                    line.error_code = part.code.as_deref();
                    line.error_message = part.message.as_deref();
                    let letter = part
                        .sync
                        .as_deref()
                        .and_then(|s| s.chars().nth((k - part.lo) as usize))
                        .unwrap_or('-');
                    let (letter, errors) = sync_state.status(e as u32).unwrap_or((letter, None));
                    line.sync = sync_label(letter);
                    if part.ok && letter == 'f' {
                        // The write was taken but the backend failed it.
                        line.outcome = Some(Outcome::Failed);
                        errors_text = errors.unwrap_or_default();
                        let (code, message) = sync::first_error(&errors_text);
                        sync_text = (code, message);
                        line.error_code = Some(&sync_text.0);
                        line.error_message = Some(&sync_text.1);
                        counts[2] += 1;
                    } else if part.ok {
                        line.outcome = Some(Outcome::Ok);
                        counts[0] += 1;
                    } else {
                        line.outcome = Some(Outcome::Failed);
                        counts[2] += 1;
                    }
                }
            }
            line.telephone_number = &number;
            line.account = &account;
            out.write(&line)?;
        }
        Ok(())
    })
    .map_err(|source| EngineError::Write {
        path: header.results.clone(),
        source,
    })?;
    summary.numbers = ctx.expanded.entries.len() as u64;
    summary.ok = counts[0];
    summary.invalid = counts[1];
    summary.failed = counts[2];
    summary.skipped = counts[3];
    Ok(())
}
