//! The rate budget acgbulk processes share per endpoint: real binaries,
//! separate processes, one emulator on loopback that counts the requests
//! and the 429s.
//!
//! The emulator here allows a burst of three, not its default of a
//! minute's worth: with a minute's worth, two uncoordinated clients could
//! exceed the limit for half a minute without a 429, and these tests
//! could not fail. Three is the client's own allowance of two plus one
//! period for scheduling jitter on a busy machine.

mod common;

use acgbulk::emulator::{EmulatorConfig, SeedSource};
use common::Server;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The emulator's and the clients' limit.
const LIMIT: u32 = 600;

fn emulator(limit: u32, burst: u32) -> Server {
    Server::start(EmulatorConfig {
        rate_limit: Some(limit),
        rate_burst: Some(burst),
        sync_delay: Duration::from_millis(100),
        seed: SeedSource::Demo,
        ..EmulatorConfig::default()
    })
}

/// `count` Direct Routing numbers from `+1 425 <first>`, in full batches
/// of one demo account each.
fn sheet(dir: &Path, name: &str, first: u64, count: u64) -> PathBuf {
    let accounts = ["contoso", "fabrikam"];
    let mut csv =
        String::from("telephoneNumber,accountName,serviceDetails_teamsDirectRouting_enabled\n");
    for i in 0..count {
        let account = accounts[(i / 100) as usize % accounts.len()];
        csv.push_str(&format!("+1425{},{account},true\n", first + i));
    }
    let path = dir.join(name);
    std::fs::write(&path, csv).unwrap();
    path
}

/// Starts `acgbulk import SHEET --json` at `rate`, sharing budgets in
/// `state`.
fn spawn_import(dir: &Path, state: &Path, url: &str, sheet: &Path, rate: u32) -> Child {
    Command::new(common::bin())
        .args(["import", sheet.to_str().unwrap(), "--endpoint", url])
        .args(["--rate-limit", &format!("{rate}/min"), "--json"])
        .args(["--retry-backoff", "20ms", "--max-backoff", "200ms"])
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("ACG_ENDPOINT")
        .env("ACGBULK_STATE_DIR", state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs")
}

/// Waits for an import; its exit code, `--json` summary and stderr.
fn finish(child: Child) -> (i32, serde_json::Value, String) {
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let summary = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("no JSON summary ({e}); stderr:\n{stderr}"));
    (output.status.code().unwrap_or(-1), summary, stderr)
}

/// What the emulator had seen at one instant.
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Instant,
    requests: u64,
    /// Numbers held from each sheet (`ranges`).
    held: [usize; 2],
}

/// Samples the emulator every few milliseconds until `done` says stop.
fn watch(server: &Server, ranges: [(u64, u64); 2], mut done: impl FnMut() -> bool) -> Vec<Sample> {
    let mut samples = Vec::new();
    loop {
        let sample = server.emulator().with_store(|store| Sample {
            at: Instant::now(),
            requests: store.counters.requests,
            held: ranges.map(|(from, to)| store.numbers.range(from..to).count()),
        });
        samples.push(sample);
        if done() {
            return samples;
        }
        std::thread::sleep(Duration::from_millis(3));
    }
}

/// Requests a minute between two samples. Each sample is taken within a
/// few milliseconds of a change it sees, so the window starts and ends
/// at a request.
fn rate_between(from: &Sample, to: &Sample) -> f64 {
    (to.requests - from.requests) as f64 * 60.0 / (to.at - from.at).as_secs_f64()
}

