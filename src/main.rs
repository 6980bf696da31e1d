//! The `acgbulk` command: parses the command line and hands each command to
//! its module in `cli/`. All the work is done by the `acgbulk` library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
