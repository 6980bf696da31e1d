//! Comparing a desired sheet with what is provisioned (an export, or the
//! live gateway), keyed by telephone number.
//!
//! Each side becomes a sorted list of (number, account, configuration) where
//! accounts and configurations are interned across both sides, so most
//! comparisons are two integers; only numbers whose configurations differ
//! are compared field by field ([`Fields::diff`]). A million numbers a side
//! take 16 bytes each.

use crate::client::{paths, ListOptions, ProvisioningClient, ServiceError};
use crate::csvconf;
use crate::record::{sheet_headings, sheet_row, Fields};
use crate::sheet::{Sheet, SheetOptions};
use crate::spelling::{e164, string_enum};
use crate::validate::pipeline::{self, Summary, ValidateError, NO_ACCOUNT};
use crate::validate::{Finding, RuleOptions, SHOWN_FINDINGS};
use rayon::slice::ParallelSliceMut;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::io;
use std::path::{Path, PathBuf};
use tokio::sync::watch;

string_enum!(
    /// How a number differs between the desired sheet and what is provisioned.
    Difference {
        Same => "same",
        /// Desired, not provisioned.
        Missing => "missing",
        /// Provisioned, not desired.
        Extra => "extra",
        /// Provisioned in another account.
        Moved => "moved",
        /// Provisioned with other values.
        Changed => "changed",
        /// Not judged, so left alone: its desired row is invalid, or a
        /// desired row with no readable number could be it.
        Invalid => "invalid",
    }
);

/// Accounts and configurations shared by both sides.
#[derive(Default)]
pub struct Interner {
    pub accounts: Vec<String>,
    account_ids: FxHashMap<String, u32>,
    pub fields: Vec<Fields>,
    field_ids: FxHashMap<Fields, u32>,
}

impl Interner {
    pub fn account(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.account_ids.get(name) {
            return id;
        }
        let id = self.accounts.len() as u32;
        self.accounts.push(name.to_owned());
        self.account_ids.insert(name.to_owned(), id);
        id
    }

    pub fn fields(&mut self, fields: &Fields) -> u32 {
        if let Some(&id) = self.field_ids.get(fields) {
            return id;
        }
        let id = self.fields.len() as u32;
        self.fields.push(fields.clone());
        self.field_ids.insert(fields.clone(), id);
        id
    }
}

/// One number of a side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Item {
    pub number: u64,
    pub account: u32,
    pub fields: u32,
}

/// One side, sorted by number.
#[derive(Debug, Default)]
pub struct Side {
    pub items: Vec<Item>,
    /// What the desired side cannot say (empty for a provisioned side).
    pub unjudged: Unjudged,
}

/// The desired rows that were left out as invalid (`--skip-invalid`).
/// Reconcile cannot judge the numbers they name, nor, when a row has no
/// readable number at all, any provisioned number that row could be: those
/// are `invalid`, never `extra`, so `--apply` leaves them alone.
#[derive(Debug, Default)]
pub struct Unjudged {
    /// The numbers of invalid rows, sorted, each with its row's note.
    pub numbers: Vec<(u64, u32)>,
    /// Accounts with a row that has no readable number: any provisioned
    /// number of the account that no valid row names could be that row's.
    /// The note of the first such row.
    pub accounts: FxHashMap<u32, u32>,
    /// A row with neither a readable number nor a usable account: then any
    /// provisioned number could be its. Its note.
    pub anywhere: Option<u32>,
    /// What the diff says of each such row, in its `desired` column:
    /// `row 12: SIP_HEADER`.
    pub notes: Vec<String>,
}

