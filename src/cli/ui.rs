//! What the user sees: logs, progress (a bar on a terminal, plain lines
//! elsewhere), errors, and the one `--json` object on stdout.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
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
    json_error(format!("{error:#}"));
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

/// How often a plain progress line is printed when stderr is not a
/// terminal; `--progress-interval`, set once by `main`.
static PROGRESS_INTERVAL: OnceLock<Duration> = OnceLock::new();
/// The command as typed (`import`, `accounts delete`), set once by `main`:
/// it names the plain progress lines and the `--json` object.
static COMMAND: OnceLock<String> = OnceLock::new();

/// The pace behind the rate and the ETA: what this run achieved over the
/// last two minutes, so a slow start, a resumed run's earlier work or a
/// pause long ago does not skew it.
const PACE_WINDOW: Duration = Duration::from_secs(120);

/// Progress on stderr: a bar when stderr is a terminal; otherwise a plain
/// line every `--progress-interval`, so a CI log or a journal shows a long
/// run moving (and a stalled one not moving). Cheap to clone; the lines
/// stop when it is finished or the last clone is dropped.
#[derive(Clone)]
pub struct Bar {
    shared: Arc<Shared>,
}

struct Shared {
    unit: String,
    bar: Option<ProgressBar>,
    state: Mutex<BarState>,
    /// Dropped (or taken) to stop the thread that prints the plain lines.
    ticker: Mutex<Option<mpsc::Sender<()>>>,
}

#[derive(Default)]
struct BarState {
    done: u64,
    total: Option<u64>,
    /// Answers so far, once the job reports them (`set_counts`).
    answers: Option<(u64, u64)>,
    invalid: Option<u64>,
    /// `(when, done)`, oldest first, spanning about `PACE_WINDOW`.
    samples: VecDeque<(Instant, u64)>,
    /// When the terminal bar's words were last redrawn.
    drawn: Option<Instant>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A progress display of `unit` (plural, e.g. `rows`, `numbers`), with
/// its total when known.
pub fn bar(total: Option<u64>, unit: &str) -> Bar {
    let terminal = std::io::stderr().is_terminal();
    let bar = terminal.then(|| {
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        let template = match total {
            Some(_) => {
                format!("{{elapsed_precise}} {{bar:30}} {{human_pos}}/{{human_len}} {unit} {{msg}}")
            }
            None => format!("{{elapsed_precise}} {{human_pos}} {unit} {{msg}}"),
        };
        bar.set_style(
            ProgressStyle::with_template(&template)
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar
    });
    let shared = Arc::new(Shared {
        unit: unit.to_owned(),
        bar,
        state: Mutex::new(BarState {
            total,
            ..BarState::default()
        }),
        ticker: Mutex::new(None),
    });
    if !terminal {
        let interval = PROGRESS_INTERVAL
            .get()
            .copied()
            .unwrap_or(Duration::from_secs(30));
        let (stop, stopped) = mpsc::channel::<()>();
        let watched = Arc::downgrade(&shared);
        let started = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    let Some(shared) = watched.upgrade() else {
                        break;
                    };
                    eprintln!("{}", shared.line(Instant::now()));
                }
            });
        if started.is_ok() {
            *shared.ticker.lock().expect("not poisoned") = Some(stop);
        }
    }
    Bar { shared }
}

impl Bar {
    pub fn set_position(&self, done: u64) {
        self.update(|state| state.done = done);
    }

    /// Where a continued run begins: `done` items were answered by the runs
    /// before it, so the pace and the ETA count only what this run does.
    pub fn start_at(&self, done: u64) {
        {
            let mut state = self.shared.state.lock().expect("not poisoned");
            state.done = done;
            state.samples.clear();
        }
        self.update(|_| {});
    }

    pub fn inc(&self, by: u64) {
        self.update(|state| state.done += by);
    }

    pub fn set_length(&self, total: u64) {
        if let Some(bar) = &self.shared.bar {
            bar.set_length(total);
        }
        self.update(|state| state.total = Some(total));
    }

    /// The answers so far: shown as `N ok, N failed` beside the count.
    pub fn set_counts(&self, ok: u64, failed: u64) {
        self.update(|state| state.answers = Some((ok, failed)));
    }

    /// Items left out as invalid before anything was sent.
    pub fn set_invalid(&self, invalid: u64) {
        self.update(|state| state.invalid = Some(invalid));
    }

