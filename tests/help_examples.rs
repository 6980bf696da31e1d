//! Every example in every command's `--help` runs, so none can rot: the
//! Examples section is read from the real binary's help text (found by
//! walking the "Commands:" lists), and each example is run as written by
//! bash, with `acgbulk` on PATH being this build, in a temporary directory
//! holding a copy of `samples/`, against an emulator started here
//! (`ACG_ENDPOINT` and `ACS_CONNECTION_STRING` point at it).
//!
//! An example exits 0 unless its comment says `(exit N)`; one whose
//! comment says `(runs until Ctrl-C)` is a server: it must print its
//! `listening on` line, and stop with exit 0 on SIGINT.

mod common;

use acgbulk::emulator::acs::AcsConfig;
use acgbulk::emulator::EmulatorConfig;
use azure_core::credentials::SecretBytes;
use common::{bin, samples, Server};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "YW4gZW11bGF0b3IgYWNjZXNzIGtleSwgMzIgYnl0ZXM=";

/// One example: the command line and the exit its comment expects.
#[derive(Debug, Clone)]
struct Example {
    line: String,
    expect: Expect,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Exit(i32),
    Server,
}

fn help(path: &[String]) -> String {
    let out = Command::new(bin())
        .args(path)
        .arg("--help")
        .output()
        .expect("the binary runs");
    assert!(out.status.success(), "acgbulk {path:?} --help failed");
    String::from_utf8(out.stdout).unwrap()
}

