//! The one durable job runner behind imports and deletes (batches), the
//! row jobs (accounts, RFIs) and exports (pages).
//!
//! A job is units of work: a batch part, a row, a page. The runner sends
//! them with bounded concurrency (every request still goes through the
//! client's one pacer), lets a unit yield sub-units (a refused batch yields
//! its halves, a page the next page), stops on a [`Stop`] (Ctrl-C/SIGTERM,
//! or the run's own fatal answer, outage or unwritable file), and says why
//! in a [`StopReason`]. The circuit breaker is the client's: a request the
//! service has not answered for the outage timeout fails with
//! `ClientError::Outage`, which the unit returns as
//! [`StopReason::Outage`]; the runner then launches nothing more and the
//! units in flight wind down unanswered, for the resume. The job keeps its [`checkpoint`]: a unit records what it
//! sends before sending and its answer after, and the job replays those
//! lines to skip what was answered; the results are written by the job
//! from what the units answered, at the end or on a stop.

pub mod checkpoint;
pub mod stop;

pub use checkpoint::{Begin, Checkpoint, CheckpointError, Mismatch, Settings};
pub use stop::{Stop, StopReason};

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;
use tokio::task::JoinSet;

/// How units run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Units in flight at once (at least one).
    pub concurrency: usize,
    /// On a stop, how long to wait for units in flight before abandoning
    /// them (their answers, if any, come again on resume); `None` waits
    /// for every one.
    pub grace: Option<Duration>,
}

/// What a unit came to: an answer, and units it yields (the halves of a
/// refused batch, the next page).
#[derive(Debug)]
pub struct Step<U, D> {
    pub done: Option<D>,
    pub more: Vec<U>,
}

impl<U, D> Step<U, D> {
    pub fn done(done: D) -> Self {
        Step {
            done: Some(done),
            more: Vec::new(),
        }
    }

    /// No answer of its own: `units` instead.
    pub fn yields(units: Vec<U>) -> Self {
        Step {
            done: None,
            more: units,
        }
    }

    /// An answer, then `next`.
    pub fn then(done: D, next: Option<U>) -> Self {
        Step {
            done: Some(done),
            more: next.into_iter().collect(),
        }
    }
}

/// Why a unit did not come to a [`Step`].
#[derive(Debug)]
pub enum UnitError<E> {
    /// The run is stopping; the unit is left for a resume.
    Stopped,
    /// The run must stop, for this reason.
    Stop(StopReason),
    /// The job failed: the run stops and the error is returned.
    Failed(E),
}

/// A unit's task panicked.
#[derive(Debug)]
pub struct Panicked(pub String);

/// What a run of units came to.
#[derive(Debug)]
pub struct Ran<E> {
    /// Why it stopped early, if it did.
    pub stopped: Option<StopReason>,
    /// Every unit came to a [`Step`], with every sub-unit.
    pub drained: bool,
    /// The job's own failure, if one stopped the run.
    pub error: Option<E>,
}

/// Units in flight and what they came to so far.
struct Cycle<U, D, E> {
    queue: VecDeque<U>,
    tasks: JoinSet<Result<Step<U, D>, UnitError<E>>>,
    /// The first unwritable file, else the first refusal.
    own_stop: Option<StopReason>,
    error: Option<E>,
    left_over: bool,
}

