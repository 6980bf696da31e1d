//! A corpus of broken and awkward sheets, as users send them, generated
//! here: each goes through `validate` and `import --emulator --dry-run` of
//! the real binary, which must give the expected exit code and say the
//! expected words (file, row and column where they apply), quickly and in
//! bounded memory; a few go through a real `import --emulator` too.

mod common;

use common::{bin, Run};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HEAD: &str = "telephoneNumber,accountName,serviceDetails_teamsDirectRouting_enabled";

/// A valid sheet of `rows` Direct Routing numbers, LF line ends.
fn valid(rows: usize) -> String {
    let mut text = format!("{HEAD}\n");
    for i in 0..rows {
        text.push_str(&format!("+4420794{:05},contoso,true\n", 60100 + i));
    }
    text
}

fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if bom {
        out.extend(if big_endian {
            [0xFE, 0xFF]
        } else {
            [0xFF, 0xFE]
        });
    }
    for unit in text.encode_utf16() {
        out.extend(if big_endian {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        });
    }
    out
}

/// Seeded noise (a xorshift), so failures reproduce.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

/// An .xlsx with `cells` (zero-based row, column, text) on its first sheet.
fn xlsx(cells: &[(u32, u16, &str)]) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for &(row, col, text) in cells {
        sheet.write_string(row, col, text).unwrap();
    }
    book.save_to_buffer().unwrap()
}

/// The three-row sheet as spreadsheet cells, plus `extra`.
fn xlsx_sheet(extra: &[(u32, u16, &str)]) -> Vec<u8> {
    let mut cells = vec![
        (0, 0, "telephoneNumber"),
        (0, 1, "accountName"),
        (0, 2, "serviceDetails_teamsDirectRouting_enabled"),
        (1, 0, "+442079460100"),
        (1, 1, "contoso"),
        (1, 2, "true"),
        (2, 0, "+442079460101"),
        (2, 1, "contoso"),
        (2, 2, "true"),
    ];
    cells.extend_from_slice(extra);
    xlsx(&cells)
}

/// A zip holding `entries` (name, contents), stored.
fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    // A minimal zip by hand: local headers, central directory, end record.
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = out.len() as u32;
        let crc = crc32fast::hash(data);
        let header = |sig: &[u8], central: bool| {
            let mut h = sig.to_vec();
            if central {
                h.extend(20u16.to_le_bytes());
            }
            h.extend(20u16.to_le_bytes());
            h.extend([0u8; 2]); // flags
            h.extend([0u8; 2]); // stored
            h.extend([0u8; 4]); // time, date
            h.extend(crc.to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend([0u8; 2]);
            if central {
                // Comment length, disk, internal and external attributes.
                h.extend([0u8; 10]);
                h.extend(offset.to_le_bytes());
            }
            h.extend(name.as_bytes());
            h
        };
        out.extend(header(b"PK\x03\x04", false));
        out.extend(*data);
        central.extend(header(b"PK\x01\x02", true));
    }
    let directory = out.len() as u32;
    out.extend(&central);
    out.extend(b"PK\x05\x06");
    out.extend([0u8; 4]);
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(directory.to_le_bytes());
    out.extend([0u8; 2]);
    out
}

/// An .ods (a zip: `mimetype` first, then `content.xml`) whose first sheet,
/// `Sheet1`, holds `rows` (`table:table-row` elements), and whose second,
/// `Junk`, holds `junk`.
fn ods(rows: &str, junk: &str) -> Vec<u8> {
    let content = format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" "#,
            r#"xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" "#,
            r#"xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">"#,
            r#"<office:body><office:spreadsheet>"#,
            r#"<table:table table:name="Sheet1"><table:table-column table:number-columns-repeated="3"/>{}</table:table>"#,
            r#"<table:table table:name="Junk">{}</table:table>"#,
            r#"</office:spreadsheet></office:body></office:document-content>"#
        ),
        rows, junk
    );
    zip(&[
        (
            "mimetype",
            b"application/vnd.oasis.opendocument.spreadsheet",
        ),
        ("content.xml", content.as_bytes()),
    ])
}

/// One ODS row of text cells; `None` is an empty cell.
fn ods_row(cells: &[Option<&str>]) -> String {
    let mut row = String::from("<table:table-row>");
    for cell in cells {
        match cell {
            Some(text) => row.push_str(&format!(
                r#"<table:table-cell office:value-type="string"><text:p>{text}</text:p></table:table-cell>"#
            )),
            None => row.push_str("<table:table-cell/>"),
        }
    }
    row.push_str("</table:table-row>");
    row
}

/// The three-row sheet as ODS rows.
fn ods_sheet() -> String {
    let dr = "serviceDetails_teamsDirectRouting_enabled";
    [
        ods_row(&[Some("telephoneNumber"), Some("accountName"), Some(dr)]),
        ods_row(&[Some("+442079460100"), Some("contoso"), Some("true")]),
        // A number cell, as LibreOffice writes one.
        r#"<table:table-row><table:table-cell office:value-type="float" office:value="442079460101"><text:p>442079460101</text:p></table:table-cell><table:table-cell office:value-type="string"><text:p>contoso</text:p></table:table-cell><table:table-cell office:value-type="boolean" office:boolean-value="true"><text:p>TRUE</text:p></table:table-cell></table:table-row>"#.to_owned(),
    ]
    .concat()
}

