//! `--write-clean`: the sheet exactly as it would be sent, for review.
//!
//! One row per number after ranges, valid numbers only, each number in its
//! canonical E.164 form and every value in the API's spelling, in the
//! portal's column format. The rows are built the way a batch body is (the
//! row read again, [`crate::record::Fields`] turned into the API's number
//! and back), so the file imports as it is and sends the same requests.

use super::pipeline::Expanded;
use crate::record::{sheet_headings, sheet_row, Fields};
use crate::sheet::{HeaderMap, RawRow, RowReader, SheetError, SheetOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum CleanError {
    #[error("--write-clean needs to read the sheet again: give a file, not standard input")]
    Stdin,
    #[error(transparent)]
    Sheet(#[from] SheetError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Writes the valid numbers of `expanded` (read from `input`) to `path`,
/// atomically. Returns how many rows were written.
pub fn write_clean(
    input: &Path,
    options: &SheetOptions,
    header: Arc<HeaderMap>,
    expanded: &Expanded,
    path: &Path,
) -> Result<u64, CleanError> {
    if input == Path::new("-") {
        return Err(CleanError::Stdin);
    }
    let mut reader = RowReader::open(input, options, header.clone())?;
    let mut read_error = None;
    let mut written = 0;
    let mut fill = |out: &mut dyn io::Write| -> io::Result<()> {
        let mut csv = crate::csvconf::writer(out);
        csv.write_record(sheet_headings())?;
        // Entries of one row (a range) are consecutive: read it once.
        let mut last: Option<(u32, RawRow)> = None;
        for (index, entry) in expanded.entries.iter().enumerate() {
            let Some(account) = expanded.account_of(entry) else {
                continue;
            };
            if expanded.is_invalid(index) {
                continue;
            }
            if last.as_ref().is_none_or(|(row, _)| *row != entry.row) {
                let at = expanded.rows[entry.row as usize];
                match reader.read(at.at, at.row) {
                    Ok(raw) => last = Some((entry.row, raw)),
                    Err(e) => {
                        read_error = Some(e);
                        return Err(io::Error::other("the sheet could not be read again"));
                    }
                }
            }
            let (_, raw) = last.as_ref().expect("read above");
            let number = Fields::from_row(raw, &header).to_number(entry.number, account);
            csv.write_record(sheet_row(
                entry.number,
                account,
                &Fields::from_number(&number),
            ))?;
            written += 1;
        }
        csv.flush()
    };
    // `-`: standard output, for a pipe; a file is replaced whole or not at all.
    let outcome = if path == Path::new("-") {
        fill(&mut io::stdout().lock())
    } else {
        crate::durable::replace(path, |out| fill(out))
    };
    if let Some(error) = read_error {
        return Err(error.into());
    }
    outcome.map_err(|source| CleanError::Write {
        path: path.to_owned(),
        source,
    })?;
    Ok(written)
}
