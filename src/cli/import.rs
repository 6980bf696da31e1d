//! `acgbulk import` and `acgbulk delete`: load a sheet of numbers into the
//! gateway (or release them), at the rate limit, with a results file and a
//! checkpoint to resume from. Their flags: `acgbulk import --help` and
//! `acgbulk delete --help`.
//!
//! Exit 0 when every number is done, 1 when some failed or were invalid,
//! 2 for input or configuration errors, 3 when stopped early (resumable).

use super::connect::Connected;
use super::flags::{
    beside, ConnectionArgs, JsonArgs, MaxDelete, MaxDeleteArgs, NumberSheetArgs, RuleArgs,
    SendArgs, StrictArgs, SyncArgs,
};
use super::guard::DeleteLimit;
use super::{ui, Status};
use acgbulk::engine::checkpoint::{Action, Checkpoint, Entry};
use acgbulk::engine::{self, EngineError, Prepared, RunOptions, RunSummary};
use acgbulk::journal::RunLock;
use acgbulk::sheet::SheetOptions;
use acgbulk::validate::RuleOptions;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The examples at the end of `--help`, each run by tests/help_examples.rs.
pub const IMPORT_EXAMPLES: &str = "\
Examples:
  # Try a sheet on an emulator in this process (demo accounts contoso, fabrikam, ...)
  acgbulk import samples/operator-connect.csv --emulator

  # Show the plan (accounts, numbers, batches) and send nothing
  acgbulk import samples/mixed-ranges.csv --dry-run

  # Into the gateway in ACG_ENDPOINT, with its results file named
  acgbulk import samples/direct-routing.csv --results direct-routing.results.csv

  # A sheet on standard input (kept as RESULTS.input.csv, so the run can resume)
  cat samples/operator-connect.csv | acgbulk import - --results piped.results.csv
";

/// Load a sheet of numbers into the gateway at the rate limit
#[derive(clap::Args, Debug)]
#[command(after_long_help = IMPORT_EXAMPLES)]
pub struct Args {
    /// The sheet: CSV (`-` for standard input), .xlsx, .xlsm, .xlsb, .xls or .ods
    pub input: PathBuf,

    #[command(flatten)]
    pub send: SendArgs,

    #[command(flatten)]
    pub sync: SyncArgs,

    #[command(flatten)]
    pub sheet: NumberSheetArgs,

    #[command(flatten)]
    pub rules: RuleArgs,

    #[command(flatten)]
    pub strict: StrictArgs,

    #[command(flatten)]
    pub summary: JsonArgs,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// The examples at the end of `--help`, each run by tests/help_examples.rs.
pub const DELETE_EXAMPLES: &str = "\
Examples:
  # See what a delete would release, and send nothing
  acgbulk delete samples/direct-routing.csv --dry-run

  # Refused: the sheet has 15 numbers, over the limit of 10 (exit 2)
  acgbulk delete samples/direct-routing.csv --max-delete 10

  # Release the numbers of a sheet from the gateway in ACG_ENDPOINT
  acgbulk delete samples/direct-routing.csv --results released.csv
";

/// Release the numbers of a sheet from the gateway at the rate limit
///
/// The same engine as import, with :deleteNumbers; the sheet needs only
/// telephoneNumber and accountName (or --default-account), and only the
/// numbers are checked, not the services.
#[derive(clap::Args, Debug)]
#[command(after_long_help = DELETE_EXAMPLES)]
pub struct DeleteArgs {
    /// The sheet: CSV (`-` for standard input), .xlsx, .xlsm, .xlsb, .xls or .ods
    pub input: PathBuf,

    #[command(flatten)]
    pub send: SendArgs,

    #[command(flatten)]
    pub sheet: NumberSheetArgs,

    #[command(flatten)]
    pub rules: RuleArgs,

    #[command(flatten)]
    pub max_delete: MaxDeleteArgs,

