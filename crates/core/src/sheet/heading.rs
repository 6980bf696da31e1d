//! Finding the heading row of a customer's sheet: `--header-row N`, or the
//! first row within the first [`SEARCH_ROWS`] whose cells are all known or
//! mapped headings (a title, a date or a note above the table is common in
//! workbooks people make). What was passed over, and each `--map` used, is
//! said once, as a [`SheetNote`].

use super::columns::{Column, HeaderMap, HeadingError};
use super::SheetOptions;

/// How far down a sheet the heading row is looked for.
pub const SEARCH_ROWS: u64 = 20;

/// Something said once about how a sheet was read (the report's `note`
/// lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetNote {
    /// The row it is about (the heading row).
    pub row: u64,
    pub kind: NoteKind,
    pub message: String,
    /// The sheet it is about, when several sheets are read as one.
    pub sheet: Option<std::sync::Arc<str>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// Rows above the heading row were passed over.
    HeaderRow,
    /// A heading was read under another name (`--map`).
    ColumnMapped,
    /// A sheet of the workbook was not read (no heading row).
    SheetSkipped,
}

/// Looks at rows one by one, in order, until one is the heading row.
pub struct HeadingSearch<'a> {
    options: &'a SheetOptions,
    /// Non-blank rows passed over.
    skipped: Vec<u64>,
    /// Why the likeliest row (the most cells that are known or mapped
    /// headings; the first of equals) is not the heading row: the error to
    /// show when none is found.
    first_error: Option<(usize, u64, HeadingError)>,
}

/// What [`HeadingSearch::offer`] decided.
pub enum Offer {
    Found(HeaderMap),
    /// Not this row; offer the next.
    Next,
    /// No later row can be the heading row.
    Failed(u64, HeadingError),
}

impl<'a> HeadingSearch<'a> {
    pub fn new(options: &'a SheetOptions) -> HeadingSearch<'a> {
        HeadingSearch {
            options,
            skipped: Vec::new(),
            first_error: None,
        }
    }

    /// Offers the non-blank row `row` (1-based, as a spreadsheet user sees
    /// it) with its cells.
    pub fn offer<S: AsRef<str>>(&mut self, row: u64, cells: &[S]) -> Offer {
        let map = || {
            HeaderMap::with_mappings(
                cells,
                self.options.ignore_unknown_columns,
                &self.options.map,
            )
        };
        if let Some(wanted) = self.options.header_row {
            return match row.cmp(&wanted) {
                std::cmp::Ordering::Less => {
                    self.skipped.push(row);
                    Offer::Next
                }
                std::cmp::Ordering::Equal => match map() {
                    Ok(header) => Offer::Found(header),
                    Err(error) => Offer::Failed(row, error),
                },
                std::cmp::Ordering::Greater => {
                    Offer::Failed(wanted, HeadingError::BlankHeadingRow { row: wanted })
                }
            };
        }
        if row > SEARCH_ROWS {
            return self.failed();
        }
        match map() {
            Ok(header) => Offer::Found(header),
            Err(error) => {
                let known = cells
                    .iter()
                    .filter(|cell| {
                        let cell = cell.as_ref();
                        Column::from_heading(cell).is_some()
                            || self
                                .options
                                .map
                                .iter()
                                .any(|m| m.heading.eq_ignore_ascii_case(cell.trim()))
                    })
                    .count();
                if self
                    .first_error
                    .as_ref()
                    .is_none_or(|(best, ..)| known > *best)
                {
                    self.first_error = Some((known, row, error));
                }
                self.skipped.push(row);
                Offer::Next
            }
        }
    }

    /// The input ended, or [`SEARCH_ROWS`] were passed, without a heading
    /// row: the likeliest row's error, which names the nearest known
    /// heading.
    pub fn failed(&mut self) -> Offer {
        match (self.options.header_row, self.first_error.take()) {
            (Some(wanted), _) => {
                Offer::Failed(wanted, HeadingError::BlankHeadingRow { row: wanted })
            }
            (None, Some((_, row, error))) => Offer::Failed(
                row,
                HeadingError::NotFound {
                    searched: SEARCH_ROWS,
                    first: Box::new(error),
                },
            ),
            (None, None) => Offer::Failed(0, HeadingError::NoNumberColumn),
        }
    }

    /// Whether any non-blank row was offered.
    pub fn saw_rows(&self) -> bool {
        !self.skipped.is_empty() || self.first_error.is_some()
    }

    /// What to say about the heading row `row` and its `header`.
    pub fn notes(&self, row: u64, header: &HeaderMap) -> Vec<SheetNote> {
        let mut notes = Vec::new();
        if let (Some(first), Some(last)) = (self.skipped.first(), self.skipped.last()) {
            let rows = if first == last {
                format!("row {first}")
            } else {
                format!("rows {first}-{last}")
            };
            notes.push(SheetNote {
                row,
                kind: NoteKind::HeaderRow,
                sheet: None,
                message: format!(
                    "the headings are on row {row}; {rows} above them (not headings) were ignored"
                ),
            });
        }
        for (heading, column) in &header.mapped {
            notes.push(SheetNote {
                row,
                kind: NoteKind::ColumnMapped,
                sheet: None,
                message: format!(
                    "column '{}' read as {column} (--map)",
                    crate::text::excerpt(heading)
                ),
            });
        }
        notes
    }
}
