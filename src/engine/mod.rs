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
pub mod checkpoint;
pub mod results;
pub mod sync;

use crate::client::{ClientError, ProvisioningClient, ServiceError, WriteOptions};
use crate::model::{NumberRef, NumberRefsBody, NumbersBody, ProvisioningStatus};
use crate::plan::Plan;
use crate::runner::{self, Limits, Panicked, Step, Stop, StopReason, UnitError};
use crate::sheet::{self, HeaderMap, RawRow, RowReader, Sheet, SheetError, SheetOptions};
use crate::validate::pipeline::{
    self, Expanded, Summary as ValidationSummary, ValidateError, NO_ACCOUNT,
};
use crate::validate::{e164, report::ReportWriter, Finding, RuleOptions, SHOWN_FINDINGS};
use checkpoint::{Action, Checkpoint, Entry, Header, JournalError, SyncStates};
use results::{Outcome, ResultLine, ResultsWriter};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
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
    /// Keep the checkpoint of a finished run. Without it the checkpoint is
    /// removed, unless a part failed without a usable answer (5xx or none):
    /// `resume --retry-failed` needs it to send those again.
    pub keep_checkpoint: bool,
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
    /// The checkpoint's run and this one differ (on resume: the input).
    #[error("{0}; a resume needs the same input: start a new import instead")]
    Changed(runner::Mismatch),
    #[error("the plan of {input} differs from the checkpoint's (same bytes, other batches: was the checkpoint written by another acgbulk version?)")]
    PlanChanged { input: PathBuf },
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
    pub fn leave_out_accounts(&mut self, missing: Vec<checkpoint::MissingAccount>) {
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
) -> Result<Vec<checkpoint::MissingAccount>, crate::export::ExportError> {
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
        .map(|name| checkpoint::MissingAccount {
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
    let validation = Some((&validated.summary, &validated.expanded));
    let settings = crate::validate::report::settings(&input, &options.rules);
    report
        .finish_with(validation, &settings)
        .map_err(|source| EngineError::Write {
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
        version: checkpoint::VERSION,
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
        settings: runner::Settings::new(),
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
        return Err(EngineError::Changed(runner::Mismatch::Input {
            input: header.input.clone(),
            was: describe_fingerprint(&header.fingerprint),
            now: describe_fingerprint(&now),
        }));
    }
    continue_prepared(prepare(options, &header.endpoint, progress)?, header)
}

/// A run prepared afresh, made the continuation of the checkpoint's run
/// with `header`: the accounts that run left out are left out again, and
/// the plan must then be the same.
pub fn continue_prepared(mut prepared: Prepared, header: &Header) -> Result<Prepared, EngineError> {
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

/// The options a checkpoint's header implies; the run-time ones
/// (concurrency, grace, sync polling, retry, keep) are the defaults, for
/// the caller to set from its flags and the kept settings.
pub fn options_from_header(header: &Header, checkpoint: &Path) -> RunOptions {
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
        concurrency: 1,
        wait_sync: header.wait_sync,
        sync_timeout: Duration::from_secs(header.sync_timeout_secs),
        sync_poll: Duration::from_secs(2),
        grace: Duration::from_secs(10),
        retry_failed: false,
        keep_checkpoint: false,
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
    pub sync: Option<SyncStates>,
}

impl PartDone {
    fn entry(&self, b: u32) -> Entry {
        Entry::Done {
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
    fn from_entries(entries: Vec<Entry>) -> Known {
        let mut known = Known::default();
        for entry in entries {
            match entry {
                Entry::Sent {
                    b,
                    lo,
                    hi,
                    id,
                    first,
                } => {
                    known.sent.insert((b, lo, hi), (id, first));
                }
                Entry::Split { b, lo, hi, .. } => {
                    known.split.insert((b, lo, hi), ());
                }
                Entry::Done {
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
                    let done = PartDone {
                        lo,
                        hi,
                        status,
                        ok,
                        code,
                        message,
                        request_id: req,
                        sync,
                    };
                    known.done.insert((b, lo, hi), done);
                }
                Entry::Header(_) | Entry::Finished { .. } => {}
            }
        }
        known
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
    /// The run finished and its checkpoint was removed.
    pub checkpoint_removed: bool,
    /// Why the run stopped early, when it did for a reason of its own.
    pub stop_reason: Option<StopReason>,
    /// The file that could not be written, when that stopped the run.
    pub unwritable: Option<PathBuf>,
}

/// The engine's view of progress, each time a batch has its final answer.
pub type Progress = Arc<dyn Fn(Answered) + Send + Sync>;

/// Numbers with a final answer (`done`, of `total` to send), and how many
/// of them were taken (`ok`) or refused (`failed`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Answered {
    pub done: u64,
    pub total: u64,
    pub ok: u64,
    pub failed: u64,
}

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
    checkpoint: Checkpoint,
    known: Known,
    retry_failed: bool,
}

/// What one part of a batch sends.
enum BatchBody {
    Import(NumbersBody),
    Delete(NumberRefsBody),
}

/// A unit of an import: positions `lo..hi` of batch `b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Part {
    b: u32,
    lo: u32,
    hi: u32,
}

impl Part {
    fn halves(self) -> Vec<Part> {
        let mid = self.lo + (self.hi - self.lo) / 2;
        vec![Part { hi: mid, ..self }, Part { lo: mid, ..self }]
    }
}

type PartStep = Step<Part, (u32, PartDone)>;

impl From<Panicked> for EngineError {
    fn from(Panicked(message): Panicked) -> Self {
        EngineError::Fatal(message)
    }
}

/// A checkpoint that cannot be written (a full disk) stops the run;
/// anything else about it is the engine's failure.
fn journal_unit_error(e: JournalError) -> UnitError<EngineError> {
    match StopReason::of_journal(&e) {
        Some(reason) => UnitError::Stop(reason),
        None => UnitError::Failed(e.into()),
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
                let account = self.account(b);
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
    /// backend sync states of an import.
    async fn send_batch(
        &self,
        b: usize,
        (lo, hi): (u32, u32),
        body: &BatchBody,
        options: &WriteOptions,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(u16, String, Option<SyncStates>), ServiceError> {
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
                    .map(|body| self.sync_states(b, lo, hi, &body));
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

    /// Backend sync states for a part, from a 200's body.
    fn sync_states(&self, b: usize, lo: u32, hi: u32, body: &NumbersBody) -> SyncStates {
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
        let states = self
            .plan
            .entries(b, lo as usize, hi as usize)
            .iter()
            .map(|&e| {
                let number = e164(self.expanded.entries[e as usize].number);
                by_number
                    .get(number.as_str())
                    .copied()
                    .flatten()
                    .and_then(ProvisioningStatus::parse_exact)
            })
            .collect();
        SyncStates(states)
    }
}

/// The repeatability id and first-sent date of `part`: the checkpoint's,
/// or new ones recorded there first.
async fn repeatability(
    ctx: &Ctx,
    part: Part,
    renew: bool,
) -> Result<(String, String), UnitError<EngineError>> {
    if !renew {
        if let Some(sent) = ctx.known.sent.get(&(part.b, part.lo, part.hi)) {
            return Ok(sent.clone());
        }
    }
    let (id, first) = new_repeatability();
    let sent = Entry::Sent {
        b: part.b,
        lo: part.lo,
        hi: part.hi,
        id: id.clone(),
        first: first.clone(),
    };
    ctx.checkpoint
        .append(&sent)
        .await
        .map_err(journal_unit_error)?;
    Ok((id, first))
}

/// Sends `part` until it has a final answer; a whole-part refusal yields
/// its halves.
async fn send_part(
    ctx: Arc<Ctx>,
    part: Part,
    stop: Stop,
) -> Result<PartStep, UnitError<EngineError>> {
    let Part { b, lo, hi } = part;
    if let Some(done) = ctx.known.done.get(&(b, lo, hi)) {
        if !(ctx.retry_failed && done.unknown()) {
            return Ok(Step::done((b, done.clone())));
        }
    }
    if ctx.known.split.contains_key(&(b, lo, hi)) {
        return Ok(Step::yields(part.halves()));
    }
    let (mut id, mut first) = repeatability(&ctx, part, false).await?;
    let body = ctx.body(b as usize, lo, hi).map_err(UnitError::Failed)?;
    let mut watch = stop.watch();
    let mut renewed = false;
    loop {
        let options = WriteOptions {
            repeatability: Some((id.clone(), first.clone())),
        };
        let sent = ctx
            .send_batch(b as usize, (lo, hi), &body, &options, &mut watch)
            .await;
        // An outage or a refusal of the whole run leaves the part
        // unanswered, for the resume to send again with the same id.
        if let Some(reason) = sent.as_ref().err().and_then(StopReason::of_service) {
            return Err(UnitError::Stop(reason));
        }
        let done = match sent {
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
            Err(ServiceError::Client(ClientError::Stopped)) => return Err(UnitError::Stopped),
            Err(ServiceError::BadRequest(r))
                if !renewed && r.code.as_deref() == Some("RepeatabilityFirstSentTooOld") =>
            {
                // The service no longer knows the id; the batch is an
                // idempotent upsert or delete, so a new id is safe.
                tracing::warn!("batch {} part {lo}..{hi}: repeatability id expired on the service; sending with a new one", b + 1);
                (id, first) = repeatability(&ctx, part, true).await?;
                renewed = true;
                continue;
            }
            Err(ServiceError::Conflict(r))
                if r.code.as_deref() == Some("RepeatabilityRequestInProgress") =>
            {
                let wait = Duration::from_secs(1);
                if crate::client::pacer::sleep_or_stop(wait, &mut watch)
                    .await
                    .is_err()
                {
                    return Err(UnitError::Stopped);
                }
                continue;
            }
            Err(ServiceError::BadRequest(r) | ServiceError::Conflict(r)) if hi - lo > 1 => {
                let split = Entry::Split {
                    b,
                    lo,
                    hi,
                    status: r.status.as_u16(),
                    code: r.code,
                    req: r.request_id,
                };
                ctx.checkpoint
                    .append(&split)
                    .await
                    .map_err(journal_unit_error)?;
                return Ok(Step::yields(part.halves()));
            }
            Err(e) => refused_part(lo, hi, &e),
        };
        ctx.checkpoint
            .append(&done.entry(b))
            .await
            .map_err(journal_unit_error)?;
        return Ok(Step::done((b, done)));
    }
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

/// The answers of a run as they come: each batch's parts, the results
/// file written a batch at a time, and progress.
struct Tally {
    outcomes: Vec<Option<Vec<PartDone>>>,
    /// Parts answered so far of batches not yet whole, and how many
    /// positions they cover.
    partial: HashMap<usize, (Vec<PartDone>, u32)>,
    live: Option<ResultsWriter>,
    results: PathBuf,
    answered: Answered,
    progress: Progress,
}

impl Tally {
    /// Starts the results file with what the checkpoint already answered;
    /// returns the batches still to send.
    fn replay(
        ctx: &Ctx,
        results: &Path,
        progress: Progress,
    ) -> Result<(Tally, Vec<usize>), EngineError> {
        let write_err = |source| EngineError::Write {
            path: results.to_owned(),
            source,
        };
        // A workbook is written whole at the end (or on a stop) instead.
        let mut live = (!results::is_workbook(results))
            .then(|| ResultsWriter::create_with(results, ctx.expanded.several_sheets()))
            .transpose()
            .map_err(write_err)?;
        let mut tally = Tally {
            outcomes: vec![None; ctx.plan.batches.len()],
            partial: HashMap::new(),
            live: None,
            results: results.to_owned(),
            answered: Answered {
                total: ctx.plan.numbers(),
                ..Answered::default()
            },
            progress,
        };
        let mut pending = Vec::new();
        for b in 0..ctx.plan.batches.len() {
            match known_batch(ctx, b) {
                Some(parts) => {
                    if let Some(live) = &mut live {
                        write_batch_lines(ctx, b, &parts, live).map_err(write_err)?;
                    }
                    tally.answered.count(&parts);
                    tally.outcomes[b] = Some(parts);
                }
                None => pending.push(b),
            }
        }
        if let Some(live) = &mut live {
            live.flush().map_err(write_err)?;
        }
        tally.live = live;
        (tally.progress)(tally.answered);
        Ok((tally, pending))
    }

    /// Takes a part's answer; a batch whole goes to the results file.
    fn answer(
        &mut self,
        ctx: &Ctx,
        b: usize,
        part: PartDone,
    ) -> Result<(), UnitError<EngineError>> {
        let len = ctx.plan.batches[b].len;
        let (parts, covered) = self.partial.entry(b).or_default();
        *covered += part.hi - part.lo;
        parts.push(part);
        if *covered < len {
            return Ok(());
        }
        let (mut parts, _) = self.partial.remove(&b).expect("the batch's parts");
        parts.sort_by_key(|p| p.lo);
        let mut unwritable = None;
        // The answer is in the checkpoint: a results file that cannot be
        // written stops the run, and a resume writes it from the checkpoint.
        if let Some(writer) = &mut self.live {
            let written = write_batch_lines(ctx, b, &parts, writer).and_then(|()| writer.flush());
            if let Err(source) = written {
                self.live = None;
                unwritable = Some(StopReason::cannot_write(&self.results, &source));
            }
        }
        self.answered.count(&parts);
        (self.progress)(self.answered);
        self.outcomes[b] = Some(parts);
        unwritable.map_or(Ok(()), |reason| Err(UnitError::Stop(reason)))
    }
}

impl Answered {
    /// Adds a whole batch's answers.
    fn count(&mut self, parts: &[PartDone]) {
        for part in parts {
            let numbers = u64::from(part.hi - part.lo);
            self.done += numbers;
            if part.ok {
                self.ok += numbers;
            } else {
                self.failed += numbers;
            }
        }
    }
}

/// Sends every batch of `prepared` not yet answered, then (for imports with
/// `wait_sync`) waits for backend sync, and writes the results in input
/// order. `entries` are the checkpoint's, when resuming.
pub async fn execute(
    prepared: Prepared,
    options: &RunOptions,
    client: Arc<ProvisioningClient>,
    checkpoint: Checkpoint,
    entries: Vec<Entry>,
    stop: &Stop,
    progress: Progress,
) -> Result<RunSummary, EngineError> {
    let started = Instant::now();
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
    let ctx = Arc::new(Ctx {
        action: prepared.header.action,
        plan: prepared.plan,
        expanded: prepared.expanded,
        sheet_header: prepared.sheet_header,
        reader: Mutex::new(reader),
        client: client.clone(),
        checkpoint,
        known: Known::from_entries(entries),
        retry_failed: options.retry_failed,
    });
    let header = prepared.header;
    let (mut tally, pending) = Tally::replay(&ctx, &header.results, progress)?;
    let done_before = tally.answered.done;
    let sending = Instant::now();
    let units = pending.into_iter().map(|b| Part {
        b: b as u32,
        lo: 0,
        hi: ctx.plan.batches[b].len,
    });
    let limits = Limits {
        concurrency: options.concurrency,
        grace: Some(options.grace),
    };
    let work = |part, stop| send_part(ctx.clone(), part, stop);
    let ran = runner::run(units, limits, stop, work, |(b, part)| {
        tally.answer(&ctx, b as usize, part)
    })
    .await;
    let send_seconds = sending.elapsed().as_secs_f64();
    let sent = tally.answered.done - done_before;
    drop(tally.live.take());
    if let Some(error) = ran.error {
        return Err(error);
    }
    let outcomes = tally.outcomes;
    let complete = outcomes.iter().all(Option::is_some);
    let stop_reason = ran.stopped.filter(|_| !complete);

    // Backend sync, for an import that got through.
    let mut sync_state = sync::SyncState::from_outcomes(&ctx.plan, &ctx.expanded, &outcomes);
    if options.wait_sync && complete && header.action == Action::Import && sync_state.pending() > 0
    {
        let mut stop = stop.watch();
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
        checkpoint: ctx.checkpoint.path().to_owned(),
        report: header.report.clone(),
        batches: ctx.plan.batches.len() as u64,
        send_seconds,
        stopped: !complete,
        unwritable: stop_reason
            .as_ref()
            .and_then(StopReason::file)
            .map(Path::to_owned),
        stop_reason,
        ..RunSummary::default()
    };
    if let Err(error) = write_final(&ctx, &header, &outcomes, &sync_state, &mut summary) {
        match summary.unwritable {
            // The run is already stopping for a file it could not write;
            // the results are written again on resume. Count without them.
            Some(_) => count_outcomes(&ctx, &outcomes, &mut summary),
            None => return Err(error),
        }
    }
    if complete {
        ctx.checkpoint
            .append(&Entry::Finished { at: now_rfc3339() })
            .await?;
        let retryable = outcomes.iter().flatten().flatten().any(PartDone::unknown);
        if !options.keep_checkpoint && !retryable {
            runner::checkpoint::remove(ctx.checkpoint.path())?;
            summary.checkpoint_removed = true;
        }
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

fn write_batch_lines(
    ctx: &Ctx,
    b: usize,
    parts: &[PartDone],
    out: &mut ResultsWriter,
) -> std::io::Result<()> {
    let account = &ctx.expanded.accounts[ctx.plan.batches[b].account as usize];
    for part in parts {
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
                action: ctx.action.label(),
                outcome: Some(if part.ok {
                    Outcome::Ok
                } else {
                    Outcome::Failed
                }),
                http_status: Some(part.status),
                error_code: part.code.as_deref(),
                error_message: part.message.as_deref(),
                sync: part
                    .sync
                    .as_ref()
                    .and_then(|s| s.get(k))
                    .map(ProvisioningStatus::as_str),
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

/// Outcomes counted as the final results are written: ok, invalid,
/// failed, skipped.
#[derive(Default)]
struct Counts([u64; 4]);

/// What the final results need beyond the answers: invalid rows' words,
/// missing accounts, backend sync learnt by polling.
struct FinalResults<'a> {
    ctx: &'a Ctx,
    outcomes: &'a [Option<Vec<PartDone>>],
    sync_state: &'a sync::SyncState,
    /// Where each planned entry sits: its batch and position.
    place: Vec<(u32, u32)>,
    again: Option<RowsAgain>,
    rules: Option<crate::validate::RowRules<'a>>,
    duplicates: Option<pipeline::DuplicateIndex>,
    missing: HashMap<u32, String>,
    not_sent: String,
    counts: Counts,
}

impl<'a> FinalResults<'a> {
    fn new(
        ctx: &'a Ctx,
        header: &'a Header,
        outcomes: &'a [Option<Vec<PartDone>>],
        sync_state: &'a sync::SyncState,
        stop_reason: Option<&StopReason>,
    ) -> FinalResults<'a> {
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
        let again = invalid_entries
            .then(|| {
                RowsAgain::open(header)
                    .inspect_err(|e| tracing::warn!("cannot read rows again for the results: {e}"))
                    .ok()
            })
            .flatten();
        let missing = header
            .missing_accounts
            .iter()
            .filter_map(|m| {
                let id = ctx.expanded.accounts.iter().position(|a| *a == m.name)?;
                Some((id as u32, m.message()))
            })
            .collect();
        FinalResults {
            ctx,
            outcomes,
            sync_state,
            place,
            again,
            rules: crate::validate::RowRules::new(&ctx.sheet_header, &header.rules).ok(),
            duplicates: invalid_entries
                .then(|| pipeline::DuplicateIndex::of_duplicates(&ctx.expanded)),
            missing,
            not_sent: stop_reason.map_or_else(
                || "not sent: the run stopped early; resume it to send".to_owned(),
                ToString::to_string,
            ),
            counts: Counts::default(),
        }
    }

    /// An entry's line, with its place in the sheet.
    fn line(&self, e: usize) -> ResultLine<'a> {
        let expanded = &self.ctx.expanded;
        let row = &expanded.rows[expanded.entries[e].row as usize];
        ResultLine {
            sheet: expanded.sheet_of(row),
            row: row.row,
            action: self.ctx.action.label(),
            ..ResultLine::default()
        }
    }

    /// The line of an invalid entry, with the words of its first error.
    fn invalid(&mut self, e: usize, out: &mut ResultsWriter) -> std::io::Result<()> {
        let ctx = self.ctx;
        let mut line = self.line(e);
        let entry = ctx.expanded.entries[e];
        let row = ctx.expanded.rows[entry.row as usize];
        let mut number = if entry.number == 0 {
            String::new()
        } else {
            e164(entry.number)
        };
        let mut account = ctx.expanded.account_of(&entry).unwrap_or("").to_owned();
        let checked = self
            .again
            .as_mut()
            .zip(self.rules.as_ref())
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
                    duplicate = self
                        .duplicates
                        .as_ref()
                        .and_then(|d| d.finding(&ctx.expanded, e));
                    duplicate.as_ref()
                }
                _ => checked.and_then(|(_, check)| pipeline::first_error(&ctx.expanded, e, check)),
            };
            line.error_message = Some(match first {
                Some(finding) => &finding.message,
                None => "see the validation report",
            });
        }
        self.counts.0[1] += 1;
        line.telephone_number = &number;
        line.account = &account;
        out.write(&line)
    }

    /// The line of a planned entry: its answer, or why it has none.
    fn planned(&mut self, e: usize, out: &mut ResultsWriter) -> std::io::Result<()> {
        let ctx = self.ctx;
        let mut line = self.line(e);
        let entry = ctx.expanded.entries[e];
        let number = if entry.number == 0 {
            String::new()
        } else {
            e164(entry.number)
        };
        let account = ctx.expanded.account_of(&entry).unwrap_or("");
        line.telephone_number = &number;
        line.account = account;
        if let Some(missing) = self.missing.get(&entry.account) {
            line.outcome = Some(Outcome::Failed);
            line.error_code = Some("AccountNotFound");
            line.error_message = Some(missing);
            self.counts.0[2] += 1;
            return out.write(&line);
        }
        let (b, k) = self.place[e];
        line.batch = Some(b + 1);
        let Some(parts) = self.outcomes[b as usize].as_ref() else {
            line.outcome = Some(Outcome::Skipped);
            line.error_message = Some(&self.not_sent);
            self.counts.0[3] += 1;
            return out.write(&line);
        };
        let part = parts
            .iter()
            .find(|p| p.lo <= k && k < p.hi)
            .expect("parts cover the batch");
        line.http_status = Some(part.status);
        line.request_id = Some(&part.request_id);
        line.error_code = part.code.as_deref();
        line.error_message = part.message.as_deref();
        let answered = part
            .sync
            .as_ref()
            .and_then(|s| s.get((k - part.lo) as usize));
        let (state, errors) = match self.sync_state.status(e as u32) {
            Some(learnt) => learnt,
            None => (answered, None),
        };
        line.sync = state.map(ProvisioningStatus::as_str);
        let sync_failure;
        if part.ok && state == Some(ProvisioningStatus::Failed) {
            // The write was taken but the backend failed it.
            line.outcome = Some(Outcome::Failed);
            sync_failure = sync::first_error(&errors.unwrap_or_default());
            line.error_code = Some(&sync_failure.0);
            line.error_message = Some(&sync_failure.1);
            self.counts.0[2] += 1;
        } else if part.ok {
            line.outcome = Some(Outcome::Ok);
            self.counts.0[0] += 1;
        } else {
            line.outcome = Some(Outcome::Failed);
            self.counts.0[2] += 1;
        }
        out.write(&line)
    }
}

/// Rewrites the results in input order, counting outcomes into `summary`.
fn write_final(
    ctx: &Ctx,
    header: &Header,
    outcomes: &[Option<Vec<PartDone>>],
    sync_state: &sync::SyncState,
    summary: &mut RunSummary,
) -> Result<(), EngineError> {
    let mut lines = FinalResults::new(
        ctx,
        header,
        outcomes,
        sync_state,
        summary.stop_reason.as_ref(),
    );
    let settings = || run_settings(header, summary);
    results::write_atomically(
        &header.results,
        ctx.expanded.several_sheets(),
        settings,
        |out| {
            for (e, entry) in ctx.expanded.entries.iter().enumerate() {
                if ctx.expanded.is_invalid(e) || entry.account == NO_ACCOUNT {
                    lines.invalid(e, out)?;
                } else {
                    lines.planned(e, out)?;
                }
            }
            Ok(())
        },
    )
    .map_err(|source| EngineError::Write {
        path: header.results.clone(),
        source,
    })?;
    let [ok, invalid, failed, skipped] = lines.counts.0;
    summary.numbers = ctx.expanded.entries.len() as u64;
    summary.ok = ok;
    summary.invalid = invalid;
    summary.failed = failed;
    summary.skipped = skipped;
    Ok(())
}

/// The run's settings and times, for a results workbook's Summary.
fn run_settings(header: &Header, summary: &RunSummary) -> Vec<(String, String)> {
    let path = |p: &Path| p.display().to_string();
    let mut settings = vec![
        ("action", header.action.label().to_owned()),
        ("input", path(&header.input)),
        ("endpoint", header.endpoint.clone()),
        ("API version", header.api_version.clone()),
        ("results", path(&header.results)),
        ("report", path(&header.report)),
        ("checkpoint", path(&summary.checkpoint)),
        ("batch size", header.batch_size.to_string()),
        ("batches", header.batches.to_string()),
        ("skip invalid", header.skip_invalid.to_string()),
        ("wait for sync", header.wait_sync.to_string()),
        ("run created", header.created.clone()),
        ("results written", now_rfc3339()),
        (
            "this run sent for",
            format!("{:.1} s", summary.send_seconds),
        ),
    ];
    let state = match &summary.stop_reason {
        _ if !summary.stopped => "finished".to_owned(),
        Some(reason) => format!("stopped: {reason}"),
        None => "stopped".to_owned(),
    };
    settings.push(("state", state));
    settings
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}
