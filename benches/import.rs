//! Import throughput, CPU, memory and resume start-up:
//! `cargo bench --bench import`.
//!
//! 1. A 100,000-number import against `acgbulk emulator --rate-limit R/min`
//!    (R = 6,000 by default, `BENCH_RATE`), the client paced at the same R:
//!    achieved numbers/min against the ceiling R x 100, 429s received, and
//!    the import's CPU time per 10,000 numbers (`BENCH_RUNS` runs, medians).
//! 2. Two such imports at once (50,000 numbers each, separate processes
//!    and sheets, the same R) against one emulator at R with a burst of
//!    three: their combined numbers/min over the span both were sending
//!    against R x 100, each one's share, and 429s (the shared budget).
//! 3. A 1,000,000-number import with both limits off: the import's peak RSS.
//! 4. Its checkpoint cut back to 90 % of the batches (as if stopped there),
//!    then `acgbulk resume`: the time from start to its first request, seen
//!    by polling the emulator's request counter.

#[path = "common.rs"]
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ACCOUNTS: [&str; 4] = ["contoso", "fabrikam", "northwind", "adatum"];

/// `numbers` Direct Routing numbers, a whole number of full batches per
/// account.
fn sheet(path: &Path, numbers: u64) {
    sheet_from(path, numbers, 0);
}

/// As [`sheet`], the numbers starting `offset` further on.
fn sheet_from(path: &Path, numbers: u64, offset: u64) {
    if path.exists() {
        return;
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "telephoneNumber,accountName,serviceDetails_teamsDirectRouting_enabled,configuration_customSipHeader").unwrap();
    for i in offset..offset + numbers {
        let account = (i / 100) as usize % ACCOUNTS.len();
        writeln!(
            out,
            "+1425{:07},{},true,trunk-{}",
            2_000_000 + i,
            ACCOUNTS[account],
            account
        )
        .unwrap();
    }
}

fn import(args: &[&str]) -> (serde_json::Value, Duration) {
    let cpu_before = common::children_cpu();
    let output = Command::new(common::bin())
        .args(args)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let cpu = common::children_cpu() - cpu_before;
    assert!(
        output.status.success(),
        "acgbulk {args:?}: {:?}",
        output.status
    );
    (serde_json::from_slice(&output.stdout).unwrap(), cpu)
}

