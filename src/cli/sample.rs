//! `acgbulk sample`: write a realistic sheet of any size (flags: `acgbulk
//! sample --help`).
//!
//! FILE ending in .xlsx writes a spreadsheet, anything else CSV (`-` for
//! standard output).

use super::flags::OutputArgs;
use super::Status;
use acgbulk::sample::{self, SampleOptions};
use anyhow::Context;

/// The examples at the end of `--help`, each run by tests/help_examples.rs.
pub const SAMPLE_EXAMPLES: &str = "\
Examples:
  # A 100-row trial sheet
  acgbulk sample --rows 100 -o trial.csv

  # A workbook whose numbers are numeric cells, as Excel makes them
  acgbulk sample --rows 50 -o trial.xlsx --numeric-cells

  # A sheet without mistakes, straight into validate
  acgbulk sample --rows 200 --mistakes 0 -o - | acgbulk validate - --report -
";

/// Write a realistic number sheet of any size (for trials and benchmarks)
#[derive(clap::Args, Debug)]
#[command(after_long_help = SAMPLE_EXAMPLES)]
#[command(mut_arg("output", |a| a
    .required(true)
    .help("Output file: .xlsx for a spreadsheet, else CSV; `-` for standard output")))]
pub struct Args {
    /// Data rows to write (a range row counts once)
    #[arg(long, default_value_t = 1000)]
    pub rows: u64,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Random seed: the same seed gives the same sheet
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Number of accounts
    #[arg(long, default_value_t = 12)]
    pub accounts: usize,

    /// Share of rows with one typical mistake (0 to 1)
    #[arg(long, default_value_t = 0.01)]
    pub mistakes: f64,

    /// Share of rows that are number ranges (0 to 1)
    #[arg(long, default_value_t = 0.02)]
    pub ranges: f64,

    /// Numbers in each range row
    #[arg(long, default_value_t = 50)]
    pub range_size: u64,

    /// In .xlsx output, store numbers as numeric cells (as Excel does when
    /// `+441632960123` is typed by hand)
    #[arg(long)]
    pub numeric_cells: bool,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let options = SampleOptions {
        rows: args.rows,
        seed: args.seed,
        accounts: args.accounts,
        mistakes: args.mistakes,
        ranges: args.ranges,
        range_size: args.range_size,
    };
    let output = args.output.required();
    let is_xlsx = output
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
    let stats = if is_xlsx {
        sample::write_xlsx(output, options, args.numeric_cells)
    } else if output.as_os_str() == "-" {
        sample::write_csv(std::io::stdout().lock(), options)
    } else {
        std::fs::File::create(output).and_then(|file| sample::write_csv(file, options))
    }
    .with_context(|| format!("cannot write {}", output.display()))?;
    eprintln!(
        "wrote {}: {} rows, {} numbers, {} rows with a mistake",
        output.display(),
        stats.rows,
        stats.numbers,
        stats.mistakes
    );
    Ok(Status::Done)
}
