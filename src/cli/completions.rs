//! `acgbulk completions SHELL`: print a completion script for a shell,
//! generated from the same clap definitions as the command line itself, so
//! it knows every subcommand and flag of this build.

use super::Status;
use anyhow::Context;
use clap::CommandFactory;
use std::io::Write;

/// The shells a completion script can be written for.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

impl From<Shell> for clap_complete::Shell {
    fn from(shell: Shell) -> Self {
        match shell {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
            Shell::Powershell => clap_complete::Shell::PowerShell,
        }
    }
}

pub const EXAMPLES: &str = "\
Examples:
  # Completions for this bash session
  source <(acgbulk completions bash)

  # Install for zsh (a directory on $fpath)
  acgbulk completions zsh > _acgbulk

  # Install for fish
  acgbulk completions fish > acgbulk.fish
";

/// Print a shell completion script on standard output
#[derive(clap::Args, Debug)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let mut command = super::Cli::command();
    // Into memory first: clap_complete panics when its writer fails, and
    // `acgbulk completions bash | head` closes the pipe early.
    let mut script = Vec::new();
    clap_complete::generate(
        clap_complete::Shell::from(args.shell),
        &mut command,
        "acgbulk",
        &mut script,
    );
    match std::io::stdout().lock().write_all(&script) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(error).context("cannot write the completion script")
        }
        _ => Ok(Status::Done),
    }
}
