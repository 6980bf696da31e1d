//! Reading CSV text strictly, in bounded memory.
//!
//! The csv crate is lenient where a lenient reader loses data: a quote that
//! is never closed swallows the rest of the file into one cell, `"abc"def`
//! reads as `abcdef`, and a line without a line break is read without limit.
//! Here csv_core's parser (the csv crate's own) is fed one line at a time:
//!
//! - no API field holds a line break, so a line that ends inside a quoted
//!   field is an error on the row where the quote opened, found at once;
//! - a line, a heading line and a field have caps, checked before the bytes
//!   are kept;
//! - a line holding a quote is also checked for a quote that closes before
//!   its field ends (most lines hold none, and a `memchr` finds that).
//!
//! Each record is one line, so line numbers are row numbers.

use csv::StringRecord;
use std::io::{self, BufRead};

/// The longest field: no API field is longer than a few hundred characters.
pub const FIELD_CAP: usize = 64 * 1024;
/// The longest data line, line break included.
pub const LINE_CAP: usize = 1024 * 1024;
/// The longest heading line: 40 headings of 80 characters are 3 KiB.
pub const HEADING_LINE_CAP: usize = 64 * 1024;
/// How many bytes are looked at to tell what a file holds.
pub const HEAD_BYTES: usize = HEADING_LINE_CAP + 64;

/// How a CSV file is laid out, found from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub delimiter: u8,
    /// The byte that ends a line: `\n` for LF and CRLF files (the `\r` stays
    /// in the last cell, which is read trimmed), `\r` for old Mac files.
    pub newline: u8,
    /// Bytes before the first line to read: a UTF-8 BOM, Excel's `sep=` line.
    pub skip: u64,
    /// The line number of the first line to read.
    pub first_line: u64,
}

/// What the first bytes of a file say it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniffed {
    Csv(Layout),
    /// A workbook, whatever its name says: zip (xlsx, xlsm, xlsb, ods) or
    /// OLE (xls). The text names it for messages.
    Workbook(&'static str),
    /// Not something acgbulk can read; the text says what it is and what to
    /// do.
    Refused(String),
}

const SAVE_AS: &str =
    "save the sheet as \"CSV UTF-8\" (Excel: File > Save As > CSV UTF-8) and try again";

