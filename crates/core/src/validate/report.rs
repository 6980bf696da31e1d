//! The validation report: one CSV line per finding, or, for a report
//! named `.xlsx`, a workbook: a Summary sheet (numbers valid and invalid,
//! findings by severity and code, numbers by account, the settings and
//! times), then the findings, errors highlighted.

use super::pipeline::{Expanded, Summary, NO_ACCOUNT};
use super::{Finding, Severity};
use crate::csvconf;
use crate::xlsx::{self, Block, Cell, TableId, Value, WorkbookWriter};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

pub const REPORT_HEADINGS: [&str; 6] = [
    "row",
    "telephoneNumber",
    "severity",
    "code",
    "column",
    "message",
];

/// Where the findings go.
enum Sink {
    Csv {
        out: Box<csv::Writer<Box<dyn Write>>>,
        file: Option<File>,
    },
    Xlsx {
        book: Box<WorkbookWriter>,
        table: TableId,
        path: PathBuf,
        /// Findings by severity and code.
        codes: BTreeMap<(Severity, &'static str), u64>,
        started: String,
    },
}

/// Writes findings as CSV to a file or standard output, or as a workbook.
pub struct ReportWriter {
    sink: Sink,
    /// A `sheet` column first: several sheets are read as one.
    sheet_column: bool,
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

impl ReportWriter {
    /// Creates the report at `path` (`-` for standard output).
    pub fn create(path: &Path) -> io::Result<ReportWriter> {
        ReportWriter::create_with(path, false)
    }

    /// As [`ReportWriter::create`]; with `sheet_column` (several sheets
    /// read as one, [`crate::sheet::Sheet::several_sheets`]) each line
    /// starts with its sheet.
    pub fn create_with(path: &Path, sheet_column: bool) -> io::Result<ReportWriter> {
        let headings = || {
            sheet_column
                .then_some("sheet")
                .into_iter()
                .chain(REPORT_HEADINGS)
        };
        if xlsx::is_xlsx(path) {
            // Written whole when the findings are all in (a workbook cannot
            // be appended to), replacing any earlier report only then.
            let mut book = WorkbookWriter::with_summary()?;
            let headings: Vec<&str> = headings().collect();
            let table = book.add_table("Findings", &headings)?;
            return Ok(ReportWriter {
                sink: Sink::Xlsx {
                    book: Box::new(book),
                    table,
                    path: path.to_owned(),
                    codes: BTreeMap::new(),
                    started: now_rfc3339(),
                },
                sheet_column,
            });
        }
        let (sink, file): (Box<dyn Write>, Option<File>) = if path == Path::new("-") {
            (Box::new(io::stdout()), None)
        } else {
            let file = File::create(path)?;
            // Only regular files can (and need to) be made durable.
            let regular = file.metadata()?.is_file();
            (
                Box::new(BufWriter::with_capacity(256 * 1024, file.try_clone()?)),
                regular.then_some(file),
            )
        };
        let mut out = Box::new(csvconf::writer(sink));
        out.write_record(headings())?;
        Ok(ReportWriter {
            sink: Sink::Csv { out, file },
            sheet_column,
        })
    }

    pub fn write(&mut self, finding: &Finding) -> io::Result<()> {
        let row = finding.row.to_string();
        let sheet = self
            .sheet_column
            .then_some(finding.sheet.as_deref().unwrap_or(""));
        let cells = [
            row.as_str(),
            &finding.telephone_number,
            finding.severity.as_str(),
            finding.code.as_str(),
            &finding.column,
            &finding.message,
        ];
        match &mut self.sink {
            Sink::Csv { out, .. } => {
                if let Some(sheet) = sheet {
                    out.write_field(sheet)?;
                }
                out.write_record(cells)?;
            }
            Sink::Xlsx {
                book, table, codes, ..
            } => {
                *codes
                    .entry((finding.severity, finding.code.as_str()))
                    .or_default() += 1;
                let highlight = finding.severity == Severity::Error;
                let cells = sheet.into_iter().chain(cells).map(Cell::Text);
                book.write_row(*table, cells, highlight)?;
            }
        }
        Ok(())
    }

