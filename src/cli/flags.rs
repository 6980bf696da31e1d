//! Every flag that more than one command takes, defined and documented once
//! here: each group is a clap `Args` struct that the commands flatten, and a
//! flag's doc comment is its help text. A command's own module keeps only
//! the flags no other command has, and turns its flags into the library's
//! options in one place (its `options` or `job` function).
//!
//! Conventions (the README's "Renamed flags" lists the old spellings, which
//! stay as hidden aliases):
//! - a field is named as its flag, in snake_case (`--rate-limit` is
//!   `rate_limit`), which is also the key a configuration file will use;
//! - `--default-account` fills a missing account, `--only-account` filters;
//! - `-o/--output` wherever a single output is written;
//! - secrets are never a flag's value: only the environment or a file.
//!
//! A command that needs a group with one flag's requirement changed (say
//! `--output` required) says so with `#[command(mut_arg(..))]` beside its
//! own flags, so the flag itself is still defined only here.

use acgbulk::client::auth;
use acgbulk::runner::Settings;
use acgbulk::sheet::{ColumnMapping, SheetOptions};
use acgbulk::validate::RuleOptions;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The defaults that are numbers; the others are in the flags'
/// `default_value`s below.
pub mod defaults {
    /// Requests (batches, rows or searches) in flight at once.
    pub const CONCURRENCY: usize = 8;
    /// Items per page asked of the service.
    pub const PAGE_SIZE: usize = 1000;
    /// The pace assumed when there is no rate limit (the API's own).
    pub const RATE_PER_MINUTE: u32 = 100;
}

/// Where a command writes beside its input by default: `dir/numbers.csv`
/// -> `dir/numbers{suffix}`; standard input -> `stdin{suffix}`.
pub fn beside(input: &Path, suffix: &str) -> PathBuf {
    if input == Path::new("-") {
        return PathBuf::from(format!("stdin{suffix}"));
    }
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if acgbulk::sheet::input::is_stream(input) {
        // A device or a pipe: like standard input, its files go in the
        // current directory (nothing can be written beside /dev/stdin).
        return PathBuf::from(format!("{stem}{suffix}"));
    }
    input.with_file_name(format!("{stem}{suffix}"))
}

/// A results file's checkpoint: `x.results.csv` -> `x.results.csv.checkpoint`.
pub fn checkpoint_of(results: &Path) -> PathBuf {
    let mut name = results.to_owned().into_os_string();
    name.push(".checkpoint");
    PathBuf::from(name)
}

// ---------------------------------------------------------------- kept settings

/// The settings of a flag group, to keep in a checkpoint: each field under
/// its flag's name in snake_case. A group whose flags a run keeps derives
/// `Serialize` and `Deserialize`, so a new flag in it is kept (and taken
/// back by [`resolve`]) with no more code.
pub fn settings_of<T: Serialize>(group: &T) -> Settings {
    match serde_json::to_value(group) {
        Ok(serde_json::Value::Object(settings)) => settings,
        _ => unreachable!("a flag group is a JSON object"),
    }
}

/// Flags that go together: when the first is given, the others are not
/// taken from the checkpoint (a run's `--emulator` does not outlive an
/// `--endpoint` given to its resume).
const TOGETHER: [(&str, &[&str]); 2] = [
    ("endpoint", &["emulator", "emulator_state"]),
    ("emulator", &["endpoint"]),
];

/// Whether the user gave the flag `id` (on the command line or through
/// its environment variable) rather than its default.
pub fn given(matches: &clap::ArgMatches, id: &str) -> bool {
    matches.ids().any(|known| known.as_str() == id)
        && matches!(
            matches.value_source(id),
            Some(clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable)
        )
}

