//! Sheets other than number sheets (accounts, RFIs, search requests): a
//! heading row naming known columns, read whole (such sheets are small),
//! with the same file handling as number sheets: CSV or spreadsheets,
//! delimiter detection, BOM, CRLF, and did-you-mean for unknown headings.

use super::{csvread, display_name, Opened, SheetError, SheetOptions};
use crate::text::excerpt;
use csv::StringRecord;
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
    let mut records: Vec<(u64, StringRecord)> = Vec::new();
    match super::open_input(path, &file, options, false, None)? {
        Opened::Grid { grid } => {
            for row in &grid.rows {
                let cells: Vec<String> = row.dense(0).into_iter().map(super::cell_text).collect();
                if cells.iter().any(|c| !c.trim().is_empty()) {
                    records.push((row.row as u64 + 1, StringRecord::from(cells)));
                }
            }
        }
        Opened::Grids { .. } => {
            return Err(SheetError::NotASheet {
                file,
                message: "this sheet is read from one sheet of the workbook: give --sheet NAME (or its position)".into(),
            })
        }
        Opened::Csv { mut reader, .. } => {
            let mut record = StringRecord::new();
            while let Some(place) = reader
                .read(&mut record, csvread::LINE_CAP)
                .map_err(|e| super::read_error(&file, e, None, records.is_empty()))?
            {
                if record.iter().any(|c| !c.trim().is_empty()) {
                    records.push((place.line, record.clone()));
                }
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
                return Err(heading_error(format!(
                    "column '{}' appears twice",
                    excerpt(heading)
                )));
            }
            Some(k) => positions[k] = Some(index),
            None if options.ignore_unknown_columns => {}
            None => {
                // A heading far longer than any known one is no typo of one.
                let nearest = known
                    .iter()
                    .filter(|_| heading.len() <= 200)
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
                    "unknown column heading '{}' in column {}{nearest}; use --ignore-unknown-columns to skip it",
                    excerpt(heading),
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
