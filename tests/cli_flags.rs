//! The flags as a contract: every command's help works, renamed flags keep
//! their old spellings as aliases, `delete` refuses the flags it does not
//! use, and `reconcile --apply` runs with the user's run settings. Real
//! binary, emulator on loopback.

mod common;

use acgbulk::emulator::{EmulatorConfig, Faults, SeedSource};
use common::{read_csv, run, tempdir, Server};
use std::path::Path;
use std::time::{Duration, Instant};

/// Every command with its own flags, as typed after `acgbulk`.
const COMMANDS: &[&[&str]] = &[
    &[],
    &["validate"],
    &["import"],
    &["delete"],
    &["resume"],
    &["export"],
    &["reconcile"],
    &["accounts"],
    &["accounts", "import"],
    &["accounts", "delete"],
    &["rfis"],
    &["rfis", "update"],
    &["acs"],
    &["acs", "search"],
    &["acs", "purchase"],
    &["emulator"],
    &["sample"],
    &["completions"],
    &["man"],
    &["config"],
    &["config", "show"],
];

/// The subcommand names a `--help` lists under "Commands:".
fn listed_commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|name| name != "help")
        .collect()
}

#[test]
fn every_commands_help_exits_0_and_every_command_is_covered() {
    let dir = tempdir();
    for command in COMMANDS {
        let mut args = command.to_vec();
        args.push("--help");
        let r = run(dir.path(), &args);
        assert_eq!(r.code, 0, "acgbulk {}: {}", args.join(" "), r.stderr);
        assert!(r.stdout.contains("Usage: acgbulk"), "{}", r.stdout);
        // A subcommand the list above misses would go untested.
        for sub in listed_commands(&r.stdout) {
            let mut path = command.to_vec();
            path.push(&sub);
            assert!(
                COMMANDS.contains(&path.as_slice()),
                "acgbulk {} is not in COMMANDS",
                path.join(" ")
            );
        }
    }
}

#[test]
fn shared_flags_say_the_same_on_every_command() {
    let dir = tempdir();
    let help = |args: &[&str]| run(dir.path(), args).stdout;
    let import = help(&["import", "--help"]);
    for command in [
        &["accounts", "import", "--help"][..],
        &["rfis", "update", "--help"],
    ] {
        let other = help(command);
        for flag in ["--concurrency <N>", "--json", "--rate-limit <N/min>"] {
            let text = |h: &str| {
                let at = h
                    .find(flag)
                    .unwrap_or_else(|| panic!("{flag} in {command:?}"));
                let own = h[at..].lines().take_while(|l| !l.trim().is_empty());
                own.collect::<Vec<_>>().join("\n")
            };
            assert_eq!(text(&import), text(&other), "{flag}");
        }
    }
    // One default for every job's concurrency.
    assert!(import.contains("[default: 8]"));
    assert!(help(&["acs", "search", "--help"]).contains("[default: 8]"));
}

#[test]
fn delete_refuses_the_flags_it_does_not_use() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("d.csv"),
        "telephoneNumber,accountName\n+44 20 7946 0116,contoso\n",
    )
    .unwrap();
    for flag in [
        &["--wait-sync"][..],
        &["--sync-timeout", "1m"],
        &["--sync-poll", "1s"],
        &["--strict"],
    ] {
        let mut args = vec!["delete", "d.csv", "--dry-run"];
        args.extend(flag);
        let r = run(dir.path(), &args);
        assert_eq!(r.code, 2, "{flag:?}: {}", r.stderr);
        assert!(
            r.stderr
                .contains(&format!("unexpected argument '{}'", flag[0])),
            "{}",
            r.stderr
        );
    }
    // --normalize is not ignored by delete: it decides which number the
    // row means, so it stays.
    let plain = run(dir.path(), &["delete", "d.csv", "--dry-run"]);
    assert_eq!(plain.code, 1, "{}", plain.stderr);
    let normalized = run(dir.path(), &["delete", "d.csv", "--dry-run", "--normalize"]);
    assert_eq!(normalized.code, 0, "{}", normalized.stderr);
    // validate and import keep the old flag they accept for compatibility.
    std::fs::write(
        dir.path().join("i.csv"),
        "telephoneNumber,accountName,serviceDetails_teamsDirectRouting_enabled\n+442079460116,contoso,TRUE\n",
    )
    .unwrap();
    for args in [
        &["validate", "i.csv", "--strict"][..],
        &["import", "i.csv", "--strict", "--dry-run"],
    ] {
        let r = run(dir.path(), args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    }
}

