//! `acgbulk emulator`: run the local emulator of the Provisioning API (and
//! of the ACS number search), for trials and tests; its flags are in
//! `acgbulk emulator --help`.
//!
//! The first line on stdout is exactly `listening on http://HOST:PORT`.
//! Ctrl-C (or SIGTERM on Unix) stops it cleanly (the state is saved).

use super::flags::{parse_rate, RateLimit};
use super::Status;
use acgbulk::emulator::acs::AcsConfig;
use acgbulk::emulator::auth::Client;
use acgbulk::emulator::{Emulator, EmulatorConfig, Faults, IpNet, SeedSource, TlsSource};
use anyhow::Context;
use azure_core::credentials::SecretBytes;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The examples at the end of `--help`, each run by tests/help_examples.rs.
pub const EMULATOR_EXAMPLES: &str = "\
Examples:
  # An emulator for trials on a free port, its data kept in lab.json (runs until Ctrl-C)
  acgbulk emulator --listen 127.0.0.1:0 --state lab.json

  # Empty, and asking for tokens from its own token endpoint (runs until Ctrl-C)
  acgbulk emulator --listen 127.0.0.1:0 --empty --auth entra \\
    --client lab-app:lab-secret:Admin
";

/// Run a local emulator of the ACG Provisioning API
#[derive(clap::Args, Debug)]
#[command(after_long_help = EMULATOR_EXAMPLES)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port
    #[arg(long, default_value = "127.0.0.1:7171")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub options: EmulatorArgs,
}