/// A BIFF8 record.
fn biff(typ: u16, data: &[u8]) -> Vec<u8> {
    let mut out = typ.to_le_bytes().to_vec();
    out.extend((data.len() as u16).to_le_bytes());
    out.extend(data);
    out
}

/// A BIFF8 Label cell (text, one byte a character).
fn biff_label(row: u16, col: u16, text: &str) -> Vec<u8> {
    let mut data = Vec::new();
    for v in [row, col, 0, text.len() as u16] {
        data.extend(v.to_le_bytes());
    }
    data.push(0);
    data.extend(text.as_bytes());
    biff(0x0204, &data)
}

/// An .xls (BIFF8 in an OLE compound file) by hand: each sheet is a name
/// and its records after BOF (cells, DIMENSIONS), EOF added.
fn xls(sheets: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let bof = |dt: u16| {
        let mut data = Vec::new();
        for v in [0x0600u16, dt, 0x0DBB, 0x07CC] {
            data.extend(v.to_le_bytes());
        }
        data.extend([0u8; 8]);
        biff(0x0809, &data)
    };
    let bound = |at: u32, name: &str| {
        let mut data = at.to_le_bytes().to_vec();
        data.extend([0, 0, name.len() as u8, 0]);
        data.extend(name.as_bytes());
        biff(0x0085, &data)
    };
    // The globals' length does not depend on the positions they hold.
    let globals_len = bof(5).len()
        + sheets.iter().map(|(n, _)| bound(0, n).len()).sum::<usize>()
        + biff(0x000A, &[]).len();
    let mut at = globals_len;
    let mut globals = bof(5);
    let mut bodies = Vec::new();
    for (name, records) in sheets {
        globals.extend(bound(at as u32, name));
        let mut body = bof(0x10);
        body.extend(records);
        body.extend(biff(0x000A, &[]));
        at += body.len();
        bodies.extend(body);
    }
    globals.extend(biff(0x000A, &[]));
    globals.extend(bodies);
    let mut compound = cfb::CompoundFile::create(std::io::Cursor::new(Vec::new())).unwrap();
    let mut stream = compound.create_stream("/Workbook").unwrap();
    stream.write_all(&globals).unwrap();
    drop(stream);
    compound.flush().unwrap();
    compound.into_inner().into_inner()
}

/// The three-row sheet as BIFF8 Label records, plus `extra`.
fn xls_sheet(extra: &[u8]) -> Vec<u8> {
    let dr = "serviceDetails_teamsDirectRouting_enabled";
    let mut records = Vec::new();
    for (row, cells) in [
        ["telephoneNumber", "accountName", dr],
        ["+442079460100", "contoso", "true"],
        ["+442079460101", "contoso", "true"],
    ]
    .iter()
    .enumerate()
    {
        for (col, text) in cells.iter().enumerate() {
            records.extend(biff_label(row as u16, col as u16, text));
        }
    }
    records.extend(extra);
    records
}

/// One input and what both commands must do with it.
struct Case {
    name: &'static str,
    file: &'static str,
    bytes: Vec<u8>,
    code: i32,
    says: Vec<String>,
    /// Peak memory bound for `validate`, MiB, for the large inputs.
    max_mib: Option<u64>,
}

fn case(
    name: &'static str,
    file: &'static str,
    bytes: impl Into<Vec<u8>>,
    code: i32,
    says: &[&str],
) -> Case {
    Case {
        name,
        file,
        bytes: bytes.into(),
        code,
        says: says.iter().map(|s| s.to_string()).collect(),
        max_mib: None,
    }
}

impl Case {
    fn max_mib(mut self, mib: u64) -> Case {
        self.max_mib = Some(mib);
        self
    }
}

/// Runs the binary with output to files, and measures its wall time and
/// peak resident memory (KiB).
///
/// A child's `ru_maxrss` starts from its parent's peak: exec keeps the
/// high-water mark of the memory it replaces, and Command forks with the
/// parent's memory (this test process, which generates large inputs). So
/// the peak comes from GNU time, a small process whose own child is
/// measured cleanly; without it, `wait4` gives an upper bound.
// The child is waited for with wait4, which clippy does not see.
#[allow(clippy::zombie_processes)]
fn run_measured(dir: &Path, args: &[&str]) -> (Run, u64, Duration) {
    let out = fs::File::create(dir.join(".stdout")).unwrap();
    let err = fs::File::create(dir.join(".stderr")).unwrap();
    let time = Path::new("/usr/bin/time");
    let peak_file = dir.join(".peak");
    let mut command = if time.exists() {
        let mut command = Command::new(time);
        command
            .arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&peak_file)
            .arg(bin())
            .args(args);
        command
    } else {
        let mut command = Command::new(bin());
        command.args(args);
        command
    };
    let started = Instant::now();
    let child = command
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("ACG_ENDPOINT")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: plain libc call on our own child, with valid pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    let elapsed = started.elapsed();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    let peak_kib = if time.exists() {
        let text = fs::read_to_string(&peak_file).unwrap_or_default();
        // GNU time writes "Command exited with non-zero status N" first.
        text.lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("no peak from /usr/bin/time: {text}"))
    } else {
        usage.ru_maxrss as u64
    };
    let run = Run {
        code,
        stdout: fs::read_to_string(dir.join(".stdout")).unwrap_or_default(),
        stderr: String::from_utf8_lossy(&fs::read(dir.join(".stderr")).unwrap()).into_owned(),
    };
    (run, peak_kib, elapsed)
}