/// The subcommands a help text lists under "Commands:" (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim_end() != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// The examples after the "Examples:" heading: `# comment` lines, each
/// followed by its command (a line clap wrapped would be a command too,
/// and fail).
fn examples(help: &str) -> Vec<Example> {
    let mut found = Vec::new();
    let mut comment = String::new();
    // A command may go on over lines that end in `\`, as in a shell.
    let mut pending = String::new();
    for line in help
        .lines()
        .skip_while(|l| l.trim_end() != "Examples:")
        .skip(1)
    {
        let line = line.trim();
        if line.is_empty() {
            assert!(pending.is_empty(), "a continued line ends: {pending}");
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        let joined = std::mem::take(&mut pending) + line;
        let line = joined.as_str();
        if let Some(text) = line.strip_prefix('#') {
            comment = text.to_owned();
            continue;
        }
        let expect = if comment.contains("(runs until Ctrl-C)") {
            Expect::Server
        } else {
            let code = comment
                .split("(exit ")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                .map_or(0, |digits| digits.parse().expect("an exit code"));
            Expect::Exit(code)
        };
        found.push(Example {
            line: line.to_owned(),
            expect,
        });
        comment.clear();
    }
    found
}

/// Every command path with its help text, the top level first.
fn every_command() -> Vec<(Vec<String>, String)> {
    let mut all = Vec::new();
    let mut todo = vec![Vec::new()];
    while let Some(path) = todo.pop() {
        let text = help(&path);
        for sub in subcommands(&text) {
            let mut child = path.clone();
            child.push(sub);
            todo.push(child);
        }
        all.push((path, text));
    }
    all
}

fn copy_samples(dir: &Path) {
    let to = dir.join("samples");
    std::fs::create_dir(&to).unwrap();
    for entry in std::fs::read_dir(samples()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn emulator() -> Server {
    use base64::Engine;
    Server::start(EmulatorConfig {
        rate_limit: None,
        acs: AcsConfig {
            access_key: Some(SecretBytes::new(
                base64::engine::general_purpose::STANDARD
                    .decode(KEY)
                    .unwrap(),
            )),
            operation_delay: Duration::from_millis(200),
            ..AcsConfig::default()
        },
        ..EmulatorConfig::default()
    })
}

fn shell(dir: &Path, server: &Server, line: &str) -> Command {
    let bin_dir = bin().parent().unwrap().to_owned();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let mut command = Command::new("bash");
    command
        .args(["-o", "pipefail", "-c", line])
        .current_dir(dir)
        .env("PATH", path)
        .stdin(Stdio::null());
    // `--emulator` refuses an endpoint beside it, ACG_ENDPOINT included.
    if !line.split_whitespace().any(|word| word == "--emulator") {
        command.env("ACG_ENDPOINT", server.url()).env(
            "ACS_CONNECTION_STRING",
            format!("endpoint={};accesskey={KEY}", server.url()),
        );
    } else {
        command
            .env_remove("ACG_ENDPOINT")
            .env_remove("ACS_CONNECTION_STRING");
    }
    for name in [
        "RUST_LOG",
        "ACG_TOKEN",
        "ACS_ENDPOINT",
        "ACS_TOKEN",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "IDENTITY_ENDPOINT",
        "MSI_ENDPOINT",
    ] {
        command.env_remove(name);
    }
    command
}

fn wait(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status.code().unwrap_or(-1));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs one command's examples in order in a fresh directory, against a
/// fresh emulator; the failures, in words.
fn run_examples(name: &str, examples: &[Example]) -> Vec<String> {
    let dir = common::tempdir();
    copy_samples(dir.path());
    let server = emulator();
    let mut failures = Vec::new();
    for example in examples {
        let mut command = shell(dir.path(), &server, &example.line);
        match example.expect {
            Expect::Exit(expected) => {
                let log = dir.path().join("example.log");
                let log_file = std::fs::File::create(&log).unwrap();
                let mut child = command
                    .stdout(Stdio::null())
                    .stderr(log_file)
                    .spawn()
                    .expect("bash runs");
                let code = wait(&mut child, Duration::from_secs(60));
                if code != Some(expected) {
                    failures.push(format!(
                        "{name}: `{}` exited {code:?}, the help says {expected}:\n{}",
                        example.line,
                        std::fs::read_to_string(&log).unwrap_or_default()
                    ));
                }
            }
            Expect::Server => {
                // exec, so the signal reaches acgbulk and not bash.
                let mut command = shell(dir.path(), &server, &format!("exec {}", example.line));
                let mut child = command
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("bash runs");
                let mut first = String::new();
                BufReader::new(child.stdout.take().unwrap())
                    .read_line(&mut first)
                    .unwrap();
                // The handlers are set before that line: a stop sent the
                // moment it is read is a clean one.
                let pid = child.id() as libc::pid_t;
                // SAFETY: a plain kill(2) of the child started just above.
                unsafe { libc::kill(pid, libc::SIGINT) };
                let code = wait(&mut child, Duration::from_secs(20));
                if !first.starts_with("listening on http://127.0.0.1:") || code != Some(0) {
                    failures.push(format!(
                        "{name}: `{}` printed {first:?} and exited {code:?} on SIGINT",
                        example.line
                    ));
                }
            }
        }
    }
    server.stop();
    failures
}

#[test]
fn every_command_has_examples_and_every_example_runs() {
    let commands = every_command();
    assert!(commands.len() >= 17, "{}", commands.len());
    let mut failures = Vec::new();
    let mut jobs = Vec::new();
    for (path, text) in &commands {
        let name = format!("acgbulk {}", path.join(" "));
        let found = examples(text);
        let least = if subcommands(text).is_empty() { 2 } else { 1 };
        if found.len() < least {
            failures.push(format!("{name} --help has {} examples", found.len()));
        }
        jobs.push((name, found));
    }
    // Each command in its own thread, directory and emulator: the
    // examples of one command run in order (later ones may use earlier
    // ones' files), commands at once.
    let results: Vec<Vec<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(name, found)| scope.spawn(move || run_examples(name, found)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    failures.extend(results.into_iter().flatten());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn examples_are_read_with_their_exit_codes() {
    let text = "Usage: x\n\nExamples:\n  # plain\n  acgbulk a\n\n  # bad rows (exit 1)\n  acgbulk b\n  # a server (runs until Ctrl-C)\n  acgbulk c\n  acgbulk d | head\n  acgbulk e \\\n    --flag \\\n    && acgbulk f\n";
    let found = examples(text);
    let got: Vec<(&str, Expect)> = found.iter().map(|e| (e.line.as_str(), e.expect)).collect();
    assert_eq!(
        got,
        [
            ("acgbulk a", Expect::Exit(0)),
            ("acgbulk b", Expect::Exit(1)),
            ("acgbulk c", Expect::Server),
            ("acgbulk d | head", Expect::Exit(0)),
            ("acgbulk e --flag && acgbulk f", Expect::Exit(0)),
        ]
    );
}