/// The one resolve step of a resumed run's settings, for a flag group:
/// a flag given (on the command line or through its environment variable)
/// wins; otherwise the value `kept` in the checkpoint; otherwise the
/// default. A kept value this version cannot read is ignored with a note.
pub fn resolve<T: Serialize + DeserializeOwned>(
    group: &T,
    kept: &Settings,
    matches: &clap::ArgMatches,
) -> T {
    let mut settings = settings_of(group);
    let held_back: Vec<&str> = TOGETHER
        .iter()
        .filter(|(first, _)| given(matches, first))
        .flat_map(|(_, others)| others.iter().copied())
        .collect();
    for (key, now) in settings.iter_mut() {
        if given(matches, key) || held_back.contains(&key.as_str()) {
            continue;
        }
        let Some(value) = kept.get(key) else { continue };
        let mut one = settings_of(group);
        one.insert(key.clone(), value.clone());
        match serde_json::from_value::<T>(serde_json::Value::Object(one)) {
            Ok(_) => *now = value.clone(),
            Err(e) => tracing::warn!("the checkpoint's {key} cannot be used ({e}); using {now}"),
        }
    }
    serde_json::from_value(serde_json::Value::Object(settings))
        .expect("each kept value was checked")
}

/// The settings an import or a delete keeps in its checkpoint, as flag
/// groups: the connection (endpoint, authentication without secrets, pace,
/// retries, time-outs), concurrency, the stop grace, backend sync and
/// `--keep-checkpoint`. A flag added to one of these groups is kept too.
/// (The batch size, sheet and validation options are in the checkpoint's
/// header: they decide the plan, which a resume cannot change.)
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub connection: ConnectionArgs,
    pub concurrency: ConcurrencyArgs,
    pub stop: StopArgs,
    /// None for a command without the flags (delete).
    pub sync: Option<SyncArgs>,
    pub keep: KeepCheckpointArgs,
}

impl RunSettings {
    /// What the checkpoint keeps.
    pub fn settings(&self) -> Settings {
        let mut settings = settings_of(&self.connection);
        settings.extend(settings_of(&self.concurrency));
        settings.extend(settings_of(&self.stop));
        if let Some(sync) = &self.sync {
            settings.extend(settings_of(sync));
        }
        settings.extend(settings_of(&self.keep));
        settings
    }

    /// These flags resolved against a checkpoint's `kept` settings.
    pub fn resolve(&self, kept: &Settings, matches: &clap::ArgMatches) -> RunSettings {
        RunSettings {
            connection: resolve(&self.connection, kept, matches),
            concurrency: resolve(&self.concurrency, kept, matches),
            stop: resolve(&self.stop, kept, matches),
            sync: self.sync.as_ref().map(|sync| resolve(sync, kept, matches)),
            keep: resolve(&self.keep, kept, matches),
        }
    }
}

// ---------------------------------------------------------------- output

/// A machine-readable summary, and progress for whoever watches the run.
/// `main` reads both from the parsed command line (`ui::init_output`), so
/// every command that flattens this group has them.
#[derive(clap::Args, Debug, Clone)]
pub struct JsonArgs {
    /// Print the summary as one JSON object on standard output (nothing
    /// else goes there); the README's "JSON output" lists its keys
    #[arg(long, help_heading = "Output")]
    pub json: bool,

    /// When standard error is not a terminal (a CI log, a journal), print
    /// a progress line this often; a terminal gets a live bar instead
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = positive_duration, help_heading = "Output")]
    pub progress_interval: Duration,
}

/// A duration above zero, such as `30s` or `1m`.
fn positive_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(duration) if duration.is_zero() => Err("give a duration above zero".to_owned()),
        Ok(duration) => Ok(duration),
        Err(e) => Err(e.to_string()),
    }
}

/// The one file a command writes. Optional here; the commands that must
/// have it make it required.
#[derive(clap::Args, Debug, Clone)]
pub struct OutputArgs {
    /// The output file
    #[arg(
        short = 'o',
        long,
        value_name = "FILE",
        alias = "out",
        help_heading = "Output"
    )]
    pub output: Option<PathBuf>,
}

impl OutputArgs {
    /// The output of a command that declares `--output` required.
    pub fn required(&self) -> &Path {
        self.output
            .as_deref()
            .expect("the command declares --output required")
    }
}

/// Where the validation report goes.
#[derive(clap::Args, Debug, Clone)]
pub struct ReportArgs {
    /// The validation report, one line per finding (`validate` also takes
    /// `-` for standard output) [default: INPUT's name with .report.csv,
    /// beside it]
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub report: Option<PathBuf>,
}

impl ReportArgs {
    pub fn path(&self, input: &Path) -> PathBuf {
        self.report
            .clone()
            .unwrap_or_else(|| beside(input, ".report.csv"))
    }
}

