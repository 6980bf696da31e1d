//! Helpers shared by the integration tests: running the real binary and
//! reading what it wrote.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_acgbulk"))
}

pub fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

/// The result of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Where the runs of the tests keep their shared rate budgets (one file
/// per emulator port), instead of the user's state directory.
pub fn test_state_dir() -> PathBuf {
    std::env::temp_dir().join("acgbulk-test-state")
}

/// Runs `acgbulk ARGS` in `dir` with no extra environment.
pub fn run(dir: &Path, args: &[&str]) -> Run {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("ACG_ENDPOINT")
        .env("ACGBULK_STATE_DIR", test_state_dir())
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
        .into()
}

/// Runs `acgbulk ARGS` in `dir` with `env` added to the environment.
pub fn run_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("ACG_ENDPOINT")
        .env_remove("ACS_CONNECTION_STRING")
        .env_remove("ACS_ENDPOINT")
        .env("ACGBULK_STATE_DIR", test_state_dir())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
        .into()
}

/// Runs `acgbulk ARGS` with `input` on standard input.
pub fn run_with_stdin(dir: &Path, args: &[&str], input: &[u8]) -> Run {
    use std::io::Write;
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env("ACGBULK_STATE_DIR", test_state_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap().into()
}

/// Reads a CSV file into rows of strings (heading row included).
pub fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// An emulator without a rate limit, seeded as `seed`, that reports a
/// number's backend sync after `sync_delay`: the settings most tests differ
/// in.
pub fn unlimited_emulator(
    sync_delay: std::time::Duration,
    seed: acgbulk::emulator::SeedSource,
) -> acgbulk::emulator::EmulatorConfig {
    acgbulk::emulator::EmulatorConfig {
        rate_limit: None,
        sync_delay,
        seed,
        ..acgbulk::emulator::EmulatorConfig::default()
    }
}

/// A clean generated sheet (`acgbulk sample`'s) of `rows` single numbers
/// over `accounts` demo accounts, written to `dir/name`.
pub fn clean_sheet(dir: &Path, name: &str, rows: u64, accounts: usize, seed: u64) -> PathBuf {
    let path = dir.join(name);
    let file = std::fs::File::create(&path).unwrap();
    acgbulk::sample::write_csv(
        file,
        acgbulk::sample::SampleOptions {
            rows,
            seed,
            accounts,
            mistakes: 0.0,
            ranges: 0.0,
            range_size: 1,
        },
    )
    .unwrap();
    path
}

/// The numbers a sheet holds (its first column, E.164), with their
/// accounts (its second).
pub fn sheet_numbers(path: &Path) -> BTreeMap<u64, String> {
    read_csv(path)
        .into_iter()
        .skip(1)
        .map(|r| (r[0][1..].parse().unwrap(), r[1].clone()))
        .collect()
}

/// A results file's lines, each a map from heading to value.
pub fn results(path: &Path) -> Vec<BTreeMap<String, String>> {
    let rows = read_csv(path);
    let headings = rows[0].clone();
    rows[1..]
        .iter()
        .map(|r| headings.iter().cloned().zip(r.iter().cloned()).collect())
        .collect()
}

/// The emulator holds each number of `input` once, written once, and the
/// results hold one `ok` line per number.
pub fn assert_exactly_once(server: &Server, input: &Path, results_path: &Path) {
    assert_eq!(server.numbers(), sheet_numbers(input));
    let stats = server.stats();
    assert_eq!(
        stats.max_writes_per_number, 1,
        "no write applied twice: {stats:?}"
    );
    let lines = results(results_path);
    let expected = sheet_numbers(input).len();
    assert_eq!(lines.len(), expected, "one line per number");
    assert!(
        lines.iter().all(|l| l["outcome"] == "ok"),
        "every number ok: {:?}",
        lines.iter().find(|l| l["outcome"] != "ok")
    );
    let mut numbers: Vec<&str> = lines
        .iter()
        .map(|l| l["telephoneNumber"].as_str())
        .collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), expected, "each number once");
}

/// An emulator on its own runtime, for tests that run the binary against
/// it; stopped (its state saved) when dropped.
pub struct Server {
    runtime: tokio::runtime::Runtime,
    emulator: Option<acgbulk::emulator::Emulator>,
}

impl Server {
    pub fn start(config: acgbulk::emulator::EmulatorConfig) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let emulator = runtime
            .block_on(acgbulk::emulator::Emulator::start(config))
            .expect("the emulator starts");
        Server {
            runtime,
            emulator: Some(emulator),
        }
    }

    pub fn emulator(&self) -> &acgbulk::emulator::Emulator {
        self.emulator.as_ref().expect("running")
    }

    pub fn url(&self) -> String {
        self.emulator().url.clone()
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.emulator().addr
    }

    pub fn stats(&self) -> acgbulk::emulator::Stats {
        self.emulator().stats()
    }

    /// The numbers the emulator holds, with their accounts.
    pub fn numbers(&self) -> std::collections::BTreeMap<u64, String> {
        self.emulator().with_store(|store| {
            store
                .numbers
                .iter()
                .map(|(n, r)| (*n, r.account.to_string()))
                .collect()
        })
    }

    pub fn stop(mut self) {
        let emulator = self.emulator.take().expect("running");
        self.runtime.block_on(emulator.stop()).unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(emulator) = self.emulator.take() {
            let _ = self.runtime.block_on(emulator.stop());
        }
    }
}

// ------------------------------------------------------------ strict JSON

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// A JSON value whose objects had no key twice: serde_json would keep the
/// last of two equal keys without a word (as `jq` does), so this visitor
/// refuses them, at any depth.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Strict, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Strict, E> {
        serde_json::Number::from_f64(v)
            .map(|n| Strict(Value::Number(n)))
            .ok_or_else(|| E::custom("not a finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_owned())))
    }

    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Strict(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if object.insert(key.clone(), value).is_some() {
                return Err(de::Error::custom(format!("the key {key:?} is there twice")));
            }
        }
        Ok(Strict(Value::Object(object)))
    }
}

/// `text` as exactly one JSON value with no repeated key.
pub fn parse_strict(text: &str) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let Strict(value) = Strict::deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}
