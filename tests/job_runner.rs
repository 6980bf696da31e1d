//! The job runner on its own: bounded concurrency, sub-units, cancellation
//! and the stop reason, the checkpoint's header check and replay. Toy
//! units (sleeps, counters) over a real checkpoint file.

use acgbulk::runner::checkpoint::{self, Begin, Checkpoint, CheckpointError, Mismatch};
use acgbulk::runner::{self, Limits, Panicked, Step, Stop, StopReason, UnitError};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug)]
struct ToyError(String);

impl From<Panicked> for ToyError {
    fn from(Panicked(message): Panicked) -> Self {
        ToyError(message)
    }
}

type Outcome = Result<Step<u32, u32>, UnitError<ToyError>>;

fn limits(concurrency: usize) -> Limits {
    Limits {
        concurrency,
        grace: Some(Duration::from_secs(5)),
    }
}

#[tokio::test]
async fn concurrency_never_exceeds_the_bound() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let stop = Stop::new(CancellationToken::new());
    let work = |unit: u32, _stop: Stop| {
        let (in_flight, most) = (in_flight.clone(), most.clone());
        async move {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(15)).await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
            Outcome::Ok(Step::done(unit))
        }
    };
    let mut done = Vec::new();
    let ran = runner::run(0..24u32, limits(3), &stop, work, |unit| {
        done.push(unit);
        Ok(())
    })
    .await;
    assert!(ran.drained && ran.stopped.is_none());
    if let Some(ToyError(error)) = ran.error {
        panic!("{error}");
    }
    done.sort();
    assert_eq!(done, (0..24).collect::<Vec<_>>());
    assert_eq!(most.load(Ordering::SeqCst), 3, "the bound, and reached");
}

#[tokio::test]
async fn sub_units_run_until_each_has_its_answer() {
    // A unit is a range; a range wider than one yields its halves, as a
    // refused batch does.
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let stop = Stop::new(CancellationToken::new());
    let work = |(lo, hi): (u32, u32), _stop: Stop| {
        let ranges = ranges.clone();
        async move {
            ranges.lock().unwrap().push((lo, hi));
            if hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                return Ok(Step::yields(vec![(lo, mid), (mid, hi)]));
            }
            Result::<_, UnitError<ToyError>>::Ok(Step::done(lo))
        }
    };
    let mut leaves = Vec::new();
    let ran = runner::run([(0, 8), (8, 11)], limits(2), &stop, work, |leaf| {
        leaves.push(leaf);
        Ok(())
    })
    .await;
    assert!(ran.drained, "{ran:?}");
    leaves.sort();
    assert_eq!(leaves, (0..11).collect::<Vec<_>>());
    // Eight positions are 15 ranges (8 single, 7 halved), three are 5.
    assert_eq!(
        ranges.lock().unwrap().len(),
        15 + 5,
        "every range sent once"
    );
}

#[tokio::test]
async fn cancellation_stops_new_units_and_says_why() {
    let token = CancellationToken::new();
    let stop = Stop::new(token.clone());
    let started = Arc::new(AtomicUsize::new(0));
    let work = |unit: u32, stop: Stop| {
        let (started, token) = (started.clone(), token.clone());
        async move {
            if started.fetch_add(1, Ordering::SeqCst) == 4 {
                // Ctrl-C while the fifth unit is in flight.
                token.cancel();
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(10)) => Outcome::Ok(Step::done(unit)),
                _ = stop.stopped() => Err(UnitError::Stopped),
            }
        }
    };
    let mut done = 0;
    let ran = runner::run(0..100u32, limits(2), &stop, work, |_| {
        done += 1;
        Ok(())
    })
    .await;
    assert_eq!(ran.stopped, Some(StopReason::Signal));
    assert!(!ran.drained);
    assert_eq!(ran.stopped.unwrap().exit_code(), 3, "resumable");
    let started = started.load(Ordering::SeqCst);
    assert!(
        started <= 6,
        "no new unit after the stop: {started} started"
    );
    assert!(done < started, "the unit in flight was stopped");
}

