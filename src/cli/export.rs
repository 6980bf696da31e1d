//! `acgbulk export`: write what the gateway holds to CSV or Excel.
//!
//! ```text
//! acgbulk export numbers|accounts|rfis|civic-addresses [--account NAME]... -o FILE
//!                [--format csv|xlsx] [--page-size N] [--restart] [--json]
//!                [--endpoint URL | --emulator] [auth options]
//! ```
//!
//! A stopped export run again with the same command continues where it
//! stopped (its checkpoint is `FILE.checkpoint`). Exit 0 when done, 2 on
//! errors, 3 when stopped early.

use super::connect::ConnectionArgs;
use super::{ui, Status};
use acgbulk::export::{self, Collection, ExportOptions, Format};
use anyhow::Context;
use std::path::PathBuf;
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

/// Export numbers, accounts, RFIs or civic addresses to CSV or Excel
#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to export
    #[arg(value_enum)]
    pub what: What,

    /// Only these accounts (numbers and civic addresses; repeat the flag)
    #[arg(long = "account", value_name = "NAME")]
    pub accounts: Vec<String>,

    /// The output file
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,

    /// csv or xlsx [default: from the output's extension]
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,

    /// Items per page asked of the service (it may give fewer)
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub page_size: usize,

    /// Start over even if an unfinished export of the same output is there
    #[arg(long)]
    pub restart: bool,

    /// Print the summary as JSON on standard output
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let format = match args.format {
        Some(FormatArg::Csv) => Format::Csv,
        Some(FormatArg::Xlsx) => Format::Xlsx,
        None if args
            .output
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("xlsx")) =>
        {
            Format::Xlsx
        }
        None => Format::Csv,
    };
    let out = std::path::absolute(&args.output).unwrap_or(args.output.clone());
    let mut checkpoint = out.clone().into_os_string();
    checkpoint.push(".checkpoint");
    let options = ExportOptions {
        collection: match args.what {
            What::Numbers => Collection::Numbers,
            What::Accounts => Collection::Accounts,
            What::Rfis => Collection::Rfis,
            What::CivicAddresses => Collection::CivicAddresses,
        },
        accounts: args.accounts.clone(),
        out,
        format,
        page_size: args.page_size.max(1),
        checkpoint: PathBuf::from(checkpoint),
        restart: args.restart,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let connected = args.connection.connect(None).await?;
        let (stop, signals) = super::stop_on_signal(None);
        let bar = ui::bar(None, "rows");
        let progress = {
            let bar = bar.clone();
            Arc::new(move |rows: u64, total: Option<u64>| {
                if let Some(total) = total {
                    bar.set_length(total);
                }
                bar.set_position(rows);
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
            Err(e) if e.unwritable().is_some() => {
                return Ok(ui::stopped_to_continue(e.into(), &options.checkpoint));
            }
            Err(e) => return Err(e.into()),
        };
        if args.json {
            ui::print_json(&summary)?;
        }
        eprintln!(
            "{}{} {} {} to {} ({} pages, {} requests, {:.1} s)",
            if summary.resumed { "continued: " } else { "" },
            if summary.stopped {
                "stopped after"
            } else {
                "exported"
            },
            ui::thousands(summary.rows),
            summary.kind,
            summary.out.display(),
            summary.pages,
            summary.requests,
            summary.elapsed_seconds
        );
        Ok(if summary.stopped {
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
