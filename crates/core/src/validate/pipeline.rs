//! Validating a whole sheet on every core, in bounded memory.
//!
//! One thread reads the sheet in chunks, one worker per core checks rows
//! (each with its own compiled phone rules), and the calling thread takes
//! the results back in input order: it streams findings to the report and
//! keeps, per number, only what the later stages need ([`Expanded`]: 16
//! bytes a number). Duplicates need the whole sheet, so they are found at
//! the end by sorting the numbers, and reported after the per-row findings.

use super::{Code, Finding, RowCheck, RowRules, RuleOptions, Severity};
use crate::sheet::{NoteKind, Sheet, SheetError};
use rayon::slice::ParallelSliceMut;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};

/// Rows per chunk handed to a worker.
const CHUNK_ROWS: usize = 2048;

/// A sheet that could not be validated at all.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error(transparent)]
    Sheet(#[from] SheetError),
    #[error("{0}")]
    Options(String),
    #[error("cannot write the report: {0}")]
    Report(#[source] io::Error),
    #[error(transparent)]
    Clean(#[from] super::clean::CleanError),
}

/// Where a data row is: its row number and the locator to read it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowRef {
    pub row: u64,
    pub at: u64,
}

/// One number after range expansion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Digits after the `+`; 0 when the row had no usable number.
    pub number: u64,
    /// Index into [`Expanded::rows`].
    pub row: u32,
    /// Index into [`Expanded::accounts`]; [`NO_ACCOUNT`] when unusable.
    pub account: u32,
}

pub const NO_ACCOUNT: u32 = u32::MAX;

/// Every number of the sheet in input order, with its validity.
#[derive(Debug, Default)]
pub struct Expanded {
    pub rows: Vec<RowRef>,
    pub entries: Vec<Entry>,
    invalid: Vec<u64>,
    pub accounts: Vec<String>,
    /// The code of each invalid row's first error, by row index. Only the
    /// code: a message per finding would make memory grow with the
    /// findings; [`first_error`] finds the message again from the row.
    row_codes: FirstCodes,
    /// The first error of single numbers (in ranges, and duplicates), by
    /// entry.
    entry_codes: FirstCodes,
    /// Distinct configurations, when collected.
    pub fields: Vec<crate::record::Fields>,
    /// Index into `fields` per entry, when collected.
    entry_fields: Vec<u32>,
    /// When several sheets are read as one: the `at` of each sheet's first
    /// row and its name, in order (see [`crate::sheet::Sheet::sheet_starts`]).
    sheets: Vec<(u64, Arc<str>)>,
}

impl Expanded {
    /// Whether several sheets were read as one: then results and reports
    /// name each row's sheet.
    pub fn several_sheets(&self) -> bool {
        !self.sheets.is_empty()
    }

    /// The sheet of a row, when several sheets were read as one.
    pub fn sheet_of(&self, row: &RowRef) -> Option<&str> {
        self.sheet_arc(row).map(|name| &**name)
    }

    fn sheet_arc(&self, row: &RowRef) -> Option<&Arc<str>> {
        let index = self
            .sheets
            .partition_point(|(first, _)| *first <= row.at)
            .checked_sub(1)?;
        self.sheets.get(index).map(|(_, name)| name)
    }

    /// A row as messages name it: `row 7`, or `London row 7` when several
    /// sheets were read.
    pub fn place(&self, row: &RowRef) -> String {
        match self.sheet_of(row) {
            Some(sheet) => format!("{sheet} row {}", row.row),
            None => format!("row {}", row.row),
        }
    }

    pub fn is_invalid(&self, entry: usize) -> bool {
        self.invalid[entry / 64] & (1 << (entry % 64)) != 0
    }

    fn push(&mut self, entry: Entry, invalid: bool) {
        let index = self.entries.len();
        if index.is_multiple_of(64) {
            self.invalid.push(0);
        }
        self.entries.push(entry);
        if invalid {
            self.mark_invalid(index);
        }
    }

