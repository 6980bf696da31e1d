//! Runs that meet bad luck on the writing side: a full disk mid-run, two
//! runs on one results file, a resume of a checkpoint never written, and
//! memory that must not grow with the findings. The real binary against
//! an emulator on a free loopback port; a real small filesystem.

mod common;

use acgbulk::emulator::{EmulatorConfig, Faults, SeedSource};
use common::{assert_exactly_once, read_csv, results, Run, Server};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn quick() -> EmulatorConfig {
    common::unlimited_emulator(Duration::from_millis(200), SeedSource::Demo)
}

fn sheet(dir: &Path, name: &str, rows: u64, accounts: usize) -> PathBuf {
    common::clean_sheet(dir, name, rows, accounts, 11)
}

/// Where the disk runs out.
enum Limit {
    /// A tmpfs, filled but for some bytes.
    Tmpfs,
    /// No tmpfs to be had (not allowed to mount): the child's
    /// RLIMIT_FSIZE, which makes a write past it fail with EFBIG.
    FileSize(u64),
}

/// A small filesystem of its own (tmpfs, 4 MiB) mounted on a temporary
/// directory, unmounted when dropped; when mounting is not allowed, a
/// plain directory and a file-size limit on the child instead.
struct SmallDisk {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl SmallDisk {
    fn new() -> SmallDisk {
        let dir = common::tempdir();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("cannot mount a tmpfs here: limiting file sizes instead");
        }
        SmallDisk { dir, mounted }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk but for about `free` bytes, or, without a tmpfs,
    /// limits each file the child writes to `free` bytes.
    fn fill_but(&self, free: u64) -> Limit {
        if !self.mounted {
            return Limit::FileSize(free);
        }
        let filler = self.path().join("filler");
        let _ = std::fs::remove_file(&filler);
        let stat = statvfs(self.path());
        let available = stat.0 * stat.1;
        std::fs::write(&filler, vec![0u8; available.saturating_sub(free) as usize]).unwrap();
        Limit::Tmpfs
    }

    /// Frees the space [`SmallDisk::fill_but`] took.
    fn make_room(&self) {
        let _ = std::fs::remove_file(self.path().join("filler"));
    }

    /// What the run left in the directory (not the filler).
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "filler")
            .collect();
        names.sort();
        names
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(self.dir.path()).status();
        }
    }
}

/// (block size, blocks available) of the filesystem holding `path`.
fn statvfs(path: &Path) -> (u64, u64) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a struct we own.
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut stat) }, 0);
    (stat.f_frsize, stat.f_bavail)
}

