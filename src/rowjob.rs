//! Row-by-row jobs (accounts, RFIs): one operation per sheet row, each
//! with its own requests, a results file and a checkpoint, like a numbers
//! import but without batches.
//!
//! Before an operation's first write, the job records a repeatability id
//! and first-sent date (and whatever the write depends on, such as the ETag
//! it will send in `If-Match`) in the checkpoint, durably; its final answer
//! is recorded after. Run again with the same input, a job skips answered
//! rows and sends in-flight writes again with their original ids, so the
//! service can tell a repeat.

use crate::client::pacer::Stopped;
use crate::engine::results::Outcome;
use crate::journal::JournalError;
use crate::runner::checkpoint::{self, Begin, Checkpoint, CheckpointError, Mismatch, Settings};
use crate::runner::{Limits, Panicked, Step, Stop, StopReason, UnitError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::watch;

/// What a job does and where it writes.
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// `accounts-import`, `accounts-delete`, `rfis-update`.
    pub kind: String,
    pub input: PathBuf,
    pub results: PathBuf,
    pub checkpoint: PathBuf,
    /// Start over even if an unfinished job's checkpoint is there.
    pub restart: bool,
    pub concurrency: usize,
    /// Anything else that must match for a checkpoint to be continued.
    pub settings: String,
    /// The run's non-secret settings (connection, pace, concurrency), kept
    /// in the checkpoint.
    pub kept: Settings,
    /// Keep the checkpoint of a finished job (else it is removed).
    pub keep_checkpoint: bool,
    pub layout: Layout,
}

/// How the results file names a job's rows.
#[derive(Debug, Clone)]
pub struct Layout {
    /// What fills the `action` column.
    pub action: &'static str,
    /// The heading of the column that names a row (`name`, `tenantId`).
    pub key_column: &'static str,
    /// The job's own columns, after the common ones.
    pub extra_columns: &'static [&'static str],
}

/// What a job is: the first line of its checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobHeader {
    kind: String,
    input: PathBuf,
    fingerprint: String,
    settings: String,
    created: String,
    /// The run's non-secret settings (none in checkpoints before them).
    #[serde(default, skip_serializing_if = "Settings::is_empty")]
    kept: Settings,
}

impl checkpoint::Header for JobHeader {
    fn differs_from(&self, this_run: &Self) -> Option<Mismatch> {
        Mismatch::setting("kind", &self.kind, &this_run.kind)
            .or_else(|| Mismatch::setting("input", &self.input, &this_run.input))
            .or_else(|| {
                (self.fingerprint != this_run.fingerprint).then(|| Mismatch::Input {
                    input: this_run.input.clone(),
                    was: self.fingerprint.clone(),
                    now: this_run.fingerprint.clone(),
                })
            })
            .or_else(|| Mismatch::setting("settings", &self.settings, &this_run.settings))
    }
}

/// One line of a job's checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "camelCase")]
enum Entry {
    Header(JobHeader),
    /// Row `index` is about to write with this id; `extra` is what the
    /// write depends on (an ETag).
    Sent {
        index: u32,
        id: String,
        first: String,
        extra: Option<String>,
    },
    Done {
        index: u32,
        result: Box<RowResult>,
    },
    Finished,
}

impl checkpoint::Line for Entry {
    type Header = JobHeader;

    fn from_header(header: JobHeader) -> Self {
        Entry::Header(header)
    }

    fn into_header(self) -> Option<JobHeader> {
        match self {
            Entry::Header(header) => Some(header),
            _ => None,
        }
    }

    fn is_finished(&self) -> bool {
        matches!(self, Entry::Finished)
    }
}

/// The outcome of one row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowResult {
    pub ok: bool,
    pub status: u16,
    pub code: Option<String>,
    pub message: Option<String>,
    pub request_id: Option<String>,
    /// The job's own columns (after the common ones).
    pub extra: Vec<String>,
}

