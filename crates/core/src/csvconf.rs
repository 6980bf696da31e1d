//! CSV configuration shared by every reader and writer of the project, so
//! that all files acgbulk writes look alike and all it reads are read alike.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Guesses the delimiter from a sheet's first line: whichever of `,` `;`
/// and tab occurs most often outside quotes (`,` on a tie or when none does).
pub fn sniff_delimiter(first_line: &[u8]) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in first_line {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => break,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let delimiters = [b',', b';', b'\t'];
    let best = (0..3)
        .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
        .unwrap_or(0);
    if counts[best] == 0 {
        b','
    } else {
        delimiters[best]
    }
}

/// Parses a `--delimiter` value: one character, or `tab` / `\t`.
pub fn parse_delimiter(text: &str) -> Result<u8, String> {
    match text {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        s if s.len() == 1 && s.is_ascii() => Ok(s.as_bytes()[0]),
        _ => Err(format!(
            "'{text}' is not a delimiter: give one character such as , or ; or the word tab"
        )),
    }
}

/// The reader configuration for sheets: headings handled by the caller,
/// rows may be ragged (short rows are padded, long rows are checked).
///
/// Records end at `\n` only. With the default (`\r`, `\n` or `\r\n`), the
/// csv crate reports a CRLF file's records one line early; here a trailing
/// `\r` stays in the last cell instead, and every cell is read trimmed.
pub fn reader_builder(delimiter: u8) -> csv::ReaderBuilder {
    let mut builder = csv::ReaderBuilder::new();
    builder
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'));
    builder
}

/// A CSV writer with the project's conventions: `,`, `\n`, quotes only
/// where needed.
pub fn writer<W: Write>(out: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out)
}

/// Creates `path` and wraps it in a buffered CSV writer.
pub fn create(path: &Path) -> io::Result<csv::Writer<BufWriter<File>>> {
    Ok(writer(BufWriter::with_capacity(
        256 * 1024,
        File::create(path)?,
    )))
}

/// Splits a list cell: items separated by `,` `;` or `|`, trimmed, empty
/// items dropped.
pub fn split_list(cell: &str) -> impl Iterator<Item = &str> {
    cell.split([',', ';', '|'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Joins list items the way the portal's sheets are written: with `,`.
pub fn join_list<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_the_most_common_delimiter_outside_quotes() {
        assert_eq!(sniff_delimiter(b"a,b,c\n1;2;3;4;5"), b',');
        assert_eq!(sniff_delimiter(b"a;b;c"), b';');
        assert_eq!(sniff_delimiter(b"a\tb\tc"), b'\t');
        assert_eq!(sniff_delimiter(b"\"a,b,c\";d;e"), b';');
        assert_eq!(sniff_delimiter(b"telephoneNumber"), b',');
    }

    #[test]
    fn lists_accept_three_separators() {
        let items: Vec<_> = split_list(" InboundCalling; OutboundCalling|Mobile,").collect();
        assert_eq!(items, ["InboundCalling", "OutboundCalling", "Mobile"]);
        assert_eq!(join_list(&items), "InboundCalling,OutboundCalling,Mobile");
    }

    #[test]
    fn delimiter_flag() {
        assert_eq!(parse_delimiter("tab"), Ok(b'\t'));
        assert_eq!(parse_delimiter(";"), Ok(b';'));
        assert!(parse_delimiter(";;").is_err());
    }
}
