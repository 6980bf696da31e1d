//! One pace for every request a run makes: a governor limiter at the
//! configured rate with a burst of two, so the requests leave evenly spaced
//! and a correctly configured run never exceeds the service's limit. A 429
//! holds every request back for its `Retry-After` and slows the pace.

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Paces requests. Shared by every task of a run.
pub struct Pacer {
    limiter: Mutex<Arc<DefaultDirectRateLimiter>>,
    per_minute: Mutex<f64>,
    floor: f64,
    hold_until: Mutex<Option<Instant>>,
}

/// A limiter for `per_minute` with a burst of two: timers wake a little
/// late, and with a burst of one every late wake-up would be lost for good
/// (about 2 % of the rate); a second cell lets the next request make up
/// the lateness, while any interval `t` still holds at most `2 + t/period`
/// requests.
fn limiter(per_minute: f64) -> Arc<DefaultDirectRateLimiter> {
    let period = Duration::from_secs_f64(60.0 / per_minute.max(0.01));
    let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
        .expect("a positive period")
        .allow_burst(std::num::NonZeroU32::new(2).expect("two"));
    Arc::new(RateLimiter::direct(quota))
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
    /// Paces at `per_minute` requests a minute.
    pub fn new(per_minute: u32) -> Pacer {
        let rate = per_minute.max(1) as f64;
        Pacer {
            limiter: Mutex::new(limiter(rate)),
            per_minute: Mutex::new(rate),
            floor: (rate / 8.0).max(1.0),
            hold_until: Mutex::new(None),
        }
    }

    /// The current pace, in requests a minute.
    pub fn per_minute(&self) -> f64 {
        *self.per_minute.lock().expect("pacer lock")
    }

    /// Waits for this request's turn.
    pub async fn ready(&self, stop: &mut watch::Receiver<bool>) -> Result<(), Stopped> {
        loop {
            let hold = *self.hold_until.lock().expect("pacer lock");
            if let Some(until) = hold {
                let now = Instant::now();
                if until > now {
                    sleep_or_stop(until - now, stop).await?;
                    continue;
                }
            }
            let limiter = self.limiter.lock().expect("pacer lock").clone();
            tokio::select! {
                _ = limiter.until_ready() => {}
                _ = stop.wait_for(|s| *s) => return Err(Stopped),
            }
            // A 429 may have arrived while this request waited its turn.
            let hold = *self.hold_until.lock().expect("pacer lock");
            if hold.is_none_or(|until| until <= Instant::now()) {
                return Ok(());
            }
        }
    }

    /// The service throttled: hold every request for `retry_after`, then go
    /// on at three quarters of the pace (never below an eighth of the
    /// configured rate).
    pub fn throttled(&self, retry_after: Duration) {
        let until = Instant::now() + retry_after;
        {
            let mut hold = self.hold_until.lock().expect("pacer lock");
            if hold.is_none_or(|h| h < until) {
                *hold = Some(until);
            }
        }
        let mut rate = self.per_minute.lock().expect("pacer lock");
        let slower = (*rate * 0.75).max(self.floor);
        if slower < *rate {
            *rate = slower;
            *self.limiter.lock().expect("pacer lock") = limiter(slower);
            tracing::warn!("throttled by the service: slowing to {slower:.0} requests a minute");
        }
    }
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
        pacer.throttled(Duration::from_millis(100));
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
}