    /// Clears the bar and stops the plain lines.
    pub fn finish_and_clear(&self) {
        self.shared.ticker.lock().expect("not poisoned").take();
        if let Some(bar) = &self.shared.bar {
            bar.finish_and_clear();
        }
    }

    fn update(&self, change: impl FnOnce(&mut BarState)) {
        let now = Instant::now();
        let mut state = self.shared.state.lock().expect("not poisoned");
        change(&mut state);
        state.sample(now);
        let Some(bar) = &self.shared.bar else {
            return;
        };
        bar.set_position(state.done);
        // The words are redrawn a few times a second, not on every row
        // (and at the end, so the last counts are the ones shown).
        if state.total == Some(state.done)
            || state
                .drawn
                .is_none_or(|drawn| now.duration_since(drawn) >= Duration::from_millis(250))
        {
            state.drawn = Some(now);
            bar.set_message(state.words(&self.shared.unit, now));
        }
    }
}

impl Shared {
    /// The plain line: `import: 1,200 of 20,000 numbers (6 %), 1,180 ok, ...`.
    fn line(&self, now: Instant) -> String {
        let mut state = self.state.lock().expect("not poisoned");
        // A sample even when nothing moved, so a stall shows as one.
        state.sample(now);
        let command = COMMAND.get().map_or("acgbulk", String::as_str);
        let count = match state.total {
            Some(total) => format!(
                "{} of {} {} ({} %)",
                thousands(state.done),
                thousands(total),
                self.unit,
                percent(state.done, total)
            ),
            None => format!("{} {}", thousands(state.done), self.unit),
        };
        let words = state.words(&self.unit, now);
        if words.is_empty() {
            format!("{command}: {count}")
        } else {
            format!("{command}: {count}, {words}")
        }
    }
}

impl BarState {
    fn sample(&mut self, now: Instant) {
        let done = self.done;
        // One sample a second is plenty for a two-minute window (the first
        // is kept as it is: the pace is measured from it).
        let several = self.samples.len() > 1;
        match self.samples.back_mut() {
            Some(last) if several && now.duration_since(last.0) < Duration::from_secs(1) => {
                last.1 = done;
            }
            _ => self.samples.push_back((now, done)),
        }
        while self.samples.len() > 2 && now.duration_since(self.samples[1].0) >= PACE_WINDOW {
            self.samples.pop_front();
        }
    }

    /// Items a second over the last `PACE_WINDOW`, once a second has passed.
    fn pace(&self, now: Instant) -> Option<f64> {
        let &(since, from) = self.samples.front()?;
        let seconds = now.duration_since(since).as_secs_f64();
        (seconds >= 1.0).then(|| self.done.saturating_sub(from) as f64 / seconds)
    }

    /// `1,180 ok, 20 failed, 0 invalid, 98 numbers/min, ETA 3 h 12 min`,
    /// each part when known.
    fn words(&self, unit: &str, now: Instant) -> String {
        let mut parts = Vec::new();
        if let Some((ok, failed)) = self.answers {
            parts.push(format!("{} ok", thousands(ok)));
            parts.push(format!("{} failed", thousands(failed)));
        }
        if let Some(invalid) = self.invalid {
            parts.push(format!("{} invalid", thousands(invalid)));
        }
        if let Some(pace) = self.pace(now) {
            // `rows validated` goes at so many rows a minute.
            let noun = unit.split_whitespace().next().unwrap_or(unit);
            parts.push(rate(pace, noun));
            if let Some(total) = self.total {
                let left = total.saturating_sub(self.done);
                parts.push(match left {
                    0 => "ETA 0 s".to_owned(),
                    _ if pace > 0.0 => format!(
                        "ETA {}",
                        duration(Duration::from_secs_f64((left as f64 / pace).min(1e9)))
                    ),
                    _ => "ETA unknown (no progress lately)".to_owned(),
                });
            }
        }
        parts.join(", ")
    }
}

/// A pace in whole items: `1,069 numbers/s` when fast, else `98 numbers/min`.
pub fn rate(per_second: f64, noun: &str) -> String {
    if per_second >= 10.0 {
        format!("{} {noun}/s", thousands(per_second.round() as u64))
    } else {
        format!(
            "{} {noun}/min",
            thousands((per_second * 60.0).round() as u64)
        )
    }
}

