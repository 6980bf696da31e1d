//! OpenDocument spreadsheets (.ods), streamed.
//!
//! calamine 0.38 parses every sheet of an .ods when the file is opened and
//! lays each out as a dense range: rows and cells that
//! `table:number-rows-repeated` / `table:number-columns-repeated` repeat are
//! expanded, empty ones included, up to the last value. One stray value at
//! row 1,000,000 of a ten-column sheet costs ten million cells, about 1.5 GB
//! with the formula range beside it and the copy `worksheet_range` returns;
//! its cap (100 million cells) still lets a few hundred bytes of XML ask for
//! gigabytes. So `content.xml` is read here as it is unzipped, with quick-xml
//! as calamine does, and only the cells of the picked sheets that hold a
//! value are kept: memory follows the data, as it does for xlsx ([`super::grid`]).
//! Values are read as calamine reads them, into the same [`Data`].

use super::grid::{self, Grid, GridRow, FAR_COLUMNS};
use super::{column_letters, SheetError};
use crate::text::excerpt;
use calamine::Data;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::QName;
use std::io::{BufReader, Read, Seek};
use zip::ZipArchive;

const MIMETYPE: &[u8] = b"application/vnd.oasis.opendocument.spreadsheet";

/// The most rows and columns a sheet can have (as in Excel and LibreOffice).
const MAX_ROWS: u64 = 1_048_576;
const MAX_COLUMNS: u64 = 16_384;

/// How many cells the repeat attributes may add to a sheet beyond the cells
/// written out: a million, and a few for each value written. An identical
/// row or cell is written once with a count, so a few bytes can stand for
/// millions of values; a number sheet repeats little (its rows differ by
/// their numbers), a cell or two a row.
pub const REPEATED_CELLS: u64 = 1_000_000;
pub const REPEATED_PER_WRITTEN: u64 = 8;

type Xml<'a, R> = quick_xml::Reader<BufReader<zip::read::ZipFile<'a, R>>>;

/// Whether `reader` holds an OpenDocument spreadsheet (a zip whose
/// `mimetype` says so).
pub fn is_ods<R: Read + Seek>(reader: R) -> bool {
    let Ok(mut zip) = ZipArchive::new(reader) else {
        return false;
    };
    let Ok(entry) = zip.by_name("mimetype") else {
        return false;
    };
    let mut mimetype = Vec::new();
    entry.take(64).read_to_end(&mut mimetype).is_ok() && mimetype.starts_with(MIMETYPE)
}