    fn mark_invalid(&mut self, entry: usize) {
        self.invalid[entry / 64] |= 1 << (entry % 64);
    }

    pub fn invalid_count(&self) -> u64 {
        self.invalid.iter().map(|w| w.count_ones() as u64).sum()
    }

    /// The configuration of entry `entry`, when collected.
    pub fn fields_of(&self, entry: usize) -> Option<&crate::record::Fields> {
        self.field_id(entry).map(|i| &self.fields[i as usize])
    }

    /// The index into [`Expanded::fields`] of entry `entry`, when collected.
    pub fn field_id(&self, entry: usize) -> Option<u32> {
        self.entry_fields.get(entry).copied()
    }

    /// The code of entry `entry`'s first error, and whether the error is
    /// the number's own (in a range, or a duplicate) rather than its row's.
    pub fn error_of(&self, entry: usize) -> Option<(Code, ErrorPlace)> {
        match self.entry_codes.get(entry) {
            Some(code) => Some((code, ErrorPlace::Number)),
            None => self
                .row_codes
                .get(self.entries[entry].row as usize)
                .map(|code| (code, ErrorPlace::Row)),
        }
    }

    /// The account name of an entry, if it has a usable one.
    pub fn account_of(&self, entry: &Entry) -> Option<&str> {
        self.accounts
            .get(entry.account as usize)
            .map(String::as_str)
    }
}

/// Whose error an entry's first error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorPlace {
    /// The row's: it applies to every number of the row.
    Row,
    /// The number's own: one number of a range, or a duplicate.
    Number,
}

/// The first error code of each of a sequence of things, one byte each,
/// allocated only once something has an error.
#[derive(Debug, Default)]
struct FirstCodes(Vec<Option<Code>>);

impl FirstCodes {
    fn set_first(&mut self, index: usize, code: Code) {
        if self.0.len() <= index {
            self.0.resize(index + 1, None);
        }
        self.0[index].get_or_insert(code);
    }

    fn get(&self, index: usize) -> Option<Code> {
        self.0.get(index).copied().flatten()
    }
}

/// Which number of a row an error finding is about: the offset into the
/// row's numbers for one number of a range, `None` for the whole row.
fn error_offset(finding: &Finding, numbers: super::Numbers) -> Option<u64> {
    let number = crate::spelling::e164_digits(&finding.telephone_number);
    match (numbers, number) {
        (super::Numbers::Range { start, count }, Some(n)) if n >= start && n < start + count => {
            Some(n - start)
        }
        _ => None,
    }
}

/// The first error of entry `entry` of `expanded`, found again in `check`,
/// a fresh [`RowRules::check`] of its row (the checks are deterministic,
/// so it finds what the validation found). Duplicates are not in a row's
/// findings: see [`DuplicateIndex`].
pub fn first_error<'c>(
    expanded: &Expanded,
    entry: usize,
    check: &'c RowCheck,
) -> Option<&'c Finding> {
    let (code, place) = expanded.error_of(entry)?;
    let offset = match (place, check.numbers) {
        (ErrorPlace::Number, super::Numbers::Range { start, .. }) => {
            Some(expanded.entries[entry].number.checked_sub(start)?)
        }
        (ErrorPlace::Number, _) => return None,
        (ErrorPlace::Row, _) => None,
    };
    check.findings.iter().find(|f| {
        f.severity == Severity::Error && f.code == code && error_offset(f, check.numbers) == offset
    })
}

/// Where every occurrence of some repeated numbers is: (number, entry)
/// pairs sorted, 16 bytes an occurrence.
pub struct DuplicateIndex {
    places: Vec<(u64, u32)>,
}

