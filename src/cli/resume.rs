//! `acgbulk resume`: finish a stopped or crashed import or delete (flags:
//! `acgbulk resume --help`).
//!
//! Takes the checkpoint, the results file or the input sheet, and finds
//! the checkpoint (`RESULTS.checkpoint`, the results beside the sheet).
//! Uses the settings the run kept in its checkpoint (endpoint, pace,
//! retries, concurrency, sync) unless a flag or its environment variable
//! is given again. Refuses a changed input; skips what the service
//! answered; sends again, with their original repeatability ids, the
//! batches that were in flight; completes the results file. Secrets are
//! never kept in the checkpoint: they come from the environment (or their
//! files) again. Running the same import or delete again continues here.

use super::flags::{
    beside, checkpoint_of, ConcurrencyArgs, ConnectionArgs, JsonArgs, KeepCheckpointArgs,
    RunSettings, StopArgs, SyncArgs,
};
use super::import::{finish, send};
use super::{ui, Status};
use acgbulk::engine::checkpoint::{Checkpoint, Entry, Header};
use acgbulk::engine::{self, EngineError, Prepared, RunOptions};
use acgbulk::journal::RunLock;
use acgbulk::runner::checkpoint::{kind_of, sniff, Sniffed};
use anyhow::{bail, Context};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The examples at the end of `--help`, each run by tests/help_examples.rs.
pub const RESUME_EXAMPLES: &str = "\
Examples:
  # A run stopped by Ctrl-C, a crash or an outage: run the import ...
  acgbulk import samples/operator-connect.csv --results oc.results.csv

  # ... then finish it: give its checkpoint, its results file or its sheet
  acgbulk resume oc.results.csv

  # Also resend the batches that got no usable answer (same repeatability ids)
  acgbulk resume oc.results.csv.checkpoint --retry-failed
";

/// Finish a stopped or crashed import or delete from its checkpoint
///
/// Give the checkpoint (RESULTS.checkpoint), the results file or the input
/// sheet. The run's settings (endpoint, authentication method and ids,
/// rate limit, retries, time-outs, concurrency, sync) come from the
/// checkpoint unless given again (the defaults shown below apply only to
/// what the checkpoint did not keep); credentials come from the environment
/// (or their files), as for the run itself.
#[derive(clap::Args, Debug)]
#[command(after_long_help = RESUME_EXAMPLES)]
pub struct Args {
    /// The run's checkpoint, its results file, or its input sheet
    #[arg(value_name = "CHECKPOINT|RESULTS|SHEET")]
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
    pub sync: SyncArgs,

    #[command(flatten)]
    pub keep: KeepCheckpointArgs,

    #[command(flatten)]
    pub summary: JsonArgs,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// What `resume` was given turned out to be.
enum Found {
    /// An import's or a delete's checkpoint.
    Checkpoint(PathBuf),
    /// Nothing to resume, for the reason said.
    Nothing(Status, String),
}

/// Finds the checkpoint of `target`, looking at each file's first line
/// before reading it as a checkpoint.
fn find(target: &Path) -> anyhow::Result<Found> {
    let never_written = |path: &Path| {
        Found::Nothing(
            Status::Fatal,
            format!(
                "{} was never written: its run stopped before it began sending, so nothing was sent and there is nothing to resume; run the import again",
                path.display()
            ),
        )
    };
    let finished = |results: &Path, checkpoint: &Path| {
        Found::Nothing(
            Status::Done,
            format!(
                "{} is from a finished run: there is nothing to resume (a finished run's checkpoint, {}, is removed; --keep-checkpoint keeps it)",
                results.display(),
                checkpoint.display()
            ),
        )
    };
    let as_results = checkpoint_of(target);
    let results_of_sheet = beside(target, ".results.csv");
    let as_sheet = checkpoint_of(&results_of_sheet);
    for candidate in [target, as_results.as_path(), as_sheet.as_path()] {
        match sniff(candidate).with_context(|| format!("cannot read {}", candidate.display()))? {
            Sniffed::Checkpoint(header) => {
                let kind = kind_of(&header);
                if kind != "import" && kind != "delete" {
                    bail!(
                        "{} is the checkpoint of {kind}, not of an import or a delete: run the same {kind} command again to continue it",
                        candidate.display()
                    );
                }
                return Ok(Found::Checkpoint(candidate.to_owned()));
            }
            Sniffed::Empty => return Ok(never_written(candidate)),
            Sniffed::Missing if candidate == target => {
                if !is_checkpoint_name(target) {
                    bail!("{} does not exist", target.display())
                }
                // `RESULTS.checkpoint`: gone once its run finished.
                let results = target.with_extension("");
                if is_results(&results) {
                    return Ok(finished(&results, target));
                }
                return Ok(never_written(target));
            }
            Sniffed::Missing | Sniffed::Other => {}
        }
    }
    if is_results(target) {
        return Ok(finished(target, &as_results));
    }
    if is_results(&results_of_sheet) {
        return Ok(finished(&results_of_sheet, &as_sheet));
    }
    bail!(
        "{} is not an acgbulk checkpoint, and no checkpoint was found for it as a results file ({}) or as an input sheet ({})",
        target.display(),
        as_results.display(),
        as_sheet.display()
    )
}

/// Whether `path` is named as a checkpoint is (`RESULTS.checkpoint`).
fn is_checkpoint_name(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "checkpoint")
}

