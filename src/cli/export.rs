//! `acgbulk export`: write what the gateway holds to CSV or Excel (flags:
//! `acgbulk export --help`).
//!
//! A stopped export run again with the same command continues where it
//! stopped (its checkpoint is `FILE.checkpoint`). Exit 0 when done, 2 on
//! errors, 3 when stopped early.

use super::flags::{
    settings_of, ConnectionArgs, JsonArgs, KeepCheckpointArgs, OnlyAccountArgs, OutputArgs,
    PageArgs, RestartArgs,
};
use super::{ui, Status};
use acgbulk::export::{self, Collection, ExportOptions, Format};
use anyhow::Context;
use std::sync::Arc;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    /// Numbers: import-sheet columns, then the read-only ones
    Numbers,
    /// Accounts, in the columns `accounts import` reads
    Accounts,
    /// Requests for Information, first contact in columns, all as JSON
    Rfis,
    /// Civic addresses, one row per location
    CivicAddresses,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatArg {
    Csv,
    Xlsx,
}

/// The examples at the end of `--help`, each run by tests/help_examples.rs.
pub const EXPORT_EXAMPLES: &str = "\
Examples:
  # Every number in the gateway in ACG_ENDPOINT, to CSV
  acgbulk export numbers -o numbers.csv

  # One account's numbers, to Excel
  acgbulk export numbers --only-account contoso -o contoso.xlsx

  # Accounts on standard output (no checkpoint: a stream cannot resume)
  acgbulk export accounts -o - | head -n 3

  # The demo data of an emulator in this process
  acgbulk export civic-addresses --emulator -o civic.csv
";

/// Export numbers, accounts, RFIs or civic addresses to CSV or Excel
#[derive(clap::Args, Debug)]
#[command(after_long_help = EXPORT_EXAMPLES)]
#[command(mut_arg("output", |a| a.required(true).help(
    "The output file: .xlsx for Excel, else CSV; `-` writes the CSV to standard output, \
     when it is complete (such an export keeps no checkpoint beside it: stopped, it starts \
     over when run again)"
)))]
#[command(mut_arg("only_account", |a| a.alias("account")))]
pub struct Args {
    /// What to export
    #[arg(value_enum)]
    pub what: What,

    // Numbers and civic addresses only: the other kinds are not per account.
    #[command(flatten)]
    pub only: OnlyAccountArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    /// csv or xlsx [default: from the output's extension]
    #[arg(long, value_enum, help_heading = "Output")]
    pub format: Option<FormatArg>,

    #[command(flatten)]
    pub page: PageArgs,

    #[command(flatten)]
    pub restart: RestartArgs,

    #[command(flatten)]
    pub keep: KeepCheckpointArgs,

    #[command(flatten)]
    pub summary: JsonArgs,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

impl Args {
    pub fn options(&self) -> ExportOptions {
        let output = self.output.required();
        let format = match self.format {
            Some(FormatArg::Csv) => Format::Csv,
            Some(FormatArg::Xlsx) => Format::Xlsx,
            None if output
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("xlsx")) =>
            {
                Format::Xlsx
            }
            None => Format::Csv,
        };
        let out = std::path::absolute(output).unwrap_or(output.to_owned());
        ExportOptions {
            collection: match self.what {
                What::Numbers => Collection::Numbers,
                What::Accounts => Collection::Accounts,
                What::Rfis => Collection::Rfis,
                What::CivicAddresses => Collection::CivicAddresses,
            },
            accounts: self.only.only_account.clone(),
            checkpoint: super::flags::checkpoint_of(&out),
            out,
            format,
            page_size: super::profile::apply(&self.page).page_size,
            restart: self.restart.restart,
            keep_checkpoint: self.keep.keep_checkpoint,
            settings: {
                let mut kept = settings_of(&self.connection);
                kept.extend(settings_of(&self.keep));
                kept
            },
        }
    }
}

/// Where an export to standard output is written first: a private
/// directory, removed when the export ends however it ends. The journal
/// and its checkpoint need a file, and nothing that cannot be taken back
/// may go to a pipe, so the CSV is copied out only once it is complete.
struct Spool(std::path::PathBuf);