impl DuplicateIndex {
    /// The occurrences of the numbers `repeated` accepts.
    fn new(expanded: &Expanded, repeated: impl Fn(u64) -> bool) -> DuplicateIndex {
        let mut places: Vec<(u64, u32)> = expanded
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.number != 0 && repeated(e.number))
            .map(|(i, e)| (e.number, i as u32))
            .collect();
        places.par_sort_unstable();
        DuplicateIndex { places }
    }

    /// The occurrences of every number some entry's first error says is a
    /// duplicate: enough to word those errors again.
    pub fn of_duplicates(expanded: &Expanded) -> DuplicateIndex {
        let repeated: rustc_hash::FxHashSet<u64> = (0..expanded.entries.len())
            .filter(|&e| expanded.entry_codes.get(e) == Some(Code::Duplicate))
            .map(|e| expanded.entries[e].number)
            .collect();
        DuplicateIndex::new(expanded, |n| repeated.contains(&n))
    }

    /// The duplicate finding of entry `entry`, if its number repeats.
    pub fn finding(&self, expanded: &Expanded, entry: usize) -> Option<Finding> {
        let number = expanded.entries[entry].number;
        let start = self.places.partition_point(|&(n, _)| n < number);
        let end = self.places.partition_point(|&(n, _)| n <= number);
        let group = &self.places[start..end];
        if group.len() < 2 {
            return None;
        }
        let row_of = |e: u32| expanded.rows[expanded.entries[e as usize].row as usize];
        let several = expanded.several_sheets();
        let others: Vec<String> = group
            .iter()
            .filter(|&&(_, e)| e as usize != entry)
            .map(|&(_, e)| {
                if several {
                    expanded.place(&row_of(e))
                } else {
                    row_of(e).row.to_string()
                }
            })
            .collect();
        let shown = others.len().min(20);
        let more = if others.len() > shown {
            format!(" and {} more", others.len() - shown)
        } else {
            String::new()
        };
        // `also in rows 3, 9`; across sheets `also in London row 3, Leeds
        // row 9`.
        let rows_word = match (several, others.len()) {
            (true, _) => "",
            (false, 1) => "row ",
            (false, _) => "rows ",
        };
        let here = row_of(entry as u32);
        Some(Finding {
            sheet: expanded.sheet_arc(&here).cloned(),
            row: here.row,
            telephone_number: format!("+{number}"),
            severity: Severity::Error,
            code: Code::Duplicate,
            column: crate::sheet::Column::TelephoneNumber.heading(),
            message: format!(
                "+{number} is also in {rows_word}{}{more}",
                others[..shown].join(", ")
            ),
        })
    }
}

/// Counts for the end-of-run summary.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub file: String,
    /// Data rows read (blank rows are not counted).
    pub rows: u64,
    /// Numbers after range expansion.
    pub numbers: u64,
    pub valid: u64,
    pub invalid: u64,
    /// Warning findings.
    pub warnings: u64,
    /// Notes on how the sheet was read (heading row, `--map`, sheets).
    pub notes: u64,
    pub errors_by_code: BTreeMap<Code, u64>,
    pub warnings_by_code: BTreeMap<Code, u64>,
}

impl Summary {
    /// Error codes, most frequent first.
    pub fn top_errors(&self) -> Vec<(Code, u64)> {
        let mut codes: Vec<_> = self.errors_by_code.iter().map(|(&c, &n)| (c, n)).collect();
        codes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        codes
    }
}

pub struct Validated {
    pub summary: Summary,
    pub expanded: Expanded,
}

/// Validates every row of `sheet`, handing each finding to `sink` (per-row
/// findings in input order, then duplicates by row) and the number of rows
/// done so far to `progress`.
pub fn validate(
    sheet: Sheet,
    options: &RuleOptions,
    sink: &mut dyn FnMut(&Finding) -> io::Result<()>,
    progress: &mut dyn FnMut(u64),
) -> Result<Validated, ValidateError> {
    validate_with(sheet, options, sink, progress, false)
}

/// As [`validate`]; with `collect_fields`, also keeps each number's
/// configuration ([`Expanded::fields_of`]) for comparisons.
pub fn validate_with(
    sheet: Sheet,
    options: &RuleOptions,
    sink: &mut dyn FnMut(&Finding) -> io::Result<()>,
    progress: &mut dyn FnMut(u64),
    collect_fields: bool,
) -> Result<Validated, ValidateError> {
    let mode = if collect_fields {
        Mode::RulesAndFields
    } else {
        Mode::Rules
    };
    run(sheet, options, sink, progress, mode)
}

