//! Offline validation of sheet rows: every rule of the sheet format, each
//! with a code, checked before anything touches the API.
//!
//! [`RowRules::check`] turns one [`RawRow`] into a [`RowCheck`]: the numbers
//! the row stands for (one, or an expanded range), its account, and its
//! findings. [`pipeline`] runs it over a whole sheet on every core and adds
//! what needs the whole sheet (duplicates).

pub mod clean;
pub mod pipeline;
pub mod report;

use std::path::Path;

use crate::model::{AssignmentStatus, Capability, Usage};
use crate::phone::normalize::{normalize, DefaultCountry, NormalizeError};
use crate::phone::{is_known_region, is_north_american_toll_free, Checked, PhoneRules, Verdict};
use crate::sheet::{column_letters, CellNote, Column, HeaderMap, RawRow, Teams, TeamsField};
use crate::spelling::string_enum;
use serde::Serialize;

string_enum!(
    /// What a finding is about; the report's `code` column.
    Code {
        E164Format => "E164_FORMAT",
        CountryCodeUnknown => "COUNTRY_CODE_UNKNOWN",
        NumberLength => "NUMBER_LENGTH",
        NumberNotValid => "NUMBER_NOT_VALID",
        AccountName => "ACCOUNT_NAME",
        NoService => "NO_SERVICE",
        Usage => "USAGE",
        Capability => "CAPABILITY",
        AdditionalUsage => "ADDITIONAL_USAGE",
        AddressRequired => "ADDRESS_REQUIRED",
        DisplayedCountryCode => "DISPLAYED_COUNTRY_CODE",
        SipHeader => "SIP_HEADER",
        Boolean => "BOOLEAN",
        AssignmentStatus => "ASSIGNMENT_STATUS",
        Duplicate => "DUPLICATE",
        Range => "RANGE",
        Normalized => "NORMALIZED",
        /// Parses, but is not libphonenumber's canonical E.164 text.
        NotCanonical => "NOT_CANONICAL",
        /// A numeric cell with two valid readings.
        AmbiguousNumber => "AMBIGUOUS_NUMBER",
        /// Account names that differ only in case (warning).
        AccountCase => "ACCOUNT_CASE",
        /// A spreadsheet number cell that lost its `+` (warning).
        NumericCell => "NUMERIC_CELL",
        /// A spreadsheet error cell such as `#N/A`.
        CellError => "CELL_ERROR",
        /// Cells beyond the last heading.
        ExtraCells => "EXTRA_CELLS",
        /// Rows above the heading row were passed over (note).
        HeaderRow => "HEADER_ROW",
        /// A heading was read under another name, `--map` (note).
        ColumnMapped => "COLUMN_MAPPED",
        /// A sheet of the workbook was not read (note).
        SheetSkipped => "SHEET_SKIPPED",
    }
);

string_enum!(
    /// How much a finding matters.
    Severity {
        Error => "error",
        Warning => "warning",
        /// Said once about how the sheet was read; not about a number.
        Note => "note",
    }
);

/// One line of the validation report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The row's sheet, when several sheets are read as one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<std::sync::Arc<str>>,
    pub row: u64,
    #[serde(rename = "telephoneNumber")]
    pub telephone_number: String,
    pub severity: Severity,
    pub code: Code,
    pub column: String,
    pub message: String,
}

/// Options that change what the rules accept.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RuleOptions {
    /// `NUMBER_NOT_VALID` is a warning rather than an error (for ranges
    /// newer than libphonenumber's metadata).
    #[serde(default)]
    pub allow_invalid_numbers: bool,
    /// Rewrite numbers written with separators or `00`.
    pub normalize: bool,
    /// Country for national numbers under `normalize` (ISO 3166 alpha-2).
    pub default_country: Option<String>,
    /// The largest range a row may expand to.
    pub max_range: u64,
    /// Account for rows whose sheet has no `accountName` (or an empty cell).
    pub account: Option<String>,
    /// Only the number and account matter (a delete): the service rules
    /// are not applied.
    #[serde(default)]
    pub numbers_only: bool,
}

impl Default for RuleOptions {
    fn default() -> Self {
        RuleOptions {
            allow_invalid_numbers: false,
            normalize: false,
            default_country: None,
            max_range: 100_000,
            account: None,
            numbers_only: false,
        }
    }
}

/// The numbers a row stands for. Numbers are kept as their digits after the
/// `+` (E.164 has at most 15, so they fit a `u64` and never start with 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Numbers {
    /// No usable number (its findings say why).
    None,
    One(u64),
    /// `count` consecutive numbers from `start`.
    Range {
        start: u64,
        count: u64,
    },
}

impl Numbers {
    pub fn len(&self) -> u64 {
        match *self {
            Numbers::None | Numbers::One(_) => 1,
            Numbers::Range { count, .. } => count,
        }
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `i`th number; 0 for [`Numbers::None`].
    pub fn get(&self, i: u64) -> u64 {
        match *self {
            Numbers::None => 0,
            Numbers::One(n) => n,
            Numbers::Range { start, .. } => start + i,
        }
    }
}

/// What one row turned out to be.
#[derive(Debug, Clone)]
pub struct RowCheck {
    pub row: u64,
    pub at: u64,
    /// The row's account, when well formed.
    pub account: Option<String>,
    pub numbers: Numbers,
    /// An error applies to the whole row: none of its numbers is valid.
    pub row_invalid: bool,
    /// Offsets into `numbers` that carry a number-level error.
    pub bad_numbers: Vec<u64>,
    pub findings: Vec<Finding>,
    /// The row's configuration, when the pipeline was asked to collect it.
    pub fields: Option<crate::record::Fields>,
}

/// What a row's number cell shows: the number, or a range as `a..b`.
pub fn number_text(row: &RawRow, header: &HeaderMap) -> String {
    match (
        row.get(header, Column::TelephoneNumber),
        row.get(header, Column::RangeStart),
        row.get(header, Column::RangeEnd),
    ) {
        (Some(number), _, _) => number.to_owned(),
        (None, Some(a), Some(b)) => format!("{a}..{b}"),
        (None, Some(a), None) | (None, None, Some(a)) => a.to_owned(),
        (None, None, None) => String::new(),
    }
}

fn extra_cells_message(count: usize, first: usize) -> String {
    format!(
        "{count} cell(s) beyond the last heading, from column {}; is a delimiter inside an unquoted cell?",
        column_letters(first)
    )
}

pub use crate::spelling::{e164, parse_bool};

/// Checks rows against the sheet format's rules. One per thread: it owns
/// its compiled phone rules.
pub struct RowRules<'a> {
    header: &'a HeaderMap,
    options: &'a RuleOptions,
    phone: PhoneRules,
    default_country: Option<DefaultCountry>,
}

