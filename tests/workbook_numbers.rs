//! Turning what customers write into exactly the numbers they mean, end to
//! end through the binary: canonical E.164 only, invalid numbers refused,
//! numeric cells read both ways, ranges as people write them, headings in
//! the customer's words, `--write-clean`, and accounts checked before the
//! first write.

mod common;

use acgbulk::emulator::{EmulatorConfig, SeedSource};
use common::{read_csv, run, Server};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

const DR: &str = "telephoneNumber,accountName,serviceDetails_teamsDirectRouting_enabled";

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// (row, severity, code) of each finding in a report.
fn findings(path: &Path) -> Vec<(String, String, String, String)> {
    read_csv(path)
        .into_iter()
        .skip(1)
        .map(|r| (r[0].clone(), r[2].clone(), r[3].clone(), r[5].clone()))
        .collect()
}

fn numbers_in(path: &Path) -> Vec<String> {
    read_csv(path)
        .into_iter()
        .skip(1)
        .map(|r| r[0].clone())
        .collect()
}

#[test]
fn a_trunk_zero_is_not_canonical_unless_normalized() {
    let dir = common::tempdir();
    write(
        dir.path(),
        "uk.csv",
        &format!("{DR}\n+4402079460116,contoso,true\n+44 (0)20 7946 0117,contoso,true\n"),
    );
    let r = run(dir.path(), &["validate", "uk.csv", "--report", "r.csv"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let report = findings(&dir.path().join("r.csv"));
    assert_eq!(report[0].2, "NOT_CANONICAL", "{report:?}");
    assert!(report[0].3.contains("+442079460116"), "{report:?}");
    assert_eq!(report[1].2, "E164_FORMAT", "{report:?}");

    let r = run(
        dir.path(),
        &[
            "validate",
            "uk.csv",
            "--normalize",
            "--report",
            "r.csv",
            "--write-clean",
            "clean.csv",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let report = findings(&dir.path().join("r.csv"));
    assert!(report.iter().all(|f| f.2 == "NORMALIZED"), "{report:?}");
    assert!(
        report[1].3.contains("'+44 (0)20 7946 0117'") && report[1].3.contains("+442079460117"),
        "names both: {report:?}"
    );
    assert_eq!(
        numbers_in(&dir.path().join("clean.csv")),
        ["+442079460116", "+442079460117"]
    );
}

#[test]
fn numbers_the_metadata_calls_invalid_are_errors_unless_allowed() {
    let dir = common::tempdir();
    write(
        dir.path(),
        "new.csv",
        &format!("{DR}\n+441632960001,contoso,true\n+442079460001,contoso,true\n"),
    );
    let r = run(dir.path(), &["validate", "new.csv", "--report", "r.csv"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let report = findings(&dir.path().join("r.csv"));
    assert_eq!(
        report,
        [(
            "2".to_owned(),
            "error".to_owned(),
            "NUMBER_NOT_VALID".to_owned(),
            report[0].3.clone()
        )]
    );
    assert!(report[0].3.contains("--allow-invalid-numbers"));
    let r = run(
        dir.path(),
        &[
            "validate",
            "new.csv",
            "--report",
            "r.csv",
            "--allow-invalid-numbers",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(findings(&dir.path().join("r.csv"))[0].1, "warning");
}

/// A sheet typed into Excel: numbers stored as numeric cells.
fn numeric_workbook(path: &Path) {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, heading) in DR.split(',').enumerate() {
        sheet.write_string(0, c as u16, heading).unwrap();
    }
    let rows: [(f64, bool); 5] = [
        // 020 7946 0115 typed as a number: the leading 0 is gone.
        (2079460115.0, true),
        // +44 20 7946 0103 typed as a number: the + is gone; read as
        // international digits or as a GB national number, it is the same.
        (442079460103.0, true),
        // GB +443723372835 or Estonia +3723372835: two valid numbers.
        (3723372835.0, true),
        (-442079460104.0, true),
        (44207946010.5, true),
    ];
    for (i, (value, _)) in rows.iter().enumerate() {
        let r = i as u32 + 1;
        sheet.write_number(r, 0, *value).unwrap();
        sheet.write_string(r, 1, "contoso").unwrap();
        sheet.write_string(r, 2, "true").unwrap();
    }
    // Excel turned what was typed into a date.
    let date = rust_xlsxwriter::ExcelDateTime::from_ymd(2024, 1, 5).unwrap();
    let format = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
    sheet
        .write_datetime_with_format(6, 0, &date, &format)
        .unwrap();
    sheet.write_string(6, 1, "contoso").unwrap();
    sheet.write_string(6, 2, "true").unwrap();
    book.save(path).unwrap();
}

#[test]
fn numeric_cells_are_read_both_ways_and_must_mean_one_number() {
    let dir = common::tempdir();
    numeric_workbook(&dir.path().join("typed.xlsx"));
    let r = run(
        dir.path(),
        &[
            "validate",
            "typed.xlsx",
            "--default-country",
            "GB",
            "--report",
            "r.csv",
            "--write-clean",
            "clean.csv",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let report = findings(&dir.path().join("r.csv"));
    let by_row = |row: &str| -> Vec<(String, String)> {
        report
            .iter()
            .filter(|f| f.0 == row)
            .map(|f| (f.2.clone(), f.3.clone()))
            .collect()
    };
    let row2 = by_row("2");
    assert_eq!(row2[0].0, "NUMERIC_CELL", "{report:?}");
    assert!(
        row2[0].1.contains("+442079460115") && row2[0].1.contains("national number of GB"),
        "{row2:?}"
    );
    assert_eq!(by_row("3")[0].0, "NUMERIC_CELL");
    let ambiguous = by_row("4");
    assert_eq!(ambiguous[0].0, "AMBIGUOUS_NUMBER", "{report:?}");
    assert!(ambiguous[0].1.contains("+443723372835") && ambiguous[0].1.contains("+3723372835"));
    assert!(by_row("5")[0].1.contains("negative"), "{report:?}");
    assert!(by_row("6")[0].1.contains("fractional"), "{report:?}");
    assert!(by_row("7")[0].1.contains("date"), "{report:?}");
    // Exactly the numbers meant, and nothing else, would be sent.
    assert_eq!(
        numbers_in(&dir.path().join("clean.csv")),
        ["+442079460115", "+442079460103"]
    );

    // Without a default country, the cell that lost its 0 is no number.
    let r = run(dir.path(), &["validate", "typed.xlsx", "--report", "r.csv"]);
    assert_eq!(r.code, 1);
    let report = findings(&dir.path().join("r.csv"));
    let row2: Vec<_> = report.iter().filter(|f| f.0 == "2").collect();
    assert_eq!(row2[0].2, "NUMBER_NOT_VALID", "{report:?}");
    assert!(row2[0].3.contains("--default-country"), "{report:?}");
}

#[test]
fn ranges_as_people_write_them() {
    let dir = common::tempdir();
    write(
        dir.path(),
        "ranges.csv",
        &format!(
            "{DR}\n\"+44 113 496 0000 - +44 113 496 0099\",contoso,true\n\
             0113 496 0100 to 0113 496 0199,contoso,true\n\
             +441134960200..+441134960209,contoso,true\n"
        ),
    );
    let r = run(
        dir.path(),
        &[
            "validate",
            "ranges.csv",
            "--normalize",
            "--default-country",
            "GB",
            "--write-clean",
            "clean.csv",
            "--report",
            "r.csv",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let numbers = numbers_in(&dir.path().join("clean.csv"));
    let expected: Vec<String> = (441134960000u64..=441134960209)
        .map(|n| format!("+{n}"))
        .collect();
    assert_eq!(numbers, expected);
    // import --dry-run writes the same clean sheet, and sends nothing.
    let r = run(
        dir.path(),
        &[
            "import",
            "ranges.csv",
            "--normalize",
            "--default-country",
            "GB",
            "--dry-run",
            "--write-clean",
            "planned.csv",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read(dir.path().join("planned.csv")).unwrap(),
        std::fs::read(dir.path().join("clean.csv")).unwrap()
    );
    // The clean sheet validates as it is, with nothing to say.
    let r = run(
        dir.path(),
        &["validate", "clean.csv", "--report", "again.csv"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        read_csv(&dir.path().join("again.csv")).len(),
        1,
        "no findings"
    );
}

#[test]
fn headings_in_the_customers_words_under_a_title() {
    let dir = common::tempdir();
    write(
        dir.path(),
        "customer.csv",
        "Contoso Ltd - numbers to migrate,,\nExported 2026-11-01,,\n,,\n\
         Phone Number , Account,Direct Routing\n\
         +442079460120,contoso,yes\n",
    );
    let maps = [
        "--map",
        "phone number=telephoneNumber",
        "--map",
        "ACCOUNT=accountName",
        "--map",
        "Direct Routing=serviceDetails_teamsDirectRouting_enabled",
    ];
    let mut args = vec!["validate", "customer.csv", "--report", "r.csv"];
    args.extend(maps);
    let r = run(dir.path(), &args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let report = findings(&dir.path().join("r.csv"));
    assert_eq!(report[0].1, "note");
    assert_eq!(report[0].2, "HEADER_ROW");
    assert!(report[0].3.contains("rows 1-2"), "{report:?}");
    let mapped: Vec<_> = report.iter().filter(|f| f.2 == "COLUMN_MAPPED").collect();
    assert_eq!(mapped.len(), 3, "{report:?}");
    assert!(mapped[0]
        .3
        .contains("'Phone Number' read as telephoneNumber"));

    // --header-row names the row; a wrong one is an input error.
    args.extend(["--header-row", "4"]);
    assert_eq!(run(dir.path(), &args).code, 0);
    let r = run(
        dir.path(),
        &["validate", "customer.csv", "--header-row", "3"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("row 3, given by --header-row, is empty"),
        "{}",
        r.stderr
    );
    // Without the mappings: no heading row, and the error says what to do.
    let r = run(dir.path(), &["validate", "customer.csv"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--map"), "{}", r.stderr);
    // A mapping to a field that does not exist is a usage error.
    let r = run(
        dir.path(),
        &[
            "validate",
            "customer.csv",
            "--map",
            "Phone Number=telefoneNumber",
        ],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("did you mean 'telephoneNumber'"),
        "{}",
        r.stderr
    );
}

#[test]
fn accounts_are_checked_before_the_first_write() {
    let server = Server::start(EmulatorConfig {
        rate_limit: None,
        sync_delay: Duration::from_millis(100),
        seed: SeedSource::Demo,
        ..EmulatorConfig::default()
    });
    let dir = common::tempdir();
    let mut sheet = format!("{DR}\n");
    for i in 0..5 {
        sheet.push_str(&format!("+4420794602{i:02},contoso,true\n"));
    }
    for i in 5..8 {
        sheet.push_str(&format!("+4420794602{i:02},Contoso,true\n"));
    }
    write(dir.path(), "case.csv", &sheet);

    // Offline, the two spellings are flagged on every such row.
    let r = run(dir.path(), &["validate", "case.csv", "--report", "r.csv"]);
    assert_eq!(r.code, 0, "warnings only: {}", r.stderr);
    let report = findings(&dir.path().join("r.csv"));
    assert_eq!(report.iter().filter(|f| f.2 == "ACCOUNT_CASE").count(), 8);
    let row7 = report.iter().find(|f| f.0 == "7").unwrap();
    assert!(row7.3.contains("'contoso' (row 2)"), "{row7:?}");

    let before = server.stats().counters.writes_applied;
    let r = run(
        dir.path(),
        &["import", "case.csv", "--endpoint", &server.url()],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("did you mean 'contoso'?"), "{}", r.stderr);
    let results = read_csv(&dir.path().join("case.results.csv"));
    let failed: BTreeSet<String> = results
        .iter()
        .filter(|l| l[4] == "failed")
        .map(|l| {
            assert_eq!(l[6], "AccountNotFound", "{l:?}");
            assert!(l[7].contains("did you mean 'contoso'?"), "{l:?}");
            assert_eq!(l[5], "", "no request was sent: {l:?}");
            l[1].clone()
        })
        .collect();
    assert_eq!(failed.len(), 3, "{results:?}");
    // One batch for the five good numbers, none for the others.
    assert_eq!(server.stats().counters.writes_applied - before, 1);
    let held = server.numbers();
    assert!(held.contains_key(&442079460200));
    assert!(!held.contains_key(&442079460205));
}