#[test]
fn old_account_spelling_fills_like_default_account() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("a.csv"),
        "telephoneNumber,serviceDetails_teamsDirectRouting_enabled\n+442079460100,true\n",
    )
    .unwrap();
    let report = |flag: &str| {
        let r = run(
            dir.path(),
            &["validate", "a.csv", flag, "contoso", "--report", "-"],
        );
        assert_eq!(r.code, 0, "{flag}: {}", r.stderr);
        r.stdout
    };
    assert_eq!(report("--account"), report("--default-account"));
    let r = run(dir.path(), &["validate", "a.csv", "--report", "-"]);
    assert_eq!(r.code, 1, "without an account the row is invalid");
}

#[test]
fn old_certificate_spelling_names_the_same_file() {
    let dir = tempdir();
    std::fs::copy(
        common::samples().join("operator-connect.csv"),
        dir.path().join("in.csv"),
    )
    .unwrap();
    for flag in ["--certificate-path", "--client-certificate"] {
        // Port 9 (discard) is never reached: reading the certificate fails first.
        let r = run(
            dir.path(),
            &[
                "import",
                "in.csv",
                "--endpoint",
                "http://127.0.0.1:9",
                "--auth",
                "certificate",
                "--tenant-id",
                "t",
                "--client-id",
                "c",
                flag,
                "missing.pem",
                "--restart",
            ],
        );
        assert_eq!(r.code, 2, "{flag}: {}", r.stderr);
        assert!(r.stderr.contains("missing.pem"), "{flag}: {}", r.stderr);
    }
}

fn quick(latency: Duration) -> EmulatorConfig {
    EmulatorConfig {
        rate_limit: None,
        sync_delay: Duration::from_millis(100),
        seed: SeedSource::Demo,
        faults: Faults {
            latency,
            ..Faults::default()
        },
        ..EmulatorConfig::default()
    }
}

/// `count` Direct Routing numbers, alternately in contoso and fabrikam.
fn sheet(dir: &Path, name: &str, count: u64) {
    let mut csv =
        String::from("telephoneNumber,accountName,serviceDetails_teamsDirectRouting_enabled\n");
    for i in 0..count {
        let account = ["contoso", "fabrikam"][(i % 2) as usize];
        csv.push_str(&format!("+1425{:07},{account},TRUE\n", 3_000_000 + i));
    }
    std::fs::write(dir.join(name), csv).unwrap();
}

#[test]
fn old_filter_and_output_spellings_work_against_the_emulator() {
    let server = Server::start(quick(Duration::ZERO));
    let url = server.url();
    let dir = tempdir();
    let at = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--endpoint", &url, "--rate-limit", "off"]);
        run(dir.path(), &all)
    };
    sheet(dir.path(), "numbers.csv", 6);
    let r = at(&["import", "numbers.csv"]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // export: --account is now --only-account.
    for flag in ["--only-account", "--account"] {
        let out = format!("export{flag}.csv");
        let r = at(&["export", "numbers", flag, "contoso", "-o", &out]);
        assert_eq!(r.code, 0, "{flag}: {}", r.stderr);
        let rows = read_csv(&dir.path().join(&out));
        assert_eq!(rows.len(), 1 + 3, "{flag}: {rows:?}");
        assert!(rows[1..]
            .iter()
            .all(|row| row.contains(&"contoso".to_owned())));
    }

    // reconcile: --live-account is now --only-account, --out is -o/--output.
    sheet(dir.path(), "desired.csv", 6);
    let mut summaries = Vec::new();
    for (filter, output) in [
        ("--only-account", "-o"),
        ("--live-account", "--out"),
        ("--only-account", "--output"),
    ] {
        let out = format!("drift{filter}{output}");
        let r = at(&[
            "reconcile",
            "desired.csv",
            "--live",
            filter,
            "contoso",
            output,
            &out,
            "--json",
        ]);
        // Only contoso is listed: fabrikam's three numbers count as missing.
        assert_eq!(r.code, 1, "{filter} {output}: {}", r.stderr);
        assert!(dir.path().join(&out).join("diff.csv").exists());
        let mut summary: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(summary["counts"]["missing"], 3, "{summary}");
        summary.as_object_mut().unwrap().remove("files");
        summaries.push(summary);
    }
    assert!(summaries.windows(2).all(|w| w[0] == w[1]), "{summaries:?}");
}