/// Collects the findings of one row.
struct Out<'r> {
    row: &'r RawRow,
    number_text: String,
    findings: Vec<Finding>,
    row_invalid: bool,
}

impl Out<'_> {
    fn push(&mut self, severity: Severity, code: Code, column: Option<Column>, message: String) {
        if severity == Severity::Error {
            self.row_invalid = true;
        }
        self.findings.push(Finding {
            sheet: self.row.sheet.clone(),
            row: self.row.row,
            telephone_number: self.number_text.clone(),
            severity,
            code,
            column: column.map(|c| c.heading()).unwrap_or_default(),
            message,
        });
    }

    fn error(&mut self, code: Code, column: Column, message: String) {
        self.push(Severity::Error, code, Some(column), message);
    }
}

/// A number cell's text read as E.164: the digits after the `+`.
struct ParsedNumber {
    digits: String,
    /// The cell's text when `--normalize` rewrote it.
    rewritten_from: Option<String>,
}

/// One way of reading a numeric cell.
#[derive(Clone, Copy)]
struct Reading {
    /// The canonical number.
    digits: u64,
    checked: Checked,
}

/// Formats numbers as digits without allocating (the hot path checks one
/// number per row).
#[derive(Default)]
struct DigitBuf([u8; 20]);

impl DigitBuf {
    fn format(&mut self, mut n: u64) -> &str {
        let mut at = self.0.len();
        loop {
            at -= 1;
            self.0[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        std::str::from_utf8(&self.0[at..]).expect("ASCII digits")
    }
}

/// Splits a range written in one cell: `A..B`, `A to B`, `A - B` (a dash
/// between blanks, or before the second end's `+`). Each end is then read
/// like a single number. `None` for a single number.
pub fn split_range(cell: &str) -> Option<(&str, &str)> {
    // The common case, a plain number, costs one scan.
    if cell.bytes().all(|b| b.is_ascii_digit() || b == b'+') {
        return None;
    }
    if let Some((a, b)) = cell.split_once("..") {
        return Some((a.trim(), b.trim()));
    }
    for (i, c) in cell.char_indices() {
        let after = &cell[i + c.len_utf8()..];
        let before = &cell[..i];
        let dash = matches!(c, '-' | '\u{2013}' | '\u{2014}');
        let spaced =
            before.ends_with(char::is_whitespace) && after.starts_with(char::is_whitespace);
        if dash && !before.trim().is_empty() && (spaced || after.trim_start().starts_with('+')) {
            return Some((before.trim(), after.trim()));
        }
        if (c == 't' || c == 'T')
            && before.ends_with(char::is_whitespace)
            && !before.trim().is_empty()
            && after.len() > 1
            && after.starts_with(['o', 'O'])
            && after[1..].starts_with(char::is_whitespace)
        {
            return Some((before.trim(), after[1..].trim()));
        }
    }
    None
}

impl<'a> RowRules<'a> {
    pub fn new(header: &'a HeaderMap, options: &'a RuleOptions) -> Result<RowRules<'a>, String> {
        let default_country = options
            .default_country
            .as_deref()
            .map(crate::phone::normalize::parse_country)
            .transpose()?
            .map(|id| {
                DefaultCountry::new(id)
                    .ok_or_else(|| format!("{} has no calling code in the metadata", id.as_ref()))
            })
            .transpose()?;
        Ok(RowRules {
            header,
            options,
            phone: PhoneRules::new(),
            default_country,
        })
    }

    pub fn check(&self, row: &RawRow) -> RowCheck {
        let h = self.header;
        let number_cell = row.get(h, Column::TelephoneNumber);
        let range_cells = (row.get(h, Column::RangeStart), row.get(h, Column::RangeEnd));
        let number_text = number_text(row, h);
        let mut out = Out {
            row,
            number_text,
            findings: Vec::new(),
            row_invalid: false,
        };
        let mut bad_numbers = Vec::new();

        for note in &row.notes {
            match note {
                CellNote::Error { cell, column, text } => {
                    let column = *column;
                    let name = column
                        .map(|c| c.heading())
                        .unwrap_or_else(|| column_letters(*cell));
                    out.push(
                        Severity::Error,
                        Code::CellError,
                        column,
                        format!(
                            "column {} ({name}) holds the spreadsheet error {text}",
                            column_letters(*cell)
                        ),
                    );
                }
                CellNote::Extra { count, first } => out.push(
                    Severity::Error,
                    Code::ExtraCells,
                    None,
                    extra_cells_message(*count, *first),
                ),
                // Read, and reported, with the number (see `read_number`).
                CellNote::Numeric { .. } | CellNote::Date { .. } => {}
            }
        }
        if row.cells.len() > h.headings.len() {
            let extra: Vec<usize> = (h.headings.len()..row.cells.len())
                .filter(|&i| !row.cells[i].trim().is_empty())
                .collect();
            if let Some(&first) = extra.first() {
                out.push(
                    Severity::Error,
                    Code::ExtraCells,
                    None,
                    extra_cells_message(extra.len(), first),
                );
            }
        }

        let numbers = self.check_numbers(&mut out, number_cell, range_cells, &mut bad_numbers);
        let account = self.check_account(&mut out);
        if !self.options.numbers_only {
            self.check_services(&mut out, numbers);
        }

        RowCheck {
            row: row.row,
            at: row.at,
            account,
            numbers,
            row_invalid: out.row_invalid,
            bad_numbers,
            findings: out.findings,
            fields: None,
        }
    }

    /// Only what a row is: its numbers and account, without the rules
    /// (for sheets of what is provisioned).
    pub fn read(&self, row: &RawRow) -> RowCheck {
        let h = self.header;
        let account = row
            .get(h, Column::AccountName)
            .or(self.options.account.as_deref())
            .map(str::to_owned);
        let digits = |text: &str| crate::spelling::e164_digits(text.trim());
        let numbers = match row.get(h, Column::TelephoneNumber) {
            Some(cell) => match cell.split_once("..") {
                None => digits(cell).map_or(Numbers::None, Numbers::One),
                Some((a, b)) => match (digits(a), digits(b)) {
                    (Some(a), Some(b)) if a <= b && b - a < self.options.max_range => {
                        Numbers::Range {
                            start: a,
                            count: b - a + 1,
                        }
                    }
                    _ => Numbers::None,
                },
            },
            None => Numbers::None,
        };
        RowCheck {
            row: row.row,
            at: row.at,
            row_invalid: account.is_none() || numbers == Numbers::None,
            account,
            numbers,
            bad_numbers: Vec::new(),
            findings: Vec::new(),
            fields: None,
        }
    }

    fn check_numbers(
        &self,
        out: &mut Out,
        number_cell: Option<&str>,
        range_cells: (Option<&str>, Option<&str>),
        bad_numbers: &mut Vec<u64>,
    ) -> Numbers {
        let (start_text, end_text, start_col, end_col) = match (number_cell, range_cells) {
            (Some(_), (Some(_), _) | (_, Some(_))) => {
                out.error(
                    Code::Range,
                    Column::TelephoneNumber,
                    "give either telephoneNumber or rangeStart and rangeEnd, not both".into(),
                );
                return Numbers::None;
            }
            (Some(cell), _) => match split_range(cell) {
                None => {
                    let Some((number, checked)) =
                        self.read_number(out, cell, Column::TelephoneNumber)
                    else {
                        return Numbers::None;
                    };
                    if self.report_verdict(out, number, checked, Column::TelephoneNumber) {
                        bad_numbers.push(0);
                    }
                    return Numbers::One(number);
                }
                Some((a, b)) => (a, b, Column::TelephoneNumber, Column::TelephoneNumber),
            },
            (None, (Some(a), Some(b))) => (a, b, Column::RangeStart, Column::RangeEnd),
            (None, (Some(_), None)) => {
                out.error(
                    Code::Range,
                    Column::RangeEnd,
                    "rangeStart without rangeEnd".into(),
                );
                return Numbers::None;
            }
            (None, (None, Some(_))) => {
                out.error(
                    Code::Range,
                    Column::RangeStart,
                    "rangeEnd without rangeStart".into(),
                );
                return Numbers::None;
            }
            (None, (None, None)) => {
                out.error(
                    Code::E164Format,
                    Column::TelephoneNumber,
                    "no telephone number in this row".into(),
                );
                return Numbers::None;
            }
        };

        self.check_range(
            out,
            (start_text, start_col),
            (end_text, end_col),
            bad_numbers,
        )
    }

    /// A range's two ends: read, on one length and country, in order and
    /// within `--max-range`; then each number between them.
    fn check_range(
        &self,
        out: &mut Out,
        (start_text, start_col): (&str, Column),
        (end_text, end_col): (&str, Column),
        bad_numbers: &mut Vec<u64>,
    ) -> Numbers {
        let start = self.read_number(out, start_text, start_col);
        let end = self.read_number(out, end_text, end_col);
        let (Some((first, _)), Some((last, _))) = (start, end) else {
            return Numbers::None;
        };
        let range_error = |out: &mut Out, message: String| {
            out.error(Code::Range, start_col, message);
            Numbers::None
        };
        let mut start_buf = DigitBuf::default();
        let mut end_buf = DigitBuf::default();
        let (start_digits, end_digits) = (start_buf.format(first), end_buf.format(last));
        if start_digits.len() != end_digits.len() {
            return range_error(
                out,
                format!(
                    "range ends have different lengths (+{start_digits} has {} digits, +{end_digits} has {})",
                    start_digits.len(),
                    end_digits.len()
                ),
            );
        }
        let start_cc = self.phone.country_code(start_digits).map(|c| c.0);
        let end_cc = self.phone.country_code(end_digits).map(|c| c.0);
        if start_cc.is_none() {
            out.error(
                Code::CountryCodeUnknown,
                start_col,
                format!("+{start_digits} has no known country calling code"),
            );
            return Numbers::None;
        }
        if start_cc != end_cc {
            return range_error(
                out,
                format!(
                    "range ends are in different countries (+{start_digits} and +{end_digits})"
                ),
            );
        }
        if first > last {
            return range_error(out, format!("range is reversed: +{first} is after +{last}"));
        }
        let count = last - first + 1;
        if count > self.options.max_range {
            return range_error(
                out,
                format!(
                    "range of {count} numbers is larger than --max-range {}",
                    self.options.max_range
                ),
            );
        }
        self.check_range_numbers(out, first, count, bad_numbers);
        Numbers::Range {
            start: first,
            count,
        }
    }

    /// Checks each number of a valid range; findings about one of them
    /// name that number, and its offset goes to `bad_numbers`.
    fn check_range_numbers(
        &self,
        out: &mut Out,
        first: u64,
        count: u64,
        bad_numbers: &mut Vec<u64>,
    ) {
        let column = if self.header.has(Column::TelephoneNumber) {
            Column::TelephoneNumber
        } else {
            Column::RangeStart
        };
        let mut buf = DigitBuf::default();
        for offset in 0..count {
            let number = first + offset;
            let before = out.findings.len();
            let saved = std::mem::replace(&mut out.number_text, e164(number));
            let invalid_before = out.row_invalid;
            out.row_invalid = false;
            let checked = self.phone.check(buf.format(number));
            // Both ends are canonical, but a range can still span numbers
            // whose text is not (`+4419...` to `+4421...` holds `+4420...`,
            // fine, but `+4439...` to `+4441...` holds `+4440...`, a
            // trunk 0): such a number cannot be sent as it is.
            let bad = match checked.canonical {
                Some(canonical) => {
                    out.error(
                        Code::NotCanonical,
                        column,
                        format!(
                            "+{number} in this range is not canonical E.164: the number is +{canonical}"
                        ),
                    );
                    true
                }
                None => self.report_verdict(out, number, checked, column),
            };
            out.row_invalid = invalid_before;
            out.number_text = saved;
            if bad {
                bad_numbers.push(offset);
            }
            // Findings about a single number of a range name that number.
            for finding in &mut out.findings[before..] {
                finding.telephone_number = e164(number);
            }
        }
    }

    /// Reads a number cell as the canonical E.164 number it stands for (its
    /// digits after the `+`) with the verdict on it, or reports why it
    /// cannot be read.
    fn read_number(&self, out: &mut Out, text: &str, column: Column) -> Option<(u64, Checked)> {
        if let Some(date) = out.row.date_cell(column).map(str::to_owned) {
            out.error(
                Code::E164Format,
                column,
                format!("the cell holds a date ({date}), not a telephone number; format the column as text and type the number with its '+'"),
            );
            return None;
        }
        if let Some(original) = out.row.numeric_cell(column) {
            let original = original.to_owned();
            return self.read_numeric_cell(out, &original, column);
        }
        let parsed = self.parse_number(out, text, column)?;
        let digits: u64 = parsed.digits.parse().expect("at most 17 digits");
        let checked = self.phone.check(&parsed.digits);
        let canonical_len = match checked.canonical {
            Some(canonical) => DigitBuf::default().format(canonical).len(),
            None => parsed.digits.len(),
        };
        if canonical_len > MAX_E164_DIGITS {
            out.error(Code::E164Format, column, too_long(text, canonical_len));
            return None;
        }
        let Some(canonical) = checked.canonical else {
            if let Some(original) = &parsed.rewritten_from {
                out.push(
                    Severity::Warning,
                    Code::Normalized,
                    Some(column),
                    format!("{} rewritten as +{digits}", quoted(original)),
                );
            }
            return Some((digits, checked));
        };
        if self.options.normalize {
            out.push(
                Severity::Warning,
                Code::Normalized,
                Some(column),
                format!(
                    "{} rewritten as +{canonical}, libphonenumber's canonical E.164 form",
                    quoted(text)
                ),
            );
        } else {
            out.error(
                Code::NotCanonical,
                column,
                format!(
                    "{} is not canonical E.164: the number is +{canonical} (a trunk 0 after the country code is not dialled); write +{canonical}, or give --normalize to rewrite it",
                    quoted(text)
                ),
            );
        }
        let mut buf = DigitBuf::default();
        Some((canonical, self.phone.check(buf.format(canonical))))
    }

    /// A spreadsheet numeric cell in a number column: the `+`, or a national
    /// number's leading `0`, was lost when it was typed. Read as
    /// international digits and, with `--default-country`, as a national
    /// number of that country; exactly one number must come out.
    fn read_numeric_cell(
        &self,
        out: &mut Out,
        original: &str,
        column: Column,
    ) -> Option<(u64, Checked)> {
        let fix = "format the column as text and type the number with its '+'";
        if original.starts_with('-') || original.contains(['.', 'e', 'E']) {
            let what = if original.starts_with('-') {
                "negative"
            } else {
                "fractional"
            };
            out.error(
                Code::E164Format,
                column,
                format!("numeric cell {original} is {what}, not a telephone number; {fix}"),
            );
            return None;
        }
        let international = self.reading(original);
        let national = self.default_country.and_then(|country| {
            let digits = country.national_digits(original, &self.phone)?;
            self.reading(DigitBuf::default().format(digits))
        });
        let country = self.options.default_country.as_deref().unwrap_or("");
        let as_national = format!("a national number of {country}");
        let usable = |reading: &Reading| {
            reading.checked.verdict == Verdict::Valid
                || (self.options.allow_invalid_numbers
                    && reading.checked.verdict == Verdict::NotValid)
        };
        let readings = [
            international.map(|r| (r, "international digits")),
            national.map(|r| (r, as_national.as_str())),
        ];
        let mut chosen: Vec<(Reading, &str)> = readings
            .iter()
            .flatten()
            .filter(|(r, _)| usable(r))
            .copied()
            .collect();
        chosen.dedup_by_key(|(r, _)| r.digits);
        match chosen.as_slice() {
            [] => {
                let tried: Vec<String> = readings
                    .iter()
                    .flatten()
                    .map(|(r, how)| format!("as {how} (+{})", r.digits))
                    .collect();
                let tried = match tried.as_slice() {
                    [] => "as international digits".to_owned(),
                    [one] => one.clone(),
                    many => format!("neither {}", many.join(" nor ")),
                };
                let hint = if self.default_country.is_none() {
                    "; if it lost its leading 0, give --default-country"
                } else {
                    ""
                };
                out.error(
                    Code::NumberNotValid,
                    column,
                    format!("numeric cell {original} is not a valid number {tried}{hint}; {fix}"),
                );
                None
            }
            [(reading, how)] => {
                if column == Column::TelephoneNumber {
                    // The report shows the number the cell was read as.
                    out.number_text = e164(reading.digits);
                }
                let alike = readings
                    .iter()
                    .flatten()
                    .filter(|(r, _)| r.digits == reading.digits)
                    .count()
                    > 1;
                let note = if alike {
                    format!("{how}, and alike as a national number of {country}")
                } else {
                    match readings
                        .iter()
                        .flatten()
                        .find(|(r, _)| r.digits != reading.digits)
                    {
                        Some((other, other_how)) => format!(
                            "{how}; as {other_how}, +{} is not a valid number",
                            other.digits
                        ),
                        None => how.to_string(),
                    }
                };
                out.push(
                    Severity::Warning,
                    Code::NumericCell,
                    Some(column),
                    format!(
                        "numeric cell {original} read as +{} ({note}); {fix}",
                        reading.digits
                    ),
                );
                Some((reading.digits, reading.checked))
            }
            [(a, a_how), (b, b_how), ..] => {
                out.error(
                    Code::AmbiguousNumber,
                    column,
                    format!(
                        "numeric cell {original} is two valid numbers: +{} {a_how} or +{} {b_how}; {fix}",
                        a.digits, b.digits
                    ),
                );
                None
            }
        }
    }

    /// `digits` read as international digits: the canonical number and
    /// its verdict; `None` when it cannot be E.164 at all.
    fn reading(&self, digits: &str) -> Option<Reading> {
        if digits.is_empty()
            || digits.len() > 15
            || digits.starts_with('0')
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let checked = self.phone.check(digits);
        let number = checked.canonical_or(digits.parse().ok()?);
        let checked = match checked.canonical {
            None => checked,
            Some(_) => self.phone.check(DigitBuf::default().format(number)),
        };
        Some(Reading {
            digits: number,
            checked,
        })
    }

    /// Reads a number cell's text as E.164 digits (after `--normalize`), or
    /// reports why it is not.
    fn parse_number(&self, out: &mut Out, text: &str, column: Column) -> Option<ParsedNumber> {
        let mut rewritten_from = None;
        let candidate: std::borrow::Cow<str> = if self.options.normalize {
            match normalize(text, self.default_country, &self.phone) {
                Ok(None) => text.into(),
                Ok(Some(e164)) => {
                    rewritten_from = Some(text.to_owned());
                    e164.into()
                }
                Err(NormalizeError::NeedsCountry) => {
                    out.error(
                        Code::E164Format,
                        column,
                        format!(
                            "{} is a national number; give --default-country to turn it into E.164",
                            quoted(text)
                        ),
                    );
                    return None;
                }
                Err(e) => {
                    out.error(Code::E164Format, column, format!("{}: {e}", quoted(text)));
                    return None;
                }
            }
        } else {
            text.into()
        };
        let digits = candidate.strip_prefix('+').unwrap_or("");
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            let hint = if self.options.normalize {
                ""
            } else {
                "; --normalize strips spaces, dashes, dots and brackets and turns 00 into +"
            };
            out.error(
                Code::E164Format,
                column,
                format!(
                    "{} is not E.164: expected '+' then digits only{hint}",
                    quoted(text)
                ),
            );
            return None;
        }
        // E.164 has at most 15 digits; a trunk prefix left in (`+49 (0)800
        // ...`) may add one or two that the canonical form drops, so the
        // bound is applied to that form (see `read_number`).
        if digits.len() > MAX_E164_DIGITS + 2 {
            out.error(Code::E164Format, column, too_long(text, digits.len()));
            return None;
        }
        Some(ParsedNumber {
            digits: digits.to_owned(),
            rewritten_from,
        })
    }

