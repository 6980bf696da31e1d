//! Spreadsheets as the cells that hold data.
//!
//! calamine's `worksheet_range` allocates the sheet's whole used range: one
//! stray value at XFD1048576 asks for 512 GiB and aborts the process, one at
//! AZ1048576 in a three-row sheet costs 1.7 GB. So xlsx and xlsb sheets are
//! streamed cell by cell (`worksheet_cells_reader`) and only cells with a
//! value are kept, by row: memory follows the data, a far row costs one row.
//! A value far to the right of the headings would make every row it is on as
//! wide as the sheet; it is refused, naming the cell.

use super::{column_letters, SheetError, SheetOptions};
use crate::text::excerpt;
use calamine::{Data, Reader as _, Sheets};
use std::io::{Cursor, Read, Seek};
use std::path::Path;

/// How far right of the heading row's last cell a value may be.
pub const FAR_COLUMNS: u32 = 256;

/// A sheet's cells with values, row by row.
pub struct Grid {
    pub rows: Vec<GridRow>,
}

/// One row with at least one value.
pub struct GridRow {
    /// Zero-based sheet row.
    pub row: u32,
    /// Zero-based column and value, left to right; no empty cells.
    pub cells: Vec<(u32, Data)>,
}

impl GridRow {
    /// How many cells wide the row is, to its last value.
    pub fn width(&self) -> usize {
        self.cells.last().map_or(0, |(c, _)| *c as usize + 1)
    }

    /// The row's cells, `width` of them at least, empty where the sheet
    /// has none.
    pub fn dense(&self, width: usize) -> Vec<&Data> {
        let mut dense = vec![&Data::Empty; width.max(self.width())];
        for (c, value) in &self.cells {
            dense[*c as usize] = value;
        }
        dense
    }
}

/// Opens the sheet `options` names in the workbook at `path`, by its
/// extension or, when `by_content`, by what its bytes are.
pub fn open_grid(
    path: &Path,
    file: &str,
    options: &SheetOptions,
    by_content: bool,
) -> Result<Grid, SheetError> {
    let spreadsheet_err = |e: calamine::Error| SheetError::Spreadsheet {
        file: file.to_owned(),
        message: excerpt(&e.to_string()),
    };
    let io_err = |source| SheetError::Io {
        file: file.to_owned(),
        source,
    };
    let opened_err = |e| match e {
        calamine::Error::Io(source) => io_err(source),
        other => spreadsheet_err(other),
    };
    if by_content {
        // calamine tries each format on a clonable reader; a workbook named
        // .csv is the rare case, read into memory.
        let bytes = std::fs::read(path).map_err(io_err)?;
        let workbook =
            calamine::open_workbook_auto_from_rs(Cursor::new(bytes)).map_err(opened_err)?;
        read_grid(workbook, file, options)
    } else {
        let workbook = calamine::open_workbook_auto(path).map_err(opened_err)?;
        read_grid(workbook, file, options)
    }
}

fn read_grid<RS: Read + Seek>(
    mut workbook: Sheets<RS>,
    file: &str,
    options: &SheetOptions,
) -> Result<Grid, SheetError> {
    let spreadsheet_err = |e: calamine::Error| SheetError::Spreadsheet {
        file: file.to_owned(),
        message: excerpt(&e.to_string()),
    };
    let names = workbook.sheet_names();
    let name = match &options.sheet {
        None => names.first().cloned().ok_or_else(|| SheetError::Empty {
            file: file.to_owned(),
        })?,
        Some(wanted) => names
            .iter()
            .find(|n| *n == wanted)
            .cloned()
            .or_else(|| {
                let index: usize = wanted.parse().ok()?;
                names.get(index.checked_sub(1)?).cloned()
            })
            .ok_or_else(|| SheetError::NoSuchSheet {
                file: file.to_owned(),
                wanted: excerpt(wanted),
                available: names.iter().map(|n| excerpt(n)).collect(),
            })?,
    };
    let mut cells: Vec<(u32, u32, Data)> = Vec::new();
    match &mut workbook {
        Sheets::Xlsx(book) => {
            let mut reader = book
                .worksheet_cells_reader(&name)
                .map_err(|e| spreadsheet_err(e.into()))?;
            while let Some(cell) = reader.next_cell().map_err(|e| spreadsheet_err(e.into()))? {
                if !matches!(cell.get_value(), calamine::DataRef::Empty) {
                    let (r, c) = cell.get_position();
                    cells.push((r, c, cell.get_value().clone().into()));
                }
            }
        }
        Sheets::Xlsb(book) => {
            let mut reader = book
                .worksheet_cells_reader(&name)
                .map_err(|e| spreadsheet_err(e.into()))?;
            while let Some(cell) = reader.next_cell().map_err(|e| spreadsheet_err(e.into()))? {
                if !matches!(cell.get_value(), calamine::DataRef::Empty) {
                    let (r, c) = cell.get_position();
                    cells.push((r, c, cell.get_value().clone().into()));
                }
            }
        }
        // xls and ods are parsed whole when opened (see `precheck`).
        _ => {
            let range = workbook.worksheet_range(&name).map_err(spreadsheet_err)?;
            let (top, left) = range.start().unwrap_or((0, 0));
            cells.extend(
                range
                    .used_cells()
                    .filter(|(_, _, v)| !matches!(v, Data::Empty))
                    .map(|(r, c, v)| (top + r as u32, left + c as u32, v.clone())),
            );
        }
    }
    cells.sort_by_key(|&(r, c, _)| (r, c));
    let mut rows: Vec<GridRow> = Vec::new();
    for (r, c, value) in cells {
        match rows.last_mut() {
            Some(row) if row.row == r => row.cells.push((c, value)),
            _ => rows.push(GridRow {
                row: r,
                cells: vec![(c, value)],
            }),
        }
    }
    refuse_far_cells(&rows, file)?;
    Ok(Grid { rows })
}

/// Refuses a value far to the right of the first row (the headings).
fn refuse_far_cells(rows: &[GridRow], file: &str) -> Result<(), SheetError> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let limit = first.width() as u32 + FAR_COLUMNS;
    let far = rows
        .iter()
        .flat_map(|row| row.cells.iter().map(move |(c, v)| (row.row, *c, v)))
        .find(|&(_, c, _)| c >= limit);
    let Some((far_row, far_col, value)) = far else {
        return Ok(());
    };
    fn near(row: &GridRow, limit: u32) -> Option<&(u32, Data)> {
        row.cells.iter().rfind(|(c, _)| *c < limit)
    }
    let last_row = rows
        .iter()
        .filter(|row| near(row, limit).is_some())
        .map(|row| row.row)
        .max()
        .unwrap_or(first.row);
    let last_col = rows
        .iter()
        .filter_map(|row| near(row, limit))
        .map(|(c, _)| *c)
        .max()
        .unwrap_or(0);
    let last_column = column_letters(last_col as usize);
    Err(SheetError::FarCell {
        file: file.to_owned(),
        cell: format!("{}{}", column_letters(far_col as usize), far_row + 1),
        detail: format!(
            "holds a value ('{}') far beyond the data (A{}:{last_column}{}); delete it (or clear everything right of column {last_column}), save, and try again",
            excerpt(&super::cell_text(value)),
            first.row + 1,
            last_row + 1
        ),
    })
}
