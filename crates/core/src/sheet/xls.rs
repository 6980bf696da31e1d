//! Excel 97-2003 workbooks (.xls), checked before calamine loads them.
//!
//! calamine 0.38 parses every sheet of an .xls when the file is opened and
//! lays each out as a dense range from its first to its last cell
//! (`Range::from_sparse`), beside a second range for the formulas, and
//! `worksheet_range` returns a copy. The format does not bound that: a cell
//! record's column is 16 bits, so one value at (65535, 65535) asks for four
//! billion cells and aborts the process; the DIMENSIONS record's rows are 32
//! bits and calamine reserves rows x columns from it; and within the
//! format's own 65,536 x 256 a stray value at IV65536 costs 16 million cells
//! (about 1 GB) for a sheet of three rows. Reading the cells ourselves would
//! mean a second BIFF parser (shared strings, number formats, RK numbers);
//! instead the records are walked once, before calamine, and only the cell
//! positions are looked at (the Workbook stream is read from the compound
//! file with the `cfb` crate; calamine's own reader is private). A workbook
//! whose dense ranges would hold far more cells than it has values is
//! refused, naming the sheet and the stray cell; what passes costs at most
//! a few times its values.

use super::{column_letters, SheetError};
use crate::text::excerpt;
use std::io::{Read, Seek};

/// Cells the dense ranges of a workbook may hold whatever its values
/// (32 bytes each, about 64 MB), and how many per value beyond that.
pub const DENSE_CELLS: u64 = 2_000_000;
pub const DENSE_PER_VALUE: u64 = 4;

/// The format's own bounds (BIFF8): 65,536 rows, 256 columns (A to IV).
const MAX_ROWS: u64 = 65_536;
const MAX_COLUMNS: u64 = 256;

/// What one sheet's records say.
#[derive(Default)]
struct SheetCells {
    name: String,
    /// (row, column) of each value calamine keeps.
    values: Vec<(u16, u16)>,
    /// (row, column) of each formula.
    formulas: Vec<(u16, u16)>,
}

impl SheetCells {
    /// The cells of calamine's two dense ranges.
    fn dense(&self) -> u64 {
        span(&self.values) + span(&self.formulas)
    }
}

/// Rows x columns from the first cell to the last.
fn span(cells: &[(u16, u16)]) -> u64 {
    let Some(&(r0, c0)) = cells.first() else {
        return 0;
    };
    let (mut rmin, mut rmax, mut cmin, mut cmax) = (r0, r0, c0, c0);
    for &(r, c) in cells {
        rmin = rmin.min(r);
        rmax = rmax.max(r);
        cmin = cmin.min(c);
        cmax = cmax.max(c);
    }
    (u64::from(rmax - rmin) + 1) * (u64::from(cmax - cmin) + 1)
}

fn cell_name(row: u64, col: u64) -> String {
    format!("{}{}", column_letters(col as usize), row + 1)
}