    /// Adds the metadata's verdict on one canonical number; true when it
    /// makes the number invalid.
    fn report_verdict(&self, out: &mut Out, number: u64, checked: Checked, column: Column) -> bool {
        match checked.verdict {
            Verdict::Valid => false,
            Verdict::UnknownCountryCode => {
                out.error(
                    Code::CountryCodeUnknown,
                    column,
                    format!("+{number} starts with no known country calling code"),
                );
                true
            }
            Verdict::BadLength => {
                out.error(
                    Code::NumberLength,
                    column,
                    format!(
                        "+{number} is not a possible length for country code +{}",
                        checked.country_code.map_or("?".into(), |c| c.to_string())
                    ),
                );
                true
            }
            Verdict::NotValid => {
                let allowed = self.options.allow_invalid_numbers;
                let (severity, hint) = if allowed {
                    (Severity::Warning, "")
                } else {
                    (
                        Severity::Error,
                        "; if the range is newer than the metadata, give --allow-invalid-numbers",
                    )
                };
                out.push(
                    severity,
                    Code::NumberNotValid,
                    Some(column),
                    format!("+{number} is not a valid number by libphonenumber's metadata{hint}"),
                );
                !allowed
            }
        }
    }

    fn check_account(&self, out: &mut Out) -> Option<String> {
        let account = out
            .row
            .get(self.header, Column::AccountName)
            .or(self.options.account.as_deref());
        let Some(name) = account else {
            out.error(
                Code::AccountName,
                Column::AccountName,
                "no account: give an accountName column or --account".into(),
            );
            return None;
        };
        match check_account_name(name) {
            Ok(()) => Some(name.to_owned()),
            Err(message) => {
                out.error(Code::AccountName, Column::AccountName, message);
                None
            }
        }
    }