/// A time left or taken, to the precision that matters: `45 s`,
/// `4 min 10 s`, `38 min`, `3 h 12 min`, `2 d 5 h`.
pub fn duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64().round() as u64;
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86_400);
    if days > 0 {
        format!("{days} d {} h", hours % 24)
    } else if hours > 0 {
        format!("{hours} h {} min", minutes % 60)
    } else if minutes >= 10 {
        format!("{minutes} min")
    } else if minutes > 0 {
        format!("{minutes} min {} s", seconds % 60)
    } else {
        format!("{seconds} s")
    }
}

/// Whole percent done, rounded down: 100 only when all is done.
pub fn percent(done: u64, total: u64) -> u64 {
    if total == 0 {
        100
    } else {
        (u128::from(done.min(total)) * 100 / u128::from(total)) as u64
    }
}

/// `1 batch`, `2 batches`, `1,000 numbers`: a count with the right word.
pub fn plural(count: u64, one: &str, many: &str) -> String {
    format!(
        "{} {}",
        thousands(count),
        if count == 1 { one } else { many }
    )
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

/// What `main` learnt from the command line that shapes the output.
pub struct OutputSettings {
    /// The command as typed: `import`, `accounts delete`.
    pub command: String,
    /// `--json` was given.
    pub json: bool,
    /// `--progress-interval`, for commands that take it.
    pub progress_interval: Option<Duration>,
}

/// `--json`: the command's summary object, held until its exit code is
/// known (see [`finish_json`]).
static JSON: Mutex<Option<PendingJson>> = Mutex::new(None);
static JSON_REQUESTED: OnceLock<bool> = OnceLock::new();

#[derive(Default)]
struct PendingJson {
    /// The summary, pretty-printed: `{` newline, the keys, newline `}`.
    body: Option<String>,
    /// Why the command ended before its summary, when it did.
    error: Option<String>,
}

/// Called once by `main` before the command runs.
pub fn init_output(settings: OutputSettings) {
    let _ = COMMAND.set(settings.command);
    let _ = JSON_REQUESTED.set(settings.json);
    if let Some(interval) = settings.progress_interval {
        let _ = PROGRESS_INTERVAL.set(interval);
    }
}

/// Keeps `value`, a JSON object, as the `--json` summary: `main` prints it
/// on stdout once the exit code is known, with `command` first and
/// `exitCode` last, so stdout holds exactly one object.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    // Serialized as it is (not through `serde_json::Value`, which would
    // silently keep only the last of two equal keys): the tests reject a
    // repeated key.
    let body = serde_json::to_string_pretty(value)?;
    anyhow::ensure!(
        body.starts_with('{') && body.ends_with('}'),
        "the --json summary is not an object"
    );
    JSON.lock()
        .expect("not poisoned")
        .get_or_insert_with(PendingJson::default)
        .body = Some(body);
    Ok(())
}

/// With `--json`, why the command ended before its summary: the object
/// says it as `error`.
pub fn json_error(message: String) {
    if JSON_REQUESTED.get() == Some(&true) {
        JSON.lock()
            .expect("not poisoned")
            .get_or_insert_with(PendingJson::default)
            .error = Some(message);
    }
}

/// With `--json`, prints the one object on stdout: the summary kept by
/// [`print_json`] (or only `command`, `error` and `exitCode` when the
/// command ended before its summary).
pub fn finish_json(exit_code: u8) {
    if JSON_REQUESTED.get() != Some(&true) {
        return;
    }
    let mut pending = JSON
        .lock()
        .expect("not poisoned")
        .take()
        .unwrap_or_default();
    if exit_code == super::Status::Fatal as u8 && pending.body.is_none() {
        // A command that said why on stderr only: the object still says
        // that it failed, not just its code.
        pending
            .error
            .get_or_insert_with(|| "failed; the reason is on standard error".to_owned());
    }
    let command = COMMAND.get().map_or("acgbulk", String::as_str);
    println!(
        "{}",
        envelope(
            command,
            pending.body.as_deref(),
            pending.error.as_deref(),
            exit_code
        )
    );
}

