//! Export paging and memory: `cargo bench --bench export`.
//!
//! Loads 1,000,000 numbers into `acgbulk emulator --rate-limit off` with
//! batch POSTs, then runs `acgbulk export numbers --page-size 1000`
//! `BENCH_RUNS` times (default 3): the GETs it sent (counted by the
//! emulator) against ceil(numbers / page size), the median time, and the
//! export's peak RSS (rows are streamed to disk, so it stays small however
//! large the gateway).

#[path = "common.rs"]
mod common;

use futures_util::stream::{self, StreamExt};
use serde_json::json;
use std::process::Command;

const NUMBERS: u64 = 1_000_000;

fn load(url: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    runtime.block_on(async {
        let results: Vec<bool> = stream::iter(0..NUMBERS / 100)
            .map(|b| {
                let numbers: Vec<_> = (0..100)
                    .map(|i| json!({ "telephoneNumber": format!("+1425{:07}", 2_000_000 + b * 100 + i), "serviceDetails": { "teamsDirectRouting": { "enabled": true } }, "configuration": { "customSipHeader": "trunk-1" } }))
                    .collect();
                let account = ["contoso", "fabrikam"][(b % 2) as usize];
                let url = format!("{url}/accounts/{account}:createOrUpdateNumbers?api-version=2024-02-29");
                let http = http.clone();
                async move { http.post(url).json(&json!({ "numbers": numbers })).send().await.map(|r| r.status().is_success()).unwrap_or(false) }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        assert!(results.iter().all(|&ok| ok));
    });
}

fn main() {
    let (server, url) = common::emulator(&["--rate-limit", "off", "--max-page-size", "1000"]);
    load(&url);
    let dir = common::data_dir();
    let out = dir.join("export-1m.csv");
    let mut seconds = Vec::new();
    let mut gets = Vec::new();
    let rss_before = common::children_peak_rss_kib();
    for _ in 0..common::runs().min(3) {
        let before = common::stats(&url)["perRoute"]["GET /numbers"]
            .as_u64()
            .unwrap_or(0);
        let started = std::time::Instant::now();
        let status = Command::new(common::bin())
            .args([
                "export",
                "numbers",
                "-o",
                out.to_str().unwrap(),
                "--page-size",
                "1000",
                "--rate-limit",
                "off",
                "--endpoint",
                &url,
                "--restart",
            ])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        seconds.push(started.elapsed().as_secs_f64());
        gets.push(
            common::stats(&url)["perRoute"]["GET /numbers"]
                .as_u64()
                .unwrap()
                - before,
        );
    }
    let peak_big = common::children_peak_rss_kib().max(rss_before) as f64 / 1024.0;
    let lines =
        std::io::BufRead::lines(std::io::BufReader::new(std::fs::File::open(&out).unwrap()))
            .count();
    assert_eq!(lines as u64, NUMBERS + 1);
    common::stop(server);
    println!(
        "export benchmark: {NUMBERS} numbers, page size 1000, {} runs, rate limit off",
        seconds.len()
    );
    println!(
        "  GET /numbers per export: {gets:?} (ceil(numbers / page size) = {})",
        NUMBERS.div_ceil(1000)
    );
    println!(
        "  median {:.2} s = {:.0} rows/s",
        common::median(seconds.clone()),
        NUMBERS as f64 / common::median(seconds)
    );
    println!("  peak RSS of the export process: {peak_big:.1} MiB (rows are streamed to disk)");
}
