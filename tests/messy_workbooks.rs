//! Customers' messy workbooks, end to end through the binary.

mod common;

use acgbulk::emulator::{EmulatorConfig, SeedSource};
use common::{read_csv, run, Run, Server};
use rust_xlsxwriter::{Formula, Workbook, Worksheet};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const DR: &str = "serviceDetails_teamsDirectRouting_enabled";

/// The customer's headings for the London sheet, read with these maps.
const MAPS: [&str; 4] = [
    "--map",
    "Phone Number=telephoneNumber",
    "--map",
    "Account=accountName",
];

fn strings(sheet: &mut Worksheet, row: u32, cells: &[&str]) {
    for (c, text) in cells.iter().enumerate() {
        if !text.is_empty() {
            sheet.write_string(row, c as u16, *text).unwrap();
        }
    }
}

/// A "Read me" sheet, a "London" sheet with a title above headings in the
/// customer's words, a "Leeds" sheet with the portal's headings in another
/// order: `+442079460102` is on both, and the account is `Contoso` in
/// London and `contoso` in Leeds.
fn messy_book(dir: &Path) -> PathBuf {
    let path = dir.join("sites.xlsx");
    let mut book = Workbook::new();
    let readme = book.add_worksheet().set_name("Read me").unwrap();
    strings(readme, 0, &["Read me first"]);
    strings(readme, 1, &["One sheet per site; numbers in E.164."]);

    let london = book.add_worksheet().set_name("London").unwrap();
    strings(london, 0, &["Contoso numbers - London site"]);
    // Row 2 is blank; the headings are on row 3.
    strings(london, 2, &["Phone Number", "Account", DR]);
    strings(london, 3, &["+442079460100", "Contoso", "true"]);
    // Text cells with surrounding spaces, in the number and the account.
    strings(london, 4, &["  +442079460101 ", " Contoso  ", "true"]);
    strings(london, 5, &["+442079460102", "Contoso", "true"]);
    // A numeric cell: the number lost its `+`.
    london.write_number(6, 0, 442079460103.0).unwrap();
    strings(london, 6, &["", "Contoso", "true"]);
    // A spreadsheet error in the account column (B).
    strings(london, 7, &["+442079460104", "", "true"]);
    london
        .write_formula(7, 1, Formula::new("=NA()").set_result("#N/A"))
        .unwrap();

    let leeds = book.add_worksheet().set_name("Leeds").unwrap();
    strings(
        leeds,
        0,
        &[
            DR,
            "accountName",
            "telephoneNumber",
            "configuration_customSipHeader",
        ],
    );
    strings(leeds, 1, &["true", "contoso", "+441134960000", ""]);
    strings(
        leeds,
        2,
        &["true", "contoso", "+442079460102", "site-leeds"],
    );
    strings(
        leeds,
        3,
        &["true", "contoso", "+441134960010..+441134960019", ""],
    );
    // A cell beyond the last heading (column E).
    strings(
        leeds,
        4,
        &["true", "contoso", "+441134960001", "", "stray note"],
    );
    book.save(&path).unwrap();
    path
}

/// The report as maps from heading to cell.
fn report_lines(text: &str) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut rows = reader.records().map(|r| {
        r.unwrap()
            .iter()
            .map(str::to_owned)
            .collect::<Vec<String>>()
    });
    let headings = rows.next().expect("a heading line");
    let lines = rows
        .map(|r| headings.iter().cloned().zip(r).collect())
        .collect();
    (headings, lines)
}

fn find<'a>(
    lines: &'a [BTreeMap<String, String>],
    code: &str,
    sheet: &str,
    row: &str,
) -> &'a BTreeMap<String, String> {
    lines
        .iter()
        .find(|l| l["code"] == code && l["sheet"] == sheet && l["row"] == row)
        .unwrap_or_else(|| panic!("no {code} on {sheet} row {row} in {lines:#?}"))
}

fn validate(dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["validate", "sites.xlsx", "--report", "-"];
    args.extend_from_slice(extra);
    run(dir, &args)
}

