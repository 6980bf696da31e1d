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
}

impl ReportWriter {
    /// Creates the report at `path` (`-` for standard output).
    pub fn create(path: &Path) -> io::Result<ReportWriter> {
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
        out.write_record(REPORT_HEADINGS)?;
        Ok(ReportWriter { out, file })
    }

    pub fn write(&mut self, finding: &Finding) -> io::Result<()> {
        let row = finding.row.to_string();
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