/// One operation: a sheet row and what to do with it.
#[derive(Debug, Clone)]
pub struct Operation<T> {
    pub row: u64,
    /// The resource's name (an account name, a tenant id).
    pub key: String,
    pub what: T,
}

/// A row the job will not send, with why.
#[derive(Debug, Clone)]
pub struct Refused {
    pub row: u64,
    pub key: String,
    pub code: String,
    pub message: String,
}

/// What an operation gets: its previous write (when continuing), and the
/// means to record a new one before sending it.
pub struct Attempt {
    index: u32,
    checkpoint: Arc<Checkpoint<Entry>>,
    /// Id, first-sent date and `extra` of a write sent before.
    pub previous: Option<(String, String, Option<String>)>,
    pub stop: watch::Receiver<bool>,
}

impl Attempt {
    /// The repeatability id and first-sent date for the write, with `extra`
    /// recorded beside them; durable when this returns.
    pub async fn sent(&mut self, extra: Option<String>) -> Result<(String, String), JournalError> {
        if let Some((id, first, _)) = &self.previous {
            return Ok((id.clone(), first.clone()));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let first = httpdate::fmt_http_date(std::time::SystemTime::now());
        self.checkpoint
            .append(&Entry::Sent {
                index: self.index,
                id: id.clone(),
                first: first.clone(),
                extra: extra.clone(),
            })
            .await?;
        self.previous = Some((id.clone(), first.clone(), extra));
        Ok((id, first))
    }
}

/// Why a job could not finish a row.
#[derive(Debug)]
pub enum OperationError {
    Stopped,
    /// Stops the whole job (refused credentials, role).
    Fatal(String),
    /// Stops the whole job, resumable: the service answered nothing for
    /// the outage timeout.
    Outage(String),
    Journal(JournalError),
}

impl From<Stopped> for OperationError {
    fn from(_: Stopped) -> Self {
        OperationError::Stopped
    }
}

impl From<JournalError> for OperationError {
    fn from(e: JournalError) -> Self {
        OperationError::Journal(e)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Fatal(String),
}

impl From<CheckpointError> for JobError {
    fn from(e: CheckpointError) -> Self {
        match e {
            CheckpointError::Journal(e) => JobError::Journal(e),
            other => JobError::Fatal(other.to_string()),
        }
    }
}

impl From<Panicked> for JobError {
    fn from(Panicked(message): Panicked) -> Self {
        JobError::Fatal(message)
    }
}

impl JobError {
    /// The file that could not be written, when that is the trouble (a
    /// full disk): the job can go on once there is room.
    pub fn unwritable(&self) -> Option<&Path> {
        match self {
            JobError::Write { path, .. } => Some(path),
            JobError::Journal(e) => e.unwritable(),
            JobError::Fatal(_) => None,
        }
    }
}

/// Counts for the summary.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSummary {
    pub kind: String,
    pub rows: u64,
    pub ok: u64,
    pub failed: u64,
    pub invalid: u64,
    pub skipped: u64,
    pub results: PathBuf,
    pub checkpoint: PathBuf,
    pub resumed: bool,
    /// Rows the earlier, stopped run had answered (when `resumed`).
    pub rows_before: u64,
    /// The job finished and its checkpoint was removed.
    pub checkpoint_removed: bool,
    pub stopped: bool,
    pub stop_reason: Option<StopReason>,
    /// The file that could not be written, when that stopped the job.
    pub unwritable: Option<PathBuf>,
}

/// One row's operation under way.
pub type Answer = Pin<Box<dyn Future<Output = Result<RowResult, OperationError>> + Send>>;

type Run<T> = Arc<dyn Fn(Operation<T>, Attempt) -> Answer + Send + Sync>;

/// What a job's checkpoint says of its rows.
#[derive(Default)]
struct Replayed {
    sent: HashMap<u32, (String, String, Option<String>)>,
    done: HashMap<u32, RowResult>,
}

impl Replayed {
    fn of(lines: Vec<Entry>) -> Replayed {
        let mut replayed = Replayed::default();
        for line in lines {
            match line {
                Entry::Sent {
                    index,
                    id,
                    first,
                    extra,
                } => {
                    replayed.sent.insert(index, (id, first, extra));
                }
                Entry::Done { index, result } => {
                    replayed.done.insert(index, *result);
                }
                _ => {}
            }
        }
        replayed
    }
}

/// Opens the job's checkpoint: the unfinished one of the same job to
/// continue, else a new one.
fn begin(options: &JobOptions) -> Result<(Checkpoint<Entry>, Replayed, bool), JobError> {
    let fingerprint =
        crate::sheet::fingerprint(&options.input).map_err(|source| JobError::Write {
            path: options.input.clone(),
            source,
        })?;
    let header = JobHeader {
        kind: options.kind.clone(),
        input: options.input.clone(),
        fingerprint,
        settings: options.settings.clone(),
        kept: options.kept.clone(),
        created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    };
    Ok(
        match checkpoint::begin(&options.checkpoint, &header, options.restart)? {
            Begin::Continue(checkpoint, (_, lines)) => (checkpoint, Replayed::of(lines), true),
            Begin::Fresh => (
                Checkpoint::create(&options.checkpoint, header)?,
                Replayed::default(),
                false,
            ),
        },
    )
}

/// A row's operation, then its answer recorded.
async fn operate<T>(
    execute: Run<T>,
    operation: Operation<T>,
    attempt: Attempt,
) -> Result<Step<u32, (u32, RowResult)>, UnitError<JobError>> {
    let (index, checkpoint) = (attempt.index, attempt.checkpoint.clone());
    let unwritable = |e: JournalError| match StopReason::of_journal(&e) {
        // A checkpoint that cannot be written (a full disk) stops the job;
        // the row's write, sent or not, is sent again with its id.
        Some(reason) => UnitError::Stop(reason),
        None => UnitError::Failed(e.into()),
    };
    let result = match execute(operation, attempt).await {
        Ok(result) => result,
        Err(OperationError::Stopped) => return Err(UnitError::Stopped),
        Err(OperationError::Fatal(message)) => {
            return Err(UnitError::Stop(StopReason::Refused(message)))
        }
        Err(OperationError::Outage(message)) => {
            return Err(UnitError::Stop(StopReason::Outage(message)))
        }
        Err(OperationError::Journal(e)) => return Err(unwritable(e)),
    };
    let line = Entry::Done {
        index,
        result: Box::new(result.clone()),
    };
    checkpoint.append(&line).await.map_err(unwritable)?;
    Ok(Step::done((index, result)))
}

/// Runs `operations` (rows `refused` are written as invalid), `concurrency`
/// at a time, with the checkpoint and results of `options`. When it goes
/// on with an unfinished run, `continuing` hears how many of the rows to
/// send were answered before, of all.
pub async fn run<T: Clone + Send + Sync + 'static>(
    options: &JobOptions,
    operations: Vec<Operation<T>>,
    refused: Vec<Refused>,
    stop: &Stop,
    execute: Run<T>,
    continuing: &(dyn Fn(u64, u64) + Sync),
) -> Result<JobSummary, JobError> {
    // Held until the job ends: another job writing the same results would
    // send every row a second time.
    let _results_lock = crate::journal::RunLock::acquire(&options.results)?;
    let (checkpoint, replayed, resumed) = begin(options)?;
    if resumed {
        continuing(replayed.done.len() as u64, operations.len() as u64);
    }
    let checkpoint = Arc::new(checkpoint);
    let mut finished: Vec<Option<RowResult>> = vec![None; operations.len()];
    for (&index, result) in &replayed.done {
        if let Some(slot) = finished.get_mut(index as usize) {
            *slot = Some(result.clone());
        }
    }
    let operations = Arc::new(operations);
    let units: Vec<u32> = (0..operations.len() as u32)
        .filter(|index| !replayed.done.contains_key(index))
        .collect();
    let limits = Limits {
        concurrency: options.concurrency,
        grace: None,
    };
    let work = |index: u32, stop: Stop| {
        let attempt = Attempt {
            index,
            checkpoint: checkpoint.clone(),
            previous: replayed.sent.get(&index).cloned(),
            stop: stop.watch(),
        };
        operate(execute.clone(), operations[index as usize].clone(), attempt)
    };
    let ran = crate::runner::run(units, limits, stop, work, |(index, result)| {
        finished[index as usize] = Some(result);
        Ok(())
    })
    .await;
    if let Some(error) = ran.error {
        return Err(error);
    }
    let complete = finished.iter().all(Option::is_some);
    let stop_reason = ran.stopped.filter(|_| !complete);
    let mut summary = JobSummary {
        kind: options.kind.clone(),
        rows: (operations.len() + refused.len()) as u64,
        results: options.results.clone(),
        checkpoint: options.checkpoint.clone(),
        resumed,
        rows_before: replayed.done.len() as u64,
        stopped: !complete,
        unwritable: stop_reason
            .as_ref()
            .and_then(StopReason::file)
            .map(Path::to_owned),
        stop_reason,
        ..JobSummary::default()
    };
    if let Err(error) = write_results(options, &operations, &finished, &refused, &mut summary) {
        // Already stopping for a file it could not write: the results are
        // written again when the job is run again.
        if summary.unwritable.is_none() || complete {
            return Err(error);
        }
    }
    if complete {
        checkpoint.append(&Entry::Finished).await?;
        if !options.keep_checkpoint {
            if let Some(checkpoint) = Arc::into_inner(checkpoint) {
                checkpoint.close();
            }
            checkpoint::remove(&options.checkpoint)?;
            summary.checkpoint_removed = true;
        }
    }
    Ok(summary)
}

