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
pub mod heading;
pub mod input;
pub mod ods;
pub mod table;
pub mod xls;

use crate::text::excerpt;
pub use columns::{
    column_letters, Column, ColumnMapping, HeaderMap, HeadingError, Teams, TeamsField,
};
use csvread::{Layout, ReadError, RecordReader, Sniffed};
use grid::Grid;
use heading::{HeadingSearch, Offer};
pub use heading::{NoteKind, SheetNote};
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
    /// The heading row (1-based); found among the first rows when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_row: Option<u64>,
    /// Headings read under another name (`--map`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub map: Vec<ColumnMapping>,
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
    /// `--sheet all` or a list, and no sheet has a heading row.
    #[error("{file}: no sheet has a heading row: {}; give --header-row N, and --map 'HEADING=FIELD' for headings in your own words", tried.join("; "))]
    NoHeadingRow { file: String, tried: Vec<String> },
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
    /// The cell holds a spreadsheet error such as `#N/A`. `cell` is its
    /// zero-based column in its own sheet (the letter the user sees),
    /// `column` the known column it is under, if any.
    Error {
        cell: usize,
        column: Option<Column>,
        text: String,
    },
    /// `count` non-empty cells beyond the last heading of the row's sheet,
    /// the first in zero-based column `first`. Said by rows of several
    /// sheets read as one, whose cells are laid out under the headings of
    /// all of them; one sheet's rows keep such cells at their end.
    Extra { count: usize, first: usize },
    /// A number column held a date (Excel turns some digit strings into
    /// dates as they are typed).
    Date { column: Column, text: String },
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
    /// The row's sheet, when several sheets are read as one (`--sheet all`
    /// or a list); `None` otherwise.
    pub sheet: Option<Arc<str>>,
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

    /// The date `column`'s cell held, when it was a spreadsheet date.
    pub fn date_cell(&self, column: Column) -> Option<&str> {
        self.notes.iter().find_map(|note| match note {
            CellNote::Date { column: c, text } if *c == column => Some(text.as_str()),
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
    /// What to say once about how the sheet was read.
    pub notes: Vec<SheetNote>,
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
    /// Several sheets as one: `part` is the sheet being read, `next` the
    /// index of its next grid row.
    Parts {
        parts: Vec<Part>,
        part: usize,
        next: usize,
    },
}

/// One sheet of several read as one input.
struct Part {
    name: Arc<str>,
    grid: Grid,
    /// The sheet's own headings.
    header: HeaderMap,
    /// Index in `grid.rows` of the heading row.
    heading_index: usize,
    /// The `at` of `grid.rows[0]`: the sheets' rows are numbered one after
    /// another, so a [`RawRow::at`] finds its sheet and row.
    base: u64,
    /// The unified cell index of each of the sheet's cells under a known
    /// heading.
    remap: Vec<Option<usize>>,
}

/// Several sheets read as one: the sheets with a heading row, the heading
/// map of all of them, and what to say about how they were read.
struct Parts {
    parts: Vec<Part>,
    header: HeaderMap,
    notes: Vec<SheetNote>,
}

impl Parts {
    /// Finds each sheet's heading row and lays the sheets out under one
    /// heading map: every known column any of them has, in the export's
    /// order, under its portal heading. A sheet with no heading row (a
    /// "Read me") is passed over with a note; a sheet whose headings are
    /// wrong (a known heading, but a typo or a duplicate beside it) stops
    /// the read, as it would alone.
    fn open(
        sheets: Vec<(String, Grid)>,
        file: &str,
        options: &SheetOptions,
    ) -> Result<Parts, SheetError> {
        let mut parts = Vec::new();
        let mut notes = Vec::new();
        let mut tried = Vec::new();
        let mut base = 0u64;
        for (name, grid) in sheets {
            let name: Arc<str> = name.into();
            let place = format!("{file}, sheet '{}'", excerpt(&name));
            match grid_header(&grid, &place, options) {
                Ok((header, heading_index, sheet_notes)) => {
                    notes.extend(sheet_notes.into_iter().map(|note| SheetNote {
                        sheet: Some(name.clone()),
                        ..note
                    }));
                    let rows = grid.rows.len() as u64;
                    parts.push(Part {
                        name,
                        grid,
                        header,
                        heading_index,
                        base,
                        remap: Vec::new(),
                    });
                    base += rows;
                }
                Err(SheetError::Headings { .. } | SheetError::Empty { .. })
                    if !has_known_heading(&grid, options) =>
                {
                    let first = grid.rows.first().map(|row| {
                        let cells: Vec<String> = row
                            .dense(0)
                            .into_iter()
                            .map(cell_text)
                            .filter(|c| !c.trim().is_empty())
                            .collect();
                        (row.row as u64 + 1, excerpt(&cells.join(" | ")))
                    });
                    let (row, why) = match first {
                        Some((row, text)) => (row, format!("no heading row (first row: '{text}')")),
                        None => (0, "no cells".to_owned()),
                    };
                    tried.push(format!("'{}' has {why}", excerpt(&name)));
                    notes.push(SheetNote {
                        row,
                        kind: NoteKind::SheetSkipped,
                        message: format!("sheet '{}' has {why}: not read", excerpt(&name)),
                        sheet: Some(name),
                    });
                }
                Err(other) => return Err(other),
            }
        }
        if parts.is_empty() {
            return Err(SheetError::NoHeadingRow {
                file: file.to_owned(),
                tried,
            });
        }
        let columns: Vec<Column> = Column::all()
            .iter()
            .copied()
            .filter(|&c| parts.iter().any(|p| p.header.has(c)))
            .collect();
        let headings: Vec<String> = columns.iter().map(|c| c.heading()).collect();
        let mut header =
            HeaderMap::new(&headings, false).map_err(|error| SheetError::Headings {
                file: file.to_owned(),
                row: 0,
                error,
            })?;
        for part in &mut parts {
            part.remap = (0..part.header.headings.len())
                .map(|i| part.header.column_at(i).and_then(|c| header.position(c)))
                .collect();
            for ignored in &part.header.ignored {
                if !header.ignored.contains(ignored) {
                    header.ignored.push(ignored.clone());
                }
            }
            for mapped in &part.header.mapped {
                if !header.mapped.contains(mapped) {
                    header.mapped.push(mapped.clone());
                }
            }
        }
        Ok(Parts {
            parts,
            header,
            notes,
        })
    }

    /// The sheet whose rows include `at`.
    fn part_of(&self, at: u64) -> Option<&Part> {
        let index = self
            .parts
            .partition_point(|p| p.base <= at)
            .checked_sub(1)?;
        self.parts.get(index)
    }
}

impl Part {
    /// Row `index` of the sheet's grid, its cells laid out under the
    /// heading map of all the sheets (`width` headings); `None` for a blank
    /// row.
    fn row(&self, index: usize, width: usize) -> Option<RawRow> {
        let own = grid_row(&self.grid, index, &self.header)?;
        let own_width = self.header.headings.len();
        let mut cells = vec![""; width];
        for (cell, &to) in own.cells.iter().zip(&self.remap) {
            if let Some(to) = to {
                cells[to] = cell;
            }
        }
        let extra: Vec<usize> = (own_width..own.cells.len())
            .filter(|&i| !own.cells[i].trim().is_empty())
            .collect();
        let mut notes = own.notes;
        if let Some(&first) = extra.first() {
            notes.push(CellNote::Extra {
                count: extra.len(),
                first,
            });
        }
        Some(RawRow {
            row: own.row,
            at: self.base + index as u64,
            cells: StringRecord::from(cells),
            notes,
            sheet: Some(self.name.clone()),
        })
    }
}

/// Whether any row near the top of `grid` has a cell that is a known or
/// mapped heading: a sheet meant to be a number sheet, whose heading row
/// is wrong rather than absent.
fn has_known_heading(grid: &Grid, options: &SheetOptions) -> bool {
    let last = options.header_row.unwrap_or(0).max(heading::SEARCH_ROWS);
    grid.rows
        .iter()
        .take_while(|row| (row.row as u64) < last)
        .flat_map(|row| row.cells.iter())
        .any(|(_, value)| {
            let text = cell_text(value);
            let text = text.trim();
            Column::from_heading(text).is_some()
                || options
                    .map
                    .iter()
                    .any(|m| m.heading.eq_ignore_ascii_case(text))
        })
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
    /// Several sheets of a workbook (`--sheet all` or a list), by name.
    Grids { sheets: Vec<(String, Grid)> },
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
            return Ok(grid::open_grid(path, file, options, false)?.into());
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
            Ok(grid::open_grid(path, file, options, true)?.into())
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

impl From<grid::Picked> for Opened {
    fn from(picked: grid::Picked) -> Opened {
        match picked {
            grid::Picked::One(grid) => Opened::Grid { grid },
            grid::Picked::Several(sheets) => Opened::Grids { sheets },
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
                let (header, header_index, notes) = grid_header(&grid, &file, options)?;
                Ok(Sheet {
                    header_row: grid.rows[header_index].row as u64 + 1,
                    header: Arc::new(header),
                    notes,
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
            Opened::Grids { sheets } => {
                let Parts {
                    parts,
                    header,
                    notes,
                } = Parts::open(sheets, &file, options)?;
                let first = &parts[0];
                Ok(Sheet {
                    header_row: first.grid.rows[first.heading_index].row as u64 + 1,
                    header: Arc::new(header),
                    notes,
                    source: Source::Parts {
                        next: first.heading_index + 1,
                        parts,
                        part: 0,
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
                let mut search = HeadingSearch::new(options);
                let headings_error = |file: &str, row, error| SheetError::Headings {
                    file: file.to_owned(),
                    row,
                    error,
                };
                let (place, header) = loop {
                    let place = reader
                        .read(&mut headings, csvread::HEADING_LINE_CAP)
                        .map_err(|e| read_error(&file, e, None, true))?;
                    let Some(place) = place else {
                        if !search.saw_rows() {
                            return Err(SheetError::Empty { file });
                        }
                        match search.failed() {
                            Offer::Failed(row, error) => {
                                return Err(headings_error(&file, row, error))
                            }
                            _ => unreachable!("failed() fails"),
                        }
                    };
                    if !is_blank(&headings) {
                        let cells: Vec<&str> = headings.iter().collect();
                        match search.offer(place.line, &cells) {
                            Offer::Found(header) => break (place, header),
                            Offer::Failed(row, error) => {
                                return Err(headings_error(&file, row, error))
                            }
                            Offer::Next => {}
                        }
                    }
                };
                let notes = search.notes(place.line, &header);
                Ok(Sheet {
                    file,
                    header: Arc::new(header),
                    notes,
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

    /// Whether several sheets are read as one (`--sheet all` or a list):
    /// then every row and finding names its sheet.
    pub fn several_sheets(&self) -> bool {
        matches!(self.source, Source::Parts { .. })
    }

    /// Where each sheet read starts, when several are: the `at` of its
    /// first row (rows are numbered across the sheets one after another)
    /// and its name, in order. Empty for one sheet.
    pub fn sheet_starts(&self) -> Vec<(u64, Arc<str>)> {
        match &self.source {
            Source::Parts { parts, .. } => parts.iter().map(|p| (p.base, p.name.clone())).collect(),
            _ => Vec::new(),
        }
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
                Source::Parts { parts, part, next } => {
                    let Some(current) = parts.get(*part) else {
                        break;
                    };
                    if *next >= current.grid.rows.len() {
                        *part += 1;
                        if let Some(following) = parts.get(*part) {
                            *next = following.heading_index + 1;
                        }
                        continue;
                    }
                    let index = *next;
                    *next += 1;
                    match current.row(index, self.header.headings.len()) {
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
    Parts(Parts),
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
            // The same file read the same way finds the same sheets and
            // headings, so `at` finds the same rows.
            Opened::Grids { sheets } => RandomSource::Parts(Parts::open(sheets, &file, options)?),
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
                        sheet: None,
                    }),
                    _ => Err(changed(&self.file, "row not found")),
                }
            }
            RandomSource::Grid(grid) => grid_row(grid, at as usize, &self.header)
                .ok_or_else(|| changed(&self.file, "row is empty")),
            RandomSource::Parts(parts) => parts
                .part_of(at)
                .filter(|part| at - part.base > part.heading_index as u64)
                .and_then(|part| part.row((at - part.base) as usize, self.header.headings.len()))
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

/// The heading row of a grid (see [`heading`]): its map, its index in
/// `grid.rows`, and the notes on how it was found.
fn grid_header(
    grid: &Grid,
    file: &str,
    options: &SheetOptions,
) -> Result<(HeaderMap, usize, Vec<SheetNote>), SheetError> {
    if grid.rows.is_empty() {
        return Err(SheetError::Empty {
            file: file.to_owned(),
        });
    }
    let mut search = HeadingSearch::new(options);
    let mut offer = Offer::Next;
    for (index, row) in grid.rows.iter().enumerate() {
        let cells: Vec<String> = row.dense(0).into_iter().map(cell_text).collect();
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let number = row.row as u64 + 1;
        offer = search.offer(number, &cells);
        match offer {
            Offer::Found(header) => {
                let notes = search.notes(number, &header);
                return Ok((header, index, notes));
            }
            Offer::Failed(..) => break,
            Offer::Next => {}
        }
    }
    if let Offer::Next = offer {
        offer = search.failed();
    }
    match offer {
        Offer::Failed(row, error) => Err(SheetError::Headings {
            file: file.to_owned(),
            row,
            error,
        }),
        _ => unreachable!("the loop returns when it finds the headings"),
    }
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
        let text = cell_text(value);
        match value {
            Data::Error(e) => notes.push(CellNote::Error {
                cell: c,
                column: header.column_at(c),
                text: e.to_string(),
            }),
            Data::DateTime(_) | Data::DateTimeIso(_) => {
                if let Some(&column) = number_cells
                    .iter()
                    .find(|&&col| header.position(col) == Some(c))
                {
                    notes.push(CellNote::Date {
                        column,
                        text: text.clone(),
                    });
                }
            }
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
        row: source.row as u64 + 1,
        at: index as u64,
        cells,
        notes,
        sheet: None,
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
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(0))?;
    let mut hasher = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
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
    Ok(format!("{size}:{}", hex::encode(hasher.finish())))
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