/// Tells what `head` (the first [`HEAD_BYTES`] of a file, or all of it) is.
/// `delimiter` is the user's `--delimiter`, if any.
pub fn sniff(head: &[u8], delimiter: Option<u8>) -> Sniffed {
    if head.starts_with(b"PK\x03\x04") {
        return Sniffed::Workbook("a zipped workbook (.xlsx, .xlsm, .xlsb or .ods)");
    }
    if head.starts_with(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        return Sniffed::Workbook("an Excel 97-2003 workbook (.xls)");
    }
    if head.starts_with(b"\xFF\xFE\0\0") || head.starts_with(b"\0\0\xFE\xFF") {
        return Sniffed::Refused(format!("the text is UTF-32, not UTF-8; {SAVE_AS}"));
    }
    if head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF") {
        let order = if head[0] == 0xFF { "little" } else { "big" };
        return Sniffed::Refused(format!(
            "the text is UTF-16 ({order}-endian, with a byte order mark), not UTF-8; {SAVE_AS}"
        ));
    }
    if let Some(order) = utf16_without_bom(head) {
        return Sniffed::Refused(format!(
            "the text is UTF-16 ({order}-endian: every other byte is zero), not UTF-8; {SAVE_AS}"
        ));
    }
    if let Some(at) = head.iter().position(|&b| b == 0) {
        return Sniffed::Refused(format!(
            "binary data, not a text sheet (a zero byte at offset {at}); expected CSV text in UTF-8, or an .xlsx, .xls or .ods workbook"
        ));
    }
    let controls = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r') || b == 0x7F)
        .count();
    if controls > 8 && controls * 20 > head.len() {
        return Sniffed::Refused(format!(
            "binary data, not a text sheet ({controls} control bytes in the first {} bytes); expected CSV text in UTF-8, or an .xlsx, .xls or .ods workbook",
            head.len()
        ));
    }
    let mut skip = 0usize;
    if head.starts_with(b"\xEF\xBB\xBF") {
        skip = 3;
    }
    let rest = &head[skip..];
    // LF (and CRLF) files end lines at `\n`; a file with `\r` and no `\n`
    // is an old Mac export.
    let newline = match (memchr::memchr(b'\n', rest), memchr::memchr(b'\r', rest)) {
        (None, Some(_)) => b'\r',
        _ => b'\n',
    };
    let mut first_line = 1;
    let mut sep = None;
    let line_end = memchr::memchr(newline, rest).map_or(rest.len(), |i| i + 1);
    let line = trim_line_end(&rest[..line_end]);
    let unquoted = line
        .strip_prefix(b"\"")
        .and_then(|l| l.strip_suffix(b"\""))
        .unwrap_or(line);
    if let Some(&[d]) = unquoted
        .strip_prefix(b"sep=")
        .or_else(|| unquoted.strip_prefix(b"SEP="))
    {
        // Excel's hint line, `sep=;`: it names the delimiter and is not a row.
        sep = Some(d);
        skip += line_end;
        first_line = 2;
    }
    let delimiter = delimiter.or(sep).unwrap_or_else(|| {
        let first = &head[skip..];
        let end = memchr::memchr(newline, first).map_or(first.len(), |i| i + 1);
        crate::csvconf::sniff_delimiter(&first[..end])
    });
    Sniffed::Csv(Layout {
        delimiter,
        newline,
        skip: skip as u64,
        first_line,
    })
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let mut line = line;
    while let [rest @ .., b'\r' | b'\n'] = line {
        line = rest;
    }
    line
}

/// `Some("little")` or `Some("big")` when `head` looks like UTF-16 text
/// without a byte order mark: mostly ASCII, so every other byte is zero.
fn utf16_without_bom(head: &[u8]) -> Option<&'static str> {
    let pairs = head.len() / 2;
    if pairs < 2 {
        return None;
    }
    let (mut even, mut odd) = (0, 0);
    for pair in head.chunks_exact(2) {
        even += (pair[0] == 0) as usize;
        odd += (pair[1] == 0) as usize;
    }
    if odd * 10 >= pairs * 4 && even * 20 < pairs {
        Some("little")
    } else if even * 10 >= pairs * 4 && odd * 20 < pairs {
        Some("big")
    } else {
        None
    }
}

/// Why a record cannot be read: on one-based lines, in zero-based fields;
/// the sheet module names the file and column.
#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    /// A line longer than `cap` bytes (no line break within it).
    LineTooLong {
        line: u64,
        cap: usize,
    },
    /// A field longer than [`FIELD_CAP`].
    FieldTooLong {
        line: u64,
        field: usize,
        len: usize,
    },
    /// A field that is not UTF-8; `bytes` are its first bytes.
    NotUtf8 {
        line: u64,
        field: usize,
        bytes: Vec<u8>,
    },
    /// A quote opened in `field` is not closed on its line.
    QuoteNotClosed {
        line: u64,
        field: usize,
    },
    /// A quoted field is followed by more text before its delimiter.
    QuoteClosedMidField {
        line: u64,
        field: usize,
    },
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> ReadError {
        ReadError::Io(e)
    }
}

/// Where a record was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// Its line number, which is its row number.
    pub line: u64,
    /// The offset of its first byte in the file.
    pub at: u64,
}

/// Reads records, one per line, strictly (see the module's comment).
pub struct RecordReader<R> {
    input: R,
    // Boxed: the parser's tables are half a kilobyte.
    core: Box<csv_core::Reader>,
    layout: Layout,
    /// Offset in the file of the next byte to read.
    offset: u64,
    /// Line number of the next line.
    line: u64,
    out: Vec<u8>,
    ends: Vec<usize>,
}