/// Refuses the .xls in `reader` when calamine would lay it out in far more
/// cells than it has values, or when its records would make calamine
/// allocate without bound or index out of its stream. Anything else that is
/// wrong with the file is left to calamine to say.
pub fn precheck<R: Read + Seek>(reader: R, file: &str) -> Result<(), SheetError> {
    let unreadable = |message: String| SheetError::Spreadsheet {
        file: file.to_owned(),
        message,
    };
    let Ok(mut compound) = cfb::CompoundFile::open(reader) else {
        // Not a compound file: calamine will say so.
        return Ok(());
    };
    let name = ["/Workbook", "/Book"]
        .into_iter()
        .find(|name| compound.is_stream(name));
    let Some(name) = name else {
        return Ok(());
    };
    let mut stream = Vec::new();
    compound
        .open_stream(name)
        .and_then(|mut s| s.read_to_end(&mut stream))
        .map_err(|e| {
            unreadable(format!(
                "cannot read its Workbook stream: {}",
                excerpt(&e.to_string())
            ))
        })?;
    let mut sheets = Vec::new();
    let mut biff8 = true;
    for (typ, data) in Records::new(&stream) {
        match typ {
            // BOF: the version says how sheet names are written.
            0x0809 if data.len() >= 2 => biff8 = read_u16(data) == 0x0600,
            // BoundSheet8: where a sheet's records start, and its name.
            0x0085 => {
                if data.len() < 6 {
                    return Err(unreadable(
                        "a sheet's entry (BoundSheet8) is cut short; open the workbook in Excel and save it again, or save the sheet as CSV".into(),
                    ));
                }
                let at = read_u32(data) as usize;
                let name = sheet_name(&data[6..], biff8);
                if at > stream.len() {
                    return Err(unreadable(format!(
                        "sheet '{}' starts past the end of the workbook; open it in Excel and save it again, or save the sheet as CSV",
                        excerpt(&name)
                    )));
                }
                sheets.push((at, name));
            }
            0x000A => break,
            _ => {}
        }
    }
    let mut read = Vec::new();
    for (at, name) in sheets {
        read.push(sheet_cells(&stream[at..], name, file)?);
    }
    let values: u64 = read.iter().map(|s| s.values.len() as u64).sum();
    let dense: u64 = read.iter().map(SheetCells::dense).sum();
    if dense <= DENSE_CELLS.max(values.saturating_mul(DENSE_PER_VALUE)) {
        return Ok(());
    }
    let worst = read
        .iter()
        .max_by_key(|s| {
            s.dense()
                .saturating_sub(s.values.len() as u64 * DENSE_PER_VALUE)
        })
        .expect("a workbook over the bound has a sheet");
    let (row, col) = stray_cell(worst);
    Err(SheetError::FarCell {
        file: file.to_owned(),
        cell: format!("{} in sheet '{}'", cell_name(row, col), excerpt(&worst.name)),
        detail: format!(
            "holds a value far beyond the rest of the data: it stretches the sheet to {} cells for {} values, more than acgbulk reads from an .xls; delete the stray cell at {}, save, and try again, or save the sheet as CSV",
            worst.dense(),
            worst.values.len(),
            cell_name(row, col)
        ),
    })
}

/// The cell whose removal shrinks the sheet's range the most: the last
/// value of the last row, or the lowest value of the last column.
fn stray_cell(sheet: &SheetCells) -> (u64, u64) {
    let cells: Vec<(u16, u16)> = sheet
        .values
        .iter()
        .chain(&sheet.formulas)
        .copied()
        .collect();
    let rmin = cells.iter().map(|c| c.0).min().unwrap_or(0);
    let cmin = cells.iter().map(|c| c.1).min().unwrap_or(0);
    let rmax = cells.iter().map(|c| c.0).max().unwrap_or(0);
    let cmax = cells.iter().map(|c| c.1).max().unwrap_or(0);
    let r2 = cells
        .iter()
        .filter(|c| c.0 != rmax)
        .map(|c| c.0)
        .max()
        .unwrap_or(rmin);
    let c2 = cells
        .iter()
        .filter(|c| c.1 != cmax)
        .map(|c| c.1)
        .max()
        .unwrap_or(cmin);
    let rows_gain = u64::from(rmax - r2) * (u64::from(cmax - cmin) + 1);
    let cols_gain = u64::from(cmax - c2) * (u64::from(rmax - rmin) + 1);
    let (r, c) = if rows_gain >= cols_gain {
        cells
            .iter()
            .filter(|c| c.0 == rmax)
            .max_by_key(|c| c.1)
            .copied()
    } else {
        cells
            .iter()
            .filter(|c| c.1 == cmax)
            .max_by_key(|c| c.0)
            .copied()
    }
    .unwrap_or((rmax, cmax));
    (u64::from(r), u64::from(c))
}

