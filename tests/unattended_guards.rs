//! Destructive operations are guarded (issue 12): reconcile leaves alone
//! what it cannot judge, and `--max-delete` refuses a plan that deletes too
//! much, for reconcile, delete and accounts delete `--with-numbers`. The
//! real binary against an emulator the test starts on a free port; what
//! was deleted is read from the emulator itself.

mod common;

use acgbulk::emulator::{EmulatorConfig, SeedSource};
use common::{read_csv, Run, Server};
use std::path::Path;
use std::time::Duration;

fn quick() -> EmulatorConfig {
    common::unlimited_emulator(Duration::from_millis(100), SeedSource::Demo)
}

fn acg(dir: &Path, url: &str, args: &[&str]) -> Run {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--endpoint", url, "--rate-limit", "off"]);
    common::run(dir, &all)
}

/// A Direct Routing sheet of (number, account, custom SIP header) rows.
fn sheet(dir: &Path, name: &str, rows: &[(String, &str, &str)]) {
    let mut csv = String::from(
        "telephoneNumber,accountName,serviceDetails_teamsDirectRouting_enabled,configuration_customSipHeader\n",
    );
    for (number, account, header) in rows {
        csv.push_str(&format!("{number},{account},true,{header}\n"));
    }
    std::fs::write(dir.join(name), csv).unwrap();
}

/// `count` numbers from `+1425200{first}` in `account`.
fn numbers(first: u64, count: u64, account: &str) -> Vec<(String, &str, &'static str)> {
    (first..first + count)
        .map(|i| (format!("+1425{:07}", 2_000_000 + i), account, "trunk-1"))
        .collect()
}

fn digits(i: u64) -> u64 {
    14_252_000_000 + i
}

