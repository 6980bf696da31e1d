//! `--json` on every command: one object on stdout, no key twice, and the
//! keys the README's "JSON output" lists, no more and no fewer (so the
//! documentation cannot drift); `--dry-run --json` prints the plan; and
//! progress lines on stderr when it is not a terminal. The real binary,
//! against an emulator on loopback.

mod common;

use common::{parse_strict, read_csv, Run, Server};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[test]
fn the_strict_parser_refuses_a_key_twice_at_any_depth() {
    assert!(parse_strict(r#"{"a": 1, "b": {"c": [1, 2.5, null, "x"]}}"#).is_ok());
    for twice in [
        r#"{"toUpsert": 47, "toUpsert": "recon2/to-upsert.csv"}"#,
        r#"{"a": {"b": 1, "b": 1}}"#,
        r#"{"a": [{"b": 1}, {"c": 1, "c": 2}]}"#,
    ] {
        let error = parse_strict(twice).unwrap_err().to_string();
        assert!(error.contains("twice"), "{twice}: {error}");
    }
    // Two objects, or anything after the one, is not one object.
    assert!(parse_strict("{}\n{}").is_err());
    assert!(parse_strict("{} x").is_err());
}

// ------------------------------------------------------- the documentation

/// The README's "JSON output": each `###` heading with the keys its table
/// lists (nested ones as `a.b` and `a[].b`).
fn documented() -> BTreeMap<String, Vec<String>> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("the README");
    let start = readme
        .find("\n## JSON output\n")
        .expect("the README has a JSON output section");
    let section = &readme[start + 1..];
    let end = section[3..].find("\n## ").map_or(section.len(), |e| e + 3);
    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut heading = None;
    for line in section[..end].lines() {
        if let Some(title) = line.strip_prefix("### ") {
            heading = Some(title.to_owned());
        } else if let (Some(heading), Some(cell)) = (&heading, line.strip_prefix("| `")) {
            let key = cell.split('`').next().expect("a key in backquotes");
            tables
                .entry(heading.clone())
                .or_default()
                .push(key.to_owned());
        }
    }
    tables
}

#[test]
fn the_readme_lists_the_keys_of_every_command() {
    let tables = documented();
    for heading in [
        EVERY,
        VALIDATE,
        RUN,
        PLAN,
        REFUSED,
        EXPORT,
        RECONCILE,
        ROW_JOB,
        ACS_SEARCH,
        ACS_PURCHASE,
    ] {
        let keys = tables
            .get(heading)
            .unwrap_or_else(|| panic!("no table under '### {heading}': {tables:?}"));
        let unique: BTreeSet<_> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len(), "{heading}: a key listed twice");
    }
    assert_eq!(tables[EVERY], ["command", "exitCode"]);
}

const EVERY: &str = "Every object";
const VALIDATE: &str = "`validate`";
const RUN: &str = "`import`, `delete` and `resume`: a run";
const PLAN: &str = "`import` and `delete` with `--dry-run`: the plan";
const REFUSED: &str = "`import` and `delete`: a sheet refused for its invalid rows";
const EXPORT: &str = "`export`";
const RECONCILE: &str = "`reconcile`";
const ROW_JOB: &str = "`accounts import`, `accounts delete` and `rfis update`";
const ACS_SEARCH: &str = "`acs search`";
const ACS_PURCHASE: &str = "`acs purchase`";

/// Whether `path` (`a`, `a.b`, `a[].b`) is in `value`: a nested key under
/// a `null` or an empty list counts as there.
fn present(value: &Value, path: &str) -> bool {
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    let (name, list) = match head.strip_suffix("[]") {
        Some(name) => (name, true),
        None => (head, false),
    };
    let Some(child) = value.get(name) else {
        return false;
    };
    match rest {
        None => true,
        Some(_) if child.is_null() => true,
        Some(rest) if list => child
            .as_array()
            .is_some_and(|items| items.iter().all(|item| present(item, rest))),
        Some(rest) => present(child, rest),
    }
}

