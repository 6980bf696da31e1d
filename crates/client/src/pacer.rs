//! One pace for every request to an endpoint, shared by every acgbulk
//! process on the machine: each request takes a send slot from the
//! endpoint's budget file ([`crate::budget`]) and waits for it, so two or
//! three jobs against one gateway together keep its rate limit. A 429
//! holds every request of every process back for its `Retry-After` and
//! lowers the shared pace, which then recovers slowly. When the budget
//! file cannot be used, the process paces itself alone.

use crate::budget::{self, BudgetFile, BudgetState, Member, MAX_HOLD};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a process waits for a budget file another process keeps
/// locked (it cannot be a crashed one: the system drops their locks)
/// before it paces itself alone.
const LOCK_PATIENCE: Duration = Duration::from_secs(5);

/// Paces requests. Shared by every task of a run.
pub struct Pacer {
    me: Member,
    /// One slot waited for at a time per process: processes alternate, so
    /// each gets an equal share whatever its concurrency.
    turn: tokio::sync::Mutex<()>,
    /// The shared budget; `None` when pacing alone.
    shared: Mutex<Option<BudgetFile>>,
    /// The budget when pacing alone.
    alone: Mutex<BudgetState>,
    /// The pace of the last slot taken.
    pace: Mutex<f64>,
}

