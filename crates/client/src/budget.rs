//! The rate budget every acgbulk process on one machine shares per
//! endpoint: the arithmetic of send slots ([`BudgetState`]) and the small
//! locked file that holds it ([`BudgetFile`]).
//!
//! The state is a GCRA ("virtual scheduling"): `next` is the earliest
//! instant the next request may leave, and a request taken at `now` leaves
//! at `max(next, now - (BURST - 1) * period)`. The one cell of credit is
//! what makes up timer lateness: a process that wakes late for its slot
//! leaves `next` where it was, so whichever process takes the following
//! slot may use it at once, while any interval `t` still holds at most
//! `BURST + t / period` requests from all processes together.
//!
//! Instants are wall-clock nanoseconds since the Unix epoch, the one clock
//! processes share; whatever the clock does, a file never holds a process
//! back for more than a few periods ([`BudgetState::sanitize`]).

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Requests that may leave back to back after a pause (see the module
/// documentation).
pub const BURST: u64 = 2;
/// After a 429 the pace drops to this fraction of what it was...
pub const BACKOFF: f64 = 0.75;
/// ... never below this fraction of the ceiling ...
pub const FLOOR: f64 = 1.0 / 8.0;
/// ... and climbs back by this fraction of the ceiling every second
/// without a 429 (from three quarters to the whole in 50 s).
pub const RECOVERY_PER_SECOND: f64 = 0.005;
/// The longest `Retry-After` honoured, and so the longest a hold in the
/// file can be: one further away is a clock that jumped back.
pub const MAX_HOLD: Duration = Duration::from_secs(600);
/// A process that has not taken a slot for this long (or three of its own
/// periods, if longer) no longer counts as sending.
pub const MEMBER_EXPIRY: Duration = Duration::from_secs(10);
/// Budget files untouched for this long are removed when a budget opens
/// (each endpoint, every emulator port included, leaves one).
const OLD_FILE: Duration = Duration::from_secs(24 * 3600);

const NANOS_PER_MINUTE: f64 = 60e9;

/// Nanoseconds since the Unix epoch.
pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn nanos(duration: Duration) -> u64 {
    duration.as_nanos().min(u64::MAX as u128) as u64
}

/// One process sending to the endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Random per pacer (process ids are reused).
    pub id: u64,
    /// Its `--rate-limit`.
    pub per_minute: f64,
    /// When it last took a slot.
    pub seen: u64,
}

impl Member {
    fn expired(&self, now: u64) -> bool {
        let own_period = NANOS_PER_MINUTE / self.per_minute.max(f64::MIN_POSITIVE);
        let expiry = nanos(MEMBER_EXPIRY).max((3.0 * own_period).min(u64::MAX as f64) as u64);
        // Seen in the future: the clock jumped back; it re-registers with
        // its next slot.
        now.saturating_sub(self.seen) > expiry || self.seen > now + expiry
    }
}

/// What the budget file holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetState {
    /// The endpoint, for whoever opens the file.
    #[serde(default)]
    pub endpoint: String,
    /// The earliest instant the next request may leave.
    pub next: u64,
    /// No request leaves before this (a 429's `Retry-After`).
    pub hold_until: u64,
    /// The pace a 429 set, in requests a minute, and when; the pace
    /// recovers from there.
    pub throttled_pace: Option<f64>,
    pub throttled_at: u64,
    /// The processes sending now.
    pub members: Vec<Member>,
}

impl BudgetState {
    /// The configured rate that governs: the lowest of the processes
    /// sending now.
    pub fn ceiling(&self) -> f64 {
        self.members
            .iter()
            .map(|m| m.per_minute)
            .fold(f64::INFINITY, f64::min)
    }

    /// The pace now, in requests a minute: the ceiling, or less while it
    /// recovers from a 429.
    pub fn pace(&self, now: u64) -> f64 {
        let ceiling = self.ceiling();
        match self.throttled_pace {
            Some(slow) if ceiling.is_finite() => {
                let seconds = now.saturating_sub(self.throttled_at) as f64 / 1e9;
                (slow + ceiling * RECOVERY_PER_SECOND * seconds).min(ceiling)
            }
            _ => ceiling,
        }
    }