/// Reads numbers, accounts and configurations without the rules: for a
/// sheet that describes what is provisioned (an export), whose numbers are
/// facts rather than requests.
pub fn read_fields(
    sheet: Sheet,
    progress: &mut dyn FnMut(u64),
) -> Result<Validated, ValidateError> {
    run(
        sheet,
        &RuleOptions::default(),
        &mut |_| Ok(()),
        progress,
        Mode::FieldsOnly,
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Rules,
    RulesAndFields,
    FieldsOnly,
}

fn run(
    mut sheet: Sheet,
    options: &RuleOptions,
    sink: &mut dyn FnMut(&Finding) -> io::Result<()>,
    progress: &mut dyn FnMut(u64),
    mode: Mode,
) -> Result<Validated, ValidateError> {
    let header = sheet.header.clone();
    let mut collector = Collector::new(sheet.file.clone());
    collector.expanded.sheets = sheet.sheet_starts();
    for note in &sheet.notes {
        let finding = Finding {
            sheet: note.sheet.clone(),
            row: note.row,
            telephone_number: String::new(),
            severity: Severity::Note,
            code: match note.kind {
                NoteKind::HeaderRow => Code::HeaderRow,
                NoteKind::ColumnMapped => Code::ColumnMapped,
                NoteKind::SheetSkipped => Code::SheetSkipped,
            },
            column: String::new(),
            message: note.message.clone(),
        };
        sink(&finding).map_err(ValidateError::Report)?;
        collector.count(&finding);
    }
    // Fail on a bad option before starting threads.
    RowRules::new(&header, options).map_err(ValidateError::Options)?;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let read_error: Mutex<Option<SheetError>> = Mutex::new(None);

    let outcome = std::thread::scope(|scope| -> Result<(), ValidateError> {
        let (work_tx, work_rx) =
            crossbeam_channel::bounded::<(u64, Vec<crate::sheet::RawRow>)>(workers * 2);
        let (done_tx, done_rx) = crossbeam_channel::bounded::<(u64, Vec<RowCheck>)>(workers * 2);
        // Checked chunks go back to the reader, which parses into them again.
        let (recycle_tx, recycle_rx) =
            crossbeam_channel::bounded::<Vec<crate::sheet::RawRow>>(workers * 4);
        let read_error = &read_error;
        scope.spawn(move || {
            let mut seq = 0;
            loop {
                let mut rows = recycle_rx
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(CHUNK_ROWS));
                match sheet.read_chunk(&mut rows, CHUNK_ROWS) {
                    Ok(0) => break,
                    Ok(_) => {
                        if work_tx.send((seq, rows)).is_err() {
                            break;
                        }
                        seq += 1;
                    }
                    Err(e) => {
                        *read_error.lock().expect("not poisoned") = Some(e);
                        break;
                    }
                }
            }
        });
        for _ in 0..workers {
            let work_rx = work_rx.clone();
            let done_tx = done_tx.clone();
            let recycle_tx = recycle_tx.clone();
            let header = &header;
            scope.spawn(move || {
                let rules = RowRules::new(header, options).expect("checked above");
                for (seq, rows) in work_rx {
                    let checks = rows
                        .iter()
                        .map(|row| {
                            let mut check = match mode {
                                Mode::FieldsOnly => rules.read(row),
                                _ => rules.check(row),
                            };
                            if mode != Mode::Rules {
                                check.fields = Some(crate::record::Fields::from_row(row, header));
                            }
                            check
                        })
                        .collect();
                    let _ = recycle_tx.try_send(rows);
                    if done_tx.send((seq, checks)).is_err() {
                        break;
                    }
                }
            });
        }
        drop((work_rx, done_tx, recycle_tx));

        let mut pending = BTreeMap::new();
        let mut next = 0u64;
        for (seq, checks) in &done_rx {
            pending.insert(seq, checks);
            while let Some(checks) = pending.remove(&next) {
                collector
                    .take(checks, sink)
                    .map_err(ValidateError::Report)?;
                progress(collector.summary.rows);
                next += 1;
            }
        }
        Ok(())
    });
    if let Some(error) = read_error.into_inner().expect("not poisoned") {
        return Err(error.into());
    }
    outcome?;
    collector.duplicates(sink).map_err(ValidateError::Report)?;
    if mode != Mode::FieldsOnly {
        collector
            .account_case(sink)
            .map_err(ValidateError::Report)?;
    }
    Ok(collector.finish())
}