/// The emulator's behaviour, shared with `--emulator` on import commands.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct EmulatorArgs {
    /// Load the data from this JSON file at start (if it exists) and save it
    /// there atomically at stop and every few seconds while it changes
    #[arg(long, value_name = "FILE", help_heading = "Emulator")]
    pub state: Option<PathBuf>,

    /// Starting data (accounts, numbers, civic addresses, RFIs) from a JSON
    /// file instead of the built-in demo set
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "empty",
        help_heading = "Emulator"
    )]
    pub seed: Option<PathBuf>,

    /// Start with no data at all
    #[arg(long, help_heading = "Emulator")]
    pub empty: bool,

    /// Requests a minute across the API (a batch counts as one), or `off`
    #[arg(long, value_name = "N/min", default_value = "100/min", value_parser = parse_rate, help_heading = "Emulator")]
    pub rate_limit: RateLimit,

    /// Requests allowed at once before the pace applies [default: a minute's worth]
    #[arg(long, value_name = "N", help_heading = "Emulator")]
    pub rate_burst: Option<u32>,

    /// Items per list page when the client does not say
    #[arg(
        long,
        value_name = "N",
        default_value_t = 100,
        help_heading = "Emulator"
    )]
    pub default_page_size: usize,

    /// The largest page the server gives, whatever the client asks
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1000,
        help_heading = "Emulator"
    )]
    pub max_page_size: usize,

    /// How long backend sync takes before a pending resource is synced or failed
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration, help_heading = "Emulator")]
    pub sync_delay: Duration,

    /// How long a client may take to send a request's headers (and a new
    /// connection's TLS handshake) before the connection is closed
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration, help_heading = "Emulator")]
    pub header_timeout: Duration,

    /// How long repeatability ids are remembered
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = humantime::parse_duration, help_heading = "Emulator")]
    pub repeatability_window: Duration,

    /// Whether API requests need a token
    #[arg(long, value_enum, value_name = "MODE", default_value_t = EmulatorAuth::None, help_heading = "Emulator auth")]
    pub auth: EmulatorAuth,

    /// A client the token endpoint accepts, as ID:SECRET:ROLE[,ROLE] (roles
    /// Admin, Read, Write, Delete); these are test credentials
    #[arg(long = "client", value_name = "ID:SECRET:ROLES", value_parser = Client::parse_secret, help_heading = "Emulator auth")]
    pub clients: Vec<Client>,

    /// A client that signs assertions with this certificate's key, as
    /// ID:CERT.pem:ROLE[,ROLE]
    #[arg(long = "client-certificate", value_name = "ID:CERT:ROLES", value_parser = Client::parse_certificate, help_heading = "Emulator auth")]
    pub client_certificates: Vec<Client>,

    /// Serve an App Service managed identity at /msi/token for clients
    /// that send this X-IDENTITY-HEADER, as HEADER:ROLE[,ROLE]
    #[arg(long, value_name = "HEADER:ROLES", value_parser = Client::parse_managed_identity, help_heading = "Emulator auth")]
    pub managed_identity: Option<Client>,

    /// Lifetime of the tokens it issues
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = humantime::parse_duration, help_heading = "Emulator auth")]
    pub token_lifetime: Duration,

    /// The audience tokens must carry
    #[arg(long, value_name = "URL", default_value = acgbulk::emulator::auth::DEFAULT_AUDIENCE, help_heading = "Emulator auth")]
    pub audience: String,

    /// Seed of the random faults, so a run can be repeated
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        help_heading = "Emulator faults"
    )]
    pub fault_seed: u64,

    /// Share of API requests answered 500 or 503 without being applied (0 to 1)
    #[arg(
        long,
        value_name = "P",
        default_value_t = 0.0,
        help_heading = "Emulator faults"
    )]
    pub fault_rate: f64,

    /// Share of successful writes whose connection is closed with no answer
    /// after the write was applied (0 to 1)
    #[arg(
        long,
        value_name = "P",
        default_value_t = 0.0,
        help_heading = "Emulator faults"
    )]
    pub drop_after_commit_rate: f64,

    /// Delay added to every API request, in milliseconds
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 0,
        help_heading = "Emulator faults"
    )]
    pub latency: u64,

    /// Serve HTTPS with this certificate (PEM; with --tls-key)
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        help_heading = "Emulator TLS"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM)
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert",
        help_heading = "Emulator TLS"
    )]
    pub tls_key: Option<PathBuf>,

    /// Serve HTTPS with a certificate made now, and write the CA certificate
    /// clients must trust (--ca-cert) to FILE
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "tls_cert",
        help_heading = "Emulator TLS"
    )]
    pub tls_self_signed: Option<PathBuf>,

    /// Only these addresses or networks may call the API (comma-separated);
    /// others get 403, as from the gateway's IP allowlist
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = IpNet::parse, help_heading = "Emulator")]
    pub allowed_ips: Vec<IpNet>,

    /// Accept Azure Communication Services requests signed with this access
    /// key (base64; a test key for the emulator, as in --client). Clients
    /// use the connection string endpoint=URL;accesskey=BASE64
    #[arg(long, value_name = "BASE64", value_parser = parse_access_key, conflicts_with = "acs_access_key_file", help_heading = "Emulator ACS")]
    pub acs_access_key: Option<AccessKey>,

    /// As --acs-access-key, read from FILE
    #[arg(long, value_name = "FILE", help_heading = "Emulator ACS")]
    pub acs_access_key_file: Option<PathBuf>,

    /// The most numbers one search finds (fewer than asked: a partial result)
    #[arg(long, value_name = "N", help_heading = "Emulator ACS")]
    pub acs_stock: Option<u32>,

    /// Area codes whose searches fail with OutOfStock (comma-separated; * for all)
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        help_heading = "Emulator ACS"
    )]
    pub acs_out_of_stock: Vec<String>,

    /// How long a search or purchase operation runs before it ends
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration, help_heading = "Emulator ACS")]
    pub acs_operation_delay: Duration,

    /// How long a search holds the numbers it found
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = humantime::parse_duration, help_heading = "Emulator ACS")]
    pub acs_reservation: Duration,
}

/// Whether the emulator asks for tokens.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EmulatorAuth {
    /// Any request is let in
    #[default]
    None,
    /// Requests need a token from the emulator's own token endpoint
    Entra,
}

/// An ACS access key; `Debug` does not show it.
#[derive(Clone)]
pub struct AccessKey(pub SecretBytes);

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessKey(hidden)")
    }
}