    fn period(&self, now: u64) -> u64 {
        let pace = self.pace(now);
        if pace.is_finite() && pace > 0.0 {
            (NANOS_PER_MINUTE / pace).min(u64::MAX as f64) as u64
        } else {
            0
        }
    }

    /// Drops what a crashed process, a clock jump or a damaged file left:
    /// expired members, a hold beyond [`MAX_HOLD`], a `next` further
    /// (past any hold) than every member holding a slot could have put it.
    pub fn sanitize(&mut self, now: u64) {
        self.members.retain(|m| !m.expired(now));
        if self.hold_until > now.saturating_add(nanos(MAX_HOLD)) {
            self.hold_until = 0;
        }
        if self.throttled_at > now {
            self.throttled_pace = None;
        }
        if self.throttled_pace.is_some() && self.pace(now) >= self.ceiling() {
            self.throttled_pace = None;
        }
        let slots = self.members.len() as u64 + BURST + 1;
        let horizon = self
            .period(now)
            .saturating_mul(slots)
            .saturating_add(nanos(Duration::from_secs(1)));
        let from = now.max(self.hold_until);
        if self.next > from.saturating_add(horizon) {
            self.next = from;
        }
    }

    fn join(&mut self, me: &Member, now: u64) {
        match self.members.iter_mut().find(|m| m.id == me.id) {
            Some(member) => {
                member.per_minute = me.per_minute;
                member.seen = now;
            }
            None => self.members.push(Member {
                seen: now,
                ..me.clone()
            }),
        }
    }

    /// Takes the next send slot for `me` at `now`: the instant its request
    /// may leave.
    pub fn take_slot(&mut self, me: &Member, now: u64) -> u64 {
        self.join(me, now);
        self.sanitize(now);
        let period = self.period(now);
        let credit = period.saturating_mul(BURST - 1);
        let slot = self
            .next
            .max(now.saturating_sub(credit))
            .max(self.hold_until);
        self.next = slot.saturating_add(period);
        slot
    }

    /// The service answered 429 at `now`: hold every request for
    /// `retry_after` and, unless this 429 belongs to a hold already under
    /// way (requests in flight when the first came), lower the pace.
    /// Returns the new pace when it was lowered.
    pub fn throttle(&mut self, me: &Member, now: u64, retry_after: Duration) -> Option<f64> {
        self.join(me, now);
        self.sanitize(now);
        let lowered = if now >= self.hold_until {
            let ceiling = self.ceiling();
            let slower = (self.pace(now) * BACKOFF).max(ceiling * FLOOR).min(ceiling);
            self.throttled_pace = Some(slower);
            self.throttled_at = now;
            Some(slower)
        } else {
            None
        };
        let until = now.saturating_add(nanos(retry_after.min(MAX_HOLD)));
        self.hold_until = self.hold_until.max(until);
        lowered
    }

    /// `id` stops sending.
    pub fn leave(&mut self, id: u64) {
        self.members.retain(|m| m.id != id);
    }
}

/// Where budgets live: `ACGBULK_STATE_DIR`, else the user's state
/// directory (`$XDG_STATE_HOME/acgbulk`, `~/.local/state/acgbulk`;
/// `%LOCALAPPDATA%\acgbulk` on Windows).
pub fn state_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("ACGBULK_STATE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if cfg!(windows) {
        return var("LOCALAPPDATA").map(|d| PathBuf::from(d).join("acgbulk"));
    }
    // The XDG specification ignores a relative XDG_STATE_HOME.
    if let Some(dir) = var("XDG_STATE_HOME").map(PathBuf::from) {
        if dir.is_absolute() {
            return Some(dir.join("acgbulk"));
        }
    }
    var("HOME").map(|home| PathBuf::from(home).join(".local/state/acgbulk"))
}

