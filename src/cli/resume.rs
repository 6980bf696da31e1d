//! `acgbulk resume`: finish a stopped or crashed import or delete (flags:
//! `acgbulk resume --help`).
//!
//! Refuses a changed input; skips what the service answered; sends again,
//! with their original repeatability ids, the batches that were in flight;
//! completes the results file. Secrets are never kept in the checkpoint, so
//! give the credentials again; the endpoint defaults to the recorded one.

use super::flags::{ConcurrencyArgs, ConnectionArgs, JsonArgs, StopArgs};
use super::import::{finish, send};
use super::{ui, Status};
use acgbulk::engine::checkpoint::{Checkpoint, JournalError};
use acgbulk::engine::{self, EngineError};
use acgbulk::journal::RunLock;
use anyhow::Context;
use std::path::PathBuf;

/// The examples at the end of `--help`, each run by tests/help_examples.rs.
pub const RESUME_EXAMPLES: &str = "\
Examples:
  # A run stopped by Ctrl-C, a crash or an outage: run the import ...
  acgbulk import samples/operator-connect.csv --results oc.results.csv

  # ... then finish it from its checkpoint, beside the results
  acgbulk resume oc.results.csv.checkpoint

  # Also resend the batches that got no usable answer (same repeatability ids)
  acgbulk resume oc.results.csv.checkpoint --retry-failed
";

/// Finish a stopped or crashed import or delete from its checkpoint
#[derive(clap::Args, Debug)]
#[command(after_long_help = RESUME_EXAMPLES)]
pub struct Args {
    /// The checkpoint the run wrote (RESULTS.checkpoint)
    pub checkpoint: PathBuf,

    /// Also send again the batches that failed without a usable answer
    /// (5xx or none), with their original repeatability ids
    #[arg(long)]
    pub retry_failed: bool,

    #[command(flatten)]
    pub concurrency: ConcurrencyArgs,

    #[command(flatten)]
    pub stop: StopArgs,

    #[command(flatten)]
    pub summary: JsonArgs,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let (header, entries) = match Checkpoint::peek(&args.checkpoint) {
        Ok(read) => read,
        // Killed before its first write: the run had not begun sending.
        Err(JournalError::Missing { path } | JournalError::Empty { path }) => {
            eprintln!(
                "error: {} was never written: its import stopped before it began sending, so nothing was sent and there is nothing to resume; run the import again",
                path.display()
            );
            return Ok(Status::Fatal);
        }
        Err(e) => return Err(e.into()),
    };
    let finished = acgbulk::runner::checkpoint::finished(&entries);
    if finished && !args.retry_failed {
        eprintln!(
            "{} is from a finished run: nothing to resume (results: {})",
            args.checkpoint.display(),
            header.results.display()
        );
        return Ok(Status::Done);
    }
    let options = engine::options_from_header(
        &header,
        &args.checkpoint,
        args.concurrency.concurrency,
        args.retry_failed,
        args.stop.stop_grace,
    );
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let (checkpoint, (header, entries)) = Checkpoint::open(&args.checkpoint)?;
        let _results_lock = RunLock::acquire(&header.results)?;
        let bar = ui::bar(None, "rows checked");
        let prepared = {
            let (header, options, bar) = (header.clone(), options.clone(), bar.clone());
            tokio::task::spawn_blocking(move || {
                engine::prepare_resume(&header, &options, &mut |rows| bar.set_position(rows))
            })
            .await
            .context("validation stopped")?
        };
        bar.finish_and_clear();
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(e) if e.unwritable().is_some() => {
                return Ok(ui::stopped_for_room(
                    e.into(),
                    &format!(
                        "stopped before sending; make room, then resume with: acgbulk resume {}",
                        args.checkpoint.display()
                    ),
                ));
            }
            Err(e @ EngineError::Changed(_)) => {
                return Err(anyhow::Error::from(e).context("cannot resume"))
            }
            Err(e) => return Err(e.into()),
        };
        let connected = args.connection.connect(Some(&header.endpoint)).await?;
        if connected.endpoint != header.endpoint {
            tracing::warn!(
                "the run began against {}; resuming against {}",
                header.endpoint,
                connected.endpoint
            );
        }
        eprintln!(
            "resuming {} of {}",
            header.action.label(),
            header.input.display()
        );
        let outcome = send(prepared, &options, &connected, checkpoint, entries).await;
        finish(outcome, connected, &args.checkpoint, args.summary.json).await
    })
}
