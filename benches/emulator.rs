//! Emulator load: `cargo bench --bench emulator`.
//!
//! Starts `acgbulk emulator --rate-limit off --empty` as a process, loads
//! 1,000,000 numbers into one account with 10,000 batch POSTs (32 in
//! flight), then measures single-number GETs for a few seconds (64 in
//! flight), `BENCH_RUNS` times (default 5) each, and reports medians and
//! the emulator's peak RSS (VmHWM) holding the million numbers. The load
//! generator shares the machine's two cores with the emulator.

#[path = "common.rs"]
mod common;

use futures_util::stream::{self, StreamExt};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const V: &str = "api-version=2024-02-29";
const NUMBERS: u64 = 1_000_000;
const BATCH: u64 = 100;

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn run_once(http: &reqwest::Client) -> (f64, f64, f64, u64) {
    let mut child = Command::new(common::bin())
        .args([
            "emulator",
            "--listen",
            "127.0.0.1:0",
            "--rate-limit",
            "off",
            "--empty",
            "--sync-delay",
            "1s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let account = json!({ "serviceDetails": {
        "teamsTenantId": "0f6f2e1e-3f0a-4a5e-9a53-8d7a3c6e2b11",
        "teamsOperatorConnect": { "enabled": true, "syncEnabled": true },
        "teamsDirectRouting": { "enabled": true } } });
    let status = http
        .put(format!("{url}/accounts/load?{V}"))
        .json(&account)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success());

    let started = Instant::now();
    let batches = NUMBERS / BATCH;
    let results: Vec<bool> = stream::iter(0..batches)
        .map(|b| {
            let body = json!({ "numbers": (0..BATCH).map(|i| json!({
                "telephoneNumber": format!("+1425{:07}", b * BATCH + i),
                "serviceDetails": {
                    "teamsOperatorConnect": { "enabled": true, "assignmentStatus": "unassigned",
                        "configuration": { "usage": "CallingUserAssignment", "choosableCapabilities": ["InboundCalling", "OutboundCalling"], "allowTenantAddressUpdate": true } }
                }
            })).collect::<Vec<_>>() });
            let url = format!("{url}/accounts/load:createOrUpdateNumbers?{V}");
            async move { http.post(url).json(&body).send().await.map(|r| r.status().is_success()).unwrap_or(false) }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let load_secs = started.elapsed().as_secs_f64();
    assert!(results.iter().all(|&ok| ok), "every batch was accepted");
    let batch_rps = batches as f64 / load_secs;
    let numbers_per_s = NUMBERS as f64 / load_secs;

    let deadline = Instant::now() + Duration::from_secs(4);
    let started = Instant::now();
    let gets: usize = stream::iter(0u64..)
        .take_while(|_| futures_util::future::ready(Instant::now() < deadline))
        .map(|i| {
            let url = format!(
                "{url}/accounts/load/numbers/%2B1425{:07}?{V}",
                (i * 7919) % NUMBERS
            );
            async move {
                http.get(url)
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false)
            }
        })
        .buffer_unordered(64)
        .filter(|ok| futures_util::future::ready(*ok))
        .count()
        .await;
    let get_rps = gets as f64 / started.elapsed().as_secs_f64();
    let stats: serde_json::Value = http
        .get(format!("{url}/_emulator/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["numbers"], NUMBERS);
    let peak = vm_hwm_kib(child.id());
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap();
    (batch_rps, numbers_per_s, get_rps, peak)
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    let mut batch = Vec::new();
    let mut numbers = Vec::new();
    let mut gets = Vec::new();
    let mut peaks = Vec::new();
    for _ in 0..common::runs() {
        let (b, n, g, p) = runtime.block_on(run_once(&http));
        batch.push(b);
        numbers.push(n);
        gets.push(g);
        peaks.push(p as f64 / 1024.0);
    }
    println!(
        "emulator benchmark: {NUMBERS} numbers in {} batch POSTs, {} runs, rate limit off",
        NUMBERS / BATCH,
        batch.len()
    );
    println!(
        "  batch POSTs/s (100 numbers each): median {:.0}  runs {:?}",
        common::median(batch.clone()),
        batch.iter().map(|v| v.round()).collect::<Vec<_>>()
    );
    println!(
        "  numbers written/s:                median {:.0}",
        common::median(numbers)
    );
    println!(
        "  single-number GETs/s:             median {:.0}  runs {:?}",
        common::median(gets.clone()),
        gets.iter().map(|v| v.round()).collect::<Vec<_>>()
    );
    println!(
        "  peak RSS holding 1,000,000 numbers: median {:.0} MiB",
        common::median(peaks)
    );
    println!(
        "  headroom over the real service's 100 requests/min: {:.0}x (batch POSTs)",
        common::median(batch) * 60.0 / 100.0
    );
}
