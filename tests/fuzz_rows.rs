//! Fuzzing the sheet reader and the row rules: whatever the input, they
//! return findings or an error, never panic. Bounded: `FUZZ_CASES` cases per
//! property (default 4000; an eighth for import's path), each with a time
//! limit.

use acgbulk::engine::{self, checkpoint::Action, RunOptions};
use acgbulk::sheet::{fingerprint, Column, HeaderMap, RawRow, RowReader, Sheet, SheetOptions};
use acgbulk::validate::pipeline::validate;
use acgbulk::validate::{RowRules, RuleOptions};
use proptest::prelude::*;
use proptest::test_runner::Config;
use std::time::Duration;

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000)
}

/// Cell text: mostly the values sheets hold, with their near misses.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("true".to_owned()),
        Just("FALSE".to_owned()),
        Just("yes".to_owned()),
        Just("contoso".to_owned()),
        Just("CallingUserAssignment".to_owned()),
        Just("InboundCalling,OutboundCalling".to_owned()),
        Just("US".to_owned()),
        Just("unassigned".to_owned()),
        "\\+[0-9]{0,17}",
        "\\+[0-9]{8,15}\\.\\.\\+[0-9]{8,15}",
        "(00|0|\\+)?[0-9 ().-]{0,20}",
        "[a-zA-Z0-9_ -]{0,110}",
        any::<String>(),
    ]
}

fn options() -> impl Strategy<Value = RuleOptions> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::option::of("[A-Za-z]{2}"),
        1u64..200_000,
        any::<bool>(),
    )
        .prop_map(
            |(allow_invalid_numbers, normalize, country, max_range, numbers_only)| RuleOptions {
                allow_invalid_numbers,
                normalize,
                default_country: country
                    .filter(|c| acgbulk::phone::normalize::parse_country(c).is_ok())
                    .filter(|_| normalize),
                max_range,
                account: None,
                numbers_only,
            },
        )
}

proptest! {
    #![proptest_config(Config { cases: cases(), timeout: 5_000, failure_persistence: None, ..Config::default() })]


    /// Any cells under any set of known headings, in any order.
    #[test]
    fn row_rules_never_panic(
        columns in prop::sample::subsequence(Column::all().to_vec(), 1..Column::all().len()).prop_shuffle(),
        cells in prop::collection::vec(cell(), 0..40),
        options in options(),
    ) {
        let headings: Vec<String> = columns.iter().map(|c| c.heading()).collect();
        let Ok(header) = HeaderMap::new(&headings, false) else { return Ok(()); };
        let rules = RowRules::new(&header, &options).unwrap();
        let row = RawRow { row: 7, at: 0, cells: csv::StringRecord::from(cells), notes: vec![], sheet: None };
        let check = rules.check(&row);
        prop_assert!(check.findings.iter().all(|f| f.row == 7));
        prop_assert!(check.numbers.len() <= options.max_range.max(1));
        if check.findings.iter().all(|f| f.severity == acgbulk::validate::Severity::Warning) {
            prop_assert!(!check.row_invalid);
        }
    }

    /// Any bytes at all as a CSV file, through the whole reader and pipeline.
    #[test]
    fn sheets_never_panic(
        head in prop::sample::subsequence(
            vec!["telephoneNumber", "accountName", "rangeStart", "rangeEnd",
                 "serviceDetails_teamsDirectRouting_enabled", "serviceDetails_teamsOperatorConnect_configuration_usage", "bogus"],
            0..7),
        delimiter in prop::sample::select(vec![",", ";", "\t"]),
        rows in prop::collection::vec(prop::collection::vec(cell(), 0..8), 0..30),
        noise in prop::collection::vec(any::<u8>(), 0..64),
        bom in any::<bool>(),
        crlf in any::<bool>(),
    ) {
        let newline = if crlf { "\r\n" } else { "\n" };
        let mut text = String::new();
        if bom { text.push('\u{feff}'); }
        text.push_str(&head.join(delimiter));
        text.push_str(newline);
        for row in &rows {
            text.push_str(&row.join(delimiter));
            text.push_str(newline);
        }
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(&noise);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fuzz.csv");
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(sheet) = Sheet::open(&path, &SheetOptions::default()) {
            let mut findings = 0u64;
            let result = validate(sheet, &RuleOptions::default(), &mut |_| { findings += 1; Ok(()) }, &mut |_| {});
            if let Ok(validated) = result {
                prop_assert_eq!(validated.summary.valid + validated.summary.invalid, validated.summary.numbers);
                // Every row starts after a line break (the heading's or the
                // row before's); breaks in the noise or inside generated cells
                // start rows too, so the bound is the file's breaks.
                let line_breaks = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
                prop_assert!(validated.summary.rows <= line_breaks);
            }
        }
    }

}