/// Walks one sheet's records as calamine does: the cells it keeps, the
/// DIMENSIONS it reserves from, nested substreams (charts) skipped.
fn sheet_cells(records: &[u8], name: String, file: &str) -> Result<SheetCells, SheetError> {
    let mut sheet = SheetCells {
        name,
        ..SheetCells::default()
    };
    let broken = |sheet: &SheetCells, what: String| {
        SheetError::Spreadsheet {
        file: file.to_owned(),
        message: format!(
            "sheet '{}': {what}; open the workbook in Excel and save it again, or save the sheet as CSV",
            excerpt(&sheet.name)
        ),
    }
    };
    let mut seen_bof = false;
    let mut depth = 0usize;
    let mut formula_at = None;
    for (typ, data) in Records::new(records) {
        if depth > 0 {
            match typ {
                0x0809 => depth += 1,
                0x000A => depth -= 1,
                _ => {}
            }
            continue;
        }
        let at = || (data.len() >= 4).then(|| (read_u16(data), read_u16(&data[2..])));
        match typ {
            0x0809 if seen_bof => depth += 1,
            0x0809 => seen_bof = true,
            0x000A => break,
            // DIMENSIONS: calamine reserves rows x columns from it.
            0x0200 => {
                if let Some(why) = impossible_dimensions(data) {
                    return Err(broken(&sheet, why));
                }
            }
            // Number, Label, RString, BoolErr, RK, LabelSst.
            0x0203 | 0x0204 | 0x00D6 | 0x0205 | 0x027E | 0x00FD => {
                if let Some(cell) = at() {
                    sheet.values.push(cell);
                }
            }
            // String: a formula's text result, at the formula's cell.
            0x0207 => sheet.values.extend(formula_at),
            // MulRk: several numbers on one row.
            0x00BD if data.len() >= 6 => {
                let row = read_u16(data);
                let first = read_u16(&data[2..]);
                let last = read_u16(&data[data.len() - 2..]);
                if last < first {
                    return Err(broken(
                        &sheet,
                        format!(
                            "row {}: a MulRk record runs from column {} back to {}",
                            u64::from(row) + 1,
                            column_letters(first.into()),
                            column_letters(last.into())
                        ),
                    ));
                }
                let written = (data.len() - 6) / 6;
                let count = usize::from(last - first) + 1;
                sheet
                    .values
                    .extend((first..=last).take(count.min(written)).map(|c| (row, c)));
            }
            // Formula.
            0x0006 => {
                if let Some(cell) = at() {
                    formula_at = Some(cell);
                    sheet.formulas.push(cell);
                    // Its value (unless a String record brings it).
                    if data.len() >= 14 && !(data[12] == 0xFF && data[13] == 0xFF && data[6] == 0) {
                        sheet.values.push(cell);
                    }
                }
            }
            _ => {}
        }
    }
    refuse_far_column(&sheet, file)?;
    Ok(sheet)
}

/// What is wrong with a DIMENSIONS record that claims more than an .xls can
/// hold (its last row and column are one past the last cell); `None` when
/// it is sound or of a length calamine does not read either.
fn impossible_dimensions(data: &[u8]) -> Option<String> {
    let (first_row, last_row, last_col) = match data.len() {
        10 => (
            u64::from(read_u16(data)),
            u64::from(read_u16(&data[2..])),
            u64::from(read_u16(&data[6..])),
        ),
        14 | 16 => (
            u64::from(read_u32(data)),
            u64::from(read_u32(&data[4..])),
            u64::from(read_u16(&data[10..])),
        ),
        _ => return None,
    };
    (last_row > MAX_ROWS
        || last_col > MAX_COLUMNS
        || (last_row >= 1 && last_col >= 1 && first_row > last_row - 1))
        .then(|| {
            format!(
                "its size record (DIMENSIONS) claims rows {}..{last_row} and {last_col} columns, beyond what an .xls can hold (65,536 rows, 256 columns)",
                first_row + 1
            )
        })
}