fn main() {
    let rate: u64 = std::env::var("BENCH_RATE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6000);
    let dir = common::data_dir();
    let small = dir.join("import-100k.csv");
    sheet(&small, 100_000);

    // 1. Throughput at the rate limit.
    let mut ratios = Vec::new();
    let mut per_minute = Vec::new();
    let mut cpu_per_10k = Vec::new();
    let mut throttled = 0;
    for run in 0..common::runs() {
        let (server, url) = common::emulator(&["--rate-limit", &format!("{rate}/min")]);
        let results = dir.join(format!("import-100k-{run}.results.csv"));
        let _ = std::fs::remove_file(PathBuf::from(format!("{}.checkpoint", results.display())));
        let (summary, cpu) = import(&[
            "import",
            small.to_str().unwrap(),
            "--endpoint",
            &url,
            "--rate-limit",
            &format!("{rate}/min"),
            "--results",
            results.to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(summary["ok"], 100_000);
        throttled += summary["throttled"].as_u64().unwrap()
            + common::stats(&url)["throttled"].as_u64().unwrap();
        let achieved = summary["numbersPerMinute"].as_f64().unwrap();
        per_minute.push(achieved);
        ratios.push(achieved / (rate as f64 * 100.0));
        cpu_per_10k.push(cpu.as_secs_f64() / 10.0);
        common::stop(server);
    }

    // 2. Two processes sharing the budget.
    let halves = [dir.join("import-50k-a.csv"), dir.join("import-50k-b.csv")];
    sheet_from(&halves[0], 50_000, 0);
    sheet_from(&halves[1], 50_000, 50_000);
    let mut pair_ratios = Vec::new();
    let mut pair_shares = Vec::new();
    let mut pair_throttled = 0;
    for run in 0..common::runs() {
        let (server, url) =
            common::emulator(&["--rate-limit", &format!("{rate}/min"), "--rate-burst", "3"]);
        let state = dir.join(format!("state-{run}"));
        let children: Vec<_> = halves
            .iter()
            .enumerate()
            .map(|(i, input)| {
                let results = dir.join(format!("import-50k-{run}-{i}.results.csv"));
                let _ = std::fs::remove_file(PathBuf::from(format!(
                    "{}.checkpoint",
                    results.display()
                )));
                Command::new(common::bin())
                    .args(["import", input.to_str().unwrap(), "--endpoint", &url])
                    .args(["--rate-limit", &format!("{rate}/min"), "--json"])
                    .args(["--results", results.to_str().unwrap()])
                    .env("ACGBULK_STATE_DIR", &state)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        // Each one's sending span ends when it exits.
        let mut children: Vec<_> = children.into_iter().map(|c| (c, None)).collect();
        while children.iter().any(|(_, end)| end.is_none()) {
            for (child, end) in &mut children {
                if end.is_none() && child.try_wait().unwrap().is_some() {
                    *end = Some(Instant::now());
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let mut spans = Vec::new();
        let sent = [50_000.0; 2];
        for (child, end) in children {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success());
            let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            assert_eq!(summary["ok"], 50_000);
            pair_throttled += summary["throttled"].as_u64().unwrap();
            let end = end.unwrap();
            let send = Duration::from_secs_f64(summary["sendSeconds"].as_f64().unwrap());
            spans.push((end - send, end));
        }
        pair_throttled += common::stats(&url)["throttled"].as_u64().unwrap();
        let first = spans.iter().map(|s| s.0).min().unwrap();
        let last = spans.iter().map(|s| s.1).max().unwrap();
        let combined = sent.iter().sum::<f64>() * 60.0 / (last - first).as_secs_f64();
        pair_ratios.push(combined / (rate as f64 * 100.0));
        // The share of the first while both were sending: its numbers
        // sent per second of its span over the other's.
        let speed = |i: usize| sent[i] / (spans[i].1 - spans[i].0).as_secs_f64();
        pair_shares.push(speed(0) / (speed(0) + speed(1)));
        common::stop(server);
    }

    // 3. Memory on a million numbers.
    let big = dir.join("import-1m.csv");
    sheet(&big, 1_000_000);
    let (server, url) = common::emulator(&["--rate-limit", "off"]);
    let results = dir.join("import-1m.results.csv");
    let checkpoint = PathBuf::from(format!("{}.checkpoint", results.display()));
    let _ = std::fs::remove_file(&checkpoint);
    let rss_before = common::children_peak_rss_kib();
    let (summary, _) = import(&[
        "import",
        big.to_str().unwrap(),
        "--endpoint",
        &url,
        "--rate-limit",
        "off",
        "--concurrency",
        "16",
        "--results",
        results.to_str().unwrap(),
        // Part 4 cuts this run's checkpoint back; a finished run removes
        // it unless told to keep it.
        "--keep-checkpoint",
        "--json",
    ]);
    assert_eq!(summary["ok"], 1_000_000);
    let peak_mib = common::children_peak_rss_kib().max(rss_before) as f64 / 1024.0;

    // 4. Resume a run stopped at 90 %: keep the journal's records of the
    // first 9,000 batches.
    let text = std::fs::read_to_string(&checkpoint).unwrap();
    let kept: String = text
        .lines()
        .filter(|line| {
            let json = line.split_once(' ').map(|(_, j)| j).unwrap_or("");
            let record: serde_json::Value = serde_json::from_str(json).unwrap();
            match record["t"].as_str() {
                Some("header") => true,
                Some("finished") => false,
                _ => record["b"].as_u64().unwrap() < 9_000,
            }
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let mut starts = Vec::new();
    for _ in 0..common::runs() {
        std::fs::write(&checkpoint, &kept).unwrap();
        let before = common::stats(&url)["requests"].as_u64().unwrap();
        let started = Instant::now();
        let mut child = Command::new(common::bin())
            .args([
                "resume",
                checkpoint.to_str().unwrap(),
                "--rate-limit",
                "off",
                "--concurrency",
                "16",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let first = loop {
            if common::stats(&url)["requests"].as_u64().unwrap() > before {
                break started.elapsed();
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        assert!(child.wait().unwrap().success());
        starts.push(first.as_secs_f64());
    }
    common::stop(server);

    println!("import benchmark ({} runs; emulator and client at {rate} requests/min, so the ceiling is {} numbers/min)", ratios.len(), rate * 100);
    println!(
        "  100,000 numbers: achieved median {:.0} numbers/min = {:.2} % of the ceiling (runs {:?})",
        common::median(per_minute),
        common::median(ratios.clone()) * 100.0,
        ratios
            .iter()
            .map(|r| (r * 10000.0).round() / 100.0)
            .collect::<Vec<_>>()
    );
    println!("  429s received over all runs: {throttled}");
    println!(
        "  two processes, 50,000 numbers each, one budget (emulator burst 3): together median {:.2} % of the ceiling (runs {:?}); first process's share median {:.3}; 429s over all runs: {pair_throttled}",
        common::median(pair_ratios.clone()) * 100.0,
        pair_ratios
            .iter()
            .map(|r| (r * 10000.0).round() / 100.0)
            .collect::<Vec<_>>(),
        common::median(pair_shares),
    );
    println!(
        "  CPU time (user + system) per 10,000 numbers: median {:.3} s",
        common::median(cpu_per_10k)
    );
    println!("  1,000,000 numbers, limits off: peak RSS of the import {peak_mib:.1} MiB");
    println!("  resume of a 1,000,000-number run stopped at 90 %: first request after median {:.3} s (runs {:?})",
        common::median(starts.clone()),
        starts.iter().map(|s| (s * 1000.0).round() / 1000.0).collect::<Vec<_>>());
}
