//! The validation report: one CSV line per finding.

use super::Finding;
use crate::csvconf;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

pub const REPORT_HEADINGS: [&str; 6] = [
    "row",
    "telephoneNumber",
    "severity",
    "code",
    "column",
    "message",
];

/// Writes findings as CSV to a file or standard output.
pub struct ReportWriter {
    out: csv::Writer<Box<dyn Write>>,
    file: Option<File>,
    /// A `sheet` column first: several sheets are read as one.
    sheet_column: bool,
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
        let mut out = csvconf::writer(sink);
        if sheet_column {
            out.write_record(std::iter::once("sheet").chain(REPORT_HEADINGS))?;
        } else {
            out.write_record(REPORT_HEADINGS)?;
        }
        Ok(ReportWriter {
            out,
            file,
            sheet_column,
        })
    }

    pub fn write(&mut self, finding: &Finding) -> io::Result<()> {
        let row = finding.row.to_string();
        if self.sheet_column {
            self.out
                .write_field(finding.sheet.as_deref().unwrap_or(""))?;
        }
        self.out.write_record([
            row.as_str(),
            &finding.telephone_number,
            finding.severity.as_str(),
            finding.code.as_str(),
            &finding.column,
            &finding.message,
        ])?;
        Ok(())
    }

    /// Flushes and makes the report durable.
    pub fn finish(mut self) -> io::Result<()> {
        self.out.flush()?;
        drop(self.out);
        if let Some(file) = self.file {
            file.sync_all()?;
        }
        Ok(())
    }
}
