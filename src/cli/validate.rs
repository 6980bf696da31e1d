//! `acgbulk validate`: check a sheet offline and report each bad row
//! (flags: `acgbulk validate --help`).
//!
//! Writes one report line per finding (`row,telephoneNumber,severity,code,
//! column,message`) and prints a summary. Exit 0 when no row is invalid,
//! 1 when some are, 2 when the sheet cannot be read.

use super::flags::{CleanArgs, JsonArgs, NumberSheetArgs, ReportArgs, RuleArgs, StrictArgs};
use super::ui;
use super::Status;
use acgbulk::validate::pipeline::Summary;
use acgbulk::validate::{self, Finding};
use anyhow::Context;
use std::path::{Path, PathBuf};

/// The examples at the end of `--help`, each run by tests/help_examples.rs.
pub const VALIDATE_EXAMPLES: &str = "\
Examples:
  # Check a sheet offline; this one has mistakes, so it exits 1 (exit 1)
  acgbulk validate samples/mistakes.csv

  # Repair what can be repaired and write the numbers as they would be sent (exit 1)
  acgbulk validate samples/mistakes.csv --normalize --default-country GB \\
    --write-clean clean.csv

  # A sheet on standard input, the report on standard output
  cat samples/operator-connect.csv | acgbulk validate - --report -
";

/// Check a sheet of numbers offline and report every bad row
#[derive(clap::Args, Debug)]
#[command(after_long_help = VALIDATE_EXAMPLES)]
pub struct Args {
    /// The sheet: CSV (`-` for standard input), .xlsx, .xlsm, .xlsb, .xls or .ods
    pub input: PathBuf,

    #[command(flatten)]
    pub report: ReportArgs,

    #[command(flatten)]
    pub summary: JsonArgs,

    #[command(flatten)]
    pub clean: CleanArgs,

    #[command(flatten)]
    pub sheet: NumberSheetArgs,

    #[command(flatten)]
    pub rules: RuleArgs,

    #[command(flatten)]
    pub strict: StrictArgs,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let report = args.report.path(&args.input);
    if args.summary.json && report == Path::new("-") {
        anyhow::bail!(
            "--json and --report - both write to standard output: give --report FILE with --json"
        );
    }
    if args.clean.write_clean.as_deref() == Some(Path::new("-"))
        && (args.summary.json || report == Path::new("-"))
    {
        anyhow::bail!(
            "--write-clean - writes to standard output, as --json and --report - do: give one of them a FILE"
        );
    }
    let bar = ui::bar(None, "rows");
    let outcome = validate::validate_file(
        &args.input,
        &args.sheet.read.sheet_options(),
        &args.rules.rule_options(&args.sheet),
        &report,
        args.clean.write_clean.as_deref(),
        &mut |rows| bar.set_position(rows),
    );
    bar.finish_and_clear();
    let validation =
        outcome.with_context(|| format!("cannot validate {}", args.input.display()))?;
    let (summary, first) = (&validation.validated.summary, &validation.first);
    let clean = args.clean.write_clean.as_ref().zip(validation.clean_rows);
    if args.summary.json {
        ui::print_json(&json_summary(summary, &report, clean))?;
    } else {
        print_summary(summary, &report, first);
        if let Some((path, rows)) = clean {
            eprintln!(
                "clean sheet: {} ({})",
                path.display(),
                ui::plural(rows, "number", "numbers")
            );
        }
    }
    Ok(if summary.invalid > 0 {
        Status::RowsFailed
    } else {
        Status::Done
    })
}

/// `--json`: the counts, the report, and the clean sheet (`null` without
/// `--write-clean`); import's too, when it refuses a sheet.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonSummary<'a> {
    #[serde(flatten)]
    summary: &'a Summary,
    report: String,
    clean: Option<CleanFile>,
    top_errors: Vec<TopError>,
}

pub fn json_summary<'a>(
    summary: &'a Summary,
    report: &Path,
    clean: Option<(&PathBuf, u64)>,
) -> JsonSummary<'a> {
    JsonSummary {
        summary,
        report: report.display().to_string(),
        clean: clean.map(|(path, rows)| CleanFile {
            file: path.display().to_string(),
            rows,
        }),
        top_errors: summary
            .top_errors()
            .into_iter()
            .map(|(code, count)| TopError {
                code: code.as_str(),
                count,
            })
            .collect(),
    }
}

/// `--write-clean`'s file and how many numbers it holds.
#[derive(serde::Serialize)]
pub struct CleanFile {
    pub file: String,
    pub rows: u64,
}

#[derive(serde::Serialize)]
struct TopError {
    code: &'static str,
    count: u64,
}

/// The one-screen summary on stderr.
pub fn print_summary(summary: &Summary, report: &Path, first: &[Finding]) {
    let t = ui::thousands;
    eprintln!(
        "{}: {}, {} after ranges: {} valid, {} invalid, {}",
        summary.file,
        ui::plural(summary.rows, "row", "rows"),
        ui::plural(summary.numbers, "number", "numbers"),
        t(summary.valid),
        t(summary.invalid),
        ui::plural(summary.warnings, "warning", "warnings"),
    );
    let top = summary.top_errors();
    if !top.is_empty() {
        let list: Vec<String> = top
            .iter()
            .take(6)
            .map(|(c, n)| format!("{c} {}", t(*n)))
            .collect();
        eprintln!("top errors: {}", list.join(", "));
    }
    if !summary.warnings_by_code.is_empty() {
        // Shown by code, so no kind of warning hides behind "... more".
        let list: Vec<String> = summary
            .warnings_by_code
            .iter()
            .map(|(c, n)| format!("{c} {}", t(*n)))
            .collect();
        eprintln!("warnings: {}", list.join(", "));
    }
    if !first.is_empty() {
        for f in first {
            let place = match &f.sheet {
                Some(sheet) => format!("{sheet} row {}", f.row),
                None => format!("row {:>6}", f.row),
            };
            eprintln!(
                "  {place}  {:<8} {:<22} {}",
                f.severity.as_str(),
                f.code.as_str(),
                f.message
            );
        }
        let total: u64 =
            summary.errors_by_code.values().sum::<u64>() + summary.warnings + summary.notes;
        if total > first.len() as u64 {
            eprintln!("  ... {} more", t(total - first.len() as u64));
        }
    }
    eprintln!("report: {}", report.display());
}