    fn boolean(&self, out: &mut Out, column: Column) -> Option<bool> {
        let text = out.row.get(self.header, column)?;
        match parse_bool(text) {
            Some(value) => Some(value),
            None => {
                out.error(
                    Code::Boolean,
                    column,
                    format!(
                        "{} is not true or false (also accepted: yes, no, 1, 0)",
                        quoted(text)
                    ),
                );
                None
            }
        }
    }

    fn check_services(&self, out: &mut Out, numbers: Numbers) {
        let h = self.header;
        let findings_before = out.findings.len();
        let teams_enabled = Teams::ALL.map(|service| {
            self.boolean(out, Column::Teams(service, TeamsField::Enabled))
                .unwrap_or(false)
        });
        let direct_routing = self
            .boolean(out, Column::DirectRoutingEnabled)
            .unwrap_or(false);
        let zoom = self.boolean(out, Column::ZoomEnabled).unwrap_or(false);
        let call_protection = self
            .boolean(out, Column::CallProtectionEnabled)
            .unwrap_or(false);
        // An unreadable `enabled` cell is reported already; whether a
        // service is enabled is then unknown, not absent.
        let unreadable = out.findings.len() > findings_before;
        let any_enabled =
            teams_enabled.iter().any(|&e| e) || direct_routing || zoom || call_protection;
        if !unreadable && !any_enabled {
            out.error(
                Code::NoService,
                Column::Teams(Teams::OperatorConnect, TeamsField::Enabled),
                "no service is enabled on this number".into(),
            );
        }

        let toll_free = match numbers {
            Numbers::None => false,
            Numbers::One(n) => is_north_american_toll_free(&e164(n)),
            Numbers::Range { start, count } => {
                is_north_american_toll_free(&e164(start))
                    || is_north_american_toll_free(&e164(start + count - 1))
            }
        };
        for (service, enabled) in Teams::ALL.into_iter().zip(teams_enabled) {
            let column = |field| Column::Teams(service, field);
            let allow_update = self
                .boolean(out, column(TeamsField::AllowTenantAddressUpdate))
                .unwrap_or(false);
            if !enabled {
                continue;
            }
            self.check_teams(out, service, allow_update, toll_free);
        }

        if let Some(header) = out.row.get(h, Column::CustomSipHeader) {
            if let Err(message) = check_sip_header(header) {
                out.error(Code::SipHeader, Column::CustomSipHeader, message);
            } else if !(teams_enabled[0] || direct_routing || zoom)
                && (teams_enabled[1] || call_protection)
            {
                out.error(
                    Code::SipHeader,
                    Column::CustomSipHeader,
                    "a custom SIP header is not available for Teams Phone Mobile or Azure Operator Call Protection numbers".into(),
                );
            }
        }
    }

