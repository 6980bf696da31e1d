//! Outages: the check before a job sends anything, the circuit breaker
//! that stops a run the service no longer answers (exit 3, resumable),
//! and a short outage ridden out. The real binary against an emulator on
//! a free loopback port, stopped and started again on the same port with
//! the same state.

mod common;

use acgbulk::emulator::{EmulatorConfig, IpNet, SeedSource};
use common::{assert_exactly_once, results, Run, Server};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn config(listen: SocketAddr, state: &Path) -> EmulatorConfig {
    EmulatorConfig {
        listen,
        state: Some(state.to_owned()),
        rate_limit: None,
        sync_delay: Duration::from_millis(200),
        seed: SeedSource::Demo,
        ..EmulatorConfig::default()
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A clean sheet of `rows` single numbers over the demo accounts.
fn sheet(dir: &Path, rows: u64) -> PathBuf {
    common::clean_sheet(dir, "load.csv", rows, 3, 12)
}

fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Child {
    Command::new(common::bin())
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("ACG_ENDPOINT")
        .env_remove("ACG_TOKEN")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs")
}

/// Runs the binary to its end, which must come within `limit`.
fn run_within(dir: &Path, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Run {
    let started = Instant::now();
    let run: Run = spawn(dir, args, env).wait_with_output().unwrap().into();
    let took = started.elapsed();
    assert!(took < limit, "took {took:?}: {}", run.stderr);
    run
}

/// Waits until the emulator holds at least `count` numbers.
fn wait_for_numbers(server: &Server, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.numbers().len() < count {
        assert!(Instant::now() < deadline, "the run never got going");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Nothing was sent: exit 2, one line on stderr saying `why`, no
/// checkpoint, and the emulator (if any) saw no write.
fn assert_refused_before_sending(run: &Run, why: &str, dir: &Path, server: Option<&Server>) {
    assert_eq!(run.code, 2, "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {}", run.stderr);
    assert!(lines[0].starts_with("error: "), "{}", run.stderr);
    assert!(lines[0].contains(why), "says {why:?}: {}", run.stderr);
    assert!(lines[0].contains("nothing was sent"), "{}", run.stderr);
    assert!(
        !dir.join("load.results.csv.checkpoint").exists(),
        "no checkpoint"
    );
    if let Some(server) = server {
        let stats = server.stats();
        assert_eq!(stats.counters.writes_applied, 0, "{stats:?}");
        assert!(server.numbers().is_empty(), "no number written");
    }
}

#[test]
fn a_wrong_endpoint_is_one_line_and_exit_2_before_anything_is_sent() {
    let dir = common::tempdir();
    let input = sheet(dir.path(), 50);
    let input = input.to_str().unwrap();
    let limit = Duration::from_secs(10);
    // A free port with nothing listening.
    let free = std::net::TcpListener::bind(loopback()).unwrap();
    let nothing = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let run = run_within(
        dir.path(),
        &["import", input, "--endpoint", &nothing],
        &[],
        limit,
    );
    assert_refused_before_sending(&run, "connection refused", dir.path(), None);
    assert!(run.stderr.contains(&nothing), "{}", run.stderr);

    let state = dir.path().join("emulator.json");
    let server = Server::start(config(loopback(), &state));
    // Something that is not the API: a path the emulator does not serve,
    // and HTTPS to a plain HTTP server.
    let wrong_path = format!("{}/not-the-api", server.url());
    let run = run_within(
        dir.path(),
        &["import", input, "--endpoint", &wrong_path],
        &[],
        limit,
    );
    assert_refused_before_sending(
        &run,
        "does not answer as the Provisioning API",
        dir.path(),
        Some(&server),
    );
    let https = server.url().replace("http://", "https://");
    let run = run_within(
        dir.path(),
        &["import", input, "--endpoint", &https],
        &[],
        limit,
    );
    assert_refused_before_sending(&run, "TLS", dir.path(), Some(&server));
    // An endpoint that accepts connections but never answers in time (a
    // black hole): two attempts of 3 s.
    let slow = Server::start(EmulatorConfig {
        faults: acgbulk::emulator::Faults {
            latency: Duration::from_secs(20),
            ..Default::default()
        },
        ..config(loopback(), &dir.path().join("slow.json"))
    });
    let run = run_within(
        dir.path(),
        &["import", input, "--endpoint", &slow.url()],
        &[],
        Duration::from_secs(12),
    );
    assert_refused_before_sending(&run, "within 3s", dir.path(), Some(&slow));
    // Export, which only reads, fails as fast.
    let run = run_within(
        dir.path(),
        &["export", "numbers", "--endpoint", &nothing, "-o", "out.csv"],
        &[],
        limit,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("connection refused"), "{}", run.stderr);
}

#[test]
fn refused_credentials_and_an_address_not_allowed_stop_before_anything_is_sent() {
    let dir = common::tempdir();
    let input = sheet(dir.path(), 50);
    let input = input.to_str().unwrap();
    let limit = Duration::from_secs(10);
    let state = dir.path().join("emulator.json");
    // A service that asks for tokens: a token it does not accept is 401,
    // twice (once more with a "fresh" one).
    let client = acgbulk::emulator::auth::Client::parse_secret;
    let server = Server::start(EmulatorConfig {
        clients: Some(vec![
            client("loader:a-secret:Admin").unwrap(),
            client("writer:a-secret:Write").unwrap(),
        ]),
        ..config(loopback(), &state)
    });
    let url = server.url();
    let run = run_within(
        dir.path(),
        &["import", input, "--endpoint", &url, "--auth", "token"],
        &[("ACG_TOKEN", "not-a-token")],
        limit,
    );
    assert_refused_before_sending(
        &run,
        "refused the credentials twice",
        dir.path(),
        Some(&server),
    );
    assert!(
        server.stats().counters.requests <= 3,
        "{:?}",
        server.stats()
    );
    // A token without the read role: 403 for the credential.
    let scope = acgbulk::client::auth::DEFAULT_SCOPE
        .replace(':', "%3A")
        .replace('/', "%2F");
    let answer: serde_json::Value = reqwest::blocking::Client::new()
        .post(format!("{url}/contoso-tenant/oauth2/v2.0/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id=writer&client_secret=a-secret&scope={scope}"
        ))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = answer["access_token"].as_str().expect("a token").to_owned();
    let run = run_within(
        dir.path(),
        &["import", input, "--endpoint", &url, "--auth", "token"],
        &[("ACG_TOKEN", &token)],
        limit,
    );
    assert_refused_before_sending(&run, "ProvisioningAPI role", dir.path(), Some(&server));
    drop(server);
    // This machine is not on the allowlist: 403.
    let server = Server::start(EmulatorConfig {
        allowed_ips: vec![IpNet::parse("10.0.0.0/8").unwrap()],
        ..config(loopback(), &state)
    });
    let run = run_within(
        dir.path(),
        &["delete", input, "--endpoint", &server.url()],
        &[],
        limit,
    );
    assert_refused_before_sending(&run, "IP allowlist", dir.path(), Some(&server));
}

/// The import flags of the runs that meet an outage: small batches at a
/// pace that keeps the run going for some seconds, short retry waits.
fn import_args<'a>(input: &'a str, url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "import",
        input,
        "--endpoint",
        url,
        "--batch-size",
        "10",
        "--rate-limit",
        "300/min",
        "--concurrency",
        "4",
        "--retry-backoff",
        "200ms",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn an_outage_longer_than_the_timeout_stops_with_exit_3_and_resume_ends_exactly() {
    let dir = common::tempdir();
    let input = sheet(dir.path(), 400);
    let state = dir.path().join("emulator.json");
    let server = Server::start(config(loopback(), &state));
    let (addr, url) = (server.addr(), server.url());
    let args = import_args(
        input.to_str().unwrap(),
        &url,
        &["--outage-timeout", "5s", "--max-backoff", "1s"],
    );
    let child = spawn(dir.path(), &args, &[]);
    wait_for_numbers(&server, 60);
    let stopped_at = Instant::now();
    server.stop();
    let run: Run = child.wait_with_output().unwrap().into();
    let took = stopped_at.elapsed();
    assert_eq!(run.code, 3, "an outage is a resumable stop: {}", run.stderr);
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(30),
        "stopped after the outage timeout: {took:?}"
    );
    assert!(
        run.stderr.contains("(the outage timeout)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("reqwest"), "{}", run.stderr);
    // One short line per retry.
    let retries: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("retrying in"))
        .collect();
    assert!(!retries.is_empty(), "{}", run.stderr);
    for line in &retries {
        assert!(line.len() < 200, "a concise retry line: {line}");
        let (_, what) = line
            .split_once("WARN POST /accounts/")
            .unwrap_or_else(|| panic!("what: {line}"));
        let (_, why) = what
            .split_once(":createOrUpdateNumbers: ")
            .unwrap_or_else(|| panic!("what: {line}"));
        assert!(
            why.contains(" (attempt ") && why.contains("); retrying in "),
            "why, which attempt, how long: {line}"
        );
    }
    let resume = run
        .stderr
        .lines()
        .find_map(|l| l.split_once("resume with: ").map(|(_, c)| c.to_owned()))
        .unwrap_or_else(|| panic!("a resume command: {}", run.stderr));
    let resume: Vec<&str> = resume.split_whitespace().collect();
    assert_eq!(resume[..2], ["acgbulk", "resume"], "{resume:?}");
    let results_path = dir.path().join("load.results.csv");
    if results_path.exists() {
        let lines = results(&results_path);
        // What was not answered is left for the resume (`skipped`).
        let failed = lines
            .iter()
            .find(|l| l["outcome"] != "ok" && l["outcome"] != "skipped");
        assert!(
            failed.is_none(),
            "no number failed because of the outage: {failed:?}"
        );
    }

    // The service comes back, on the same port with the same state.
    let server = Server::start(config(addr, &state));
    let run = run_within(dir.path(), &resume[1..], &[], Duration::from_secs(60));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_exactly_once(&server, &input, &results_path);
}

#[test]
fn a_short_outage_is_ridden_out_with_no_failed_row() {
    let dir = common::tempdir();
    let input = sheet(dir.path(), 400);
    let state = dir.path().join("emulator.json");
    let server = Server::start(config(loopback(), &state));
    let (addr, url) = (server.addr(), server.url());
    // The default outage timeout (5 min); retries waiting at most 5 s, so
    // each request spends its 6 attempts within the outage and goes on
    // retrying because nothing is answered.
    let args = import_args(input.to_str().unwrap(), &url, &["--max-backoff", "5s"]);
    let child = spawn(dir.path(), &args, &[]);
    wait_for_numbers(&server, 60);
    server.stop();
    std::thread::sleep(Duration::from_secs(30));
    let server = Server::start(config(addr, &state));
    let run: Run = child.wait_with_output().unwrap().into();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("retrying in"), "{}", run.stderr);
    assert_exactly_once(&server, &input, &dir.path().join("load.results.csv"));
}

#[test]
fn an_accounts_job_stops_for_an_outage_and_the_same_command_finishes_it() {
    let dir = common::tempdir();
    let state = dir.path().join("emulator.json");
    let server = Server::start(config(loopback(), &state));
    let (addr, url) = (server.addr(), server.url());
    let mut sheet = String::from("name,correlationId\n");
    for i in 0..80 {
        sheet.push_str(&format!("outage{i:02},crm-{i}\n"));
    }
    let input = dir.path().join("accounts.csv");
    std::fs::write(&input, sheet).unwrap();
    let created = |server: &Server| {
        server.emulator().with_store(|s| {
            s.accounts
                .keys()
                .filter(|a| a.starts_with("outage"))
                .count()
        })
    };
    let args = [
        "accounts",
        "import",
        input.to_str().unwrap(),
        "--mode",
        "create",
        "--endpoint",
        &url,
        "--rate-limit",
        "300/min",
        "--concurrency",
        "2",
        "--retry-backoff",
        "200ms",
        "--max-backoff",
        "1s",
        "--outage-timeout",
        "3s",
    ];
    let child = spawn(dir.path(), &args, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while created(&server) < 10 {
        assert!(Instant::now() < deadline, "the job never got going");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.stop();
    let run: Run = child.wait_with_output().unwrap().into();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("(the outage timeout)")
            && run
                .stderr
                .contains("run the same command again to continue"),
        "{}",
        run.stderr
    );

    let server = Server::start(config(addr, &state));
    let run = run_within(dir.path(), &args, &[], Duration::from_secs(60));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(created(&server), 80);
    // Created once each: a create in flight at the outage was sent again
    // with its id and answered from the repeatability cache, not refused
    // as existing.
    let lines = results(&dir.path().join("accounts.results.csv"));
    assert_eq!(lines.len(), 80);
    assert!(
        lines.iter().all(|l| l["outcome"] == "ok"),
        "{:?}",
        lines.iter().find(|l| l["outcome"] != "ok")
    );
}
