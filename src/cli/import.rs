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
    RunSettings, SendArgs, StrictArgs, SyncArgs,
};
use super::guard::DeleteLimit;
use super::resume::{continue_run, Continuing};
use super::{ui, Status};
use acgbulk::engine::checkpoint::{Action, Checkpoint, Entry};
use acgbulk::engine::{self, EngineError, Prepared, RunOptions, RunSummary};
use acgbulk::journal::RunLock;
use acgbulk::runner::checkpoint::{self as runner_checkpoint, Begin};
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
    /// The settings the checkpoint keeps.
    settings: RunSettings,
    /// How each flag was given (a flag given wins over a kept setting).
    matches: clap::ArgMatches,
    /// A delete's `--max-delete`.
    max_delete: Option<MaxDelete>,
}

impl Args {
    pub fn job(self, matches: clap::ArgMatches) -> Job {
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
            (self.connection, Some(self.sync)),
            matches,
        )
    }
}

impl DeleteArgs {
    pub fn job(self, matches: clap::ArgMatches) -> Job {
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
                (self.connection, None),
                matches,
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
            keep_checkpoint: send.run.keep.keep_checkpoint,
        }
    }

    fn new(
        options: RunOptions,
        source: PathBuf,
        send: SendArgs,
        summary: JsonArgs,
        (connection, sync): (ConnectionArgs, Option<SyncArgs>),
        matches: clap::ArgMatches,
    ) -> Job {
        Job {
            options,
            stream: acgbulk::sheet::input::is_stream(&source),
            source,
            dry_run: send.dry_run,
            restart: send.run.restart.restart,
            write_clean: send.clean.write_clean,
            json: summary.json,
            settings: RunSettings {
                // The profile's values are kept in the checkpoint like the flags'.
                connection: super::profile::apply(&connection),
                concurrency: send.run.concurrency,
                stop: send.stop,
                sync,
                keep: send.run.keep,
            },
            matches,
            max_delete: None,
        }
    }
}

pub fn run(job: Job) -> anyhow::Result<Status> {
    if job.stream && !job.dry_run && !job.restart {
        refuse_unfinished_stream(&job.options.checkpoint)?;
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
    let connection = &job.settings.connection;
    let endpoint_hint = match (&connection.endpoint, connection.emulator) {
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
    let mut prepared = match prepared {
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
            ui::print_json(&RefusedJson {
                dry_run: job.dry_run,
                validation: super::validate::json_summary(
                    &prepared.validation,
                    &options.report,
                    None,
                ),
            })?;
        }
        return Ok(Status::RowsFailed);
    }
    let rate = connection.transport.rate_limit.0;
    if job.dry_run {
        let plan = Plan::of(&prepared, rate);
        print_plan(&plan, options);
        // A percentage needs the gateway's count, which a dry run does not ask.
        if let Some(MaxDelete::Count(limit)) = job.max_delete {
            if prepared.plan.numbers() > limit {
                eprintln!("  over --max-delete {limit}: a run would delete nothing and exit 2");
            }
        }
        let clean = match &job.write_clean {
            Some(path) => Some((path.clone(), write_clean(&prepared, options, path)?)),
            None => None,
        };
        if job.json {
            ui::print_json(&plan.json(options, clean))?;
        }
        return Ok(Status::Done);
    }
    match runner_checkpoint::begin::<Entry>(&options.checkpoint, &prepared.header, job.restart)? {
        Begin::Fresh => {
            let connected = connection.connect(None).await?;
            // The limit is checked when a run begins; the same command
            // again continues the run it allowed.
            if let Some(max) = job.max_delete {
                if !within_delete_limit(max, &prepared, options, &connected, rate).await? {
                    connected.close().await?;
                    return Ok(Status::Fatal);
                }
            }
            prepared.header.settings = job.settings.settings();
            begin_sending(prepared, options, connected, job.json).await
        }
        // The same command again: go on as `acgbulk resume` does.
        Begin::Continue(checkpoint, (header, entries)) => {
            let prepared = engine::continue_prepared(prepared, &header)?;
            let run = Continuing {
                checkpoint,
                header,
                entries,
                prepared,
                retry_failed: false,
                json: job.json,
            };
            continue_run(run, &job.settings, &job.matches).await
        }
    }
}

/// Input read once (standard input, a pipe) cannot be compared with an
/// unfinished run's before it is copied over that run's copy: such a run
/// is finished with `acgbulk resume`, or begun again with --restart.
fn refuse_unfinished_stream(checkpoint: &Path) -> anyhow::Result<()> {
    let Ok((_, lines)) = Checkpoint::peek(checkpoint) else {
        return Ok(());
    };
    if runner_checkpoint::finished(&lines) {
        return Ok(());
    }
    anyhow::bail!(
        "{} holds an unfinished run of input read from a stream; finish it with `acgbulk resume {}`, or give --restart to start over",
        checkpoint.display(),
        checkpoint.display()
    )
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
            print_plan(&Plan::of(prepared, rate), options);
            eprintln!("{line}");
            Ok(false)
        }
    }
}

