//! The results file: one line per number after range expansion, with what
//! became of it. Written as the run goes (lines in completion order), then
//! rewritten in input order, atomically, when the run ends or stops.

use crate::csvconf;
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

pub struct ResultsWriter {
    out: csv::Writer<BufWriter<File>>,
    file: File,
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
            out,
            file,
            path: path.to_owned(),
            sheet_column,
        })
    }

    pub fn write(&mut self, line: &ResultLine) -> io::Result<()> {
        let row = line.row.to_string();
        if self.sheet_column {
            self.out.write_field(line.sheet.unwrap_or(""))?;
        }
        let status = line.http_status.map(|s| s.to_string()).unwrap_or_default();
        let batch = line.batch.map(|b| b.to_string()).unwrap_or_default();
        self.out.write_record([
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
        ])?;
        Ok(())
    }

    /// Pushes what is buffered to the file (not to the disk).
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and makes the file durable.
    pub fn finish(mut self) -> io::Result<PathBuf> {
        // csv's flush also flushes the buffer beneath it.
        self.out.flush()?;
        self.file.sync_all()?;
        Ok(self.path)
    }
}

/// Writes a whole results file atomically: to a temporary file beside
/// `path`, made durable, then renamed over it. `sheet_column` as for
/// [`ResultsWriter::create_with`].
pub fn write_atomically(
    path: &Path,
    sheet_column: bool,
    fill: impl FnOnce(&mut ResultsWriter) -> io::Result<()>,
) -> io::Result<()> {
    crate::durable::replace_with(path, |tmp| {
        let mut writer = ResultsWriter::create_with(tmp, sheet_column)?;
        fill(&mut writer)?;
        writer.finish().map(drop)
    })
}