proptest! {
    #![proptest_config(Config { cases: cases() / 8, timeout: 10_000, failure_persistence: None, ..Config::default() })]

    /// Any bytes at all through import's path: prepare (read, validate,
    /// plan, fingerprint) from a file and from a copied stream, then every
    /// planned row read back by its locator.
    #[test]
    fn import_path_never_panics(
        head in prop::sample::select(vec![
            "", "telephoneNumber,accountName,serviceDetails_teamsDirectRouting_enabled\n",
            "\u{feff}sep=;\r\ntelephoneNumber;accountName;serviceDetails_teamsDirectRouting_enabled\r\n",
            "telephoneNumber\r",
        ]),
        rows in prop::collection::vec(prop::collection::vec(cell(), 0..4), 0..6),
        noise in prop::collection::vec(any::<u8>(), 0..512),
        quote in any::<bool>(),
    ) {
        let mut bytes = head.as_bytes().to_vec();
        for row in &rows {
            let line = row.join(if head.contains(';') { ";" } else { "," });
            if quote { bytes.push(b'"'); }
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
        }
        bytes.extend_from_slice(&noise);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fuzz.csv");
        std::fs::write(&path, &bytes).unwrap();
        let options = |input: std::path::PathBuf| RunOptions {
            action: Action::Import,
            input,
            sheet: SheetOptions::default(),
            rules: RuleOptions::default(),
            batch_size: 100,
            skip_invalid: true,
            results: dir.path().join("r.csv"),
            checkpoint: dir.path().join("r.csv.checkpoint"),
            report: dir.path().join("report.csv"),
            concurrency: 1,
            wait_sync: false,
            sync_timeout: Duration::from_secs(1),
            sync_poll: Duration::from_secs(1),
            grace: Duration::from_secs(1),
            retry_failed: false,
            keep_checkpoint: false,
        };
        let direct = engine::prepare(&options(path.clone()), "http://127.0.0.1:9", &mut |_| {});
        let copy = dir.path().join("copy.csv");
        let copied = engine::prepare_copying(&options(copy.clone()), "http://127.0.0.1:9", &mut |_| {}, &path);
        prop_assert_eq!(direct.is_ok(), copied.is_ok());
        if let (Ok(direct), Ok(copied)) = (direct, copied) {
            prop_assert_eq!(&direct.header.fingerprint, &fingerprint(&path).unwrap());
            prop_assert_eq!(&copied.header.fingerprint, &direct.header.fingerprint);
            prop_assert_eq!(std::fs::read(&copy).unwrap(), bytes);
            let mut reader = RowReader::open(&path, &SheetOptions::default(), direct.sheet_header.clone()).unwrap();
            for place in &direct.expanded.rows {
                let row = reader.read(place.at, place.row);
                prop_assert!(row.is_ok(), "{:?}", row.err());
                prop_assert_eq!(row.unwrap().row, place.row);
            }
        } else {
            prop_assert!(!copy.exists(), "an incomplete copy is removed");
        }
    }
}
