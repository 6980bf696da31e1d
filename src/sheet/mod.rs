//! Reading number sheets: CSV (streamed, any size) and spreadsheets (through
//! calamine), turned into rows of text cells under a [`HeaderMap`].
//!
//! A [`Sheet`] reads rows in order, in chunks, for validation. A
//! [`RowReader`] reads single rows again by the locator each [`RawRow`]
//! carries, so an import can fetch the rows of one batch without holding the
//! whole sheet in memory.
//!
//! What a file is comes from its first bytes, not its name (see
//! [`csvread::sniff`]); CSV is read strictly, with caps on lines and fields
//! ([`csvread`]); spreadsheets as the cells that hold data ([`grid`]).

pub mod columns;
pub mod csvread;
pub mod grid;
pub mod input;
pub mod table;

use crate::text::excerpt;
pub use columns::{column_letters, Column, HeaderMap, HeadingError, Teams, TeamsField};
use csvread::{Layout, ReadError, RecordReader, Sniffed};
use grid::Grid;
pub use input::Fingerprint;

use calamine::Data;
use csv::StringRecord;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read, Seek, SeekFrom};
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
    // Not a `#[source]`: the message already says it, and a cause chain
    // would print it twice.
    #[error("{file}: row {row}: {error}")]
    Headings {
        file: String,
        row: u64,
        error: HeadingError,
    },
    #[error("{file}: the sheet is empty: expected a heading row such as 'telephoneNumber,accountName,...'")]
    Empty { file: String },
    #[error("{file}: no rows: the headings are on row {header_row} and no row below them holds a number")]
    NoRows { file: String, header_row: u64 },
    #[error("{file}: no sheet '{wanted}'; the workbook has: {}", available.join(", "))]
    NoSuchSheet {
        file: String,
        wanted: String,
        available: Vec<String>,
    },
    #[error("{file}: not a readable spreadsheet: {message}")]
    Spreadsheet { file: String, message: String },
    #[error("{file}: {message}")]
    NotASheet { file: String, message: String },
    /// A value far to the right of the headings (see [`grid`]).
    #[error("{file}: cell {cell} {detail}")]
    FarCell {
        file: String,
        cell: String,
        detail: String,
    },
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
    fingerprint: Fingerprint,
    /// Data rows read so far.
    rows_read: u64,
    /// Whether a sheet with headings and no rows is fine (an export of an
    /// empty service) rather than a mistake.
    allow_no_rows: bool,
}

enum Source {
    Csv {
        reader: RecordReader<Box<dyn BufRead + Send>>,
    },
    Grid {
        grid: Grid,
        next: usize,
    },
}

/// What [`open_input`] found at a path.
pub(crate) enum Opened {
    Csv {
        reader: RecordReader<Box<dyn BufRead + Send>>,
        fingerprint: Fingerprint,
    },
    /// A workbook: read whole from a regular file, so not fingerprinted
    /// here (see [`Sheet::fingerprint`]).
    Grid { grid: Grid },
}

