//! `acgbulk rfis update`: record the customer relationship of many
//! Requests for Information, with a results file and a checkpoint (flags:
//! `acgbulk rfis update --help`).
//!
//! FILE has `tenantId`, `customerRelationship_status`,
//! `customerRelationship_comment` and optionally
//! `customerRelationship_ticketId` (at most 64 characters); an RFI export
//! edited will do. Declining or terminating needs a comment.

use super::flags::{ConnectionArgs, JsonArgs, ReadArgs, RunArgs};
use super::job;
use super::Status;
use acgbulk::rfis;
use acgbulk::rowjob::Layout;
use acgbulk::sheet::table::read_table;
use anyhow::Context;
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// PATCH the customer relationship of each RFI in a sheet
    Update(UpdateArgs),
}

/// The examples at the end of `--help`, each run by tests/help_examples.rs.
pub const RFIS_UPDATE_EXAMPLES: &str = "\
Examples:
  # Record a signed agreement: a sheet of tenantId and the new relationship
  echo 'tenantId,customerRelationship_status,customerRelationship_comment' > signed.csv
  echo '7e4a0002-0000-4000-8000-000000000002,agreementSigned,on the phone' >> signed.csv
  acgbulk rfis update signed.csv

  # Export the RFIs, edit the relationship columns, and send them back
  # (exit 1: one demo RFI has no relationship status, and is reported invalid)
  acgbulk export rfis -o rfis.csv && acgbulk rfis update rfis.csv
";

#[derive(clap::Args, Debug)]
#[command(after_long_help = RFIS_UPDATE_EXAMPLES)]
pub struct UpdateArgs {
    /// The sheet (CSV or a spreadsheet)
    pub input: PathBuf,

    #[command(flatten)]
    pub run: RunArgs,

    #[command(flatten)]
    pub read: ReadArgs,

    #[command(flatten)]
    pub summary: JsonArgs,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

pub fn run(command: Command) -> anyhow::Result<Status> {
    let Command::Update(args) = command;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let table = read_table(
            &args.input,
            &args.read.sheet_options(),
            &rfis::known_columns(),
            &rfis::REQUIRED,
        )?;
        let (operations, refused) = rfis::read_updates(&table);
        let connected = args.connection.connect(None).await?;
        let layout = Layout {
            action: "update",
            key_column: "tenantId",
            extra_columns: &[],
        };
        let options = args.run.options(
            "rfis-update",
            &args.input,
            String::new(),
            layout,
            &args.connection,
        );
        let client = connected.client.clone();
        let status = job::run(
            args.summary.json,
            &options,
            operations,
            refused,
            move |operation, attempt| Box::pin(rfis::patch(client.clone(), operation, attempt)),
        )
        .await;
        connected.close().await?;
        status
    })
}