impl Unjudged {
    /// Collects the invalid entries of `expanded`, accounts interned.
    fn of(expanded: &pipeline::Expanded, interner: &mut Interner) -> Unjudged {
        let mut unjudged = Unjudged::default();
        // A row's note once, however many numbers its range has.
        let mut notes: FxHashMap<u32, u32> = FxHashMap::default();
        for (e, entry) in expanded.entries.iter().enumerate() {
            let usable = entry.number != 0 && entry.account != NO_ACCOUNT;
            if usable && !expanded.is_invalid(e) {
                continue;
            }
            let note = *notes.entry(entry.row).or_insert_with(|| {
                let row = &expanded.rows[entry.row as usize];
                let code = expanded.error_of(e).map_or("", |(code, _)| code.as_str());
                let mut note = format!("{}: {code}", expanded.place(row));
                if entry.number == 0 {
                    note.push_str(", no readable number");
                }
                unjudged.notes.push(note);
                (unjudged.notes.len() - 1) as u32
            });
            if entry.number != 0 {
                unjudged.numbers.push((entry.number, note));
            } else if let Some(account) = expanded.account_of(entry) {
                let account = interner.account(account);
                unjudged.accounts.entry(account).or_insert(note);
            } else if unjudged.anywhere.is_none() {
                unjudged.anywhere = Some(note);
            }
        }
        unjudged.numbers.par_sort_unstable();
        unjudged.numbers.dedup_by_key(|(number, _)| *number);
        unjudged
    }

