//! Reading number sheets: CSV (streamed, any size) and spreadsheets (through
//! calamine), turned into rows of text cells under a [`HeaderMap`].
//!
//! A [`Sheet`] reads rows in order, in chunks, for validation. A
//! [`RowReader`] reads single rows again by the locator each [`RawRow`]
//! carries, so an import can fetch the rows of one batch without holding the
//! whole sheet in memory.

pub mod columns;
pub mod table;

use crate::csvconf;
pub use columns::{column_letters, Column, HeaderMap, HeadingError, Teams, TeamsField};

use calamine::{Data, Reader as _};
use csv::StringRecord;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

/// How to read a sheet.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SheetOptions {
    /// CSV delimiter; detected from the heading line when `None`.
    pub delimiter: Option<u8>,
    /// Spreadsheet sheet, by name or 1-based position; the first when `None`.
    pub sheet: Option<String>,
    /// Skip unknown headings instead of refusing the sheet.
    pub ignore_unknown_columns: bool,
}

/// A sheet that cannot be read at all (as opposed to a bad row, which is a
/// validation finding). Every variant names the file and the place.
#[derive(Debug, thiserror::Error)]
pub enum SheetError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: io::Error,
    },
    #[error("{file}: row {row}{}: {message}", column.as_ref().map(|c| format!(", column {c}")).unwrap_or_default())]
    Undecodable {
        file: String,
        row: u64,
        column: Option<String>,
        message: String,
    },
    #[error("{file}: row {row}: {source}")]
    Headings {
        file: String,
        row: u64,
        #[source]
        source: HeadingError,
    },
    #[error("{file}: the sheet is empty: expected a heading row such as 'telephoneNumber,accountName,...'")]
    Empty { file: String },
    #[error("{file}: no sheet '{wanted}'; the workbook has: {}", available.join(", "))]
    NoSuchSheet {
        file: String,
        wanted: String,
        available: Vec<String>,
    },
    #[error("{file}: not a readable spreadsheet: {message}")]
    Spreadsheet { file: String, message: String },
}

/// Something the reader had to do to, or found in, a cell.
#[derive(Debug, Clone, PartialEq)]
pub enum CellNote {
    /// A number column held a numeric cell; it was read back as `+` and its
    /// exact digits.
    Numeric { column: Column, original: String },
    /// The cell holds a spreadsheet error such as `#N/A`.
    Error { cell: usize, text: String },
}

/// One data row.
#[derive(Debug, Clone, Default)]
pub struct RawRow {
    /// The row number a spreadsheet user sees: the heading row of a sheet
    /// that starts at the top is row 1.
    pub row: u64,
    /// Where to find the row again (see [`RowReader::read`]).
    pub at: u64,
    pub cells: StringRecord,
    pub notes: Vec<CellNote>,
}

impl RawRow {
    /// The original text of `column`'s cell when it was a spreadsheet
    /// numeric cell (a number that lost its `+`, or its leading `0`).
    pub fn numeric_cell(&self, column: Column) -> Option<&str> {
        self.notes.iter().find_map(|note| match note {
            CellNote::Numeric {
                column: c,
                original,
            } if *c == column => Some(original.as_str()),
            _ => None,
        })
    }

    /// The text of `column` in this row, trimmed; `None` when the sheet has
    /// no such column or the cell is empty.
    #[inline]
    pub fn get<'a>(&'a self, header: &HeaderMap, column: Column) -> Option<&'a str> {
        let cell = self.cells.get(header.position(column)?)?.trim();
        (!cell.is_empty()).then_some(cell)
    }
}

/// Which kind of file a path is, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SheetFormat {
    Csv,
    Spreadsheet,
}

impl SheetFormat {
    pub fn of(path: &Path) -> SheetFormat {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("xlsx" | "xlsm" | "xlsb" | "xls" | "ods") => SheetFormat::Spreadsheet,
            _ => SheetFormat::Csv,
        }
    }
}

/// A sheet being read in order.
pub struct Sheet {
    /// The file as named in messages (`stdin` for `-`).
    pub file: String,
    pub header: Arc<HeaderMap>,
    /// The row number of the heading row.
    pub header_row: u64,
    source: Source,
}

enum Source {
    Csv {
        reader: csv::Reader<Box<dyn Read + Send>>,
        /// Bytes before the CSV data (a BOM), added to record offsets.
        base: u64,
    },
    Grid {
        grid: Grid,
        next: usize,
    },
}

