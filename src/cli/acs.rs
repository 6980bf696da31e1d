//! `acgbulk acs`: search Azure Communication Services for numbers to buy,
//! and buy what a search found (flags: `acgbulk acs search --help`,
//! `acgbulk acs purchase --help`).
//!
//! Credentials: ACS_CONNECTION_STRING or --connection-string-file (access
//! key), or --endpoint URL (ACS_ENDPOINT) with Entra ID, or --emulator. The
//! results (CSV, on stdout without -o) have a line per number found and a
//! line per search that found fewer than asked or failed.

use super::connect::Connected;
use super::flags::{AcsConnectionArgs, AuthMode, ConcurrencyArgs, JsonArgs, OutputArgs, ReadArgs};
use super::{ui, Status};
use acgbulk::acs::requests::{self, RequestCells, RequestError, SearchSpec};
use acgbulk::acs::search::{self, SearchSummary};
use acgbulk::acs::signing::{AccessKeySigner, ConnectionString};
use acgbulk::acs::AcsClient;
use acgbulk::acs::{purchase, PollOptions};
use acgbulk::client::auth::{Credential, TokenProvider};
use acgbulk::emulator::acs::AcsConfig;
use acgbulk::emulator::{Emulator, EmulatorConfig, SeedSource};
use acgbulk::sheet::table::read_table;
use anyhow::{bail, Context};
use azure_core::credentials::SecretBytes;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Search for numbers to buy: one search from flags, or many from a sheet
    Search(Box<SearchArgs>),
    /// Buy the numbers a search found (costs money: needs --yes)
    Purchase(Box<PurchaseArgs>),
}

/// The examples at the end of `--help`, each run by tests/help_examples.rs.
pub const ACS_SEARCH_EXAMPLES: &str = "\
Examples:
  # Three US numbers in area code 425, with ACS_CONNECTION_STRING set
  acgbulk acs search --country US --type geographic --assignment person \\
    --area-code 425 --quantity 3

  # The same on an ACS emulator in this process, results to a file
  acgbulk acs search --emulator --country US --type tollFree \\
    --assignment application --quantity 2 -o found.csv
";

#[derive(clap::Args, Debug)]
#[command(after_long_help = ACS_SEARCH_EXAMPLES)]
#[command(mut_arg("output", |a| a.help("Write the results CSV here instead of standard output (`-` is standard output)")))]
#[command(mut_arg("json", |a| a.requires("output")))]
pub struct SearchArgs {
    /// Country to search (ISO 3166 two letters, e.g. US)
    #[arg(long, value_name = "CC", conflicts_with = "requests", required_unless_present = "requests", requires_all = ["phone_number_type", "assignment"])]
    pub country: Option<String>,

    /// geographic or tollFree
    #[arg(long = "type", value_name = "TYPE", conflicts_with = "requests")]
    pub phone_number_type: Option<String>,

    /// person or application
    #[arg(long, value_name = "TYPE", conflicts_with = "requests")]
    pub assignment: Option<String>,

    /// none, inbound, outbound or inbound+outbound [default: inbound+outbound]
    #[arg(long, value_name = "C", conflicts_with = "requests")]
    pub calling: Option<String>,

    /// none, inbound, outbound or inbound+outbound [default: none]
    #[arg(long, value_name = "C", conflicts_with = "requests")]
    pub sms: Option<String>,

    /// Area code, e.g. 425
    #[arg(long, value_name = "N", conflicts_with = "requests")]
    pub area_code: Option<String>,

    /// How many numbers [default: 1]
    #[arg(long, value_name = "N", conflicts_with = "requests")]
    pub quantity: Option<String>,

    /// A sheet of searches: countryCode, phoneNumberType, assignmentType,
    /// calling, sms, areaCode, quantity
    #[arg(long, value_name = "FILE")]
    pub requests: Option<PathBuf>,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub concurrency: ConcurrencyArgs,

    #[command(flatten)]
    pub summary: JsonArgs,

    #[command(flatten)]
    pub read: ReadArgs,

    #[command(flatten)]
    pub connection: AcsConnectionArgs,
}

/// The examples at the end of `--help`, each run by tests/help_examples.rs.
pub const ACS_PURCHASE_EXAMPLES: &str = "\
Examples:
  # Search, then show what buying would cost; nothing is bought without --yes (exit 2)
  acgbulk acs search --country US --type geographic --assignment person \\
    --quantity 2 -o found.csv \\
    && acgbulk acs purchase --search-id \"$(tail -n 1 found.csv | cut -d, -f2)\"

  # Buy them (costs money)
  acgbulk acs search --country US --type geographic --assignment person \\
    --quantity 2 -o found.csv \\
    && acgbulk acs purchase --yes \\
    --search-id \"$(tail -n 1 found.csv | cut -d, -f2)\"
