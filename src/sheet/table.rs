//! Sheets other than number sheets (accounts, RFIs, search requests): a
//! heading row naming known columns, read whole (such sheets are small),
//! with the same file handling as number sheets: CSV or spreadsheets,
//! delimiter detection, BOM, CRLF, and did-you-mean for unknown headings.

use super::{display_name, skip_bom, SheetError, SheetFormat, SheetOptions};
use crate::csvconf;
use csv::StringRecord;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// A small sheet with known columns.
#[derive(Debug, Clone)]
pub struct Table {
    pub file: String,
    /// Cell index of each known column (same order as the known list).
    positions: Vec<Option<usize>>,
    known: Vec<String>,
    /// Rows with their row numbers (blank rows skipped).
    pub rows: Vec<(u64, StringRecord)>,
}

impl Table {
    /// The cell of `column` (a known heading) in `row`, trimmed; `None` when
    /// absent or empty.
    pub fn get<'a>(&self, row: &'a StringRecord, column: &str) -> Option<&'a str> {
        let index = self
            .known
            .iter()
            .position(|k| k.eq_ignore_ascii_case(column))?;
        let cell = row.get(self.positions[index]?)?.trim();
        (!cell.is_empty()).then_some(cell)
    }

    /// Whether the sheet has `column`.
    pub fn has(&self, column: &str) -> bool {
        self.known
            .iter()
            .position(|k| k.eq_ignore_ascii_case(column))
            .is_some_and(|i| self.positions[i].is_some())
    }
}

/// Reads `path` whose headings must be among `known` (case-insensitive);
/// `required` must all be there.
pub fn read_table(
    path: &Path,
    options: &SheetOptions,
    known: &[&str],
    required: &[&str],
) -> Result<Table, SheetError> {
    let file = display_name(path);
    let io_err = |source| SheetError::Io {
        file: file.clone(),
        source,
    };
    let mut records: Vec<(u64, StringRecord)> = Vec::new();
    if SheetFormat::of(path) == SheetFormat::Spreadsheet {
        let grid = super::open_grid(path, &file, options)?;
        let (height, width) = grid.range.get_size();
        for r in 0..height {
            let cells: Vec<String> = (0..width)
                .map(|c| {
                    grid.range
                        .get((r, c))
                        .map(super::cell_text)
                        .unwrap_or_default()
                })
                .collect();
            if cells.iter().any(|c| !c.trim().is_empty()) {
                records.push((grid.top + r as u64 + 1, StringRecord::from(cells)));
            }
        }
    } else {
        let mut input = BufReader::new(std::fs::File::open(path).map_err(io_err)?);
        skip_bom(&mut input).map_err(io_err)?;
        let delimiter = match options.delimiter {
            Some(d) => d,
            None => csvconf::sniff_delimiter(input.fill_buf().map_err(io_err)?),
        };
        let mut reader = csvconf::reader_builder(delimiter).from_reader(input);
        let mut record = StringRecord::new();
        while reader
            .read_record(&mut record)
            .map_err(|e| super::csv_error(&file, e, None))?
        {
            if record.iter().any(|c| !c.trim().is_empty()) {
                let line = record.position().map_or(0, |p| p.line());
                records.push((line, record.clone()));
            }
        }
    }
    let mut rows = records.into_iter();
    let Some((heading_row, headings)) = rows.next() else {
        return Err(SheetError::Empty { file });
    };
    let heading_error = |message: String| SheetError::Undecodable {
        file: file.clone(),
        row: heading_row,
        column: None,
        message,
    };
    let mut positions = vec![None; known.len()];
    for (index, heading) in headings.iter().enumerate() {
        let heading = heading.trim().trim_start_matches('\u{feff}');
        if heading.is_empty() {
            continue;
        }
        match known.iter().position(|k| k.eq_ignore_ascii_case(heading)) {
            Some(k) if positions[k].is_some() => {
                return Err(heading_error(format!("column '{heading}' appears twice")));
            }
            Some(k) => positions[k] = Some(index),
            None if options.ignore_unknown_columns => {}
            None => {
                let nearest = known
                    .iter()
                    .map(|k| {
                        (
                            strsim::jaro_winkler(
                                &heading.to_ascii_lowercase(),
                                &k.to_ascii_lowercase(),
                            ),
                            k,
                        )
                    })
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .filter(|(score, _)| *score >= 0.8)
                    .map(|(_, k)| format!(" (did you mean '{k}'?)"))
                    .unwrap_or_default();
                return Err(heading_error(format!(
                    "unknown column heading '{heading}' in column {}{nearest}; use --ignore-unknown-columns to skip it",
                    super::column_letters(index)
                )));
            }
        }
    }
    for needed in required {
        let k = known
            .iter()
            .position(|k| k.eq_ignore_ascii_case(needed))
            .expect("required columns are known");
        if positions[k].is_none() {
            return Err(heading_error(format!("no '{needed}' column")));
        }
    }
    Ok(Table {
        file,
        positions,
        known: known.iter().map(|k| k.to_string()).collect(),
        rows: rows.collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_known_columns_in_any_case() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "\u{feff}Name;Comment\r\na;x\r\n\r\nb;\r\n").unwrap();
        let table = read_table(
            &path,
            &SheetOptions::default(),
            &["name", "comment", "other"],
            &["name"],
        )
        .unwrap();
        assert_eq!(table.rows.len(), 2);
        assert_eq!(table.rows[1].0, 4);
        assert_eq!(table.get(&table.rows[0].1, "comment"), Some("x"));
        assert_eq!(table.get(&table.rows[1].1, "comment"), None);
        assert!(!table.has("other"));
        std::fs::write(&path, "nmae\na\n").unwrap();
        let err = read_table(&path, &SheetOptions::default(), &["name"], &["name"]).unwrap_err();
        assert!(err.to_string().contains("did you mean 'name'"), "{err}");
        std::fs::write(&path, "comment\nx\n").unwrap();
        let err = read_table(
            &path,
            &SheetOptions::default(),
            &["name", "comment"],
            &["name"],
        )
        .unwrap_err();
        assert!(err.to_string().contains("no 'name' column"), "{err}");
    }
}
