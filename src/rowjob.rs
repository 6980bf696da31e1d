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
use crate::journal::{Journal, JournalError};
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "camelCase")]
enum Record {
    Header {
        kind: String,
        input: PathBuf,
        fingerprint: String,
        settings: String,
        created: String,
    },
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
    journal: Arc<Journal>,
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
        self.journal
            .append(&Record::Sent {
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
    pub stopped: bool,
    pub stop_reason: Option<String>,
    /// The file that could not be written, when that stopped the job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unwritable: Option<PathBuf>,
}

type Run<T> = Arc<
    dyn Fn(
            Operation<T>,
            Attempt,
        ) -> Pin<Box<dyn Future<Output = Result<RowResult, OperationError>> + Send>>
        + Send
        + Sync,
>;

/// Runs `operations` (rows `refused` are written as invalid), `concurrency`
/// at a time, with the checkpoint and results of `options`.
pub async fn run<T: Clone + Send + Sync + 'static>(
    options: &JobOptions,
    operations: Vec<Operation<T>>,
    refused: Vec<Refused>,
    stop: watch::Receiver<bool>,
    execute: Run<T>,
) -> Result<JobSummary, JobError> {
    let fingerprint =
        crate::sheet::fingerprint(&options.input).map_err(|source| JobError::Write {
            path: options.input.clone(),
            source,
        })?;
    let header = Record::Header {
        kind: options.kind.clone(),
        input: options.input.clone(),
        fingerprint: fingerprint.clone(),
        settings: options.settings.clone(),
        created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    };
    // Held until the job ends: another job writing the same results would
    // send every row a second time.
    let _results_lock = crate::journal::RunLock::acquire(&options.results)?;
    let continuing = match Journal::read::<Record>(&options.checkpoint) {
        Ok(records) if !options.restart => match records.first() {
            Some(Record::Header {
                kind,
                input,
                fingerprint: f,
                settings,
                ..
            }) if *kind == options.kind
                && *input == options.input
                && *f == fingerprint
                && *settings == options.settings =>
            {
                !records.iter().any(|r| matches!(r, Record::Finished))
            }
            _ => false,
        },
        _ => false,
    };
    let (journal, records) = if continuing {
        let (journal, records) = Journal::open::<Record>(&options.checkpoint)?;
        (journal, records)
    } else {
        (Journal::create(&options.checkpoint, &header)?, Vec::new())
    };
    let journal = Arc::new(journal);
    let mut sent: HashMap<u32, (String, String, Option<String>)> = HashMap::new();
    let mut done: HashMap<u32, RowResult> = HashMap::new();
    for record in records {
        match record {
            Record::Sent {
                index,
                id,
                first,
                extra,
            } => {
                sent.insert(index, (id, first, extra));
            }
            Record::Done { index, result } => {
                done.insert(index, *result);
            }
            _ => {}
        }
    }

    let semaphore = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut finished: Vec<Option<RowResult>> = vec![None; operations.len()];
    let mut fatal: Option<String> = None;
    let mut unwritable: Option<JobError> = None;
    let (halt, halted) = watch::channel(false);
    let either = {
        let (tx, rx) = watch::channel(false);
        let (mut user, mut own) = (stop.clone(), halted.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = user.wait_for(|s| *s) => {}
                _ = own.wait_for(|s| *s) => {}
            }
            let _ = tx.send(true);
        });
        rx
    };
    for (index, operation) in operations.iter().cloned().enumerate() {
        if let Some(result) = done.get(&(index as u32)) {
            finished[index] = Some(result.clone());
            continue;
        }
        if *either.borrow() {
            break;
        }
        let mut wait = either.clone();
        let permit = tokio::select! {
            permit = semaphore.clone().acquire_owned() => permit.expect("open"),
            _ = wait.wait_for(|s| *s) => break,
        };
        let attempt = Attempt {
            index: index as u32,
            journal: journal.clone(),
            previous: sent.get(&(index as u32)).cloned(),
            stop: either.clone(),
        };
        let execute = execute.clone();
        let journal = journal.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let outcome = execute(operation, attempt).await;
            if let Ok(result) = &outcome {
                if let Err(e) = journal
                    .append(&Record::Done {
                        index: index as u32,
                        result: Box::new(result.clone()),
                    })
                    .await
                {
                    return (index, Err(OperationError::Journal(e)));
                }
            }
            (index, outcome)
        });
        while let Some(joined) = tasks.try_join_next() {
            handle(joined, &mut finished, &mut fatal, &mut unwritable, &halt)?;
        }
    }
    while let Some(joined) = tasks.join_next().await {
        handle(joined, &mut finished, &mut fatal, &mut unwritable, &halt)?;
    }
    let complete = finished.iter().all(Option::is_some);
    let user_stopped = *stop.borrow();
    let mut summary = JobSummary {
        kind: options.kind.clone(),
        rows: (operations.len() + refused.len()) as u64,
        results: options.results.clone(),
        checkpoint: options.checkpoint.clone(),
        resumed: continuing,
        stopped: !complete,
        stop_reason: unwritable
            .as_ref()
            .map(ToString::to_string)
            .or_else(|| fatal.clone())
            .or_else(|| user_stopped.then(|| "stopped by a signal".to_owned())),
        unwritable: unwritable
            .as_ref()
            .and_then(JobError::unwritable)
            .map(Path::to_owned),
        ..JobSummary::default()
    };
    if let Err(error) = write_results(options, &operations, &finished, &refused, &mut summary) {
        // Already stopping for a file it could not write: the results are
        // written again when the job is run again.
        if unwritable.is_none() || complete {
            return Err(error);
        }
    }
    if complete {
        journal.append(&Record::Finished).await?;
    }
    Ok(summary)
}