impl<R: BufRead> RecordReader<R> {
    /// A reader of `input` laid out as `layout`, whose next byte is at
    /// `offset` in the file, on line `line`.
    pub fn new(input: R, layout: Layout, offset: u64, line: u64) -> RecordReader<R> {
        let core = Box::new(
            csv_core::ReaderBuilder::new()
                .delimiter(layout.delimiter)
                .terminator(csv_core::Terminator::Any(layout.newline))
                .build(),
        );
        RecordReader {
            input,
            core,
            layout,
            offset,
            line,
            out: vec![0; 1024],
            ends: vec![0; 64],
        }
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Offset in the file of the next byte to read.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.input
    }

    /// Goes on reading at `offset`, on line `line`, after the caller moved
    /// the input there.
    pub fn moved_to(&mut self, offset: u64, line: u64) {
        self.core.reset();
        self.offset = offset;
        self.line = line;
    }

    /// Reads the next record into `record`, its lines at most `cap` bytes.
    /// `None` at the end of the input. Blank lines (only a line break) are
    /// skipped; lines of blank cells are returned.
    pub fn read(
        &mut self,
        record: &mut StringRecord,
        cap: usize,
    ) -> Result<Option<Place>, ReadError> {
        let newline = self.layout.newline;
        let mut line_len = 0usize;
        let (mut nout, mut nend) = (0usize, 0usize);
        let mut quotes: Option<QuoteCheck> = None;
        let mut place = Place {
            line: self.line,
            at: self.offset,
        };
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                if line_len == 0 {
                    return Ok(None);
                }
                // The last line has no line break: end its record.
                decode(
                    &mut self.core,
                    &[],
                    (&mut self.out, &mut nout),
                    (&mut self.ends, &mut nend),
                );
                if let Some(check) = &quotes {
                    check.finish(place.line)?;
                }
                break;
            }
            let (len, whole_line) = match memchr::memchr(newline, buf) {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            if line_len == 0 && len == 1 && whole_line {
                // An empty line; csv_core would skip it without a record.
                self.input.consume(1);
                self.offset += 1;
                self.line += 1;
                place = Place {
                    line: self.line,
                    at: self.offset,
                };
                continue;
            }
            if line_len + len > cap {
                return Err(ReadError::LineTooLong {
                    line: place.line,
                    cap,
                });
            }
            let chunk = &buf[..len];
            // Only lines with a quote need the quote check; a line read in
            // several pieces is checked whole.
            if quotes.is_none()
                && (line_len > 0 || !whole_line || memchr::memchr(b'"', chunk).is_some())
            {
                quotes = Some(QuoteCheck::new(self.layout.delimiter, newline));
            }
            if let Some(check) = &mut quotes {
                check.feed(chunk, place.line)?;
            }
            let (used, done) = decode(
                &mut self.core,
                chunk,
                (&mut self.out, &mut nout),
                (&mut self.ends, &mut nend),
            );
            self.input.consume(used);
            self.offset += used as u64;
            line_len += used;
            if used == len && whole_line {
                self.line += 1;
            }
            if done {
                break;
            }
            if whole_line && used == len {
                // The line break was read inside a quoted field.
                self.core.reset();
                return Err(ReadError::QuoteNotClosed {
                    line: place.line,
                    field: nend,
                });
            }
        }
        fill_record(record, &self.out[..nout], &self.ends[..nend], place.line)?;
        let mut position = csv::Position::new();
        position.set_line(place.line).set_byte(place.at);
        record.set_position(Some(position));
        Ok(Some(place))
    }
}

