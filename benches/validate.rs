//! Validation speed and memory: `cargo bench --bench validate`.
//!
//! Generates a seeded 1,000,000-row sheet (twelve accounts in eight
//! countries, 1 % range rows of 20 numbers, 1 % rows with a mistake), runs
//! `acgbulk validate` on it `BENCH_RUNS` times (default 5) and reports the
//! median rows per second and the peak RSS; then, in the same run, times
//! the plain per-number `phonenumber` calls (parse + is_valid, one thread
//! and under rayon) on the sheet's first 20,000 numbers, against the fast
//! checks on the same numbers.
//!
//! Then findings against memory: a 5,000,000-row valid sheet and the same
//! sheet with an unknown capability on every row (`FINDINGS_ROWS` to
//! change the size), each validated once, their peak RSS printed side by
//! side (the bound: the second within 2x the first).

#[path = "common.rs"]
mod common;

use acgbulk::phone::{reference, PhoneRules};
use acgbulk::sample::{self, SampleOptions};
use rayon::prelude::*;
use std::time::Instant;

const ROWS: u64 = 1_000_000;
const PLAIN_SAMPLE: usize = 20_000;
const FINDINGS_ROWS: u64 = 5_000_000;

fn main() {
    let sheet = common::data_dir().join("validate-1m.csv");
    if !sheet.exists() {
        eprintln!("generating {} ...", sheet.display());
        let file = std::fs::File::create(&sheet).unwrap();
        sample::write_csv(
            file,
            SampleOptions {
                rows: ROWS,
                seed: 42,
                accounts: 12,
                mistakes: 0.01,
                ranges: 0.01,
                range_size: 20,
            },
        )
        .unwrap();
    }
    let report = common::data_dir().join("validate-1m.report.csv");
    let (s, r) = (sheet.to_str().unwrap(), report.to_str().unwrap());

    let mut seconds = Vec::new();
    for _ in 0..common::runs() {
        seconds.push(common::time_run(&["validate", s, "--report", r], &[0, 1]).as_secs_f64());
    }
    let peak_mib = common::children_peak_rss_kib() as f64 / 1024.0;
    let median = common::median(seconds.clone());
    let rows_per_s = ROWS as f64 / median;

    // The same numbers, checked one by one: plain calls versus fast checks.
    let mut numbers = Vec::with_capacity(PLAIN_SAMPLE);
    let mut reader = csv::Reader::from_path(&sheet).unwrap();
    for record in reader.records() {
        let record = record.unwrap();
        let cell = &record[0];
        if let Some(digits) = cell
            .strip_prefix('+')
            .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
        {
            numbers.push(digits.to_owned());
            if numbers.len() == PLAIN_SAMPLE {
                break;
            }
        }
    }
    let start = Instant::now();
    let plain: Vec<_> = numbers.iter().map(|n| reference::verdict(n)).collect();
    let plain_us = start.elapsed().as_secs_f64() * 1e6 / numbers.len() as f64;
    let start = Instant::now();
    let plain_par: Vec<_> = numbers.par_iter().map(|n| reference::verdict(n)).collect();
    let plain_par_us = start.elapsed().as_secs_f64() * 1e6 / numbers.len() as f64;
    let rules = PhoneRules::new();
    // The first pass includes compiling each country's patterns on first use.
    let start = Instant::now();
    let fast: Vec<_> = numbers.iter().map(|n| rules.check(n).verdict).collect();
    let cold_us = start.elapsed().as_secs_f64() * 1e6 / numbers.len() as f64;
    let start = Instant::now();
    let warm: Vec<_> = numbers.iter().map(|n| rules.check(n).verdict).collect();
    let fast_us = start.elapsed().as_secs_f64() * 1e6 / numbers.len() as f64;
    assert_eq!(fast, warm);
    assert_eq!(plain, fast, "fast verdicts differ from the plain calls");
    assert_eq!(plain, plain_par);

    println!("validate benchmark: {ROWS} rows, {} runs", seconds.len());
    println!(
        "  wall seconds per run: {:?}",
        seconds
            .iter()
            .map(|s| (s * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>()
    );
    println!("  median: {median:.3} s = {:.0} rows/s", rows_per_s);
    println!("  peak RSS: {peak_mib:.1} MiB");
    println!(
        "  per number, first {} numbers of the sheet in sheet order:",
        numbers.len()
    );
    println!("    plain phonenumber parse+is_valid, 1 thread : {plain_us:8.2} us");
    println!(
        "    plain phonenumber under rayon (shared db)  : {plain_par_us:8.2} us (wall / number)"
    );
    println!(
        "    fast PhoneRules::check, 1 thread, first use: {cold_us:8.3} us (compiles patterns)"
    );
    println!("    fast PhoneRules::check, 1 thread           : {fast_us:8.3} us");
    println!("  ratio plain/fast per number: {:.0}x", plain_us / fast_us);
    println!(
        "  ratio whole pipeline vs plain calls alone: {:.0}x (pipeline rows/s over plain numbers/s)",
        rows_per_s / (1e6 / plain_us)
    );
    findings_memory();
}

/// Peak RSS (and time) of validating a valid sheet and the same sheet with
/// a finding on every row.
fn findings_memory() {
    let rows = std::env::var("FINDINGS_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(FINDINGS_ROWS);
    let valid = common::data_dir().join(format!("findings-valid-{rows}.csv"));
    let bad = common::data_dir().join(format!("findings-all-{rows}.csv"));
    if !bad.exists() {
        eprintln!("generating {} and {} ...", valid.display(), bad.display());
        let file = std::fs::File::create(&valid).unwrap();
        sample::write_csv(
            file,
            SampleOptions {
                rows,
                seed: 42,
                accounts: 12,
                mistakes: 0.0,
                ranges: 0.0,
                range_size: 1,
            },
        )
        .unwrap();
        let mut reader = csv::Reader::from_path(&valid).unwrap();
        let headings = reader.headers().unwrap().clone();
        let column = |suffix: &str| headings.iter().position(|h| h.ends_with(suffix)).unwrap();
        let enabled = column("teamsOperatorConnect_enabled");
        let status = column("teamsOperatorConnect_assignmentStatus");
        let usage = column("teamsOperatorConnect_configuration_usage");
        let capabilities = column("teamsOperatorConnect_configuration_choosableCapabilities");
        let mut writer = csv::Writer::from_path(&bad).unwrap();
        writer.write_record(&headings).unwrap();
        for record in reader.records() {
            let mut cells: Vec<String> = record.unwrap().iter().map(str::to_owned).collect();
            cells[enabled] = "true".into();
            if cells[status].is_empty() {
                cells[status] = "unassigned".into();
            }
            if cells[usage].is_empty() {
                cells[usage] = "CallingUserAssignment".into();
            }
            cells[capabilities] = "Teleport".into();
            writer.write_record(&cells).unwrap();
        }
        writer.flush().unwrap();
    }
    let report = common::data_dir().join("findings.report.csv");
    let r = report.to_str().unwrap();
    let (valid_s, valid_kib) =
        common::peak_run(&["validate", valid.to_str().unwrap(), "--report", r], &[0]);
    let (bad_s, bad_kib) =
        common::peak_run(&["validate", bad.to_str().unwrap(), "--report", r], &[1]);
    println!("findings and memory: {rows} rows, one run each");
    println!(
        "  valid sheet            : {:7.1} MiB peak RSS, {valid_s:6.2} s",
        valid_kib as f64 / 1024.0
    );
    println!(
        "  a finding on every row : {:7.1} MiB peak RSS, {bad_s:6.2} s ({:.2}x the memory)",
        bad_kib as f64 / 1024.0,
        bad_kib as f64 / valid_kib as f64
    );
}
