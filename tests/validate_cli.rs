//! `acgbulk validate` end to end: real files, the real binary.

mod common;

use common::{read_csv, run, run_with_stdin, samples, tempdir};
use std::collections::BTreeSet;
use std::fs;

fn findings(report: &std::path::Path) -> Vec<(u64, String, String)> {
    read_csv(report)
        .into_iter()
        .skip(1)
        .map(|r| (r[0].parse().unwrap(), r[2].clone(), r[3].clone()))
        .collect()
}

#[test]
fn clean_samples_pass_with_an_empty_report() {
    let dir = tempdir();
    for sample in [
        "operator-connect.csv",
        "direct-routing.csv",
        "mixed-ranges.csv",
    ] {
        let report = dir.path().join(format!("{sample}.report.csv"));
        let input = samples().join(sample);
        let r = run(
            dir.path(),
            &[
                "validate",
                input.to_str().unwrap(),
                "--report",
                report.to_str().unwrap(),
            ],
        );
        assert_eq!(r.code, 0, "{sample}: {}", r.stderr);
        let rows = read_csv(&report);
        assert_eq!(
            rows,
            vec![vec![
                "row",
                "telephoneNumber",
                "severity",
                "code",
                "column",
                "message"
            ]]
        );
    }
}

#[test]
fn every_mistake_is_reported_on_its_row() {
    let dir = tempdir();
    let report = dir.path().join("report.csv");
    let input = samples().join("mistakes.csv");
    let r = run(
        dir.path(),
        &[
            "validate",
            input.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let got: BTreeSet<(u64, String, String)> = findings(&report).into_iter().collect();
    let expected: BTreeSet<(u64, String, String)> = [
        (2, "error", "E164_FORMAT"),
        (3, "error", "COUNTRY_CODE_UNKNOWN"),
        (4, "error", "NUMBER_LENGTH"),
        (5, "error", "NUMBER_NOT_VALID"),
        (6, "error", "ACCOUNT_NAME"),
        (7, "error", "NO_SERVICE"),
        (8, "error", "USAGE"),
        (9, "error", "CAPABILITY"),
        (10, "error", "ADDITIONAL_USAGE"),
        (11, "error", "ADDRESS_REQUIRED"),
        (12, "error", "DISPLAYED_COUNTRY_CODE"),
        (13, "error", "SIP_HEADER"),
        (14, "error", "BOOLEAN"),
        (15, "error", "ASSIGNMENT_STATUS"),
        (16, "error", "DUPLICATE"),
        (17, "error", "DUPLICATE"),
        (18, "error", "RANGE"),
        (19, "error", "E164_FORMAT"),
    ]
    .into_iter()
    .map(|(r, s, c)| (r, s.to_owned(), c.to_owned()))
    .collect();
    assert_eq!(got, expected);
    assert!(r.stderr.contains("18 rows"), "{}", r.stderr);
    assert!(r.stderr.contains("0 valid, 18 invalid"), "{}", r.stderr);
    // The duplicate names the other row.
    let rows = read_csv(&report);
    let dup = rows
        .iter()
        .find(|r| r[0] == "16" && r[3] == "DUPLICATE")
        .unwrap();
    assert!(dup[5].contains("row 17"), "{dup:?}");
}

#[test]
fn json_summary_on_stdout() {
    let dir = tempdir();
    let input = samples().join("mistakes.csv");
    let r = run(dir.path(), &["validate", input.to_str().unwrap(), "--json"]);
    assert_eq!(r.code, 1);
    let summary: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(summary["rows"], 18);
    assert_eq!(summary["invalid"], 18);
    assert_eq!(summary["errorsByCode"]["DUPLICATE"], 2);
    assert_eq!(summary["topErrors"][0]["count"], 2);
    // The default report goes beside the input.
    assert!(summary["report"]
        .as_str()
        .unwrap()
        .ends_with("mistakes.report.csv"));
    let _ = fs::remove_file(samples().join("mistakes.report.csv"));
}

#[test]
fn normalize_with_a_default_country() {
    let dir = tempdir();
    let input = dir.path().join("national.csv");
    fs::write(
        &input,
        "telephoneNumber,accountName,serviceDetails_teamsDirectRouting_enabled\n020 7946 0100,contoso,true\n(020) 7946-0101,contoso,true\n0044 20 7946 0102,contoso,true\n",
    )
    .unwrap();
    let report = dir.path().join("r.csv");
    let args = ["validate", "national.csv", "--report", "r.csv"];
    assert_eq!(run(dir.path(), &args).code, 1);
    let r = run(dir.path(), &[&args[..], &["--normalize"]].concat());
    assert_eq!(r.code, 1, "national numbers need a country");
    let r = run(
        dir.path(),
        &[&args[..], &["--normalize", "--default-country", "gb"]].concat(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rows = read_csv(&report);
    assert_eq!(rows.len(), 4);
    assert!(rows[1..]
        .iter()
        .all(|r| r[3] == "NORMALIZED" && r[2] == "warning"));
    assert!(
        rows[1][5].contains("'020 7946 0100' rewritten as +442079460100"),
        "{:?}",
        rows[1]
    );
}

#[test]
fn delimiters_bom_crlf_quotes_and_stdin() {
    let dir = tempdir();
    let body = "\u{feff}telephoneNumber;accountName;serviceDetails_teamsOperatorConnect_enabled;serviceDetails_teamsOperatorConnect_configuration_usage;serviceDetails_teamsOperatorConnect_configuration_choosableCapabilities;serviceDetails_teamsOperatorConnect_configuration_allowTenantAddressUpdate\r\n+442079460100;contoso;TRUE;ConferenceAssignment;\"InboundCalling;OutboundCalling\";\r\n\r\n+442079460101;contoso;yes;FirstPartyAppAssignment;InboundCalling|OutboundCalling;1\r\n";
    fs::write(dir.path().join("semi.csv"), body).unwrap();
    let r = run(dir.path(), &["validate", "semi.csv", "--report", "-"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("2 rows"), "{}", r.stderr);
    let tabbed = body.replace(';', "\t").replace(
        "\"InboundCalling\tOutboundCalling\"",
        "\"InboundCalling,OutboundCalling\"",
    );
    let r = run_with_stdin(
        dir.path(),
        &["validate", "-", "--report", "-"],
        tabbed.as_bytes(),
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // The blank line is skipped; the second data row keeps its row number.
    fs::write(
        dir.path().join("bad.csv"),
        body.replace("FirstPartyAppAssignment", "Nope"),
    )
    .unwrap();
    let r = run(dir.path(), &["validate", "bad.csv", "--report", "-"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("\n4,+442079460101,error,USAGE,"),
        "{}",
        r.stdout
    );
    // No API field holds a line break: a quoted cell over two lines is
    // refused on the row and column where its quote opened.
    fs::write(
        dir.path().join("multi.csv"),
        "telephoneNumber,accountName,serviceDetails_teamsDirectRouting_enabled,configuration_customSipHeader\r\n+442079460100,contoso,true,\"a\r\nb\"\r\n+442079460101,contoso,maybe,\r\n",
    )
    .unwrap();
    let r = run(dir.path(), &["validate", "multi.csv", "--report", "-"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("multi.csv: row 2, column D (configuration_customSipHeader): a quote opens in this cell and is not closed on its line"),
        "{}",
        r.stderr
    );
    let r = run(
        dir.path(),
        &["validate", "semi.csv", "--delimiter", ",", "--report", "-"],
    );
    assert_eq!(
        r.code, 2,
        "a wrong delimiter makes one unknown heading: {}",
        r.stderr
    );
}

#[test]
fn fatal_input_problems_exit_2_naming_file_row_and_column() {
    let dir = tempdir();
    let r = run(dir.path(), &["validate", "missing.csv"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("missing.csv"), "{}", r.stderr);

    fs::write(
        dir.path().join("typo.csv"),
        "telephoneNumber,acountName\n+442079460100,contoso\n",
    )
    .unwrap();
    let r = run(dir.path(), &["validate", "typo.csv"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("typo.csv: row 1"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("'acountName' in column B (did you mean 'accountName'?)"),
        "{}",
        r.stderr
    );
    let r = run(
        dir.path(),
        &[
            "validate",
            "typo.csv",
            "--ignore-unknown-columns",
            "--account",
            "contoso",
            "--report",
            "-",
        ],
    );
    assert_eq!(r.code, 1, "still no service: {}", r.stdout);
    assert!(r.stdout.contains("NO_SERVICE"));

    fs::write(dir.path().join("nonumber.csv"), "accountName\ncontoso\n").unwrap();
    let r = run(dir.path(), &["validate", "nonumber.csv"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no number column"), "{}", r.stderr);

    let mut bytes =
        b"telephoneNumber,accountName\n+442079460100,contoso\n+442079460101,con".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes.extend_from_slice(b"toso\n");
    fs::write(dir.path().join("latin1.csv"), bytes).unwrap();
    let r = run(dir.path(), &["validate", "latin1.csv"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("latin1.csv: row 3, column B (accountName)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("UTF-8"), "{}", r.stderr);

    fs::write(dir.path().join("empty.csv"), "\n\n").unwrap();
    let r = run(dir.path(), &["validate", "empty.csv"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("empty"), "{}", r.stderr);
}

#[test]
fn delete_sheets_need_only_numbers_and_accounts() {
    let dir = tempdir();
    fs::write(
        dir.path().join("d.csv"),
        "telephoneNumber,accountName\n+442079460100,contoso\n+442079460101,bad name\n",
    )
    .unwrap();
    // Validation as an import sheet: no service.
    let r = run(dir.path(), &["validate", "d.csv", "--report", "-"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("NO_SERVICE"));
    // As a delete sheet (dry run: nothing is sent), only the account is wrong.
    let r = run(
        dir.path(),
        &[
            "delete",
            "d.csv",
            "--dry-run",
            "--endpoint",
            "http://127.0.0.1:9",
            "--report",
            "r.csv",
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let report = fs::read_to_string(dir.path().join("r.csv")).unwrap();
    assert!(
        report.contains("ACCOUNT_NAME") && !report.contains("NO_SERVICE"),
        "{report}"
    );
}

#[test]
fn account_flag_fills_a_missing_column() {
    let dir = tempdir();
    fs::write(
        dir.path().join("a.csv"),
        "telephoneNumber,serviceDetails_teamsDirectRouting_enabled\n+442079460100,true\n",
    )
    .unwrap();
    assert_eq!(
        run(dir.path(), &["validate", "a.csv", "--report", "-"]).code,
        1
    );
    assert_eq!(
        run(
            dir.path(),
            &["validate", "a.csv", "--account", "contoso", "--report", "-"]
        )
        .code,
        0
    );
    assert_eq!(
        run(
            dir.path(),
            &[
                "validate",
                "a.csv",
                "--account",
                "bad name",
                "--report",
                "-"
            ]
        )
        .code,
        1
    );
}

#[test]
fn spreadsheets_numeric_formula_and_error_cells() {
    let dir = tempdir();
    let path = dir.path().join("book.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let other = book.add_worksheet();
    other.set_name("Notes").unwrap();
    other.write_string(0, 0, "not a number sheet").unwrap();
    let sheet = book.add_worksheet();
    sheet.set_name("Numbers").unwrap();
    for (c, h) in [
        "telephoneNumber",
        "accountName",
        "serviceDetails_teamsDirectRouting_enabled",
    ]
    .iter()
    .enumerate()
    {
        sheet.write_string(2, c as u16, *h).unwrap();
    }
    // Row 4: a 15-digit numeric cell, exact in an f64.
    sheet.write_number(3, 0, 431234567890123.0).unwrap();
    sheet.write_string(3, 1, "contoso").unwrap();
    sheet.write_boolean(3, 2, true).unwrap();
    // Row 5: a formula with a cached text value.
    sheet
        .write_formula(
            4,
            0,
            rust_xlsxwriter::Formula::new("=\"+\"&\"442079460100\"").set_result("+442079460100"),
        )
        .unwrap();
    sheet.write_string(4, 1, "contoso").unwrap();
    sheet.write_number(4, 2, 1.0).unwrap();
    // Row 6: an error cell.
    sheet
        .write_formula(
            5,
            0,
            rust_xlsxwriter::Formula::new("=NA()").set_result("#N/A"),
        )
        .unwrap();
    sheet.write_string(5, 1, "contoso").unwrap();
    sheet.write_boolean(5, 2, true).unwrap();
    // Row 7: a range.
    sheet
        .write_string(6, 0, "+442079460200..+442079460249")
        .unwrap();
    sheet.write_string(6, 1, "contoso").unwrap();
    sheet.write_string(6, 2, "TRUE").unwrap();
    book.save(&path).unwrap();

    let r = run(dir.path(), &["validate", "book.xlsx", "--report", "-"]);
    assert_eq!(
        r.code, 2,
        "the first sheet is not a number sheet: {}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("book.xlsx: row 1: unknown column heading 'not a number sheet' in column A"),
        "{}",
        r.stderr
    );
    for sheet in ["Numbers", "2"] {
        let r = run(
            dir.path(),
            &[
                "validate",
                "book.xlsx",
                "--sheet",
                sheet,
                "--report",
                "book.report.csv",
                "--json",
            ],
        );
        assert_eq!(r.code, 1, "{}", r.stderr);
        let report = fs::read_to_string(dir.path().join("book.report.csv")).unwrap();
        let summary: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(summary["rows"], 4);
        assert_eq!(summary["numbers"], 53);
        assert_eq!(summary["invalid"], 1);
        assert!(
            report.contains("4,+431234567890123,warning,NUMERIC_CELL"),
            "{report}"
        );
        assert!(
            report.contains("numeric cell 431234567890123 read as +431234567890123"),
            "{report}"
        );
        assert!(report.contains("\n6,"), "{report}");
        assert!(report.contains("CELL_ERROR"), "{report}");
        assert!(report.contains("#N/A"), "{report}");
        assert!(!report.contains("e+"), "no scientific notation: {report}");
    }
    let r = run(dir.path(), &["validate", "book.xlsx", "--sheet", "Nope"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("no sheet 'Nope'; the workbook has: Notes, Numbers"),
        "{}",
        r.stderr
    );
}

#[test]
fn committed_numeric_cells_sample_reads_back_exact_numbers() {
    let dir = tempdir();
    let input = samples().join("numeric-cells.xlsx");
    let r = run(
        dir.path(),
        &["validate", input.to_str().unwrap(), "--report", "-"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("NUMERIC_CELL"));
    assert!(r.stdout.contains(",+1425200000"), "{}", r.stdout);
}

#[test]
fn big_ranges_and_max_range() {
    let dir = tempdir();
    fs::write(
        dir.path().join("r.csv"),
        "rangeStart,rangeEnd,accountName,serviceDetails_teamsDirectRouting_enabled\n+14255550100,+14255550199,fabrikam,true\n+14250000000,+14259999999,fabrikam,true\n",
    )
    .unwrap();
    let r = run(dir.path(), &["validate", "r.csv", "--report", "-"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("larger than --max-range 100000"),
        "{}",
        r.stdout
    );
    let r = run(
        dir.path(),
        &["validate", "r.csv", "--report", "-", "--max-range", "50"],
    );
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout.matches(",RANGE,").count(), 2, "{}", r.stdout);
}
