//! Flag groups shared by several commands, each flag defined and documented
//! once here.

use acgbulk::sheet::{ColumnMapping, SheetOptions};
use acgbulk::validate::RuleOptions;
use std::path::{Path, PathBuf};

/// Where a command writes beside its input by default: `dir/numbers.csv`
/// -> `dir/numbers{suffix}`; standard input -> `stdin{suffix}`.
pub fn beside(input: &Path, suffix: &str) -> PathBuf {
    if input == Path::new("-") {
        return PathBuf::from(format!("stdin{suffix}"));
    }
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if acgbulk::sheet::input::is_stream(input) {
        // A device or a pipe: like standard input, its files go in the
        // current directory (nothing can be written beside /dev/stdin).
        return PathBuf::from(format!("{stem}{suffix}"));
    }
    input.with_file_name(format!("{stem}{suffix}"))
}

/// A results file's checkpoint: `x.results.csv` -> `x.results.csv.checkpoint`.
pub fn checkpoint_of(results: &Path) -> PathBuf {
    let mut name = results.to_owned().into_os_string();
    name.push(".checkpoint");
    PathBuf::from(name)
}

/// How to read a sheet.
#[derive(clap::Args, Debug, Clone)]
pub struct ReadArgs {
    /// CSV delimiter: `,`, `;` or `tab` [default: detected from the heading line]
    #[arg(long, value_parser = acgbulk::csvconf::parse_delimiter, help_heading = "Reading")]
    pub delimiter: Option<u8>,

    /// Spreadsheet sheet to read, by name or 1-based position; `all`, or a
    /// list such as `London,Leeds`, reads several sheets as one (a sheet
    /// with no heading row is skipped with a note) [default: the first]
    #[arg(long, value_name = "NAME|INDEX|all|LIST", help_heading = "Reading")]
    pub sheet: Option<String>,

    /// Skip columns whose heading is unknown, instead of refusing the sheet
    #[arg(long, help_heading = "Reading")]
    pub ignore_unknown_columns: bool,

    /// The row that holds the headings [default: the first of the first 20
    /// rows whose cells are all known or mapped headings]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Reading")]
    pub header_row: Option<u64>,

    /// Read the column headed HEADING as FIELD (a heading of the portal's
    /// format), e.g. --map "Phone Number=telephoneNumber"; headings match
    /// without regard to case and surrounding spaces; repeat for more
    #[arg(long = "map", value_name = "HEADING=FIELD", value_parser = ColumnMapping::parse, help_heading = "Reading")]
    pub map: Vec<ColumnMapping>,
}

impl ReadArgs {
    pub fn sheet_options(&self) -> SheetOptions {
        SheetOptions {
            delimiter: self.delimiter,
            sheet: self.sheet.clone(),
            ignore_unknown_columns: self.ignore_unknown_columns,
            header_row: self.header_row,
            map: self.map.clone(),
        }
    }
}

/// How to read a number sheet and which rules to apply to it.
#[derive(clap::Args, Debug, Clone)]
pub struct SheetArgs {
    #[command(flatten)]
    pub read: ReadArgs,

    /// Account for rows that have none: when the sheet has no accountName
    /// column, or for its empty cells
    #[arg(long, value_name = "NAME", help_heading = "Reading")]
    pub account: Option<String>,

    /// Rewrite numbers written with spaces, dashes, dots or brackets, or
    /// with 00 for +; each rewrite is reported as a NORMALIZED warning
    #[arg(long, help_heading = "Validation")]
    pub normalize: bool,

    /// The country (ISO 3166, e.g. GB) of numbers written in national
    /// format: with --normalize for text cells, and always for spreadsheet
    /// numeric cells that lost their leading 0
    #[arg(long, value_name = "CC", value_parser = country, help_heading = "Validation")]
    pub default_country: Option<String>,

    /// Make NUMBER_NOT_VALID (libphonenumber's metadata says the number is
    /// not valid) a warning instead of an error, for ranges newer than the
    /// metadata
    #[arg(long, help_heading = "Validation")]
    pub allow_invalid_numbers: bool,

    /// Accepted for compatibility: NUMBER_NOT_VALID is an error by default now
    #[arg(long, hide = true)]
    pub strict: bool,

    /// The largest range of numbers one row may expand to
    #[arg(
        long,
        value_name = "N",
        default_value_t = 100_000,
        help_heading = "Validation"
    )]
    pub max_range: u64,
}

fn country(text: &str) -> Result<String, String> {
    acgbulk::phone::normalize::parse_country(text).map(|id| id.as_ref().to_owned())
}

impl SheetArgs {
    pub fn sheet_options(&self) -> SheetOptions {
        self.read.sheet_options()
    }

    pub fn rule_options(&self) -> RuleOptions {
        RuleOptions {
            allow_invalid_numbers: self.allow_invalid_numbers,
            normalize: self.normalize,
            default_country: self.default_country.clone(),
            max_range: self.max_range,
            account: self.account.clone(),
            numbers_only: false,
        }
    }
}