#[test]
fn sheet_all_reads_every_sheet_with_headings_as_one() {
    let dir = common::tempdir();
    messy_book(dir.path());
    let mut args = vec!["--sheet", "all", "--write-clean", "clean.csv"];
    args.extend_from_slice(&MAPS);
    let r = validate(dir.path(), &args);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let (headings, lines) = report_lines(&r.stdout);
    assert_eq!(
        headings,
        [
            "sheet",
            "row",
            "telephoneNumber",
            "severity",
            "code",
            "column",
            "message"
        ]
    );

    let skipped = find(&lines, "SHEET_SKIPPED", "Read me", "1");
    assert_eq!(skipped["severity"], "note");
    assert_eq!(
        skipped["message"],
        "sheet 'Read me' has no heading row (first row: 'Read me first'): not read"
    );
    let heading = find(&lines, "HEADER_ROW", "London", "3");
    assert!(
        heading["message"].contains("row 1 above them"),
        "{heading:?}"
    );
    let mapped: Vec<&str> = lines
        .iter()
        .filter(|l| l["code"] == "COLUMN_MAPPED")
        .map(|l| l["sheet"].as_str())
        .collect();
    assert_eq!(mapped, ["London", "London"]);

    // The duplicate across the sheets names the other sheet and row.
    let london = find(&lines, "DUPLICATE", "London", "6");
    assert_eq!(london["message"], "+442079460102 is also in Leeds row 3");
    let leeds = find(&lines, "DUPLICATE", "Leeds", "3");
    assert_eq!(leeds["message"], "+442079460102 is also in London row 6");

    // Contoso in London, contoso in Leeds: a warning on every such row.
    let case: Vec<(&str, &str)> = lines
        .iter()
        .filter(|l| l["code"] == "ACCOUNT_CASE")
        .map(|l| (l["sheet"].as_str(), l["row"].as_str()))
        .collect();
    assert_eq!(
        case,
        [
            ("London", "4"),
            ("London", "5"),
            ("London", "6"),
            ("London", "7"),
            ("Leeds", "2"),
            ("Leeds", "3"),
            ("Leeds", "4"),
            ("Leeds", "5"),
        ]
    );
    assert!(
        find(&lines, "ACCOUNT_CASE", "London", "4")["message"]
            .contains("from 'contoso' (Leeds row 2)"),
        "{lines:#?}"
    );
    assert!(
        find(&lines, "ACCOUNT_CASE", "Leeds", "2")["message"]
            .contains("from 'Contoso' (London row 4)"),
        "{lines:#?}"
    );

    // Cell findings keep their sheet's own columns.
    let numeric = find(&lines, "NUMERIC_CELL", "London", "7");
    assert_eq!(numeric["telephoneNumber"], "+442079460103");
    let error = find(&lines, "CELL_ERROR", "London", "8");
    assert_eq!(error["column"], "accountName");
    assert!(
        error["message"].starts_with("column B (accountName) holds"),
        "{error:?}"
    );
    let extra = find(&lines, "EXTRA_CELLS", "Leeds", "5");
    assert!(extra["message"].contains("from column E"), "{extra:?}");

    // Nothing else is wrong: spaces around text cells are trimmed.
    let errors: Vec<(&str, &str, &str)> = lines
        .iter()
        .filter(|l| l["severity"] == "error")
        .map(|l| (l["sheet"].as_str(), l["row"].as_str(), l["code"].as_str()))
        .collect();
    assert_eq!(
        errors,
        [
            ("London", "8", "CELL_ERROR"),
            ("London", "8", "ACCOUNT_NAME"),
            ("Leeds", "5", "EXTRA_CELLS"),
            ("London", "6", "DUPLICATE"),
            ("Leeds", "3", "DUPLICATE"),
        ]
    );
    // The screen names the sheets too.
    assert!(r.stderr.contains("Read me row 1"), "{}", r.stderr);

    // --write-clean: the portal's format, no sheet column, one row per
    // valid number, trimmed, from both sheets.
    let clean = read_csv(&dir.path().join("clean.csv"));
    assert_eq!(clean[0][0], "telephoneNumber");
    assert_eq!(clean[0][1], "accountName");
    let numbers: Vec<(&str, &str)> = clean[1..]
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str()))
        .collect();
    let mut expected = vec![
        ("+442079460100", "Contoso"),
        ("+442079460101", "Contoso"),
        ("+442079460103", "Contoso"),
        ("+441134960000", "contoso"),
    ];
    let range: Vec<String> = (10..20).map(|n| format!("+4411349600{n}")).collect();
    expected.extend(range.iter().map(|n| (n.as_str(), "contoso")));
    assert_eq!(numbers, expected);

    // A list of the same sheets reads the same, without the "Read me".
    let mut args = vec!["--sheet", "London,Leeds"];
    args.extend_from_slice(&MAPS);
    let listed = validate(dir.path(), &args);
    assert_eq!(listed.code, 1, "{}", listed.stderr);
    let (_, listed_lines) = report_lines(&listed.stdout);
    let without_readme: Vec<_> = lines
        .iter()
        .filter(|l| l["code"] != "SHEET_SKIPPED")
        .cloned()
        .collect();
    assert_eq!(listed_lines, without_readme);

    // By position, and the "Read me" named in the list: skipped with the
    // note.
    let mut args = vec!["--sheet", "1, 3,2"];
    args.extend_from_slice(&MAPS);
    let by_position = validate(dir.path(), &args);
    assert_eq!(by_position.code, 1, "{}", by_position.stderr);
    let (_, position_lines) = report_lines(&by_position.stdout);
    find(&position_lines, "SHEET_SKIPPED", "Read me", "1");
    find(&position_lines, "DUPLICATE", "Leeds", "3");
}

