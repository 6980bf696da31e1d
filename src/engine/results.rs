//! The results file: one line per number after range expansion, with what
//! became of it. Written as the run goes (lines in completion order), then
//! rewritten in input order, atomically, when the run ends or stops.
//!
//! A results file named `.xlsx` is a workbook: a Summary sheet (counts by
//! outcome, error code and account; the run's settings and times), then the
//! lines, failed and invalid ones highlighted. A workbook cannot be
//! appended to, so it is written only at the end or on a stop, from the
//! checkpoint: nothing is written as the run goes.

use crate::csvconf;
use crate::xlsx::{self, Block, Cell, TableId, Value, WorkbookWriter};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

pub const HEADINGS: [&str; 11] = [
    "row",
    "telephoneNumber",
    "accountName",
    "action",
    "outcome",
    "httpStatus",
    "errorCode",
    "errorMessage",
    "serviceProvisioningStatus",
    "batch",
    "requestId",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Invalid,
    Failed,
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Invalid => "invalid",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One line of the results file.
#[derive(Debug, Clone, Default)]
pub struct ResultLine<'a> {
    /// The row's sheet, when several sheets are read as one.
    pub sheet: Option<&'a str>,
    pub row: u64,
    pub telephone_number: &'a str,
    pub account: &'a str,
    pub action: &'a str,
    pub outcome: Option<Outcome>,
    pub http_status: Option<u16>,
    pub error_code: Option<&'a str>,
    pub error_message: Option<&'a str>,
    pub sync: Option<&'a str>,
    /// 1-based batch number of the plan.
    pub batch: Option<u32>,
    pub request_id: Option<&'a str>,
}

/// Outcomes counted as lines are written, for a workbook's Summary sheet.
#[derive(Debug, Clone, Default)]
pub struct OutcomeTally {
    /// What a line counts (`Numbers`, `Rows`).
    unit: &'static str,
    /// ok, failed, invalid, skipped.
    outcomes: [u64; 4],
    codes: HashMap<String, u64>,
    /// Per account: ok, failed, invalid, skipped.
    accounts: BTreeMap<String, [u64; 4]>,
    by_account: bool,
}

const OUTCOMES: [Outcome; 4] = [
    Outcome::Ok,
    Outcome::Failed,
    Outcome::Invalid,
    Outcome::Skipped,
];

impl OutcomeTally {
    /// Counts of `unit`s (`Numbers`, `Rows`), by account when `by_account`.
    pub fn new(unit: &'static str, by_account: bool) -> OutcomeTally {
        OutcomeTally {
            unit,
            by_account,
            ..OutcomeTally::default()
        }
    }

    pub fn count(&mut self, outcome: Option<Outcome>, code: Option<&str>, account: &str) {
        let Some(k) = outcome.and_then(|o| OUTCOMES.iter().position(|&x| x == o)) else {
            return;
        };
        self.outcomes[k] += 1;
        if let Some(code) = code.filter(|c| !c.is_empty()) {
            *self.codes.entry(code.to_owned()).or_default() += 1;
        }
        if self.by_account {
            let account = if account.is_empty() {
                "(none)"
            } else {
                account
            };
            match self.accounts.get_mut(account) {
                Some(counts) => counts[k] += 1,
                None => {
                    let mut counts = [0; 4];
                    counts[k] = 1;
                    self.accounts.insert(account.to_owned(), counts);
                }
            }
        }
    }

    /// The Summary sheet: the counts, then `settings` (name, value).
    pub fn summary(&self, settings: &[(String, String)]) -> xlsx::Summary {
        let mut blocks = Vec::new();
        let mut outcomes = Block::new(&["Outcome", self.unit]);
        for (outcome, &count) in OUTCOMES.iter().zip(&self.outcomes) {
            outcomes.row(outcome.as_str(), vec![Value::Count(count)]);
        }
        outcomes.row("total", vec![Value::Count(self.outcomes.iter().sum())]);
        blocks.push(outcomes);
        let mut codes: Vec<(&String, &u64)> = self.codes.iter().collect();
        codes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut by_code = Block::new(&["Error code", self.unit]);
        for (code, &count) in codes {
            by_code.row(code.clone(), vec![Value::Count(count)]);
        }
        blocks.push(by_code);
        if self.by_account {
            let mut accounts =
                Block::new(&["Account", "ok", "failed", "invalid", "skipped", "total"]);
            for (account, counts) in &self.accounts {
                let mut values: Vec<Value> = counts.iter().map(|&c| Value::Count(c)).collect();
                values.push(Value::Count(counts.iter().sum()));
                accounts.row(account.clone(), values);
            }
            blocks.push(accounts);
        }
        let mut run = Block::new(&["Setting", "Value"]);
        for (name, value) in settings {
            run.row(name.clone(), vec![Value::Text(value.clone())]);
        }
        blocks.push(run);
        xlsx::Summary { blocks }
    }
}

/// Where results lines go: a CSV file as they come, or a workbook saved
/// whole.
enum Sink {
    Csv {
        out: Box<csv::Writer<BufWriter<File>>>,
        file: File,
    },
    Xlsx {
        book: Box<WorkbookWriter>,
        table: TableId,
        tally: OutcomeTally,
    },
}