/// A spreadsheet's used range with its position on the sheet.
struct Grid {
    range: calamine::Range<Data>,
    /// Zero-based sheet row of the range's first row.
    top: u64,
}

impl Sheet {
    /// Opens `path` (`-` for standard input, always read as CSV) and reads
    /// its heading row.
    pub fn open(path: &Path, options: &SheetOptions) -> Result<Sheet, SheetError> {
        let file = display_name(path);
        let stdin = path == Path::new("-");
        if !stdin && SheetFormat::of(path) == SheetFormat::Spreadsheet {
            let grid = open_grid(path, &file, options)?;
            let (header, header_index) = grid_header(&grid, &file, options)?;
            return Ok(Sheet {
                header_row: grid.top + header_index as u64 + 1,
                header: Arc::new(header),
                source: Source::Grid {
                    grid,
                    next: header_index + 1,
                },
                file,
            });
        }
        let io_err = |source| SheetError::Io {
            file: file.clone(),
            source,
        };
        let input: Box<dyn Read + Send> = if stdin {
            Box::new(io::stdin())
        } else {
            Box::new(File::open(path).map_err(io_err)?)
        };
        let mut buffered = BufReader::with_capacity(256 * 1024, input);
        let base = skip_bom(&mut buffered).map_err(io_err)?;
        let delimiter = match options.delimiter {
            Some(d) => d,
            None => csvconf::sniff_delimiter(buffered.fill_buf().map_err(io_err)?),
        };
        let mut reader = csvconf::reader_builder(delimiter)
            .buffer_capacity(256 * 1024)
            .from_reader(Box::new(buffered) as Box<dyn Read + Send>);
        let mut record = StringRecord::new();
        loop {
            let more = reader
                .read_record(&mut record)
                .map_err(|e| csv_error(&file, e, None))?;
            if !more {
                return Err(SheetError::Empty { file });
            }
            if !is_blank(&record) {
                break;
            }
        }
        let header_row = record.position().map_or(1, |p| p.line());
        let header = HeaderMap::new(
            &record.iter().collect::<Vec<_>>(),
            options.ignore_unknown_columns,
        )
        .map_err(|source| SheetError::Headings {
            file: file.clone(),
            row: header_row,
            source,
        })?;
        Ok(Sheet {
            file,
            header: Arc::new(header),
            header_row,
            source: Source::Csv { reader, base },
        })
    }

    /// Reads up to `max` non-blank data rows into `rows`, reusing the rows
    /// already there (and their allocations: a reader handed back its last
    /// chunk parses into the same buffers), then cuts `rows` to what was
    /// read. Returns how many; 0 at the end of the sheet.
    pub fn read_chunk(&mut self, rows: &mut Vec<RawRow>, max: usize) -> Result<usize, SheetError> {
        let mut filled = 0;
        while filled < max {
            if filled == rows.len() {
                rows.push(RawRow::default());
            }
            let slot = &mut rows[filled];
            match &mut self.source {
                Source::Csv { reader, base, .. } => {
                    if !reader
                        .read_record(&mut slot.cells)
                        .map_err(|e| csv_error(&self.file, e, Some(&self.header)))?
                    {
                        break;
                    }
                    if is_blank(&slot.cells) {
                        continue;
                    }
                    let position = slot.cells.position().expect("records read have positions");
                    slot.row = position.line();
                    slot.at = *base + position.byte();
                    slot.notes.clear();
                }
                Source::Grid { grid, next } => {
                    if *next >= grid.range.height() {
                        break;
                    }
                    let index = *next;
                    *next += 1;
                    match grid_row(grid, index, &self.header) {
                        Some(row) => *slot = row,
                        None => continue,
                    }
                }
            }
            filled += 1;
        }
        rows.truncate(filled);
        Ok(filled)
    }
}

/// Reads single rows again, by the `at` locator of a [`RawRow`].
pub struct RowReader {
    file: String,
    header: Arc<HeaderMap>,
    source: RandomSource,
}

enum RandomSource {
    Csv {
        reader: csv::Reader<File>,
        record: StringRecord,
    },
    Grid(Grid),
}