#[test]
fn one_sheet_of_a_workbook_reads_as_before() {
    let dir = common::tempdir();
    messy_book(dir.path());
    let r = validate(dir.path(), &["--sheet", "Leeds"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let (headings, lines) = report_lines(&r.stdout);
    assert_eq!(
        headings,
        [
            "row",
            "telephoneNumber",
            "severity",
            "code",
            "column",
            "message"
        ]
    );
    let codes: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l["row"].as_str(), l["code"].as_str()))
        .collect();
    assert_eq!(codes, [("5", "EXTRA_CELLS")]);

    // The "Read me" alone is refused, as any sheet without headings.
    let r = validate(dir.path(), &["--sheet", "Read me"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("unknown column heading 'Read me first'"));
}

#[test]
fn sheets_that_cannot_be_read_are_named() {
    let dir = common::tempdir();
    messy_book(dir.path());
    // Without --map, London's headings are wrong, not absent: the read
    // stops, naming the sheet, rather than skipping its numbers.
    let r = validate(dir.path(), &["--sheet", "all"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "sites.xlsx, sheet 'London': row 3: unknown column heading 'Phone Number' in column A"
        ),
        "{}",
        r.stderr
    );
    // No sheet with a heading row at all.
    let path = dir.path().join("notes.xlsx");
    let mut book = Workbook::new();
    strings(
        book.add_worksheet().set_name("Read me").unwrap(),
        1,
        &["Read me first"],
    );
    book.add_worksheet().set_name("Empty").unwrap();
    book.save(&path).unwrap();
    let r = run(
        dir.path(),
        &["validate", "notes.xlsx", "--sheet", "all", "--report", "-"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("notes.xlsx: no sheet has a heading row: 'Read me' has no heading row (first row: 'Read me first'); 'Empty' has no cells; give --header-row N"),
        "{}",
        r.stderr
    );
    // A sheet the list names that the workbook lacks.
    let r = validate(dir.path(), &["--sheet", "London,Bristol"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("no sheet 'Bristol'; the workbook has: Read me, London, Leeds"),
        "{}",
        r.stderr
    );
}

/// London and Leeds, `rows` numbers each, all valid, all `contoso`, in two
/// layouts.
fn clean_book(dir: &Path, rows: u32) -> (PathBuf, BTreeMap<u64, String>) {
    let path = dir.join("sites.xlsx");
    let mut book = Workbook::new();
    strings(
        book.add_worksheet().set_name("Read me").unwrap(),
        0,
        &["Read me first"],
    );
    let london = book.add_worksheet().set_name("London").unwrap();
    strings(london, 0, &["Contoso numbers - London site"]);
    strings(london, 1, &["Phone Number", "Account", DR]);
    let mut numbers = BTreeMap::new();
    for i in 0..rows {
        let number = 442079460000 + i as u64;
        strings(london, i + 2, &[&format!("+{number}"), " contoso ", "true"]);
        numbers.insert(number, "contoso".to_owned());
    }
    let leeds = book.add_worksheet().set_name("Leeds").unwrap();
    strings(leeds, 0, &[DR, "telephoneNumber", "accountName"]);
    for i in 0..rows {
        let number = 441134960000 + i as u64;
        strings(leeds, i + 1, &["true", &format!("+{number}"), "contoso"]);
        numbers.insert(number, "contoso".to_owned());
    }
    book.save(&path).unwrap();
    (path, numbers)
}

fn results(path: &Path) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    report_lines(&std::fs::read_to_string(path).unwrap())
}

#[test]
fn import_of_several_sheets_names_them_in_the_results() {
    let dir = common::tempdir();
    clean_book(dir.path(), 5);
    let mut args = vec![
        "import",
        "sites.xlsx",
        "--sheet",
        "all",
        "--emulator",
        "--rate-limit",
        "off",
    ];
    args.extend_from_slice(&MAPS);
    let r = run(dir.path(), &args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (headings, lines) = results(&dir.path().join("sites.results.csv"));
    assert_eq!(headings[0], "sheet");
    assert_eq!(headings[1], "row");
    let places: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["sheet"].as_str(),
                l["row"].as_str(),
                l["telephoneNumber"].as_str(),
            )
        })
        .collect();
    let mut expected = Vec::new();
    let london: Vec<(String, String)> = (0..5)
        .map(|i| ((i + 3).to_string(), format!("+44207946000{i}")))
        .collect();
    let leeds: Vec<(String, String)> = (0..5)
        .map(|i| ((i + 2).to_string(), format!("+44113496000{i}")))
        .collect();
    expected.extend(
        london
            .iter()
            .map(|(r, n)| ("London", r.as_str(), n.as_str())),
    );
    expected.extend(leeds.iter().map(|(r, n)| ("Leeds", r.as_str(), n.as_str())));
    assert_eq!(places, expected);
    assert!(lines.iter().all(|l| l["outcome"] == "ok"), "{lines:#?}");
    let (report_headings, report) = results(&dir.path().join("sites.report.csv"));
    assert_eq!(report_headings[0], "sheet");
    find(&report, "SHEET_SKIPPED", "Read me", "1");
}