pub struct ResultsWriter {
    sink: Sink,
    path: PathBuf,
    /// A `sheet` column first: several sheets are read as one.
    sheet_column: bool,
}

impl ResultsWriter {
    /// Creates (or empties) the file at `path` and writes the headings.
    pub fn create(path: &Path) -> io::Result<ResultsWriter> {
        ResultsWriter::create_with(path, false)
    }

    /// As [`ResultsWriter::create`]; with `sheet_column` (several sheets
    /// read as one) each line starts with its sheet.
    pub fn create_with(path: &Path, sheet_column: bool) -> io::Result<ResultsWriter> {
        let file = File::create(path)?;
        let mut out = csvconf::writer(BufWriter::with_capacity(256 * 1024, file.try_clone()?));
        if sheet_column {
            out.write_record(std::iter::once("sheet").chain(HEADINGS))?;
        } else {
            out.write_record(HEADINGS)?;
        }
        Ok(ResultsWriter {
            sink: Sink::Csv {
                out: Box::new(out),
                file,
            },
            path: path.to_owned(),
            sheet_column,
        })
    }

    /// A results workbook to be saved at `path` by
    /// [`ResultsWriter::save_workbook`].
    fn workbook(path: &Path, sheet_column: bool) -> io::Result<ResultsWriter> {
        let mut book = WorkbookWriter::with_summary()?;
        let headings: Vec<&str> = sheet_column
            .then_some("sheet")
            .into_iter()
            .chain(HEADINGS)
            .collect();
        let table = book.add_table("Results", &headings)?;
        Ok(ResultsWriter {
            sink: Sink::Xlsx {
                book: Box::new(book),
                table,
                tally: OutcomeTally::new("Numbers", true),
            },
            path: path.to_owned(),
            sheet_column,
        })
    }

    pub fn write(&mut self, line: &ResultLine) -> io::Result<()> {
        let row = line.row.to_string();
        let status = line.http_status.map(|s| s.to_string()).unwrap_or_default();
        let batch = line.batch.map(|b| b.to_string()).unwrap_or_default();
        let cells = [
            row.as_str(),
            line.telephone_number,
            line.account,
            line.action,
            line.outcome.map(Outcome::as_str).unwrap_or(""),
            &status,
            line.error_code.unwrap_or(""),
            line.error_message.unwrap_or(""),
            line.sync.unwrap_or(""),
            &batch,
            line.request_id.unwrap_or(""),
        ];
        let sheet = self.sheet_column.then_some(line.sheet.unwrap_or(""));
        match &mut self.sink {
            Sink::Csv { out, .. } => {
                if let Some(sheet) = sheet {
                    out.write_field(sheet)?;
                }
                out.write_record(cells)?;
            }
            Sink::Xlsx { book, table, tally } => {
                tally.count(line.outcome, line.error_code, line.account);
                let highlight = matches!(line.outcome, Some(Outcome::Failed | Outcome::Invalid));
                let cells = sheet.into_iter().chain(cells).map(Cell::Text);
                book.write_row(*table, cells, highlight)?;
            }
        }
        Ok(())
    }

    /// Pushes what is buffered to the file (not to the disk).
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Csv { out, .. } => out.flush(),
            Sink::Xlsx { .. } => Ok(()),
        }
    }

    /// Flushes and makes the file durable.
    pub fn finish(self) -> io::Result<PathBuf> {
        match self.sink {
            Sink::Csv { mut out, file } => {
                // csv's flush also flushes the buffer beneath it.
                out.flush()?;
                file.sync_all()?;
            }
            Sink::Xlsx { book, .. } => book.save(&self.path)?,
        }
        Ok(self.path)
    }

    /// Saves a workbook with its Summary: the counts of the lines written,
    /// then `settings`.
    fn save_workbook(mut self, settings: &[(String, String)]) -> io::Result<PathBuf> {
        if let Sink::Xlsx { book, tally, .. } = &mut self.sink {
            book.set_summary(&tally.summary(settings))?;
        }
        self.finish()
    }
}

/// Writes a whole results file atomically: to a temporary file beside
/// `path`, made durable, then renamed over it. `sheet_column` as for
/// [`ResultsWriter::create_with`]; a workbook's Summary shows `settings`
/// (name, value) after the counts.
pub fn write_atomically(
    path: &Path,
    sheet_column: bool,
    settings: impl FnOnce() -> Vec<(String, String)>,
    fill: impl FnOnce(&mut ResultsWriter) -> io::Result<()>,
) -> io::Result<()> {
    crate::durable::replace_with(path, |tmp| {
        if xlsx::is_xlsx(path) {
            let mut writer = ResultsWriter::workbook(tmp, sheet_column)?;
            fill(&mut writer)?;
            return writer.save_workbook(&settings()).map(drop);
        }
        let mut writer = ResultsWriter::create_with(tmp, sheet_column)?;
        fill(&mut writer)?;
        writer.finish().map(drop)
    })
}

/// Whether the results at `path` are a workbook (written only whole, at the
/// end or on a stop).
pub fn is_workbook(path: &Path) -> bool {
    xlsx::is_xlsx(path)
}