fn corpus() -> Vec<Case> {
    let dr = "serviceDetails_teamsDirectRouting_enabled";
    let mut cases = vec![
        // Quotes.
        {
            // The issue's case: row 2 opens a quote that never closes.
            let mut text = valid(1000);
            text = text.replacen("+442079460100,contoso,true", "+442079460100,contoso,\"true", 1);
            case("unclosed quote swallows nothing", "unclosed.csv", text, 2, &[
                "unclosed.csv: row 2, column C (serviceDetails_teamsDirectRouting_enabled): a quote opens in this cell and is not closed on its line",
            ])
        },
        case("unclosed quote on the last line, no line break", "last.csv",
            format!("{}+442079460199,\"contoso,true", valid(2)), 2,
            &["last.csv: row 4, column B (accountName): a quote opens"]),
        case("quote closed mid-field", "mid.csv",
            format!("{HEAD}\n+442079460100,\"con\"toso,true\n"), 2,
            &["mid.csv: row 2, column B (accountName): text follows the closing quote"]),
        case("quoted cell over two lines", "twolines.csv",
            format!("{HEAD}\n+442079460100,\"contoso\n\",true\n"), 2,
            &["twolines.csv: row 2, column B (accountName): a quote opens", "cannot hold a line break"]),
        case("unclosed quote in the headings", "headq.csv",
            format!("telephoneNumber,\"accountName,{dr}\n+442079460100,contoso,true\n"), 2,
            &["headq.csv: row 1, column B: a quote opens"]),
        case("doubled quotes and blanks after a closing quote", "okquotes.csv",
            format!("{HEAD}\n\"+442079460100\" ,\"contoso\",\"true\"\t\n"), 0, &["1 row,"]),
        case("a quote inside an unquoted cell is text", "inner.csv",
            format!("{HEAD}\n+442079460100,con\"toso,true\n"), 1, &["ACCOUNT_NAME"]),
        // Caps.
        case("a 70,000-byte cell", "field.csv",
            format!("{HEAD}\n+442079460100,{},true\n", "a".repeat(70_000)), 2,
            &["field.csv: row 2, column B (accountName): the cell is 70000 bytes long; at most 64 KiB"]).max_mib(150),
        case("a 2 MiB line of short cells", "line.csv",
            format!("{HEAD}\n+442079460100,contoso,true{}\n", ",x".repeat(1024 * 1024)), 2,
            &["line.csv: row 2: the line runs past 1024 KiB without a line break"]).max_mib(150),
        case("a 10 MB heading without a line break", "heading.csv",
            "telephoneNumber".repeat(700_000), 2,
            &["heading.csv: row 1: the heading line runs past 64 KiB"]).max_mib(150),
        case("a heading line of 20,000 columns", "wide.csv",
            format!("{}\n+442079460100\n", vec!["telephoneNumber"; 20_000].join(",")), 2,
            &["wide.csv: row 1: the heading line runs past 64 KiB"]),
        case("a 30,000-character unknown heading is quoted short", "longhead.csv",
            format!("telephoneNumber,{}\n+442079460100,x\n", "q".repeat(30_000)), 2,
            &[&format!("unknown column heading '{}...' in column B", "q".repeat(80))]),
        // Encodings.
        case("UTF-16 little-endian with BOM", "u16le.csv", utf16(&valid(2), false, true), 2,
            &["u16le.csv: the text is UTF-16 (little-endian, with a byte order mark), not UTF-8; save the sheet as \"CSV UTF-8\""]),
        case("UTF-16 big-endian with BOM", "u16be.csv", utf16(&valid(2), true, true), 2,
            &["UTF-16 (big-endian, with a byte order mark)"]),
        case("UTF-16 little-endian without BOM", "u16nobom.csv", utf16(&valid(2), false, false), 2,
            &["UTF-16 (little-endian: every other byte is zero)", "CSV UTF-8"]),
        case("UTF-16 big-endian without BOM", "u16benobom.csv", utf16(&valid(2), true, false), 2,
            &["UTF-16 (big-endian: every other byte is zero)"]),
        case("UTF-32 with BOM", "u32.csv", {
            let mut b = vec![0xFF, 0xFE, 0, 0];
            for c in valid(1).chars() { b.extend((c as u32).to_le_bytes()); }
            b
        }, 2, &["UTF-32"]),
        case("Windows-1252 accent in a cell", "cp1252.csv", {
            let mut b = valid(1).into_bytes();
            b.extend(b"+442079460101,Z\xFCrich,true\n");
            b
        }, 2, &["cp1252.csv: row 3, column B (accountName): the text is not UTF-8; it looks like Windows-1252 ('Z\u{fc}rich')"]),
        case("Windows-1252 in a heading", "cp1252head.csv",
            b"telephoneNumber,Num\xE9ro\n+442079460100,x\n".to_vec(), 2,
            &["row 1, column B: the text is not UTF-8; it looks like Windows-1252 ('Num\u{e9}ro')"]),
        case("bytes in no encoding", "notutf8.csv", {
            let mut b = valid(1).into_bytes();
            b.extend(b"+442079460101,a\x81\x8D,true\n");
            b
        }, 2, &["row 3, column B (accountName): bytes that are not UTF-8 (0x81 at byte 2 of the cell)"]),
        case("UTF-8 BOM", "bom.csv", format!("\u{feff}{}", valid(2)), 0, &["2 rows"]),
        case("two BOMs", "bom2.csv", format!("\u{feff}\u{feff}{}", valid(2)), 0, &["2 rows"]),
        case("only a BOM", "onlybom.csv", "\u{feff}", 2, &["onlybom.csv: the sheet is empty"]),
        // Binary data.
        case("zeros", "zeros.csv", vec![0u8; 1 << 20], 2,
            &["zeros.csv: binary data, not a text sheet (a zero byte at offset 0)"]),
        case("random bytes", "random.csv", noise(1 << 20, 7), 2, &["random.csv: binary data, not a text sheet"]).max_mib(150),
        case("a PNG", "image.csv", [b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".as_slice(), &noise(500, 3)].concat(), 2, &["binary data"]),
        case("gzip", "packed.csv", [b"\x1f\x8b\x08\0\0\0\0\0".as_slice(), &noise(500, 5)].concat(), 2, &["binary data"]),
        case("an ELF program", "prog.csv", [b"\x7fELF\x02\x01\x01\0".as_slice(), &noise(500, 9)].concat(), 2, &["binary data"]),
        case("control characters without zeros", "controls.csv",
            (0..4000u32).map(|i| [1u8, 2, 3, 4, b'a', 5, 6][i as usize % 7]).collect::<Vec<_>>(), 2,
            &["binary data, not a text sheet", "control bytes"]),
        case("a PDF is text to a reader, with unknown headings", "doc.csv",
            "%PDF-1.4\n1 0 obj << /Type /Catalog >>\n", 2, &["doc.csv: row 1: unknown column heading '%PDF-1.4'"]),
        // Workbooks with the wrong name, and names with the wrong contents.
        case("an xlsx named .csv is read as a workbook", "book.csv", xlsx_sheet(&[]), 0,
            &["book.csv is a zipped workbook", "reading it as a workbook", "2 rows"]),
        case("a zip that is no workbook", "archive.csv", zip(&[("notes.txt", b"hello")]), 2,
            &["archive.csv: not a readable spreadsheet"]),
        case("a truncated zip", "cut.csv", b"PK\x03\x04\x14\0\0\0".to_vec(), 2, &["cut.csv: not a readable spreadsheet"]),
        case("an OLE file that is no workbook", "ole.csv",
            [b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1".as_slice(), &[0u8; 600]].concat(), 2,
            &["ole.csv: not a readable spreadsheet"]),
        case("CSV text named .xlsx is read as CSV", "text.xlsx", valid(2), 0,
            &["text.xlsx holds text, not a workbook: reading it as CSV", "2 rows"]),
        case("an empty file named .xlsx", "empty.xlsx", "", 2, &["empty.xlsx: not a readable spreadsheet"]),
        case("a zip named .xlsx that is no workbook", "zip.xlsx", zip(&[("a.txt", b"a")]), 2,
            &["zip.xlsx: not a readable spreadsheet"]),
        // Empty sheets.
        case("an empty file", "empty.csv", "", 2, &["empty.csv: the sheet is empty"]),
        case("blank lines only", "blank.csv", "\n\n\r\n\n", 2, &["blank.csv: the sheet is empty"]),
        case("headings only", "headonly.csv", format!("{HEAD}\n"), 2,
            &["headonly.csv: no rows: the headings are on row 1"]),
        case("headings and blank rows", "headblank.csv", format!("{HEAD}\n\n,,\n\n"), 2,
            &["headblank.csv: no rows"]),
        case("an xlsx with headings only", "headonly.xlsx",
            xlsx(&[(2, 0, "telephoneNumber"), (2, 1, "accountName")]), 2,
            &["headonly.xlsx: no rows: the headings are on row 3"]),
        case("an xlsx without cells", "nocells.xlsx", xlsx(&[]), 2, &["nocells.xlsx: the sheet is empty"]),
        // Headings users cannot see.
        case("a zero-width space in a heading", "zwsp.csv",
            valid(1).replacen("telephoneNumber", "telephoneNumber\u{200b}", 1), 2,
            &["zwsp.csv: row 1: unknown column heading 'telephoneNumber\\u{200b}' in column A (did you mean 'telephoneNumber'?)"]),
        case("a non-breaking space around a heading is trimmed", "nbsp.csv",
            valid(1).replacen("accountName", "\u{a0}accountName\u{a0}", 1), 0, &["1 row,"]),
        case("a bell in a heading", "bell.csv", valid(1).replacen("accountName", "account\x07Name", 1), 2,
            &["unknown column heading 'account\\u{7}Name'"]),
        case("a direction mark in a heading", "rtl.csv", valid(1).replacen("accountName", "\u{200f}accountName", 1), 2,
            &["unknown column heading '\\u{200f}accountName'"]),
        case("a typo in a heading", "typo.csv", valid(1).replacen("accountName", "acountName", 1), 2,
            &["typo.csv: row 1: unknown column heading 'acountName' in column B (did you mean 'accountName'?)"]),
        case("a heading twice", "twice.csv", format!("{HEAD},accountName\n+442079460100,contoso,true,contoso\n"), 2,
            &["twice.csv: row 1: columns B and D both are 'accountName'"]),
        case("no number column", "nonumber.csv", "accountName\ncontoso\n", 2,
            &["nonumber.csv: row 1: no number column"]),
        // Line ends and delimiters.
        case("CR-only line ends (old Mac)", "mac.csv", valid(3).replace('\n', "\r"), 0, &["3 rows", "0 invalid"]),
        case("CR-only line ends, a bad row keeps its number", "macbad.csv",
            valid(3).replace('\n', "\r").replacen("contoso,true\r+442079460102", "contoso,maybe\r+442079460102", 1), 1,
            &["row      3"]),
        case("CRLF", "crlf.csv", valid(3).replace('\n', "\r\n"), 0, &["3 rows"]),
        case("LF and CRLF mixed", "mixed.csv", valid(4).replacen('\n', "\r\n", 2), 0, &["4 rows"]),
        case("Excel's sep=, line", "sepcomma.csv", format!("sep=,\n{}", valid(2)), 0, &["2 rows"]),
        case("Excel's sep=; line names the delimiter", "sepsemi.csv",
            format!("sep=;\r\n{}", valid(2).replace(',', ";").replace('\n', "\r\n")), 0, &["2 rows"]),
        case("a quoted sep line after a BOM", "sepquoted.csv",
            format!("\u{feff}\"sep=;\"\n{}", valid(2).replace(',', ";")), 0, &["2 rows"]),
        case("sep= line rows keep their numbers", "sepbad.csv",
            format!("sep=;\n{}", valid(2).replace(',', ";").replacen(";true", ";maybe", 1)), 1, &["row      3"]),
        case("tabs", "tabs.csv", valid(2).replace(',', "\t"), 0, &["2 rows"]),
        case("no line break at the end", "noeol.csv", valid(2).trim_end().to_owned(), 0, &["2 rows"]),
        case("blank lines between rows", "gaps.csv", valid(2).replacen('\n', "\n\n\n", 2), 0, &["2 rows"]),
        case("a row with extra cells", "extra.csv", format!("{HEAD}\n+442079460100,contoso,true,x,y\n"), 1,
            &["EXTRA_CELLS"]),
        case("a short row", "short.csv", format!("{HEAD}\n+442079460100\n"), 1, &["row      2"]),
        case("a row of empty cells is skipped", "emptycells.csv", format!("{}, ,\n", valid(1)), 0, &["1 row,"]),
        // Spreadsheets with values far from the data.
        case("a value at XFD1048576", "far.xlsx", xlsx_sheet(&[(1_048_575, 16_383, "stray")]), 2,
            &["far.xlsx: cell XFD1048576 holds a value ('stray') far beyond the data (A1:C3)"]).max_mib(150),
        case("a value at AZ1048576 in a three-row sheet", "azfar.xlsx", xlsx_sheet(&[(1_048_575, 51, "stray")]), 1,
            &["row 1048576"]).max_mib(150),
        case("a value at IZ1 right of the headings", "farhead.xlsx", xlsx_sheet(&[(0, 259, "note")]), 2,
            &["farhead.xlsx: row 1: unknown column heading 'note' in column IZ"]),
        case("a value at XFD2, far right of the data", "farright.xlsx", xlsx_sheet(&[(1, 16_383, "x")]), 2,
            &["cell XFD2 holds a value ('x') far beyond the data (A1:C3)"]),
        // OpenDocument: read as it streams, only the cells with values kept.
        case("an .ods sheet", "book.ods", ods(&ods_sheet(), ""), 0, &["2 rows"]),
        case("an .ods named .csv is read as a workbook", "odsbook.csv", ods(&ods_sheet(), ""), 0,
            &["odsbook.csv is a zipped workbook", "2 rows"]),
        case("an .ods with LibreOffice's empty rows to the sheet's end", "tail.ods",
            ods(&format!("{}{}", ods_sheet(),
                r#"<table:table-row table:number-rows-repeated="1048573"><table:table-cell table:number-columns-repeated="16384"/></table:table-row>"#), ""),
            0, &["2 rows"]).max_mib(150),
        case("an .ods value at A1000000 of a three-row sheet", "down.ods",
            ods(&format!("{}{}{}", ods_sheet(),
                r#"<table:table-row table:number-rows-repeated="999996"><table:table-cell table:number-columns-repeated="3"/></table:table-row>"#,
                ods_row(&[Some("+442079460102"), Some("contoso"), Some("true")])), ""),
            0, &["3 rows"]).max_mib(150),
        case("an .ods value far right of the data", "farright.ods",
            ods(&format!("{}{}", ods_sheet(),
                r#"<table:table-row><table:table-cell table:number-columns-repeated="16000"/><table:table-cell office:value-type="string"><text:p>stray</text:p></table:table-cell></table:table-row>"#), ""),
            2, &["farright.ods: cell WQK4 holds a value ('stray') far beyond the data (A1:C3); delete it"]).max_mib(150),
        case("an .ods value past the last row a sheet has", "past.ods",
            ods(&format!("{}{}{}", ods_sheet(),
                r#"<table:table-row table:number-rows-repeated="4000000000"><table:table-cell/></table:table-row>"#,
                ods_row(&[Some("stray")])), ""),
            2, &["past.ods: cell A4000000004 holds a value beyond the last row or column a sheet can have (XFD1048576)"]).max_mib(150),
        case("an .ods row repeated into millions of values", "repeat.ods",
            ods(&format!("{}{}", ods_sheet(),
                r#"<table:table-row table:number-rows-repeated="1000000"><table:table-cell office:value-type="string" table:number-columns-repeated="200"><text:p>x</text:p></table:table-cell></table:table-row>"#), ""),
            2, &["repeat.ods: cell ", "repeats a row or value", "save the sheet as CSV"]).max_mib(150),
        case("an .ods absurd sheet that is not read", "junk.ods",
            ods(&ods_sheet(), r#"<table:table-row table:number-rows-repeated="1048575"><table:table-cell table:number-columns-repeated="16384"/></table:table-row><table:table-row><table:table-cell table:number-columns-repeated="16383"/><table:table-cell office:value-type="string"><text:p>x</text:p></table:table-cell></table:table-row>"#),
            0, &["2 rows"]).max_mib(150),
        case("a zip named .ods that is no spreadsheet", "zip.ods", zip(&[("a.txt", b"a")]), 2,
            &["zip.ods: not a readable spreadsheet", "'mimetype' file not found"]),
        // Excel 97-2003: the cell positions are checked before calamine
        // lays the sheets out.
        case("an .xls sheet", "book.xls", xls(&[("Sheet1", xls_sheet(&[]))]), 0, &["2 rows"]),
        case("an .xls named .csv is read as a workbook", "xlsbook.csv", xls(&[("Sheet1", xls_sheet(&[]))]), 0,
            &["xlsbook.csv is an Excel 97-2003 workbook", "2 rows"]),
        case("an .xls value at IV65536", "far.xls", xls(&[("Sheet1", xls_sheet(&biff_label(65_535, 255, "stray")))]), 2,
            &["far.xls: cell IV65536 in sheet 'Sheet1' holds a value far beyond the rest of the data", "delete the stray cell at IV65536", "or save the sheet as CSV"]).max_mib(150),
        case("an .xls value at column 65536 (calamine would abort)", "wide.xls",
            xls(&[("Sheet1", xls_sheet(&biff_label(65_535, 65_535, "stray")))]), 2,
            &["wide.xls: cell CRXP65536 in sheet 'Sheet1' is beyond the last column an .xls can have (IV); delete the stray cell at CRXP65536"]).max_mib(150),
        case("an .xls stray value on a sheet not read", "junk.xls",
            xls(&[("Sheet1", xls_sheet(&[])), ("Junk", [biff_label(0, 0, "notes"), biff_label(65_535, 250, "x")].concat())]), 2,
            &["junk.xls: cell IQ65536 in sheet 'Junk' holds a value far beyond"]).max_mib(150),
        case("an .xls value at AZ100 of a three-row sheet is read", "near.xls",
            xls(&[("Sheet1", xls_sheet(&biff_label(99, 51, "x")))]), 1, &["row    100  error    EXTRA_CELLS"]),
        case("an .xls size record of four billion rows", "dims.xls", xls(&[("Sheet1", {
            let mut dims = Vec::new();
            dims.extend(0u32.to_le_bytes());
            dims.extend(u32::MAX.to_le_bytes());
            dims.extend([0, 0, 3, 0, 0, 0]);
            let mut records = biff(0x0200, &dims);
            records.extend(xls_sheet(&[]));
            records
        })]), 2, &["dims.xls: not a readable spreadsheet: sheet 'Sheet1': its size record (DIMENSIONS) claims rows 1..4294967295"]).max_mib(150),
        case("an .xls sheet that starts past the end", "past.xls", {
            let mut book = xls(&[("Sheet1", xls_sheet(&[]))]);
            // The BoundSheet8 position, in the stream inside the file.
            let at = book.windows(4).position(|w| w == [0x85, 0, 14, 0]).unwrap() + 4;
            book[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
            book
        }, 2, &["past.xls: not a readable spreadsheet: sheet 'Sheet1' starts past the end of the workbook"]),
        case("an .xls that is only an OLE header", "ole.xls", b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1".to_vec(), 2,
            &["ole.xls: not a readable spreadsheet"]),
        case("an .xlsm is read as the xlsx it is", "macro.xlsm", xlsx_sheet(&[]), 0, &["2 rows"]),
    ];
    cases.push(
        case(
            "a million-row column of one value far down",
            "down.xlsx",
            xlsx_sheet(&[(1_048_575, 0, "+442079460102")]),
            1,
            &["row 1048576"],
        )
        .max_mib(150),
    );
    cases
}

#[test]
fn every_broken_input_is_refused_or_read_clearly_by_validate_and_import() {
    let cases = corpus();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let dir = common::tempdir();
        fs::write(dir.path().join(case.file), &case.bytes).unwrap();
        let commands: [&[&str]; 2] = [
            &["validate", case.file, "--report", "report.csv"],
            &[
                "import",
                case.file,
                "--emulator",
                "--dry-run",
                "--report",
                "report.csv",
            ],
        ];
        for args in commands {
            let (run, peak_kib, elapsed) = run_measured(dir.path(), args);
            // Shown with --nocapture: what each case costs.
            println!(
                "{:<8} {:<16} exit {} {:>7} KiB {:>6} ms  {}",
                args[0],
                case.file,
                run.code,
                peak_kib,
                elapsed.as_millis(),
                run.stderr.lines().last().unwrap_or_default()
            );
            let mut wrong = Vec::new();
            if run.code != case.code {
                wrong.push(format!("exit {} (expected {})", run.code, case.code));
            }
            for words in &case.says {
                // import's dry run counts numbers where validate counts rows.
                let count = words
                    .strip_suffix(" rows")
                    .or_else(|| words.strip_suffix(" row,"));
                let words = match count {
                    Some(n) if args[0] == "import" && n.parse::<u64>().is_ok() => {
                        format!("valid of {n}")
                    }
                    _ => words.clone(),
                };
                if !run.stderr.contains(words.as_str()) {
                    wrong.push(format!("no '{words}'"));
                }
            }
            // Messages quote values short, whatever the input holds.
            if run.stderr.len() > 4000 {
                wrong.push(format!("{} bytes of messages", run.stderr.len()));
            }
            if run.stderr.contains("panicked") {
                wrong.push("a panic".into());
            }
            if let Some(mib) = case.max_mib {
                if peak_kib > mib * 1024 {
                    wrong.push(format!(
                        "peak memory {} MiB (at most {mib})",
                        peak_kib / 1024
                    ));
                }
            }
            if elapsed > Duration::from_secs(20) {
                wrong.push(format!("took {elapsed:?}"));
            }
            if !wrong.is_empty() {
                failures.push(format!(
                    "{} ({}), {}: {}\n  stderr: {}",
                    case.name,
                    case.file,
                    args[0],
                    wrong.join("; "),
                    run.stderr.chars().take(600).collect::<String>()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Import with the emulator: what is refused sends nothing, what is read
/// lands whole.
#[test]
fn real_imports_of_awkward_sheets() {
    let dir = common::tempdir();
    let sheets: [(&str, Vec<u8>, i32, usize); 8] = [
        ("mac.csv", valid(3).replace('\n', "\r").into_bytes(), 0, 3),
        ("sheet.ods", ods(&ods_sheet(), ""), 0, 2),
        ("sheet.xls", xls(&[("Sheet1", xls_sheet(&[]))]), 0, 2),
        (
            "far.xls",
            xls(&[("Sheet1", xls_sheet(&biff_label(65_535, 255, "stray")))]),
            2,
            0,
        ),
        (
            "sep.csv",
            format!("\u{feff}sep=;\r\n{}", valid(4).replace(',', ";")).into_bytes(),
            0,
            4,
        ),
        ("book.csv", xlsx_sheet(&[]), 0, 2),
        (
            "far.xlsx",
            xlsx_sheet(&[(1_048_575, 16_383, "stray")]),
            2,
            0,
        ),
        (
            "unclosed.csv",
            valid(50)
                .replacen(",contoso,", ",\"contoso,", 1)
                .into_bytes(),
            2,
            0,
        ),
    ];
    for (file, bytes, code, numbers) in sheets {
        fs::write(dir.path().join(file), bytes).unwrap();
        let (run, _, _) = run_measured(
            dir.path(),
            &["import", file, "--emulator", "--rate-limit", "off"],
        );
        assert_eq!(run.code, code, "{file}: {}", run.stderr);
        let stem = file.rsplit_once('.').unwrap().0;
        let results = dir.path().join(format!("{stem}.results.csv"));
        if code == 0 {
            assert!(
                run.stderr
                    .contains(&format!("{numbers} numbers: {numbers} ok")),
                "{file}: {}",
                run.stderr
            );
            assert_eq!(common::read_csv(&results).len(), numbers + 1, "{file}");
        } else {
            assert!(
                !results.exists(),
                "{file}: a refused sheet leaves no results"
            );
        }
    }
}

/// Standard input that is garbage stops at once, and leaves no copy; a
/// sheet on standard input is copied as it is validated and imported.
#[test]
fn standard_input_is_validated_as_it_is_copied() {
    let dir = common::tempdir();
    let started = Instant::now();
    let run = common::run_with_stdin(
        dir.path(),
        &["import", "-", "--emulator", "--dry-run"],
        // Less than a pipe holds: the binary stops reading at the first bytes.
        &noise(32 * 1024, 11),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("stdin: binary data"), "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!dir.path().join("stdin.results.input.csv").exists());

    let run = common::run_with_stdin(
        dir.path(),
        &["import", "-", "--emulator", "--rate-limit", "off"],
        valid(5).replace('\n', "\r").as_bytes(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("5 numbers: 5 ok"), "{}", run.stderr);
    assert_eq!(
        fs::read(dir.path().join("stdin.results.input.csv")).unwrap(),
        valid(5).replace('\n', "\r").into_bytes()
    );
    assert_eq!(
        common::read_csv(&dir.path().join("stdin.results.csv")).len(),
        6
    );
}

/// A FIFO is read as a stream by validate and by import, which copies it.
#[test]
fn a_fifo_is_read_once_as_a_stream() {
    let dir = common::tempdir();
    let fifo = dir.path().join("pipe.csv");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string and mode.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    for args in [
        &["validate", "pipe.csv", "--report", "r.csv"][..],
        &["import", "pipe.csv", "--emulator", "--rate-limit", "off"][..],
    ] {
        let child = Command::new(bin())
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut writer = fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        writer.write_all(valid(3).as_bytes()).unwrap();
        drop(writer);
        let run: Run = child.wait_with_output().unwrap().into();
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("3 "), "{}", run.stderr);
    }
    assert_eq!(
        fs::read_to_string(dir.path().join("pipe.results.input.csv")).unwrap(),
        valid(3)
    );
}

/// `--sheet` picks .ods and .xls sheets as it picks xlsx ones, and a far
/// value on a sheet read with others is named with its sheet.
#[test]
fn ods_and_xls_sheets_are_picked_by_name_position_and_all() {
    let dir = common::tempdir();
    let second = ods_sheet()
        .replace("+442079460100", "+442079460200")
        .replace("442079460101", "442079460201");
    fs::write(dir.path().join("two.ods"), ods(&ods_sheet(), &second)).unwrap();
    let far = format!(
        "{second}{}",
        r#"<table:table-row><table:table-cell table:number-columns-repeated="700"/><table:table-cell office:value-type="string"><text:p>stray</text:p></table:table-cell></table:table-row>"#
    );
    fs::write(dir.path().join("far.ods"), ods(&ods_sheet(), &far)).unwrap();
    fs::write(
        dir.path().join("two.xls"),
        xls(&[("London", xls_sheet(&[])), ("Leeds", xls_sheet(&[]))]),
    )
    .unwrap();
    for (args, code, says) in [
        (&["validate", "two.ods", "--sheet", "Junk"][..], 0, "2 rows"),
        (&["validate", "two.ods", "--sheet", "2"][..], 0, "2 rows"),
        (&["validate", "two.ods", "--sheet", "all"][..], 0, "4 rows"),
        (
            &["validate", "two.ods", "--sheet", "Leeds"][..],
            2,
            "no sheet 'Leeds'; the workbook has: Sheet1, Junk",
        ),
        (&["validate", "far.ods"][..], 0, "2 rows"),
        (
            &["validate", "far.ods", "--sheet", "all"][..],
            2,
            "far.ods: cell 'Junk'!ZY4 holds a value ('stray') far beyond the data (A1:C3)",
        ),
        (
            &["validate", "two.xls", "--sheet", "Leeds"][..],
            0,
            "2 rows",
        ),
        (
            &["validate", "two.xls", "--sheet", "all"][..],
            1,
            "DUPLICATE",
        ),
    ] {
        let run = common::run(dir.path(), args);
        assert_eq!(run.code, code, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
}

/// The .xls check reads what a damaged or hostile file says about itself:
/// bytes changed at random never make it panic, and a sheet with no far
/// cell passes it.
#[test]
fn the_xls_check_survives_damaged_files() {
    let book = xls(&[("Sheet1", xls_sheet(&[])), ("Two", xls_sheet(&[]))]);
    assert!(acgbulk::sheet::xls::precheck(std::io::Cursor::new(&book), "b.xls").is_ok());
    for (i, seed) in (1..400u64).enumerate() {
        let mut damaged = book.clone();
        let changes = noise(16, seed);
        for pair in changes.chunks(2).take(1 + i % 8) {
            let at =
                (usize::from(pair[0]) * 131 + usize::from(pair[1]) * 7 + i * 31) % damaged.len();
            damaged[at] = pair[1];
        }
        // An error or a pass; the test fails on a panic.
        let _ = acgbulk::sheet::xls::precheck(std::io::Cursor::new(&damaged), "b.xls");
    }
}