/// A cell past IV, the last column an .xls can have: refused, named.
fn refuse_far_column(sheet: &SheetCells, file: &str) -> Result<(), SheetError> {
    if let Some(&(row, col)) = sheet
        .values
        .iter()
        .chain(&sheet.formulas)
        .find(|c| u64::from(c.1) >= MAX_COLUMNS)
    {
        return Err(SheetError::FarCell {
            file: file.to_owned(),
            cell: format!(
                "{} in sheet '{}'",
                cell_name(row.into(), col.into()),
                excerpt(&sheet.name)
            ),
            detail: format!(
                "is beyond the last column an .xls can have (IV); delete the stray cell at {}, save, and try again, or save the sheet as CSV",
                cell_name(row.into(), col.into())
            ),
        });
    }
    Ok(())
}

/// A sheet name as BoundSheet8 writes it: a length, then (BIFF8) a flag
/// for two-byte characters.
fn sheet_name(data: &[u8], biff8: bool) -> String {
    let Some(&len) = data.first() else {
        return String::new();
    };
    let len = usize::from(len);
    if !biff8 {
        let bytes = &data[1..(1 + len).min(data.len())];
        return bytes.iter().map(|&b| char::from(b)).collect();
    }
    let wide = data.get(1).is_some_and(|flags| flags & 1 == 1);
    let text = data.get(2..).unwrap_or_default();
    if wide {
        let units: Vec<u16> = text
            .chunks_exact(2)
            .take(len)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        text.iter().take(len).map(|&b| char::from(b)).collect()
    }
}

fn read_u16(data: &[u8]) -> u16 {
    u16::from_le_bytes([data[0], data[1]])
}

fn read_u32(data: &[u8]) -> u32 {
    u32::from_le_bytes([data[0], data[1], data[2], data[3]])
}

/// BIFF records: a 16-bit type and length, then the data. A record cut
/// short ends the walk (calamine refuses the file there).
struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> Records<'a> {
    fn new(stream: &'a [u8]) -> Records<'a> {
        Records { rest: stream }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<(u16, &'a [u8])> {
        if self.rest.len() < 4 {
            return None;
        }
        let typ = read_u16(self.rest);
        let len = usize::from(read_u16(&self.rest[2..]));
        let data = self.rest.get(4..4 + len)?;
        self.rest = &self.rest[4 + len..];
        Some((typ, data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sheet(extra: &[(u16, u16)]) -> SheetCells {
        let mut values: Vec<(u16, u16)> =
            (0..3).flat_map(|r| (0..3).map(move |c| (r, c))).collect();
        values.extend_from_slice(extra);
        SheetCells {
            name: "S".into(),
            values,
            formulas: Vec::new(),
        }
    }

    #[test]
    fn the_stray_cell_is_the_one_that_stretches_the_range_most() {
        assert_eq!(stray_cell(&sheet(&[(65_535, 1)])), (65_535, 1));
        assert_eq!(stray_cell(&sheet(&[(1, 255)])), (1, 255));
        assert_eq!(stray_cell(&sheet(&[(65_535, 255)])), (65_535, 255));
        // Two strays: the far-down one first (it costs more), then the other.
        assert_eq!(stray_cell(&sheet(&[(60_000, 0), (2, 200)])), (60_000, 0));
        assert_eq!(sheet(&[(65_535, 255)]).dense(), 65_536 * 256);
        assert_eq!(sheet(&[]).dense(), 9);
    }

    #[test]
    fn sheet_names_in_either_width() {
        assert_eq!(sheet_name(&[3, 0, b'a', b'b', b'c'], true), "abc");
        assert_eq!(sheet_name(&[2, 1, 0x3A, 0x26, b'x', 0], true), "\u{263A}x");
        assert_eq!(sheet_name(&[2, b'h', b'i'], false), "hi");
        assert_eq!(sheet_name(&[9, 0, b'a'], true), "a");
        assert_eq!(sheet_name(&[], true), "");
    }
}