";

#[derive(clap::Args, Debug)]
#[command(after_long_help = ACS_PURCHASE_EXAMPLES)]
pub struct PurchaseArgs {
    /// The search whose numbers to buy (repeat for several)
    #[arg(long = "search-id", value_name = "ID", required = true)]
    pub search_ids: Vec<String>,

    /// Buy them: without it, only show what would be bought
    #[arg(long)]
    pub yes: bool,

    #[command(flatten)]
    pub summary: JsonArgs,

    #[command(flatten)]
    pub connection: AcsConnectionArgs,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl AcsConnectionArgs {
    async fn connect(&self) -> anyhow::Result<Connected<AcsClient>> {
        let (endpoint, access_key, emulator) = if self.emulator {
            let key: [u8; 32] = rand::random();
            let emulator = Emulator::start(EmulatorConfig {
                seed: SeedSource::Empty,
                rate_limit: None,
                acs: AcsConfig {
                    access_key: Some(SecretBytes::new(key.to_vec())),
                    ..AcsConfig::default()
                },
                ..EmulatorConfig::default()
            })
            .await
            .context("cannot start the in-process emulator")?;
            eprintln!(
                "emulator: {} (in this process, with a fresh access key)",
                emulator.url
            );
            (
                emulator.url.parse::<url::Url>()?,
                Some(SecretBytes::new(key.to_vec())),
                Some(emulator),
            )
        } else {
            let text = match &self.connection_string_file {
                Some(path) => Some(std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the connection string file {}", path.display())
                })?),
                None => env_nonempty("ACS_CONNECTION_STRING"),
            };
            match text {
                Some(text) => {
                    let source = match &self.connection_string_file {
                        Some(path) => path.display().to_string(),
                        None => "ACS_CONNECTION_STRING".to_owned(),
                    };
                    let parsed = ConnectionString::parse(&text)
                        .with_context(|| format!("{source}: not a connection string"))?;
                    if let Some(endpoint) = &self.endpoint {
                        if endpoint.origin() != parsed.endpoint.origin() {
                            bail!("--endpoint {endpoint} is not the endpoint of the connection string in {source} ({})", parsed.endpoint);
                        }
                    }
                    (parsed.endpoint, Some(parsed.access_key), None)
                }
                None => {
                    let endpoint = self.endpoint.clone().context(
                        "no credentials for Azure Communication Services: set ACS_CONNECTION_STRING (or --connection-string-file), \
                         or give --endpoint (ACS_ENDPOINT) with Entra ID credentials, or use --emulator",
                    )?;
                    (endpoint, None, None)
                }
            }
        };
        let connection = self
            .transport
            .connection(endpoint, acgbulk::acs::model::API_VERSION);
        let http = connection.http_client()?;
        let credential = if access_key.is_some() {
            Credential::None
        } else {
            self.auth.credential(false, "ACS_TOKEN")?
        };
        if access_key.is_none()
            && matches!(credential, Credential::None)
            && self.auth.auth != AuthMode::None
        {
            bail!(
                "no credentials for {}: set ACS_CONNECTION_STRING (or --connection-string-file), or Entra ID \
                 (AZURE_TENANT_ID and AZURE_CLIENT_ID with AZURE_CLIENT_SECRET or a certificate, or a managed identity); \
                 --auth none sends no credentials",
                connection.endpoint
            );
        }
        let provider = TokenProvider::new(credential, &self.scope, &self.auth.authority_host, http);
        provider.check()?;
        let endpoint = connection
            .endpoint
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        let pacer = self.transport.pacer(&connection.endpoint);
        let mut client = AcsClient::new(connection, provider, pacer, self.transport.policy())?;
        match access_key {
            Some(key) => {
                tracing::info!("signing requests with the access key");
                client = client.with_signer(Arc::new(AccessKeySigner::new(key)));
            }
            None => tracing::info!("authenticating as {}", client.auth().describe()),
        }
        Ok(Connected {
            client: Arc::new(client),
            endpoint,
            emulator,
        })
    }

    fn poll_options(&self) -> PollOptions {
        PollOptions {
            interval: self.poll_interval,
            timeout: self.poll_timeout,
        }
    }
}

pub fn run(command: Command) -> anyhow::Result<Status> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match command {
            Command::Search(args) => search(*args).await,
            Command::Purchase(args) => buy(*args).await,
        }
    })
}

