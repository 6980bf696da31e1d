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
use crate::validate::pipeline::{self, Summary, ValidateError, NO_ACCOUNT};
use crate::validate::{e164, Finding, RuleOptions, SHOWN_FINDINGS};
use rayon::slice::ParallelSliceMut;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::cmp::Ordering;
use std::io;
use std::path::{Path, PathBuf};
use tokio::sync::watch;

/// How a number differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Same,
    /// Desired, not provisioned.
    Missing,
    /// Provisioned, not desired.
    Extra,
    /// Provisioned in another account.
    Moved,
    /// Provisioned with other values.
    Changed,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Same => "same",
            Kind::Missing => "missing",
            Kind::Extra => "extra",
            Kind::Moved => "moved",
            Kind::Changed => "changed",
        }
    }
}

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
    writer.finish().map_err(ValidateError::Report)?;
    let summary = validated.summary;
    if summary.invalid > 0 && !skip_invalid {
        return Err(ReconcileError::Invalid {
            file: summary.file.clone(),
            invalid: summary.invalid,
            numbers: summary.numbers,
            report: report.to_owned(),
        });
    }
    let side = side_of(&validated.expanded, interner, true);
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
    Side { items }
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
                let Some(digits) = number
                    .telephone_number
                    .strip_prefix('+')
                    .and_then(|d| d.parse::<u64>().ok())
                else {
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
    Ok(Side { items })
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
    /// Lines in to-upsert.csv and to-delete.csv.
    pub to_upsert: u64,
    pub to_delete: u64,
}

impl Drift {
    pub fn any(&self) -> bool {
        self.missing + self.extra + self.moved + self.changed > 0
    }
}

/// The files a reconcile writes.
pub struct Outputs {
    pub diff: PathBuf,
    pub to_upsert: PathBuf,
    pub to_delete: PathBuf,
}

impl Outputs {
    pub fn in_dir(dir: &Path) -> Outputs {
        Outputs {
            diff: dir.join("diff.csv"),
            to_upsert: dir.join("to-upsert.csv"),
            to_delete: dir.join("to-delete.csv"),
        }
    }
}

/// Compares the sides and writes `diff.csv`, `to-upsert.csv` (sheet format,
/// for `acgbulk import`) and `to-delete.csv` (for `acgbulk delete`).
pub fn compare(
    desired: &Side,
    actual: &Side,
    interner: &Interner,
    outputs: &Outputs,
) -> Result<Drift, ReconcileError> {
    let create = |path: &Path| {
        csvconf::create(path).map_err(|source| ReconcileError::Write {
            path: path.to_owned(),
            source,
        })
    };
    let mut diff = create(&outputs.diff)?;
    let mut upsert = create(&outputs.to_upsert)?;
    let mut delete = create(&outputs.to_delete)?;
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |e: csv::Error| ReconcileError::Write {
            path: path.clone(),
            source: e.into(),
        }
    };
    diff.write_record(["telephoneNumber", "kind", "field", "desired", "actual"])
        .map_err(io_err(&outputs.diff))?;
    upsert
        .write_record(sheet_headings())
        .map_err(io_err(&outputs.to_upsert))?;
    delete
        .write_record(["telephoneNumber", "accountName"])
        .map_err(io_err(&outputs.to_delete))?;

    let mut drift = Drift::default();
    let empty = Fields::default();
    let fields = |id: u32| interner.fields.get(id as usize).unwrap_or(&empty);
    let mut write_upsert = |item: &Item, drift: &mut Drift| -> Result<(), ReconcileError> {
        let row = sheet_row(
            item.number,
            &interner.accounts[item.account as usize],
            fields(item.fields),
        );
        drift.to_upsert += 1;
        upsert
            .write_record(&row)
            .map_err(io_err(&outputs.to_upsert))
    };
    let mut write_delete = |item: &Item, drift: &mut Drift| -> Result<(), ReconcileError> {
        drift.to_delete += 1;
        delete
            .write_record([
                e164(item.number),
                interner.accounts[item.account as usize].clone(),
            ])
            .map_err(io_err(&outputs.to_delete))
    };
    let mut line = |number: u64,
                    kind: Kind,
                    field: &str,
                    desired: &str,
                    actual: &str|
     -> Result<(), ReconcileError> {
        diff.write_record([e164(number).as_str(), kind.as_str(), field, desired, actual])
            .map_err(io_err(&outputs.diff))
    };

    let (mut d, mut a) = (
        desired.items.iter().peekable(),
        actual.items.iter().peekable(),
    );
    loop {
        // A side that has run out sorts after every number of the other.
        let order = match (d.peek(), a.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(want), Some(have)) => want.number.cmp(&have.number),
        };
        match order {
            Ordering::Less => {
                let want = d.next().expect("peeked");
                drift.missing += 1;
                line(
                    want.number,
                    Kind::Missing,
                    "",
                    &interner.accounts[want.account as usize],
                    "",
                )?;
                write_upsert(want, &mut drift)?;
            }
            Ordering::Greater => {
                let have = a.next().expect("peeked");
                drift.extra += 1;
                line(
                    have.number,
                    Kind::Extra,
                    "",
                    "",
                    &interner.accounts[have.account as usize],
                )?;
                write_delete(have, &mut drift)?;
            }
            Ordering::Equal => {
                let (want, have) = (d.next().expect("peeked"), a.next().expect("peeked"));
                if want.account != have.account {
                    drift.moved += 1;
                    line(
                        want.number,
                        Kind::Moved,
                        "accountName",
                        &interner.accounts[want.account as usize],
                        &interner.accounts[have.account as usize],
                    )?;
                    // Released from the old account, then created in the new.
                    write_delete(have, &mut drift)?;
                    write_upsert(want, &mut drift)?;
                } else if want.fields != have.fields {
                    let differences = fields(want.fields).diff(fields(have.fields));
                    if differences.is_empty() {
                        drift.same += 1;
                    } else {
                        drift.changed += 1;
                        for (column, wanted, had) in &differences {
                            line(want.number, Kind::Changed, &column.heading(), wanted, had)?;
                        }
                        write_upsert(want, &mut drift)?;
                    }
                } else {
                    drift.same += 1;
                }
            }
        }
    }
    for (writer, path) in [
        (&mut diff, &outputs.diff),
        (&mut upsert, &outputs.to_upsert),
        (&mut delete, &outputs.to_delete),
    ] {
        writer.flush().map_err(|source| ReconcileError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(drift)
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
        };
        let actual = Side {
            items: vec![
                item(2, a, conf),
                item(3, b, plain),
                item(4, b, plain),
                item(5, a, plain),
            ],
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
}
