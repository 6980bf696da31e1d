//! The command line: one module per subcommand, saying in a sentence what
//! it does (its flags and their help are clap's: `acgbulk CMD --help`).
//! Flags that several commands take are defined once, in `flags`. This
//! layer parses flags, wires the library together, draws progress and
//! prints summaries; errors become messages and exit codes here and
//! nowhere else.

mod accounts;
mod acs;
mod completions;
mod config;
mod connect;
mod emulator;
mod export;
mod flags;
mod guard;
mod import;
mod job;
mod man;
mod profile;
mod reconcile;
mod resume;
mod rfis;
mod sample;
mod signal;
mod ui;
mod validate;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

/// Exit codes, the same for every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything done.
    Done = 0,
    /// Some rows failed or were invalid.
    RowsFailed = 1,
    /// Usage, input or configuration error.
    Fatal = 2,
    /// Stopped early; resumable.
    Stopped = 3,
}

impl Status {
    /// The status of a run that stopped early, from why it stopped (a stop
    /// without a reason of its own is resumable).
    pub fn stopped(reason: Option<&acgbulk::runner::StopReason>) -> Status {
        match reason.map(acgbulk::runner::StopReason::exit_code) {
            Some(code) if code == Status::Fatal as u8 => Status::Fatal,
            _ => Status::Stopped,
        }
    }
}

/// Why a run stopped, in words, for the line that says it stopped.
pub fn reason_words(reason: Option<&acgbulk::runner::StopReason>) -> String {
    reason.map_or_else(|| "unknown reason".to_owned(), ToString::to_string)
}

/// A stop that Ctrl-C or SIGTERM cancels (saying `message` first, if
/// given), and the task that waits for them, to abort when the run ends.
pub fn stop_on_signal(
    message: Option<&'static str>,
) -> (acgbulk::runner::Stop, tokio::task::JoinHandle<()>) {
    let token = tokio_util::sync::CancellationToken::new();
    let cancel = token.clone();
    let requested = signal::StopSignals::listen();
    let signals = tokio::spawn(async move {
        requested.requested().await;
        if let Some(message) = message {
            eprintln!("{message}");
        }
        cancel.cancel();
    });
    (acgbulk::runner::Stop::new(token), signals)
}

/// The examples at the end of `acgbulk --help`: a first day, then a
/// daily routine; each is run by tests/help_examples.rs.
const EXAMPLES: &str = "\
Examples:
  # Check a sheet offline (exit 1: this one has mistakes)
  acgbulk validate samples/mistakes.csv

  # Try an import on an emulator in this process, and export what it holds
  acgbulk import samples/operator-connect.csv --emulator \\
    --emulator-state lab.json \\
    && acgbulk export numbers --emulator --emulator-state lab.json -o lab.csv

  # Into the gateway in ACG_ENDPOINT (credentials from the environment)
  acgbulk import samples/direct-routing.csv

  # Every morning: does the gateway still match the sheet?
  acgbulk reconcile samples/direct-routing.csv --live -o drift
";

const ACCOUNTS_EXAMPLES: &str = "\
Examples:
  # Create an account from a sheet with a name column (and any others)
  echo 'name,correlationId' > new.csv
  echo 'lab-trial,crm-0042' >> new.csv
  acgbulk accounts import new.csv --mode create
";

const RFIS_EXAMPLES: &str = "\
Examples:
  # Record a signed agreement
  echo 'tenantId,customerRelationship_status' > signed.csv
  echo '7e4a0002-0000-4000-8000-000000000002,agreementSigned' >> signed.csv
  acgbulk rfis update signed.csv
";

const ACS_EXAMPLES: &str = "\
Examples:
  # Search an ACS emulator in this process for two numbers
  acgbulk acs search --emulator --country US --type geographic \\
    --assignment person --quantity 2
";

