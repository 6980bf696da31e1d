//! `acgbulk accounts`: create, update or delete accounts in bulk, with a
//! results file and a checkpoint (flags: `acgbulk accounts import --help`,
//! `acgbulk accounts delete --help`).
//!
//! ACCOUNTS has the columns the accounts export writes (`name`,
//! `correlationId`, `serviceDetails_teamsTenantId`, each service's
//! `_enabled` and `_syncEnabled`, Direct Routing's configuration); a
//! delete needs only `name`.

use super::connect::Connected;
use super::flags::{ConnectionArgs, JsonArgs, MaxDelete, MaxDeleteArgs, ReadArgs, RunArgs};
use super::guard::DeleteLimit;
use super::job;
use super::{ui, Status};
use acgbulk::accounts::{self, Mode};
use acgbulk::rowjob::{Layout, Operation};
use acgbulk::sheet::table::read_table;
use anyhow::Context;
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Create, update or upsert the accounts of a sheet
    Import(ImportArgs),
    /// Delete the accounts of a sheet
    Delete(DeleteArgs),
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModeArg {
    /// Only new accounts: If-None-Match: *
    Create,
    /// Only existing accounts: If-Match with the ETag just read
    Update,
    /// Whichever applies
    Upsert,
}

/// The examples at the end of `--help`, each run by tests/help_examples.rs.
pub const ACCOUNTS_IMPORT_EXAMPLES: &str = "\
Examples:
  # Create an account from a sheet with a name column (and any others)
  echo 'name,correlationId' > new.csv
  echo 'lab-trial,crm-0042' >> new.csv
  acgbulk accounts import new.csv --mode create

  # Update accounts from an edited export (ETags guard each change)
  acgbulk export accounts -o accounts.csv && grep -e '^name' -e '^contoso' accounts.csv > edited.csv
  acgbulk accounts import edited.csv --mode update
";

#[derive(clap::Args, Debug)]
#[command(after_long_help = ACCOUNTS_IMPORT_EXAMPLES)]
pub struct ImportArgs {
    /// The accounts sheet (CSV or a spreadsheet)
    pub input: PathBuf,

    /// What to do with each account
    #[arg(long, value_enum, default_value = "upsert")]
    pub mode: ModeArg,

    #[command(flatten)]
    pub run: RunArgs,

    #[command(flatten)]
    pub read: ReadArgs,

    #[command(flatten)]
    pub summary: JsonArgs,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// The examples at the end of `--help`, each run by tests/help_examples.rs.
pub const ACCOUNTS_DELETE_EXAMPLES: &str = "\
Examples:
  # Delete one account (created first, for the example)
  echo 'name' > trial.csv && echo 'lab-trial' >> trial.csv
  acgbulk accounts import trial.csv && acgbulk accounts delete trial.csv --results gone.csv

  # An account that still has numbers is refused, row by row (exit 1)
  acgbulk import samples/direct-routing.csv && echo name > full.csv && echo fabrikam >> full.csv \\
    && acgbulk accounts delete full.csv
";

#[derive(clap::Args, Debug)]
#[command(after_long_help = ACCOUNTS_DELETE_EXAMPLES)]
#[command(mut_arg("max_delete", |a| a.requires("with_numbers")))]
pub struct DeleteArgs {
    /// A sheet with a `name` column (an accounts export will do)
    pub input: PathBuf,

    /// Also release the accounts' numbers (?deleteNumbers=true); without it
    /// an account that holds numbers is not deleted
    #[arg(long)]
    pub with_numbers: bool,

    // The numbers --with-numbers would release, counted before any
    // account is deleted.
    #[command(flatten)]
    pub max_delete: MaxDeleteArgs,

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
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match command {
            Command::Import(args) => import(args).await,
            Command::Delete(args) => delete(args).await,
        }
    })
}

