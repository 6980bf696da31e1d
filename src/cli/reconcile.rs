//! `acgbulk reconcile`: compare a desired sheet with what is provisioned,
//! and list or apply the difference (flags: `acgbulk reconcile --help`).
//!
//! Writes `DIR/diff.csv`, `DIR/to-upsert.csv` and `DIR/to-delete.csv`; or,
//! given `-o FILE.xlsx`, one workbook with those as sheets after a Summary
//! (and the desired sheet's report as `FILE.report.xlsx`), without --apply.
//! Exit 0 when there is no drift, 1 when there is (numbers left alone as
//! `invalid` included), 2 on input errors and when `--apply` would delete
//! more than `--max-delete`; with `--apply`, 0 when the drift was all put
//! right.

use super::connect::Connected;
use super::flags::{
    beside, checkpoint_of, BatchArgs, ConcurrencyArgs, ConnectionArgs, JsonArgs, MaxDeleteArgs,
    NumberSheetArgs, OnlyAccountArgs, OutputArgs, PageArgs, RuleArgs, SkipInvalidArgs, StopArgs,
    StrictArgs, SyncArgs,
};
use super::guard::DeleteLimit;
use super::{import, ui, Status};
use acgbulk::engine::checkpoint::{Action, Checkpoint};
use acgbulk::engine::{self, RunOptions};
use acgbulk::reconcile::{self, Interner, Outputs};
use acgbulk::sheet::SheetOptions;
use acgbulk::validate::RuleOptions;
use anyhow::Context;
use std::path::{Path, PathBuf};

/// The examples at the end of `--help`, each run by tests/help_examples.rs.
pub const RECONCILE_EXAMPLES: &str = "\
Examples:
  # Compare a sheet with the gateway in ACG_ENDPOINT; exit 1 while they differ (exit 1)
  acgbulk reconcile samples/operator-connect.csv --live -o drift

  # Put the gateway right: upsert what is missing or different
  acgbulk reconcile samples/operator-connect.csv --live -o drift --apply

  # Compare with an export instead of the live gateway
  acgbulk export numbers -o actual.csv \\
    && acgbulk reconcile samples/operator-connect.csv --actual actual.csv -o offline
";

/// Compare a desired sheet with what is provisioned, and list or apply the difference
#[derive(clap::Args, Debug)]
#[command(after_long_help = RECONCILE_EXAMPLES)]
#[command(mut_arg("output", |a| a
    .required(true)
    .value_name("DIR")
    .help("Directory for diff.csv, to-upsert.csv and to-delete.csv (and, with --apply, their results and checkpoints); or FILE.xlsx for one workbook of the three (not with --apply)")))]
#[command(mut_arg("only_account", |a| a.alias("live-account").requires("live")))]
#[command(mut_arg("wait_sync", |a| a.requires("apply")))]
#[command(mut_arg("max_delete", |a| a.requires("apply")))]
pub struct Args {
    /// The desired sheet (read and validated as import does)
    pub desired: PathBuf,