#[derive(Parser)]
#[command(
    after_long_help = EXAMPLES,
    name = "acgbulk",
    version,
    about = "Bulk provisioning of phone numbers into Azure Communications Gateway",
    long_about = "Bulk provisioning of phone numbers into Azure Communications Gateway through its \
Provisioning API: validate sheets offline, import and delete at the rate limit with exact resume, \
export and reconcile, and run a local emulator of the API.\n\n\
Exit codes: 0 all done, 1 some rows failed or were invalid, 2 usage, input or configuration \
error, 3 the run stopped early (resumable)."
)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG
    /// takes precedence.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// Take the connection settings not given as flags or in the
    /// environment from this profile of the config file (README "Profiles")
    #[arg(long, env = "ACGBULK_PROFILE", value_name = "NAME", global = true)]
    profile: Option<String>,

    /// The config file holding the profiles [default:
    /// $XDG_CONFIG_HOME/acgbulk/config.toml, else ~/.config/acgbulk/config.toml]
    #[arg(long, env = "ACGBULK_CONFIG", value_name = "FILE", global = true)]
    config: Option<std::path::PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Validate(validate::Args),
    Import(Box<import::Args>),
    Delete(Box<import::DeleteArgs>),
    Resume(Box<resume::Args>),
    Export(Box<export::Args>),
    Reconcile(Box<reconcile::Args>),
    /// Create, update or delete accounts in bulk
    #[command(subcommand, after_long_help = ACCOUNTS_EXAMPLES)]
    Accounts(Box<accounts::Command>),
    /// Update Requests for Information in bulk
    #[command(subcommand, after_long_help = RFIS_EXAMPLES)]
    Rfis(Box<rfis::Command>),
    /// Search Azure Communication Services for numbers to buy, and buy them
    #[command(subcommand, after_long_help = ACS_EXAMPLES)]
    Acs(Box<acs::Command>),
    Emulator(Box<emulator::Args>),
    Sample(sample::Args),
    Completions(completions::Args),
    Man(man::Args),
    /// Show the effective connection settings (profiles, environment, flags)
    #[command(subcommand, after_long_help = config::CONFIG_EXAMPLES)]
    Config(Box<config::Command>),
}

pub fn main() -> ExitCode {
    // The matches say which flags were given rather than defaulted: a
    // given flag wins over a setting kept in a checkpoint.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let given = matches
        .subcommand()
        .map(|(_, given)| given.clone())
        .unwrap_or_default();
    ui::init_logging(cli.verbose);
    ui::init_output(output_settings(&matches));
    let result = profile::load(cli.profile.as_deref(), cli.config.as_deref()).and_then(|chosen| {
        profile::install(chosen, leaf_of(&matches).clone());
        run(cli.command, given, &matches)
    });
    let status = match result {
        Ok(status) => status,
        Err(error) => {
            ui::print_error(&error);
            ui::json_error(format!("{error:#}"));
            Status::Fatal
        }
    };
    ui::finish_json(status as u8);
    ExitCode::from(status as u8)
}

/// The deepest subcommand's matches: they say which of its flags were given.
fn leaf_of(matches: &clap::ArgMatches) -> &clap::ArgMatches {
    let mut leaf = matches;
    while let Some((_, sub)) = leaf.subcommand() {
        leaf = sub;
    }
    leaf
}

fn run(
    command: Command,
    given: clap::ArgMatches,
    matches: &clap::ArgMatches,
) -> anyhow::Result<Status> {
    match command {
        Command::Validate(args) => validate::run(args),
        Command::Import(args) => import::run(args.job(given)),
        Command::Delete(args) => import::run(args.job(given)),
        Command::Resume(args) => resume::run(*args, &given),
        Command::Export(args) => export::run(*args),
        Command::Reconcile(args) => reconcile::run(*args),
        Command::Accounts(command) => accounts::run(*command),
        Command::Rfis(command) => rfis::run(*command),
        Command::Acs(command) => acs::run(*command),
        Command::Emulator(args) => emulator::run(*args),
        Command::Sample(args) => sample::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
        Command::Config(command) => config::run(*command, leaf_of(matches)),
    }
}

/// The command as typed (`accounts import`) and its `--json` and
/// `--progress-interval` (defined once, in `flags::JsonArgs`), read from
/// the matches so that no command has to pass them on.
fn output_settings(matches: &clap::ArgMatches) -> ui::OutputSettings {
    let mut names = Vec::new();
    let mut leaf = matches;
    while let Some((name, sub)) = leaf.subcommand() {
        names.push(name);
        leaf = sub;
    }
    ui::OutputSettings {
        command: names.join(" "),
        json: matches!(leaf.try_get_one::<bool>("json"), Ok(Some(true))),
        progress_interval: leaf
            .try_get_one::<std::time::Duration>("progress_interval")
            .ok()
            .flatten()
            .copied(),
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Clap's own checks of every command: no two flags with one name, no
    /// requirement naming a flag the command lacks, and so on.
    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