#[test]
fn a_stopped_import_of_several_sheets_resumes_exactly() {
    let server = Server::start(EmulatorConfig {
        rate_limit: None,
        seed: SeedSource::Demo,
        ..EmulatorConfig::default()
    });
    let dir = common::tempdir();
    let (input, numbers) = clean_book(dir.path(), 1_000);
    let url = server.url();
    let mut args = vec![
        "import",
        input.to_str().unwrap(),
        "--sheet",
        "London,Leeds",
        "--endpoint",
        &url,
        "--rate-limit",
        "300/min",
    ];
    args.extend_from_slice(&MAPS);
    let child = Command::new(common::bin())
        .args(&args)
        .current_dir(dir.path())
        .env_remove("ACG_ENDPOINT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stop it once a batch has been answered (not after a fixed time,
    // which a loaded machine may not reach), as import_engine does.
    let checkpoint = dir.path().join("sites.results.csv.checkpoint");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline
        && !std::fs::read_to_string(&checkpoint).is_ok_and(|text| text.contains("\"t\":\"done\""))
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: SIGTERM to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let stopped = Run::from(child.wait_with_output().unwrap());
    assert_eq!(stopped.code, 3, "{}", stopped.stderr);
    let results_path = dir.path().join("sites.results.csv");
    let (headings, lines) = results(&results_path);
    assert_eq!(headings[0], "sheet");
    assert_eq!(lines.len(), 2_000);
    let skipped = lines.iter().filter(|l| l["outcome"] == "skipped").count();
    assert!(skipped > 0 && skipped < 2_000, "{skipped}");

    let r = run(
        dir.path(),
        &[
            "resume",
            checkpoint.to_str().unwrap(),
            "--rate-limit",
            "off",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(server.numbers(), numbers);
    assert_eq!(server.stats().max_writes_per_number, 1);
    let (headings, lines) = results(&results_path);
    assert_eq!(headings[0], "sheet");
    assert_eq!(lines.len(), 2_000);
    assert!(lines.iter().all(|l| l["outcome"] == "ok"));
    assert_eq!(
        (lines[0]["sheet"].as_str(), lines[0]["row"].as_str()),
        ("London", "3")
    );
    assert_eq!(
        (lines[1_999]["sheet"].as_str(), lines[1_999]["row"].as_str()),
        ("Leeds", "1001")
    );
}