    #[command(flatten)]
    pub summary: JsonArgs,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// An import or a delete, its flags turned into the engine's options.
pub struct Job {
    options: RunOptions,
    /// The input as given (`options.input` is its copy when it is a stream).
    source: PathBuf,
    stream: bool,
    dry_run: bool,
    restart: bool,
    write_clean: Option<PathBuf>,
    json: bool,
    connection: ConnectionArgs,
    /// A delete's `--max-delete`.
    max_delete: Option<MaxDelete>,
}

impl Args {
    pub fn job(self) -> Job {
        let rules = self.rules.rule_options(&self.sheet);
        let sheet = self.sheet.read.sheet_options();
        let options = Job::options(Action::Import, &self.input, &self.send, sheet, rules);
        let options = RunOptions {
            wait_sync: self.sync.wait_sync,
            sync_timeout: self.sync.sync_timeout,
            sync_poll: self.sync.sync_poll,
            ..options
        };
        Job::new(
            options,
            self.input,
            self.send,
            self.summary,
            self.connection,
        )
    }
}

impl DeleteArgs {
    pub fn job(self) -> Job {
        let rules = RuleOptions {
            numbers_only: true,
            ..self.rules.rule_options(&self.sheet)
        };
        let sheet = self.sheet.read.sheet_options();
        let options = Job::options(Action::Delete, &self.input, &self.send, sheet, rules);
        Job {
            max_delete: self.max_delete.max_delete,
            ..Job::new(
                options,
                self.input,
                self.send,
                self.summary,
                self.connection,
            )
        }
    }
}

impl Job {
    /// The engine's options, the paths defaulting beside the input; no
    /// backend sync wait (an import adds it).
    fn options(
        action: Action,
        source: &Path,
        send: &SendArgs,
        sheet: SheetOptions,
        rules: RuleOptions,
    ) -> RunOptions {
        let results = send.run.results_of(source);
        let checkpoint = send.run.checkpoint_of(&results);
        let checkpoint = std::path::absolute(&checkpoint).unwrap_or(checkpoint);
        // Rows are read again to send them: input that can be read only once
        // (standard input, a FIFO, a device) is copied beside the results as it
        // is validated, and the run reads the copy.
        let input = if acgbulk::sheet::input::is_stream(source) {
            beside(&results, ".input.csv")
        } else {
            source.to_owned()
        };
        RunOptions {
            action,
            input,
            sheet,
            rules,
            batch_size: send.batch.batch_size as usize,
            skip_invalid: send.skip_invalid.skip_invalid,
            report: send.report.path(source),
            results,
            checkpoint,
            concurrency: send.run.concurrency.concurrency,
            wait_sync: false,
            sync_timeout: Duration::ZERO,
            sync_poll: Duration::ZERO,
            grace: send.stop.stop_grace,
            retry_failed: false,
        }
    }