/// The endpoint as one budget: scheme, host and port (`url` lower-cases
/// the host and drops a default port), and the path without a trailing
/// slash; no query.
pub fn normalised_endpoint(endpoint: &url::Url) -> String {
    let origin = endpoint.origin().ascii_serialization();
    format!("{origin}{}", endpoint.path().trim_end_matches('/'))
}

/// `budget-<hash of the normalised endpoint>.json`.
pub fn file_name(endpoint: &url::Url) -> String {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        normalised_endpoint(endpoint).as_bytes(),
    );
    let hex: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("budget-{hex}.json")
}

/// The budget file of one endpoint, open for the life of the pacer. Each
/// use locks it (an advisory lock the system drops if the process dies),
/// reads the state, changes it and writes it back.
#[derive(Debug)]
pub struct BudgetFile {
    path: PathBuf,
    file: File,
    endpoint: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error("no state directory: set ACGBULK_STATE_DIR (or HOME)")]
    NoStateDir,
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Someone holds the lock and does not let go (a stopped process).
    #[error("{}: locked by another process for too long", .0.display())]
    Locked(PathBuf),
}

impl BudgetFile {
    /// Opens (creating) the budget of `endpoint` in `dir`.
    pub fn open(dir: &Path, endpoint: &url::Url) -> Result<BudgetFile, BudgetError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| BudgetError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(file_name(endpoint));
        remove_old_budgets(dir, &path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        Ok(BudgetFile {
            path,
            file,
            endpoint: normalised_endpoint(endpoint),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `change` on the state under the lock if the lock is free now;
    /// `Ok(None)` if another process holds it.
    pub fn try_update<R>(
        &mut self,
        now: u64,
        change: impl FnOnce(&mut BudgetState) -> R,
    ) -> Result<Option<R>, BudgetError> {
        match self.file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(source)) => {
                return Err(BudgetError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        }
        let result = self.update_locked(now, change);
        let unlocked = self.file.unlock();
        let result = result?;
        unlocked.map_err(|source| BudgetError::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok(Some(result))
    }

    fn update_locked<R>(
        &mut self,
        now: u64,
        change: impl FnOnce(&mut BudgetState) -> R,
    ) -> Result<R, BudgetError> {
        let io = |source| BudgetError::Io {
            path: self.path.clone(),
            source,
        };
        let mut text = String::new();
        self.file.seek(SeekFrom::Start(0)).map_err(io)?;
        // A file torn by a crash mid-write, or not ours, starts afresh:
        // the worst it costs is one burst.
        let mut state = match self.file.read_to_string(&mut text) {
            Ok(_) => serde_json::from_str::<BudgetState>(&text).unwrap_or_default(),
            Err(_) => BudgetState::default(),
        };
        state.sanitize(now);
        state.endpoint.clone_from(&self.endpoint);
        let result = change(&mut state);
        let json = serde_json::to_vec(&state).expect("the budget serializes");
        self.file.seek(SeekFrom::Start(0)).map_err(io)?;
        self.file.set_len(0).map_err(io)?;
        self.file.write_all(&json).map_err(io)?;
        Ok(result)
    }
}

/// Removes other budget files nobody has used for a day (best effort).
fn remove_old_budgets(dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path == keep || !(name.starts_with("budget-") && name.ends_with(".json")) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > OLD_FILE);
        if old {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000 * MS;

    fn member(id: u64, per_minute: f64) -> Member {
        Member {
            id,
            per_minute,
            seen: 0,
        }
    }

    #[test]
    fn slots_are_a_period_apart_after_a_burst_of_two() {
        let me = member(1, 600.0); // one every 100 ms
        let mut state = BudgetState::default();
        let t = 1_000 * S;
        assert_eq!(state.take_slot(&me, t), t - 100 * MS, "the credit cell");
        assert_eq!(state.take_slot(&me, t), t);
        assert_eq!(state.take_slot(&me, t), t + 100 * MS);
        assert_eq!(state.take_slot(&me, t + 100 * MS), t + 200 * MS);
    }

    #[test]
    fn a_late_wake_up_is_made_up_once_not_hoarded() {
        let me = member(1, 600.0);
        let mut state = BudgetState::default();
        let t = 1_000 * S;
        state.take_slot(&me, t);
        state.take_slot(&me, t);
        let third = state.take_slot(&me, t);
        assert_eq!(third, t + 100 * MS);
        // Woke 30 ms late for the third: the fourth keeps its time, so the
        // lateness is not lost.
        assert_eq!(state.take_slot(&me, third + 30 * MS), t + 200 * MS);
        // Idle for ten seconds: one cell of credit, not a hundred.
        let later = t + 10 * S;
        assert_eq!(state.take_slot(&me, later), later - 100 * MS);
        assert_eq!(state.take_slot(&me, later), later);
        assert_eq!(state.take_slot(&me, later), later + 100 * MS);
    }

    #[test]
    fn two_processes_interleave_and_share_one_pace() {
        let a = member(1, 600.0);
        let b = member(2, 600.0);
        let mut state = BudgetState::default();
        let t = 1_000 * S;
        state.next = t;
        // Each process holds one slot at a time: they alternate.
        let slots: Vec<u64> = (0..6)
            .map(|i| state.take_slot(if i % 2 == 0 { &a } else { &b }, t))
            .collect();
        let expected: Vec<u64> = (0..6).map(|i| t + i * 100 * MS).collect();
        assert_eq!(slots, expected);
        assert_eq!(state.members.len(), 2);
    }

    #[test]
    fn the_lowest_rate_governs_while_both_send() {
        let fast = member(1, 600.0);
        let slow = member(2, 60.0);
        let mut state = BudgetState::default();
        let t = 1_000 * S;
        state.next = t;
        state.take_slot(&slow, t);
        assert_eq!(state.ceiling(), 60.0);
        assert_eq!(state.take_slot(&fast, t), t + S);
        assert_eq!(state.next, t + 2 * S);
        // Once the slow process leaves, the fast one has its own pace.
        state.leave(slow.id);
        assert_eq!(state.take_slot(&fast, t + 2 * S), t + 2 * S);
        assert_eq!(state.next, t + 2 * S + 100 * MS);
    }

    #[test]
    fn a_crashed_process_stops_counting() {
        let fast = member(1, 600.0);
        let slow = member(2, 60.0);
        let mut state = BudgetState::default();
        let t = 1_000 * S;
        state.take_slot(&slow, t);
        // The slow one's expiry is three of its periods (3 s) or 10 s.
        state.take_slot(&fast, t + 5 * S);
        assert_eq!(state.ceiling(), 60.0);
        state.take_slot(&fast, t + 11 * S);
        assert_eq!(state.ceiling(), 600.0);
        assert_eq!(state.members.len(), 1);
    }

    #[test]
    fn a_stale_file_never_blocks_for_long() {
        let me = member(1, 600.0);
        let t = 1_000 * S;
        // The clock jumped back an hour after the file was written, in a
        // hold and with slots far ahead.
        let mut state = BudgetState {
            next: t + 3600 * S,
            hold_until: t + 3600 * S,
            throttled_pace: Some(100.0),
            throttled_at: t + 3600 * S,
            members: vec![Member {
                id: 9,
                per_minute: 1.0,
                seen: t + 3600 * S,
            }],
            ..BudgetState::default()
        };
        let slot = state.take_slot(&me, t);
        assert!(slot <= t, "{}", slot as i64 - t as i64);
        assert_eq!(state.ceiling(), 600.0, "the member from the future is gone");
        assert_eq!(state.pace(t), 600.0);
        // A plausible `next` a few periods ahead is kept.
        let mut state = BudgetState {
            next: t + 300 * MS,
            ..BudgetState::default()
        };
        assert_eq!(state.take_slot(&me, t), t + 300 * MS);
    }

    #[test]
    fn a_429_holds_everyone_slows_once_and_recovers_slowly() {
        let a = member(1, 600.0);
        let b = member(2, 600.0);
        let mut state = BudgetState::default();
        let t = 1_000 * S;
        state.take_slot(&a, t);
        state.take_slot(&b, t);
        assert_eq!(state.throttle(&a, t, Duration::from_secs(2)), Some(450.0));
        // The other requests in flight meet the same hold: no second cut.
        assert_eq!(
            state.throttle(&b, t + 10 * MS, Duration::from_secs(2)),
            None
        );
        assert_eq!(state.pace(t + 10 * MS), 450.0 + 600.0 * 0.005 * 0.01);
        // Nobody leaves before the (later) hold ends, then at the slower
        // pace.
        let first = state.take_slot(&b, t + 50 * MS);
        assert_eq!(first, t + 2 * S + 10 * MS);
        let second = state.take_slot(&a, t + 50 * MS);
        let period = second - first;
        assert!((133 * MS..134 * MS).contains(&period), "{period}");
        // Another 429 after the hold cuts again, never below an eighth.
        for i in 0..20 {
            let now = t + (3 + i) * S;
            state.throttle(&a, now, Duration::ZERO);
        }
        assert_eq!(state.pace(t + 22 * S), 75.0);
        // Back to the whole pace 175 s after the last 429.
        assert!(state.pace(t + 22 * S + 170 * S) < 600.0);
        assert_eq!(state.pace(t + 22 * S + 176 * S), 600.0);
        state.take_slot(&a, t + 22 * S + 177 * S);
        assert_eq!(state.throttled_pace, None);
    }

    #[test]
    fn retry_after_is_capped() {
        let me = member(1, 600.0);
        let mut state = BudgetState::default();
        let t = 1_000 * S;
        state.throttle(&me, t, Duration::from_secs(86_400));
        assert_eq!(state.hold_until, t + 600 * S);
    }

    #[test]
    fn endpoints_are_normalised_before_hashing() {
        let name = |u: &str| file_name(&u.parse().unwrap());
        assert_eq!(
            name("https://ProvAPI.Example.com/"),
            name("https://provapi.example.com:443")
        );
        assert_ne!(
            name("http://127.0.0.1:8080/"),
            name("http://127.0.0.1:8081/")
        );
        assert_eq!(
            name("http://127.0.0.1:8080/a/?x=1"),
            name("http://127.0.0.1:8080/a")
        );
        assert!(name("http://h/").starts_with("budget-") && name("http://h/").len() == 28);
    }

    #[test]
    fn the_file_keeps_the_state_and_survives_damage() {
        let dir = tempfile::tempdir().unwrap();
        let endpoint: url::Url = "http://127.0.0.1:9/".parse().unwrap();
        let me = member(1, 600.0);
        let t = 1_000 * S;
        let mut one = BudgetFile::open(dir.path(), &endpoint).unwrap();
        let mut two = BudgetFile::open(dir.path(), &endpoint).unwrap();
        assert_eq!(
            one.try_update(t, |s| s.take_slot(&me, t)).unwrap(),
            Some(t - 100 * MS)
        );
        assert_eq!(two.try_update(t, |s| s.take_slot(&me, t)).unwrap(), Some(t));
        assert_eq!(
            one.try_update(t, |s| s.take_slot(&me, t)).unwrap(),
            Some(t + 100 * MS)
        );
        // Another handle holding the lock: not now.
        two.file.lock().unwrap();
        assert_eq!(one.try_update(t, |s| s.next).unwrap(), None);
        two.file.unlock().unwrap();
        // Torn by a crash: starts afresh.
        std::fs::write(one.path(), b"{\"next\": 12").unwrap();
        assert_eq!(
            one.try_update(t, |s| s.take_slot(&me, t)).unwrap(),
            Some(t - 100 * MS)
        );
        let text = std::fs::read_to_string(one.path()).unwrap();
        assert!(
            text.contains("\"endpoint\":\"http://127.0.0.1:9\""),
            "{text}"
        );
    }
}