impl Spool {
    fn new() -> anyhow::Result<Spool> {
        let dir = std::env::temp_dir().join(format!("acgbulk-export-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&dir)
            .with_context(|| format!("cannot create the spool directory {}", dir.display()))?;
        Ok(Spool(dir))
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let mut options = args.options();
    let to_stdout = args.output.required() == std::path::Path::new("-");
    let spool = if to_stdout {
        if options.format == Format::Xlsx {
            anyhow::bail!("-o - writes CSV: an .xlsx export needs a file name");
        }
        if args.summary.json {
            anyhow::bail!("--json and -o - both use standard output: give -o FILE");
        }
        let spool = Spool::new()?;
        options.out = spool.0.join("export.csv");
        options.checkpoint = super::flags::checkpoint_of(&options.out);
        options.restart = true;
        Some(spool)
    } else {
        None
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let connected = args.connection.connect(None).await?;
        let (stop, signals) = super::stop_on_signal(None);
        let bar = ui::bar(None, "rows");
        let progress = {
            let bar = bar.clone();
            let checkpoint = options.checkpoint.clone();
            // The first call says how many rows an unfinished export had
            // written: the bar (its rate and ETA) counts this run's rows.
            let first = std::sync::Mutex::new(None::<u64>);
            Arc::new(move |rows: u64, total: Option<u64>| {
                let mut first = first.lock().expect("lock");
                let base = *first.get_or_insert_with(|| {
                    if rows > 0 {
                        eprintln!(
                            "continuing the unfinished export in {}: {} rows done",
                            checkpoint.display(),
                            ui::thousands(rows)
                        );
                    }
                    rows
                });
                if let Some(total) = total {
                    bar.set_length(total.saturating_sub(base));
                }
                bar.set_position(rows.saturating_sub(base));
            })
        };
        let outcome = export::export(
            connected.client.clone(),
            &options,
            &connected.endpoint,
            &stop,
            &*progress,
        )
        .await;
        bar.finish_and_clear();
        signals.abort();
        connected.close().await?;
        let summary = match outcome {
            Ok(summary) => summary,
            // Every page before is in the file and the checkpoint.
            Err(e) if e.unwritable().is_some() && spool.is_none() => {
                return Ok(ui::stopped_to_continue(e.into(), &options.checkpoint));
            }
            Err(e) => return Err(e.into()),
        };
        if args.summary.json {
            ui::print_json(&summary)?;
        }
        let written_to = if spool.is_some() {
            "standard output".to_owned()
        } else {
            summary.out.display().to_string()
        };
        if spool.is_some() && !summary.stopped {
            let copied = std::fs::File::open(&options.out).and_then(|mut file| {
                std::io::copy(&mut file, &mut std::io::stdout().lock()).map(drop)
            });
            match copied {
                // A reader that stops early (`| head`) is not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                other => other.context("cannot write the export to standard output")?,
            }
        }
        eprintln!(
            "{}{} {} {} to {} ({}, {}, {:.1} s)",
            if summary.resumed { "continued: " } else { "" },
            if summary.stopped {
                "stopped after"
            } else {
                "exported"
            },
            ui::thousands(summary.rows),
            summary.kind,
            written_to,
            ui::plural(summary.pages, "page", "pages"),
            ui::plural(summary.requests, "request", "requests"),
            summary.elapsed_seconds
        );
        if summary.checkpoint_removed && spool.is_none() {
            eprintln!("  checkpoint: removed (the export finished; --keep-checkpoint keeps it)");
        }
        Ok(if summary.stopped && spool.is_some() {
            eprintln!(
                "nothing was written: an export to standard output starts over when run again"
            );
            Status::stopped(summary.stop_reason.as_ref())
        } else if summary.stopped {
            eprintln!(
                "run the same command again to continue from {}",
                options.checkpoint.display()
            );
            Status::stopped(summary.stop_reason.as_ref())
        } else {
            Status::Done
        })
    })
}