/// `--write-clean`: the valid numbers exactly as they would be sent;
/// returns how many.
fn write_clean(prepared: &Prepared, options: &RunOptions, path: &Path) -> anyhow::Result<u64> {
    let rows = acgbulk::validate::clean::write_clean(
        &options.input,
        &options.sheet,
        prepared.sheet_header.clone(),
        &prepared.expanded,
        path,
    )?;
    eprintln!(
        "  clean sheet: {} ({})",
        path.display(),
        ui::plural(rows, "number", "numbers")
    );
    Ok(rows)
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
    bar.set_invalid(prepared.validation.invalid);
    let progress: engine::Progress = {
        let bar = bar.clone();
        let first = std::sync::atomic::AtomicBool::new(true);
        Arc::new(move |answered: engine::Answered| {
            // The first call says what the checkpoint already answered: the
            // pace (and the ETA) count only what this run does.
            if first.swap(false, std::sync::atomic::Ordering::Relaxed) {
                bar.start_at(answered.done);
            }
            bar.set_length(answered.total);
            bar.set_counts(answered.ok, answered.failed);
            bar.set_position(answered.done);
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
            eprintln!("  (with the same credentials in the environment; they are not kept in the checkpoint)");
            return Ok(Status::Stopped);
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        ui::print_json(&RunJson {
            dry_run: false,
            summary: &summary,
        })?;
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
        eprintln!(
            "  (with the same credentials in the environment; they are not kept in the checkpoint)"
        );
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
        "  {}: {} ok, {} failed, {} invalid, {} skipped",
        ui::plural(summary.numbers, "number", "numbers"),
        t(summary.ok),
        t(summary.failed),
        t(summary.invalid),
        t(summary.skipped)
    );
    eprintln!(
        "  {}, {} ({}, {} throttled), {}, {} while sending",
        ui::plural(summary.batches, "batch", "batches"),
        ui::plural(summary.requests, "request", "requests"),
        ui::plural(summary.retries, "retry", "retries"),
        t(summary.throttled),
        ui::duration(Duration::from_secs_f64(summary.elapsed_seconds.max(0.0))),
        ui::rate(summary.numbers_per_minute / 60.0, "numbers")
    );
    if summary.sync_pending > 0 {
        eprintln!(
            "  {} still pending backend sync",
            ui::plural(summary.sync_pending, "number", "numbers")
        );
    }
    eprintln!("  results:    {}", summary.results.display());
    if summary.checkpoint_removed {
        eprintln!("  checkpoint: removed (the run finished; --keep-checkpoint keeps it)");
    } else {
        eprintln!("  checkpoint: {}", summary.checkpoint.display());
    }
}

/// What a dry run would do.
struct Plan {
    /// Data rows read; numbers after ranges, those to send, and invalid.
    rows: u64,
    all: u64,
    numbers: u64,
    invalid: u64,
    batches: u64,
    /// The pace assumed: `--rate-limit`, or the API's own without one.
    per_minute: u32,
    seconds: u64,
    /// `(account, numbers, batches)`, in the plan's order.
    by_account: Vec<(String, u64, u64)>,
}

impl Plan {
    fn of(prepared: &Prepared, rate: Option<u32>) -> Plan {
        let plan = &prepared.plan;
        let per_minute = rate.unwrap_or(super::flags::defaults::RATE_PER_MINUTE);
        let duration = plan.duration_at(per_minute);
        let mut by_account: Vec<(String, u64, u64)> = Vec::new();
        let mut last = None;
        for batch in &plan.batches {
            match by_account.last_mut() {
                Some((_, numbers, batches)) if last == Some(batch.account) => {
                    *batches += 1;
                    *numbers += batch.len as u64;
                }
                _ => by_account.push((
                    prepared.expanded.accounts[batch.account as usize].to_string(),
                    batch.len as u64,
                    1,
                )),
            }
            last = Some(batch.account);
        }
        Plan {
            rows: prepared.validation.rows,
            all: prepared.validation.numbers,
            numbers: plan.numbers(),
            invalid: prepared.validation.invalid,
            batches: plan.batches.len() as u64,
            per_minute,
            // At least a second for anything to send, so it never reads 0.
            seconds: duration.as_secs().max(u64::from(!plan.batches.is_empty())),
            by_account,
        }
    }

    fn json(&self, options: &RunOptions, clean: Option<(PathBuf, u64)>) -> PlanJson {
        PlanJson {
            dry_run: true,
            action: options.action.label(),
            input: options.input.clone(),
            report: options.report.clone(),
            rows: self.rows,
            numbers: self.numbers,
            invalid: self.invalid,
            accounts: self.by_account.len() as u64,
            batches: self.batches,
            batch_size: options.batch_size as u64,
            requests: self.batches,
            rate_limit: self.per_minute,
            seconds: self.seconds,
            by_account: self
                .by_account
                .iter()
                .map(|(account, numbers, batches)| AccountPlan {
                    account: account.clone(),
                    numbers: *numbers,
                    batches: *batches,
                })
                .collect(),
            clean: clean.map(|(file, rows)| super::validate::CleanFile {
                file: file.display().to_string(),
                rows,
            }),
        }
    }
}

/// `--dry-run --json`: the plan.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct PlanJson {
    dry_run: bool,
    action: &'static str,
    input: PathBuf,
    report: PathBuf,
    rows: u64,
    numbers: u64,
    invalid: u64,
    accounts: u64,
    batches: u64,
    batch_size: u64,
    requests: u64,
    rate_limit: u32,
    seconds: u64,
    by_account: Vec<AccountPlan>,
    clean: Option<super::validate::CleanFile>,
}

#[derive(serde::Serialize)]
struct AccountPlan {
    account: String,
    numbers: u64,
    batches: u64,
}

/// `--json` of a run that sent (or resumed): the run's summary.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct RunJson<'a> {
    dry_run: bool,
    #[serde(flatten)]
    summary: &'a RunSummary,
}