    /// Flushes and makes the report durable; a workbook's Summary has the
    /// findings' counts only.
    pub fn finish(self) -> io::Result<()> {
        self.finish_with(None, &[])
    }

    /// As [`ReportWriter::finish`]; a workbook's Summary also has the
    /// `validated` counts (numbers valid and invalid, by account) and the
    /// `settings` (name, value).
    pub fn finish_with(
        self,
        validated: Option<(&Summary, &Expanded)>,
        settings: &[(String, String)],
    ) -> io::Result<()> {
        match self.sink {
            Sink::Csv { mut out, file } => {
                out.flush()?;
                drop(out);
                if let Some(file) = file {
                    file.sync_all()?;
                }
                Ok(())
            }
            Sink::Xlsx {
                mut book,
                path,
                codes,
                started,
                ..
            } => {
                let mut run = vec![
                    ("report".to_owned(), path.display().to_string()),
                    ("validation started".to_owned(), started),
                    ("report written".to_owned(), now_rfc3339()),
                ];
                run.extend_from_slice(settings);
                let summary = report_summary(validated, &codes, &run);
                book.set_summary(&summary)?;
                crate::durable::replace_with(&path, |tmp| book.save(tmp))
            }
        }
    }
}

/// The Summary of a report workbook.
fn report_summary(
    validated: Option<(&Summary, &Expanded)>,
    codes: &BTreeMap<(Severity, &'static str), u64>,
    settings: &[(String, String)],
) -> xlsx::Summary {
    let mut blocks = Vec::new();
    if let Some((summary, _)) = validated {
        let mut counts = Block::new(&["Outcome", "Count"]);
        counts
            .row("rows", vec![summary.rows.into()])
            .row("numbers", vec![summary.numbers.into()])
            .row("valid numbers", vec![summary.valid.into()])
            .row("invalid numbers", vec![summary.invalid.into()])
            .row("warnings", vec![summary.warnings.into()])
            .row("notes", vec![summary.notes.into()]);
        blocks.push(counts);
    }
    let mut by_code = Block::new(&["Code", "Severity", "Findings"]);
    let mut sorted: Vec<_> = codes.iter().collect();
    sorted.sort_by(|a, b| a.0 .0.cmp(&b.0 .0).then(b.1.cmp(a.1)));
    for ((severity, code), &count) in sorted {
        by_code.row(*code, vec![severity.as_str().into(), count.into()]);
    }
    blocks.push(by_code);
    if let Some((_, expanded)) = validated {
        let mut accounts: BTreeMap<&str, [u64; 2]> = BTreeMap::new();
        for (e, entry) in expanded.entries.iter().enumerate() {
            let account = match entry.account {
                NO_ACCOUNT => "(none)",
                id => &expanded.accounts[id as usize],
            };
            accounts.entry(account).or_default()[usize::from(expanded.is_invalid(e))] += 1;
        }
        let mut by_account = Block::new(&["Account", "valid", "invalid", "total"]);
        for (account, [valid, invalid]) in accounts {
            let values = vec![valid.into(), invalid.into(), (valid + invalid).into()];
            by_account.row(account, values);
        }
        blocks.push(by_account);
    }
    let mut run = Block::new(&["Setting", "Value"]);
    for (name, value) in settings {
        run.row(name.clone(), vec![Value::Text(value.clone())]);
    }
    blocks.push(run);
    xlsx::Summary { blocks }
}

/// Settings for a report's Summary: the input and every rule option (from
/// their JSON, so a new option shows without a change here).
pub fn settings(input: &Path, rules: &super::RuleOptions) -> Vec<(String, String)> {
    let mut settings = vec![("input".to_owned(), input.display().to_string())];
    if let Ok(serde_json::Value::Object(options)) = serde_json::to_value(rules) {
        for (name, value) in options {
            let value = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            settings.push((name, value));
        }
    }
    settings
}
