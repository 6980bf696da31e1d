//! Every workbook acgbulk writes goes through [`WorkbookWriter`]: tables
//! whose heading row is bold, frozen and filtered, columns as wide as their
//! content (up to [`MAX_COLUMN_WIDTH`]), text kept as text (a `+44…` number
//! stays a string), and rows streamed in constant memory so a million-row
//! results file costs no more memory than ten. A results or report workbook
//! opens on a [`Summary`] sheet.
//!
//! A table longer than Excel's 1,048,576 rows goes on in a sheet of the same
//! name numbered `(2)`, `(3)`, … with the same headings.

use rust_xlsxwriter::{utility::cell_autofit_width, Color, Format, Workbook, XlsxError};
use std::fs::File;
use std::io;
use std::path::Path;

/// The widest a column is made, in characters (Excel's unit).
pub const MAX_COLUMN_WIDTH: u32 = 60;

/// Rows a sheet holds, heading included.
const EXCEL_ROWS: u32 = 1_048_576;

/// Excel's longest sheet name.
const MAX_SHEET_NAME: usize = 31;

/// Pixels of a column `chars` characters wide (Excel's default font).
fn pixels(chars: u32) -> u32 {
    chars * 7 + 5
}

/// The filter button beside a filtered heading.
const FILTER_BUTTON_PIXELS: u32 = 16;

/// One cell of a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// Written as a string cell, whatever it looks like.
    Text(&'a str),
    Number(f64),
    Bool(bool),
}

impl Cell<'_> {
    fn is_empty(&self) -> bool {
        matches!(self, Cell::Text(t) if t.is_empty())
    }
}

/// Which table of a workbook (from [`WorkbookWriter::add_table`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableId(usize);

/// A table being streamed: its current sheet and where the next row goes.
#[derive(Default)]
struct Table {
    name: String,
    headings: Vec<String>,
    sheet: usize,
    /// Sheets the table has filled so far (1 until it outgrows one).
    part: u32,
    next_row: u32,
    /// Widest cell seen per column, in pixels, capped.
    widths: Vec<u32>,
}

/// A value of the Summary sheet.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Count(u64),
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Text(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Value::Text(text)
    }
}

impl From<u64> for Value {
    fn from(count: u64) -> Self {
        Value::Count(count)
    }
}

/// One block of the Summary sheet: a bold heading row and rows of a name
/// and its values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Block {
    pub headings: Vec<String>,
    pub rows: Vec<(String, Vec<Value>)>,
}

impl Block {
    pub fn new(headings: &[&str]) -> Block {
        Block {
            headings: headings.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, name: impl Into<String>, values: Vec<Value>) -> &mut Block {
        self.rows.push((name.into(), values));
        self
    }
}

/// The sheet a results or report workbook opens on: blocks one under
/// another (counts, then the run's settings and times).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub blocks: Vec<Block>,
}

/// A workbook of streamed tables and, optionally, a Summary sheet first.
pub struct WorkbookWriter {
    workbook: Workbook,
    heading: Format,
    highlight: Format,
    tables: Vec<Table>,
    /// The Summary sheet's index, when the workbook has one.
    summary: Option<usize>,
    sheets: usize,
}

fn xlsx_error(e: XlsxError) -> io::Error {
    match e {
        XlsxError::IoError(e) => e,
        other => io::Error::other(other),
    }
}

impl Default for WorkbookWriter {
    fn default() -> Self {
        WorkbookWriter::new()
    }
}

impl WorkbookWriter {
    /// A workbook of tables only.
    pub fn new() -> WorkbookWriter {
        WorkbookWriter {
            workbook: Workbook::new(),
            heading: Format::new().set_bold(),
            // Excel's own "Bad" cell style.
            highlight: Format::new()
                .set_background_color(Color::RGB(0xFFC7CE))
                .set_font_color(Color::RGB(0x9C0006)),
            tables: Vec::new(),
            summary: None,
            sheets: 0,
        }
    }

    /// A workbook that opens on a sheet named Summary (filled by
    /// [`WorkbookWriter::set_summary`]) before its tables.
    pub fn with_summary() -> io::Result<WorkbookWriter> {
        let mut writer = WorkbookWriter::new();
        writer
            .workbook
            .add_worksheet()
            .set_name("Summary")
            .map_err(xlsx_error)?;
        writer.summary = Some(0);
        writer.sheets = 1;
        Ok(writer)
    }

    /// Adds a table named `name` (its sheet's name) under `headings`.
    pub fn add_table<S: AsRef<str>>(&mut self, name: &str, headings: &[S]) -> io::Result<TableId> {
        let mut table = Table {
            name: name.to_owned(),
            headings: headings.iter().map(|h| h.as_ref().to_owned()).collect(),
            sheet: 0,
            part: 1,
            next_row: 0,
            widths: vec![0; headings.len()],
        };
        self.open_sheet(&mut table, name)?;
        self.tables.push(table);
        Ok(TableId(self.tables.len() - 1))
    }

