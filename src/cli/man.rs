//! `acgbulk man [-o DIR]`: write the manual pages, `acgbulk.1` and one
//! page per subcommand (`acgbulk-import.1`, `acgbulk-accounts-import.1`,
//! ...), generated from the same clap definitions as `--help`.

use super::flags::OutputArgs;
use super::Status;
use anyhow::Context;
use clap::CommandFactory;
use std::path::Path;

pub const EXAMPLES: &str = "\
Examples:
  # Install the pages for this user, then read one
  acgbulk man -o man1
  # (for real: acgbulk man -o ~/.local/share/man/man1 && man acgbulk-import)

  # Write the pages into the current directory
  acgbulk man
";

/// Write the manual pages (roff): acgbulk.1 and one per subcommand
#[derive(clap::Args, Debug)]
#[command(after_long_help = EXAMPLES)]
#[command(mut_arg("output", |a| a
    .value_name("DIR")
    .help("The directory to write the pages in, created if missing [default: the current directory]")))]
pub struct Args {
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let dir = args.output.output.as_deref().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(super::Cli::command(), dir)
        .with_context(|| format!("cannot write the manual pages in {}", dir.display()))?;
    eprintln!("wrote the manual pages in {}", dir.display());
    Ok(Status::Done)
}