/// The valid numbers, written as they would be sent.
#[derive(clap::Args, Debug, Clone)]
pub struct CleanArgs {
    /// Also write the valid numbers exactly as they would be sent: one row
    /// per number after ranges, canonical numbers and values, in the
    /// portal's column format (review it, then import it as it is); `-`
    /// writes them to standard output
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub write_clean: Option<PathBuf>,
}

// ---------------------------------------------------------------- runs

/// Requests in flight at once.
#[derive(clap::Args, Debug, Clone, Serialize, Deserialize)]
pub struct ConcurrencyArgs {
    /// Requests in flight at once: batches, rows or searches (the rate
    /// limit still paces every request)
    #[arg(long, value_name = "N", default_value_t = defaults::CONCURRENCY, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), help_heading = "Run")]
    pub concurrency: usize,
}

/// Whether an unfinished run is continued or begun again.
#[derive(clap::Args, Debug, Clone)]
pub struct RestartArgs {
    /// Start over even if the checkpoint holds an unfinished run
    #[arg(long, help_heading = "Run")]
    pub restart: bool,
}

/// Whether a finished run's checkpoint stays.
#[derive(clap::Args, Debug, Clone, Serialize, Deserialize)]
pub struct KeepCheckpointArgs {
    /// Keep the checkpoint of a finished run (it is removed otherwise,
    /// except after an import or delete with batches that failed without a
    /// usable answer, which `acgbulk resume --retry-failed` sends again)
    #[arg(long, help_heading = "Run")]
    pub keep_checkpoint: bool,
}

/// What a job writes (a results file and its checkpoint) and how many
/// requests it keeps in flight: import, delete, accounts, rfis.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// The results file, one line per number or row
    /// [default: INPUT's name with .results.csv, beside it]
    #[arg(long, value_name = "FILE", help_heading = "Run")]
    pub results: Option<PathBuf>,

    /// The checkpoint to continue from [default: RESULTS.checkpoint]
    #[arg(long, value_name = "FILE", help_heading = "Run")]
    pub checkpoint: Option<PathBuf>,

    #[command(flatten)]
    pub restart: RestartArgs,

    #[command(flatten)]
    pub keep: KeepCheckpointArgs,

    #[command(flatten)]
    pub concurrency: ConcurrencyArgs,
}

impl RunArgs {
    /// The results file: `--results`, or beside the input.
    pub fn results_of(&self, input: &Path) -> PathBuf {
        self.results
            .clone()
            .unwrap_or_else(|| beside(input, ".results.csv"))
    }

    /// The checkpoint: `--checkpoint`, or beside the results.
    pub fn checkpoint_of(&self, results: &Path) -> PathBuf {
        self.checkpoint
            .clone()
            .unwrap_or_else(|| checkpoint_of(results))
    }
}

/// How numbers are cut into batch requests.
#[derive(clap::Args, Debug, Clone)]
pub struct BatchArgs {
    /// Numbers per batch request (at most 100)
    #[arg(long, value_name = "N", default_value_t = MAX_BATCH as u32, value_parser = clap::value_parser!(u32).range(1..=MAX_BATCH as i64), help_heading = "Run")]
    pub batch_size: u32,
}

const MAX_BATCH: usize = acgbulk::plan::MAX_BATCH_SIZE;

/// How a stopped batch run ends.
#[derive(clap::Args, Debug, Clone, Serialize, Deserialize)]
pub struct StopArgs {
    /// On Ctrl-C or SIGTERM, how long to wait for answers in flight before
    /// saving the checkpoint and exiting
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration, help_heading = "Run")]
    pub stop_grace: Duration,
}

/// Sending only the valid rows.
#[derive(clap::Args, Debug, Clone)]
pub struct SkipInvalidArgs {
    /// Go on with the valid rows and leave out the invalid ones (marked
    /// invalid in the results), instead of refusing the whole sheet
    #[arg(long, help_heading = "Run")]
    pub skip_invalid: bool,
}

/// How many numbers one run may delete: a count, or a percentage of the
/// numbers provisioned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxDelete {
    Count(u64),
    Percent(f64),
}

