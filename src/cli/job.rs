//! Running a row-by-row job (accounts, RFIs) from the command line: where
//! it writes, signals, and its summary and exit status.

use super::flags::{settings_of, ConnectionArgs, RunArgs};
use super::{ui, Status};
use acgbulk::rowjob::{self, JobOptions, JobSummary, Layout, Operation, Refused};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

impl RunArgs {
    /// A row job's options: the results beside the input unless given.
    pub fn options(
        &self,
        kind: &str,
        input: &Path,
        settings: String,
        layout: Layout,
        connection: &ConnectionArgs,
    ) -> JobOptions {
        let mut kept = settings_of(connection);
        kept.extend(settings_of(&self.concurrency));
        kept.extend(settings_of(&self.keep));
        let input = std::path::absolute(input).unwrap_or(input.to_owned());
        let results = self.results_of(&input);
        let results = std::path::absolute(&results).unwrap_or(results);
        let checkpoint = self.checkpoint_of(&results);
        JobOptions {
            kind: kind.to_owned(),
            input,
            results,
            checkpoint,
            restart: self.restart.restart,
            concurrency: self.concurrency.concurrency,
            settings,
            kept,
            keep_checkpoint: self.keep.keep_checkpoint,
            layout,
        }
    }
}

/// Runs the job with Ctrl-C / SIGTERM handling and prints its summary.
pub async fn run<T: Clone + Send + Sync + 'static>(
    json: bool,
    options: &JobOptions,
    operations: Vec<Operation<T>>,
    refused: Vec<Refused>,
    execute: impl Fn(Operation<T>, rowjob::Attempt) -> rowjob::Answer + Send + Sync + 'static,
) -> anyhow::Result<Status> {
    let (stop, signals) = super::stop_on_signal(None);
    let bar = ui::bar(Some(operations.len() as u64), "rows");
    bar.set_invalid(refused.len() as u64);
    let answers = Arc::new(Answers::default());
    let continuing = |done: u64, total: u64| {
        eprintln!(
            "continuing the unfinished run in {}: {} of {} rows done",
            options.checkpoint.display(),
            ui::thousands(done),
            ui::thousands(total)
        );
        answers.before.store(done, Ordering::Relaxed);
        bar.start_at(done);
    };
    let execute = {
        let (bar, answers) = (bar.clone(), answers.clone());
        move |operation, attempt| {
            let (running, bar, answers) =
                (execute(operation, attempt), bar.clone(), answers.clone());
            Box::pin(async move {
                let result = running.await;
                if let Ok(row) = &result {
                    answers.count(row.ok, &bar);
                }
                result
            }) as rowjob::Answer
        }
    };
    let summary = rowjob::run(
        options,
        operations,
        refused,
        &stop,
        Arc::new(execute),
        &continuing,
    )
    .await;
    bar.finish_and_clear();
    signals.abort();
    let summary = match summary {
        Ok(summary) => summary,
        Err(e) if e.unwritable().is_some() => {
            return Ok(ui::stopped_to_continue(e.into(), &options.checkpoint));
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        ui::print_json(&summary)?;
    }
    print(&summary);
    Ok(status(&summary))
}

/// Rows answered in this run (a continued job's earlier rows are not
/// among them).
#[derive(Default)]
struct Answers {
    /// Rows a continued job's earlier runs answered.
    before: AtomicU64,
    ok: AtomicU64,
    failed: AtomicU64,
}

impl Answers {
    fn count(&self, ok: bool, bar: &ui::Bar) {
        let (mine, other) = if ok {
            (&self.ok, &self.failed)
        } else {
            (&self.failed, &self.ok)
        };
        let mine = mine.fetch_add(1, Ordering::Relaxed) + 1;
        let other = other.load(Ordering::Relaxed);
        let (ok, failed) = if ok { (mine, other) } else { (other, mine) };
        bar.set_counts(ok, failed);
        bar.set_position(self.before.load(Ordering::Relaxed) + ok + failed);
    }
}

fn print(summary: &JobSummary) {
    let t = ui::thousands;
    eprintln!(
        "{}{}: {}: {} ok, {} failed, {} invalid, {} skipped",
        summary.kind,
        if summary.resumed { " (continued)" } else { "" },
        ui::plural(summary.rows, "row", "rows"),
        t(summary.ok),
        t(summary.failed),
        t(summary.invalid),
        t(summary.skipped)
    );
    eprintln!("  results:    {}", summary.results.display());
    if summary.checkpoint_removed {
        eprintln!("  checkpoint: removed (the job finished; --keep-checkpoint keeps it)");
    } else {
        eprintln!("  checkpoint: {}", summary.checkpoint.display());
    }
    if summary.stopped {
        eprintln!(
            "stopped early ({}); {}run the same command again to continue",
            super::reason_words(summary.stop_reason.as_ref()),
            if summary.unwritable.is_some() {
                "make room, then "
            } else {
                ""
            }
        );
    }
}

pub fn status(summary: &JobSummary) -> Status {
    if summary.stopped {
        Status::stopped(summary.stop_reason.as_ref())
    } else if summary.failed + summary.invalid + summary.skipped > 0 {
        Status::RowsFailed
    } else {
        Status::Done
    }
}
