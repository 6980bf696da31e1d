//! Validation speed and memory: `cargo bench --bench validate`.
//!
//! Generates a seeded 1,000,000-row sheet (twelve accounts in eight
//! countries, 1 % range rows of 20 numbers, 1 % rows with a mistake), runs
//! `acgbulk validate` on it `BENCH_RUNS` times (default 5) and reports the
//! median rows per second and the peak RSS; then, in the same run, times
//! the plain per-number `phonenumber` calls (parse + is_valid, one thread
//! and under rayon) on the sheet's first 20,000 numbers, against the fast
//! checks on the same numbers.

#[path = "common.rs"]
mod common;

use acgbulk::phone::{reference, PhoneRules};
use acgbulk::sample::{self, SampleOptions};
use rayon::prelude::*;
use std::time::Instant;

const ROWS: u64 = 1_000_000;
const PLAIN_SAMPLE: usize = 20_000;

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
}