impl MaxDelete {
    /// The limit in numbers when `provisioned` numbers are provisioned
    /// (rounded down: a limit is never more than was asked).
    pub fn limit(self, provisioned: u64) -> u64 {
        match self {
            MaxDelete::Count(n) => n,
            MaxDelete::Percent(p) => (provisioned as f64 * p / 100.0).floor() as u64,
        }
    }

    /// Reconcile's limit when none is given: 1 % of the provisioned
    /// numbers or 100, whichever is larger.
    pub fn reconcile_default(provisioned: u64) -> u64 {
        MaxDelete::Percent(1.0).limit(provisioned).max(100)
    }
}

impl std::fmt::Display for MaxDelete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxDelete::Count(n) => write!(f, "{n}"),
            MaxDelete::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// `N` (numbers) or `N%` (of the numbers provisioned; 0 to 100, decimals
/// allowed).
pub fn parse_max_delete(text: &str) -> Result<MaxDelete, String> {
    let bad = || {
        format!("'{text}' is not a limit: give a number of numbers such as 500, or a percentage of the provisioned numbers from 0% to 100% such as 5%")
    };
    let trimmed = text.trim();
    match trimmed.strip_suffix('%') {
        Some(percent) => {
            let p: f64 = percent.trim().parse().map_err(|_| bad())?;
            if p.is_finite() && (0.0..=100.0).contains(&p) {
                Ok(MaxDelete::Percent(p))
            } else {
                Err(bad())
            }
        }
        None => trimmed
            .parse::<u64>()
            .map(MaxDelete::Count)
            .map_err(|_| bad()),
    }
}

/// The guard on how much one run may delete.
#[derive(clap::Args, Debug, Clone)]
pub struct MaxDeleteArgs {
    /// Delete nothing (send nothing, exit 2) when the plan would delete
    /// more than N numbers, or more than N% of the numbers provisioned
    /// [reconcile --apply: 1% of the provisioned numbers or 100, whichever
    /// is larger; delete and accounts delete --with-numbers: no limit]
    #[arg(long, value_name = "N|N%", value_parser = parse_max_delete, allow_hyphen_values = true, help_heading = "Run")]
    pub max_delete: Option<MaxDelete>,
}

/// Waiting for backend sync after the writes.
#[derive(clap::Args, Debug, Clone, Serialize, Deserialize)]
pub struct SyncArgs {
    /// After the writes, wait until backend sync has finished for every
    /// number, and record its outcome
    #[arg(long, help_heading = "Backend sync")]
    pub wait_sync: bool,

    /// How long --wait-sync waits at most
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration, help_heading = "Backend sync")]
    pub sync_timeout: Duration,

    /// Pause between --wait-sync polls
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration, help_heading = "Backend sync")]
    pub sync_poll: Duration,
}

/// How an import or a delete runs.
#[derive(clap::Args, Debug, Clone)]
#[command(mut_arg("write_clean", |a| a.requires("dry_run")))]
pub struct SendArgs {
    #[command(flatten)]
    pub run: RunArgs,

    #[command(flatten)]
    pub report: ReportArgs,

    /// Show the plan (accounts, batches, requests, time) and send nothing
    #[arg(long, help_heading = "Run")]
    pub dry_run: bool,

    #[command(flatten)]
    pub clean: CleanArgs,

    #[command(flatten)]
    pub skip_invalid: SkipInvalidArgs,

    #[command(flatten)]
    pub batch: BatchArgs,

    #[command(flatten)]
    pub stop: StopArgs,
}

/// Items per page of a listing.
#[derive(clap::Args, Debug, Clone, Serialize, Deserialize)]
pub struct PageArgs {
    /// Items per page asked of the service when listing (it may give fewer)
    #[arg(long, value_name = "N", default_value_t = defaults::PAGE_SIZE, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), help_heading = "Run")]
    pub page_size: usize,
}

/// Which accounts a listing covers.
#[derive(clap::Args, Debug, Clone)]
pub struct OnlyAccountArgs {
    /// Only these accounts (repeat the flag) [default: every account]
    #[arg(long, value_name = "NAME", help_heading = "Run")]
    pub only_account: Vec<String>,
}

// ---------------------------------------------------------------- sheets

/// How to read a sheet.
#[derive(clap::Args, Debug, Clone)]
pub struct ReadArgs {
    /// CSV delimiter: `,`, `;` or `tab` [default: detected from the heading line]
    #[arg(long, value_parser = acgbulk::csvconf::parse_delimiter, help_heading = "Reading")]
    pub delimiter: Option<u8>,