/// Imports `rows` through the binary: what is provisioned before a test.
fn provision(dir: &Path, url: &str, rows: &[(String, &str, &str)]) {
    sheet(dir, "provision.csv", rows);
    let run = acg(dir, url, &["import", "provision.csv", "--restart"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// Parses `--json` output, refusing an object that has a key twice
/// (serde_json would keep the last silently, as jq does).
fn parse_unique(text: &str) -> serde_json::Value {
    common::parse_strict(text)
        .unwrap_or_else(|e| panic!("not one object with unique keys ({e}): {text}"))
}

#[test]
fn an_invalid_desired_row_keeps_its_live_number() {
    let server = Server::start(quick());
    let dir = common::tempdir();
    let url = server.url();
    // Ten numbers in contoso, two more that the desired sheet leaves out:
    // one in contoso, one in fabrikam.
    let mut live = numbers(0, 10, "contoso");
    live.extend(numbers(100, 1, "contoso"));
    live.extend(numbers(200, 1, "fabrikam"));
    provision(dir.path(), &url, &live);

    // Row 5 (+14252000003) has a SIP header the rules refuse; row 12 has
    // no readable number, in fabrikam.
    let mut desired = numbers(0, 10, "contoso");
    desired[3].2 = "bad header!";
    desired.push(("not a number".into(), "fabrikam", "trunk-1"));
    sheet(dir.path(), "desired.csv", &desired);
    let run = acg(
        dir.path(),
        &url,
        &[
            "reconcile",
            "desired.csv",
            "--live",
            "--skip-invalid",
            "--apply",
            "--allow-delete",
            "-o",
            "drift",
            "--json",
        ],
    );
    assert_eq!(run.code, 1, "invalid rows are exit 1: {}", run.stderr);
    let summary = parse_unique(&run.stdout);
    let counts = &summary["counts"];
    assert_eq!(counts["invalid"], 2, "{summary}");
    assert_eq!(counts["extra"], 1, "{summary}");
    assert_eq!(counts["same"], 9, "{summary}");
    assert_eq!(counts["toDelete"], 1, "{summary}");
    assert_eq!(summary["applied"], true, "{summary}");
    assert_eq!(summary["files"]["diff"], "drift/diff.csv", "{summary}");
    assert!(run.stderr.contains("2 invalid"), "{}", run.stderr);

    let held = server.numbers();
    assert_eq!(
        held.get(&digits(3)).map(String::as_str),
        Some("contoso"),
        "the invalid row's number is kept"
    );
    assert_eq!(
        held.get(&digits(200)).map(String::as_str),
        Some("fabrikam"),
        "fabrikam's unreadable row could be this number: kept"
    );
    assert!(
        !held.contains_key(&digits(100)),
        "contoso's extra number is released"
    );
    assert_eq!(held.len(), 11);

    let diff = read_csv(&dir.path().join("drift/diff.csv"));
    let line = |number: u64| {
        diff.iter()
            .find(|l| l[0] == format!("+{}", digits(number)))
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        line(3),
        [
            "+14252000003",
            "invalid",
            "",
            "row 5: SIP_HEADER",
            "contoso"
        ]
    );
    assert_eq!(line(200)[1], "invalid");
    assert!(
        line(200)[3].starts_with("row 12: ") && line(200)[3].ends_with("no readable number"),
        "{diff:?}"
    );
    let to_delete = read_csv(&dir.path().join("drift/to-delete.csv"));
    assert_eq!(to_delete.len(), 2, "{to_delete:?}");
    assert_eq!(to_delete[1][0], "+14252000100");

    // A row with neither a readable number nor an account could be any
    // number: nothing is deleted at all.
    provision(dir.path(), &url, &numbers(100, 1, "contoso"));
    let mut desired = numbers(0, 10, "contoso");
    desired.push(("not a number".into(), "", "trunk-1"));
    sheet(dir.path(), "desired2.csv", &desired);
    let run = acg(
        dir.path(),
        &url,
        &[
            "reconcile",
            "desired2.csv",
            "--live",
            "--skip-invalid",
            "--apply",
            "--allow-delete",
            "-o",
            "drift2",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(server.numbers().len(), 12, "nothing deleted");
    assert_eq!(
        read_csv(&dir.path().join("drift2/to-delete.csv")).len(),
        1,
        "headings only"
    );
}

/// The numbers of contoso before and after a refused run.
fn contoso(server: &Server) -> Vec<u64> {
    server
        .numbers()
        .into_iter()
        .filter(|(_, account)| account == "contoso")
        .map(|(number, _)| number)
        .collect()
}

#[test]
fn reconcile_refuses_to_delete_more_than_max_delete() {
    let server = Server::start(quick());
    let dir = common::tempdir();
    let url = server.url();
    provision(dir.path(), &url, &numbers(0, 150, "contoso"));
    let before = contoso(&server);
    // Twenty of the 150 are desired, and one new number: 130 to delete.
    let mut desired = numbers(0, 20, "contoso");
    desired.extend(numbers(500, 1, "contoso"));
    sheet(dir.path(), "desired.csv", &desired);
    let reconcile = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "reconcile",
            "desired.csv",
            "--live",
            "--apply",
            "--allow-delete",
            "-o",
            out,
            "--json",
        ];
        args.extend(extra);
        acg(dir.path(), &url, &args)
    };

    for (out, extra, limit, how) in [
        ("default", &[][..], 100, "the default --max-delete"),
        (
            "count",
            &["--max-delete", "129"][..],
            129,
            "--max-delete 129",
        ),
        (
            "percent",
            &["--max-delete", "50%"][..],
            75,
            "--max-delete 50%",
        ),
    ] {
        let run = reconcile(out, extra);
        assert_eq!(run.code, 2, "{out}: {}", run.stderr);
        let refusal = run
            .stderr
            .lines()
            .find(|l| l.starts_with("refused:"))
            .unwrap_or_else(|| panic!("{out}: no refusal: {}", run.stderr));
        assert!(
            refusal.contains("deletes 130 numbers")
                && refusal.contains(&format!("limit of {limit} ("))
                && refusal.contains(how)
                && refusal.contains("nothing was sent"),
            "{out}: {refusal}"
        );
        let summary = parse_unique(&run.stdout);
        assert_eq!(summary["applied"], false, "{summary}");
        assert_eq!(summary["maxDelete"]["refused"], true, "{summary}");
        assert_eq!(summary["maxDelete"]["limit"], limit, "{summary}");
        assert_eq!(summary["maxDelete"]["deletes"], 130, "{summary}");
        // Nothing sent: no delete, and not the upsert either.
        assert_eq!(contoso(&server), before, "{out}");
        let plan = read_csv(&dir.path().join(out).join("to-delete.csv"));
        assert_eq!(plan.len(), 1 + 130, "{out}: the plan is written");
    }

    // Within the limit, the drift is put right.
    let run = reconcile("within", &["--max-delete", "130"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let after = contoso(&server);
    assert_eq!(after.len(), 21);
    assert!(after.contains(&digits(500)));
}

#[test]
fn delete_refuses_more_than_max_delete() {
    let server = Server::start(quick());
    let dir = common::tempdir();
    let url = server.url();
    provision(dir.path(), &url, &numbers(0, 50, "contoso"));
    sheet(dir.path(), "release.csv", &numbers(0, 30, "contoso"));

    let run = acg(
        dir.path(),
        &url,
        &["delete", "release.csv", "--dry-run", "--max-delete", "20"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("over --max-delete 20"),
        "{}",
        run.stderr
    );

    for (limit, how, words) in [
        ("20", "--max-delete 20", "limit of 20 ("),
        (
            "50%",
            "--max-delete 50% of 50 provisioned numbers",
            "limit of 25 (",
        ),
    ] {
        let run = acg(
            dir.path(),
            &url,
            &["delete", "release.csv", "--max-delete", limit],
        );
        assert_eq!(run.code, 2, "{limit}: {}", run.stderr);
        assert!(
            run.stderr.contains("30 numbers valid of 30"),
            "the plan is shown: {}",
            run.stderr
        );
        let refusal = run.stderr.lines().find(|l| l.starts_with("refused:"));
        let refusal = refusal.unwrap_or_else(|| panic!("{}", run.stderr));
        assert!(
            refusal.contains("deletes 30 numbers")
                && refusal.contains(how)
                && refusal.contains(words),
            "{refusal}"
        );
        assert_eq!(server.numbers().len(), 50, "{limit}: nothing deleted");
    }

    let run = acg(
        dir.path(),
        &url,
        &["delete", "release.csv", "--max-delete", "30"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(server.numbers().len(), 20);
}

#[test]
fn accounts_delete_with_numbers_counts_them_first() {
    let server = Server::start(quick());
    let dir = common::tempdir();
    let url = server.url();
    let mut live = numbers(0, 30, "fabrikam");
    live.extend(numbers(100, 10, "northwind"));
    live.extend(numbers(200, 5, "contoso"));
    provision(dir.path(), &url, &live);
    std::fs::write(
        dir.path().join("accounts.csv"),
        "name\nfabrikam\nnorthwind\n",
    )
    .unwrap();
    let has = |name: &str| {
        server
            .emulator()
            .with_store(|s| s.accounts.contains_key(name))
    };

    let run = acg(
        dir.path(),
        &url,
        &[
            "accounts",
            "delete",
            "accounts.csv",
            "--with-numbers",
            "--max-delete",
            "39",
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("2 accounts holding 40 numbers"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("fabrikam") && run.stderr.contains("30 numbers"));
    assert!(
        run.stderr.lines().any(|l| l.starts_with("refused:")
            && l.contains("deletes 40 numbers")
            && l.contains("--max-delete 39")),
        "{}",
        run.stderr
    );
    assert!(has("fabrikam") && has("northwind"), "no account deleted");
    assert_eq!(server.numbers().len(), 45);

    let run = acg(
        dir.path(),
        &url,
        &[
            "accounts",
            "delete",
            "accounts.csv",
            "--with-numbers",
            "--max-delete",
            "40",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!has("fabrikam") && !has("northwind"));
    assert_eq!(server.numbers().len(), 5);

    // The limit is on the numbers released: without --with-numbers it
    // has no meaning.
    let run = acg(
        dir.path(),
        &url,
        &["accounts", "delete", "accounts.csv", "--max-delete", "40"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--with-numbers"), "{}", run.stderr);
}

#[test]
fn bad_max_delete_values_are_usage_errors() {
    let dir = common::tempdir();
    sheet(dir.path(), "s.csv", &numbers(0, 1, "contoso"));
    for value in ["12x", "-3", "101%", "-1%", "five"] {
        for command in [
            &["delete", "s.csv"][..],
            &["reconcile", "s.csv", "--live", "--apply", "-o", "d"][..],
        ] {
            let mut args = command.to_vec();
            args.extend(["--max-delete", value, "--endpoint", "http://127.0.0.1:9"]);
            let run = common::run(dir.path(), &args);
            assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
            assert!(
                run.stderr.contains(&format!("'{value}' is not a limit"))
                    && run.stderr.contains("--max-delete"),
                "{args:?}: {}",
                run.stderr
            );
        }
    }
    // On reconcile it limits --apply, and means nothing without it.
    let run = common::run(
        dir.path(),
        &[
            "reconcile",
            "s.csv",
            "--live",
            "-o",
            "d",
            "--max-delete",
            "5",
            "--endpoint",
            "http://127.0.0.1:9",
        ],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--apply"), "{}", run.stderr);
}