async fn import(args: ImportArgs) -> anyhow::Result<Status> {
    let mode = match args.mode {
        ModeArg::Create => Mode::Create,
        ModeArg::Update => Mode::Update,
        ModeArg::Upsert => Mode::Upsert,
    };
    let table = read_table(
        &args.input,
        &args.read.sheet_options(),
        &accounts::known_columns(),
        &["name"],
    )?;
    let (operations, refused) = accounts::read_accounts(&table);
    let connected = args.connection.connect(None).await?;
    let base = accounts::base_domain(&connected.endpoint);
    for operation in &operations {
        for warning in accounts::warnings(&operation.what, &base) {
            eprintln!(
                "warning: row {} ({}): {warning}",
                operation.row, operation.key
            );
        }
    }
    let options = args.run.options(
        "accounts-import",
        &args.input,
        mode.as_str().to_owned(),
        Layout {
            action: mode.as_str(),
            key_column: "name",
            extra_columns: &accounts::RESULT_COLUMNS,
        },
        &args.connection,
    );
    let client = connected.client.clone();
    let status = job::run(
        args.summary.json,
        &options,
        operations,
        refused,
        move |operation, attempt| {
            Box::pin(accounts::write(
                client.clone(),
                mode,
                base.clone(),
                operation,
                attempt,
            ))
        },
    )
    .await;
    connected.close().await?;
    status
}

async fn delete(args: DeleteArgs) -> anyhow::Result<Status> {
    let table = read_table(
        &args.input,
        &args.read.sheet_options(),
        &accounts::known_columns(),
        &["name"],
    )?;
    let (operations, refused) = accounts::read_names(&table);
    let connected = args.connection.connect(None).await?;
    if let (true, Some(max)) = (args.with_numbers, args.max_delete.max_delete) {
        if !within_delete_limit(max, &operations, &connected).await? {
            connected.close().await?;
            return Ok(Status::Fatal);
        }
    }
    let settings = format!("with-numbers={}", args.with_numbers);
    let layout = Layout {
        action: "delete",
        key_column: "name",
        extra_columns: &[],
    };
    let options = args.run.options(
        "accounts-delete",
        &args.input,
        settings,
        layout,
        &args.connection,
    );
    let client = connected.client.clone();
    let with_numbers = args.with_numbers;
    let status = job::run(
        args.summary.json,
        &options,
        operations,
        refused,
        move |operation, attempt| {
            Box::pin(accounts::delete(
                client.clone(),
                with_numbers,
                operation,
                attempt,
            ))
        },
    )
    .await;
    connected.close().await?;
    status
}

/// `accounts delete --with-numbers --max-delete`: the numbers the accounts
/// hold, counted (one request an account) before any is deleted; over the
/// limit, the accounts and their counts are shown with the line that
/// refuses them, and nothing is sent. A percentage is of the numbers
/// provisioned on the whole gateway.
async fn within_delete_limit(
    max: MaxDelete,
    operations: &[Operation<()>],
    connected: &Connected,
) -> anyhow::Result<bool> {
    let (_keep, mut no_stop) = tokio::sync::watch::channel(false);
    let names: Vec<String> = operations.iter().map(|o| o.key.clone()).collect();
    let held = acgbulk::guard::numbers_held(&connected.client, &names, &mut no_stop).await?;
    let provisioned = match max {
        MaxDelete::Count(_) => None,
        MaxDelete::Percent(_) => {
            Some(acgbulk::guard::count_numbers(&connected.client, None, &mut no_stop).await?)
        }
    };
    let releases: u64 = held.iter().sum();
    let limit = DeleteLimit::given(max, provisioned);
    let Some(line) = limit.refusal(releases, "the plan is above") else {
        return Ok(true);
    };
    let t = ui::thousands;
    eprintln!(
        "accounts delete --with-numbers: {} accounts holding {} numbers",
        t(names.len() as u64),
        t(releases)
    );
    let mut holding: Vec<(&String, u64)> = names.iter().zip(held).filter(|(_, n)| *n > 0).collect();
    holding.sort_by_key(|(_, numbers)| std::cmp::Reverse(*numbers));
    for (name, numbers) in holding.iter().take(20) {
        eprintln!("    {name:<24} {:>8} numbers", t(*numbers));
    }
    if holding.len() > 20 {
        eprintln!(
            "    ... and {} more accounts holding numbers",
            holding.len() - 20
        );
    }
    eprintln!("{line}");
    Ok(false)
}
