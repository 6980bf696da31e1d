//! What the user sees on the terminal: logs, progress bars, errors.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// True when output may be coloured: stderr is a terminal and `NO_COLOR`
/// is not set.
pub fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Logs to stderr: `RUST_LOG` if set, else warnings, more with each `-v`.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // rustls logs a refused certificate as an error of its own; the
    // request's error already says it, in one line.
    let default = if verbose < 2 {
        format!("{default},rustls=off")
    } else {
        default.to_owned()
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color())
        .with_target(false)
        .try_init();
}

/// Prints an error and its causes for a human.
pub fn print_error(error: &anyhow::Error) {
    let mut message = format!("error: {error}");
    for cause in error.chain().skip(1) {
        message.push_str(&format!("\n  caused by: {cause}"));
    }
    eprintln!("{message}");
}

/// A file could not be written (a full disk): a stop, not a crash. Says
/// what failed, naming the file, and `then`, what to do once there is
/// room; the run is resumable (exit 3).
pub fn stopped_for_room(error: anyhow::Error, then: &str) -> super::Status {
    print_error(&error);
    eprintln!("{then}");
    super::Status::Stopped
}

/// As [`stopped_for_room`], for jobs that the same command continues from
/// their checkpoint (export, accounts, RFIs).
pub fn stopped_to_continue(error: anyhow::Error, checkpoint: &std::path::Path) -> super::Status {
    stopped_for_room(
        error,
        &format!(
            "stopped early; make room, then run the same command again to continue from {}",
            checkpoint.display()
        ),
    )
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
pub fn bar(total: Option<u64>, unit: &str) -> ProgressBar {
    let bar = match total {
        Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let template = match total {
        Some(_) => format!(
            "{{elapsed_precise}} {{bar:30}} {{human_pos}}/{{human_len}} {unit} ({{per_sec}}, ETA {{eta}}) {{msg}}"
        ),
        None => format!("{{elapsed_precise}} {{human_pos}} {unit} ({{per_sec}}) {{msg}}"),
    };
    bar.set_style(
        ProgressStyle::with_template(&template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