/// Feeds `chunk` to csv_core until it needs more input or ends a record,
/// growing the output buffers as needed: the bytes used, and whether a
/// record ended. An empty chunk ends the last record of the input.
fn decode(
    core: &mut csv_core::Reader,
    chunk: &[u8],
    (out, nout): (&mut Vec<u8>, &mut usize),
    (ends, nend): (&mut Vec<usize>, &mut usize),
) -> (usize, bool) {
    let mut used = 0;
    loop {
        let (result, nin, o, e) =
            core.read_record(&chunk[used..], &mut out[*nout..], &mut ends[*nend..]);
        used += nin;
        *nout += o;
        *nend += e;
        match result {
            csv_core::ReadRecordResult::InputEmpty => return (used, false),
            csv_core::ReadRecordResult::OutputFull => grow(out),
            csv_core::ReadRecordResult::OutputEndsFull => grow(ends),
            csv_core::ReadRecordResult::Record | csv_core::ReadRecordResult::End => {
                return (used, true)
            }
        }
    }
}

/// The decoded fields of the record at `line` into `record`, each within
/// the field cap and UTF-8.
fn fill_record(
    record: &mut StringRecord,
    fields: &[u8],
    ends: &[usize],
    line: u64,
) -> Result<(), ReadError> {
    record.clear();
    let mut start = 0;
    for (field, &end) in ends.iter().enumerate() {
        if end - start > FIELD_CAP {
            return Err(ReadError::FieldTooLong {
                line,
                field,
                len: end - start,
            });
        }
        // Checked field by field, straight into the record: no
        // conversion of a whole record, no allocation per row.
        let bytes = &fields[start..end];
        match std::str::from_utf8(bytes) {
            Ok(text) => record.push_field(text),
            Err(_) => {
                return Err(ReadError::NotUtf8 {
                    line,
                    field,
                    bytes: bytes[..bytes.len().min(4096)].to_vec(),
                })
            }
        }
        start = end;
    }
    Ok(())
}

fn grow<T: Default + Clone>(buf: &mut Vec<T>) {
    let len = buf.len().max(1) * 2;
    buf.resize(len, T::default());
}

/// Follows the quotes of one line, as csv_core reads them: a field is
/// quoted when its first byte is `"`, and `""` inside it is a quote.
struct QuoteCheck {
    delimiter: u8,
    newline: u8,
    state: QuoteState,
    field: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum QuoteState {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: its end, or the first of `""`.
    QuoteInQuoted,
    /// After the closing quote: only blanks may come before the delimiter.
    Closed,
}

impl QuoteCheck {
    fn new(delimiter: u8, newline: u8) -> QuoteCheck {
        QuoteCheck {
            delimiter,
            newline,
            state: QuoteState::FieldStart,
            field: 0,
        }
    }

    fn feed(&mut self, bytes: &[u8], line: u64) -> Result<(), ReadError> {
        use QuoteState::*;
        for &b in bytes {
            let next_field = b == self.delimiter;
            self.state = match self.state {
                FieldStart if b == b'"' => Quoted,
                FieldStart | Unquoted | QuoteInQuoted | Closed if next_field => {
                    self.field += 1;
                    FieldStart
                }
                FieldStart | Unquoted => Unquoted,
                Quoted if b == b'"' => QuoteInQuoted,
                Quoted => Quoted,
                QuoteInQuoted if b == b'"' => Quoted,
                QuoteInQuoted | Closed if b == self.newline => FieldStart,
                QuoteInQuoted | Closed if matches!(b, b' ' | b'\t' | b'\r') => Closed,
                QuoteInQuoted | Closed => {
                    return Err(ReadError::QuoteClosedMidField {
                        line,
                        field: self.field,
                    })
                }
            };
        }
        Ok(())
    }