/// Runs `acgbulk ARGS` in `dir` under `limit`.
fn run_limited(dir: &Path, args: &[&str], limit: Option<&Limit>) -> Run {
    let mut command = Command::new(common::bin());
    command
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("ACG_ENDPOINT")
        .stdin(Stdio::null());
    if let Some(&Limit::FileSize(bytes)) = limit {
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let limit = libc::rlimit {
                    rlim_cur: bytes,
                    rlim_max: bytes,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    command.output().expect("the binary runs").into()
}

fn import_args<'a>(input: &'a str, url: &'a str, disk: &'a str) -> Vec<String> {
    [
        "import",
        input,
        "--endpoint",
        url,
        "--rate-limit",
        "off",
        "--concurrency",
        "2",
        "--results",
        &format!("{disk}/run.results.csv"),
        "--report",
        &format!("{disk}/run.report.csv"),
    ]
    .map(String::from)
    .to_vec()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn a_full_disk_mid_run_stops_and_resume_ends_with_every_number_once() {
    let server = Server::start(quick());
    let work = common::tempdir();
    let input = sheet(work.path(), "load.csv", 3_000, 3);
    let disk = SmallDisk::new();
    let url = server.url();
    let d = disk.path().to_str().unwrap();
    let args = import_args(input.to_str().unwrap(), &url, d);
    // Room for a few batches of results and checkpoint lines, not for 30.
    let limit = disk.fill_but(64 * 1024);
    let run = run_limited(work.path(), &strs(&args), Some(&limit));
    assert_eq!(run.code, 3, "a full disk is a stop: {}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("cannot write {d}/run.results.csv"))
            || run
                .stderr
                .contains(&format!("cannot write {d}/run.results.csv.checkpoint")),
        "names the file: {}",
        run.stderr
    );
    let checkpoint = format!("{d}/run.results.csv.checkpoint");
    assert!(
        run.stderr.contains(&format!("acgbulk resume {checkpoint}")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let sent = server.numbers().len();
    assert!(sent > 0 && sent < 3_000, "stopped mid-run: {sent} sent");
    assert!(
        !disk.names().iter().any(|n| n.ends_with(".tmp")),
        "no temporary file left: {:?}",
        disk.names()
    );

    disk.make_room();
    let run = run_limited(
        work.path(),
        &[
            "resume",
            &checkpoint,
            "--endpoint",
            &url,
            "--rate-limit",
            "off",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_exactly_once(&server, &input, &disk.path().join("run.results.csv"));
    assert_eq!(
        disk.names(),
        ["run.report.csv", "run.results.csv"],
        "no temporary or lock file left, and no finished checkpoint"
    );
}

#[test]
fn a_full_disk_at_the_final_rewrite_leaves_no_temporary_file() {
    let server = Server::start(quick());
    let work = common::tempdir();
    let input = sheet(work.path(), "last.csv", 2_000, 2);
    let url = server.url();
    // How much a whole run writes, measured on a roomy disk.
    let roomy = common::tempdir();
    let r = roomy.path().to_str().unwrap();
    let mut args = import_args(input.to_str().unwrap(), &url, r);
    args.push("--keep-checkpoint".into());
    let run = run_limited(work.path(), &strs(&args), None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let size = |name: &str| std::fs::metadata(roomy.path().join(name)).unwrap().len();
    let (results_size, checkpoint_size) =
        (size("run.results.csv"), size("run.results.csv.checkpoint"));

    let other = Server::start(quick());
    let url = other.url();
    let disk = SmallDisk::new();
    let d = disk.path().to_str().unwrap();
    let args = import_args(input.to_str().unwrap(), &url, d);
    // Room for the results as they come and the checkpoint, not for the
    // copy the results are rewritten into at the end.
    let limit = disk.fill_but(results_size + checkpoint_size + results_size / 2);
    let limit = match limit {
        // Each file on its own: room for the results, not for more.
        Limit::FileSize(_) => Limit::FileSize(results_size.max(checkpoint_size) + 4096),
        tmpfs => tmpfs,
    };
    let run = run_limited(work.path(), &strs(&args), Some(&limit));
    if let Limit::Tmpfs = limit {
        assert_eq!(run.code, 3, "{}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("cannot write {d}/run.results.csv")),
            "{}",
            run.stderr
        );
        assert_eq!(other.numbers().len(), 2_000, "everything was sent");
    }
    assert!(
        !disk.names().iter().any(|n| n.ends_with(".tmp")),
        "no temporary file left: {:?}",
        disk.names()
    );
    disk.make_room();
    let checkpoint = format!("{d}/run.results.csv.checkpoint");
    let run = run_limited(
        work.path(),
        &[
            "resume",
            &checkpoint,
            "--endpoint",
            &url,
            "--rate-limit",
            "off",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_exactly_once(&other, &input, &disk.path().join("run.results.csv"));
}

#[test]
fn a_report_that_cannot_be_written_stops_before_sending() {
    let server = Server::start(quick());
    let work = common::tempdir();
    let input = sheet(work.path(), "report.csv", 200, 2);
    let url = server.url();
    let disk = SmallDisk::new();
    let d = disk.path().to_str().unwrap();
    let mut args = import_args(input.to_str().unwrap(), &url, d);
    // The results on a roomy disk; only the report on the full one.
    let results = work.path().join("report.results.csv");
    args[9] = results.to_str().unwrap().to_owned();
    let limit = disk.fill_but(0);
    let limit = match limit {
        Limit::FileSize(_) => Limit::FileSize(10),
        tmpfs => tmpfs,
    };
    let run = run_limited(work.path(), &strs(&args), Some(&limit));
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("cannot write {d}/run.report.csv")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing was sent"), "{}", run.stderr);
    assert_eq!(server.stats().counters.writes_applied, 0);
    disk.make_room();
    let run = run_limited(work.path(), &strs(&args), None);
    assert_eq!(run.code, 0, "the same command again: {}", run.stderr);
    assert_exactly_once(&server, &input, &results);
}

#[test]
fn two_runs_cannot_share_a_results_file() {
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
    let results = dir.path().join("shared.results.csv");
    let run_with = |checkpoint: &str| {
        Command::new(common::bin())
            .args([
                "import",
                input.to_str().unwrap(),
                "--endpoint",
                &url,
                "--rate-limit",
                "120/min",
                "--results",
                results.to_str().unwrap(),
                "--checkpoint",
                checkpoint,
            ])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut first = run_with("first.checkpoint");
    let lock = dir.path().join("shared.results.csv.lock");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !dir.path().join("first.checkpoint").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(lock.exists(), "the first run holds the results' lock");
    let second = Run::from(run_with("second.checkpoint").wait_with_output().unwrap());
    assert_eq!(second.code, 2, "{}", second.stderr);
    assert!(
        second.stderr.contains(&format!(
            "{} is in use by another acgbulk run",
            results.display()
        )),
        "{}",
        second.stderr
    );
    assert!(
        !dir.path().join("second.checkpoint").exists(),
        "the second run began nothing"
    );
    // SAFETY: SIGKILL to our own child.
    unsafe { libc::kill(first.id() as i32, libc::SIGKILL) };
    first.wait().unwrap();
    let sent = server.stats().counters.writes_applied;
    // The first run's lock went with it: a resume takes it again.
    let run = common::run(
        dir.path(),
        &[
            "resume",
            "first.checkpoint",
            "--endpoint",
            &url,
            "--rate-limit",
            "off",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(sent <= server.stats().counters.writes_applied);
    assert_exactly_once(&server, &input, &results);
    assert!(!lock.exists(), "the lock file is removed after the run");
}

#[test]
fn a_resume_of_a_checkpoint_never_written_says_nothing_was_sent() {
    let dir = common::tempdir();
    let checkpoint = dir.path().join("never.results.csv.checkpoint");
    for content in [None, Some(""), Some("1a2b3c4d {\"t\":\"hea")] {
        if let Some(content) = content {
            std::fs::write(&checkpoint, content).unwrap();
        }
        let run = common::run(
            dir.path(),
            &["resume", checkpoint.to_str().unwrap(), "--emulator"],
        );
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(
            run.stderr.contains("nothing was sent") && run.stderr.contains("run the import again"),
            "{}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("WARN") && !run.stderr.contains("torn"),
            "no internal warning first: {}",
            run.stderr
        );
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    }
}

/// Peak resident set of `acgbulk ARGS`, in KiB, from getrusage of the
/// child (waited for by a thread of its own, so the figure is its alone).
fn peak_kib(dir: &Path, args: &[&str]) -> (i32, u64) {
    let child = Command::new(common::bin())
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    std::mem::forget(child);
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; writes into values we own.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    (libc::WEXITSTATUS(status), usage.ru_maxrss as u64)
}

#[test]
fn memory_does_not_grow_with_the_findings() {
    const ROWS: u64 = 300_000;
    let dir = common::tempdir();
    let valid = sheet(dir.path(), "valid.csv", ROWS, 4);
    // The same sheet with an unknown capability on every row.
    let text = std::fs::read_to_string(&valid).unwrap();
    let mut lines = text.lines();
    let mut bad = String::with_capacity(text.len() + ROWS as usize * 8);
    bad.push_str(lines.next().unwrap());
    bad.push('\n');
    for line in lines {
        let cells: Vec<&str> = split_row(line);
        let mut cells: Vec<String> = cells.into_iter().map(str::to_owned).collect();
        cells[2] = "true".into();
        if cells[3].is_empty() {
            cells[3] = "unassigned".into();
        }
        if cells[4].is_empty() {
            cells[4] = "CallingUserAssignment".into();
        }
        cells[5] = "Teleport".into();
        bad.push_str(&cells.join(","));
        bad.push('\n');
    }
    drop(text);
    let bad_path = dir.path().join("bad.csv");
    std::fs::write(&bad_path, bad).unwrap();

    sheet(dir.path(), "tiny.csv", 1_000, 4);
    let (code, tiny_kib) = peak_kib(dir.path(), &["validate", "tiny.csv"]);
    assert_eq!(code, 0);
    let (code, valid_kib) = peak_kib(dir.path(), &["validate", "valid.csv"]);
    assert_eq!(code, 0);
    let (code, bad_kib) = peak_kib(dir.path(), &["validate", "bad.csv"]);
    assert_eq!(code, 1);
    let report = std::fs::read_to_string(dir.path().join("bad.report.csv")).unwrap();
    let capability_lines = report
        .lines()
        .filter(|l| l.contains(",CAPABILITY,"))
        .count();
    assert_eq!(capability_lines as u64, ROWS, "a finding on every row");
    eprintln!(
        "peak RSS: 1,000 rows {tiny_kib} KiB, {ROWS} valid {valid_kib} KiB, every row with a finding {bad_kib} KiB"
    );
    assert!(
        bad_kib <= 2 * valid_kib,
        "findings stream to the report: {bad_kib} KiB against {valid_kib} KiB"
    );
    // At this size the fixed part (rules, buffers, threads) is most of the
    // peak: the growth over a tiny sheet must stay within 2x as well (a
    // message kept per finding, ~150 bytes a row, would be 40 MiB here).
    let growth = |kib: u64| kib.saturating_sub(tiny_kib);
    assert!(
        growth(bad_kib) <= 2 * growth(valid_kib) + 16 * 1024,
        "memory grows with the findings: {bad_kib} KiB against {valid_kib} KiB (1,000 rows: {tiny_kib} KiB)"
    );
}

/// Splits a sample CSV line, keeping a quoted cell (a list) whole.
fn split_row(line: &str) -> Vec<&str> {
    let mut cells = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, b) in line.bytes().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                cells.push(&line[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    cells.push(&line[start..]);
    cells
}

#[test]
fn invalid_numbers_keep_their_first_error_in_the_results() {
    let server = Server::start(quick());
    let dir = common::tempdir();
    let input = dir.path().join("mistakes.csv");
    let mut sheet = std::fs::read_to_string(common::samples().join("mistakes.csv")).unwrap();
    // A number twice, for a duplicate's words too.
    let first_row = sheet.lines().nth(1).unwrap().to_owned();
    sheet.push_str(&first_row);
    sheet.push('\n');
    std::fs::write(&input, sheet).unwrap();
    let run = common::run(
        dir.path(),
        &[
            "import",
            input.to_str().unwrap(),
            "--endpoint",
            &server.url(),
            "--rate-limit",
            "off",
            "--skip-invalid",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = results(&dir.path().join("mistakes.report.csv"));
    let lines = results(&dir.path().join("mistakes.results.csv"));
    let invalid: Vec<_> = lines.iter().filter(|l| l["outcome"] == "invalid").collect();
    assert!(invalid.len() > 5, "{}", run.stderr);
    let mut codes = std::collections::BTreeSet::new();
    for line in invalid {
        let found = report.iter().any(|f| {
            f["row"] == line["row"]
                && f["severity"] == "error"
                && f["code"] == line["errorCode"]
                && f["message"] == line["errorMessage"]
        });
        assert!(found, "the results give a finding of the report: {line:?}");
        codes.insert(line["errorCode"].clone());
    }
    assert!(codes.contains("DUPLICATE"), "{codes:?}");
}

/// Checks what a run stopped by a full disk said and left: exit 3, the file
/// it could not write (one of `files`), how to continue, no panic and no
/// temporary file.
fn assert_stopped_for_room(run: &Run, disk: &SmallDisk, files: &[String], then: &str) {
    assert_eq!(run.code, 3, "a full disk is a stop: {}", run.stderr);
    assert!(
        files
            .iter()
            .any(|f| run.stderr.contains(&format!("cannot write {f}"))),
        "names the file ({files:?}): {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(then),
        "says how to go on: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(
        !disk.names().iter().any(|n| n.ends_with(".tmp")),
        "no temporary file left: {:?}",
        disk.names()
    );
}

#[test]
fn a_full_disk_during_an_export_stops_and_the_same_command_finishes_it() {
    let server = Server::start(quick());
    let work = common::tempdir();
    let input = sheet(work.path(), "held.csv", 3_000, 3);
    let url = server.url();
    let run = run_limited(
        work.path(),
        &[
            "import",
            input.to_str().unwrap(),
            "--endpoint",
            &url,
            "--rate-limit",
            "off",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let held = server.numbers();

    let disk = SmallDisk::new();
    let d = disk.path().to_str().unwrap();
    let out = format!("{d}/numbers.csv");
    let args = [
        "export",
        "numbers",
        "-o",
        &out,
        "--page-size",
        "100",
        "--endpoint",
        &url,
        "--rate-limit",
        "off",
    ];
    // Room for a few pages of rows, not for thirty.
    let limit = disk.fill_but(64 * 1024);
    let run = run_limited(work.path(), &args, Some(&limit));
    let checkpoint = format!("{out}.checkpoint");
    assert_stopped_for_room(
        &run,
        &disk,
        &[out.clone(), checkpoint.clone()],
        &format!("run the same command again to continue from {checkpoint}"),
    );

    disk.make_room();
    let run = run_limited(work.path(), &args, None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("continued: exported"), "{}", run.stderr);
    let rows = read_csv(Path::new(&out));
    assert_eq!(rows[0][0], "telephoneNumber");
    let mut numbers: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(numbers.len(), held.len(), "one row per number");
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), held.len(), "each number once");
    assert!(
        !disk.names().iter().any(|n| n.ends_with(".tmp")),
        "{:?}",
        disk.names()
    );
}

#[test]
fn a_full_disk_during_an_accounts_job_stops_and_the_same_command_finishes_it() {
    let server = Server::start(quick());
    let url = server.url();
    let work = common::tempdir();
    let mut text = String::from(
        "name,serviceDetails_teamsTenantId,serviceDetails_teamsOperatorConnect_enabled\n",
    );
    for i in 0..300 {
        text.push_str(&format!(
            "room{i:03},0f6f2e1e-3f0a-4a5e-9a53-8d7a3c6e{i:04},true\n"
        ));
    }
    let input = work.path().join("room.csv");
    std::fs::write(&input, text).unwrap();
    let created = || {
        server
            .emulator()
            .with_store(|s| s.accounts.keys().filter(|k| k.starts_with("room")).count())
    };

    let disk = SmallDisk::new();
    let d = disk.path().to_str().unwrap();
    let results = format!("{d}/room.results.csv");
    let args = [
        "accounts",
        "import",
        input.to_str().unwrap(),
        "--mode",
        "create",
        "--concurrency",
        "2",
        "--results",
        &results,
        "--endpoint",
        &url,
        "--rate-limit",
        "off",
    ];
    // Room for some rows' results and checkpoint lines, not for 300.
    let limit = disk.fill_but(16 * 1024);
    let run = run_limited(work.path(), &args, Some(&limit));
    let checkpoint = format!("{results}.checkpoint");
    // Stopped mid-job, the summary says where its checkpoint is.
    assert_stopped_for_room(
        &run,
        &disk,
        &[results.clone(), checkpoint.clone()],
        "make room, then run the same command again to continue",
    );
    assert!(
        run.stderr.contains(&format!("checkpoint: {checkpoint}")),
        "{}",
        run.stderr
    );
    let sent = created();
    assert!(sent < 300, "stopped mid-run: {sent} created");

    disk.make_room();
    let run = run_limited(work.path(), &args, None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("(continued)"), "{}", run.stderr);
    let lines = self::results(Path::new(&results));
    assert_eq!(lines.len(), 300, "one line per row");
    assert!(lines.iter().all(|l| l["outcome"] == "ok"), "{lines:?}");
    let mut names: Vec<&str> = lines.iter().map(|l| l["name"].as_str()).collect();
    names.dedup();
    assert_eq!(names.len(), 300, "each row once, in order");
    assert_eq!(created(), 300);
    // Each create applied once: a row in flight when the disk filled was
    // sent again with its id and answered from the repeatability cache.
    let stats = server.stats();
    assert_eq!(stats.counters.writes_applied, 300, "{stats:?}");
    assert!(
        !disk.names().iter().any(|n| n.ends_with(".tmp")),
        "{:?}",
        disk.names()
    );
}

#[test]
fn a_full_disk_during_an_rfi_job_stops_before_sending_and_the_same_command_finishes_it() {
    let server = Server::start(quick());
    let url = server.url();
    let work = common::tempdir();
    let tenants: Vec<String> = server
        .emulator()
        .with_store(|s| s.rfis.keys().cloned().collect());
    assert!(tenants.len() >= 3, "{tenants:?}");
    let mut text =
        String::from("tenantId,customerRelationship_status,customerRelationship_comment\n");
    for tenant in &tenants {
        text.push_str(&format!("{tenant},contactInitiated,called\n"));
    }
    let input = work.path().join("rfis.csv");
    std::fs::write(&input, text).unwrap();

    let disk = SmallDisk::new();
    let d = disk.path().to_str().unwrap();
    let results = format!("{d}/rfis.results.csv");
    let args = [
        "rfis",
        "update",
        input.to_str().unwrap(),
        "--results",
        &results,
        "--endpoint",
        &url,
        "--rate-limit",
        "off",
    ];
    let limit = match disk.fill_but(0) {
        Limit::FileSize(_) => Limit::FileSize(10),
        tmpfs => tmpfs,
    };
    let run = run_limited(work.path(), &args, Some(&limit));
    let checkpoint = format!("{results}.checkpoint");
    assert_stopped_for_room(
        &run,
        &disk,
        &[results.clone(), checkpoint.clone()],
        &format!("run the same command again to continue from {checkpoint}"),
    );
    let stats = server.stats();
    assert_eq!(stats.counters.writes_applied, 0, "nothing sent: {stats:?}");

    disk.make_room();
    let run = run_limited(work.path(), &args, None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = self::results(Path::new(&results));
    assert_eq!(lines.len(), tenants.len(), "one line per row");
    assert!(lines.iter().all(|l| l["outcome"] == "ok"), "{lines:?}");
    let statuses: Vec<Option<String>> = server.emulator().with_store(|s| {
        tenants
            .iter()
            .map(|t| {
                s.rfis[t]
                    .rfi
                    .customer_relationship
                    .as_ref()
                    .and_then(|c| c.status.clone())
            })
            .collect()
    });
    assert!(
        statuses
            .iter()
            .all(|s| s.as_deref() == Some("contactInitiated")),
        "{statuses:?}"
    );
    assert_eq!(server.stats().counters.writes_applied, tenants.len() as u64);
}

#[test]
fn a_full_disk_while_an_export_writes_its_workbook_leaves_no_half_workbook() {
    let server = Server::start(quick());
    let work = common::tempdir();
    let input = sheet(work.path(), "held.csv", 2_000, 2);
    let url = server.url();
    let run = run_limited(
        work.path(),
        &[
            "import",
            input.to_str().unwrap(),
            "--endpoint",
            &url,
            "--rate-limit",
            "off",
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let held = server.numbers().len();
    let export = |dir: &str, name: &str| {
        let out = format!("{dir}/{name}");
        let args: Vec<String> = [
            "export",
            "numbers",
            "-o",
            &out,
            "--endpoint",
            &url,
            "--rate-limit",
            "off",
        ]
        .map(String::from)
        .to_vec();
        (out, args)
    };
    // What a whole export writes, measured on a roomy disk: the rows as
    // CSV first, then the workbook made from them.
    let roomy = common::tempdir();
    let size = |path: &str| std::fs::metadata(path).unwrap().len();
    let (csv, args) = export(roomy.path().to_str().unwrap(), "numbers.csv");
    let run = run_limited(work.path(), &strs(&args), None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (out, mut args) = export(roomy.path().to_str().unwrap(), "numbers.xlsx");
    args.push("--keep-checkpoint".into());
    let run = run_limited(work.path(), &strs(&args), None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (csv_size, workbook_size, checkpoint_size) =
        (size(&csv), size(&out), size(&format!("{out}.checkpoint")));

    let disk = SmallDisk::new();
    let d = disk.path().to_str().unwrap();
    let (out, args) = export(d, "numbers.xlsx");
    // Room for the rows and the checkpoint, not for the workbook as well.
    let limit = disk.fill_but(csv_size + checkpoint_size + workbook_size / 2);
    let Limit::Tmpfs = limit else {
        eprintln!("no tmpfs: the workbook case needs a whole disk to fill");
        return;
    };
    let run = run_limited(work.path(), &strs(&args), Some(&limit));
    let checkpoint = format!("{out}.checkpoint");
    assert_stopped_for_room(
        &run,
        &disk,
        // The workbook, not its rows: those fitted.
        &[format!("{out}: ")],
        &format!("run the same command again to continue from {checkpoint}"),
    );
    assert!(
        !disk.path().join("numbers.xlsx").exists(),
        "no half workbook: {:?}",
        disk.names()
    );

    disk.make_room();
    let run = run_limited(work.path(), &strs(&args), None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        disk.names(),
        ["numbers.xlsx"],
        "the rows' CSV is gone once the workbook is made, and the finished checkpoint"
    );
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(&out).unwrap();
    use calamine::Reader as _;
    let range = book.worksheet_range("Numbers").unwrap();
    let mut numbers: Vec<String> = range.rows().skip(1).map(|r| r[0].to_string()).collect();
    assert_eq!(numbers.len(), held, "one row per number");
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), held, "each number once");
}
