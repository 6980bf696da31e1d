//! `acgbulk import` and `acgbulk delete`: load a sheet of numbers into the
//! gateway (or release them), at the rate limit, with a results file and a
//! checkpoint to resume from.
//!
//! ```text
//! acgbulk import INPUT [--endpoint URL | --emulator] [auth options]
//!                [--results FILE] [--checkpoint FILE] [--dry-run] [--skip-invalid]
//!                [--wait-sync] [--batch-size N] [--rate-limit N/min] [--concurrency N]
//! acgbulk delete INPUT ...   (needs only telephoneNumber and accountName, or --account)
//! ```
//!
//! Exit 0 when every number is done, 1 when some failed or were invalid,
//! 2 for input or configuration errors, 3 when stopped early (resumable).

use super::args::{beside, checkpoint_of, SheetArgs};
use super::connect::{Connected, ConnectionArgs};
use super::{ui, Status};
use acgbulk::engine::checkpoint::{Action, Checkpoint, Entry};
use acgbulk::engine::{self, EngineError, Prepared, RunOptions, RunSummary};
use acgbulk::journal::RunLock;
use acgbulk::plan::MAX_BATCH_SIZE;
use acgbulk::validate::RuleOptions;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Load a sheet of numbers into the gateway at the rate limit
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The sheet: CSV (`-` for standard input), .xlsx, .xlsm, .xlsb, .xls or .ods
    pub input: PathBuf,

    #[command(flatten)]
    pub run: RunArgs,

    #[command(flatten)]
    pub sheet: SheetArgs,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// What a run writes and how it sends.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// The results file, one line per number
    /// [default: INPUT's name with .results.csv, beside it]
    #[arg(long, value_name = "FILE", help_heading = "Run")]
    pub results: Option<PathBuf>,

    /// The checkpoint to resume from [default: RESULTS.checkpoint]
    #[arg(long, value_name = "FILE", help_heading = "Run")]
    pub checkpoint: Option<PathBuf>,

    /// The validation report [default: INPUT's name with .report.csv]
    #[arg(long, value_name = "FILE", help_heading = "Run")]
    pub report: Option<PathBuf>,

    /// Show the plan (accounts, batches, requests, time) and send nothing
    #[arg(long, help_heading = "Run")]
    pub dry_run: bool,

    /// With --dry-run: write the valid numbers exactly as they would be
    /// sent (one row per number, canonical, in the portal's format)
    #[arg(long, value_name = "FILE", requires = "dry_run", help_heading = "Run")]
    pub write_clean: Option<PathBuf>,

    /// Send the valid rows and mark the others invalid in the results,
    /// instead of refusing the whole sheet
    #[arg(long, help_heading = "Run")]
    pub skip_invalid: bool,

    /// After the writes, wait until backend sync has finished for every
    /// number, and record its outcome
    #[arg(long, help_heading = "Run")]
    pub wait_sync: bool,

    /// How long --wait-sync waits at most
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration, help_heading = "Run")]
    pub sync_timeout: Duration,

    /// Pause between --wait-sync polls
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration, help_heading = "Run")]
    pub sync_poll: Duration,

    /// Numbers per batch request (at most 100)
    #[arg(long, value_name = "N", default_value_t = MAX_BATCH_SIZE as u32, value_parser = clap::value_parser!(u32).range(1..=MAX_BATCH_SIZE as i64), help_heading = "Run")]
    pub batch_size: u32,

    /// Batch requests in flight at once (the rate limit still paces them)
    #[arg(long, value_name = "N", default_value_t = 8, help_heading = "Run")]
    pub concurrency: usize,

    /// Start over even if the checkpoint holds an unfinished run
    #[arg(long, help_heading = "Run")]
    pub restart: bool,

    /// Print the summary as JSON on standard output
    #[arg(long, help_heading = "Run")]
    pub json: bool,
}

pub fn run(args: Args, action: Action) -> anyhow::Result<Status> {
    let results = args
        .run
        .results
        .clone()
        .unwrap_or_else(|| beside(&args.input, ".results.csv"));
    let checkpoint = args
        .run
        .checkpoint
        .clone()
        .unwrap_or_else(|| checkpoint_of(&results));
    let checkpoint = std::path::absolute(&checkpoint).unwrap_or(checkpoint);
    let report = args
        .run
        .report
        .clone()
        .unwrap_or_else(|| beside(&args.input, ".report.csv"));
    // Rows are read again to send them: input that can be read only once
    // (standard input, a FIFO, a device) is copied beside the results as it
    // is validated, and the run reads the copy.
    let source = args.input.clone();
    let stream = acgbulk::sheet::input::is_stream(&source);
    let input = if stream {
        beside(&results, ".input.csv")
    } else {
        source.clone()
    };
    if !args.run.dry_run {
        engine::refuse_unfinished(&checkpoint, args.run.restart)?;
    }
    let options = RunOptions {
        action,
        input,
        sheet: args.sheet.sheet_options(),
        rules: RuleOptions {
            numbers_only: action == Action::Delete,
            ..args.sheet.rule_options()
        },
        batch_size: args.run.batch_size as usize,
        skip_invalid: args.run.skip_invalid,
        results,
        checkpoint,
        report,
        concurrency: args.run.concurrency,
        wait_sync: args.run.wait_sync && action == Action::Import,
        sync_timeout: args.run.sync_timeout,
        sync_poll: args.run.sync_poll,
        grace: Duration::from_secs(10),
        retry_failed: false,
    };
    // Held until the run ends: another run writing the same results would
    // send every batch a second time.
    let _results_lock = if args.run.dry_run {
        None
    } else {
        Some(RunLock::acquire(&options.results)?)
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let bar = ui::bar(None, "rows validated");
        let endpoint_hint = match (&args.connection.endpoint, args.connection.emulator) {
            (_, true) => "(in-process emulator)".to_owned(),
            (Some(url), _) => url.as_str().trim_end_matches('/').to_owned(),
            (None, false) => String::new(),
        };
        let prepared = {
            let options = options.clone();
            let bar = bar.clone();
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
            if args.run.json {
                ui::print_json(&prepared.validation)?;
            }
            return Ok(Status::RowsFailed);
        }
        if args.run.dry_run {
            print_plan(&prepared, &options, args.connection.transport.rate_limit.0);
            if let Some(path) = &args.run.write_clean {
                write_clean(&prepared, &options, path)?;
            }
            return Ok(Status::Done);
        }
        let connected = args.connection.connect(None).await?;
        begin_sending(prepared, &options, connected, args.run.json).await
    })
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
    let per_minute = rate.unwrap_or(100);
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