    /// Spreadsheet sheet to read, by name or 1-based position; `all`, or a
    /// list such as `London,Leeds`, reads several sheets as one (a sheet
    /// with no heading row is skipped with a note) [default: the first]
    #[arg(long, value_name = "NAME|INDEX|all|LIST", help_heading = "Reading")]
    pub sheet: Option<String>,

    /// Skip columns whose heading is unknown, instead of refusing the sheet
    #[arg(long, help_heading = "Reading")]
    pub ignore_unknown_columns: bool,

    /// The row that holds the headings [default: the first of the first 20
    /// rows whose cells are all known or mapped headings]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Reading")]
    pub header_row: Option<u64>,

    /// Read the column headed HEADING as FIELD (a heading of the portal's
    /// format), e.g. --map "Phone Number=telephoneNumber"; headings match
    /// without regard to case and surrounding spaces; repeat for more
    #[arg(long = "map", value_name = "HEADING=FIELD", value_parser = ColumnMapping::parse, help_heading = "Reading")]
    pub map: Vec<ColumnMapping>,
}

impl ReadArgs {
    pub fn sheet_options(&self) -> SheetOptions {
        SheetOptions {
            delimiter: self.delimiter,
            sheet: self.sheet.clone(),
            ignore_unknown_columns: self.ignore_unknown_columns,
            header_row: self.header_row,
            map: self.map.clone(),
        }
    }
}

/// How to read a sheet of numbers.
#[derive(clap::Args, Debug, Clone)]
pub struct NumberSheetArgs {
    #[command(flatten)]
    pub read: ReadArgs,

    /// Account for rows that have none: when the sheet has no accountName
    /// column, or for its empty cells
    #[arg(long, value_name = "NAME", alias = "account", help_heading = "Reading")]
    pub default_account: Option<String>,
}

/// Which rules a number must pass, and how numbers may be rewritten.
#[derive(clap::Args, Debug, Clone)]
pub struct RuleArgs {
    /// Rewrite numbers written with spaces, dashes, dots or brackets, or
    /// with 00 for +; each rewrite is reported as a NORMALIZED warning
    #[arg(long, help_heading = "Validation")]
    pub normalize: bool,

    /// The country (ISO 3166, e.g. GB) of numbers written in national
    /// format: with --normalize for text cells, and always for spreadsheet
    /// numeric cells that lost their leading 0
    #[arg(long, value_name = "CC", value_parser = country, help_heading = "Validation")]
    pub default_country: Option<String>,

    /// Make NUMBER_NOT_VALID (libphonenumber's metadata says the number is
    /// not valid) a warning instead of an error, for ranges newer than the
    /// metadata
    #[arg(long, help_heading = "Validation")]
    pub allow_invalid_numbers: bool,

    /// The largest range of numbers one row may expand to
    #[arg(
        long,
        value_name = "N",
        default_value_t = RuleOptions::default().max_range,
        help_heading = "Validation"
    )]
    pub max_range: u64,
}

fn country(text: &str) -> Result<String, String> {
    acgbulk::phone::normalize::parse_country(text).map(|id| id.as_ref().to_owned())
}

impl RuleArgs {
    /// The rules for a sheet read with `sheet`.
    pub fn rule_options(&self, sheet: &NumberSheetArgs) -> RuleOptions {
        RuleOptions {
            allow_invalid_numbers: self.allow_invalid_numbers,
            normalize: self.normalize,
            default_country: self.default_country.clone(),
            max_range: self.max_range,
            account: sheet.default_account.clone(),
            numbers_only: false,
        }
    }
}

/// A flag kept so that old scripts still run; it changes nothing.
#[derive(clap::Args, Debug, Clone)]
pub struct StrictArgs {
    /// Accepted for compatibility: NUMBER_NOT_VALID is an error by default now
    #[arg(long, hide = true)]
    pub strict: bool,
}

// ---------------------------------------------------------------- services

/// Requests a minute, or no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit(pub Option<u32>);

