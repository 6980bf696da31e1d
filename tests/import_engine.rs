//! `acgbulk import`, `delete` and `resume` end to end: the real binary over
//! loopback against an emulator each test starts on a free port.

mod common;

use acgbulk::emulator::{EmulatorConfig, Faults, SeedSource};
use common::{results, sheet_numbers, Run, Server};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn quick() -> EmulatorConfig {
    common::unlimited_emulator(Duration::from_millis(200), SeedSource::Demo)
}

fn sheet(dir: &Path, name: &str, rows: u64, accounts: usize) -> PathBuf {
    common::clean_sheet(dir, name, rows, accounts, 7)
}

/// A sheet with exactly `counts[i]` numbers for the i-th demo account,
/// rows interleaved across accounts.
fn exact_sheet(dir: &Path, name: &str, counts: &[u64]) -> PathBuf {
    let names = ["contoso", "fabrikam", "northwind", "adatum"];
    let mut csv = String::from(
        "telephoneNumber,accountName,serviceDetails_teamsDirectRouting_enabled,serviceDetails_teamsOperatorConnect_enabled,serviceDetails_teamsOperatorConnect_configuration_usage,serviceDetails_teamsOperatorConnect_configuration_choosableCapabilities,serviceDetails_teamsOperatorConnect_configuration_allowTenantAddressUpdate\n",
    );
    let mut next = vec![0u64; counts.len()];
    let mut left: u64 = counts.iter().sum();
    let mut a = 0;
    while left > 0 {
        if next[a] < counts[a] {
            let number = 14252000000 + a as u64 * 1_000_000 + next[a];
            if next[a].is_multiple_of(2) {
                csv.push_str(&format!("+{number},{},true,,,,\n", names[a]));
            } else {
                csv.push_str(&format!(
                    "+{number},{},,true,ConferenceAssignment,InboundCalling,\n",
                    names[a]
                ));
            }
            next[a] += 1;
            left -= 1;
        }
        a = (a + 1) % counts.len();
    }
    let path = dir.join(name);
    std::fs::write(&path, csv).unwrap();
    path
}

fn import(dir: &Path, url: &str, args: &[&str]) -> Run {
    let mut all = vec![
        "import",
        "--endpoint",
        url,
        "--retry-backoff",
        "20ms",
        "--max-backoff",
        "200ms",
    ];
    all.extend_from_slice(args);
    common::run(dir, &all)
}

