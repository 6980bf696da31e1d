//! Every `.xlsx` acgbulk writes, opened as Excel would: the real binary
//! against an emulator on loopback, its workbooks read with calamine (cell
//! values) and from their zip (frozen pane, filter, widths, styles).

mod common;

use acgbulk::emulator::{EmulatorConfig, SeedSource};
use calamine::{Data, Range, Reader};
use common::{read_csv, Run, Server};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn quick(seed: SeedSource) -> EmulatorConfig {
    EmulatorConfig {
        rate_limit: None,
        sync_delay: Duration::from_millis(100),
        seed,
        ..EmulatorConfig::default()
    }
}

fn acg(dir: &Path, url: &str, args: &[&str]) -> Run {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--endpoint", url, "--rate-limit", "off"]);
    common::run(dir, &all)
}

/// The sheets of a workbook, in order, with their cells.
fn read_sheets(path: &Path) -> Vec<(String, Range<Data>)> {
    let mut book = calamine::open_workbook_auto(path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let names = book.sheet_names();
    names
        .into_iter()
        .map(|name| {
            let range = book.worksheet_range(&name).unwrap();
            (name, range)
        })
        .collect()
}

/// A file of the workbook's zip (`xl/worksheets/sheet2.xml`).
fn part(path: &Path, name: &str) -> String {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut text = String::new();
    zip.by_name(name)
        .unwrap_or_else(|e| panic!("{name} in {}: {e}", path.display()))
        .read_to_string(&mut text)
        .unwrap();
    text
}

fn text(cell: Option<&Data>) -> String {
    match cell {
        Some(Data::String(s)) => s.clone(),
        Some(Data::Empty) | None => String::new(),
        Some(other) => format!("{other:?}"),
    }
}

fn row(range: &Range<Data>, r: usize) -> Vec<String> {
    (0..range.width())
        .map(|c| text(range.get((r, c))))
        .collect()
}

/// The column widths of a sheet's XML, in characters, one per column
/// (`<col min max>` spans neighbours of the same width).
fn col_widths(xml: &str) -> Vec<f64> {
    let mut widths = Vec::new();
    for c in regex::Regex::new(r#"<col min="([0-9]+)" max="([0-9]+)" width="([0-9.]+)""#)
        .unwrap()
        .captures_iter(xml)
    {
        let (min, max): (usize, usize) = (c[1].parse().unwrap(), c[2].parse().unwrap());
        assert_eq!(min, widths.len() + 1, "columns in order");
        widths.extend(std::iter::repeat_n(
            c[3].parse::<f64>().unwrap(),
            max - min + 1,
        ));
    }
    widths
}

/// A column's letters (0 is A, 26 is AA).
fn column_letters(c: usize) -> String {
    if c < 26 {
        ((b'A' + c as u8) as char).to_string()
    } else {
        format!("{}{}", column_letters(c / 26 - 1), column_letters(c % 26))
    }
}

/// The style index of a cell (`A5`), 0 when it has none.
fn style(xml: &str, cell: &str) -> u32 {
    let pattern = format!(r#"<c r="{cell}"(?: s="([0-9]+)")?"#);
    let found = regex::Regex::new(&pattern)
        .unwrap()
        .captures(xml)
        .unwrap_or_else(|| panic!("no cell {cell}"));
    found.get(1).map_or(0, |s| s.as_str().parse().unwrap())
}

/// A table sheet (the `index`th, from 1) whose heading row is bold, frozen
/// and filtered over `columns` columns, widths fitted and capped.
fn assert_table_sheet(path: &Path, index: usize, columns: usize) -> String {
    let xml = part(path, &format!("xl/worksheets/sheet{index}.xml"));
    assert!(
        regex::Regex::new(r#"<pane [^>]*ySplit="1"[^>]*state="frozen"/>"#)
            .unwrap()
            .is_match(&xml),
        "heading row not frozen: {}",
        &xml[..xml.len().min(800)]
    );
    let last = column_letters(columns - 1);
    assert!(
        regex::Regex::new(&format!(r#"<autoFilter ref="A1:{last}[0-9]+"/>"#))
            .unwrap()
            .is_match(&xml),
        "no filter over A..{last}"
    );
    let widths = col_widths(&xml);
    assert_eq!(widths.len(), columns, "a width per column");
    assert!(
        widths.iter().all(|&w| (4.0..=61.0).contains(&w)),
        "{widths:?}"
    );
    // Bold headings: the heading cells' style has a bold font.
    let styles = part(path, "xl/styles.xml");
    assert_ne!(style(&xml, "A1"), 0, "A1 has a style");
    assert!(styles.contains("<b/>"), "{styles}");
    xml
}

/// The rows under the heading `block` of a Summary sheet (col 0 name ->
/// the row's other cells), up to the blank row that ends the block.
fn block(summary: &Range<Data>, heading: &str) -> BTreeMap<String, Vec<Data>> {
    let start = (0..summary.height())
        .find(|&r| text(summary.get((r, 0))) == heading)
        .unwrap_or_else(|| panic!("no block {heading}"));
    let mut rows = BTreeMap::new();
    for r in start + 1..summary.height() {
        let name = text(summary.get((r, 0)));
        if name.is_empty() {
            break;
        }
        let values = (1..summary.width())
            .map(|c| summary.get((r, c)).cloned().unwrap_or(Data::Empty))
            .collect();
        rows.insert(name, values);
    }
    rows
}

fn count(values: &[Data]) -> u64 {
    match values.first() {
        Some(Data::Float(f)) => *f as u64,
        Some(Data::Int(i)) => *i as u64,
        other => panic!("not a count: {other:?}"),
    }
}

/// dr-only has Direct Routing only, so a Zoom number is refused by the
/// service; ghost is no account at all.
fn dr_only_server(dir: &Path) -> Server {
    let accounts = r#"{ "accounts": [ { "name": "dr-only", "serviceDetails": { "teamsDirectRouting": { "enabled": true } } } ] }"#;
    let seed = dir.join("seed.json");
    std::fs::write(&seed, accounts).unwrap();
    Server::start(quick(SeedSource::File(seed)))
}

/// 20 numbers: 16 good, one refused by the service (Zoom on dr-only), one
/// of an account the gateway lacks, two invalid.
fn mixed_sheet(dir: &Path) -> PathBuf {
    let mut csv = String::from("telephoneNumber,accountName,serviceDetails_teamsDirectRouting_enabled,serviceDetails_zoomPhoneCloudPeering_enabled\n");
    for i in 0..20 {
        let line = match i {
            5 => format!("+1425555{:04},dr-only,true,true\n", 1000 + i),
            9 => format!("+1425555{:04},ghost,true,\n", 1000 + i),
            12 => "+14255,dr-only,true,\n".to_owned(),
            15 => "not a number,dr-only,true,\n".to_owned(),
            _ => format!("+1425555{:04},dr-only,true,\n", 1000 + i),
        };
        csv.push_str(&line);
    }
    let path = dir.join("mixed.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

#[test]
fn import_results_workbook_opens_on_its_summary_with_failures_highlighted() {
    let dir = common::tempdir();
    let server = dr_only_server(dir.path());
    let url = server.url();
    let input = mixed_sheet(dir.path());
    let results = dir.path().join("results.xlsx");
    let run = acg(
        dir.path(),
        &url,
        &[
            "import",
            input.to_str().unwrap(),
            "--skip-invalid",
            "--keep-checkpoint",
            "--results",
            results.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        dir.path().join("results.xlsx.checkpoint").exists(),
        "the checkpoint path rule holds"
    );

    let sheets = read_sheets(&results);
    let names: Vec<&str> = sheets.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Summary", "Results"], "opens on the Summary");
    let lines = &sheets[1].1;
    let headings = row(lines, 0);
    assert_eq!(
        headings[..5],
        ["row", "telephoneNumber", "accountName", "action", "outcome"]
    );
    assert_eq!(lines.height(), 21, "a line per number");
    // The `+` survives: numbers are text cells.
    assert_eq!(
        lines.get((1, 1)),
        Some(&Data::String("+14255551000".into()))
    );
    let outcome_of = |r: usize| text(lines.get((r, 4)));
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    for r in 1..lines.height() {
        *outcomes.entry(outcome_of(r)).or_default() += 1;
        let code = text(lines.get((r, 6)));
        if !code.is_empty() {
            *codes.entry(code).or_default() += 1;
        }
    }
    assert_eq!(outcomes["ok"], 16, "{outcomes:?}");
    assert_eq!(outcomes["failed"], 2, "{outcomes:?}");
    assert_eq!(outcomes["invalid"], 2, "{outcomes:?}");

    // The Summary's counts are the run's.
    let summary = &sheets[0].1;
    let by_outcome = block(summary, "Outcome");
    for (outcome, expected) in [("ok", 16), ("failed", 2), ("invalid", 2), ("skipped", 0)] {
        assert_eq!(count(&by_outcome[outcome]), expected, "{outcome}");
    }
    assert_eq!(count(&by_outcome["total"]), 20);
    let by_code = block(summary, "Error code");
    assert_eq!(count(&by_code["ServiceNotEnabledOnAccount"]), 1);
    assert_eq!(count(&by_code["AccountNotFound"]), 1);
    let listed: BTreeMap<String, u64> = by_code
        .iter()
        .map(|(code, values)| (code.clone(), count(values)))
        .collect();
    assert_eq!(listed, codes, "every error code of the lines, counted");
    let by_account = block(summary, "Account");
    // ok, failed, invalid, skipped, total.
    let counts = |account: &str| -> Vec<u64> {
        by_account[account]
            .iter()
            .take(5)
            .map(|v| count(std::slice::from_ref(v)))
            .collect()
    };
    assert_eq!(counts("ghost"), [0, 1, 0, 0, 1]);
    assert_eq!(counts("dr-only")[..2], [16, 1]);
    let settings = block(summary, "Setting");
    assert_eq!(text(settings["action"].first()), text(lines.get((1, 3))));
    assert!(text(settings["input"].first()).ends_with("mixed.csv"));
    assert!(text(settings["run created"].first()).starts_with("20"));
    assert_eq!(text(settings["state"].first()), "finished");

    // Failed and invalid rows are filled; ok rows are not.
    let xml = assert_table_sheet(&results, 2, headings.len());
    let styles = part(&results, "xl/styles.xml");
    assert!(styles.contains("FFFFC7CE"), "the highlight fill: {styles}");
    let mut highlighted = None;
    for r in 1..lines.height() {
        let cell = format!("B{}", r + 1);
        let s = style(&xml, &cell);
        match outcome_of(r).as_str() {
            "ok" => assert_eq!(s, 0, "ok row {cell} is plain"),
            _ => {
                assert_ne!(s, 0, "{} row {cell} is highlighted", outcome_of(r));
                assert!(highlighted.is_none_or(|h| h == s), "one highlight style");
                highlighted = Some(s);
            }
        }
    }
}

#[test]
fn a_stopped_and_resumed_import_writes_a_complete_workbook() {
    let server = Server::start(quick(SeedSource::Demo));
    let dir = common::tempdir();
    let url = server.url();
    let input = dir.path().join("slow.csv");
    let file = std::fs::File::create(&input).unwrap();
    acgbulk::sample::write_csv(
        file,
        acgbulk::sample::SampleOptions {
            rows: 2_000,
            seed: 7,
            accounts: 2,
            mistakes: 0.0,
            ranges: 0.0,
            range_size: 1,
        },
    )
    .unwrap();
    let results = dir.path().join("slow.xlsx");
    let child = Command::new(common::bin())
        .args([
            "import",
            input.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
            "--endpoint",
            &url,
            "--rate-limit",
            "300/min",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let checkpoint = dir.path().join("slow.xlsx.checkpoint");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline
        && !std::fs::read_to_string(&checkpoint).is_ok_and(|text| text.contains("\"t\":\"done\""))
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    // No workbook is half-written as the run goes.
    assert!(!results.exists(), "written only at the end or on a stop");
    // SAFETY: SIGTERM to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let run = Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, 3, "{}", run.stderr);

    let stopped = read_sheets(&results);
    let lines = &stopped[1].1;
    assert_eq!(lines.height(), 2_001, "every number, sent or not");
    let skipped = (1..lines.height())
        .filter(|&r| text(lines.get((r, 4))) == "skipped")
        .count() as u64;
    assert!(skipped > 0 && skipped < 2_000, "{skipped}");
    let by_outcome = block(&stopped[0].1, "Outcome");
    assert_eq!(count(&by_outcome["skipped"]), skipped);
    assert_eq!(count(&by_outcome["ok"]), 2_000 - skipped);
    let settings = block(&stopped[0].1, "Setting");
    assert!(text(settings["state"].first()).starts_with("stopped"));

    let run = common::run(
        dir.path(),
        &[
            "resume",
            checkpoint.to_str().unwrap(),
            "--rate-limit",
            "off",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let resumed = read_sheets(&results);
    let lines = &resumed[1].1;
    assert_eq!(lines.height(), 2_001);
    assert!((1..lines.height()).all(|r| text(lines.get((r, 4))) == "ok"));
    let by_outcome = block(&resumed[0].1, "Outcome");
    assert_eq!(count(&by_outcome["ok"]), 2_000);
    assert_eq!(count(&by_outcome["skipped"]), 0);
    assert_table_sheet(&results, 2, row(lines, 0).len());
    assert_eq!(server.stats().max_writes_per_number, 1);
}

#[test]
fn validate_report_workbook_counts_the_findings() {
    let dir = common::tempdir();
    let mistakes = common::samples().join("mistakes.csv");
    let report = dir.path().join("report.xlsx");
    let run = common::run(
        dir.path(),
        &[
            "validate",
            mistakes.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let csv_report = dir.path().join("report.csv");
    let run = common::run(
        dir.path(),
        &[
            "validate",
            mistakes.to_str().unwrap(),
            "--report",
            csv_report.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let csv_lines = read_csv(&csv_report);

    let sheets = read_sheets(&report);
    let names: Vec<&str> = sheets.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Summary", "Findings"]);
    let findings = &sheets[1].1;
    assert_eq!(row(findings, 0), csv_lines[0], "the CSV report's headings");
    assert_eq!(findings.height(), csv_lines.len(), "a row per finding");
    for (r, line) in csv_lines.iter().enumerate() {
        assert_eq!(&row(findings, r), line, "row {r} as in the CSV report");
    }
    // Per code and severity, as the CSV report has them.
    let mut expected: BTreeMap<(String, String), u64> = BTreeMap::new();
    for line in &csv_lines[1..] {
        *expected
            .entry((line[3].clone(), line[2].clone()))
            .or_default() += 1;
    }
    let summary = &sheets[0].1;
    let by_code: BTreeMap<(String, String), u64> = block(summary, "Code")
        .into_iter()
        .map(|(code, values)| {
            let severity = text(values.first());
            ((code, severity), count(&values[1..]))
        })
        .collect();
    assert_eq!(by_code, expected);
    let counts = block(summary, "Outcome");
    let invalid = count(&counts["invalid numbers"]);
    assert!(invalid > 0);
    assert_eq!(
        count(&counts["valid numbers"]) + invalid,
        count(&counts["numbers"])
    );
    let by_account = block(summary, "Account");
    let account_invalid: u64 = by_account
        .values()
        .map(|v| count(std::slice::from_ref(&v[1])))
        .sum();
    assert_eq!(
        account_invalid, invalid,
        "invalid numbers by account add up"
    );

    let xml = assert_table_sheet(&report, 2, csv_lines[0].len());
    for (r, line) in csv_lines.iter().enumerate().skip(1) {
        let s = style(&xml, &format!("C{}", r + 1));
        assert_eq!(s != 0, line[2] == "error", "row {r}: {line:?}");
    }
}

#[test]
fn export_and_reconcile_workbooks() {
    let server = Server::start(quick(SeedSource::Demo));
    let dir = common::tempdir();
    let url = server.url();
    let mut csv = String::from("telephoneNumber,accountName,serviceDetails_teamsOperatorConnect_enabled,serviceDetails_teamsOperatorConnect_configuration_usage,serviceDetails_teamsOperatorConnect_configuration_choosableCapabilities,serviceDetails_teamsOperatorConnect_configuration_allowTenantAddressUpdate\n");
    for i in 0..30 {
        let account = ["contoso", "fabrikam"][i % 2];
        csv.push_str(&format!(
            "+1425200{i:04},{account},true,CallingUserAssignment,InboundCalling,true\n"
        ));
    }
    std::fs::write(dir.path().join("desired.csv"), &csv).unwrap();
    let run = acg(dir.path(), &url, &["import", "desired.csv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let run = acg(
        dir.path(),
        &url,
        &["export", "numbers", "-o", "numbers.xlsx"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let exported = dir.path().join("numbers.xlsx");
    let sheets = read_sheets(&exported);
    assert_eq!(sheets.len(), 1);
    assert_eq!(sheets[0].0, "Numbers", "named after what it holds");
    let numbers = &sheets[0].1;
    assert_eq!(numbers.height(), 31);
    let headings = row(numbers, 0);
    assert_eq!(headings[0], "telephoneNumber");
    assert!(matches!(numbers.get((1, 0)), Some(Data::String(n)) if n.starts_with("+1425200")));
    let xml = assert_table_sheet(&exported, 1, headings.len());
    // Long headings are capped; short columns are narrower.
    let widths = col_widths(&xml);
    let longest = headings.iter().map(String::len).max().unwrap();
    assert!(longest > 60, "a heading longer than the cap: {longest}");
    let widest = widths.iter().cloned().fold(0.0, f64::max);
    assert!((59.0..=61.0).contains(&widest), "capped at 60: {widths:?}");
    assert!(
        widths[0] > 12.0 && widths[0] < 30.0,
        "telephoneNumber fitted: {}",
        widths[0]
    );

    // Drift: one number changed account, one more desired.
    csv = csv.replace("+14252000001,fabrikam", "+14252000001,contoso");
    csv.push_str("+14252009999,contoso,true,CallingUserAssignment,InboundCalling,true\n");
    std::fs::write(dir.path().join("desired.csv"), &csv).unwrap();
    let export_csv = dir.path().join("numbers.csv");
    let run = acg(
        dir.path(),
        &url,
        &["export", "numbers", "-o", "numbers.csv"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let actual = export_csv.to_str().unwrap();
    let run = common::run(
        dir.path(),
        &[
            "reconcile",
            "desired.csv",
            "--actual",
            actual,
            "-o",
            "drift",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let run = common::run(
        dir.path(),
        &[
            "reconcile",
            "desired.csv",
            "--actual",
            actual,
            "-o",
            "drift.xlsx",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let workbook = dir.path().join("drift.xlsx");
    let sheets = read_sheets(&workbook);
    let names: Vec<&str> = sheets.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Summary", "Differences", "To upsert", "To delete"]);
    for (i, file) in ["diff.csv", "to-upsert.csv", "to-delete.csv"]
        .iter()
        .enumerate()
    {
        let lines = read_csv(&dir.path().join("drift").join(file));
        let sheet = &sheets[i + 1].1;
        let cells: Vec<Vec<String>> = (0..sheet.height()).map(|r| row(sheet, r)).collect();
        assert_eq!(cells, lines, "{file} and its sheet hold the same");
        assert_table_sheet(&workbook, i + 2, lines[0].len());
    }
    let counts = block(&sheets[0].1, "Kind");
    assert_eq!(count(&counts["moved"]), 1);
    assert_eq!(count(&counts["missing"]), 1);
    assert_eq!(count(&counts["same"]), 29);
    assert!(dir.path().join("drift.report.xlsx").exists());

    // --apply sends from CSV files: a workbook output is refused.
    let run = acg(
        dir.path(),
        &url,
        &[
            "reconcile",
            "desired.csv",
            "--live",
            "-o",
            "x.xlsx",
            "--apply",
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("-o DIR"), "{}", run.stderr);
    assert!(!dir.path().join("x.xlsx").exists());
}

#[test]
fn account_job_results_workbook() {
    let server = Server::start(quick(SeedSource::Empty));
    let dir = common::tempdir();
    std::fs::write(
        dir.path().join("accounts.csv"),
        "name,serviceDetails_teamsDirectRouting_enabled\nalpha,false\nbad name!,false\nbeta,false\n",
    )
    .unwrap();
    let run = acg(
        dir.path(),
        &server.url(),
        &[
            "accounts",
            "import",
            "accounts.csv",
            "--results",
            "accounts.xlsx",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let workbook = dir.path().join("accounts.xlsx");
    let sheets = read_sheets(&workbook);
    assert_eq!(sheets[0].0, "Summary");
    assert_eq!(sheets[1].0, "Results");
    let lines = &sheets[1].1;
    assert_eq!(lines.height(), 4);
    let by_outcome = block(&sheets[0].1, "Outcome");
    let all: Vec<Vec<String>> = (0..lines.height()).map(|r| row(lines, r)).collect();
    assert_eq!(count(&by_outcome["ok"]), 2, "{all:?}");
    assert_eq!(count(&by_outcome["invalid"]), 1, "{all:?}");
    let xml = assert_table_sheet(&workbook, 2, row(lines, 0).len());
    for r in 1..lines.height() {
        let invalid = text(lines.get((r, 3))) == "invalid";
        assert_eq!(style(&xml, &format!("A{}", r + 1)) != 0, invalid, "row {r}");
    }
}