/// `100/min`, `100` or `off`.
pub fn parse_rate(text: &str) -> Result<RateLimit, String> {
    if text.eq_ignore_ascii_case("off") || text == "0" {
        return Ok(RateLimit(None));
    }
    let number = text.strip_suffix("/min").unwrap_or(text);
    number
        .trim()
        .parse::<u32>()
        .map(|n| RateLimit(Some(n)))
        .map_err(|_| format!("'{text}' is not a rate: give N/min (for example 100/min) or off"))
}

/// Where the Provisioning API is, and how to reach and authenticate to it
/// (the client it makes is in `connect.rs`).
#[derive(clap::Args, Debug, Clone, Serialize, Deserialize)]
pub struct ConnectionArgs {
    /// The Provisioning API endpoint, `https://provapi.<domain>`
    #[arg(
        long,
        env = "ACG_ENDPOINT",
        value_name = "URL",
        help_heading = "Connection"
    )]
    pub endpoint: Option<url::Url>,

    /// Start an emulator in this process on a free port and use it instead
    /// of --endpoint (demo accounts; see `acgbulk emulator --help`)
    #[arg(long, conflicts_with = "endpoint", help_heading = "Connection")]
    pub emulator: bool,

    /// With --emulator: keep the emulator's data in this file between runs
    #[arg(
        long,
        value_name = "FILE",
        requires = "emulator",
        help_heading = "Connection"
    )]
    pub emulator_state: Option<PathBuf>,

    #[command(flatten)]
    #[serde(flatten)]
    pub transport: TransportArgs,

    /// The api-version to send
    #[arg(long, value_name = "VERSION", default_value = acgbulk::model::API_VERSION, help_heading = "Connection")]
    pub api_version: String,

    /// The scope of the Provisioning API
    #[arg(long, env = "ACG_SCOPE", value_name = "SCOPE", default_value = auth::DEFAULT_SCOPE, help_heading = "Authentication")]
    pub scope: String,

    #[command(flatten)]
    #[serde(flatten)]
    pub auth: AuthArgs,
}

/// How requests are paced, retried and secured, whatever the service.
#[derive(clap::Args, Debug, Clone, Serialize, Deserialize)]
pub struct TransportArgs {
    /// An extra trust root (PEM) for HTTPS, for private CAs; TLS is always
    /// verified; repeat for more
    #[arg(long, value_name = "FILE", help_heading = "Connection")]
    pub ca_cert: Vec<PathBuf>,

    /// Requests a minute for everything the run sends, polls included (the
    /// Provisioning API allows 100), or `off`; shared with every acgbulk
    /// process on this machine sending to the same endpoint
    #[arg(long, value_name = "N/min", default_value = "100/min", value_parser = parse_rate, help_heading = "Pacing")]
    pub rate_limit: RateLimit,

    /// Attempts for a request that meets 5xx, a time-out or a broken
    /// connection while the service answers other requests (during an
    /// outage requests retry until --outage-timeout)
    #[arg(long, value_name = "N", default_value_t = 6, help_heading = "Pacing")]
    pub max_attempts: u32,

    /// First wait before a retry; each later wait is four times longer
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration, help_heading = "Pacing")]
    pub retry_backoff: Duration,

    /// The longest wait between retries (the failover guidance waits about 60 s)
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration, help_heading = "Pacing")]
    pub max_backoff: Duration,

    /// Time limit of one request
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration, help_heading = "Pacing")]
    pub timeout: Duration,

    /// Stop the run (exit 3, resumable) when the service has answered no
    /// request for this long; 0 for no limit
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration, help_heading = "Pacing")]
    pub outage_timeout: Duration,
}

/// How a token is obtained.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    /// Pick from what is given: a token, a secret, a certificate, a managed
    /// identity, else none (always none with --emulator)
    Auto,
    /// No token
    None,
    /// A ready bearer token (ACG_TOKEN, ACS_TOKEN for `acs`, or --token-file)
    Token,
    /// Entra ID client secret (AZURE_CLIENT_SECRET or --client-secret-file)
    Secret,
    /// Entra ID client certificate (--certificate-path)
    Certificate,
    /// A managed identity (App Service or IMDS)
    ManagedIdentity,
}