    /// The cells of one enabled Teams service (Operator Connect or Teams
    /// Phone Mobile).
    fn check_teams(&self, out: &mut Out, service: Teams, allow_update: bool, toll_free: bool) {
        let h = self.header;
        let column = |field| Column::Teams(service, field);
        let label = service.label();
        if let Some(text) = out.row.get(h, column(TeamsField::AssignmentStatus)) {
            if AssignmentStatus::parse(text).is_none() {
                out.error(
                    Code::AssignmentStatus,
                    column(TeamsField::AssignmentStatus),
                    format!("{} is not assigned or unassigned", quoted(text)),
                );
            }
        }
        let usage = match out.row.get(h, column(TeamsField::Usage)) {
            None => {
                out.error(
                    Code::Usage,
                    column(TeamsField::Usage),
                    format!(
                        "{label} is enabled but no usage is given ({})",
                        Usage::NAMES.join(", ")
                    ),
                );
                None
            }
            Some(text) => {
                let usage = Usage::parse(text);
                if usage.is_none() {
                    out.error(
                        Code::Usage,
                        column(TeamsField::Usage),
                        format!(
                            "{} is not a usage ({})",
                            quoted(text),
                            Usage::NAMES.join(", ")
                        ),
                    );
                }
                usage
            }
        };
        match out.row.get(h, column(TeamsField::ChoosableCapabilities)) {
            None => out.error(
                Code::Capability,
                column(TeamsField::ChoosableCapabilities),
                format!(
                    "{label} needs at least one capability ({})",
                    Capability::NAMES.join(", ")
                ),
            ),
            Some(text) => {
                let unknown: Vec<&str> = crate::csvconf::split_list(text)
                    .filter(|c| Capability::parse(c).is_none())
                    .collect();
                if !unknown.is_empty() {
                    out.error(
                        Code::Capability,
                        column(TeamsField::ChoosableCapabilities),
                        format!(
                            "unknown capability {} (known: {})",
                            quote_list(&unknown),
                            Capability::NAMES.join(", ")
                        ),
                    );
                } else if crate::csvconf::split_list(text).next().is_none() {
                    out.error(
                        Code::Capability,
                        column(TeamsField::ChoosableCapabilities),
                        format!("{label} needs at least one capability"),
                    );
                }
            }
        }
        if let Some(text) = out.row.get(h, column(TeamsField::AdditionalUsages)) {
            let unknown: Vec<&str> = crate::csvconf::split_list(text)
                .filter(|u| Usage::parse(u).is_none())
                .collect();
            if !unknown.is_empty() {
                out.error(
                    Code::AdditionalUsage,
                    column(TeamsField::AdditionalUsages),
                    format!(
                        "unknown additional usage {} (known: {})",
                        quote_list(&unknown),
                        Usage::NAMES.join(", ")
                    ),
                );
            }
        }
        let has_address = out.row.get(h, column(TeamsField::CivicAddressId)).is_some()
            || out.row.get(h, column(TeamsField::LocationId)).is_some();
        if usage == Some(Usage::CallingUserAssignment) && !allow_update && !has_address {
            out.error(
                Code::AddressRequired,
                column(TeamsField::CivicAddressId),
                format!(
                    "{label} calling-user numbers need a civicAddressId or locationId unless allowTenantAddressUpdate is true"
                ),
            );
        }
        match out.row.get(h, column(TeamsField::DisplayedCountryCode)) {
            Some(code) if !is_known_region(&code.to_ascii_uppercase()) || code.len() != 2 => out
                .error(
                    Code::DisplayedCountryCode,
                    column(TeamsField::DisplayedCountryCode),
                    format!(
                        "{} is not a two-letter country code (for example US)",
                        quoted(code)
                    ),
                ),
            None if toll_free => out.error(
                Code::DisplayedCountryCode,
                column(TeamsField::DisplayedCountryCode),
                "North American toll-free numbers need a displayed country code (for example US)"
                    .into(),
            ),
            _ => {}
        }
    }
}