#[tokio::test]
async fn a_refusal_stops_the_run_with_a_configuration_exit() {
    let stop = Stop::new(CancellationToken::new());
    let work = |unit: u32, _stop: Stop| async move {
        if unit == 2 {
            return Err(UnitError::Stop(StopReason::Refused(
                "the service refused the credential (403)".into(),
            )));
        }
        Outcome::Ok(Step::done(unit))
    };
    let ran = runner::run(0..50u32, limits(1), &stop, work, |_| Ok(())).await;
    let reason = ran.stopped.expect("stopped");
    assert_eq!(
        reason.to_string(),
        "the service refused the credential (403)"
    );
    assert_eq!(reason.exit_code(), 2);
    assert!(!stop.is_stopped(), "the user's stop is not the run's own");
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ToyHeader {
    fingerprint: String,
    size: u32,
}

impl checkpoint::Header for ToyHeader {
    fn differs_from(&self, this_run: &Self) -> Option<Mismatch> {
        (self.fingerprint != this_run.fingerprint)
            .then(|| Mismatch::Input {
                input: "toy.csv".into(),
                was: self.fingerprint.clone(),
                now: this_run.fingerprint.clone(),
            })
            .or_else(|| Mismatch::setting("size", &self.size, &this_run.size))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "camelCase")]
enum ToyLine {
    Header(ToyHeader),
    Done { unit: u32 },
    Finished,
}

impl checkpoint::Line for ToyLine {
    type Header = ToyHeader;
    fn from_header(header: ToyHeader) -> Self {
        ToyLine::Header(header)
    }
    fn into_header(self) -> Option<ToyHeader> {
        match self {
            ToyLine::Header(header) => Some(header),
            _ => None,
        }
    }
    fn is_finished(&self) -> bool {
        matches!(self, ToyLine::Finished)
    }
}

/// Runs units `0..10` not yet answered in `checkpoint`, recording each;
/// unit `fail_at` (if any) stops the run as a full disk would.
async fn toy_run(
    checkpoint: Arc<Checkpoint<ToyLine>>,
    answered: HashSet<u32>,
    fail_at: Option<u32>,
    sent: Arc<Mutex<Vec<u32>>>,
) -> runner::Ran<ToyError> {
    let stop = Stop::new(CancellationToken::new());
    let units = (0..10u32).filter(|u| !answered.contains(u));
    let work = |unit: u32, _stop: Stop| {
        let (checkpoint, sent) = (checkpoint.clone(), sent.clone());
        async move {
            if Some(unit) == fail_at {
                let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
                let path = checkpoint.path().to_owned();
                return Err(UnitError::Stop(StopReason::cannot_write(&path, &full)));
            }
            sent.lock().unwrap().push(unit);
            checkpoint
                .append(&ToyLine::Done { unit })
                .await
                .map_err(|e| UnitError::Failed(ToyError(e.to_string())))?;
            Outcome::Ok(Step::done(unit))
        }
    };
    runner::run(units, limits(1), &stop, work, |_| Ok(())).await
}

#[tokio::test]
async fn a_second_run_replays_the_checkpoint_and_skips_answered_units() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toy.checkpoint");
    let header = ToyHeader {
        fingerprint: "10:aa".into(),
        size: 10,
    };
    let sent = Arc::new(Mutex::new(Vec::new()));
    let begun = checkpoint::begin::<ToyLine>(&path, &header, false);
    assert!(matches!(begun, Ok(Begin::Fresh)), "no checkpoint yet");
    let first = Arc::new(Checkpoint::create(&path, header.clone()).unwrap());
    let ran = toy_run(first.clone(), HashSet::new(), Some(6), sent.clone()).await;
    let reason = ran.stopped.expect("a full disk stops the run");
    assert!(matches!(reason, StopReason::NoRoom { .. }), "{reason:?}");
    assert_eq!(reason.file(), Some(path.as_path()));
    drop(first);

    // The same run again: continued, the six answered units skipped.
    let Begin::Continue(again, (was, lines)) =
        checkpoint::begin::<ToyLine>(&path, &header, false).unwrap()
    else {
        panic!("continues the unfinished run")
    };
    assert_eq!(was, header);
    let answered: HashSet<u32> = lines
        .iter()
        .filter_map(|l| match l {
            ToyLine::Done { unit } => Some(*unit),
            _ => None,
        })
        .collect();
    assert_eq!(answered, (0..6).collect());
    let again = Arc::new(again);
    let ran = toy_run(again.clone(), answered, None, sent.clone()).await;
    assert!(ran.drained && ran.stopped.is_none());
    again.append(&ToyLine::Finished).await.unwrap();
    drop(again);
    let mut sent = sent.lock().unwrap().clone();
    sent.sort();
    assert_eq!(sent, (0..10).collect::<Vec<_>>(), "each unit sent once");

    // Finished: the same run begins afresh.
    let begun = checkpoint::begin::<ToyLine>(&path, &header, false);
    assert!(matches!(begun, Ok(Begin::Fresh)));
}

#[tokio::test]
async fn a_header_mismatch_is_refused_naming_what_differs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toy.checkpoint");
    let header = ToyHeader {
        fingerprint: "10:aa".into(),
        size: 10,
    };
    let written = Checkpoint::<ToyLine>::create(&path, header.clone()).unwrap();
    written.append(&ToyLine::Done { unit: 0 }).await.unwrap();
    written.close();

    let other_size = ToyHeader {
        size: 20,
        ..header.clone()
    };
    let refused = checkpoint::begin::<ToyLine>(&path, &other_size, false);
    let Err(CheckpointError::Mismatch { mismatch, .. }) = refused else {
        panic!("refused")
    };
    assert_eq!(
        mismatch,
        Mismatch::Setting {
            setting: "size",
            was: "10".into(),
            now: "20".into()
        }
    );
    let other_input = ToyHeader {
        fingerprint: "11:bb".into(),
        ..header.clone()
    };
    let Err(refused) = checkpoint::begin::<ToyLine>(&path, &other_input, false) else {
        panic!("refused")
    };
    let words = refused.to_string();
    assert!(
        words.contains("toy.csv has changed since the run began (10:aa then, 11:bb now)"),
        "{words}"
    );
    assert!(words.contains("--restart"), "{words}");

    // One rule for every job: --restart starts over; a checkpoint that
    // cannot be read is refused, not overwritten.
    let restart = checkpoint::begin::<ToyLine>(&path, &other_size, true);
    assert!(matches!(restart, Ok(Begin::Fresh)));
    let written = Checkpoint::<ToyLine>::create(&path, header.clone()).unwrap();
    written.append(&ToyLine::Done { unit: 0 }).await.unwrap();
    written.append(&ToyLine::Done { unit: 1 }).await.unwrap();
    written.close();
    let text = std::fs::read_to_string(&path).unwrap();
    let damaged: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 1 {
                l.replace("0", "7")
            } else {
                l.to_owned()
            }
        })
        .collect();
    std::fs::write(&path, damaged.join("\n") + "\n").unwrap();
    let Err(refused) = checkpoint::begin::<ToyLine>(&path, &header, false) else {
        panic!("refused")
    };
    assert!(
        matches!(refused, CheckpointError::Unreadable { .. }),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("--restart"), "{refused}");
}