struct Collector {
    summary: Summary,
    expanded: Expanded,
    account_ids: FxHashMap<String, u32>,
    field_ids: FxHashMap<crate::record::Fields, u32>,
}

impl Collector {
    fn new(file: String) -> Collector {
        Collector {
            summary: Summary {
                file,
                ..Summary::default()
            },
            expanded: Expanded::default(),
            account_ids: FxHashMap::default(),
            field_ids: FxHashMap::default(),
        }
    }

    fn count(&mut self, finding: &Finding) {
        let by_code = match finding.severity {
            Severity::Note => {
                self.summary.notes += 1;
                return;
            }
            Severity::Error => &mut self.summary.errors_by_code,
            Severity::Warning => {
                self.summary.warnings += 1;
                &mut self.summary.warnings_by_code
            }
        };
        *by_code.entry(finding.code).or_default() += 1;
    }

    fn take(
        &mut self,
        checks: Vec<RowCheck>,
        sink: &mut dyn FnMut(&Finding) -> io::Result<()>,
    ) -> io::Result<()> {
        for check in checks {
            self.summary.rows += 1;
            for finding in &check.findings {
                sink(finding)?;
                self.count(finding);
            }
            let row = self.expanded.rows.len() as u32;
            self.expanded.rows.push(super::pipeline::RowRef {
                row: check.row,
                at: check.at,
            });
            let account = match check.account {
                None => NO_ACCOUNT,
                Some(name) => match self.account_ids.get(&name) {
                    Some(&id) => id,
                    None => {
                        let id = self.expanded.accounts.len() as u32;
                        self.expanded.accounts.push(name.clone());
                        self.account_ids.insert(name, id);
                        id
                    }
                },
            };
            let first_entry = self.expanded.entries.len();
            for finding in check
                .findings
                .iter()
                .filter(|f| f.severity == Severity::Error)
            {
                match error_offset(finding, check.numbers) {
                    Some(offset) => self
                        .expanded
                        .entry_codes
                        .set_first(first_entry + offset as usize, finding.code),
                    None => self
                        .expanded
                        .row_codes
                        .set_first(row as usize, finding.code),
                }
            }
            let field_id = check
                .fields
                .map(|fields| match self.field_ids.get(&fields) {
                    Some(&id) => id,
                    None => {
                        let id = self.expanded.fields.len() as u32;
                        self.expanded.fields.push(fields.clone());
                        self.field_ids.insert(fields, id);
                        id
                    }
                });
            if let Some(id) = field_id {
                let count = check.numbers.len() as usize;
                self.expanded
                    .entry_fields
                    .extend(std::iter::repeat_n(id, count));
            }
            let mut bad = check.bad_numbers.iter().peekable();
            for offset in 0..check.numbers.len() {
                let is_bad = bad.next_if_eq(&&offset).is_some();
                self.expanded.push(
                    super::pipeline::Entry {
                        number: check.numbers.get(offset),
                        row,
                        account,
                    },
                    check.row_invalid || is_bad,
                );
            }
        }
        Ok(())
    }