/// The most digits an E.164 number has.
const MAX_E164_DIGITS: usize = 15;

fn too_long(text: &str, digits: usize) -> String {
    format!(
        "{} has {digits} digits; E.164 allows at most {MAX_E164_DIGITS} (16 characters with the '+')",
        quoted(text)
    )
}

/// A cell's value in a message: quoted, at most ~80 characters, invisible
/// characters shown escaped.
fn quoted(value: &str) -> String {
    format!("'{}'", crate::text::excerpt(value))
}

fn quote_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| quoted(i))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many findings [`validate_file`] keeps to show on screen.
pub const SHOWN_FINDINGS: usize = 10;

/// What [`validate_file`] did.
pub struct FileValidation {
    pub validated: pipeline::Validated,
    /// The first few findings, for display.
    pub first: Vec<Finding>,
    /// Rows written by `--write-clean`, when asked.
    pub clean_rows: Option<u64>,
}

/// Validates the sheet at `input`, writing every finding to the report at
/// `report` (`-` for standard output) and, when `clean` names a file, the
/// valid numbers as they would be sent (see [`clean`]).
pub fn validate_file(
    input: &Path,
    sheet_options: &crate::sheet::SheetOptions,
    rules: &RuleOptions,
    report: &Path,
    clean: Option<&Path>,
    progress: &mut dyn FnMut(u64),
) -> Result<FileValidation, pipeline::ValidateError> {
    if clean.is_some() && input == Path::new("-") {
        return Err(clean::CleanError::Stdin.into());
    }
    let sheet = crate::sheet::Sheet::open(input, sheet_options)?;
    let header = sheet.header.clone();
    let mut writer = report::ReportWriter::create_with(report, sheet.several_sheets())
        .map_err(pipeline::ValidateError::Report)?;
    let mut first = Vec::new();
    let validated = pipeline::validate(
        sheet,
        rules,
        &mut |finding| {
            if first.len() < SHOWN_FINDINGS {
                first.push(finding.clone());
            }
            writer.write(finding)
        },
        progress,
    )?;
    writer
        .finish_with(
            Some((&validated.summary, &validated.expanded)),
            &report::settings(input, rules),
        )
        .map_err(pipeline::ValidateError::Report)?;
    let clean_rows = clean
        .map(|path| clean::write_clean(input, sheet_options, header, &validated.expanded, path))
        .transpose()?;
    Ok(FileValidation {
        validated,
        first,
        clean_rows,
    })
}

