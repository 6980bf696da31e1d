//! Spreadsheets as the cells that hold data.
//!
//! calamine's `worksheet_range` allocates the sheet's whole used range: one
//! stray value at XFD1048576 asks for 512 GiB and aborts the process, one at
//! AZ1048576 in a three-row sheet costs 1.7 GB. So xlsx and xlsb sheets are
//! streamed cell by cell (`worksheet_cells_reader`) and only cells with a
//! value are kept, by row: memory follows the data, a far row costs one row.
//! An .ods is streamed the same way by [`super::ods`]; calamine has no cell
//! reader for .xls, whose sheets [`super::xls`] checks before calamine lays
//! them out. A value far to the right of the headings would make every row
//! it is on as wide as the sheet; it is refused, naming the cell.

use super::{column_letters, ods, xls, SheetError, SheetOptions};
use crate::text::excerpt;
use calamine::{Data, Reader as _, Sheets};
use std::fs::File;
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

/// The sheets `--sheet` picks.
pub enum Picked {
    /// One sheet (the first, or the one named): read as today.
    One(Grid),
    /// `--sheet all` or a list: each sheet with its name, in the order
    /// given (workbook order for `all`).
    Several(Vec<(String, Grid)>),
}

/// Which sheets of a workbook whose sheets are `names` `wanted` picks:
/// `None` for the first; an exact name, else a 1-based position; else
/// `all`, or a comma-separated list of names or positions (so a sheet
/// literally named `all` or `a,b` is still read alone). `Ok(None)` picks
/// one sheet, `Ok(Some(..))` several.
pub fn pick_sheets(
    names: &[String],
    wanted: Option<&str>,
    file: &str,
) -> Result<(String, Option<Vec<String>>), SheetError> {
    let no_such = |wanted: &str| SheetError::NoSuchSheet {
        file: file.to_owned(),
        wanted: excerpt(wanted),
        available: names.iter().map(|n| excerpt(n)).collect(),
    };
    let one = |wanted: &str| {
        names
            .iter()
            .find(|n| *n == wanted)
            .or_else(|| {
                let index: usize = wanted.trim().parse().ok()?;
                names.get(index.checked_sub(1)?)
            })
            .cloned()
    };
    let Some(wanted) = wanted else {
        let first = names.first().cloned().ok_or_else(|| SheetError::Empty {
            file: file.to_owned(),
        })?;
        return Ok((first, None));
    };
    if let Some(name) = one(wanted) {
        return Ok((name, None));
    }
    let several: Vec<String> = if wanted.trim().eq_ignore_ascii_case("all") {
        names.to_vec()
    } else if wanted.contains(',') {
        let mut picked: Vec<String> = Vec::new();
        for part in wanted.split(',').map(str::trim) {
            let name = one(part).ok_or_else(|| no_such(part))?;
            if !picked.contains(&name) {
                picked.push(name);
            }
        }
        picked
    } else {
        return Err(no_such(wanted));
    };
    match several.first() {
        Some(first) => Ok((first.clone(), Some(several))),
        None => Err(SheetError::Empty {
            file: file.to_owned(),
        }),
    }
}

/// Opens the sheet or sheets `options` names in the workbook at `path`, by
/// its extension or, when `by_content`, by what its bytes are. An .ods is
/// read by [`super::ods`], an .xls checked by [`super::xls`] first: calamine
/// would lay either out whole.
pub fn open_grid(
    path: &Path,
    file: &str,
    options: &SheetOptions,
    by_content: bool,
) -> Result<Picked, SheetError> {
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
        if ods::is_ods(Cursor::new(&bytes)) {
            return read_ods(|| Ok(Cursor::new(&bytes)), file, options);
        }
        if bytes.starts_with(CFB_MAGIC) {
            xls::precheck(Cursor::new(&bytes), file)?;
        }
        let workbook =
            calamine::open_workbook_auto_from_rs(Cursor::new(bytes)).map_err(opened_err)?;
        read_grid(workbook, file, options)
    } else {
        let open = || File::open(path).map_err(io_err);
        if ods::is_ods(open()?) {
            return read_ods(open, file, options);
        }
        let mut magic = Vec::new();
        open()?
            .take(CFB_MAGIC.len() as u64)
            .read_to_end(&mut magic)
            .map_err(io_err)?;
        if magic == CFB_MAGIC {
            xls::precheck(open()?, file)?;
        }
        let workbook = calamine::open_workbook_auto(path).map_err(opened_err)?;
        read_grid(workbook, file, options)
    }
}

/// The first bytes of an OLE compound file, as an .xls is.
const CFB_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