/// How to get a token. Secrets come from the environment
/// (`AZURE_CLIENT_SECRET`, `ACG_TOKEN`, `AZURE_CLIENT_CERTIFICATE_PASSWORD`)
/// or from files, never from a flag's value, so they stay out of shell
/// history and process lists.
#[derive(clap::Args, Debug, Clone, Serialize, Deserialize)]
pub struct AuthArgs {
    /// How to authenticate
    #[arg(long, value_enum, value_name = "METHOD", default_value_t = AuthMode::Auto, help_heading = "Authentication")]
    pub auth: AuthMode,

    /// A file holding a bearer token (else ACG_TOKEN, or ACS_TOKEN for `acs`)
    #[arg(long, value_name = "FILE", help_heading = "Authentication")]
    pub token_file: Option<PathBuf>,

    /// Entra ID tenant of the application
    #[arg(
        long,
        env = "AZURE_TENANT_ID",
        value_name = "ID",
        help_heading = "Authentication"
    )]
    pub tenant_id: Option<String>,

    /// Application (client) id; for a managed identity, a user-assigned one
    #[arg(
        long,
        env = "AZURE_CLIENT_ID",
        value_name = "ID",
        help_heading = "Authentication"
    )]
    pub client_id: Option<String>,

    /// A file holding the client secret (else AZURE_CLIENT_SECRET)
    #[arg(long, value_name = "FILE", help_heading = "Authentication")]
    pub client_secret_file: Option<PathBuf>,

    /// The application's certificate: PEM with its key, or PKCS#12; its
    /// password, if any, from AZURE_CLIENT_CERTIFICATE_PASSWORD
    #[arg(
        long,
        env = "AZURE_CLIENT_CERTIFICATE_PATH",
        value_name = "FILE",
        alias = "client-certificate",
        help_heading = "Authentication"
    )]
    pub certificate_path: Option<PathBuf>,

    /// Entra ID authority
    #[arg(long, env = "AZURE_AUTHORITY_HOST", value_name = "URL", default_value = auth::DEFAULT_AUTHORITY, help_heading = "Authentication")]
    pub authority_host: String,
}

/// Where Azure Communication Services is and how to authenticate to it
/// (the client it makes is in `acs.rs`).
#[derive(clap::Args, Debug, Clone)]
pub struct AcsConnectionArgs {
    /// The resource's endpoint, https://<resource>.communication.azure.com,
    /// for Entra ID authentication (a connection string carries its own)
    #[arg(
        long,
        env = "ACS_ENDPOINT",
        value_name = "URL",
        help_heading = "Connection"
    )]
    pub endpoint: Option<url::Url>,

    /// A file holding the connection string endpoint=URL;accesskey=KEY
    /// (else ACS_CONNECTION_STRING); requests are signed with the key
    #[arg(long, value_name = "FILE", help_heading = "Connection")]
    pub connection_string_file: Option<PathBuf>,

    /// Start an emulator in this process on a free port, with a fresh
    /// access key, and use it
    #[arg(long, conflicts_with_all = ["endpoint", "connection_string_file"], help_heading = "Connection")]
    pub emulator: bool,

    #[command(flatten)]
    pub transport: TransportArgs,

    /// Between polls of an operation when the service gives no Retry-After
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration, help_heading = "Connection")]
    pub poll_interval: Duration,

    /// The longest a search or purchase may take
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration, help_heading = "Connection")]
    pub poll_timeout: Duration,

    /// The scope of Azure Communication Services, for Entra ID
    #[arg(long, env = "ACS_SCOPE", value_name = "SCOPE", default_value = acgbulk::acs::model::SCOPE, help_heading = "Authentication")]
    pub scope: String,

    #[command(flatten)]
    pub auth: AuthArgs,
}

#[cfg(test)]
mod tests {
    use super::{
        parse_max_delete, parse_rate, positive_duration, resolve, settings_of, MaxDelete,
        RateLimit, Settings,
    };
    use clap::{CommandFactory, FromArgMatches};
    use std::time::Duration;