/// Account names: 1-100 of letters, digits, `_` and `-`.
pub fn check_account_name(name: &str) -> Result<(), String> {
    crate::spelling::check_label(name, "account name", 1, 100)
}

/// Custom SIP headers: at most 100 of letters, digits, `_` and `-`.
pub fn check_sip_header(value: &str) -> Result<(), String> {
    crate::spelling::check_label(value, "custom SIP header", 0, 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use csv::StringRecord;

    fn check(headings: &[&str], cells: &[&str], options: &RuleOptions) -> RowCheck {
        let header = HeaderMap::new(headings, false).unwrap();
        let rules = RowRules::new(&header, options).unwrap();
        rules.check(&RawRow {
            row: 2,
            at: 0,
            sheet: None,
            cells: StringRecord::from(cells.to_vec()),
            notes: vec![],
        })
    }

    fn codes(check: &RowCheck) -> Vec<&'static str> {
        check.findings.iter().map(|f| f.code.as_str()).collect()
    }

    const OC: [&str; 6] = [
        "telephoneNumber",
        "accountName",
        "serviceDetails_teamsOperatorConnect_enabled",
        "serviceDetails_teamsOperatorConnect_configuration_usage",
        "serviceDetails_teamsOperatorConnect_configuration_choosableCapabilities",
        "serviceDetails_teamsOperatorConnect_configuration_allowTenantAddressUpdate",
    ];

    #[test]
    fn a_clean_operator_connect_row() {
        let c = check(
            &OC,
            &[
                "+442079460001",
                "contoso",
                "true",
                "CallingUserAssignment",
                "InboundCalling,OutboundCalling",
                "true",
            ],
            &RuleOptions::default(),
        );
        assert!(!c.row_invalid, "{:?}", c.findings);
        assert_eq!(c.numbers, Numbers::One(442079460001));
        assert_eq!(c.account.as_deref(), Some("contoso"));
    }

    #[test]
    fn operator_connect_rules() {
        let c = check(
            &OC,
            &["+442079460001", "con toso", "maybe", "", "", ""],
            &RuleOptions::default(),
        );
        assert_eq!(
            codes(&c),
            ["ACCOUNT_NAME", "BOOLEAN"],
            "an unreadable enabled cell is not also NO_SERVICE"
        );
        let c = check(
            &OC,
            &[
                "+442079460001",
                "contoso",
                "yes",
                "Calling",
                "InboundCalling;Faxing",
                "",
            ],
            &RuleOptions::default(),
        );
        assert_eq!(codes(&c), ["USAGE", "CAPABILITY"]);
        let c = check(
            &OC,
            &[
                "+442079460001",
                "contoso",
                "1",
                "CallingUserAssignment",
                "InboundCalling",
                "no",
            ],
            &RuleOptions::default(),
        );
        assert_eq!(codes(&c), ["ADDRESS_REQUIRED"]);
    }

    #[test]
    fn e164_and_normalize() {
        let dr = [
            "telephoneNumber",
            "accountName",
            "serviceDetails_teamsDirectRouting_enabled",
        ];
        let c = check(
            &dr,
            &["+44 1632 960001", "a", "true"],
            &RuleOptions::default(),
        );
        assert_eq!(codes(&c), ["E164_FORMAT"]);
        assert!(c.findings[0].message.contains("--normalize"));
        let options = RuleOptions {
            normalize: true,
            default_country: Some("GB".into()),
            ..RuleOptions::default()
        };
        let c = check(&dr, &["020 7946 0001", "a", "true"], &options);
        assert_eq!(codes(&c), ["NORMALIZED"]);
        assert!(!c.row_invalid);
        assert_eq!(c.numbers, Numbers::One(442079460001));
        let c = check(
            &dr,
            &["+4420794600011234", "a", "true"],
            &RuleOptions::default(),
        );
        assert_eq!(codes(&c), ["E164_FORMAT"]);
        let c = check(
            &dr,
            &["+9991632960001", "a", "true"],
            &RuleOptions::default(),
        );
        assert_eq!(codes(&c), ["COUNTRY_CODE_UNKNOWN"]);
    }

    fn numeric(cell: &str, options: &RuleOptions) -> RowCheck {
        let header = HeaderMap::new(&DR, false).unwrap();
        let rules = RowRules::new(&header, options).unwrap();
        rules.check(&RawRow {
            row: 2,
            at: 0,
            sheet: None,
            cells: StringRecord::from(vec![cell, "a", "true"]),
            notes: vec![CellNote::Numeric {
                column: Column::TelephoneNumber,
                original: cell.into(),
            }],
        })
    }

    const DR: [&str; 3] = [
        "telephoneNumber",
        "accountName",
        "serviceDetails_teamsDirectRouting_enabled",
    ];

    fn gb(normalize: bool) -> RuleOptions {
        RuleOptions {
            normalize,
            default_country: Some("GB".into()),
            ..RuleOptions::default()
        }
    }

    #[test]
    fn only_canonical_numbers_are_sent() {
        let c = check(
            &DR,
            &["+4402079460116", "a", "true"],
            &RuleOptions::default(),
        );
        assert_eq!(codes(&c), ["NOT_CANONICAL"]);
        assert!(c.row_invalid);
        assert!(
            c.findings[0].message.contains("+442079460116"),
            "{}",
            c.findings[0].message
        );
        let c = check(&DR, &["+44 (0)20 7946 0116", "a", "true"], &gb(true));
        assert_eq!(codes(&c), ["NORMALIZED"]);
        assert!(!c.row_invalid);
        assert_eq!(c.numbers, Numbers::One(442079460116));
        let message = &c.findings[0].message;
        assert!(
            message.contains("'+44 (0)20 7946 0116'") && message.contains("+442079460116"),
            "{message}"
        );
        let c = check(&DR, &["00 44 20 7946 0116", "a", "true"], &gb(true));
        assert_eq!(c.numbers, Numbers::One(442079460116));
    }

    #[test]
    fn invalid_numbers_are_errors_unless_allowed() {
        let c = check(
            &DR,
            &["+441632960001", "a", "true"],
            &RuleOptions::default(),
        );
        assert_eq!(codes(&c), ["NUMBER_NOT_VALID"]);
        assert!(c.row_invalid);
        let allow = RuleOptions {
            allow_invalid_numbers: true,
            ..RuleOptions::default()
        };
        let c = check(&DR, &["+441632960001", "a", "true"], &allow);
        assert_eq!(codes(&c), ["NUMBER_NOT_VALID"]);
        assert_eq!(c.findings[0].severity, Severity::Warning);
        assert!(!c.row_invalid);
    }

    #[test]
    fn numeric_cells_are_read_both_ways() {
        // Lost its leading 0: only the national reading is valid.
        let c = numeric("2079460115", &gb(false));
        assert_eq!(codes(&c), ["NUMERIC_CELL"]);
        assert_eq!(c.numbers, Numbers::One(442079460115));
        assert!(
            c.findings[0].message.contains("national number of GB"),
            "{}",
            c.findings[0].message
        );
        // Without a default country it is not a valid number at all.
        let c = numeric("2079460115", &RuleOptions::default());
        assert_eq!(codes(&c), ["NUMBER_NOT_VALID"]);
        assert!(c.row_invalid);
        // Lost its +: both readings give the same number.
        let c = numeric("442079460103", &gb(false));
        assert_eq!(codes(&c), ["NUMERIC_CELL"]);
        assert_eq!(c.numbers, Numbers::One(442079460103));
        // Two different valid numbers.
        let c = numeric("3723372835", &gb(false));
        assert_eq!(codes(&c), ["AMBIGUOUS_NUMBER"]);
        let message = &c.findings[0].message;
        assert!(
            message.contains("+3723372835") && message.contains("+443723372835"),
            "{message}"
        );
        // Neither reading is valid.
        let c = numeric("999", &gb(false));
        assert_eq!(codes(&c), ["NUMBER_NOT_VALID"]);
        // Negative and fractional cells are not numbers.
        assert_eq!(
            codes(&numeric("-442079460103", &gb(false))),
            ["E164_FORMAT"]
        );
        assert_eq!(codes(&numeric("4420794601.5", &gb(false))), ["E164_FORMAT"]);
    }

    #[test]
    fn ranges_in_one_cell() {
        for cell in [
            "+441134960000..+441134960099",
            "+44 113 496 0000 - +44 113 496 0099",
            "+44 113 496 0000 to +44 113 496 0099",
            "0113 496 0000 TO 0113 496 0099",
            "+441134960000-+441134960099",
            "0113 496 0000 \u{2013} 0113 496 0099",
        ] {
            let c = check(&DR, &[cell, "a", "true"], &gb(true));
            assert_eq!(
                c.numbers,
                Numbers::Range {
                    start: 441134960000,
                    count: 100
                },
                "{cell}: {:?}",
                c.findings
            );
            assert!(!c.row_invalid, "{cell}: {:?}", c.findings);
        }
        assert_eq!(split_range("+44-113-496-0000"), None);
        assert_eq!(split_range("+441134960000"), None);
        assert_eq!(split_range("Toronto"), None);
    }

    #[test]
    fn ranges() {
        let dr = [
            "telephoneNumber",
            "accountName",
            "serviceDetails_teamsDirectRouting_enabled",
        ];
        let c = check(
            &dr,
            &["+442079460000..+442079460099", "a", "true"],
            &RuleOptions::default(),
        );
        assert_eq!(
            c.numbers,
            Numbers::Range {
                start: 442079460000,
                count: 100
            }
        );
        assert!(!c.row_invalid);
        let c = check(
            &dr,
            &["+442079460099..+442079460000", "a", "true"],
            &RuleOptions::default(),
        );
        assert_eq!(codes(&c), ["RANGE"]);
        let c = check(
            &dr,
            &["+442079460000..+4420794600", "a", "true"],
            &RuleOptions::default(),
        );
        assert_eq!(codes(&c), ["RANGE"]);
        let options = RuleOptions {
            max_range: 10,
            ..RuleOptions::default()
        };
        let c = check(
            &dr,
            &["+442079460000..+442079460099", "a", "true"],
            &options,
        );
        assert_eq!(codes(&c), ["RANGE"]);
        let ranged = [
            "rangeStart",
            "rangeEnd",
            "accountName",
            "serviceDetails_teamsDirectRouting_enabled",
        ];
        let c = check(
            &ranged,
            &["+14255550100", "+14255550109", "a", "true"],
            &RuleOptions::default(),
        );
        assert_eq!(
            c.numbers,
            Numbers::Range {
                start: 14255550100,
                count: 10
            }
        );
    }

    #[test]
    fn toll_free_needs_displayed_country_and_sip_header_rules() {
        let headings = [
            "telephoneNumber",
            "accountName",
            "serviceDetails_teamsPhoneMobile_enabled",
            "serviceDetails_teamsPhoneMobile_configuration_usage",
            "serviceDetails_teamsPhoneMobile_configuration_choosableCapabilities",
            "configuration_customSipHeader",
        ];
        let c = check(
            &headings,
            &[
                "+18005550100",
                "a",
                "true",
                "FirstPartyAppAssignment",
                "Mobile",
                "x-1",
            ],
            &RuleOptions::default(),
        );
        assert_eq!(codes(&c), ["DISPLAYED_COUNTRY_CODE", "SIP_HEADER"]);
    }

    #[test]
    fn account_and_header_checks() {
        assert!(check_account_name("contoso_EU-1").is_ok());
        assert!(check_account_name("").is_err());
        assert!(check_account_name(&"a".repeat(101)).is_err());
        assert!(check_sip_header("abc-1_2").is_ok());
        assert!(check_sip_header("a b").is_err());
        assert_eq!(parse_bool("YES"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("on"), None);
    }
}