    fn new(
        options: RunOptions,
        source: PathBuf,
        send: SendArgs,
        summary: JsonArgs,
        connection: ConnectionArgs,
    ) -> Job {
        Job {
            options,
            stream: acgbulk::sheet::input::is_stream(&source),
            source,
            dry_run: send.dry_run,
            restart: send.run.restart.restart,
            write_clean: send.clean.write_clean,
            json: summary.json,
            connection,
            max_delete: None,
        }
    }
}

pub fn run(job: Job) -> anyhow::Result<Status> {
    let checkpoint = job.options.checkpoint.clone();
    if !job.dry_run {
        engine::refuse_unfinished(&checkpoint, job.restart)?;
    }
    // Held until the run ends: another run writing the same results would
    // send every batch a second time.
    let _results_lock = if job.dry_run {
        None
    } else {
        Some(RunLock::acquire(&job.options.results)?)
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(execute(job))
}

/// Validates, then shows the plan or sends it.
async fn execute(job: Job) -> anyhow::Result<Status> {
    let options = &job.options;
    let bar = ui::bar(None, "rows validated");
    let endpoint_hint = match (&job.connection.endpoint, job.connection.emulator) {
        (_, true) => "(in-process emulator)".to_owned(),
        (Some(url), _) => url.as_str().trim_end_matches('/').to_owned(),
        (None, false) => String::new(),
    };
    let prepared = {
        let (options, bar, source, stream) =
            (options.clone(), bar.clone(), job.source.clone(), job.stream);
        tokio::task::spawn_blocking(move || {
            let progress = &mut |rows| bar.set_position(rows);
            if stream {
                engine::prepare_copying(&options, &endpoint_hint, progress, &source)
            } else {
                engine::prepare(&options, &endpoint_hint, progress)
            }
        })
        .await
        .context("validation stopped")?
    };
    bar.finish_and_clear();
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(e) if e.unwritable().is_some() => return Ok(nothing_sent(e.into())),
        Err(e) => return Err(e.into()),
    };
    let invalid = prepared.validation.invalid;
    if invalid > 0 && !options.skip_invalid {
        super::validate::print_summary(
            &prepared.validation,
            &options.report,
            &prepared.first_findings,
        );
        eprintln!(
            "nothing sent: fix the invalid rows, or give --skip-invalid to send the valid ones"
        );
        if job.json {
            ui::print_json(&prepared.validation)?;
        }
        return Ok(Status::RowsFailed);
    }
    let rate = job.connection.transport.rate_limit.0;
    if job.dry_run {
        print_plan(&prepared, options, rate);
        // A percentage needs the gateway's count, which a dry run does not ask.
        if let Some(MaxDelete::Count(limit)) = job.max_delete {
            if prepared.plan.numbers() > limit {
                eprintln!("  over --max-delete {limit}: a run would delete nothing and exit 2");
            }
        }
        if let Some(path) = &job.write_clean {
            write_clean(&prepared, options, path)?;
        }
        return Ok(Status::Done);
    }
    let connected = job.connection.connect(None).await?;
    if let Some(max) = job.max_delete {
        if !within_delete_limit(max, &prepared, options, &connected, rate).await? {
            connected.close().await?;
            return Ok(Status::Fatal);
        }
    }
    begin_sending(prepared, options, connected, job.json).await
}

/// `delete --max-delete`: a plan over the limit is shown as `--dry-run`
/// shows it, with the line that refuses it, and nothing is sent. A
/// percentage is of the numbers provisioned on the whole gateway, counted
/// with one request.
async fn within_delete_limit(
    max: MaxDelete,
    prepared: &Prepared,
    options: &RunOptions,
    connected: &Connected,
    rate: Option<u32>,
) -> anyhow::Result<bool> {
    let provisioned = match max {
        MaxDelete::Count(_) => None,
        MaxDelete::Percent(_) => {
            let (_keep, mut no_stop) = tokio::sync::watch::channel(false);
            Some(acgbulk::guard::count_numbers(&connected.client, None, &mut no_stop).await?)
        }
    };
    let limit = DeleteLimit::given(max, provisioned);
    let plan = "the plan is above (--dry-run shows it too)";
    match limit.refusal(prepared.plan.numbers(), plan) {
        None => Ok(true),
        Some(line) => {
            print_plan(prepared, options, rate);
            eprintln!("{line}");
            Ok(false)
        }
    }
}

/// `--write-clean`: the valid numbers exactly as they would be sent.
fn write_clean(prepared: &Prepared, options: &RunOptions, path: &Path) -> anyhow::Result<()> {
    let rows = acgbulk::validate::clean::write_clean(
        &options.input,
        &options.sheet,
        prepared.sheet_header.clone(),
        &prepared.expanded,
        path,
    )?;
    eprintln!(
        "  clean sheet: {} ({} numbers)",
        path.display(),
        ui::thousands(rows)
    );
    Ok(())
}

/// Leaves out the accounts the gateway does not have, starts the
/// checkpoint, and sends.
async fn begin_sending(
    mut prepared: Prepared,
    options: &RunOptions,
    connected: Connected,
    json: bool,
) -> anyhow::Result<Status> {
    prepared.header.endpoint = connected.endpoint.clone();
    let (_keep, mut no_stop) = tokio::sync::watch::channel(false);
    let missing = engine::missing_accounts(&connected.client, &prepared, &mut no_stop)
        .await
        .context("cannot check that the sheet's accounts exist on the gateway")?;
    for account in &missing {
        eprintln!(
            "{}: its numbers are failed without a request",
            account.message()
        );
    }
    prepared.leave_out_accounts(missing);
    let checkpoint = match Checkpoint::create(&options.checkpoint, prepared.header.clone()) {
        Ok(checkpoint) => checkpoint,
        Err(e) if e.unwritable().is_some() => {
            connected.close().await?;
            return Ok(nothing_sent(e.into()));
        }
        Err(e) => return Err(e.into()),
    };
    let outcome = send(prepared, options, &connected, checkpoint, Vec::new()).await;
    finish(outcome, connected, &options.checkpoint, json).await
}

/// A file could not be written before anything was sent: a stop, which
/// the same command, once there is room, gets past.
fn nothing_sent(error: anyhow::Error) -> Status {
    ui::stopped_for_room(
        error,
        "stopped before sending anything: nothing was sent; make room, then run the same command again",
    )
}

/// Runs the engine with a progress bar and Ctrl-C / SIGTERM handling.
pub async fn send(
    prepared: Prepared,
    options: &RunOptions,
    connected: &Connected,
    checkpoint: Checkpoint,
    entries: Vec<Entry>,
) -> Result<RunSummary, EngineError> {
    let (stop, signals) = super::stop_on_signal(Some("stopping: waiting briefly for answers in flight, then saving the checkpoint (Ctrl-C again does not hurry it)"));
    let bar = ui::bar(Some(prepared.plan.numbers()), "numbers");
    let started = std::time::Instant::now();
    let progress: engine::Progress = {
        let bar = bar.clone();
        let first: std::sync::Mutex<Option<u64>> = std::sync::Mutex::new(None);
        Arc::new(move |done, total| {
            bar.set_length(total);
            bar.set_position(done);
            let mut first = first.lock().expect("lock");
            let base = *first.get_or_insert(done);
            let minutes = started.elapsed().as_secs_f64() / 60.0;
            if minutes > 0.0 {
                bar.set_message(format!("{:.0}/min", (done - base) as f64 / minutes));
            }
        })
    };
    let summary = engine::execute(
        prepared,
        options,
        connected.client.clone(),
        checkpoint,
        entries,
        &stop,
        progress,
    )
    .await;
    bar.finish_and_clear();
    signals.abort();
    summary
}

/// Prints the outcome and maps it to an exit status.
pub async fn finish(
    outcome: Result<RunSummary, EngineError>,
    connected: Connected,
    checkpoint: &Path,
    json: bool,
) -> anyhow::Result<Status> {
    let endpoint = connected.endpoint.clone();
    connected.close().await?;
    let resume = format!("acgbulk resume {}", checkpoint.display());
    let summary = match outcome {
        Ok(summary) => summary,
        // What was answered is in the checkpoint (or, if the checkpoint
        // itself could not be written, was never taken as answered).
        Err(e) if e.unwritable().is_some() => {
            ui::print_error(&e.into());
            eprintln!("stopped early; make room, then resume with: {resume}");
            eprintln!("  (give the same credentials again; they are not kept in the checkpoint)");
            return Ok(Status::Stopped);
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        ui::print_json(&summary)?;
    }
    print_summary(&summary, &endpoint);
    Ok(if summary.stopped {
        eprintln!(
            "stopped early ({}); {}resume with: {resume}",
            super::reason_words(summary.stop_reason.as_ref()),
            if summary.unwritable.is_some() {
                "make room, then "
            } else {
                ""
            }
        );
        eprintln!("  (give the same credentials again; they are not kept in the checkpoint)");
        Status::stopped(summary.stop_reason.as_ref())
    } else if summary.failed + summary.invalid + summary.skipped > 0 {
        Status::RowsFailed
    } else {
        Status::Done
    })
}

pub fn print_summary(summary: &RunSummary, endpoint: &str) {
    let t = ui::thousands;
    eprintln!(
        "{} {} -> {endpoint}",
        summary.action,
        summary.input.display()
    );
    eprintln!(
        "  {} numbers: {} ok, {} failed, {} invalid, {} skipped",
        t(summary.numbers),
        t(summary.ok),
        t(summary.failed),
        t(summary.invalid),
        t(summary.skipped)
    );
    eprintln!(
        "  {} batches, {} requests ({} retries, {} throttled), {:.1} s, {:.0} numbers/min while sending",
        t(summary.batches),
        t(summary.requests),
        t(summary.retries),
        t(summary.throttled),
        summary.elapsed_seconds,
        summary.numbers_per_minute
    );
    if summary.sync_pending > 0 {
        eprintln!(
            "  {} numbers still pending backend sync",
            t(summary.sync_pending)
        );
    }
    eprintln!("  results:    {}", summary.results.display());
    eprintln!("  checkpoint: {}", summary.checkpoint.display());
}

fn print_plan(prepared: &Prepared, options: &RunOptions, rate: Option<u32>) {
    let t = ui::thousands;
    let plan = &prepared.plan;
    let per_minute = rate.unwrap_or(super::flags::defaults::RATE_PER_MINUTE);
    eprintln!(
        "dry run: {} {} (nothing sent)",
        options.action.label(),
        options.input.display()
    );
    eprintln!(
        "  {} numbers valid of {} ({} invalid{})",
        t(plan.numbers()),
        t(prepared.validation.numbers),
        t(prepared.validation.invalid),
        if prepared.validation.invalid > 0 {
            ", left out with --skip-invalid"
        } else {
            ""
        }
    );
    eprintln!(
        "  {} accounts, {} batches of at most {}: {} requests",
        plan.accounts(),
        t(plan.batches.len() as u64),
        options.batch_size,
        t(plan.batches.len() as u64)
    );
    let duration = plan.duration_at(per_minute);
    eprintln!(
        "  about {} at {per_minute} requests/min (without --wait-sync polling)",
        humantime::format_duration(Duration::from_secs(
            duration
                .as_secs()
                .max(if plan.batches.is_empty() { 0 } else { 1 })
        ))
    );
    let mut per_account: Vec<(usize, u64, u64)> = Vec::new();
    for batch in &plan.batches {
        match per_account.last_mut() {
            Some((a, batches, numbers)) if *a == batch.account as usize => {
                *batches += 1;
                *numbers += batch.len as u64;
            }
            _ => per_account.push((batch.account as usize, 1, batch.len as u64)),
        }
    }
    for (account, batches, numbers) in per_account.iter().take(20) {
        eprintln!(
            "    {:<24} {:>8} numbers {:>6} batches",
            prepared.expanded.accounts[*account],
            t(*numbers),
            t(*batches)
        );
    }
    if per_account.len() > 20 {
        eprintln!("    ... and {} more accounts", per_account.len() - 20);
    }
}