    /// Reports every occurrence of a number found more than once, by row.
    ///
    /// Sorting the bare numbers (8 bytes each) finds which values repeat;
    /// a [`DuplicateIndex`] of those then says where each is, and the
    /// findings are made and written one at a time, in input order.
    fn duplicates(&mut self, sink: &mut dyn FnMut(&Finding) -> io::Result<()>) -> io::Result<()> {
        let mut numbers: Vec<u64> = self
            .expanded
            .entries
            .iter()
            .map(|e| e.number)
            .filter(|&n| n != 0)
            .collect();
        numbers.par_sort_unstable();
        let repeated: rustc_hash::FxHashSet<u64> = numbers
            .chunk_by(|a, b| a == b)
            .filter(|g| g.len() > 1)
            .map(|g| g[0])
            .collect();
        drop(numbers);
        if repeated.is_empty() {
            return Ok(());
        }
        let index = DuplicateIndex::new(&self.expanded, |n| repeated.contains(&n));
        for entry in 0..self.expanded.entries.len() {
            if !repeated.contains(&self.expanded.entries[entry].number) {
                continue;
            }
            let Some(finding) = index.finding(&self.expanded, entry) else {
                continue;
            };
            self.expanded.mark_invalid(entry);
            self.expanded.entry_codes.set_first(entry, Code::Duplicate);
            sink(&finding)?;
            self.count(&finding);
        }
        Ok(())
    }

    /// Warns on every row whose account name differs from another row's
    /// only in case. Names are case-sensitive in the API, so `Contoso` and
    /// `contoso` would be two accounts; almost always one is a typo, and the
    /// import would then fail its rows with 404.
    fn account_case(&mut self, sink: &mut dyn FnMut(&Finding) -> io::Result<()>) -> io::Result<()> {
        let accounts = &self.expanded.accounts;
        let mut spellings: FxHashMap<String, Vec<u32>> = FxHashMap::default();
        for (id, name) in accounts.iter().enumerate() {
            spellings
                .entry(name.to_ascii_lowercase())
                .or_default()
                .push(id as u32);
        }
        // For each account that shares its letters with another: the
        // other spellings' ids.
        let mut others: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
        for ids in spellings.values().filter(|ids| ids.len() > 1) {
            for &id in ids {
                others.insert(id, ids.iter().copied().filter(|&o| o != id).collect());
            }
        }
        if others.is_empty() {
            return Ok(());
        }
        // The first row of each spelling, to name in the messages.
        let mut first_row: FxHashMap<u32, String> = FxHashMap::default();
        for entry in &self.expanded.entries {
            if others.contains_key(&entry.account) {
                first_row.entry(entry.account).or_insert_with(|| {
                    self.expanded.place(&self.expanded.rows[entry.row as usize])
                });
            }
        }
        // Entries are in input order: one finding per row, streamed.
        let mut last_row = None;
        let mut warned = 0;
        for entry in &self.expanded.entries {
            let Some(other_ids) = others.get(&entry.account) else {
                continue;
            };
            if last_row == Some(entry.row) {
                continue;
            }
            last_row = Some(entry.row);
            let name = &accounts[entry.account as usize];
            let named: Vec<String> = other_ids
                .iter()
                .map(|&o| format!("'{}' ({})", accounts[o as usize], first_row[&o]))
                .collect();
            let row = &self.expanded.rows[entry.row as usize];
            sink(&Finding {
                sheet: self.expanded.sheet_arc(row).cloned(),
                row: row.row,
                telephone_number: super::e164(entry.number),
                severity: Severity::Warning,
                code: Code::AccountCase,
                column: crate::sheet::Column::AccountName.heading(),
                message: format!(
                    "account '{name}' differs only in case from {}; account names are case-sensitive, so these are different accounts",
                    named.join(", ")
                ),
            })?;
            warned += 1;
        }
        self.summary.warnings += warned;
        *self
            .summary
            .warnings_by_code
            .entry(Code::AccountCase)
            .or_default() += warned;
        Ok(())
    }

    fn finish(mut self) -> Validated {
        self.summary.numbers = self.expanded.entries.len() as u64;
        self.summary.invalid = self.expanded.invalid_count();
        self.summary.valid = self.summary.numbers - self.summary.invalid;
        Validated {
            summary: self.summary,
            expanded: self.expanded,
        }
    }
}