/// A base64 access key.
pub fn parse_access_key(text: &str) -> Result<AccessKey, String> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .filter(|k| !k.is_empty())
        .map(|k| AccessKey(SecretBytes::new(k)))
        .ok_or_else(|| "the access key is not base64".to_owned())
}

impl EmulatorArgs {
    pub fn config(&self, listen: SocketAddr) -> anyhow::Result<EmulatorConfig> {
        if self.header_timeout.is_zero() {
            anyhow::bail!("--header-timeout must be longer than 0");
        }
        let access_key = match (&self.acs_access_key, &self.acs_access_key_file) {
            (Some(key), _) => Some(key.0.clone()),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the access key file {}", path.display())
                })?;
                Some(
                    parse_access_key(&text)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
                        .0,
                )
            }
            (None, None) => None,
        };
        let clients: Vec<Client> = self
            .clients
            .iter()
            .chain(&self.client_certificates)
            .cloned()
            .collect();
        Ok(EmulatorConfig {
            listen,
            state: self.state.clone(),
            seed: match (&self.seed, self.empty) {
                (Some(path), _) => SeedSource::File(path.clone()),
                (None, true) => SeedSource::Empty,
                (None, false) => SeedSource::Demo,
            },
            rate_limit: self.rate_limit.0,
            rate_burst: self.rate_burst,
            default_page_size: self.default_page_size.max(1),
            max_page_size: self.max_page_size.max(1),
            sync_delay: self.sync_delay,
            repeatability_window: self.repeatability_window,
            clients: (self.auth == EmulatorAuth::Entra).then_some(clients),
            managed_identity: self.managed_identity.clone(),
            token_lifetime: self.token_lifetime,
            audience: self.audience.clone(),
            faults: Faults {
                seed: self.fault_seed,
                fault_rate: self.fault_rate,
                drop_after_commit_rate: self.drop_after_commit_rate,
                latency: Duration::from_millis(self.latency),
            },
            tls: match (&self.tls_cert, &self.tls_key, &self.tls_self_signed) {
                (Some(cert), Some(key), _) => Some(TlsSource::Files {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                (_, _, Some(ca_out)) => Some(TlsSource::SelfSigned {
                    ca_out: ca_out.clone(),
                }),
                _ => None,
            },
            allowed_ips: self.allowed_ips.clone(),
            acs: AcsConfig {
                access_key,
                stock: self.acs_stock,
                out_of_stock: self.acs_out_of_stock.clone(),
                operation_delay: self.acs_operation_delay,
                reservation: self.acs_reservation,
            },
            header_timeout: self.header_timeout,
            ..EmulatorConfig::default()
        })
    }
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    if args.options.auth == EmulatorAuth::Entra
        && args.options.clients.is_empty()
        && args.options.client_certificates.is_empty()
    {
        anyhow::bail!(
            "--auth entra needs at least one --client ID:SECRET:ROLES or --client-certificate"
        );
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let emulator = Emulator::start(args.options.config(args.listen)?).await?;
        // Listening before the line that says the emulator is ready, so a
        // SIGTERM sent the moment it is read still saves the state.
        let stop = super::signal::StopSignals::listen();
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {}", emulator.url)?;
        stdout.flush()?;
        drop(stdout);
        eprintln!(
            "acgbulk emulator: rate limit {}, auth {}, ACS search {}, stats at {}/_emulator/stats; Ctrl-C stops",
            args.options
                .rate_limit
                .0
                .map_or("off".to_owned(), |r| format!("{r}/min")),
            match args.options.auth {
                EmulatorAuth::None => "none",
                EmulatorAuth::Entra => "entra",
            },
            if args.options.acs_access_key.is_some() || args.options.acs_access_key_file.is_some() {
                "with an access key"
            } else if args.options.auth == EmulatorAuth::Entra {
                "with Entra ID tokens"
            } else {
                "open"
            },
            emulator.url
        );
        stop.requested().await;
        eprintln!("acgbulk emulator: stopping");
        emulator.stop().await?;
        anyhow::Ok(())
    })?;
    Ok(Status::Done)
}