/// The keys of `value` that `keys` does not list, looking inside an object
/// or a list only where `keys` lists what is in it.
fn undocumented(value: &Value, prefix: &str, keys: &BTreeSet<String>, out: &mut Vec<String>) {
    let Some(object) = value.as_object() else {
        return;
    };
    for (key, child) in object {
        let path = format!("{prefix}{key}");
        if !keys.contains(&path) {
            out.push(path);
            continue;
        }
        let (nested, listed) = (format!("{path}."), format!("{path}[]."));
        if keys.iter().any(|k| k.starts_with(&nested)) {
            undocumented(child, &nested, keys, out);
        }
        if keys.iter().any(|k| k.starts_with(&listed)) {
            for item in child.as_array().into_iter().flatten() {
                undocumented(item, &listed, keys, out);
            }
        }
    }
}

/// `run`'s stdout as one object with no repeated key, whose keys are
/// exactly those the README lists under `heading` (and under "Every
/// object"), `command` first and `exitCode` last and equal to the exit code.
fn checked(run: &Run, command: &str, heading: &str) -> Value {
    let value = parse_strict(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "{command}: stdout is not one JSON object with unique keys: {e}\n{}\nstderr: {}",
            run.stdout, run.stderr
        )
    });
    assert!(value.is_object(), "{value}");
    // (serde_json's map keeps keys sorted: the order is read from the text.)
    let text = run.stdout.trim();
    assert!(text.starts_with("{\n  \"command\": "), "{text}");
    assert!(
        text.ends_with(&format!(",\n  \"exitCode\": {}\n}}", run.code)),
        "{text}"
    );
    assert_eq!(value["command"], command, "{value}");
    assert_eq!(value["exitCode"], run.code, "{value}");
    let tables = documented();
    let keys: BTreeSet<String> = tables[EVERY]
        .iter()
        .chain(&tables[heading])
        .cloned()
        .collect();
    let missing: Vec<_> = keys.iter().filter(|k| !present(&value, k)).collect();
    assert!(
        missing.is_empty(),
        "{command}: the README lists {missing:?} under '{heading}', the output lacks them: {value:#}"
    );
    let mut extra = Vec::new();
    undocumented(&value, "", &keys, &mut extra);
    assert!(
        extra.is_empty(),
        "{command}: the output has {extra:?}, which the README does not list under '{heading}': {value:#}"
    );
    value
}

// ---------------------------------------------------------------- running

fn quick() -> acgbulk::emulator::EmulatorConfig {
    acgbulk::emulator::EmulatorConfig {
        rate_limit: None,
        ..acgbulk::emulator::EmulatorConfig::default()
    }
}

/// `acgbulk ARGS --endpoint URL --json` in `dir`.
fn acg(dir: &Path, url: &str, args: &[&str]) -> Run {
    let mut all = args.to_vec();
    all.extend(["--endpoint", url, "--json"]);
    common::run(dir, &all)
}