/// What a results line says beyond the row's answer.
struct Words<'a> {
    outcome: Outcome,
    code: Option<&'a str>,
    message: Option<&'a str>,
}

/// A results line: the common columns, the job's own, the request id.
fn result_cells(
    layout: &Layout,
    row: u64,
    key: &str,
    words: Words,
    result: Option<&RowResult>,
) -> Vec<String> {
    let mut cells = vec![
        row.to_string(),
        key.to_owned(),
        layout.action.to_owned(),
        words.outcome.as_str().to_owned(),
        result.map(|r| r.status.to_string()).unwrap_or_default(),
        words
            .code
            .map(str::to_owned)
            .or_else(|| result.and_then(|r| r.code.clone()))
            .unwrap_or_default(),
        words
            .message
            .map(str::to_owned)
            .or_else(|| result.and_then(|r| r.message.clone()))
            .unwrap_or_default(),
    ];
    let mut extra = result.map(|r| r.extra.clone()).unwrap_or_default();
    extra.resize(layout.extra_columns.len(), String::new());
    cells.extend(extra);
    cells.push(
        result
            .and_then(|r| r.request_id.clone())
            .unwrap_or_default(),
    );
    cells
}

fn write_results<T>(
    options: &JobOptions,
    operations: &[Operation<T>],
    finished: &[Option<RowResult>],
    refused: &[Refused],
    summary: &mut JobSummary,
) -> Result<(), JobError> {
    let Layout {
        key_column,
        extra_columns,
        ..
    } = options.layout;
    let mut lines: Vec<(u64, Vec<String>)> = Vec::new();
    let line = |row: u64,
                key: &str,
                outcome: Outcome,
                result: Option<&RowResult>,
                code: Option<&str>,
                message: Option<&str>| {
        let words = Words {
            outcome,
            code,
            message,
        };
        result_cells(&options.layout, row, key, words, result)
    };
    for refusal in refused {
        summary.invalid += 1;
        lines.push((
            refusal.row,
            line(
                refusal.row,
                &refusal.key,
                Outcome::Invalid,
                None,
                Some(&refusal.code),
                Some(&refusal.message),
            ),
        ));
    }
    let not_sent = summary
        .stop_reason
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| "not sent: the job stopped early; run it again to continue".into());
    for (operation, result) in operations.iter().zip(finished) {
        let cells = match result {
            Some(result) => {
                if result.ok {
                    summary.ok += 1;
                } else {
                    summary.failed += 1;
                }
                line(
                    operation.row,
                    &operation.key,
                    if result.ok {
                        Outcome::Ok
                    } else {
                        Outcome::Failed
                    },
                    Some(result),
                    None,
                    None,
                )
            }
            None => {
                summary.skipped += 1;
                line(
                    operation.row,
                    &operation.key,
                    Outcome::Skipped,
                    None,
                    None,
                    Some(&not_sent),
                )
            }
        };
        lines.push((operation.row, cells));
    }
    lines.sort_by_key(|(row, _)| *row);
    let mut headings = vec![
        "row",
        key_column,
        "action",
        "outcome",
        "httpStatus",
        "errorCode",
        "errorMessage",
    ];
    headings.extend_from_slice(extra_columns);
    headings.push("requestId");
    let write = |path: &Path| {
        if crate::xlsx::is_xlsx(path) {
            let settings = job_settings(options, summary);
            return crate::durable::replace_with(path, |tmp| {
                write_workbook(tmp, &headings, &lines, &settings)
            });
        }
        crate::durable::replace(path, |out| {
            let mut out = crate::csvconf::writer(out);
            out.write_record(&headings)?;
            for (_, cells) in &lines {
                out.write_record(cells)?;
            }
            out.flush()
        })
    };
    write(&options.results).map_err(|source| JobError::Write {
        path: options.results.clone(),
        source,
    })?;
    Ok(())
}