/// Wall-clock seconds of `reconcile --live --apply` putting `count` missing
/// numbers right, one number a batch, with `concurrency` batches in flight.
fn apply_seconds(latency: Duration, count: u64, concurrency: &str) -> f64 {
    let server = Server::start(quick(latency));
    let dir = tempdir();
    sheet(dir.path(), "desired.csv", count);
    let started = Instant::now();
    let r = run(
        dir.path(),
        &[
            "reconcile",
            "desired.csv",
            "--live",
            "-o",
            "drift",
            "--apply",
            "--batch-size",
            "1",
            "--concurrency",
            concurrency,
            "--endpoint",
            &server.url(),
            "--rate-limit",
            "off",
        ],
    );
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let results = read_csv(&dir.path().join("drift/to-upsert.results.csv"));
    assert_eq!(results.len() as u64, 1 + count, "{results:?}");
    assert_eq!(server.numbers().len() as u64, count);
    seconds
}

#[test]
fn reconcile_apply_honours_concurrency_and_batch_size() {
    // Every request takes 0.4 s: six one-number batches take at least 2.4 s
    // one at a time, and about 0.4 s all at once (plus the listing's 0.4 s
    // and the process's own time in both).
    let latency = Duration::from_millis(400);
    let serial = apply_seconds(latency, 6, "1");
    let parallel = apply_seconds(latency, 6, "6");
    assert!(serial >= 2.4, "one batch at a time took {serial:.2} s");
    assert!(
        parallel < serial - 1.2,
        "six at once took {parallel:.2} s, one at a time {serial:.2} s"
    );
}

/// The command a README usage line is about (`acgbulk accounts import ...`
/// -> `["accounts", "import"]`), if it names one.
fn command_of(line: &str) -> Option<Vec<String>> {
    let mut words = line.split_whitespace().skip(1);
    let first = words.next()?;
    let command: &[&str] = COMMANDS.iter().find(|c| c.len() == 1 && c[0] == first)?;
    let mut path: Vec<String> = command.iter().map(|w| w.to_string()).collect();
    if let Some(second) = words.next() {
        let deeper = [first, second];
        if COMMANDS.contains(&&deeper[..]) {
            path.push(second.to_owned());
        }
    }
    Some(path)
}

#[test]
fn every_flag_the_readme_shows_is_in_the_commands_help() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let flag = regex::Regex::new(r"(?:^|[\s\[(|])(--[a-z][a-z0-9-]*|-o)\b").unwrap();
    let dir = tempdir();
    let mut helps = std::collections::HashMap::new();
    let mut checked = 0;
    for block in readme.split("```sh\n").skip(1) {
        let block = block.split("```").next().unwrap();
        let mut command: Option<Vec<String>> = None;
        for line in block.lines() {
            // Shell comments are prose.
            let code = line.split(" #").next().unwrap();
            if code.starts_with("acgbulk ") {
                command = command_of(code);
            } else if !code.starts_with(' ') {
                command = None;
            }
            let Some(command) = &command else { continue };
            let help = helps.entry(command.clone()).or_insert_with(|| {
                let mut args: Vec<&str> = command.iter().map(String::as_str).collect();
                args.push("--help");
                run(dir.path(), &args).stdout
            });
            for found in flag.captures_iter(code) {
                let name = &found[1];
                checked += 1;
                assert!(
                    [" ", ",", "\n"]
                        .iter()
                        .any(|end| help.contains(&format!("{name}{end}"))),
                    "README shows `acgbulk {} ... {name}`, which its --help does not have: {line}",
                    command.join(" ")
                );
            }
        }
    }
    assert!(checked > 100, "only {checked} flags found in the README");
}