/// Reads the sheets `wanted` names (the first when `None`) of the .ods in
/// `reader`, each with its name, in the order of `wanted`; `several` when
/// they are read as one input (messages then name the sheet).
pub fn read_sheets<R: Read + Seek>(
    reader: R,
    file: &str,
    wanted: Option<&[String]>,
    several: bool,
) -> Result<Vec<(String, Grid)>, SheetError> {
    let mut zip = open(reader, file)?;
    let mut xml = content(&mut zip, file)?;
    let mut read: Vec<(String, Grid)> = Vec::new();
    let mut buf = Vec::new();
    loop {
        let event = xml
            .read_event_into(&mut buf)
            .map_err(|e| xml_err(file, e))?;
        match event {
            Event::Start(e) if e.name() == QName("table:table") => {
                let name = attr(&e, "table:name", file)?.unwrap_or_default();
                let end = e.to_end().into_owned();
                let take = match wanted {
                    None => true,
                    Some(names) => names.contains(&name) && !read.iter().any(|(n, _)| *n == name),
                };
                if take {
                    // Several sheets read as one: say which the cell is on.
                    let grid = read_table(&mut xml, file).map_err(|e| match several {
                        true => grid::in_sheet(e, &name),
                        false => e,
                    })?;
                    read.push((name, grid));
                    if wanted.is_none_or(|names| read.len() == names.len()) {
                        break;
                    }
                } else {
                    let mut skip = Vec::new();
                    xml.read_to_end_into(end.name(), &mut skip)
                        .map_err(|e| xml_err(file, e))?;
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if let Some(names) = wanted {
        read.sort_by_key(|(name, _)| names.iter().position(|n| n == name));
    }
    Ok(read)
}

/// The names of the sheets, in workbook order.
pub fn sheet_names<R: Read + Seek>(reader: R, file: &str) -> Result<Vec<String>, SheetError> {
    let mut zip = open(reader, file)?;
    let mut xml = content(&mut zip, file)?;
    let mut names = Vec::new();
    let mut buf = Vec::new();
    loop {
        match xml
            .read_event_into(&mut buf)
            .map_err(|e| xml_err(file, e))?
        {
            Event::Start(e) if e.name() == QName("table:table") => {
                names.push(attr(&e, "table:name", file)?.unwrap_or_default());
                let end = e.to_end().into_owned();
                let mut skip = Vec::new();
                xml.read_to_end_into(end.name(), &mut skip)
                    .map_err(|e| xml_err(file, e))?;
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(names)
}

fn unreadable(file: &str, message: impl std::fmt::Display) -> SheetError {
    SheetError::Spreadsheet {
        file: file.to_owned(),
        message: message.to_string(),
    }
}

/// An error of the XML or zip reader, which may quote the file: quoted short.
fn xml_err(file: &str, e: impl std::fmt::Display) -> SheetError {
    unreadable(file, format!("content.xml: {}", excerpt(&e.to_string())))
}

fn open<R: Read + Seek>(reader: R, file: &str) -> Result<ZipArchive<R>, SheetError> {
    let mut zip = ZipArchive::new(reader).map_err(|e| unreadable(file, excerpt(&e.to_string())))?;
    let mut mimetype = Vec::new();
    if let Ok(entry) = zip.by_name("mimetype") {
        entry
            .take(64)
            .read_to_end(&mut mimetype)
            .map_err(|e| unreadable(file, excerpt(&e.to_string())))?;
    }
    if !mimetype.starts_with(MIMETYPE) {
        return Err(unreadable(
            file,
            "not an OpenDocument spreadsheet (its 'mimetype' entry is missing or names another kind of file)",
        ));
    }
    if encrypted(&mut zip, file)? {
        return Err(unreadable(
            file,
            "the workbook is password protected; save a copy without a password, or as CSV, and try again",
        ));
    }
    Ok(zip)
}

/// Whether the manifest says the parts are encrypted (calamine's test).
fn encrypted<R: Read + Seek>(zip: &mut ZipArchive<R>, file: &str) -> Result<bool, SheetError> {
    let Ok(manifest) = zip.by_name("META-INF/manifest.xml") else {
        return Ok(false);
    };
    let mut xml = quick_xml::Reader::from_reader(BufReader::new(manifest));
    let mut buf = Vec::new();
    loop {
        match xml
            .read_event_into(&mut buf)
            .map_err(|e| xml_err(file, e))?
        {
            Event::Start(e) | Event::Empty(e) if e.name() == QName("manifest:encryption-data") => {
                return Ok(true)
            }
            Event::Eof => return Ok(false),
            _ => {}
        }
        buf.clear();
    }
}

fn content<'a, R: Read + Seek>(
    zip: &'a mut ZipArchive<R>,
    file: &str,
) -> Result<Xml<'a, R>, SheetError> {
    let entry = zip.by_name("content.xml").map_err(|e| match e {
        zip::result::ZipError::FileNotFound => {
            unreadable(file, "the workbook has no 'content.xml' (its sheets)")
        }
        other => unreadable(file, excerpt(&other.to_string())),
    })?;
    let mut xml = quick_xml::Reader::from_reader(BufReader::with_capacity(64 * 1024, entry));
    let config = xml.config_mut();
    config.check_end_names = false;
    config.trim_text(false);
    config.check_comments = false;
    config.expand_empty_elements = true;
    Ok(xml)
}

fn attr(e: &BytesStart<'_>, name: &str, file: &str) -> Result<Option<String>, SheetError> {
    match e.try_get_attribute(name).map_err(|e| xml_err(file, e))? {
        Some(a) => Ok(Some(
            quick_xml::escape::unescape(&a.value)
                .map_err(|e| xml_err(file, e))?
                .into_owned(),
        )),
        None => Ok(None),
    }
}

/// A repeat count; `what` names the attribute for the message.
fn repeats(e: &BytesStart<'_>, what: &str, file: &str, at: &str) -> Result<u64, SheetError> {
    match attr(e, what, file)? {
        None => Ok(1),
        Some(text) => text.trim().parse::<u64>().map_err(|_| {
            unreadable(
                file,
                format!("cell {at}: {what}=\"{}\" is not a count", excerpt(&text)),
            )
        }),
    }
}

fn cell_name(row: u64, col: u64) -> String {
    format!("{}{}", column_letters(col as usize), row + 1)
}

/// What the sheet's rows have cost so far, for the cap on repeats.
#[derive(Default)]
struct Budget {
    /// Cells with a value, as written in the file.
    written: u64,
    /// Cells added by repeat counts beyond the ones written.
    repeated: u64,
}

impl Budget {
    fn repeat(&mut self, cells: u64, file: &str, row: u64, col: u64) -> Result<(), SheetError> {
        self.repeated = self.repeated.saturating_add(cells);
        let allowed =
            REPEATED_CELLS.saturating_add(self.written.saturating_mul(REPEATED_PER_WRITTEN));
        if self.repeated > allowed {
            return Err(SheetError::FarCell {
                file: file.to_owned(),
                cell: cell_name(row, col),
                detail: format!(
                    "repeats a row or value (table:number-rows-repeated, table:number-columns-repeated) into more than {allowed} cells beyond the {} the file writes out, far more than a number sheet holds; delete the repeated cells, or save the sheet as CSV, and try again",
                    self.written
                ),
            });
        }
        Ok(())
    }
}

/// Reads one `table:table` (its start already read) to its end.
fn read_table<R: Read + Seek>(xml: &mut Xml<'_, R>, file: &str) -> Result<Grid, SheetError> {
    let mut rows: Vec<GridRow> = Vec::new();
    let mut row: u64 = 0;
    let mut budget = Budget::default();
    let mut buf = Vec::new();
    let mut row_buf = Vec::new();
    loop {
        let event = xml
            .read_event_into(&mut buf)
            .map_err(|e| xml_err(file, e))?;
        match event {
            Event::Start(e) if e.name() == QName("table:table-row") => {
                let at = cell_name(row, 0);
                let times = repeats(&e, "table:number-rows-repeated", file, &at)?;
                // Right of the headings' last value by this much is far;
                // until the headings are read, the sheet's last column.
                let limit = rows
                    .first()
                    .map_or(MAX_COLUMNS, |r| r.width() as u64 + u64::from(FAR_COLUMNS));
                let (cells, far) = read_row(xml, &mut row_buf, file, row, limit, &mut budget)?;
                if !cells.is_empty() {
                    if row >= MAX_ROWS {
                        return Err(beyond_the_sheet(file, row, cells[0].0));
                    }
                    let cells: Vec<(u32, Data)> =
                        cells.into_iter().map(|(c, v)| (c as u32, v)).collect();
                    // A far value ends the reading: the sheet is refused
                    // by `grid::finish`, which names it.
                    let times = if far { 1 } else { times };
                    for copy in 0..times {
                        let at_row = row + copy;
                        if at_row >= MAX_ROWS {
                            return Err(beyond_the_sheet(file, at_row, u64::from(cells[0].0)));
                        }
                        if copy > 0 {
                            budget.repeat(cells.len() as u64, file, at_row, 0)?;
                        }
                        rows.push(GridRow {
                            row: at_row as u32,
                            cells: cells.clone(),
                        });
                    }
                    if far {
                        break;
                    }
                }
                row = row.saturating_add(times);
            }
            Event::End(e) if e.name() == QName("table:table") => break,
            Event::Eof => return Err(xml_err(file, "the file ends inside a sheet")),
            _ => {}
        }
        buf.clear();
    }
    grid::finish(rows, file)
}

fn beyond_the_sheet(file: &str, row: u64, col: u64) -> SheetError {
    SheetError::FarCell {
        file: file.to_owned(),
        cell: cell_name(row.min(u64::from(u32::MAX)), col),
        detail: format!(
            "holds a value beyond the last row or column a sheet can have ({}{MAX_ROWS}); delete it, or save the sheet as CSV, and try again",
            column_letters(MAX_COLUMNS as usize - 1)
        ),
    }
}

/// Reads one `table:table-row` (its start already read) to its end: the
/// cells with a value, by zero-based column. A value at or right of
/// `limit` is kept, alone, and ends the row (`true`): the caller stops.
fn read_row<R: Read + Seek>(
    xml: &mut Xml<'_, R>,
    buf: &mut Vec<u8>,
    file: &str,
    row: u64,
    limit: u64,
    budget: &mut Budget,
) -> Result<(Vec<(u64, Data)>, bool), SheetError> {
    let mut cells: Vec<(u64, Data)> = Vec::new();
    let mut col: u64 = 0;
    let mut text = Vec::new();
    loop {
        buf.clear();
        let event = xml.read_event_into(buf).map_err(|e| xml_err(file, e))?;
        match event {
            Event::Start(e)
                if e.name() == QName("table:table-cell")
                    || e.name() == QName("table:covered-table-cell") =>
            {
                let at = cell_name(row, col);
                let times = repeats(&e, "table:number-columns-repeated", file, &at)?;
                let e = e.into_owned();
                let value = cell_value(xml, &e, &mut text, file, &at)?;
                if !matches!(value, Data::Empty) {
                    budget.written += 1;
                    for copy in 0..times {
                        let c = col.saturating_add(copy);
                        if c >= MAX_COLUMNS {
                            return Err(beyond_the_sheet(file, row, c));
                        }
                        if c >= limit {
                            cells.push((c, value));
                            let mut skip = Vec::new();
                            xml.read_to_end_into(QName("table:table-row"), &mut skip)
                                .map_err(|e| xml_err(file, e))?;
                            return Ok((cells, true));
                        }
                        if copy > 0 {
                            budget.repeat(1, file, row, c)?;
                        }
                        cells.push((c, value.clone()));
                    }
                }
                col = col.saturating_add(times);
            }
            Event::End(e) if e.name() == QName("table:table-row") => break,
            Event::Eof => return Err(xml_err(file, "the file ends inside a row")),
            _ => {}
        }
    }
    Ok((cells, false))
}

/// The value of the cell `e` starts, read as calamine's `get_datatype` reads
/// it; the cell is read to its end.
fn cell_value<R: Read + Seek>(
    xml: &mut Xml<'_, R>,
    e: &BytesStart<'_>,
    buf: &mut Vec<u8>,
    file: &str,
    at: &str,
) -> Result<Data, SheetError> {
    let mut is_string = false;
    let mut is_error = false;
    let mut value: Option<Data> = None;
    for a in e.attributes().with_checks(false) {
        let a = a.map_err(|e| xml_err(file, e))?;
        let key = a.key.0;
        let text = || {
            quick_xml::escape::unescape(&a.value)
                .map(|v| v.into_owned())
                .map_err(|e| xml_err(file, e))
        };
        match key {
            "office:value" if value.is_none() => {
                let raw = text()?;
                let number = raw.trim().parse::<f64>().map_err(|_| {
                    unreadable(
                        file,
                        format!(
                            "cell {at}: office:value=\"{}\" is not a number",
                            excerpt(&raw)
                        ),
                    )
                })?;
                value = Some(Data::Float(number));
            }
            "office:string-value" if value.is_none() => value = Some(Data::String(text()?)),
            "office:date-value" if value.is_none() => value = Some(Data::DateTimeIso(text()?)),
            "office:time-value" if value.is_none() => value = Some(Data::DurationIso(text()?)),
            "office:boolean-value" if value.is_none() => {
                let raw = text()?;
                value = Some(Data::Bool(raw == "true" || raw == "TRUE"));
            }
            "office:value-type" if value.is_none() => is_string = a.value == "string",
            "calcext:value-type" => is_error = a.value == "error",
            _ => {}
        }
    }
    let empty_string = matches!(&value, Some(Data::String(s)) if s.is_empty());
    if (value.is_none() && is_string) || (is_error && empty_string) {
        // The text of the cell is its value: paragraphs joined by line
        // breaks, notes left out.
        return cell_text(xml, buf, file).map(Data::String);
    }
    buf.clear();
    xml.read_to_end_into(e.name(), buf)
        .map_err(|e| xml_err(file, e))?;
    Ok(value.unwrap_or(Data::Empty))
}

/// The most a cell's text may be (as a CSV field): `text:s` counts cannot
/// make a cell of gigabytes.
const MAX_CELL_TEXT: usize = 64 * 1024;

fn cell_text<R: Read + Seek>(
    xml: &mut Xml<'_, R>,
    buf: &mut Vec<u8>,
    file: &str,
) -> Result<String, SheetError> {
    let mut s = String::new();
    let mut first_paragraph = true;
    let mut note_depth = 0usize;
    loop {
        buf.clear();
        let event = xml.read_event_into(buf).map_err(|e| xml_err(file, e))?;
        match event {
            Event::End(e)
                if e.name() == QName("table:table-cell")
                    || e.name() == QName("table:covered-table-cell") =>
            {
                return Ok(s);
            }
            Event::Start(e) if e.name() == QName("office:annotation") => note_depth += 1,
            Event::End(e) if e.name() == QName("office:annotation") => {
                note_depth = note_depth.saturating_sub(1)
            }
            _ if note_depth > 0 => {}
            Event::Text(t) => s.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let name: &str = &r;
                if let Some(known) = quick_xml::escape::resolve_xml_entity(name) {
                    s.push_str(known);
                } else if let Some(c) = r.resolve_char_ref().map_err(|e| xml_err(file, e))? {
                    s.push(c);
                } else {
                    return Err(xml_err(file, format!("unknown entity &{};", excerpt(name))));
                }
            }
            Event::Start(e) if e.name() == QName("text:p") => {
                if !first_paragraph {
                    s.push('\n');
                }
                first_paragraph = false;
            }
            Event::Start(e) if e.name() == QName("text:s") => {
                let count = match attr(&e, "text:c", file)? {
                    Some(c) => c.trim().parse::<usize>().unwrap_or(1),
                    None => 1,
                };
                let room = (MAX_CELL_TEXT + 1).saturating_sub(s.len());
                s.extend(std::iter::repeat_n(' ', count.min(room)));
            }
            Event::Start(e) if e.name() == QName("text:tab") => s.push('\t'),
            Event::Start(e) if e.name() == QName("text:line-break") => s.push('\n'),
            Event::Eof => return Err(xml_err(file, "the file ends inside a cell")),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::Reader as _;
    use std::io::{Cursor, Write};

    fn ods(tables: &str) -> Vec<u8> {
        let content = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:calcext="urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0"><office:body><office:spreadsheet>{tables}</office:spreadsheet></office:body></office:document-content>"#
        );
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        let deflated = zip::write::SimpleFileOptions::default();
        zip.start_file("mimetype", stored).unwrap();
        zip.write_all(MIMETYPE).unwrap();
        zip.start_file("META-INF/manifest.xml", deflated).unwrap();
        zip.write_all(br#"<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/></manifest:manifest>"#).unwrap();
        zip.start_file("content.xml", deflated).unwrap();
        zip.write_all(content.as_bytes()).unwrap();
        zip.finish().unwrap().into_inner()
    }

    /// The cells calamine's own reader finds, by absolute position.
    fn by_calamine(book: &[u8], sheet: &str) -> Vec<(u32, u32, Data)> {
        let mut ods: calamine::Ods<_> = calamine::Ods::new(Cursor::new(book)).unwrap();
        let range = ods.worksheet_range(sheet).unwrap();
        let (top, left) = range.start().unwrap_or((0, 0));
        range
            .used_cells()
            .filter(|(_, _, v)| !matches!(v, Data::Empty))
            .map(|(r, c, v)| (top + r as u32, left + c as u32, v.clone()))
            .collect()
    }

    fn ours(book: &[u8], sheet: &str) -> Vec<(u32, u32, Data)> {
        let names = [sheet.to_owned()];
        let mut read = read_sheets(Cursor::new(book), "t.ods", Some(&names), false).unwrap();
        let (_, grid) = read.pop().unwrap();
        grid.rows
            .into_iter()
            .flat_map(|row| row.cells.into_iter().map(move |(c, v)| (row.row, c, v)))
            .collect()
    }

    #[test]
    fn values_are_read_as_calamine_reads_them() {
        let cells = [
            r#"<table:table-cell office:value-type="string"><text:p>a &amp; b</text:p><text:p>second<text:s text:c="3"/>line<text:tab/>x</text:p><office:annotation><text:p>a note</text:p></office:annotation></table:table-cell>"#,
            r#"<table:table-cell office:value-type="float" office:value="442079460100"><text:p>442079460100</text:p></table:table-cell>"#,
            r#"<table:table-cell office:value-type="float" office:value="-1.25"/>"#,
            r#"<table:table-cell office:value-type="date" office:date-value="2024-03-01"><text:p>01/03/24</text:p></table:table-cell>"#,
            r#"<table:table-cell office:value-type="time" office:time-value="PT01H02M03S"/>"#,
            r#"<table:table-cell office:value-type="boolean" office:boolean-value="true"><text:p>TRUE</text:p></table:table-cell>"#,
            r#"<table:table-cell office:value-type="string" office:string-value="attr"/>"#,
            r#"<table:table-cell table:formula="of:=1/0" office:value-type="string" office:string-value="" calcext:value-type="error"><text:p>#DIV/0!</text:p></table:table-cell>"#,
            r#"<table:table-cell office:value-type="string"><text:p/></table:table-cell>"#,
            r#"<table:table-cell table:number-columns-repeated="2" office:value-type="string"><text:p>twice</text:p></table:table-cell>"#,
            r#"<table:covered-table-cell office:value-type="string"><text:p>covered &#x263A;</text:p></table:covered-table-cell>"#,
        ]
        .concat();
        let book = ods(&format!(
            concat!(
                r#"<table:table table:name="Other"><table:table-row><table:table-cell office:value-type="string"><text:p>skip</text:p></table:table-cell></table:table-row></table:table>"#,
                r#"<table:table table:name="Values"><table:table-column/>"#,
                r#"<table:table-row table:number-rows-repeated="2"><table:table-cell table:number-columns-repeated="3"/></table:table-row>"#,
                r#"<table:table-header-rows><table:table-row><table:table-cell/>{cells}</table:table-row></table:table-header-rows>"#,
                r#"<table:table-row-group><table:table-row table:number-rows-repeated="2"><table:table-cell table:number-columns-repeated="2"/><table:table-cell office:value-type="float" office:value="7"/></table:table-row></table:table-row-group>"#,
                r#"<table:table-row table:number-rows-repeated="1048570"><table:table-cell table:number-columns-repeated="1024"/></table:table-row>"#,
                r#"</table:table>"#
            ),
            cells = cells
        ));
        assert!(is_ods(Cursor::new(&book)));
        let expected = by_calamine(&book, "Values");
        assert_eq!(expected.len(), 14, "{expected:?}");
        assert_eq!(ours(&book, "Values"), expected);
        assert_eq!(ours(&book, "Other"), by_calamine(&book, "Other"));
        assert_eq!(
            sheet_names(Cursor::new(&book), "t.ods").unwrap(),
            ["Other", "Values"]
        );
    }
}