/// Opens `path` by what it holds: CSV text (streamed through a [`input::Tee`]
/// that fingerprints it when `hash` and, with `copy`, copies it) or a workbook (by its
/// extension, or by its content when it is a regular file).
pub(crate) fn open_input(
    path: &Path,
    file: &str,
    options: &SheetOptions,
    hash: bool,
    copy: Option<&Path>,
) -> Result<Opened, SheetError> {
    let io_err = |source| SheetError::Io {
        file: file.to_owned(),
        source,
    };
    let stream = input::is_stream(path);
    if SheetFormat::of(path) == SheetFormat::Spreadsheet && path != Path::new("-") {
        if stream {
            return Err(SheetError::NotASheet {
                file: file.to_owned(),
                message: "a workbook must be a regular file (this is a pipe or a device); save it to a file and give its path".into(),
            });
        }
        // A sheet saved as CSV but named .xlsx is read as what it is.
        let head = File::open(path)
            .and_then(|mut f| input::read_head(&mut f, 8))
            .map_err(io_err)?;
        let text =
            !head.is_empty() && matches!(csvread::sniff(&head, options.delimiter), Sniffed::Csv(_));
        if !text {
            let grid = grid::open_grid(path, file, options, false)?;
            return Ok(Opened::Grid { grid });
        }
        tracing::warn!("{file} holds text, not a workbook: reading it as CSV");
    }
    let raw: Box<dyn Read + Send> = if path == Path::new("-") {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path).map_err(io_err)?)
    };
    let mut tee = input::Tee::new(raw, hash, copy).map_err(io_err)?;
    let fingerprint = tee.fingerprint();
    let head = input::read_head(&mut tee, csvread::HEAD_BYTES).map_err(io_err)?;
    match csvread::sniff(&head, options.delimiter) {
        Sniffed::Refused(message) => Err(SheetError::NotASheet {
            file: file.to_owned(),
            message,
        }),
        Sniffed::Workbook(kind) if stream => Err(SheetError::NotASheet {
            file: file.to_owned(),
            message: format!("this is {kind}, not CSV text, and a workbook must be read from a file: save it and give its path"),
        }),
        Sniffed::Workbook(kind) => {
            tracing::warn!("{file} is {kind}, not CSV text: reading it as a workbook");
            let grid = grid::open_grid(path, file, options, true)?;
            Ok(Opened::Grid { grid })
        }
        Sniffed::Csv(layout) => {
            let mut head = Cursor::new(head);
            head.set_position(layout.skip);
            let input: Box<dyn BufRead + Send> =
                Box::new(BufReader::with_capacity(256 * 1024, head.chain(tee)));
            Ok(Opened::Csv {
                reader: RecordReader::new(input, layout, layout.skip, layout.first_line),
                fingerprint,
            })
        }
    }
}

impl Sheet {
    /// Opens `path` (`-` for standard input, always read as CSV) and reads
    /// its heading row.
    pub fn open(path: &Path, options: &SheetOptions) -> Result<Sheet, SheetError> {
        Sheet::open_with(path, options, false, None)
    }

    /// Opens `path` for an import: as [`Sheet::open`] does, also taking
    /// the input's fingerprint as it is read ([`Sheet::fingerprint`]) and,
    /// with `copy`, writing every byte read to that file. Input that can be
    /// read only once (standard input, a FIFO, a device) is copied as it is
    /// validated, under the same caps, so garbage stops at its first bad
    /// bytes. The copy is complete once the sheet is read to its end.
    pub fn open_for_run(
        path: &Path,
        options: &SheetOptions,
        copy: Option<&Path>,
    ) -> Result<Sheet, SheetError> {
        Sheet::open_with(path, options, true, copy)
    }

    fn open_with(
        path: &Path,
        options: &SheetOptions,
        hash: bool,
        copy: Option<&Path>,
    ) -> Result<Sheet, SheetError> {
        let file = display_name(path);
        match open_input(path, &file, options, hash, copy)? {
            Opened::Grid { grid } => {
                let (header, header_index) = grid_header(&grid, &file, options)?;
                Ok(Sheet {
                    header_row: grid.rows[header_index].row as u64 + 1,
                    header: Arc::new(header),
                    source: Source::Grid {
                        grid,
                        next: header_index + 1,
                    },
                    file,
                    fingerprint: Fingerprint::default(),
                    rows_read: 0,
                    allow_no_rows: false,
                })
            }
            Opened::Csv {
                mut reader,
                fingerprint,
            } => {
                let mut headings = StringRecord::new();
                let place = loop {
                    let place = reader
                        .read(&mut headings, csvread::HEADING_LINE_CAP)
                        .map_err(|e| read_error(&file, e, None, true))?;
                    let Some(place) = place else {
                        return Err(SheetError::Empty { file });
                    };
                    if !is_blank(&headings) {
                        break place;
                    }
                };
                let header = HeaderMap::new(
                    &headings.iter().collect::<Vec<_>>(),
                    options.ignore_unknown_columns,
                )
                .map_err(|error| SheetError::Headings {
                    file: file.clone(),
                    row: place.line,
                    error,
                })?;
                Ok(Sheet {
                    file,
                    header: Arc::new(header),
                    header_row: place.line,
                    source: Source::Csv { reader },
                    fingerprint,
                    rows_read: 0,
                    allow_no_rows: false,
                })
            }
        }
    }