    /// At the end of the input: a quote still open is never closed.
    fn finish(&self, line: u64) -> Result<(), ReadError> {
        if self.state == QuoteState::Quoted {
            return Err(ReadError::QuoteNotClosed {
                line,
                field: self.field,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(delimiter: u8) -> Layout {
        Layout {
            delimiter,
            newline: b'\n',
            skip: 0,
            first_line: 1,
        }
    }

    fn read_all(text: &[u8]) -> Result<Vec<(u64, Vec<String>)>, ReadError> {
        let mut reader =
            RecordReader::new(io::BufReader::with_capacity(7, text), layout(b','), 0, 1);
        let mut record = StringRecord::new();
        let mut rows = Vec::new();
        while let Some(place) = reader.read(&mut record, LINE_CAP)? {
            rows.push((place.line, record.iter().map(str::to_owned).collect()));
        }
        Ok(rows)
    }

    #[test]
    fn reads_lines_with_their_numbers() {
        let rows = read_all(b"a,b\n\n\"x,1\",\"say \"\"hi\"\"\"\r\nlast,\"\"").unwrap();
        assert_eq!(
            rows,
            vec![
                (1, vec!["a".into(), "b".into()]),
                (3, vec!["x,1".into(), "say \"hi\"\r".into()]),
                (4, vec!["last".into(), "".into()]),
            ]
        );
    }

    #[test]
    fn a_quote_not_closed_on_its_line_is_an_error_on_that_line() {
        let err = read_all(b"a,b,c\n1,2,\"3\n4,5,6\n").unwrap_err();
        assert!(
            matches!(err, ReadError::QuoteNotClosed { line: 2, field: 2 }),
            "{err:?}"
        );
        let err = read_all(b"a,b,c\n1,2,\"3").unwrap_err();
        assert!(
            matches!(err, ReadError::QuoteNotClosed { line: 2, field: 2 }),
            "{err:?}"
        );
    }

    #[test]
    fn a_quote_closed_mid_field_is_an_error() {
        let err = read_all(b"a,b\n\"abc\"def,x\n").unwrap_err();
        assert!(
            matches!(err, ReadError::QuoteClosedMidField { line: 2, field: 0 }),
            "{err:?}"
        );
        // Blanks after the closing quote are harmless.
        assert!(read_all(b"a,b\n\"abc\" ,\"x\"\t\r\n").is_ok());
        // A quote inside an unquoted field is text.
        assert_eq!(read_all(b"ab\"c\n").unwrap()[0].1, vec!["ab\"c"]);
    }

    #[test]
    fn caps() {
        let long = [b'a'; 100];
        let mut reader = RecordReader::new(&long[..], layout(b','), 0, 1);
        let err = reader.read(&mut StringRecord::new(), 50).unwrap_err();
        assert!(matches!(err, ReadError::LineTooLong { line: 1, cap: 50 }));
        let mut text = b"a,".to_vec();
        text.extend(vec![b'x'; FIELD_CAP + 1]);
        let mut reader = RecordReader::new(&text[..], layout(b','), 0, 1);
        let err = reader.read(&mut StringRecord::new(), LINE_CAP).unwrap_err();
        assert!(matches!(
            err,
            ReadError::FieldTooLong {
                line: 1,
                field: 1,
                ..
            }
        ));
    }

    #[test]
    fn sniffs_what_a_file_is() {
        assert_eq!(
            sniff(b"sep=;\r\na;b\r\n", None),
            Sniffed::Csv(Layout {
                delimiter: b';',
                newline: b'\n',
                skip: 7,
                first_line: 2
            })
        );
        assert_eq!(
            sniff(b"\xEF\xBB\xBFa\tb\rc\td\r", None),
            Sniffed::Csv(Layout {
                delimiter: b'\t',
                newline: b'\r',
                skip: 3,
                first_line: 1
            })
        );
        assert!(matches!(
            sniff(b"PK\x03\x04rest", None),
            Sniffed::Workbook(_)
        ));
        let utf16: Vec<u8> = "telephoneNumber,accountName\n"
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        assert!(matches!(sniff(&utf16, None), Sniffed::Refused(m) if m.contains("UTF-16 (little")));
        assert!(matches!(sniff(b"\xFF\xFEt\0", None), Sniffed::Refused(m) if m.contains("UTF-16")));
        assert!(matches!(sniff(b"abc\0def", None), Sniffed::Refused(m) if m.contains("binary")));
    }
}