impl<U: Send + 'static, D: Send + 'static, E: From<Panicked> + Send + 'static> Cycle<U, D, E> {
    fn take(
        &mut self,
        joined: Result<Result<Step<U, D>, UnitError<E>>, tokio::task::JoinError>,
        halt: &Stop,
        on_done: &mut impl FnMut(D) -> Result<(), UnitError<E>>,
    ) {
        let failed = match joined {
            Ok(Ok(step)) => {
                // Sub-units go first: a batch's halves before other batches.
                for unit in step.more.into_iter().rev() {
                    self.queue.push_front(unit);
                }
                match step.done.map(&mut *on_done) {
                    Some(Err(e)) => e,
                    _ => return,
                }
            }
            Ok(Err(e)) => e,
            Err(join) if join.is_cancelled() => UnitError::Stopped,
            Err(join) => {
                UnitError::Failed(Panicked(format!("a unit's task failed: {join}")).into())
            }
        };
        match failed {
            UnitError::Stopped => self.left_over = true,
            UnitError::Stop(reason) => {
                let file = reason.file().is_some();
                match &self.own_stop {
                    None => {
                        if !file {
                            tracing::error!("{reason}");
                        }
                        self.own_stop = Some(reason);
                    }
                    Some(had) if file && had.file().is_none() => self.own_stop = Some(reason),
                    Some(_) => {}
                }
                self.left_over = true;
                halt.cancel();
            }
            UnitError::Failed(e) => {
                self.error.get_or_insert(e);
                self.left_over = true;
                halt.cancel();
            }
        }
    }

    /// On a stop: waits for the units in flight, at most `grace`.
    async fn wind_down(
        &mut self,
        grace: Option<Duration>,
        halt: &Stop,
        on_done: &mut impl FnMut(D) -> Result<(), UnitError<E>>,
    ) {
        let deadline = grace.map(|grace| tokio::time::Instant::now() + grace);
        loop {
            let next = match deadline {
                Some(deadline) => {
                    match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                        Ok(next) => next,
                        Err(_) => {
                            self.tasks.abort_all();
                            self.tasks.join_next().await
                        }
                    }
                }
                None => self.tasks.join_next().await,
            };
            match next {
                Some(joined) => self.take(joined, halt, on_done),
                None => return,
            }
        }
    }
}

/// Runs `units` (and the units they yield), at most `limits.concurrency`
/// at a time, until every one has come to a step or `stop` (the user's) or
/// the run itself stops. `work` does one unit; it gets the run's own stop,
/// which the user's also cancels. `on_done` takes each answer, in the
/// order they come.
pub async fn run<U, D, E, W, F>(
    units: impl IntoIterator<Item = U>,
    limits: Limits,
    stop: &Stop,
    work: W,
    mut on_done: impl FnMut(D) -> Result<(), UnitError<E>>,
) -> Ran<E>
where
    U: Send + 'static,
    D: Send + 'static,
    E: From<Panicked> + Send + 'static,
    W: Fn(U, Stop) -> F,
    F: Future<Output = Result<Step<U, D>, UnitError<E>>> + Send + 'static,
{
    let halt = stop.child();
    let concurrency = limits.concurrency.max(1);
    let mut cycle = Cycle {
        queue: units.into_iter().collect(),
        tasks: JoinSet::new(),
        own_stop: None,
        error: None,
        left_over: false,
    };
    // A unit's answer is taken before the next unit is launched in its
    // place, so nothing new starts after an answer that stops the run.
    while !halt.is_stopped() {
        if cycle.queue.is_empty() || cycle.tasks.len() >= concurrency {
            tokio::select! {
                joined = cycle.tasks.join_next() => match joined {
                    Some(joined) => cycle.take(joined, &halt, &mut on_done),
                    None => break,
                },
                _ = halt.stopped() => break,
            }
            continue;
        }
        let unit = cycle.queue.pop_front().expect("a unit is queued");
        cycle.tasks.spawn(work(unit, halt.clone()));
    }
    if halt.is_stopped() {
        cycle.wind_down(limits.grace, &halt, &mut on_done).await;
    }
    let drained = cycle.queue.is_empty() && !cycle.left_over && cycle.error.is_none();
    let stopped = cycle
        .own_stop
        .or_else(|| (stop.is_stopped() && !drained).then_some(StopReason::Signal));
    Ran {
        stopped: stopped.filter(|_| !drained),
        drained,
        error: cycle.error,
    }
}