    /// Starts a sheet for `table`, with its heading row frozen.
    fn open_sheet(&mut self, table: &mut Table, sheet_name: &str) -> io::Result<()> {
        let sheet = self
            .workbook
            .add_worksheet_with_constant_memory()
            .map_err(xlsx_error)?;
        sheet.set_name(sheet_name).map_err(xlsx_error)?;
        sheet.set_freeze_panes(1, 0).map_err(xlsx_error)?;
        for (c, heading) in table.headings.iter().enumerate() {
            sheet
                .write_string_with_format(0, c as u16, heading, &self.heading)
                .map_err(xlsx_error)?;
            let width = bold_width(heading) + FILTER_BUTTON_PIXELS;
            table.widths[c] = table.widths[c].max(width.min(pixels(MAX_COLUMN_WIDTH)));
        }
        table.sheet = self.sheets;
        table.next_row = 1;
        self.sheets += 1;
        Ok(())
    }

    /// Writes a row of `table`; `highlight` fills it (a failed or invalid
    /// row). Cells past the headings are an error.
    pub fn write_row<'c>(
        &mut self,
        id: TableId,
        cells: impl IntoIterator<Item = Cell<'c>>,
        highlight: bool,
    ) -> io::Result<()> {
        // Out while its row is written, as a new sheet may be opened for it.
        let mut table = std::mem::take(&mut self.tables[id.0]);
        let written = self.write_row_of(&mut table, cells, highlight);
        self.tables[id.0] = table;
        written
    }

    fn write_row_of<'c>(
        &mut self,
        table: &mut Table,
        cells: impl IntoIterator<Item = Cell<'c>>,
        highlight: bool,
    ) -> io::Result<()> {
        if table.next_row == EXCEL_ROWS {
            self.close_sheet(table)?;
            table.part += 1;
            let name = continued_name(&table.name, table.part);
            self.open_sheet(table, &name)?;
        }
        let r = table.next_row;
        let format = highlight.then_some(&self.highlight);
        let sheet = self
            .workbook
            .worksheet_from_index(table.sheet)
            .map_err(xlsx_error)?;
        let mut columns = 0;
        for (c, cell) in cells.into_iter().enumerate() {
            if c >= table.widths.len() {
                return Err(io::Error::other(format!(
                    "a row of sheet {} has more cells than its {} headings",
                    table.name,
                    table.widths.len()
                )));
            }
            columns = c + 1;
            let col = c as u16;
            let width = &mut table.widths[c];
            match (cell, format) {
                (cell, None) if cell.is_empty() => continue,
                (cell, Some(format)) if cell.is_empty() => {
                    sheet.write_blank(r, col, format).map_err(xlsx_error)?;
                    continue;
                }
                (Cell::Text(text), format) => {
                    if *width < pixels(MAX_COLUMN_WIDTH) {
                        *width = (*width).max(cell_autofit_width(text));
                    }
                    match format {
                        Some(format) => sheet.write_string_with_format(r, col, text, format),
                        None => sheet.write_string(r, col, text),
                    }
                    .map_err(xlsx_error)?;
                }
                (Cell::Number(number), format) => {
                    *width = (*width).max(cell_autofit_width(&number.to_string()));
                    match format {
                        Some(format) => sheet.write_number_with_format(r, col, number, format),
                        None => sheet.write_number(r, col, number),
                    }
                    .map_err(xlsx_error)?;
                }
                (Cell::Bool(value), format) => {
                    *width = (*width).max(cell_autofit_width("FALSE"));
                    match format {
                        Some(format) => sheet.write_boolean_with_format(r, col, value, format),
                        None => sheet.write_boolean(r, col, value),
                    }
                    .map_err(xlsx_error)?;
                }
            }
            *width = (*width).min(pixels(MAX_COLUMN_WIDTH));
        }
        // A highlighted row is filled across, short or not.
        if let Some(format) = format {
            for c in columns..table.widths.len() {
                sheet.write_blank(r, c as u16, format).map_err(xlsx_error)?;
            }
        }
        table.next_row += 1;
        Ok(())
    }

    /// Writes a row of text cells.
    pub fn write_text_row<S: AsRef<str>>(
        &mut self,
        id: TableId,
        cells: &[S],
        highlight: bool,
    ) -> io::Result<()> {
        self.write_row(id, cells.iter().map(|c| Cell::Text(c.as_ref())), highlight)
    }

    /// Rows written to `table` so far, headings not counted.
    pub fn rows(&self, id: TableId) -> u64 {
        let table = &self.tables[id.0];
        (table.part as u64 - 1) * (EXCEL_ROWS as u64 - 1) + table.next_row as u64 - 1
    }

    /// Sets the widths and the filter of a table's current sheet.
    fn close_sheet(&mut self, table: &Table) -> io::Result<()> {
        let sheet = self
            .workbook
            .worksheet_from_index(table.sheet)
            .map_err(xlsx_error)?;
        for (c, &width) in table.widths.iter().enumerate() {
            sheet
                .set_column_width_pixels(c as u16, width)
                .map_err(xlsx_error)?;
        }
        let last_col = table.widths.len().saturating_sub(1) as u16;
        sheet
            .autofilter(0, 0, table.next_row - 1, last_col)
            .map_err(xlsx_error)?;
        Ok(())
    }

    /// Fills the Summary sheet (of a workbook made
    /// [`WorkbookWriter::with_summary`]).
    pub fn set_summary(&mut self, summary: &Summary) -> io::Result<()> {
        let Some(index) = self.summary else {
            return Err(io::Error::other("this workbook has no Summary sheet"));
        };
        let sheet = self
            .workbook
            .worksheet_from_index(index)
            .map_err(xlsx_error)?;
        let mut widths: Vec<u32> = Vec::new();
        let mut widen = |c: usize, width: u32| {
            if widths.len() <= c {
                widths.resize(c + 1, 0);
            }
            widths[c] = widths[c].max(width.min(pixels(MAX_COLUMN_WIDTH)));
        };
        let mut r = 0u32;
        for block in &summary.blocks {
            for (c, heading) in block.headings.iter().enumerate() {
                sheet
                    .write_string_with_format(r, c as u16, heading, &self.heading)
                    .map_err(xlsx_error)?;
                widen(c, bold_width(heading));
            }
            r += 1;
            for (name, values) in &block.rows {
                sheet.write_string(r, 0, name).map_err(xlsx_error)?;
                widen(0, cell_autofit_width(name));
                for (c, value) in values.iter().enumerate() {
                    let col = c as u16 + 1;
                    match value {
                        Value::Text(text) => {
                            sheet.write_string(r, col, text).map_err(xlsx_error)?;
                            widen(c + 1, cell_autofit_width(text));
                        }
                        Value::Count(count) => {
                            sheet
                                .write_number(r, col, *count as f64)
                                .map_err(xlsx_error)?;
                            widen(c + 1, cell_autofit_width(&count.to_string()));
                        }
                    }
                }
                r += 1;
            }
            // A blank row between blocks.
            r += 1;
        }
        for (c, &width) in widths.iter().enumerate() {
            sheet
                .set_column_width_pixels(c as u16, width)
                .map_err(xlsx_error)?;
        }
        Ok(())
    }

    /// Writes the workbook to `path` and makes it durable.
    pub fn save(mut self, path: &Path) -> io::Result<()> {
        let tables = std::mem::take(&mut self.tables);
        for table in &tables {
            self.close_sheet(table)?;
        }
        self.workbook.save(path).map_err(xlsx_error)?;
        File::open(path)?.sync_all()
    }
}

