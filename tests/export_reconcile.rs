//! `acgbulk export` and `acgbulk reconcile` end to end against an emulator
//! the test starts on a free port: drift made behind the tool's back, found
//! and put right; round trips that change nothing; paging and resuming.

mod common;

use acgbulk::emulator::{EmulatorConfig, SeedSource};
use common::{read_csv, Run, Server};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const V: &str = "api-version=2024-02-29";

fn quick() -> EmulatorConfig {
    common::unlimited_emulator(Duration::from_millis(100), SeedSource::Demo)
}

fn acg(dir: &Path, url: &str, args: &[&str]) -> Run {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--endpoint", url, "--rate-limit", "off"]);
    common::run(dir, &all)
}

/// A desired sheet: Operator Connect and Direct Routing numbers in three
/// accounts.
fn desired(dir: &Path, count: u64) -> PathBuf {
    let mut csv = String::from(
        "telephoneNumber,accountName,serviceDetails_teamsOperatorConnect_enabled,serviceDetails_teamsOperatorConnect_configuration_usage,serviceDetails_teamsOperatorConnect_configuration_choosableCapabilities,serviceDetails_teamsOperatorConnect_configuration_allowTenantAddressUpdate,serviceDetails_teamsDirectRouting_enabled,configuration_customSipHeader\n",
    );
    for i in 0..count {
        let account = ["contoso", "fabrikam", "northwind"][(i % 3) as usize];
        if i % 2 == 0 {
            csv.push_str(&format!("+1425{:07},{account},yes,callinguserassignment,OutboundCalling;InboundCalling,1,,\n", 2_000_000 + i));
        } else {
            csv.push_str(&format!(
                "+1425{:07},{account},,,,,TRUE,trunk-{}\n",
                2_000_000 + i,
                i % 7
            ));
        }
    }
    let path = dir.join("desired.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::new()
}

#[test]
fn drift_behind_the_tools_back_is_found_and_put_right() {
    let server = Server::start(quick());
    let dir = common::tempdir();
    let url = server.url();
    let sheet = desired(dir.path(), 600);
    let run = acg(dir.path(), &url, &["import", sheet.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    // Behind the tool's back: edit, add, delete and move numbers.
    let http = http();
    let oc = |usage: &str| json!({ "serviceDetails": { "teamsOperatorConnect": { "enabled": true, "configuration": { "usage": usage, "choosableCapabilities": ["InboundCalling", "OutboundCalling"], "allowTenantAddressUpdate": true } } } });
    for i in [0u64, 6, 12] {
        let account = ["contoso", "fabrikam", "northwind"][(i % 3) as usize];
        let r = http
            .put(format!(
                "{url}/accounts/{account}/numbers/%2B1425{:07}?{V}",
                2_000_000 + i
            ))
            .json(&oc("ConferenceAssignment"))
            .send()
            .unwrap();
        assert!(r.status().is_success());
    }
    let dr = json!({ "serviceDetails": { "teamsDirectRouting": { "enabled": true } } });
    for i in 0..4u64 {
        let r = http
            .put(format!(
                "{url}/accounts/contoso/numbers/%2B1425{:07}?{V}",
                3_000_000 + i
            ))
            .json(&dr)
            .send()
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    for i in [1u64, 7] {
        let account = ["contoso", "fabrikam", "northwind"][(i % 3) as usize];
        let r = http
            .delete(format!(
                "{url}/accounts/{account}/numbers/%2B1425{:07}?{V}",
                2_000_000 + i
            ))
            .send()
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    // Moved: +14252000003 belongs to contoso; released and taken by fabrikam.
    http.delete(format!("{url}/accounts/contoso/numbers/%2B14252000003?{V}"))
        .send()
        .unwrap();
    let moved = json!({ "serviceDetails": { "teamsDirectRouting": { "enabled": true } }, "configuration": { "customSipHeader": "trunk-3" } });
    assert_eq!(
        http.put(format!(
            "{url}/accounts/fabrikam/numbers/%2B14252000003?{V}"
        ))
        .json(&moved)
        .send()
        .unwrap()
        .status(),
        201
    );

    // Export, then reconcile.
    let run = acg(
        dir.path(),
        &url,
        &["export", "numbers", "-o", "actual.csv", "--page-size", "50"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = common::run(
        dir.path(),
        &[
            "reconcile",
            "desired.csv",
            "--actual",
            "actual.csv",
            "--out",
            "drift",
            "--json",
        ],
    );
    assert_eq!(run.code, 1, "drift is exit 1: {}", run.stderr);
    let summary: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(summary["counts"]["changed"], 3);
    assert_eq!(summary["counts"]["extra"], 4);
    assert_eq!(summary["counts"]["missing"], 2);
    assert_eq!(summary["counts"]["moved"], 1);
    assert_eq!(summary["counts"]["same"], 600 - 3 - 2 - 1);
    let diff = read_csv(&dir.path().join("drift/diff.csv"));
    assert!(
        diff.iter().any(|l| l
            == &[
                "+14252000000",
                "changed",
                "serviceDetails_teamsOperatorConnect_configuration_usage",
                "CallingUserAssignment",
                "ConferenceAssignment"
            ]),
        "{diff:?}"
    );
    assert!(
        diff.iter().any(|l| l
            == &[
                "+14252000003",
                "moved",
                "accountName",
                "contoso",
                "fabrikam"
            ]),
        "{diff:?}"
    );
    assert!(diff
        .iter()
        .any(|l| l[0] == "+14253000000" && l[1] == "extra"));
    assert!(diff
        .iter()
        .any(|l| l[0] == "+14252000001" && l[1] == "missing"));
    assert_eq!(
        read_csv(&dir.path().join("drift/to-upsert.csv")).len(),
        1 + 3 + 2 + 1
    );
    assert_eq!(
        read_csv(&dir.path().join("drift/to-delete.csv")).len(),
        1 + 4 + 1
    );

    // The same, live.
    let run = acg(
        dir.path(),
        &url,
        &[
            "reconcile",
            "desired.csv",
            "--live",
            "--out",
            "drift-live",
            "--json",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let live: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(live["counts"]["changed"], 3);
    assert_eq!(live["counts"]["extra"], 4);

    // Without --allow-delete, the extra numbers stay: drift remains.
    let run = acg(
        dir.path(),
        &url,
        &[
            "reconcile",
            "desired.csv",
            "--live",
            "--out",
            "apply1",
            "--apply",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("moved numbers cannot move without --allow-delete"),
        "{}",
        run.stderr
    );
    // With it: apply, export again, zero drift.
    let run = acg(
        dir.path(),
        &url,
        &[
            "reconcile",
            "desired.csv",
            "--live",
            "--out",
            "apply2",
            "--apply",
            "--allow-delete",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = acg(dir.path(), &url, &["export", "numbers", "-o", "after.csv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = common::run(
        dir.path(),
        &[
            "reconcile",
            "desired.csv",
            "--actual",
            "after.csv",
            "--out",
            "after",
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "zero drift after apply: {}", run.stderr);
    let after: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(after["counts"]["same"], 600);
}

#[test]
fn importing_an_unedited_export_changes_nothing() {
    let server = Server::start(quick());
    let dir = common::tempdir();
    let url = server.url();
    for sample in [
        "operator-connect.csv",
        "direct-routing.csv",
        "mixed-ranges.csv",
    ] {
        let input = common::samples().join(sample);
        let run = acg(
            dir.path(),
            &url,
            &[
                "import",
                input.to_str().unwrap(),
                "--results",
                &format!("{sample}.results.csv"),
            ],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let run = acg(dir.path(), &url, &["export", "numbers", "-o", "all.csv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let before = server.stats();
    assert_eq!(before.numbers, 177);
    let run = acg(dir.path(), &url, &["import", "all.csv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let after = server.stats();
    assert_eq!(
        after.counters.number_writes, before.counters.number_writes,
        "no number changed"
    );
    assert_eq!(after.max_writes_per_number, 1);
    let run = common::run(
        dir.path(),
        &[
            "reconcile",
            "all.csv",
            "--actual",
            "all.csv",
            "--out",
            "self",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The Excel export reads back the same.
    let run = acg(dir.path(), &url, &["export", "numbers", "-o", "all.xlsx"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = common::run(
        dir.path(),
        &[
            "reconcile",
            "all.xlsx",
            "--actual",
            "all.csv",
            "--out",
            "xlsx",
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!dir.path().join("all.xlsx.partial.csv").exists());
}

#[test]
fn other_exports_have_their_columns() {
    let server = Server::start(quick());
    let dir = common::tempdir();
    let url = server.url();
    let run = acg(
        dir.path(),
        &url,
        &["export", "accounts", "-o", "accounts.csv"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let accounts = read_csv(&dir.path().join("accounts.csv"));
    assert_eq!(accounts.len(), 17, "the sixteen demo accounts");
    assert_eq!(accounts[0][0], "name");
    assert!(accounts[0].contains(
        &"serviceDetails_teamsDirectRouting_configuration_subdomainTokens_region1Token".to_owned()
    ));
    assert!(accounts[0].contains(&"serviceDetails_teamsDirectRouting_subdomainStatus".to_owned()));
    let contoso = accounts.iter().find(|r| r[0] == "contoso").unwrap();
    assert!(contoso.contains(&"provisioned".to_owned()));

    let run = acg(dir.path(), &url, &["export", "rfis", "-o", "rfis.csv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rfis = read_csv(&dir.path().join("rfis.csv"));
    assert_eq!(rfis.len(), 5);
    let contacts: Vec<serde_json::Value> = serde_json::from_str(&rfis[1][14]).unwrap();
    assert_eq!(contacts.len(), 2, "all contacts as JSON");
    assert_eq!(
        rfis[1][10],
        contacts[0]["email"].as_str().unwrap(),
        "the first in columns"
    );

    let run = acg(
        dir.path(),
        &url,
        &["export", "civic-addresses", "-o", "civic.csv"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let civic = read_csv(&dir.path().join("civic.csv"));
    assert_eq!(civic.len(), 1 + 4 * 2, "one row per location");
    let run = acg(
        dir.path(),
        &url,
        &[
            "export",
            "civic-addresses",
            "--account",
            "fabrikam",
            "-o",
            "fabrikam.csv",
        ],
    );
    assert_eq!(run.code, 0);
    assert_eq!(read_csv(&dir.path().join("fabrikam.csv")).len(), 3);
    let run = acg(
        dir.path(),
        &url,
        &[
            "export",
            "numbers",
            "--account",
            "nobody",
            "-o",
            "nobody.csv",
        ],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("404"), "{}", run.stderr);
}

#[test]
fn paging_twenty_five_thousand_numbers_and_resuming_a_killed_export() {
    let server = Server::start(EmulatorConfig {
        max_page_size: 500,
        ..quick()
    });
    let dir = common::tempdir();
    let url = server.url();
    let http = http();
    for batch in 0..250u64 {
        let numbers: Vec<_> = (0..100u64)
            .map(|i| json!({ "telephoneNumber": format!("+1425{:07}", 2_000_000 + batch * 100 + i), "serviceDetails": { "teamsDirectRouting": { "enabled": true } } }))
            .collect();
        let account = ["contoso", "fabrikam"][(batch % 2) as usize];
        let r = http
            .post(format!(
                "{url}/accounts/{account}:createOrUpdateNumbers?{V}"
            ))
            .json(&json!({ "numbers": numbers }))
            .send()
            .unwrap();
        assert!(r.status().is_success());
    }
    let before = server
        .stats()
        .counters
        .per_route
        .get("GET /numbers")
        .copied()
        .unwrap_or(0);
    let run = acg(
        dir.path(),
        &url,
        &["export", "numbers", "-o", "clean.csv", "--page-size", "100"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let gets = server.stats().counters.per_route["GET /numbers"] - before;
    assert_eq!(gets, 250, "ceil(25,000 / 100) requests and nothing more");
    let clean = read_csv(&dir.path().join("clean.csv"));
    assert_eq!(clean.len(), 25_001);
    let numbers: Vec<&str> = clean[1..].iter().map(|r| r[0].as_str()).collect();
    let mut sorted = numbers.clone();
    sorted.sort();
    assert_eq!(numbers, sorted, "a stable order");
    assert_eq!(numbers.iter().collect::<BTreeSet<_>>().len(), 25_000);

    // Kill an export three times, at different moments; run it again each time.
    let out = dir.path().join("killed.csv");
    for after in [250u64, 500, 800] {
        let mut child = Command::new(common::bin())
            .args([
                "export",
                "numbers",
                "-o",
                out.to_str().unwrap(),
                "--page-size",
                "100",
                "--endpoint",
                &url,
                "--rate-limit",
                "6000/min",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(after)
            && child.try_wait().unwrap().is_none()
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the export ended before the kill at {after} ms"
        );
        // SAFETY: SIGKILL to our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
    }
    let run = acg(
        dir.path(),
        &url,
        &[
            "export",
            "numbers",
            "-o",
            out.to_str().unwrap(),
            "--page-size",
            "100",
            "--json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(summary["resumed"], true);
    assert!(
        summary["pages"].as_u64().unwrap() < 250,
        "it went on, not from the start: {summary}"
    );
    assert_eq!(read_csv(&out), clean, "no duplicate or missing row");
    // Another export with other options is not mistaken for this one.
    let run = acg(
        dir.path(),
        &url,
        &[
            "export",
            "numbers",
            "-o",
            out.to_str().unwrap(),
            "--page-size",
            "200",
        ],
    );
    assert_eq!(
        run.code, 0,
        "a finished export is started afresh: {}",
        run.stderr
    );
}

#[test]
fn reconcile_input_errors_exit_2() {
    let dir = common::tempdir();
    let mistakes = common::samples().join("mistakes.csv");
    std::fs::write(
        dir.path().join("empty.csv"),
        "telephoneNumber,accountName\n",
    )
    .unwrap();
    let run = common::run(
        dir.path(),
        &[
            "reconcile",
            mistakes.to_str().unwrap(),
            "--actual",
            "empty.csv",
            "--out",
            "o",
        ],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("18 of 18 numbers are invalid"),
        "{}",
        run.stderr
    );
    let run = common::run(
        dir.path(),
        &[
            "reconcile",
            mistakes.to_str().unwrap(),
            "--actual",
            "empty.csv",
            "--out",
            "o",
            "--skip-invalid",
            "--allow-invalid-numbers",
            "--json",
        ],
    );
    // Row 5's number is not valid by the metadata: allowed, it is the one
    // valid row.
    assert_eq!(run.code, 1);
    let summary: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(summary["counts"]["missing"], 1);
    let run = common::run(
        dir.path(),
        &[
            "reconcile",
            "nope.csv",
            "--actual",
            "empty.csv",
            "--out",
            "o",
        ],
    );
    assert_eq!(run.code, 2);
}