fn read_ods<RS: Read + Seek>(
    open: impl Fn() -> Result<RS, SheetError>,
    file: &str,
    options: &SheetOptions,
) -> Result<Picked, SheetError> {
    let Some(wanted) = options.sheet.as_deref() else {
        return match ods::read_sheets(open()?, file, None, false)?.pop() {
            Some((_, grid)) => Ok(Picked::One(grid)),
            None => Err(SheetError::Empty {
                file: file.to_owned(),
            }),
        };
    };
    let names = ods::sheet_names(open()?, file)?;
    match pick_sheets(&names, Some(wanted), file)? {
        (name, None) => {
            let mut read = ods::read_sheets(open()?, file, Some(&[name]), false)?;
            Ok(Picked::One(read.pop().expect("a sheet of its names").1))
        }
        (_, Some(several)) => {
            ods::read_sheets(open()?, file, Some(&several), true).map(Picked::Several)
        }
    }
}

fn read_grid<RS: Read + Seek>(
    mut workbook: Sheets<RS>,
    file: &str,
    options: &SheetOptions,
) -> Result<Picked, SheetError> {
    let names = workbook.sheet_names();
    match pick_sheets(&names, options.sheet.as_deref(), file)? {
        (name, None) => Ok(Picked::One(read_one(&mut workbook, file, &name)?)),
        (_, Some(several)) => several
            .into_iter()
            .map(|name| match read_one(&mut workbook, file, &name) {
                Ok(grid) => Ok((name, grid)),
                Err(e) => Err(in_sheet(e, &name)),
            })
            .collect::<Result<_, _>>()
            .map(Picked::Several),
    }
}

/// Names the sheet of a far cell, as Excel names a cell of another sheet.
pub(super) fn in_sheet(e: SheetError, name: &str) -> SheetError {
    match e {
        SheetError::FarCell { file, cell, detail } => SheetError::FarCell {
            file,
            cell: format!("'{}'!{cell}", excerpt(name)),
            detail,
        },
        other => other,
    }
}

fn read_one<RS: Read + Seek>(
    workbook: &mut Sheets<RS>,
    file: &str,
    name: &str,
) -> Result<Grid, SheetError> {
    let spreadsheet_err = |e: calamine::Error| SheetError::Spreadsheet {
        file: file.to_owned(),
        message: excerpt(&e.to_string()),
    };
    let mut cells: Vec<(u32, u32, Data)> = Vec::new();
    match workbook {
        Sheets::Xlsx(book) => {
            let mut reader = book
                .worksheet_cells_reader(name)
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
                .worksheet_cells_reader(name)
                .map_err(|e| spreadsheet_err(e.into()))?;
            while let Some(cell) = reader.next_cell().map_err(|e| spreadsheet_err(e.into()))? {
                if !matches!(cell.get_value(), calamine::DataRef::Empty) {
                    let (r, c) = cell.get_position();
                    cells.push((r, c, cell.get_value().clone().into()));
                }
            }
        }
        // xls is parsed whole when opened, after `xls::precheck`; ods is
        // read by `ods` and does not come here.
        _ => {
            let range = workbook.worksheet_range(name).map_err(spreadsheet_err)?;
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
    finish(rows, file)
}

/// The grid of `rows` (in sheet order), unless a value lies far right of
/// the headings.
pub(super) fn finish(rows: Vec<GridRow>, file: &str) -> Result<Grid, SheetError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(names: &[&str], wanted: Option<&str>) -> Result<(String, Option<Vec<String>>), String> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        pick_sheets(&names, wanted, "book.xlsx").map_err(|e| e.to_string())
    }

    fn several(names: &[&str]) -> Option<Vec<String>> {
        Some(names.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn one_sheet_several_sheets_and_exact_names_first() {
        let book = ["Read me", "London", "Leeds"];
        assert_eq!(pick(&book, None), Ok(("Read me".into(), None)));
        assert_eq!(pick(&book, Some("Leeds")), Ok(("Leeds".into(), None)));
        assert_eq!(pick(&book, Some("2")), Ok(("London".into(), None)));
        assert_eq!(
            pick(&book, Some("ALL")).unwrap().1,
            several(&["Read me", "London", "Leeds"])
        );
        assert_eq!(
            pick(&book, Some("Leeds, 2,Leeds")).unwrap().1,
            several(&["Leeds", "London"])
        );
        let err = pick(&book, Some("London,Bristol")).unwrap_err();
        assert!(err.contains("no sheet 'Bristol'"), "{err}");
        assert!(pick(&book, Some("London,")).is_err());
        assert!(pick(&book, Some("Bristol")).is_err());
        // A sheet named like a selection is read alone.
        let odd = ["all", "London,Leeds", "London", "Leeds"];
        assert_eq!(pick(&odd, Some("all")), Ok(("all".into(), None)));
        assert_eq!(
            pick(&odd, Some("London,Leeds")),
            Ok(("London,Leeds".into(), None))
        );
        assert_eq!(
            pick(&odd, Some("Leeds,London")).unwrap().1,
            several(&["Leeds", "London"])
        );
    }
}