/// `--json` of a sheet refused for its invalid rows: validate's summary.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct RefusedJson<'a> {
    dry_run: bool,
    #[serde(flatten)]
    validation: super::validate::JsonSummary<'a>,
}

fn print_plan(plan: &Plan, options: &RunOptions) {
    let t = ui::thousands;
    eprintln!(
        "dry run: {} {} (nothing sent)",
        options.action.label(),
        options.input.display()
    );
    eprintln!(
        "  {} valid of {} ({} invalid{})",
        ui::plural(plan.numbers, "number", "numbers"),
        t(plan.all),
        t(plan.invalid),
        if plan.invalid > 0 {
            ", left out with --skip-invalid"
        } else {
            ""
        }
    );
    eprintln!(
        "  {}, {} of at most {}: {}",
        ui::plural(plan.by_account.len() as u64, "account", "accounts"),
        ui::plural(plan.batches, "batch", "batches"),
        options.batch_size,
        ui::plural(plan.batches, "request", "requests")
    );
    eprintln!(
        "  about {} at {} requests/min (without --wait-sync polling)",
        ui::duration(Duration::from_secs(plan.seconds)),
        t(u64::from(plan.per_minute))
    );
    for (account, numbers, batches) in plan.by_account.iter().take(20) {
        let word = |n: u64, one: &'static str, many| if n == 1 { one } else { many };
        eprintln!(
            "    {:<24} {:>8} {:<7} {:>6} {}",
            account,
            t(*numbers),
            word(*numbers, "number", "numbers"),
            t(*batches),
            word(*batches, "batch", "batches")
        );
    }
    if plan.by_account.len() > 20 {
        eprintln!("    ... and {} more accounts", plan.by_account.len() - 20);
    }
}
