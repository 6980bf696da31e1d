//! Row jobs and ACS searches: `cargo bench --bench jobs`.
//!
//! 1. `acgbulk accounts import --mode upsert` of 1,000 new accounts against
//!    `acgbulk emulator --rate-limit R/min` (R = 6,000, `BENCH_RATE`), the
//!    client paced at the same R: each row is a GET and a PUT, so the
//!    ceiling is R / 2 accounts a minute. Achieved accounts/min (process
//!    wall time, start-up included) and 429s received; `BENCH_RUNS` runs
//!    (default 3), medians.
//! 2. `acgbulk acs search --requests` against the emulator's search API
//!    with a 1 s operation delay, signed with an access key: 8 searches one
//!    at a time, then 64 with `--concurrency 16`. Searches a second in each
//!    case, their ratio, and polls per operation (the emulator's counters).

#[path = "common.rs"]
mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

const KEY: &str = "YmVuY2htYXJrIGFjY2VzcyBrZXkgb2YgMzIgYnl0ZXM=";

fn accounts_sheet(path: &Path, rows: u32) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "name,correlationId,serviceDetails_teamsTenantId,serviceDetails_teamsOperatorConnect_enabled,serviceDetails_teamsOperatorConnect_syncEnabled").unwrap();
    for i in 0..rows {
        writeln!(
            out,
            "bench{i:05},crm-{i},0f6f2e1e-3f0a-4a5e-9a53-8d7a{i:08x},true,true"
        )
        .unwrap();
    }
}

fn requests_sheet(path: &Path, rows: u32) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(
        out,
        "countryCode,phoneNumberType,assignmentType,areaCode,quantity"
    )
    .unwrap();
    for i in 0..rows {
        writeln!(out, "US,geographic,person,{},10", 200 + i).unwrap();
    }
}

/// Runs `acgbulk ARGS` with the connection string; returns wall seconds.
fn run(args: &[&str], connection: Option<&str>, ok: &[i32]) -> f64 {
    let mut command = Command::new(common::bin());
    command
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(connection) = connection {
        command.env("ACS_CONNECTION_STRING", connection);
    }
    let start = Instant::now();
    let status = command.status().unwrap();
    let seconds = start.elapsed().as_secs_f64();
    assert!(
        ok.contains(&status.code().unwrap_or(-1)),
        "acgbulk {args:?}: {status}"
    );
    seconds
}

fn main() {
    let rate: f64 = std::env::var("BENCH_RATE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6000.0);
    let runs = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let dir = common::data_dir();

    // 1. Accounts at the rate limit.
    let rows = 1000;
    let sheet = dir.join("accounts-1k.csv");
    accounts_sheet(&sheet, rows);
    let ceiling = rate / 2.0;
    let mut ratios = Vec::new();
    let mut throttled = 0;
    for _ in 0..runs {
        let (server, url) = common::emulator(&["--empty", "--rate-limit", &format!("{rate}/min")]);
        let rate_flag = format!("{rate}/min");
        let seconds = run(
            &[
                "accounts",
                "import",
                sheet.to_str().unwrap(),
                "--mode",
                "upsert",
                "--restart",
                "--concurrency",
                "8",
                "--endpoint",
                &url,
                "--rate-limit",
                &rate_flag,
            ],
            None,
            &[0],
        );
        let stats = common::stats(&url);
        throttled += stats["throttled"].as_u64().unwrap();
        assert_eq!(stats["accounts"].as_u64().unwrap(), u64::from(rows));
        let per_minute = f64::from(rows) / seconds * 60.0;
        println!("accounts upsert: {rows} rows in {seconds:.2} s = {per_minute:.0}/min = {:.1} % of {ceiling:.0}/min", per_minute / ceiling * 100.0);
        ratios.push(per_minute / ceiling);
        common::stop(server);
    }
    println!(
        "accounts upsert, median: {:.1} % of the ceiling of {ceiling:.0} accounts/min; 429s received: {throttled}",
        common::median(ratios) * 100.0
    );

    // 2. ACS searches, one at a time and sixteen at a time.
    let few = dir.join("acs-8.csv");
    let many = dir.join("acs-64.csv");
    requests_sheet(&few, 8);
    requests_sheet(&many, 64);
    let mut serial = Vec::new();
    let mut parallel = Vec::new();
    let mut polls = Vec::new();
    for _ in 0..runs {
        let (server, url) = common::emulator(&[
            "--empty",
            "--rate-limit",
            "off",
            "--acs-access-key",
            KEY,
            "--acs-operation-delay",
            "1s",
        ]);
        let connection = format!("endpoint={url};accesskey={KEY}");
        let out = dir.join("acs-out.csv");
        let out = out.to_str().unwrap();
        let one = run(
            &[
                "acs",
                "search",
                "--requests",
                few.to_str().unwrap(),
                "--concurrency",
                "1",
                "--rate-limit",
                "off",
                "-o",
                out,
            ],
            Some(&connection),
            &[0],
        );
        let sixteen = run(
            &[
                "acs",
                "search",
                "--requests",
                many.to_str().unwrap(),
                "--concurrency",
                "16",
                "--rate-limit",
                "off",
                "-o",
                out,
            ],
            Some(&connection),
            &[0],
        );
        let stats = common::stats(&url);
        let acs = &stats["acs"];
        assert_eq!(acs["searches"].as_u64().unwrap(), 72);
        assert_eq!(acs["unauthorized"].as_u64().unwrap(), 0);
        let per_operation = acs["operationPolls"].as_f64().unwrap() / 72.0;
        println!("acs search: 8 at once-at-a-time {:.2}/s, 64 sixteen at a time {:.2}/s, {per_operation:.2} polls per operation", 8.0 / one, 64.0 / sixteen);
        serial.push(8.0 / one);
        parallel.push(64.0 / sixteen);
        polls.push(per_operation);
        common::stop(server);
    }
    let (serial, parallel) = (common::median(serial), common::median(parallel));
    println!(
        "acs search, median: {serial:.2} searches/s one at a time, {parallel:.2} searches/s sixteen at a time ({:.1}x); {:.2} polls per operation",
        parallel / serial,
        common::median(polls)
    );
}