fn handle(
    joined: Result<(usize, Result<RowResult, OperationError>), tokio::task::JoinError>,
    finished: &mut [Option<RowResult>],
    fatal: &mut Option<String>,
    unwritable: &mut Option<JobError>,
    halt: &watch::Sender<bool>,
) -> Result<(), JobError> {
    match joined {
        Ok((index, Ok(result))) => finished[index] = Some(result),
        Ok((_, Err(OperationError::Stopped))) => {}
        Ok((_, Err(OperationError::Fatal(message)))) => {
            if fatal.is_none() {
                *fatal = Some(message);
            }
            let _ = halt.send(true);
        }
        // A checkpoint that cannot be written (a full disk) stops the job;
        // the row's write, sent or not, is sent again with its id.
        Ok((_, Err(OperationError::Journal(e)))) if e.unwritable().is_some() => {
            if unwritable.is_none() {
                *unwritable = Some(e.into());
            }
            let _ = halt.send(true);
        }
        Ok((_, Err(OperationError::Journal(e)))) => return Err(e.into()),
        Err(e) => return Err(JobError::Fatal(format!("a row's task failed: {e}"))),
    }
    Ok(())
}

fn write_results<T>(
    options: &JobOptions,
    operations: &[Operation<T>],
    finished: &[Option<RowResult>],
    refused: &[Refused],
    summary: &mut JobSummary,
) -> Result<(), JobError> {
    let Layout {
        action,
        key_column,
        extra_columns,
    } = options.layout;
    let mut lines: Vec<(u64, Vec<String>)> = Vec::new();
    let line = |row: u64,
                key: &str,
                outcome: Outcome,
                result: Option<&RowResult>,
                code: Option<&str>,
                message: Option<&str>| {
        let mut cells = vec![
            row.to_string(),
            key.to_owned(),
            action.to_owned(),
            outcome.as_str().to_owned(),
            result.map(|r| r.status.to_string()).unwrap_or_default(),
            code.map(str::to_owned)
                .or_else(|| result.and_then(|r| r.code.clone()))
                .unwrap_or_default(),
            message
                .map(str::to_owned)
                .or_else(|| result.and_then(|r| r.message.clone()))
                .unwrap_or_default(),
        ];
        let mut extra = result.map(|r| r.extra.clone()).unwrap_or_default();
        extra.resize(extra_columns.len(), String::new());
        cells.extend(extra);
        cells.push(
            result
                .and_then(|r| r.request_id.clone())
                .unwrap_or_default(),
        );
        cells
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
        .clone()
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