#[test]
fn ten_thousand_numbers_land_once_in_a_hundred_batches() {
    let server = Server::start(quick());
    let dir = common::tempdir();
    let input = exact_sheet(dir.path(), "load.csv", &[3_400, 3_300, 3_300]);
    let run = import(
        dir.path(),
        &server.url(),
        &[input.to_str().unwrap(), "--rate-limit", "off", "--json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(summary["ok"], 10_000);
    assert_eq!(summary["batches"], 100);
    assert_eq!(summary["throttled"], 0);
    let lines = results(&dir.path().join("load.results.csv"));
    assert_eq!(lines.len(), 10_000);
    assert!(lines
        .iter()
        .all(|l| l["outcome"] == "ok" && l["httpStatus"] == "200" && !l["requestId"].is_empty()));
    // In input order, with the input's rows.
    assert!(lines
        .windows(2)
        .all(|w| w[0]["row"].parse::<u64>().unwrap() < w[1]["row"].parse::<u64>().unwrap()));
    let stats = server.stats();
    assert_eq!(stats.counters.writes_applied, 100);
    assert_eq!(
        stats.counters.per_route["POST /accounts/{account}:createOrUpdateNumbers"],
        100
    );
    assert_eq!(stats.max_writes_per_number, 1);
    assert_eq!(server.numbers(), sheet_numbers(&input));

    // The same sheet deleted: the numbers are gone.
    let run = common::run(
        dir.path(),
        &[
            "delete",
            input.to_str().unwrap(),
            "--endpoint",
            &server.url(),
            "--rate-limit",
            "off",
            "--results",
            "deleted.csv",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(server.numbers().is_empty());
    let lines = results(&dir.path().join("deleted.csv"));
    assert_eq!(lines.len(), 10_000);
    assert!(lines
        .iter()
        .all(|l| l["action"] == "delete" && l["outcome"] == "ok" && l["httpStatus"] == "204"));
}

#[test]
fn faults_drops_and_throttling_change_nothing_twice() {
    let server = Server::start(EmulatorConfig {
        rate_limit: Some(3000),
        rate_burst: Some(3),
        // With seed 4 the fault draws (every request here is a write) hold
        // several drops among the first hundred requests.
        faults: Faults {
            seed: 4,
            fault_rate: 0.05,
            drop_after_commit_rate: 0.02,
            ..Faults::default()
        },
        ..quick()
    });
    let dir = common::tempdir();
    let input = exact_sheet(dir.path(), "faulty.csv", &[4_000, 3_000, 3_000]);
    let run = import(
        dir.path(),
        &server.url(),
        &[
            input.to_str().unwrap(),
            "--rate-limit",
            "6000/min",
            "--json",
            "--max-attempts",
            "10",
            "--timeout",
            "5s",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(summary["ok"], 10_000);
    assert!(
        summary["throttled"].as_u64().unwrap() > 0,
        "the server's low limit forced 429s: {summary}"
    );
    assert!(summary["retries"].as_u64().unwrap() > 0);
    let stats = server.stats();
    assert!(
        stats.counters.faults_injected > 0 && stats.counters.dropped_after_commit > 0,
        "{stats:?}"
    );
    assert!(
        stats.counters.repeats_replayed >= stats.counters.dropped_after_commit,
        "dropped writes were replayed, not applied again"
    );
    assert_eq!(stats.counters.writes_applied, 100);
    assert_eq!(stats.max_writes_per_number, 1, "no number written twice");
    assert_eq!(server.numbers(), sheet_numbers(&input));
}

/// Kills an import at several moments and resumes it each time.
#[test]
fn killed_runs_resume_exactly() {
    let server = Server::start(EmulatorConfig {
        faults: Faults {
            latency: Duration::from_millis(60),
            ..Faults::default()
        },
        ..quick()
    });
    let dir = common::tempdir();
    let input = exact_sheet(dir.path(), "crash.csv", &[1_500, 1_500, 1_000]);
    let results_path = dir.path().join("crash.results.csv");
    let checkpoint = dir.path().join("crash.results.csv.checkpoint");
    let url = server.url();
    let args = |first: bool| -> Vec<String> {
        let mut args: Vec<String> = if first {
            vec!["import".into(), input.to_str().unwrap().into()]
        } else {
            vec!["resume".into(), checkpoint.to_str().unwrap().into()]
        };
        args.extend(
            [
                "--endpoint",
                &url,
                "--rate-limit",
                "600/min",
                "--concurrency",
                "3",
            ]
            .map(String::from),
        );
        args
    };
    // Kill moments, in milliseconds after the run has written to its
    // checkpoint: at once (before the first answer), then at odd times that
    // fall mid-batch (latency 60 ms) and between checkpoint writes.
    let moments = [0u64, 130, 290, 410, 555, 730];
    let mut first = true;
    for (attempt, &after) in moments.iter().enumerate() {
        let before = std::fs::metadata(&checkpoint).map(|m| m.len()).unwrap_or(0);
        let mut child = Command::new(common::bin())
            .args(args(first))
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::fs::metadata(&checkpoint).map(|m| m.len()).unwrap_or(0) <= before
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(after));
        let finished = child.try_wait().unwrap().is_some();
        // SAFETY: SIGKILL to our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
        assert!(
            !finished,
            "kill {attempt} came after the run ended; slow it down"
        );
        first = false;
        assert!(checkpoint.exists());
    }
    let started = Instant::now();
    let run = Run::from(
        Command::new(common::bin())
            .args(args(false))
            .current_dir(dir.path())
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(results(&results_path).len(), 4_000);
    common::assert_exactly_once(&server, &input, &results_path);
    assert_eq!(server.stats().counters.writes_applied, 40);
    // A finished run has nothing more to do.
    let run = Run::from(
        Command::new(common::bin())
            .args(args(false))
            .current_dir(dir.path())
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0);
    assert!(run.stderr.contains("finished run"), "{}", run.stderr);
}

#[test]
fn sigterm_stops_resumably_and_resume_refuses_a_changed_input() {
    let server = Server::start(quick());
    let dir = common::tempdir();
    let input = sheet(dir.path(), "slow.csv", 3_000, 2);
    let url = server.url();
    let child = Command::new(common::bin())
        .args([
            "import",
            input.to_str().unwrap(),
            "--endpoint",
            &url,
            "--rate-limit",
            "300/min",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stop it once a batch has been answered (not after a fixed time,
    // which a loaded machine may not reach).
    let checkpoint = dir.path().join("slow.results.csv.checkpoint");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline
        && !std::fs::read_to_string(&checkpoint).is_ok_and(|text| text.contains("\"t\":\"done\""))
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: SIGTERM to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let run = Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("resume with: acgbulk resume"),
        "{}",
        run.stderr
    );
    let lines = results(&dir.path().join("slow.results.csv"));
    assert_eq!(
        lines.len(),
        3_000,
        "the results list every number, sent or not"
    );
    let skipped = lines.iter().filter(|l| l["outcome"] == "skipped").count();
    assert!(skipped > 0 && skipped < 3_000, "{skipped}");
    assert_eq!(
        lines.iter().filter(|l| l["outcome"] == "ok").count(),
        3_000 - skipped
    );

    // An import with other options over an unfinished checkpoint is
    // refused, naming what differs (the same command would continue it).
    let run = import(
        dir.path(),
        &url,
        &[input.to_str().unwrap(), "--batch-size", "50"],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("unfinished run") && run.stderr.contains("--batch-size"),
        "{}",
        run.stderr
    );

    // A changed input cannot be resumed.
    let original = std::fs::read(&input).unwrap();
    std::fs::write(
        &input,
        [&original[..], b"+14259999999,contoso,false,,,,,,true,\n"].concat(),
    )
    .unwrap();
    let checkpoint = dir.path().join("slow.results.csv.checkpoint");
    let run = common::run(
        dir.path(),
        &[
            "resume",
            checkpoint.to_str().unwrap(),
            "--rate-limit",
            "off",
        ],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("has changed since the run began"),
        "{}",
        run.stderr
    );
    std::fs::write(&input, original).unwrap();
    let run = common::run(
        dir.path(),
        &[
            "resume",
            checkpoint.to_str().unwrap(),
            "--rate-limit",
            "off",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(server.numbers(), sheet_numbers(&input));
    assert_eq!(server.stats().max_writes_per_number, 1);
}

#[test]
fn a_bad_number_is_bisected_out_of_its_batch() {
    let server = Server::start(quick());
    let dir = common::tempdir();
    // dr-only has Direct Routing only: the one Zoom number is refused by
    // the service (offline validation cannot know what the account has).
    let accounts = r#"{ "accounts": [ { "name": "dr-only", "serviceDetails": { "teamsDirectRouting": { "enabled": true } } } ] }"#;
    let seed = dir.path().join("seed.json");
    std::fs::write(&seed, accounts).unwrap();
    drop(server);
    let server = Server::start(EmulatorConfig {
        seed: SeedSource::File(seed),
        ..quick()
    });
    let mut csv = String::from("telephoneNumber,accountName,serviceDetails_teamsDirectRouting_enabled,serviceDetails_zoomPhoneCloudPeering_enabled\n");
    for i in 0..60 {
        let zoom = if i == 37 { "true" } else { "" };
        csv.push_str(&format!("+1425555{:04},dr-only,true,{zoom}\n", 1000 + i));
    }
    std::fs::write(dir.path().join("one-bad.csv"), csv).unwrap();
    let run = import(
        dir.path(),
        &server.url(),
        &["one-bad.csv", "--rate-limit", "off"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let lines = results(&dir.path().join("one-bad.results.csv"));
    let failed: Vec<_> = lines.iter().filter(|l| l["outcome"] != "ok").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["telephoneNumber"], "+14255551037");
    assert_eq!(failed[0]["httpStatus"], "400");
    assert_eq!(failed[0]["errorCode"], "ServiceNotEnabledOnAccount");
    assert!(
        failed[0]["errorMessage"].contains("zoomPhoneCloudPeering"),
        "{:?}",
        failed[0]
    );
    assert_eq!(server.numbers().len(), 59);
    // Halving 60 to one number: 1 + 2 + 2 + 2 + 2 + 2 + 2 requests at most.
    let posts = server.stats().counters.per_route["POST /accounts/{account}:createOrUpdateNumbers"];
    assert!(posts <= 13, "{posts}");
}

#[test]
fn a_malformed_sheet_sends_nothing_and_dry_run_sends_nothing() {
    let server = Server::start(quick());
    let dir = common::tempdir();
    let mistakes = common::samples().join("mistakes.csv");
    let run = import(
        dir.path(),
        &server.url(),
        &[
            mistakes.to_str().unwrap(),
            "--results",
            "r.csv",
            "--report",
            "report.csv",
        ],
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("nothing sent"), "{}", run.stderr);
    assert!(dir.path().join("report.csv").exists());
    assert!(!dir.path().join("r.csv.checkpoint").exists());
    let input = sheet(dir.path(), "plan.csv", 250, 3);
    let run = import(
        dir.path(),
        &server.url(),
        &[input.to_str().unwrap(), "--dry-run", "--batch-size", "50"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("batches of at most 50"),
        "{}",
        run.stderr
    );
    assert_eq!(server.stats().counters.requests, 0, "nothing was sent");
    let run = import(
        dir.path(),
        &server.url(),
        &[input.to_str().unwrap(), "--batch-size", "101"],
    );
    assert_eq!(run.code, 2, "at most 100 a batch");
}

#[test]
fn wait_sync_records_the_backend_outcome() {
    let server = Server::start(quick());
    let dir = common::tempdir();
    let csv = "telephoneNumber,accountName,serviceDetails_teamsOperatorConnect_enabled,serviceDetails_teamsOperatorConnect_configuration_usage,serviceDetails_teamsOperatorConnect_configuration_choosableCapabilities,serviceDetails_teamsOperatorConnect_configuration_allowTenantAddressUpdate\n\
+442079460100,contoso,true,ConferenceAssignment,InboundCalling,\n\
+442079460101,contoso,true,CallingUserAssignment,InboundCalling,true\n\
+442079460102,contoso,true,CallingUserAssignment,InboundCalling,false\n";
    std::fs::write(dir.path().join("sync.csv"), csv).unwrap();
    // Row 4 fails offline (no address); the backend would fail it too.
    let run = import(
        dir.path(),
        &server.url(),
        &[
            "sync.csv",
            "--rate-limit",
            "off",
            "--wait-sync",
            "--sync-poll",
            "100ms",
            "--skip-invalid",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let lines = results(&dir.path().join("sync.results.csv"));
    assert_eq!(lines[0]["serviceProvisioningStatus"], "synced");
    assert_eq!(lines[1]["serviceProvisioningStatus"], "synced");
    assert_eq!(lines[2]["outcome"], "invalid");
    assert_eq!(lines[2]["errorCode"], "ADDRESS_REQUIRED");
    let polls = server
        .stats()
        .counters
        .per_route
        .get("GET /accounts/{account}/numbers")
        .copied()
        .unwrap_or(0);
    assert!(
        (1..=10).contains(&polls),
        "paged polling, not one GET per number: {polls}"
    );
}

#[test]
fn two_runs_cannot_share_a_checkpoint() {
    let server = Server::start(EmulatorConfig {
        faults: Faults {
            latency: Duration::from_millis(50),
            ..Faults::default()
        },
        ..quick()
    });
    let dir = common::tempdir();
    let input = sheet(dir.path(), "shared.csv", 2_000, 2);
    let url = server.url();
    let mut first = Command::new(common::bin())
        .args([
            "import",
            input.to_str().unwrap(),
            "--endpoint",
            &url,
            "--rate-limit",
            "120/min",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let checkpoint = dir.path().join("shared.results.csv.checkpoint");
    // The first run validates, checks its accounts, then creates the
    // checkpoint: wait for it rather than for a fixed time.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !checkpoint.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = common::run(
        dir.path(),
        &[
            "resume",
            checkpoint.to_str().unwrap(),
            "--rate-limit",
            "off",
        ],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("in use by another acgbulk run"),
        "{}",
        run.stderr
    );
    // SAFETY: SIGKILL to our own child.
    unsafe { libc::kill(first.id() as i32, libc::SIGKILL) };
    first.wait().unwrap();
}