/// A number sheet: `per_account` numbers for each of contoso, fabrikam
/// and northwind (one a row, in that order), then `invalid` bad rows.
fn sheet(dir: &Path, name: &str, per_account: [u64; 3], invalid: u64) -> PathBuf {
    let mut text =
        String::from("telephoneNumber,accountName,serviceDetails_teamsDirectRouting_enabled\n");
    let mut n = 0;
    for (account, count) in ["contoso", "fabrikam", "northwind"].iter().zip(per_account) {
        for _ in 0..count {
            text.push_str(&format!("+44207946{n:04},{account},true\n"));
            n += 1;
        }
    }
    for _ in 0..invalid {
        text.push_str("+4412,contoso,true\n");
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn validate_prints_one_documented_object() {
    let dir = common::tempdir();
    let input = sheet(dir.path(), "v.csv", [3, 2, 0], 1);
    let run = common::run(
        dir.path(),
        &["validate", "v.csv", "--json", "--write-clean", "clean.csv"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let value = checked(&run, "validate", VALIDATE);
    assert_eq!(value["rows"], 6);
    assert_eq!(value["invalid"], 1);
    assert_eq!(value["clean"]["rows"], 5);
    assert!(input.exists());

    // --report - would put the report on stdout beside the object.
    let run = common::run(
        dir.path(),
        &["validate", "v.csv", "--json", "--report", "-"],
    );
    assert_eq!(run.code, 2);
    let value = parse_strict(&run.stdout).unwrap();
    assert!(
        value["error"].as_str().unwrap().contains("--report FILE"),
        "{value}"
    );
}

#[test]
fn dry_run_json_prints_the_plan_and_sends_nothing() {
    let server = Server::start(quick());
    let dir = common::tempdir();
    let input = sheet(dir.path(), "plan.csv", [120, 80, 50], 1);
    let input = input.to_str().unwrap();
    for (command, action) in [("import", "createOrUpdate"), ("delete", "delete")] {
        let run = acg(
            dir.path(),
            &server.url(),
            &[
                command,
                input,
                "--dry-run",
                "--skip-invalid",
                "--batch-size",
                "50",
                "--rate-limit",
                "60/min",
            ],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        let plan = checked(&run, command, PLAN);
        assert_eq!(plan["dryRun"], true);
        assert_eq!(plan["action"], action);
        assert_eq!(plan["rows"], 251);
        assert_eq!(plan["numbers"], 250);
        assert_eq!(plan["invalid"], 1);
        assert_eq!(plan["accounts"], 3);
        // 120 = 50 + 50 + 20; 80 = 50 + 30; 50.
        assert_eq!(plan["batches"], 6);
        assert_eq!(plan["requests"], 6);
        assert_eq!(plan["batchSize"], 50);
        assert_eq!(plan["rateLimit"], 60);
        assert_eq!(plan["seconds"], 6);
        assert_eq!(
            plan["byAccount"],
            serde_json::json!([
                {"account": "contoso", "numbers": 120, "batches": 3},
                {"account": "fabrikam", "numbers": 80, "batches": 2},
                {"account": "northwind", "numbers": 50, "batches": 1},
            ])
        );
        assert_eq!(plan["clean"], Value::Null);
    }
    // Without --skip-invalid the sheet is refused: validate's counts.
    let run = acg(dir.path(), &server.url(), &["import", input, "--dry-run"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let refused = checked(&run, "import", REFUSED);
    assert_eq!(refused["dryRun"], true);
    assert_eq!(refused["invalid"], 1);
    assert_eq!(refused["valid"], 250);
    assert_eq!(
        server.stats().counters.requests,
        0,
        "a dry run sends nothing"
    );
}

#[test]
fn import_delete_and_resume_print_their_run() {
    let server = Server::start(quick());
    let dir = common::tempdir();
    let input = sheet(dir.path(), "run.csv", [5, 4, 3], 0);
    let input = input.to_str().unwrap();
    let run = acg(
        dir.path(),
        &server.url(),
        // Kept, so the finished run can be resumed below.
        &["import", input, "--rate-limit", "off", "--keep-checkpoint"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary = checked(&run, "import", RUN);
    assert_eq!(summary["dryRun"], false);
    assert_eq!(
        (summary["ok"].as_u64(), summary["failed"].as_u64()),
        (Some(12), Some(0))
    );
    assert_eq!(summary["stopped"], false);
    assert_eq!(summary["stopReason"], Value::Null);

    // A finished run resumed to send its failures again (none).
    let checkpoint = summary["checkpoint"].as_str().unwrap().to_owned();
    let run = acg(
        dir.path(),
        &server.url(),
        &[
            "resume",
            &checkpoint,
            "--retry-failed",
            "--rate-limit",
            "off",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(checked(&run, "resume", RUN)["ok"], 12);

    let run = acg(
        dir.path(),
        &server.url(),
        &[
            "delete",
            input,
            "--rate-limit",
            "off",
            "--results",
            "deleted.csv",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary = checked(&run, "delete", RUN);
    assert_eq!(summary["action"], "delete");
    assert_eq!(summary["ok"], 12);

    // An error before any summary: command, error and exit code only.
    let run = acg(dir.path(), &server.url(), &["import", "missing.csv"]);
    assert_eq!(run.code, 2);
    let value = parse_strict(&run.stdout).unwrap();
    let keys: Vec<_> = value.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["command", "error", "exitCode"], "{value}");
    assert!(
        value["error"].as_str().unwrap().contains("missing.csv"),
        "{value}"
    );
}

#[test]
fn export_accounts_and_rfis_print_their_summaries() {
    let server = Server::start(quick());
    let dir = common::tempdir();
    let url = server.url();
    let run = acg(dir.path(), &url, &["export", "rfis", "-o", "rfis.csv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let export = checked(&run, "export", EXPORT);
    assert_eq!(export["kind"], "rfis");
    let tenant = read_csv(&dir.path().join("rfis.csv"))[1][0].clone();

    std::fs::write(
        dir.path().join("accounts.csv"),
        "name\njson-one\njson-two\n",
    )
    .unwrap();
    for command in ["import", "delete"] {
        let run = acg(dir.path(), &url, &["accounts", command, "accounts.csv"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let summary = checked(&run, &format!("accounts {command}"), ROW_JOB);
        assert_eq!(summary["kind"], format!("accounts-{command}"));
        assert_eq!(summary["ok"], 2);
        assert_eq!(summary["unwritable"], Value::Null);
    }

    // Declining needs a comment: refused before sending.
    std::fs::write(
        dir.path().join("rfis-update.csv"),
        format!("tenantId,customerRelationship_status,customerRelationship_comment\n{tenant},consentDeclined,\n"),
    )
    .unwrap();
    let run = acg(dir.path(), &url, &["rfis", "update", "rfis-update.csv"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let summary = checked(&run, "rfis update", ROW_JOB);
    assert_eq!(summary["invalid"], 1);
}

#[test]
fn acs_search_and_purchase_print_their_summaries() {
    let dir = common::tempdir();
    let run = common::run_with_env(
        dir.path(),
        &[
            "acs",
            "search",
            "--emulator",
            "--country",
            "US",
            "--type",
            "geographic",
            "--assignment",
            "person",
            "--quantity",
            "2",
            "-o",
            "found.csv",
            "--json",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let search = checked(&run, "acs search", ACS_SEARCH);
    assert_eq!(search["numbersFound"], 2);
    assert!(search["results"].as_str().unwrap().ends_with("found.csv"));

    // Another emulator does not know that search: nothing bought.
    let run = common::run_with_env(
        dir.path(),
        &[
            "acs",
            "purchase",
            "--emulator",
            "--search-id",
            "00000000-0000-0000-0000-000000000000",
            "--yes",
            "--json",
        ],
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let purchase = checked(&run, "acs purchase", ACS_PURCHASE);
    assert_eq!(purchase["bought"], 0);
    assert_eq!(purchase["purchases"][0]["status"], "notBought");
}

// The reconcile object is reshaped (counts under "counts", paths under
// "files") on helper G's branch; until that is merged its output repeats
// `toUpsert` and `toDelete`, which this test refuses.
#[test]
fn reconcile_prints_one_documented_object() {
    let server = Server::start(quick());
    let dir = common::tempdir();
    let input = sheet(dir.path(), "desired.csv", [2, 1, 0], 0);
    let run = acg(
        dir.path(),
        &server.url(),
        &[
            "reconcile",
            input.to_str().unwrap(),
            "--live",
            "-o",
            "drift",
        ],
    );
    assert!(run.code <= 1, "{}", run.stderr);
    let value = checked(&run, "reconcile", RECONCILE);
    assert_eq!(value["counts"]["missing"], 3, "{value}");
    assert!(value["files"]["diff"]
        .as_str()
        .unwrap()
        .ends_with("diff.csv"));
}

// ---------------------------------------------------------------- progress

#[test]
fn progress_is_a_plain_line_when_stderr_is_not_a_terminal() {
    let server = Server::start(quick());
    let dir = common::tempdir();
    let input = sheet(dir.path(), "slow.csv", [6, 0, 0], 0);
    // One number a request at 60 a minute: about five seconds.
    let run = acg(
        dir.path(),
        &server.url(),
        &[
            "import",
            input.to_str().unwrap(),
            "--batch-size",
            "1",
            "--rate-limit",
            "60/min",
            "--progress-interval",
            "1s",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(checked(&run, "import", RUN)["ok"], 6);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("import: ") && l.contains(" of 6 numbers ("))
        .collect();
    assert!(lines.len() >= 2, "a line a second: {}", run.stderr);
    for line in &lines {
        assert!(
            line.contains(" ok, 0 failed, 0 invalid"),
            "counts beside the count: {line}"
        );
        assert!(
            !line.contains('\u{1b}'),
            "no colour or cursor codes: {line:?}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" numbers/min, ETA ") || l.contains(" numbers/s, ETA ")),
        "a pace and an ETA: {lines:?}"
    );
    let fraction = regex::Regex::new(r"\d\.\d").unwrap();
    assert!(
        !lines.iter().any(|l| fraction.is_match(l)),
        "whole numbers only: {lines:?}"
    );
}