/// A job's results as a workbook: a Summary (counts by outcome and error
/// code, the job's settings), then the lines, failed and invalid ones
/// highlighted.
fn write_workbook(
    path: &Path,
    headings: &[&str],
    lines: &[(u64, Vec<String>)],
    settings: &[(String, String)],
) -> std::io::Result<()> {
    use crate::engine::results::OutcomeTally;
    let mut book = crate::xlsx::WorkbookWriter::with_summary()?;
    let table = book.add_table("Results", headings)?;
    let mut tally = OutcomeTally::new("Rows", false);
    // The columns result_cells puts first: row, key, action, outcome,
    // httpStatus, errorCode.
    let outcomes = [
        Outcome::Ok,
        Outcome::Failed,
        Outcome::Invalid,
        Outcome::Skipped,
    ];
    for (_, cells) in lines {
        let outcome = outcomes.into_iter().find(|o| o.as_str() == cells[3]);
        tally.count(outcome, Some(&cells[5]), "");
        let highlight = matches!(outcome, Some(Outcome::Failed | Outcome::Invalid));
        book.write_text_row(table, cells, highlight)?;
    }
    book.set_summary(&tally.summary(settings))?;
    book.save(path)
}

/// The job's settings and times, for a results workbook's Summary.
fn job_settings(options: &JobOptions, summary: &JobSummary) -> Vec<(String, String)> {
    let state = match &summary.stop_reason {
        _ if !summary.stopped => "finished".to_owned(),
        Some(reason) => format!("stopped: {reason}"),
        None => "stopped".to_owned(),
    };
    [
        ("job", options.kind.clone()),
        ("input", options.input.display().to_string()),
        ("results", options.results.display().to_string()),
        ("checkpoint", options.checkpoint.display().to_string()),
        ("settings", options.settings.clone()),
        ("concurrency", options.concurrency.to_string()),
        ("resumed", summary.resumed.to_string()),
        (
            "results written",
            humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        ),
        ("state", state),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}