    /// The size and SHA-256 of the input's bytes, known once a CSV sheet
    /// opened by [`Sheet::open_for_run`] has been read to its end; never for
    /// a workbook, a regular file that [`fingerprint`] can hash.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint.clone()
    }

    /// Accepts a sheet with headings and no rows (an export of an empty
    /// service); otherwise that is [`SheetError::NoRows`].
    pub fn allow_no_rows(mut self) -> Sheet {
        self.allow_no_rows = true;
        self
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
                Source::Csv { reader } => {
                    let place = reader
                        .read(&mut slot.cells, csvread::LINE_CAP)
                        .map_err(|e| read_error(&self.file, e, Some(&self.header), false))?;
                    let Some(place) = place else {
                        break;
                    };
                    if is_blank(&slot.cells) {
                        continue;
                    }
                    slot.row = place.line;
                    slot.at = place.at;
                    slot.notes.clear();
                }
                Source::Grid { grid, next } => {
                    if *next >= grid.rows.len() {
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
        self.rows_read += filled as u64;
        if filled == 0 && self.rows_read == 0 && !self.allow_no_rows {
            return Err(SheetError::NoRows {
                file: self.file.clone(),
                header_row: self.header_row,
            });
        }
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
        reader: RecordReader<BufReader<File>>,
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
        let source = match open_input(path, &file, options, false, None)? {
            Opened::Grid { grid } => RandomSource::Grid(grid),
            Opened::Csv { reader, .. } => {
                // Sniffed through a stream; rows are read from the file.
                let layout: Layout = reader.layout();
                let opened = File::open(path).map_err(|source| SheetError::Io {
                    file: file.clone(),
                    source,
                })?;
                RandomSource::Csv {
                    reader: RecordReader::new(BufReader::new(opened), layout, 0, 1),
                    record: StringRecord::new(),
                }
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
        let changed = |file: &str, what: &str| SheetError::Undecodable {
            file: file.to_owned(),
            row,
            column: None,
            message: format!("the file changed since it was read ({what})"),
        };
        match &mut self.source {
            RandomSource::Csv { reader, record } => {
                if at != reader.offset() {
                    let io_err = |source| SheetError::Io {
                        file: self.file.clone(),
                        source,
                    };
                    // Rows of a batch are near each other: keep the buffer.
                    let delta = at as i64 - reader.offset() as i64;
                    reader.get_mut().seek_relative(delta).map_err(io_err)?;
                    reader.moved_to(at, row);
                }
                let place = reader
                    .read(record, csvread::LINE_CAP)
                    .map_err(|e| read_error(&self.file, e, Some(&self.header), false))?;
                match place {
                    Some(place) if place.at == at => Ok(RawRow {
                        row,
                        at,
                        cells: record.clone(),
                        notes: Vec::new(),
                    }),
                    _ => Err(changed(&self.file, "row not found")),
                }
            }
            RandomSource::Grid(grid) => grid_row(grid, at as usize, &self.header)
                .ok_or_else(|| changed(&self.file, "row is empty")),
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

fn is_blank(record: &StringRecord) -> bool {
    record.iter().all(|cell| cell.trim().is_empty())
}

/// `C (accountName)`: a cell's column as a user finds it.
fn column_name(field: usize, header: Option<&HeaderMap>) -> String {
    let heading = header
        .and_then(|h| h.headings.get(field))
        .map(|h| h.trim())
        .filter(|h| !h.is_empty())
        .map(|h| format!(" ({})", excerpt(h)))
        .unwrap_or_default();
    format!("{}{heading}", column_letters(field))
}

/// Why `bytes` (a cell that is not UTF-8) cannot be read, in words.
fn not_utf8(bytes: &[u8]) -> String {
    // Windows-1252 leaves five bytes undefined; text in it has no control
    // characters but tabs.
    let cp1252 = !bytes
        .iter()
        .any(|&b| matches!(b, 0x81 | 0x8D | 0x8F | 0x90 | 0x9D) || (b < 0x20 && b != b'\t'));
    if cp1252 {
        let (text, _, _) = encoding_rs::WINDOWS_1252.decode(bytes);
        format!(
            "the text is not UTF-8; it looks like Windows-1252 ('{}'): save the sheet as \"CSV UTF-8\" (Excel: File > Save As > CSV UTF-8)",
            excerpt(&text)
        )
    } else {
        let valid = std::str::from_utf8(bytes)
            .map_err(|e| e.valid_up_to())
            .err()
            .unwrap_or(0);
        format!(
            "bytes that are not UTF-8 (0x{:02X} at byte {} of the cell); save the sheet as \"CSV UTF-8\"",
            bytes.get(valid).copied().unwrap_or(0),
            valid + 1
        )
    }
}

/// A [`ReadError`] in words, on its row and column.
fn read_error(
    file: &str,
    error: ReadError,
    header: Option<&HeaderMap>,
    heading: bool,
) -> SheetError {
    let file = file.to_owned();
    let kib = |bytes: usize| bytes / 1024;
    let (row, column, message) = match error {
        ReadError::Io(source) => return SheetError::Io { file, source },
        ReadError::LineTooLong { line, cap } if heading => (
            line,
            None,
            format!(
                "the heading line runs past {} KiB without a line break; expected a heading row such as 'telephoneNumber,accountName,...'",
                kib(cap)
            ),
        ),
        ReadError::LineTooLong { line, cap } => (
            line,
            None,
            format!(
                "the line runs past {} KiB without a line break; a row of a number sheet is a few hundred bytes",
                kib(cap)
            ),
        ),
        ReadError::FieldTooLong { line, field, len } => (
            line,
            Some(column_name(field, header)),
            format!(
                "the cell is {len} bytes long; at most {} KiB are allowed (no API field is longer than a few hundred characters)",
                kib(csvread::FIELD_CAP)
            ),
        ),
        ReadError::QuoteNotClosed { line, field } => (
            line,
            Some(column_name(field, header)),
            "a quote opens in this cell and is not closed on its line (a cell cannot hold a line break): add the closing quote, or remove the quote".into(),
        ),
        ReadError::NotUtf8 { line, field, bytes } => {
            (line, Some(column_name(field, header)), not_utf8(&bytes))
        }
        ReadError::QuoteClosedMidField { line, field } => (
            line,
            Some(column_name(field, header)),
            "text follows the closing quote of this cell (as in \"abc\"def): quote the whole cell and double any quote inside it (\"\")".into(),
        ),
    };
    SheetError::Undecodable {
        file,
        row,
        column,
        message,
    }
}

/// The first row with a value holds the headings.
fn grid_header(
    grid: &Grid,
    file: &str,
    options: &SheetOptions,
) -> Result<(HeaderMap, usize), SheetError> {
    let Some(first) = grid.rows.first() else {
        return Err(SheetError::Empty {
            file: file.to_owned(),
        });
    };
    let cells: Vec<String> = first.dense(0).into_iter().map(cell_text).collect();
    let header = HeaderMap::new(&cells, options.ignore_unknown_columns).map_err(|error| {
        SheetError::Headings {
            file: file.to_owned(),
            row: first.row as u64 + 1,
            error,
        }
    })?;
    Ok((header, 0))
}

/// Converts one grid row; `None` for a blank row.
fn grid_row(grid: &Grid, index: usize, header: &HeaderMap) -> Option<RawRow> {
    let source = grid.rows.get(index)?;
    let number_cells = [
        Column::TelephoneNumber,
        Column::RangeStart,
        Column::RangeEnd,
    ];
    let dense = source.dense(header.headings.len());
    let mut cells = StringRecord::with_capacity(64, dense.len());
    let mut notes = Vec::new();
    let mut blank = true;
    for (c, value) in dense.into_iter().enumerate() {
        let mut text = cell_text(value);
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
                    notes.push(CellNote::Numeric {
                        column,
                        original: text.clone(),
                    });
                    if !text.starts_with('-') && !text.contains('.') {
                        text.insert(0, '+');
                    }
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
        row: source.row as u64 + 1,
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