fn print_request_errors(file: &str, errors: &[RequestError]) {
    for error in errors.iter().take(50) {
        eprintln!(
            "{file}: row {}, column {}: {}",
            error.row, error.column, error.message
        );
    }
    if errors.len() > 50 {
        eprintln!("  ... {} more", errors.len() - 50);
    }
}

/// The searches the flags or the sheet ask for.
fn specs(args: &SearchArgs) -> anyhow::Result<Result<Vec<SearchSpec>, Status>> {
    if let Some(path) = &args.requests {
        let table = read_table(
            path,
            &args.read.sheet_options(),
            &requests::COLUMNS,
            &requests::REQUIRED,
        )?;
        return Ok(match requests::read(&table) {
            Ok(specs) if specs.is_empty() => bail!("{}: no searches in it", table.file),
            Ok(specs) => Ok(specs),
            Err(errors) => {
                print_request_errors(&table.file, &errors);
                eprintln!(
                    "{}: {} problems; nothing was sent",
                    table.file,
                    errors.len()
                );
                Err(Status::Fatal)
            }
        });
    }
    let cells = RequestCells {
        country: args.country.as_deref(),
        phone_number_type: args.phone_number_type.as_deref(),
        assignment_type: args.assignment.as_deref(),
        calling: args.calling.as_deref(),
        sms: args.sms.as_deref(),
        area_code: args.area_code.as_deref(),
        quantity: args.quantity.as_deref(),
    };
    Ok(match requests::check(1, &cells) {
        Ok(spec) => Ok(vec![spec]),
        Err(errors) => {
            for error in errors {
                let flag = match error.column {
                    "countryCode" => "--country",
                    "phoneNumberType" => "--type",
                    "assignmentType" => "--assignment",
                    "areaCode" => "--area-code",
                    "calling" => "--calling",
                    "sms" => "--sms",
                    _ => "--quantity",
                };
                eprintln!("error: {flag}: {}", error.message);
            }
            Err(Status::Fatal)
        }
    })
}