/// Raised when a wait is cut short because the run is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// Waits for `duration`, or until `stop` turns true.
pub async fn sleep_or_stop(
    duration: Duration,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Stopped> {
    if *stop.borrow() {
        return Err(Stopped);
    }
    tokio::select! {
        _ = tokio::time::sleep(duration) => Ok(()),
        _ = stop.wait_for(|s| *s) => Err(Stopped),
    }
}

impl Pacer {
    /// Paces this process alone at `per_minute` requests a minute.
    pub fn new(per_minute: u32) -> Pacer {
        let rate = per_minute.max(1) as f64;
        Pacer {
            me: Member {
                id: rand::random(),
                per_minute: rate,
                seen: 0,
            },
            turn: tokio::sync::Mutex::new(()),
            shared: Mutex::new(None),
            alone: Mutex::new(BudgetState::default()),
            pace: Mutex::new(rate),
        }
    }

    /// Paces at `per_minute` within the budget every acgbulk process on
    /// this machine shares for `endpoint` (see [`budget::state_dir`]);
    /// alone, with one warning, if that budget cannot be opened.
    pub fn shared(per_minute: u32, endpoint: &url::Url) -> Pacer {
        let pacer = Pacer::new(per_minute);
        let opened = budget::state_dir()
            .ok_or(budget::BudgetError::NoStateDir)
            .and_then(|dir| BudgetFile::open(&dir, endpoint));
        match opened {
            Ok(file) => {
                tracing::debug!(
                    "sharing the rate budget of {endpoint} in {}",
                    file.path().display()
                );
                *pacer.shared.lock().expect("pacer lock") = Some(file);
            }
            Err(e) => warn_alone(&e),
        }
        pacer
    }

    /// The budget file, when the pace is shared.
    pub fn budget_file(&self) -> Option<PathBuf> {
        self.shared
            .lock()
            .expect("pacer lock")
            .as_ref()
            .map(|f| f.path().to_owned())
    }

    /// The current pace, in requests a minute (across the processes
    /// sharing the budget).
    pub fn per_minute(&self) -> f64 {
        *self.pace.lock().expect("pacer lock")
    }

    /// Runs `change` on the budget: the shared one under its lock, or this
    /// process's own once the shared one has failed.
    async fn update<R>(&self, change: impl Fn(&mut BudgetState, u64) -> R) -> R {
        let started = Instant::now();
        loop {
            {
                let mut shared = self.shared.lock().expect("pacer lock");
                let Some(file) = shared.as_mut() else { break };
                let now = budget::now_nanos();
                match file.try_update(now, |state| change(state, now)) {
                    Ok(Some(result)) => return result,
                    Ok(None) if started.elapsed() < LOCK_PATIENCE => {}
                    Ok(None) => {
                        warn_alone(&budget::BudgetError::Locked(file.path().to_owned()));
                        *shared = None;
                        break;
                    }
                    Err(e) => {
                        warn_alone(&e);
                        *shared = None;
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let now = budget::now_nanos();
        change(&mut self.alone.lock().expect("pacer lock"), now)
    }

    /// Waits for this request's turn.
    pub async fn ready(&self, stop: &mut watch::Receiver<bool>) -> Result<(), Stopped> {
        if *stop.borrow() {
            return Err(Stopped);
        }
        let _turn = tokio::select! {
            turn = self.turn.lock() => turn,
            _ = stop.wait_for(|s| *s) => return Err(Stopped),
        };
        loop {
            let (slot, pace) = self
                .update(|state, now| (state.take_slot(&self.me, now), state.pace(now)))
                .await;
            *self.pace.lock().expect("pacer lock") = pace;
            let now = budget::now_nanos();
            if slot <= now {
                return Ok(());
            }
            sleep_or_stop(Duration::from_nanos(slot - now), stop).await?;
            // A 429 may have come, to any process, while this one waited.
            if !self.update(|state, now| state.hold_until > now).await {
                return Ok(());
            }
        }
    }

    /// The service throttled: every request to the endpoint, in every
    /// process, waits `retry_after` (at most [`MAX_HOLD`]); the pace
    /// drops by a quarter (never below an eighth of the configured rate)
    /// and recovers slowly.
    pub async fn throttled(&self, retry_after: Duration) {
        let lowered = self
            .update(|state, now| state.throttle(&self.me, now, retry_after))
            .await;
        if let Some(pace) = lowered {
            *self.pace.lock().expect("pacer lock") = pace;
            tracing::warn!(
                "throttled by the service (429): holding every request for {:.1} s, then {pace:.0} requests a minute, recovering slowly",
                retry_after.min(MAX_HOLD).as_secs_f64()
            );
        }
    }
}

impl Drop for Pacer {
    /// Leaves the shared budget, so a lower rate stops governing the
    /// others at once (else it expires on its own).
    fn drop(&mut self) {
        let Ok(mut shared) = self.shared.lock() else {
            return;
        };
        let Some(file) = shared.as_mut() else { return };
        for _ in 0..50 {
            match file.try_update(budget::now_nanos(), |state| state.leave(self.me.id)) {
                Ok(None) => std::thread::sleep(Duration::from_millis(1)),
                _ => return,
            }
        }
    }
}

fn warn_alone(error: &budget::BudgetError) {
    tracing::warn!(
        "cannot use the shared rate budget ({error}): pacing this process alone, so other acgbulk processes on this endpoint are not counted"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn paces_evenly_and_slows_after_a_429() {
        let pacer = Pacer::new(1200); // one every 50 ms
        let (_tx, mut stop) = watch::channel(false);
        let start = Instant::now();
        for _ in 0..6 {
            pacer.ready(&mut stop).await.unwrap();
        }
        // Two at once, then one every 50 ms.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(195), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(400), "{elapsed:?}");
        pacer.throttled(Duration::from_millis(100)).await;
        assert_eq!(pacer.per_minute(), 900.0);
        let start = Instant::now();
        pacer.ready(&mut stop).await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(95));
    }

    #[tokio::test]
    async fn stops_waiting_when_told() {
        let pacer = Pacer::new(1);
        let (tx, mut stop) = watch::channel(false);
        // The burst of two goes at once; the third waits a minute.
        pacer.ready(&mut stop).await.unwrap();
        pacer.ready(&mut stop).await.unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            tx.send(true).unwrap();
        });
        assert_eq!(pacer.ready(&mut stop).await, Err(Stopped));
    }

    #[tokio::test]
    async fn two_pacers_on_one_file_share_the_pace() {
        let dir = tempfile::tempdir().unwrap();
        let endpoint: url::Url = "http://127.0.0.1:9/".parse().unwrap();
        let open = || {
            let pacer = Pacer::new(1200); // one every 50 ms
            *pacer.shared.lock().unwrap() = Some(BudgetFile::open(dir.path(), &endpoint).unwrap());
            std::sync::Arc::new(pacer)
        };
        let (a, b) = (open(), open());
        assert_eq!(
            a.budget_file(),
            Some(dir.path().join(budget::file_name(&endpoint)))
        );
        let (_tx, stop) = watch::channel(false);
        let start = Instant::now();
        let run = |pacer: std::sync::Arc<Pacer>| {
            let mut stop = stop.clone();
            tokio::spawn(async move {
                for _ in 0..5 {
                    pacer.ready(&mut stop).await.unwrap();
                }
            })
        };
        let (one, two) = (run(a.clone()), run(b.clone()));
        one.await.unwrap();
        two.await.unwrap();
        // Ten slots on one pace: two at once, then eight 50 ms apart.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(395), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(700), "{elapsed:?}");
        // A 429 to one holds the other.
        a.throttled(Duration::from_millis(300)).await;
        let start = Instant::now();
        b.ready(&mut stop.clone()).await.unwrap();
        assert!(
            start.elapsed() >= Duration::from_millis(290),
            "{:?}",
            start.elapsed()
        );
        assert!((b.per_minute() - 900.0).abs() < 5.0, "{}", b.per_minute());
    }
}
