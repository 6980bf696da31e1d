//! Resuming by the same command: the checkpoint keeps the run's settings
//! (a resume after `kill -9` keeps the rate limit, measured), `resume`
//! takes the checkpoint, the results file or the sheet, every job kind
//! continues when run again and refuses a changed input, and a finished
//! run's checkpoint is removed unless `--keep-checkpoint`. The real binary
//! against an emulator on a free loopback port; real `SIGKILL`s.

mod common;

use acgbulk::emulator::{EmulatorConfig, SeedSource};
use common::{read_csv, Run, Server};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn quick() -> EmulatorConfig {
    common::unlimited_emulator(Duration::from_millis(200), SeedSource::Demo)
}

fn sheet(dir: &Path, name: &str, rows: u64, accounts: usize) -> PathBuf {
    common::clean_sheet(dir, name, rows, accounts, 7)
}

fn spawn(dir: &Path, args: &[&str]) -> Child {
    Command::new(common::bin())
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("ACG_ENDPOINT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary runs")
}

/// Lines of `checkpoint` that record an answer (`done`) or a page.
fn answers(checkpoint: &Path) -> usize {
    std::fs::read_to_string(checkpoint)
        .map(|text| {
            text.lines()
                .filter(|l| l.contains(r#""t":"done""#) || l.contains(r#""t":"page""#))
                .count()
        })
        .unwrap_or(0)
}

/// Runs `args` and kills it with SIGKILL once its checkpoint holds `at`
/// answers; returns how many it then holds.
fn kill_after(dir: &Path, args: &[&str], checkpoint: &Path, at: usize) -> usize {
    let mut child = spawn(dir, args);
    let deadline = Instant::now() + Duration::from_secs(30);
    while answers(checkpoint) < at {
        assert!(
            Instant::now() < deadline,
            "the run never got to {at} answers"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: SIGKILL to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    answers(checkpoint)
}

fn outcomes(results: &Path) -> Vec<String> {
    let rows = read_csv(results);
    let at = rows[0].iter().position(|h| h == "outcome").unwrap();
    rows[1..].iter().map(|r| r[at].clone()).collect()
}

fn all_ok(results: &Path, count: usize) {
    let outcomes = outcomes(results);
    assert_eq!(outcomes.len(), count);
    assert!(outcomes.iter().all(|o| o == "ok"), "{outcomes:?}");
}

#[test]
fn a_resume_after_kill_9_keeps_the_rate_limit() {
    let server = Server::start(quick());
    let url = server.url();
    let dir = common::tempdir();
    // 60 batches of 10: 6 s at 600/min, 36 s at the default 100/min.
    let input = sheet(dir.path(), "fast.csv", 600, 3);
    let checkpoint = dir.path().join("fast.results.csv.checkpoint");
    let args = [
        "import",
        input.to_str().unwrap(),
        "--endpoint",
        &url,
        "--rate-limit",
        "600/min",
        "--batch-size",
        "10",
    ];
    let done = kill_after(dir.path(), &args, &checkpoint, 15);
    let left = 60 - done as u64;
    let started = Instant::now();
    let run = common::run(dir.path(), &["resume", checkpoint.to_str().unwrap()]);
    let took = started.elapsed();
    eprintln!("resume of {left} batches at the kept 600/min took {took:?}");
    assert_eq!(run.code, 0, "{}", run.stderr);
    // At 600/min the batches left take left/10 s; at 100/min, left*0.6 s.
    let slow = Duration::from_secs_f64(left as f64 * 0.6);
    assert!(
        took < slow / 2,
        "{left} batches took {took:?}: the kept 600/min would take {:.1} s, 100/min {slow:?}",
        left as f64 / 10.0
    );
    all_ok(&dir.path().join("fast.results.csv"), 600);
    assert_eq!(server.numbers().len(), 600);
    assert!(
        run.stderr.contains("continuing the unfinished run in"),
        "{}",
        run.stderr
    );
    assert!(
        !checkpoint.exists(),
        "a finished run's checkpoint is removed"
    );
}

#[test]
fn resume_takes_the_results_file_or_the_sheet_and_says_what_a_file_is_not() {
    let server = Server::start(quick());
    let url = server.url();
    let dir = common::tempdir();
    let input = sheet(dir.path(), "numbers.csv", 200, 2);
    let results = dir.path().join("numbers.results.csv");
    let checkpoint = dir.path().join("numbers.results.csv.checkpoint");
    let args = [
        "import",
        input.to_str().unwrap(),
        "--endpoint",
        &url,
        "--rate-limit",
        "600/min",
        "--batch-size",
        "10",
    ];
    for given in [&results, &input] {
        kill_after(dir.path(), &args, &checkpoint, 3);
        let run = common::run(dir.path(), &["resume", given.to_str().unwrap()]);
        assert_eq!(run.code, 0, "resume {}: {}", given.display(), run.stderr);
        all_ok(&results, 200);
        let _ = std::fs::remove_file(&results);
    }
    assert_eq!(server.numbers().len(), 200);

    // A finished run: its checkpoint is gone, and resume says so plainly.
    let run = common::run(dir.path(), &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = common::run(dir.path(), &["resume", results.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("finished"), "{}", run.stderr);

    // Neither a checkpoint nor a file with one: said plainly, first.
    let other = dir.path().join("notes.csv");
    std::fs::write(&other, "a,b\n1,2\nno newline at the end").unwrap();
    let run = common::run(dir.path(), &["resume", other.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let first = run.stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error: ") && first.contains("is not an acgbulk checkpoint"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("WARN") && !run.stderr.contains("torn"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_same_import_or_delete_again_continues_and_a_changed_input_is_refused() {
    let server = Server::start(quick());
    let url = server.url();
    let dir = common::tempdir();
    let input = sheet(dir.path(), "again.csv", 300, 3);
    let results = dir.path().join("again.results.csv");
    let checkpoint = dir.path().join("again.results.csv.checkpoint");
    let command = |action: &'static str| {
        vec![
            action.to_owned(),
            input.to_str().unwrap().to_owned(),
            "--endpoint".to_owned(),
            url.clone(),
            "--rate-limit".to_owned(),
            "600/min".to_owned(),
            "--batch-size".to_owned(),
            "10".to_owned(),
        ]
    };
    for action in ["import", "delete"] {
        let args = command(action);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        kill_after(dir.path(), &args, &checkpoint, 5);
        let run = common::run(dir.path(), &args);
        assert_eq!(run.code, 0, "{action}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!(
                "continuing the unfinished run in {}",
                checkpoint.display()
            )),
            "{action}: {}",
            run.stderr
        );
        all_ok(&results, 300);
        let expected = if action == "import" { 300 } else { 0 };
        assert_eq!(server.numbers().len(), expected, "{action}");
    }

    // A changed sheet is refused, naming what differs; --restart begins anew.
    let args = command("import");
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    kill_after(dir.path(), &args, &checkpoint, 3);
    let text = std::fs::read_to_string(&input).unwrap();
    let shorter: Vec<&str> = text.lines().collect();
    std::fs::write(&input, shorter[..shorter.len() - 1].join("\n") + "\n").unwrap();
    let run = common::run(dir.path(), &args);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("has changed since the run began") && run.stderr.contains("--restart"),
        "{}",
        run.stderr
    );
    // Other options: refused too, naming the flag.
    std::fs::write(&input, &text).unwrap();
    let run = common::run(dir.path(), &[&args[..], &["--batch-size", "20"]].concat());
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--batch-size"), "{}", run.stderr);
    // Another gateway (a lab run, then the same command for production):
    // refused before connecting, so what the first gateway answered is
    // never taken as done on the second.
    let elsewhere: Vec<&str> = args
        .iter()
        .map(|a| if *a == url { "http://127.0.0.1:9" } else { a })
        .collect();
    let run = common::run(dir.path(), &elsewhere);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("endpoint") && run.stderr.contains("--restart"),
        "{}",
        run.stderr
    );
    args.push("--restart");
    let run = common::run(dir.path(), &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("continuing"), "{}", run.stderr);
}

#[test]
fn the_same_export_accounts_or_rfis_command_again_continues() {
    let server = Server::start(quick());
    let url = server.url();
    let dir = common::tempdir();
    let input = sheet(dir.path(), "seed.csv", 300, 2);
    let run = common::run(
        dir.path(),
        &[
            "import",
            input.to_str().unwrap(),
            "--endpoint",
            &url,
            "--rate-limit",
            "off",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);

    // Export: 30 pages of 10 at 300/min.
    let out = dir.path().join("numbers.csv");
    let checkpoint = dir.path().join("numbers.csv.checkpoint");
    let export = |page: &'static str| {
        vec![
            "export",
            "numbers",
            "-o",
            out.to_str().unwrap(),
            "--endpoint",
            &url,
            "--rate-limit",
            "300/min",
            "--page-size",
            page,
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<String>>()
    };
    let args = export("10");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    kill_after(dir.path(), &args, &checkpoint, 4);
    let changed = export("20");
    let changed: Vec<&str> = changed.iter().map(String::as_str).collect();
    let run = common::run(dir.path(), &changed);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("page size"), "{}", run.stderr);
    let run = common::run(dir.path(), &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("continuing the unfinished export in"),
        "{}",
        run.stderr
    );
    assert_eq!(
        read_csv(&out).len(),
        server.numbers().len() + 1,
        "every number once"
    );
    assert!(!checkpoint.exists());

    // Accounts: 20 creates at 300/min.
    let mut text = String::from("name,correlationId\n");
    for k in 0..20 {
        text.push_str(&format!("bulk{k:02},crm-{k}\n"));
    }
    let accounts = dir.path().join("accounts.csv");
    std::fs::write(&accounts, &text).unwrap();
    let checkpoint = dir.path().join("accounts.results.csv.checkpoint");
    let args = [
        "accounts",
        "import",
        accounts.to_str().unwrap(),
        "--mode",
        "create",
        "--endpoint",
        &url,
        "--rate-limit",
        "300/min",
    ];
    let before = server.stats().counters.writes_applied;
    kill_after(dir.path(), &args, &checkpoint, 3);
    std::fs::write(&accounts, text.replace("crm-19", "crm-xx")).unwrap();
    let run = common::run(dir.path(), &args);
    assert_eq!(run.code, 2, "a changed sheet is refused: {}", run.stderr);
    assert!(
        run.stderr.contains("has changed since the run began"),
        "{}",
        run.stderr
    );
    std::fs::write(&accounts, &text).unwrap();
    let run = common::run(dir.path(), &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("continuing the unfinished run in"),
        "{}",
        run.stderr
    );
    all_ok(&dir.path().join("accounts.results.csv"), 20);
    assert_eq!(
        server.stats().counters.writes_applied - before,
        20,
        "each account written once"
    );

    // RFIs: the demo's, at 60/min.
    let rfis = dir.path().join("rfis.csv");
    let run = common::run(
        dir.path(),
        &[
            "export",
            "rfis",
            "-o",
            rfis.to_str().unwrap(),
            "--endpoint",
            &url,
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut text = String::from("tenantId,customerRelationship_status\n");
    let tenants: Vec<String> = read_csv(&rfis)[1..].iter().map(|r| r[0].clone()).collect();
    for tenant in &tenants {
        text.push_str(&format!("{tenant},contactInitiated\n"));
    }
    let update = dir.path().join("update.csv");
    std::fs::write(&update, text).unwrap();
    let checkpoint = dir.path().join("update.results.csv.checkpoint");
    let args = [
        "rfis",
        "update",
        update.to_str().unwrap(),
        "--endpoint",
        &url,
        "--rate-limit",
        "60/min",
    ];
    kill_after(dir.path(), &args, &checkpoint, 1);
    let run = common::run(dir.path(), &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("continuing the unfinished run in"),
        "{}",
        run.stderr
    );
    all_ok(&dir.path().join("update.results.csv"), tenants.len());
}

#[test]
fn a_finished_run_removes_its_checkpoint_unless_kept() {
    let server = Server::start(quick());
    let url = server.url();
    let dir = common::tempdir();
    let input = sheet(dir.path(), "done.csv", 50, 1);
    let checkpoint = dir.path().join("done.results.csv.checkpoint");
    let import = |keep: bool| -> Run {
        let mut args = vec![
            "import",
            input.to_str().unwrap(),
            "--endpoint",
            &url,
            "--rate-limit",
            "off",
        ];
        if keep {
            args.push("--keep-checkpoint");
        }
        common::run(dir.path(), &args)
    };
    let run = import(false);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!checkpoint.exists(), "removed");
    assert!(run.stderr.contains("checkpoint: removed"), "{}", run.stderr);
    let run = import(true);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(checkpoint.exists(), "kept with --keep-checkpoint");
    let run = common::run(dir.path(), &["resume", checkpoint.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("finished run"), "{}", run.stderr);

    let out = dir.path().join("accounts.csv");
    for keep in [false, true] {
        let mut args = vec![
            "export",
            "accounts",
            "-o",
            out.to_str().unwrap(),
            "--endpoint",
            &url,
        ];
        if keep {
            args.push("--keep-checkpoint");
        }
        let run = common::run(dir.path(), &args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(dir.path().join("accounts.csv.checkpoint").exists(), keep);
    }
}