impl RowReader {
    /// Opens `path` for random access with the heading map of a [`Sheet`]
    /// already read from it. Standard input cannot be read twice: spool it
    /// to a file first.
    pub fn open(
        path: &Path,
        options: &SheetOptions,
        header: Arc<HeaderMap>,
    ) -> Result<RowReader, SheetError> {
        let file = display_name(path);
        let source = if SheetFormat::of(path) == SheetFormat::Spreadsheet {
            RandomSource::Grid(open_grid(path, &file, options)?)
        } else {
            let io_err = |source| SheetError::Io {
                file: file.clone(),
                source,
            };
            let mut head = BufReader::new(File::open(path).map_err(io_err)?);
            skip_bom(&mut head).map_err(io_err)?;
            let delimiter = match options.delimiter {
                Some(d) => d,
                None => csvconf::sniff_delimiter(head.fill_buf().map_err(io_err)?),
            };
            RandomSource::Csv {
                reader: csvconf::reader_builder(delimiter)
                    .from_reader(File::open(path).map_err(io_err)?),
                record: StringRecord::new(),
            }
        };
        Ok(RowReader {
            file,
            header,
            source,
        })
    }

    /// Reads the row whose locator is `at` and whose row number is `row`.
    pub fn read(&mut self, at: u64, row: u64) -> Result<RawRow, SheetError> {
        match &mut self.source {
            RandomSource::Csv { reader, record } => {
                let mut position = csv::Position::new();
                position.set_byte(at).set_line(row);
                reader
                    .seek(position)
                    .map_err(|e| csv_error(&self.file, e, None))?;
                let found = reader
                    .read_record(record)
                    .map_err(|e| csv_error(&self.file, e, Some(&self.header)))?;
                if !found {
                    return Err(SheetError::Undecodable {
                        file: self.file.clone(),
                        row,
                        column: None,
                        message: "the file changed since it was read (row not found)".into(),
                    });
                }
                Ok(RawRow {
                    row,
                    at,
                    cells: record.clone(),
                    notes: Vec::new(),
                })
            }
            RandomSource::Grid(grid) => {
                grid_row(grid, at as usize, &self.header).ok_or_else(|| SheetError::Undecodable {
                    file: self.file.clone(),
                    row,
                    column: None,
                    message: "the file changed since it was read (row is empty)".into(),
                })
            }
        }
    }
}

/// The name of `path` in messages.
pub fn display_name(path: &Path) -> String {
    if path == Path::new("-") {
        "stdin".into()
    } else {
        path.display().to_string()
    }
}

/// Skips a UTF-8 byte order mark; returns how many bytes were skipped.
fn skip_bom<R: BufRead>(reader: &mut R) -> io::Result<u64> {
    let buf = reader.fill_buf()?;
    if buf.starts_with(b"\xEF\xBB\xBF") {
        reader.consume(3);
        Ok(3)
    } else {
        Ok(0)
    }
}

fn is_blank(record: &StringRecord) -> bool {
    record.iter().all(|cell| cell.trim().is_empty())
}

fn csv_error(file: &str, error: csv::Error, header: Option<&HeaderMap>) -> SheetError {
    let file = file.to_owned();
    match error.into_kind() {
        csv::ErrorKind::Io(source) => SheetError::Io { file, source },
        csv::ErrorKind::Utf8 { pos, err } => {
            let heading = header
                .and_then(|h| h.headings.get(err.field()))
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            SheetError::Undecodable {
                file,
                row: pos.map_or(0, |p| p.line()),
                column: Some(format!("{}{heading}", column_letters(err.field()))),
                message: "bytes that are not UTF-8; save the sheet as CSV UTF-8".into(),
            }
        }
        other => SheetError::Undecodable {
            file,
            row: 0,
            column: None,
            message: format!("{other:?}"),
        },
    }
}

fn open_grid(path: &Path, file: &str, options: &SheetOptions) -> Result<Grid, SheetError> {
    let spreadsheet_err = |e: calamine::Error| SheetError::Spreadsheet {
        file: file.to_owned(),
        message: e.to_string(),
    };
    let mut workbook = calamine::open_workbook_auto(path).map_err(|e| match e {
        calamine::Error::Io(source) => SheetError::Io {
            file: file.to_owned(),
            source,
        },
        other => spreadsheet_err(other),
    })?;
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
                wanted: wanted.clone(),
                available: names.clone(),
            })?,
    };
    let range = workbook.worksheet_range(&name).map_err(spreadsheet_err)?;
    let top = range.start().map_or(0, |(row, _)| row as u64);
    let left = range.start().map_or(0, |(_, col)| col);
    if left != 0 {
        // Cells are addressed relative to the used range; keep column A as
        // cell 0 so messages name the columns a user sees.
        let mut padded =
            calamine::Range::new((top as u32, 0), range.end().unwrap_or((top as u32, left)));
        for (r, c, value) in range.used_cells() {
            padded.set_value((top as u32 + r as u32, left + c as u32), value.clone());
        }
        return Ok(Grid { range: padded, top });
    }
    Ok(Grid { range, top })
}