    #[test]
    fn delete_limits_are_counts_or_percentages() {
        assert_eq!(parse_max_delete("500"), Ok(MaxDelete::Count(500)));
        assert_eq!(parse_max_delete("0"), Ok(MaxDelete::Count(0)));
        assert_eq!(parse_max_delete("5%"), Ok(MaxDelete::Percent(5.0)));
        assert_eq!(parse_max_delete("0.5%"), Ok(MaxDelete::Percent(0.5)));
        assert_eq!(parse_max_delete("100%"), Ok(MaxDelete::Percent(100.0)));
        for bad in ["12x", "-3", "101%", "-1%", "%", "", "NaN%", "inf%", "1.5"] {
            let error = parse_max_delete(bad).unwrap_err();
            assert!(error.contains("is not a limit"), "{bad}: {error}");
        }
        assert_eq!(MaxDelete::Percent(1.0).limit(15_050), 150);
        assert_eq!(MaxDelete::Percent(10.0).limit(15), 1);
        assert_eq!(MaxDelete::reconcile_default(500), 100);
        assert_eq!(MaxDelete::reconcile_default(25_000), 250);
    }

    #[test]
    fn a_progress_interval_is_above_zero() {
        assert_eq!(positive_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(positive_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(positive_duration("0s").unwrap_err().contains("above zero"));
        assert!(positive_duration("soon").is_err());
    }

    fn resume(args: &[&str]) -> (super::super::resume::Args, clap::ArgMatches) {
        let all = [&["acgbulk", "resume", "x.checkpoint"], args].concat();
        let matches = super::super::Cli::command()
            .try_get_matches_from(all)
            .unwrap();
        let given = matches.subcommand().unwrap().1.clone();
        (
            super::super::resume::Args::from_arg_matches(&given).unwrap(),
            given,
        )
    }

    #[test]
    fn a_given_flag_wins_then_the_kept_value_then_the_default() {
        let (run, given) = resume(&[]);
        let mut kept = settings_of(&run.connection);
        kept.insert("rate_limit".into(), 600.into());
        kept.insert("max_attempts".into(), 9.into());
        kept.insert("tenant_id".into(), "tenant-1".into());
        kept.insert("concurrency".into(), 5.into());
        kept.insert("endpoint".into(), "http://127.0.0.1:1/".into());
        let connection = resolve(&run.connection, &kept, &given);
        assert_eq!(connection.transport.rate_limit, RateLimit(Some(600)));
        assert_eq!(connection.transport.max_attempts, 9);
        assert_eq!(connection.auth.tenant_id.as_deref(), Some("tenant-1"));
        assert_eq!(resolve(&run.concurrency, &kept, &given).concurrency, 5);
        // Not kept: the default.
        assert_eq!(connection.api_version, acgbulk::model::API_VERSION);

        let (run, given) = resume(&["--rate-limit", "off", "--concurrency", "2", "--emulator"]);
        let connection = resolve(&run.connection, &kept, &given);
        assert_eq!(connection.transport.rate_limit, RateLimit(None));
        assert_eq!(connection.transport.max_attempts, 9);
        assert_eq!(resolve(&run.concurrency, &kept, &given).concurrency, 2);
        assert!(connection.emulator && connection.endpoint.is_none());

        // A kept value this version cannot read is left out.
        let odd: Settings = [("max_attempts".to_owned(), "many".into())]
            .into_iter()
            .collect();
        let (run, given) = resume(&[]);
        assert_eq!(
            resolve(&run.connection, &odd, &given)
                .transport
                .max_attempts,
            6
        );
    }

    #[test]
    fn kept_settings_are_the_flags_names_and_hold_no_secret() {
        let (run, _) = resume(&[]);
        let kept = settings_of(&run.connection);
        for key in [
            "endpoint",
            "rate_limit",
            "timeout",
            "auth",
            "tenant_id",
            "client_id",
        ] {
            assert!(kept.contains_key(key), "{key}: {kept:?}");
        }
        for key in kept.keys() {
            assert!(
                !key.contains("secret") || key.ends_with("_file"),
                "{key} would be a secret"
            );
        }
    }

    #[test]
    fn rates_are_per_minute_or_off() {
        assert_eq!(parse_rate("100/min"), Ok(RateLimit(Some(100))));
        assert_eq!(parse_rate("600"), Ok(RateLimit(Some(600))));
        assert_eq!(parse_rate("off"), Ok(RateLimit(None)));
        assert_eq!(parse_rate("OFF"), Ok(RateLimit(None)));
        assert_eq!(parse_rate("0"), Ok(RateLimit(None)));
        assert!(parse_rate("100/s").unwrap_err().contains("N/min"));
        assert!(parse_rate("fast").is_err());
    }
}