async fn search(args: SearchArgs) -> anyhow::Result<Status> {
    let specs = match specs(&args)? {
        Ok(specs) => specs,
        Err(status) => return Ok(status),
    };
    // `-o -` is standard output, as when -o is not given.
    let file = args
        .output
        .output
        .as_deref()
        .filter(|path| *path != std::path::Path::new("-"));
    if file.is_none() && args.summary.json {
        anyhow::bail!("--json and the results CSV cannot both go to standard output: give -o FILE");
    }
    let connected = args.connection.connect().await?;
    let output: Box<dyn std::io::Write> = match file {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create the results file {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let mut writer = acgbulk::csvconf::writer(output);
    writer.write_record(search::COLUMNS)?;
    writer.flush()?;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let requested = super::signal::StopSignals::listen();
    let signals = tokio::spawn(async move {
        requested.requested().await;
        let _ = stop_tx.send(true);
    });
    let bar = ui::bar(Some(specs.len() as u64), "searches");
    let summary = search::run(
        connected.client.clone(),
        specs,
        args.concurrency.concurrency,
        args.connection.poll_options(),
        stop,
        |outcome| {
            bar.inc(1);
            search::write_outcome(&mut writer, outcome)
        },
    )
    .await;
    bar.finish_and_clear();
    signals.abort();
    let summary = summary.context("cannot write the results")?;
    connected.close().await?;
    if args.summary.json {
        ui::print_json(&SearchJson {
            summary: &summary,
            results: args.output.output.clone(),
            stop_reason: summary
                .stopped
                .then(|| acgbulk::runner::StopReason::Signal.to_string()),
        })?;
    }
    print_search_summary(&summary, file);
    Ok(if summary.stopped {
        Status::Stopped
    } else if summary.partial + summary.failed > 0 {
        Status::RowsFailed
    } else {
        Status::Done
    })
}

/// `acs search --json`: the summary, where its results are, and why it
/// stopped (searches stop early only on Ctrl-C or SIGTERM).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SearchJson<'a> {
    #[serde(flatten)]
    summary: &'a SearchSummary,
    results: Option<PathBuf>,
    stop_reason: Option<String>,
}

fn print_search_summary(summary: &SearchSummary, output: Option<&std::path::Path>) {
    let t = |n: u64| ui::thousands(n);
    eprintln!(
        "acs search: {} {}: {} complete, {} partial, {} failed{}; {} of {} numbers found",
        t(summary.searches as u64),
        if summary.searches == 1 {
            "search"
        } else {
            "searches"
        },
        t(summary.complete as u64),
        t(summary.partial as u64),
        t(summary.failed as u64),
        if summary.interrupted > 0 {
            format!(", {} interrupted", t(summary.interrupted as u64))
        } else {
            String::new()
        },
        t(summary.numbers_found),
        t(summary.numbers_requested)
    );
    for cost in &summary.cost {
        eprintln!(
            "  cost:     {:.2} {} {}",
            cost.amount, cost.currency_code, cost.billing_frequency
        );
    }
    if let Some(expiry) = &summary.earliest_expiry {
        eprintln!(
            "  reserved: until {expiry} (buy with acgbulk acs purchase --search-id ID --yes)"
        );
    }
    if !summary.errors.is_empty() {
        let list: Vec<String> = summary
            .errors
            .iter()
            .map(|(code, n)| format!("{code} ({n})"))
            .collect();
        eprintln!("  errors:   {}", list.join(", "));
    }
    if let Some(path) = output {
        eprintln!("  results:  {}", path.display());
    }
    if summary.stopped {
        eprintln!("stopped early: searches not sent are marked Stopped in the results; run them again to search for them");
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct PurchaseReport {
    search_id: String,
    numbers: usize,
    status: String,
    error: Option<String>,
    message: Option<String>,
}

async fn buy(args: PurchaseArgs) -> anyhow::Result<Status> {
    let connected = args.connection.connect().await?;
    let (_stop_tx, mut stop) = tokio::sync::watch::channel(false);
    let client = connected.client.clone();
    let mut reports = Vec::new();
    let mut status = Status::Done;
    for search_id in &args.search_ids {
        let reserved = match purchase::reserved(&client, search_id, &mut stop).await {
            Ok(result) => result,
            Err(error) => {
                eprintln!("search {search_id}: cannot read what it found: {error}");
                reports.push(PurchaseReport {
                    search_id: search_id.clone(),
                    numbers: 0,
                    status: "notBought".into(),
                    error: Some(error.code()),
                    message: Some(error.to_string()),
                });
                status = Status::RowsFailed;
                continue;
            }
        };
        let count = reserved.phone_numbers.len();
        eprintln!(
            "search {search_id}: {count} {} numbers at {} {} {} each, reserved until {}",
            reserved.phone_number_type,
            reserved.cost.amount,
            reserved.cost.currency_code,
            reserved.cost.billing_frequency,
            reserved.search_expires_by
        );
        if !args.yes {
            reports.push(PurchaseReport {
                search_id: search_id.clone(),
                numbers: count,
                status: "notBought".into(),
                error: None,
                message: Some("--yes was not given".into()),
            });
            continue;
        }
        let (state, error, message) = match purchase::purchase(
            &client,
            search_id,
            &args.connection.poll_options(),
            &mut stop,
        )
        .await
        {
            Ok(finished) if finished.succeeded() => {
                eprintln!(
                    "search {search_id}: bought {count} numbers (operation {})",
                    finished.operation.id
                );
                ("bought".to_owned(), None, None)
            }
            Ok(finished) => {
                let (code, text) = finished
                    .operation
                    .error
                    .map(|e| (e.code, e.message))
                    .unwrap_or_else(|| ("PurchaseFailed".into(), "no reason given".into()));
                eprintln!("search {search_id}: the purchase failed: {code}: {text}");
                status = Status::RowsFailed;
                ("failed".to_owned(), Some(code), Some(text))
            }
            Err(error @ acgbulk::acs::AcsError::Service { .. }) => {
                eprintln!("search {search_id}: the service refused the purchase: {error}");
                status = Status::RowsFailed;
                (
                    "refused".to_owned(),
                    Some(error.code()),
                    Some(error.to_string()),
                )
            }
            Err(error) => {
                eprintln!("search {search_id}: the purchase did not complete: {error}; check the resource's numbers before trying again");
                status = Status::RowsFailed;
                (
                    "unknown".to_owned(),
                    Some(error.code()),
                    Some(error.to_string()),
                )
            }
        };
        reports.push(PurchaseReport {
            search_id: search_id.clone(),
            numbers: count,
            status: state,
            error,
            message,
        });
    }
    connected.close().await?;
    if args.summary.json {
        let bought = reports.iter().filter(|r| r.status == "bought").count();
        ui::print_json(&serde_json::json!({
            "bought": bought,
            "purchases": reports,
        }))?;
    }
    if !args.yes {
        eprintln!("nothing bought: buying numbers costs money; add --yes to buy them");
        return Ok(Status::Fatal);
    }
    Ok(status)
}