    /// What is provisioned, as a numbers export
    #[arg(
        long,
        value_name = "EXPORT",
        required_unless_present = "live",
        conflicts_with = "live"
    )]
    pub actual: Option<PathBuf>,

    /// What is provisioned, read from the gateway now
    #[arg(long)]
    pub live: bool,

    // With --live.
    #[command(flatten)]
    pub only: OnlyAccountArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Put the drift right: import to-upsert.csv (and with --allow-delete,
    /// delete to-delete.csv first), with the run flags below
    #[arg(long)]
    pub apply: bool,

    /// With --apply: also release the numbers not in the desired sheet (and
    /// the old places of moved numbers)
    #[arg(long, requires = "apply")]
    pub allow_delete: bool,

    #[command(flatten)]
    pub max_delete: MaxDeleteArgs,

    #[command(flatten)]
    pub skip_invalid: SkipInvalidArgs,

    #[command(flatten)]
    pub summary: JsonArgs,

    #[command(flatten)]
    pub sheet: NumberSheetArgs,

    #[command(flatten)]
    pub rules: RuleArgs,

    #[command(flatten)]
    pub strict: StrictArgs,

    #[command(flatten)]
    pub page: PageArgs,

    #[command(flatten)]
    pub concurrency: ConcurrencyArgs,

    #[command(flatten)]
    pub batch: BatchArgs,

    #[command(flatten)]
    pub stop: StopArgs,

    #[command(flatten)]
    pub sync: SyncArgs,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

impl Args {
    /// The options of the import or delete that `--apply` runs on `input`,
    /// a file reconcile wrote: canonical already, so no sheet options and
    /// no rules beyond the numbers'.
    fn apply_options(&self, action: Action, input: &Path) -> RunOptions {
        let results = beside(input, ".results.csv");
        RunOptions {
            action,
            input: input.to_owned(),
            sheet: SheetOptions::default(),
            rules: RuleOptions {
                numbers_only: action == Action::Delete,
                ..RuleOptions::default()
            },
            batch_size: self.batch.batch_size as usize,
            skip_invalid: true,
            checkpoint: checkpoint_of(&results),
            report: beside(input, ".report.csv"),
            results,
            concurrency: self.concurrency.concurrency,
            wait_sync: self.sync.wait_sync && action == Action::Import,
            sync_timeout: self.sync.sync_timeout,
            sync_poll: self.sync.sync_poll,
            grace: self.stop.stop_grace,
            retry_failed: false,
            keep_checkpoint: false,
        }
    }
}

/// `--json`: one object, every key once.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonSummary {
    counts: JsonCounts,
    files: JsonFiles,
    /// Whether `--apply` sent the drift.
    applied: bool,
    /// With `--apply`: the delete guard.
    max_delete: Option<JsonMaxDelete>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonCounts {
    /// Numbers of the desired sheet's valid rows.
    desired: u64,
    /// Numbers provisioned.
    actual: u64,
    #[serde(flatten)]
    drift: reconcile::Drift,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonFiles {
    diff: PathBuf,
    to_upsert: PathBuf,
    to_delete: PathBuf,
    /// The desired sheet's validation report.
    report: PathBuf,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonMaxDelete {
    limit: u64,
    /// Numbers the plan deletes (0 without --allow-delete).
    deletes: u64,
    refused: bool,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let (outputs, report) = outputs_of(&args)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let needs_connection = args.live || args.apply;
        let connected = if needs_connection { Some(args.connection.connect(None).await?) } else { None };
        let bar = ui::bar(None, "rows");
        let (desired, actual, interner) = {
            let (path, sheet, rules, skip) = (args.desired.clone(), args.sheet.read.sheet_options(), args.rules.rule_options(&args.sheet), args.skip_invalid.skip_invalid);
            let (report, actual_path, bar2) = (report.clone(), args.actual.clone(), bar.clone());
            let (mut interner, desired, actual) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let mut interner = Interner::default();
                let started = std::time::Instant::now();
                let (desired, _, _) = reconcile::desired_side(&path, &sheet, &rules, &report, skip, &mut interner, &mut |r| bar2.set_position(r))?;
                tracing::info!("desired side read in {:?}", started.elapsed());
                let actual = match actual_path {
                    Some(export) => Some(reconcile::export_side(&export, &SheetOptions::default(), &mut interner, &mut |r| bar2.set_position(r))?),
                    None => None,
                };
                tracing::info!("both sides read in {:?}", started.elapsed());
                Ok((interner, desired, actual))
            })
            .await
            .context("reading the sheets stopped")??;
            let actual = match actual {
                Some(actual) => actual,
                None => {
                    let client = &connected.as_ref().expect("--live connects").client;
                    let (_tx, mut stop) = tokio::sync::watch::channel(false);
                    let bar3 = bar.clone();
                    reconcile::live_side(client, &args.only.only_account, super::profile::apply(&args.page).page_size, &mut interner, &mut stop, &mut move |n| bar3.set_position(n)).await?
                }
            };
            (desired, actual, interner)
        };
        bar.finish_and_clear();
        let started = std::time::Instant::now();
        let drift = reconcile::compare(&desired, &actual, &interner, &outputs)?;
        tracing::info!("compared and written in {:?}", started.elapsed());
        let t = ui::thousands;
        eprintln!(
            "desired {} numbers, provisioned {}: {} same, {} missing, {} extra, {} moved, {} changed, {} invalid",
            t(desired.items.len() as u64),
            t(actual.items.len() as u64),
            t(drift.same),
            t(drift.missing),
            t(drift.extra),
            t(drift.moved),
            t(drift.changed),
            t(drift.invalid)
        );
        if drift.invalid > 0 {
            eprintln!(
                "  {} numbers not judged, left alone: their desired rows are invalid (or one with no readable number could be them); see {} and {}",
                t(drift.invalid),
                outputs.workbook.as_ref().unwrap_or(&outputs.diff).display(),
                report.display()
            );
        }
        print_files(&outputs, &drift);
        let mut status = if drift.any() { Status::RowsFailed } else { Status::Done };
        let mut applied = false;
        let mut guard = None;
        if args.apply && drift.any() {
            let deletes = if args.allow_delete { drift.to_delete } else { 0 };
            let limit = DeleteLimit::reconcile(args.max_delete.max_delete, actual.items.len() as u64);
            let plan = format!("the plan is in {}", outputs.to_delete.display());
            let refusal = limit.refusal(deletes, &plan);
            guard = Some(JsonMaxDelete { limit: limit.numbers, deletes, refused: refusal.is_some() });
            if let Some(line) = refusal {
                eprintln!("{line}");
                status = Status::Fatal;
            }
        }
        if args.apply && drift.any() && status != Status::Fatal {
            let connected = connected.as_ref().expect("--apply connects");
            if drift.moved > 0 && !args.allow_delete {
                eprintln!("warning: {} moved numbers cannot move without --allow-delete; their upserts will fail", drift.moved);
            }
            let mut all_ok = true;
            let mut runs = Vec::new();
            if args.allow_delete && drift.to_delete > 0 {
                runs.push((Action::Delete, outputs.to_delete.clone()));
            }
            if drift.to_upsert > 0 {
                runs.push((Action::Import, outputs.to_upsert.clone()));
            }
            applied = !runs.is_empty();
            for (action, input) in runs {
                let summary = apply(args.apply_options(action, &input), connected).await?;
                all_ok &= summary.failed + summary.invalid + summary.skipped == 0 && !summary.stopped;
                if summary.stopped {
                    status = Status::Stopped;
                }
            }
            // Numbers left alone as invalid are drift still.
            let fixed = all_ok && (args.allow_delete || drift.extra + drift.moved == 0) && drift.invalid == 0;
            if status != Status::Stopped {
                status = if fixed { Status::Done } else { Status::RowsFailed };
            }
        }
        if args.summary.json {
            ui::print_json(&JsonSummary {
                counts: JsonCounts {
                    desired: desired.items.len() as u64,
                    actual: actual.items.len() as u64,
                    drift,
                },
                files: JsonFiles {
                    diff: outputs.diff.clone(),
                    to_upsert: outputs.to_upsert.clone(),
                    to_delete: outputs.to_delete.clone(),
                    report: report.clone(),
                },
                applied,
                max_delete: guard,
            })?;
        }
        if let Some(connected) = connected {
            connected.close().await?;
        }
        Ok(status)
    })
}