/// A bold heading is about a tenth wider than the same text plain.
fn bold_width(text: &str) -> u32 {
    cell_autofit_width(text) * 11 / 10
}

/// The name of a table's `part`th sheet: `Numbers (2)`, cut to fit
/// Excel's 31 characters.
fn continued_name(name: &str, part: u32) -> String {
    let suffix = format!(" ({part})");
    let keep = MAX_SHEET_NAME - suffix.len();
    let cut: String = name.chars().take(keep).collect();
    format!("{cut}{suffix}")
}

/// Whether `path` names an Excel workbook (ends in `.xlsx`, any case).
pub fn is_xlsx(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xlsx"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::{Data, Reader};

    #[test]
    fn tables_keep_text_and_summary_comes_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.xlsx");
        let mut book = WorkbookWriter::with_summary().unwrap();
        let table = book
            .add_table("Numbers", &["telephoneNumber", "n"])
            .unwrap();
        book.write_row(
            table,
            [Cell::Text("+442079460001"), Cell::Number(3.0)],
            false,
        )
        .unwrap();
        book.write_text_row(table, &["+442079460002", ""], true)
            .unwrap();
        let mut summary = Summary::default();
        summary.blocks.push(Block::new(&["Outcome", "Numbers"]));
        summary.blocks[0].row("ok", vec![Value::Count(2)]);
        book.set_summary(&summary).unwrap();
        assert_eq!(book.rows(table), 2);
        book.save(&path).unwrap();

        let mut workbook = calamine::open_workbook_auto(&path).unwrap();
        assert_eq!(workbook.sheet_names(), ["Summary", "Numbers"]);
        let numbers = workbook.worksheet_range("Numbers").unwrap();
        assert_eq!(
            numbers.get_value((1, 0)),
            Some(&Data::String("+442079460001".into()))
        );
        assert_eq!(numbers.get_value((1, 1)), Some(&Data::Float(3.0)));
        let summary = workbook.worksheet_range("Summary").unwrap();
        assert_eq!(summary.get_value((1, 1)), Some(&Data::Float(2.0)));
    }

    #[test]
    fn continued_sheet_names_fit() {
        assert_eq!(continued_name("Numbers", 2), "Numbers (2)");
        assert_eq!(continued_name(&"x".repeat(40), 12).len(), 31);
    }
}