fn budget_files(state: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(state)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("budget-")
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn two_concurrent_imports_share_the_limit_with_no_429() {
    let server = emulator(LIMIT, 3);
    let dir = common::tempdir();
    let state = dir.path().join("state");
    // 50 batches each: 100 requests together, ten seconds at 600/min.
    let a_first = 2_000_000;
    let b_first = 3_000_000;
    let a = sheet(dir.path(), "a.csv", a_first, 5_000);
    let b = sheet(dir.path(), "b.csv", b_first, 5_000);
    let url = server.url();
    let mut first = spawn_import(dir.path(), &state, &url, &a, LIMIT);
    let mut second = spawn_import(dir.path(), &state, &url, &b, LIMIT);
    let ranges = [
        (14_250_000_000 + a_first, 14_250_000_000 + a_first + 5_000),
        (14_250_000_000 + b_first, 14_250_000_000 + b_first + 5_000),
    ];
    let started = Instant::now();
    let samples = watch(&server, ranges, || {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the imports take too long"
        );
        first.try_wait().unwrap().is_some() && second.try_wait().unwrap().is_some()
    });
    for (child, name) in [(first, "a"), (second, "b")] {
        let (code, summary, stderr) = finish(child);
        assert_eq!(code, 0, "import {name}: {stderr}");
        assert_eq!(summary["ok"], 5_000, "{summary}");
        assert_eq!(summary["throttled"], 0, "import {name} met 429s: {summary}");
    }
    assert_eq!(
        server.stats().counters.throttled,
        0,
        "the emulator sent 429s"
    );

    // The overlap: from the first sample where both sheets have numbers
    // in the emulator to the first where either is complete.
    let both = samples
        .iter()
        .position(|s| s.held[0] > 0 && s.held[1] > 0)
        .expect("the two imports overlapped");
    let one_done = samples
        .iter()
        .position(|s| s.held[0] == 5_000 || s.held[1] == 5_000)
        .expect("an import finished");
    let (start, end) = (&samples[both], &samples[one_done]);
    let overlap = end.at - start.at;
    assert!(overlap > Duration::from_secs(5), "overlap only {overlap:?}");
    let combined = rate_between(start, end);
    eprintln!("overlap {overlap:?}: together {combined:.1} requests/min");
    assert!(
        combined >= 0.95 * LIMIT as f64,
        "together {combined:.1} requests/min over {overlap:?}, below 95 % of {LIMIT}"
    );
    // A fair share: while both ran, each had about half.
    let share = (end.held[0] - start.held[0]) as f64
        / ((end.held[0] - start.held[0]) + (end.held[1] - start.held[1])) as f64;
    eprintln!("sheet a's share of the overlap: {share:.3}");
    assert!(
        (0.4..=0.6).contains(&share),
        "sheet a had {share:.2} of the overlap"
    );
    let files = budget_files(&state);
    assert_eq!(files.len(), 1, "one budget for the endpoint: {files:?}");
}

#[test]
fn the_lowest_rate_governs_while_both_send() {
    // Six requests of burst (0.6 s at the limit) absorb a loaded test
    // machine's scheduling jitter at the moment the slow run leaves; the
    // two runs ungoverned (900/min against 600) would exhaust it in about
    // a second and meet many 429s.
    let server = emulator(LIMIT, 6);
    let dir = common::tempdir();
    let state = dir.path().join("state");
    let (fast_first, slow_first) = (2_000_000, 3_000_000);
    let fast = sheet(dir.path(), "fast.csv", fast_first, 4_000);
    let slow = sheet(dir.path(), "slow.csv", slow_first, 2_000);
    let url = server.url();
    let mut fast_child = spawn_import(dir.path(), &state, &url, &fast, LIMIT);
    let mut slow_child = spawn_import(dir.path(), &state, &url, &slow, LIMIT / 2);
    let ranges = [
        (
            14_250_000_000 + fast_first,
            14_250_000_000 + fast_first + 4_000,
        ),
        (
            14_250_000_000 + slow_first,
            14_250_000_000 + slow_first + 2_000,
        ),
    ];
    let started = Instant::now();
    let samples = watch(&server, ranges, || {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the imports take too long"
        );
        fast_child.try_wait().unwrap().is_some() && slow_child.try_wait().unwrap().is_some()
    });
    for (child, name) in [(fast_child, "fast"), (slow_child, "slow")] {
        let (code, summary, stderr) = finish(child);
        assert_eq!(code, 0, "{name}: {stderr}");
        assert_eq!(summary["throttled"], 0, "{name}: {summary}");
    }
    assert_eq!(server.stats().counters.throttled, 0);
    let both = samples
        .iter()
        .position(|s| s.held[0] > 0 && s.held[1] > 0)
        .expect("the imports overlapped");
    let slow_done = samples
        .iter()
        .position(|s| s.held[1] == 2_000)
        .expect("the slow import finished");
    let fast_done = samples
        .iter()
        .position(|s| s.held[0] == 4_000)
        .expect("the fast import finished");
    assert!(
        slow_done < fast_done,
        "the fast import outlived the slow one"
    );
    let together = rate_between(&samples[both], &samples[slow_done]);
    let after = rate_between(&samples[slow_done], &samples[fast_done]);
    eprintln!("together {together:.1}/min, the fast one after {after:.1}/min");
    let slow_limit = f64::from(LIMIT / 2);
    assert!(
        (0.9 * slow_limit..=1.1 * slow_limit).contains(&together),
        "together {together:.1} requests/min while the {slow_limit}/min run sent"
    );
    // Alone again, the fast one has its own limit back (the slow one left
    // the budget as it finished).
    assert!(
        after >= 0.8 * f64::from(LIMIT),
        "after: {after:.1} requests/min"
    );
}