    /// The note of the row that could be provisioned number `have`, when
    /// no valid row names it.
    fn could_be(&self, have: &Item) -> Option<u32> {
        self.accounts.get(&have.account).copied().or(self.anywhere)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Validate(#[from] ValidateError),
    #[error("{file}: {invalid} of {numbers} numbers are invalid (report: {report}); fix them, or give --skip-invalid to compare the valid ones")]
    Invalid {
        file: String,
        invalid: u64,
        numbers: u64,
        report: PathBuf,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("listing {what}: {error}")]
    Listing { what: String, error: ServiceError },
}

/// The desired side from a sheet, through the import's reader and rules.
/// Invalid numbers are an error unless `skip_invalid`.
pub fn desired_side(
    path: &Path,
    sheet: &SheetOptions,
    rules: &RuleOptions,
    report: &Path,
    skip_invalid: bool,
    interner: &mut Interner,
    progress: &mut dyn FnMut(u64),
) -> Result<(Side, Summary, Vec<Finding>), ReconcileError> {
    let opened = Sheet::open(path, sheet).map_err(ValidateError::from)?;
    let mut writer =
        crate::validate::report::ReportWriter::create(report).map_err(ValidateError::Report)?;
    let mut first = Vec::new();
    let validated = pipeline::validate_with(
        opened,
        rules,
        &mut |finding| {
            if first.len() < SHOWN_FINDINGS {
                first.push(finding.clone());
            }
            writer.write(finding)
        },
        progress,
        true,
    )?;
    let validation = Some((&validated.summary, &validated.expanded));
    let settings = crate::validate::report::settings(path, rules);
    writer
        .finish_with(validation, &settings)
        .map_err(ValidateError::Report)?;
    let summary = validated.summary;
    if summary.invalid > 0 && !skip_invalid {
        return Err(ReconcileError::Invalid {
            file: summary.file.clone(),
            invalid: summary.invalid,
            numbers: summary.numbers,
            report: report.to_owned(),
        });
    }
    let mut side = side_of(&validated.expanded, interner, true);
    side.unjudged = Unjudged::of(&validated.expanded, interner);
    Ok((side, summary, first))
}

/// The actual side from an export file: every number in it, whatever the
/// rules say of it (it is provisioned, after all).
pub fn export_side(
    path: &Path,
    sheet: &SheetOptions,
    interner: &mut Interner,
    progress: &mut dyn FnMut(u64),
) -> Result<Side, ReconcileError> {
    // An export of an empty service is headings alone.
    let opened = Sheet::open(path, sheet)
        .map_err(ValidateError::from)?
        .allow_no_rows();
    let validated = pipeline::read_fields(opened, progress)?;
    Ok(side_of(&validated.expanded, interner, false))
}

fn side_of(expanded: &pipeline::Expanded, interner: &mut Interner, valid_only: bool) -> Side {
    let accounts: Vec<u32> = expanded
        .accounts
        .iter()
        .map(|a| interner.account(a))
        .collect();
    let fields: Vec<u32> = expanded
        .fields
        .iter()
        .map(|f| interner.fields(&f.canonical()))
        .collect();
    let mut items: Vec<Item> = expanded
        .entries
        .iter()
        .enumerate()
        .filter(|(e, entry)| {
            entry.number != 0
                && entry.account != NO_ACCOUNT
                && !(valid_only && expanded.is_invalid(*e))
        })
        .map(|(e, entry)| Item {
            number: entry.number,
            account: accounts[entry.account as usize],
            fields: expanded
                .field_id(e)
                .map_or(u32::MAX, |local| fields[local as usize]),
        })
        .collect();
    items.par_sort_unstable();
    items.dedup_by_key(|i| i.number);
    Side {
        items,
        ..Side::default()
    }
}

/// The actual side from the live gateway: every number of `accounts` (or
/// of all), paged at the client's pace.
pub async fn live_side(
    client: &ProvisioningClient,
    accounts: &[String],
    page_size: usize,
    interner: &mut Interner,
    stop: &mut watch::Receiver<bool>,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<Side, ReconcileError> {
    let sources: Vec<Option<&str>> = if accounts.is_empty() {
        vec![None]
    } else {
        accounts.iter().map(|a| Some(a.as_str())).collect()
    };
    let mut items = Vec::new();
    for source in sources {
        let mut pager = client.list_numbers(source, &ListOptions::page_size(page_size));
        while let Some(page) = pager.next_page(stop).await {
            let page = page.map_err(|error| ReconcileError::Listing {
                what: source.map_or_else(|| "/numbers".to_owned(), paths::account_numbers),
                error,
            })?;
            for number in &page.items {
                let Some(digits) = crate::spelling::e164_digits(&number.telephone_number) else {
                    continue;
                };
                let account = interner.account(number.account_name.as_deref().unwrap_or(""));
                let fields = interner.fields(&Fields::from_number(number).canonical());
                items.push(Item {
                    number: digits,
                    account,
                    fields,
                });
            }
            progress(items.len() as u64);
        }
    }
    items.par_sort_unstable();
    items.dedup_by_key(|i| i.number);
    Ok(Side {
        items,
        ..Side::default()
    })
}

/// Counts by kind.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    pub same: u64,
    pub missing: u64,
    pub extra: u64,
    pub moved: u64,
    pub changed: u64,
    /// Numbers not judged and left alone (see [`Unjudged`]).
    pub invalid: u64,
    /// Lines in to-upsert.csv and to-delete.csv.
    pub to_upsert: u64,
    pub to_delete: u64,
}

impl Drift {
    pub fn any(&self) -> bool {
        self.missing + self.extra + self.moved + self.changed + self.invalid > 0
    }
}

/// The files a reconcile writes.
pub struct Outputs {
    pub diff: PathBuf,
    pub to_upsert: PathBuf,
    pub to_delete: PathBuf,
    /// All three as sheets of this one workbook instead (then each path
    /// above is the workbook's).
    pub workbook: Option<PathBuf>,
}

impl Outputs {
    pub fn in_dir(dir: &Path) -> Outputs {
        Outputs {
            diff: dir.join("diff.csv"),
            to_upsert: dir.join("to-upsert.csv"),
            to_delete: dir.join("to-delete.csv"),
            workbook: None,
        }
    }

    /// One workbook at `path`: a Summary sheet of the counts, then the
    /// sheets Differences, To upsert and To delete.
    pub fn workbook(path: &Path) -> Outputs {
        Outputs {
            diff: path.to_owned(),
            to_upsert: path.to_owned(),
            to_delete: path.to_owned(),
            workbook: Some(path.to_owned()),
        }
    }
}

/// Compares the sides and writes `diff.csv`, `to-upsert.csv` (sheet format,
/// for `acgbulk import`) and `to-delete.csv` (for `acgbulk delete`).
/// Numbers the desired side cannot judge go to neither list.
pub fn compare(
    desired: &Side,
    actual: &Side,
    interner: &Interner,
    outputs: &Outputs,
) -> Result<Drift, ReconcileError> {
    let mut out = DriftWriter::create(interner, outputs)?;
    let unjudged = &desired.unjudged;
    let mut d = desired.items.iter().peekable();
    let mut a = actual.items.iter().peekable();
    let mut u = unjudged.numbers.iter().peekable();
    loop {
        let next = [
            d.peek().map(|i| i.number),
            a.peek().map(|i| i.number),
            u.peek().map(|(n, _)| *n),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(number) = next else { break };
        let want = d.next_if(|i| i.number == number);
        let have = a.next_if(|i| i.number == number);
        // An invalid row wins over a valid one of the same number: the
        // sheet says two things of it.
        if let Some(&(_, note)) = u.next_if(|(n, _)| *n == number) {
            out.invalid(number, unjudged, note, have)?;
            continue;
        }
        match (want, have) {
            (Some(want), Some(have)) => out.both(want, have)?,
            (Some(want), None) => out.missing(want)?,
            (None, Some(have)) => match unjudged.could_be(have) {
                Some(note) => out.invalid(number, unjudged, note, Some(have))?,
                None => out.extra(have)?,
            },
            (None, None) => unreachable!("the smallest number is on some side"),
        }
    }
    out.finish()
}

type CsvOut = csv::Writer<std::io::BufWriter<std::fs::File>>;

/// One of a comparison's outputs: a CSV file, or a sheet of the workbook.
enum Out {
    Csv(Box<CsvOut>),
    Sheet(crate::xlsx::TableId),
}

/// Writes a line to `out` (a sheet of `book`).
fn put(
    book: &mut Option<crate::xlsx::WorkbookWriter>,
    out: &mut Out,
    path: &Path,
    cells: &[&str],
) -> Result<(), ReconcileError> {
    match (out, book) {
        (Out::Csv(csv), _) => csv
            .write_record(cells)
            .map_err(|e| write_error(path, e.into())),
        (Out::Sheet(table), Some(book)) => book
            .write_text_row(*table, cells, false)
            .map_err(|e| write_error(path, e)),
        (Out::Sheet(_), None) => unreachable!("a sheet is of the workbook"),
    }
}

/// A comparison's three files (or one workbook's sheets), written as the
/// differences are found, and the counts of each kind.
struct DriftWriter<'a> {
    interner: &'a Interner,
    outputs: &'a Outputs,
    book: Option<crate::xlsx::WorkbookWriter>,
    diff: Out,
    upsert: Out,
    delete: Out,
    drift: Drift,
    empty: Fields,
}

impl<'a> DriftWriter<'a> {
    fn create(interner: &'a Interner, outputs: &'a Outputs) -> Result<Self, ReconcileError> {
        let mut book = match &outputs.workbook {
            Some(path) => Some(
                crate::xlsx::WorkbookWriter::with_summary().map_err(|e| write_error(path, e))?,
            ),
            None => None,
        };
        let mut create = |path: &Path, name: &str, headings: &[&str]| {
            if let Some(book) = &mut book {
                let table = book
                    .add_table(name, headings)
                    .map_err(|e| write_error(path, e))?;
                return Ok(Out::Sheet(table));
            }
            let mut writer = csvconf::create(path).map_err(|source| write_error(path, source))?;
            writer
                .write_record(headings)
                .map_err(|e| write_error(path, e.into()))?;
            Ok::<_, ReconcileError>(Out::Csv(Box::new(writer)))
        };
        let sheet = sheet_headings();
        let sheet: Vec<&str> = sheet.iter().map(AsRef::as_ref).collect();
        let diff = create(
            &outputs.diff,
            "Differences",
            &["telephoneNumber", "kind", "field", "desired", "actual"],
        )?;
        let upsert = create(&outputs.to_upsert, "To upsert", &sheet)?;
        let delete = create(
            &outputs.to_delete,
            "To delete",
            &["telephoneNumber", "accountName"],
        )?;
        Ok(DriftWriter {
            interner,
            outputs,
            book,
            diff,
            upsert,
            delete,
            drift: Drift::default(),
            empty: Fields::default(),
        })
    }

    fn account(&self, item: &Item) -> &'a str {
        &self.interner.accounts[item.account as usize]
    }

    fn fields(&self, id: u32) -> &Fields {
        self.interner.fields.get(id as usize).unwrap_or(&self.empty)
    }

    fn line(
        &mut self,
        number: u64,
        kind: Difference,
        field: &str,
        desired: &str,
        actual: &str,
    ) -> Result<(), ReconcileError> {
        let number = e164(number);
        let cells = [number.as_str(), kind.as_str(), field, desired, actual];
        put(&mut self.book, &mut self.diff, &self.outputs.diff, &cells)
    }

    fn upsert(&mut self, item: &Item) -> Result<(), ReconcileError> {
        let row = sheet_row(item.number, self.account(item), self.fields(item.fields));
        self.drift.to_upsert += 1;
        let cells: Vec<&str> = row.iter().map(AsRef::as_ref).collect();
        put(
            &mut self.book,
            &mut self.upsert,
            &self.outputs.to_upsert,
            &cells,
        )
    }

    fn delete(&mut self, item: &Item) -> Result<(), ReconcileError> {
        self.drift.to_delete += 1;
        let number = e164(item.number);
        let cells = [number.as_str(), self.account(item)];
        put(
            &mut self.book,
            &mut self.delete,
            &self.outputs.to_delete,
            &cells,
        )
    }

    /// Desired, not provisioned.
    fn missing(&mut self, want: &Item) -> Result<(), ReconcileError> {
        self.drift.missing += 1;
        self.line(want.number, Difference::Missing, "", self.account(want), "")?;
        self.upsert(want)
    }

    /// Provisioned, not desired.
    fn extra(&mut self, have: &Item) -> Result<(), ReconcileError> {
        self.drift.extra += 1;
        self.line(have.number, Difference::Extra, "", "", self.account(have))?;
        self.delete(have)
    }

    /// Not judged: an invalid desired row names it, or could be it. Left
    /// alone.
    fn invalid(
        &mut self,
        number: u64,
        unjudged: &Unjudged,
        note: u32,
        have: Option<&Item>,
    ) -> Result<(), ReconcileError> {
        self.drift.invalid += 1;
        let note = unjudged.notes.get(note as usize).map_or("", String::as_str);
        let had = have.map_or("", |have| self.account(have));
        self.line(number, Difference::Invalid, "", note, had)
    }

    /// On both sides: the same, moved to another account, or changed.
    fn both(&mut self, want: &Item, have: &Item) -> Result<(), ReconcileError> {
        if want.account != have.account {
            self.drift.moved += 1;
            let (wanted, had) = (self.account(want), self.account(have));
            self.line(want.number, Difference::Moved, "accountName", wanted, had)?;
            // Released from the old account, then created in the new.
            self.delete(have)?;
            return self.upsert(want);
        }
        let differences = if want.fields == have.fields {
            Vec::new()
        } else {
            self.fields(want.fields).diff(self.fields(have.fields))
        };
        if differences.is_empty() {
            self.drift.same += 1;
            return Ok(());
        }
        self.drift.changed += 1;
        for (column, wanted, had) in &differences {
            self.line(
                want.number,
                Difference::Changed,
                &column.heading(),
                wanted,
                had,
            )?;
        }
        self.upsert(want)
    }

    fn finish(mut self) -> Result<Drift, ReconcileError> {
        for (writer, path) in [
            (&mut self.diff, &self.outputs.diff),
            (&mut self.upsert, &self.outputs.to_upsert),
            (&mut self.delete, &self.outputs.to_delete),
        ] {
            if let Out::Csv(writer) = writer {
                writer.flush().map_err(|source| write_error(path, source))?;
            }
        }
        if let (Some(mut book), Some(path)) = (self.book, &self.outputs.workbook) {
            book.set_summary(&drift_summary(&self.drift))
                .and_then(|()| crate::durable::replace_with(path, |tmp| book.save(tmp)))
                .map_err(|e| write_error(path, e))?;
        }
        Ok(self.drift)
    }
}

/// A reconcile workbook's Summary: every count of `drift` (read from its
/// JSON, so a new kind shows without a change here) and when it was written.
fn drift_summary(drift: &Drift) -> crate::xlsx::Summary {
    use crate::xlsx::{Block, Value};
    let mut counts = Block::new(&["Kind", "Numbers"]);
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(drift) {
        for (name, value) in fields {
            if let Some(count) = value.as_u64() {
                counts.row(name, vec![Value::Count(count)]);
            }
        }
    }
    let mut run = Block::new(&["Setting", "Value"]);
    let written = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    run.row("written", vec![Value::Text(written.to_string())]);
    crate::xlsx::Summary {
        blocks: vec![counts, run],
    }
}

fn write_error(path: &Path, source: io::Error) -> ReconcileError {
    ReconcileError::Write {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(usage: &str) -> Fields {
        let mut f = Fields {
            direct_routing: true,
            ..Fields::default()
        };
        if !usage.is_empty() {
            f.teams[0] = Some(crate::record::TeamsFields {
                usage: Some(usage.to_owned().into()),
                capabilities: 1,
                ..Default::default()
            });
        }
        f
    }

    #[test]
    fn kinds_of_drift() {
        let mut interner = Interner::default();
        let (a, b) = (interner.account("a"), interner.account("b"));
        let (plain, oc, conf) = (
            interner.fields(&fields("")),
            interner.fields(&fields("CallingUserAssignment")),
            interner.fields(&fields("ConferenceAssignment")),
        );
        let item = |number, account, fields| Item {
            number,
            account,
            fields,
        };
        let desired = Side {
            items: vec![
                item(1, a, plain),
                item(2, a, oc),
                item(3, a, plain),
                item(4, b, plain),
            ],
            ..Side::default()
        };
        let actual = Side {
            items: vec![
                item(2, a, conf),
                item(3, b, plain),
                item(4, b, plain),
                item(5, a, plain),
            ],
            ..Side::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let outputs = Outputs::in_dir(dir.path());
        let drift = compare(&desired, &actual, &interner, &outputs).unwrap();
        assert_eq!(
            drift,
            Drift {
                same: 1,
                missing: 1,
                extra: 1,
                moved: 1,
                changed: 1,
                invalid: 0,
                to_upsert: 3,
                to_delete: 2
            }
        );
        let diff = std::fs::read_to_string(&outputs.diff).unwrap();
        assert!(diff.contains("+2,changed,serviceDetails_teamsOperatorConnect_configuration_usage,CallingUserAssignment,ConferenceAssignment"), "{diff}");
        assert!(diff.contains("+3,moved,accountName,a,b"), "{diff}");
        let delete = std::fs::read_to_string(&outputs.to_delete).unwrap();
        assert_eq!(delete, "telephoneNumber,accountName\n+3,b\n+5,a\n");
    }

    /// What an invalid desired row names, or could be, is reported and
    /// left alone: never in to-delete.csv.
    #[test]
    fn what_cannot_be_judged_is_never_deleted() {
        let mut interner = Interner::default();
        let (a, b) = (interner.account("a"), interner.account("b"));
        let plain = interner.fields(&fields(""));
        let item = |number, account| Item {
            number,
            account,
            fields: plain,
        };
        let mut unjudged = Unjudged {
            numbers: vec![(2, 0), (7, 0)],
            notes: vec!["row 3: SIP_HEADER".into(), "row 4: E164_FORMAT".into()],
            ..Unjudged::default()
        };
        unjudged.accounts.insert(b, 1);
        let desired = Side {
            items: vec![item(1, a)],
            unjudged,
        };
        // 2: invalid row, provisioned; 7: invalid row, not provisioned;
        // 5 in b: an unreadable row of b could be it; 6 in a: extra.
        let actual = Side {
            items: vec![item(1, a), item(2, a), item(5, b), item(6, a)],
            ..Side::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let outputs = Outputs::in_dir(dir.path());
        let drift = compare(&desired, &actual, &interner, &outputs).unwrap();
        assert_eq!((drift.same, drift.invalid, drift.extra), (1, 3, 1));
        let diff = std::fs::read_to_string(&outputs.diff).unwrap();
        assert!(diff.contains("+2,invalid,,row 3: SIP_HEADER,a\n"), "{diff}");
        assert!(diff.contains("+7,invalid,,row 3: SIP_HEADER,\n"), "{diff}");
        assert!(
            diff.contains("+5,invalid,,row 4: E164_FORMAT,b\n"),
            "{diff}"
        );
        let delete = std::fs::read_to_string(&outputs.to_delete).unwrap();
        assert_eq!(delete, "telephoneNumber,accountName\n+6,a\n");

        // A row with no number and no account could be any number.
        let desired = Side {
            items: vec![item(1, a)],
            unjudged: Unjudged {
                anywhere: Some(0),
                notes: vec!["row 9: E164_FORMAT, no readable number".into()],
                ..Unjudged::default()
            },
        };
        let drift = compare(&desired, &actual, &interner, &outputs).unwrap();
        assert_eq!((drift.invalid, drift.extra, drift.to_delete), (3, 0, 0));
    }
}
