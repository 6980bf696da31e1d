//! Shared by the bench binaries: timing child processes of the real binary
//! and reporting medians.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_acgbulk"))
}

/// Where benchmarks keep generated inputs (not committed).
pub fn data_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-data");
    std::fs::create_dir_all(&dir).expect("bench-data");
    dir
}

/// Peak resident set of the largest child waited for so far, in KiB.
pub fn children_peak_rss_kib() -> u64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss as u64
}

/// CPU time (user + system) used by children waited for so far.
pub fn children_cpu() -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Runs the binary with `args`, returns its wall time; panics on an exit
/// code not in `ok_codes`.
pub fn time_run(args: &[&str], ok_codes: &[i32]) -> Duration {
    let start = Instant::now();
    let status = Command::new(bin())
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("the binary runs");
    let elapsed = start.elapsed();
    assert!(
        ok_codes.contains(&status.code().unwrap_or(-1)),
        "acgbulk {args:?} exited with {status}"
    );
    elapsed
}

/// Runs the binary with `args`; returns its wall time and its own peak
/// RSS in KiB (from wait4, not the largest child so far); panics on an exit
/// code not in `ok_codes`.
pub fn peak_run(args: &[&str], ok_codes: &[i32]) -> (f64, u64) {
    let start = Instant::now();
    let child = Command::new(bin())
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the binary runs");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child (whose handle is not waited on
    // again: a Child does not wait when dropped); writes into values we own.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    drop(child);
    assert_eq!(waited, pid);
    let code = libc::WEXITSTATUS(status);
    assert!(
        ok_codes.contains(&code),
        "acgbulk {args:?} exited with {code}"
    );
    (start.elapsed().as_secs_f64(), usage.ru_maxrss as u64)
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

pub fn runs() -> usize {
    std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
}

/// Starts `acgbulk emulator --listen 127.0.0.1:0 ARGS`; returns it and its URL.
pub fn emulator(args: &[&str]) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(bin())
        .args(["emulator", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the emulator starts");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("piped"))
        .read_line(&mut line)
        .expect("a first line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect("listening on URL")
        .to_owned();
    (child, url)
}

/// Stops an emulator process cleanly.
pub fn stop(mut child: std::process::Child) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
}

/// The emulator's `/_emulator/stats`.
pub fn stats(url: &str) -> serde_json::Value {
    reqwest::blocking::get(format!("{url}/_emulator/stats"))
        .expect("stats answer")
        .json()
        .expect("stats are JSON")
}