/// `body` (a pretty-printed object) with `command` put first, and `error`
/// and `exitCode` last.
fn envelope(command: &str, body: Option<&str>, error: Option<&str>, exit_code: u8) -> String {
    let quoted = |text: &str| serde_json::Value::from(text).to_string();
    let mut out = format!("{{\n  \"command\": {}", quoted(command));
    let keys = body
        .and_then(|b| b.strip_prefix("{\n"))
        .and_then(|b| b.strip_suffix("\n}"));
    if let Some(keys) = keys {
        out.push_str(",\n");
        out.push_str(keys);
    }
    if let Some(error) = error {
        out.push_str(&format!(",\n  \"error\": {}", quoted(error)));
    }
    out.push_str(&format!(",\n  \"exitCode\": {exit_code}\n}}"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_their_words() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(plural(0, "batch", "batches"), "0 batches");
        assert_eq!(plural(1, "batch", "batches"), "1 batch");
        assert_eq!(plural(2, "batch", "batches"), "2 batches");
        assert_eq!(plural(12_000, "number", "numbers"), "12,000 numbers");
        assert_eq!(percent(1_200, 20_000), 6);
        assert_eq!(percent(19_999, 20_000), 99);
        assert_eq!(percent(20_000, 20_000), 100);
        assert_eq!(percent(0, 0), 100);
    }

    #[test]
    fn rates_are_whole_per_second_or_per_minute() {
        assert_eq!(rate(1069.1278, "numbers"), "1,069 numbers/s");
        assert_eq!(rate(10.0, "rows"), "10 rows/s");
        assert_eq!(rate(98.0 / 60.0, "rows"), "98 rows/min");
        assert_eq!(rate(9.99, "rows"), "599 rows/min");
        assert_eq!(rate(0.0, "rows"), "0 rows/min");
    }

    #[test]
    fn durations_to_the_precision_that_matters() {
        let d = |s| duration(Duration::from_secs(s));
        assert_eq!(d(0), "0 s");
        assert_eq!(d(45), "45 s");
        assert_eq!(d(250), "4 min 10 s");
        assert_eq!(d(38 * 60 + 20), "38 min");
        assert_eq!(d(3 * 3600 + 12 * 60 + 5), "3 h 12 min");
        assert_eq!(d(2 * 86_400 + 5 * 3600), "2 d 5 h");
        assert_eq!(duration(Duration::from_millis(44_600)), "45 s");
    }

    #[test]
    fn the_line_says_counts_pace_and_eta() {
        let start = Instant::now();
        let mut state = BarState {
            total: Some(20_000),
            answers: Some((1_180, 20)),
            invalid: Some(0),
            ..BarState::default()
        };
        state.sample(start);
        // No pace until a second has passed.
        assert_eq!(
            state.words("numbers", start),
            "1,180 ok, 20 failed, 0 invalid"
        );
        state.done = 1_200;
        let later = start + Duration::from_secs(60);
        state.sample(later);
        assert_eq!(
            state.words("numbers", later),
            "1,180 ok, 20 failed, 0 invalid, 20 numbers/s, ETA 15 min"
        );
        // Stalled for the whole window: no pace, no made-up ETA.
        let stalled = later + PACE_WINDOW * 2;
        state.sample(stalled);
        assert!(
            state
                .words("numbers", stalled)
                .ends_with("0 numbers/min, ETA unknown (no progress lately)"),
            "{}",
            state.words("numbers", stalled)
        );
    }

    #[test]
    fn the_pace_is_of_the_last_two_minutes() {
        let start = Instant::now();
        let mut state = BarState {
            total: Some(100_000),
            ..BarState::default()
        };
        // A fast first hour (a resumed run's earlier work counts the same),
        // then 60 a minute.
        state.sample(start);
        state.done = 50_000;
        let mut now = start + Duration::from_secs(3600);
        state.sample(now);
        for _ in 0..180 {
            now += Duration::from_secs(1);
            state.done += 1;
            state.sample(now);
        }
        let pace = state.pace(now).unwrap();
        assert!((pace - 1.0).abs() < 0.05, "{pace}");
    }

    #[test]
    fn the_json_object_has_command_first_and_exit_code_last() {
        let body = serde_json::to_string_pretty(&serde_json::json!({"ok": 3})).unwrap();
        let text = envelope("accounts import", Some(&body), None, 1);
        assert_eq!(
            text,
            "{\n  \"command\": \"accounts import\",\n  \"ok\": 3,\n  \"exitCode\": 1\n}"
        );
        let text = envelope("import", Some("{}"), Some("cannot read \"x\""), 2);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["error"], "cannot read \"x\"");
        assert_eq!(value["exitCode"], 2);
        let value: serde_json::Value =
            serde_json::from_str(&envelope("resume", None, None, 0)).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"command": "resume", "exitCode": 0})
        );
    }
}