fn grid_header(
    grid: &Grid,
    file: &str,
    options: &SheetOptions,
) -> Result<(HeaderMap, usize), SheetError> {
    let (height, width) = grid.range.get_size();
    for index in 0..height {
        let cells: Vec<String> = (0..width)
            .map(|c| {
                grid.range
                    .get((index, c))
                    .map(cell_text)
                    .unwrap_or_default()
            })
            .collect();
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let header = HeaderMap::new(&cells, options.ignore_unknown_columns).map_err(|source| {
            SheetError::Headings {
                file: file.to_owned(),
                row: grid.top + index as u64 + 1,
                source,
            }
        })?;
        return Ok((header, index));
    }
    Err(SheetError::Empty {
        file: file.to_owned(),
    })
}

/// Converts one grid row; `None` for a blank row.
fn grid_row(grid: &Grid, index: usize, header: &HeaderMap) -> Option<RawRow> {
    let (_, width) = grid.range.get_size();
    let number_cells = [
        Column::TelephoneNumber,
        Column::RangeStart,
        Column::RangeEnd,
    ];
    let mut cells = StringRecord::with_capacity(64, width);
    let mut notes = Vec::new();
    let mut blank = true;
    for c in 0..width {
        let value = grid.range.get((index, c)).unwrap_or(&Data::Empty);
        let text = cell_text(value);
        match value {
            Data::Error(e) => notes.push(CellNote::Error {
                cell: c,
                text: e.to_string(),
            }),
            Data::Int(_) | Data::Float(_) => {
                if let Some(&column) = number_cells
                    .iter()
                    .find(|&&col| header.position(col) == Some(c))
                {
                    // Left as the digits: validation reads them as
                    // international and as national (`--default-country`).
                    notes.push(CellNote::Numeric {
                        column,
                        original: text.clone(),
                    });
                }
            }
            _ => {}
        }
        if !text.trim().is_empty() || matches!(value, Data::Error(_)) {
            blank = false;
        }
        cells.push_field(&text);
    }
    if blank {
        return None;
    }
    Some(RawRow {
        row: grid.top + index as u64 + 1,
        at: index as u64,
        cells,
        notes,
    })
}

/// A cell as text. Numbers keep their exact digits: an integral float (how
/// spreadsheets store typed numbers) is written without exponent or
/// fraction, never rounded.
pub fn cell_text(value: &Data) -> String {
    match value {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => float_text(*f),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) => d.to_string(),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => e.to_string(),
    }
}

fn float_text(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 {
        format!("{f:.0}")
    } else {
        f.to_string()
    }
}

/// Copies standard input to `path` so it can be read more than once.
pub fn spool_stdin(path: &Path) -> io::Result<()> {
    let mut out = File::create(path)?;
    io::copy(&mut io::stdin().lock(), &mut out)?;
    out.sync_all()
}

/// Size and SHA-256 of a file's bytes: the fingerprint a checkpoint keeps to
/// recognise its input.
pub fn fingerprint(path: &Path) -> io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(0))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok(format!("{size}:{}", hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_keep_exact_digits() {
        assert_eq!(float_text(4.41632960123e11), "441632960123");
        assert_eq!(float_text(999_999_999_999_999.0), "999999999999999");
        assert_eq!(float_text(1.5), "1.5");
    }

    #[test]
    fn format_by_extension() {
        assert_eq!(
            SheetFormat::of(Path::new("a.XLSX")),
            SheetFormat::Spreadsheet
        );
        assert_eq!(
            SheetFormat::of(Path::new("a.ods")),
            SheetFormat::Spreadsheet
        );
        assert_eq!(SheetFormat::of(Path::new("a.csv")), SheetFormat::Csv);
        assert_eq!(SheetFormat::of(Path::new("-")), SheetFormat::Csv);
    }
}