/// Whether `path` is an import's or a delete's results file: by its
/// heading line (a CSV), else by its name (`.results.xlsx`).
fn is_results(path: &Path) -> bool {
    if !path.is_file() {
        return false;
    }
    let named = path
        .file_name()
        .is_some_and(|name| name.to_string_lossy().contains(".results."));
    let heading = std::fs::File::open(path).ok().and_then(|file| {
        use std::io::{BufRead, Read};
        let mut line = String::new();
        std::io::BufReader::new(file.take(4096))
            .read_line(&mut line)
            .ok()?;
        Some(line)
    });
    named
        || heading.is_some_and(|line| line.contains("outcome") && line.contains("telephoneNumber"))
}

pub fn run(args: Args, matches: &clap::ArgMatches) -> anyhow::Result<Status> {
    let path = match find(&args.checkpoint)? {
        Found::Checkpoint(path) => path,
        Found::Nothing(status, why) => {
            match status {
                Status::Done => eprintln!("{why}"),
                _ => eprintln!("error: {why}"),
            }
            return Ok(status);
        }
    };
    let (header, entries) = Checkpoint::peek(&path)?;
    let finished = acgbulk::runner::checkpoint::finished(&entries);
    if finished && !args.retry_failed {
        eprintln!(
            "{} is from a finished run: nothing to resume (results: {})",
            path.display(),
            header.results.display()
        );
        return Ok(Status::Done);
    }
    let flags = RunSettings {
        connection: args.connection,
        concurrency: args.concurrency,
        stop: args.stop,
        sync: Some(args.sync),
        keep: args.keep,
    };
    let options = engine::options_from_header(&header, &path);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let (checkpoint, (header, entries)) = Checkpoint::open(&path)?;
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
                        path.display()
                    ),
                ));
            }
            Err(e @ EngineError::Changed(_)) => {
                return Err(anyhow::Error::from(e).context("cannot resume"))
            }
            Err(e) => return Err(e.into()),
        };
        let run = Continuing {
            checkpoint,
            header,
            entries,
            prepared,
            retry_failed: args.retry_failed,
            json: args.summary.json,
        };
        continue_run(run, &flags, matches).await
    })
}

/// An unfinished run, its checkpoint open and locked and its input
/// prepared again, ready to go on.
pub struct Continuing {
    pub checkpoint: Checkpoint,
    pub header: Header,
    pub entries: Vec<Entry>,
    pub prepared: Prepared,
    pub retry_failed: bool,
    pub json: bool,
}

/// Goes on with an unfinished import or delete: the one path of `resume`
/// and of the same command run again. `flags` are this command's, each
/// given one winning over the checkpoint's kept settings.
pub async fn continue_run(
    run: Continuing,
    flags: &RunSettings,
    matches: &clap::ArgMatches,
) -> anyhow::Result<Status> {
    let Continuing {
        checkpoint,
        header,
        entries,
        prepared,
        retry_failed,
        json,
    } = run;
    let settings = flags.resolve(
        &super::profile::under_kept(&header.kept_settings()),
        matches,
    );
    let path = checkpoint.path().to_owned();
    let base = engine::options_from_header(&header, &path);
    let sync = settings.sync.as_ref();
    let options = RunOptions {
        concurrency: settings.concurrency.concurrency,
        grace: settings.stop.stop_grace,
        wait_sync: sync.map_or(base.wait_sync, |s| s.wait_sync),
        sync_timeout: sync.map_or(base.sync_timeout, |s| s.sync_timeout),
        sync_poll: sync.map_or(base.sync_poll, |s| s.sync_poll),
        keep_checkpoint: settings.keep.keep_checkpoint,
        retry_failed,
        ..base
    };
    let connected = settings.connection.connect(Some(&header.endpoint)).await?;
    if connected.endpoint != header.endpoint {
        tracing::warn!(
            "the run began against {}; going on against {}",
            header.endpoint,
            connected.endpoint
        );
    }
    eprintln!(
        "continuing the unfinished run in {}: {} of {} numbers done ({} of {})",
        path.display(),
        ui::thousands(answered(&entries)),
        ui::thousands(header.numbers),
        header.action.label(),
        header.input.display(),
    );
    let outcome = send(prepared, &options, &connected, checkpoint, entries).await;
    finish(outcome, connected, &path, json).await
}

/// Numbers with a final answer in a checkpoint's lines.
fn answered(entries: &[Entry]) -> u64 {
    let mut done = HashMap::new();
    for entry in entries {
        if let Entry::Done { b, lo, hi, .. } = entry {
            done.insert((*b, *lo, *hi), u64::from(hi - lo));
        }
    }
    done.values().sum()
}