/// The files `-o` asks for: three CSV files in a directory, or one
/// workbook; and where the desired sheet's report goes.
fn outputs_of(args: &Args) -> anyhow::Result<(Outputs, PathBuf)> {
    let dir = args.output.required();
    if !acgbulk::xlsx::is_xlsx(dir) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        return Ok((Outputs::in_dir(dir), dir.join("desired.report.csv")));
    }
    // A workbook is for a person to read; --apply sends from CSV files.
    if args.apply {
        anyhow::bail!(
            "--apply sends the files reconcile writes in a directory: give -o DIR, not a workbook ({})",
            dir.display()
        );
    }
    Ok((
        Outputs::workbook(dir),
        super::flags::beside(dir, ".report.xlsx"),
    ))
}

fn print_files(outputs: &Outputs, drift: &reconcile::Drift) {
    let t = ui::thousands;
    if let Some(workbook) = &outputs.workbook {
        eprintln!(
            "  workbook:  {} ({} to upsert, {} to delete)",
            workbook.display(),
            t(drift.to_upsert),
            t(drift.to_delete)
        );
        return;
    }
    eprintln!("  diff:      {}", outputs.diff.display());
    eprintln!(
        "  to-upsert: {} ({} numbers)",
        outputs.to_upsert.display(),
        t(drift.to_upsert)
    );
    eprintln!(
        "  to-delete: {} ({} numbers)",
        outputs.to_delete.display(),
        t(drift.to_delete)
    );
}

/// Runs one import or delete of a file reconcile wrote.
async fn apply(options: RunOptions, connected: &Connected) -> anyhow::Result<engine::RunSummary> {
    let prepared = {
        let (options, endpoint) = (options.clone(), connected.endpoint.clone());
        tokio::task::spawn_blocking(move || engine::prepare(&options, &endpoint, &mut |_| {}))
            .await??
    };
    let checkpoint = Checkpoint::create(&options.checkpoint, prepared.header.clone())?;
    let summary = import::send(prepared, &options, connected, checkpoint, Vec::new()).await?;
    import::print_summary(&summary, &connected.endpoint);
    Ok(summary)
}