#[test]
fn a_lone_import_gets_the_whole_budget() {
    let server = emulator(LIMIT, 3);
    let dir = common::tempdir();
    let state = dir.path().join("state");
    // 40 batches: four seconds at 600/min.
    let input = sheet(dir.path(), "alone.csv", 2_000_000, 4_000);
    let child = spawn_import(dir.path(), &state, &server.url(), &input, LIMIT);
    let (code, summary, stderr) = finish(child);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary["ok"], 4_000, "{summary}");
    assert_eq!(summary["throttled"], 0, "{summary}");
    assert_eq!(server.stats().counters.throttled, 0);
    let per_minute = summary["numbersPerMinute"].as_f64().unwrap();
    let ceiling = LIMIT as f64 * 100.0;
    assert!(
        per_minute >= 0.95 * ceiling,
        "{per_minute:.0} numbers/min, below 95 % of {ceiling}"
    );
    assert_eq!(budget_files(&state).len(), 1);
}

#[test]
fn throttling_by_a_stricter_server_fails_no_row() {
    // The gateway allows half what the client was told.
    let server = emulator(LIMIT / 2, 2);
    let dir = common::tempdir();
    let state = dir.path().join("state");
    let input = sheet(dir.path(), "strict.csv", 2_000_000, 3_000);
    let child = spawn_import(dir.path(), &state, &server.url(), &input, LIMIT);
    let (code, summary, stderr) = finish(child);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary["ok"], 3_000, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    let throttled = summary["throttled"].as_u64().unwrap();
    assert!(throttled > 0, "the stricter server throttled: {summary}");
    let stats = server.stats();
    assert_eq!(stats.counters.throttled, throttled);
    assert_eq!(stats.max_writes_per_number, 1, "no number written twice");
    let held = server.emulator().with_store(|store| {
        let first = 14_250_000_000 + 2_000_000;
        store.numbers.range(first..first + 3_000).count()
    });
    assert_eq!(held, 3_000);
    // The slow-down is logged once per cut, not once per 429.
    let cuts = stderr.matches("throttled by the service").count();
    assert!(cuts >= 1 && (cuts as u64) <= throttled, "{stderr}");
}

#[test]
fn an_unusable_state_directory_paces_alone_with_one_warning() {
    let server = emulator(LIMIT * 10, 3);
    let dir = common::tempdir();
    // A file where the directory should be.
    let state = dir.path().join("not-a-dir");
    std::fs::write(&state, "").unwrap();
    let input = sheet(dir.path(), "small.csv", 2_000_000, 500);
    let child = spawn_import(dir.path(), &state, &server.url(), &input, LIMIT * 10);
    let (code, summary, stderr) = finish(child);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary["ok"], 500, "{summary}");
    assert_eq!(
        stderr.matches("cannot use the shared rate budget").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("not-a-dir"), "{stderr}");
}
