//! A job's checkpoint: a durable [`Journal`] whose first line says what
//! the run is (its header) and whose other lines say what was sent and
//! answered. The runner creates it, or opens it and checks its header
//! against this run, and decides what an unfinished one means.

use crate::journal::{Journal, JournalError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// The lines of one job's checkpoint: its header, its entries, and the
/// line that says the run finished.
pub trait Line: Serialize + DeserializeOwned + Send + Sync + 'static {
    type Header;
    fn from_header(header: Self::Header) -> Self;
    /// The header, when this is the header line.
    fn into_header(self) -> Option<Self::Header>;
    fn is_finished(&self) -> bool;
}

/// A header that can say how it differs from this run's.
pub trait Header {
    /// What differs between the checkpoint's run (`self`) and `this_run`,
    /// among what must match for one to continue the other.
    fn differs_from(&self, this_run: &Self) -> Option<Mismatch>;
}

/// What differs between a checkpoint's run and this one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// The input's bytes differ (`was` and `now` describe them).
    #[error("{} has changed since the run began ({was} then, {now} now)", input.display())]
    Input {
        input: PathBuf,
        was: String,
        now: String,
    },
    /// A setting of the run differs.
    #[error("its {setting} was {was}, this run's is {now}")]
    Setting {
        setting: &'static str,
        was: String,
        now: String,
    },
}

impl Mismatch {
    /// `setting` differs when `was != now`.
    pub fn setting<T: PartialEq + std::fmt::Debug>(
        setting: &'static str,
        was: &T,
        now: &T,
    ) -> Option<Mismatch> {
        (was != now).then(|| Mismatch::Setting {
            setting,
            was: format!("{was:?}"),
            now: format!("{now:?}"),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{} holds an unfinished run; finish it with `acgbulk resume {}`, or give --restart to start over", checkpoint.display(), checkpoint.display())]
    Unfinished { checkpoint: PathBuf },
    #[error("{} belongs to another run ({mismatch}); give --restart to start this one over", checkpoint.display())]
    Mismatch {
        checkpoint: PathBuf,
        mismatch: Mismatch,
    },
}

impl CheckpointError {
    /// The file that could not be written, when that is the trouble.
    pub fn unwritable(&self) -> Option<&Path> {
        match self {
            CheckpointError::Journal(e) => e.unwritable(),
            _ => None,
        }
    }
}

/// An open, locked checkpoint of lines `L`.
pub struct Checkpoint<L> {
    journal: Journal,
    line: PhantomData<fn(L)>,
}

/// A checkpoint's header and its other lines.
pub type Replay<L> = (<L as Line>::Header, Vec<L>);

fn split<L: Line>(path: &Path, lines: Vec<L>) -> Result<Replay<L>, JournalError> {
    let mut lines = lines.into_iter();
    match lines.next().and_then(Line::into_header) {
        Some(header) => Ok((header, lines.collect())),
        None => Err(JournalError::NoHeader {
            path: path.to_owned(),
        }),
    }
}

impl<L: Line> Checkpoint<L> {
    /// Starts a checkpoint at `path` (replacing any file there) with its
    /// header, durable when this returns.
    pub fn create(path: &Path, header: L::Header) -> Result<Checkpoint<L>, JournalError> {
        let journal = Journal::create(path, &L::from_header(header))?;
        Ok(Checkpoint {
            journal,
            line: PhantomData,
        })
    }

    /// Opens a checkpoint (locked): its header and the lines after it.
    pub fn open(path: &Path) -> Result<(Checkpoint<L>, Replay<L>), JournalError> {
        let (journal, lines) = Journal::open(path)?;
        let replay = split(path, lines)?;
        Ok((
            Checkpoint {
                journal,
                line: PhantomData,
            },
            replay,
        ))
    }

    /// Reads a checkpoint without locking it.
    pub fn peek(path: &Path) -> Result<Replay<L>, JournalError> {
        split(path, Journal::read(path)?)
    }

    /// Appends `line`; returns once it is on disk.
    pub async fn append(&self, line: &L) -> Result<(), JournalError> {
        self.journal.append(line).await
    }

    pub fn path(&self) -> &Path {
        self.journal.path()
    }

    /// Waits for everything queued, then releases the file and its lock.
    pub fn close(self) {
        self.journal.close()
    }
}

/// Whether the lines hold the line that says the run finished.
pub fn finished<L: Line>(lines: &[L]) -> bool {
    lines.iter().any(Line::is_finished)
}

/// What a command does with an unfinished checkpoint of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfinished {
    /// Refuse to start unless restarting: the unfinished run is finished
    /// with `acgbulk resume` (import, delete). A checkpoint that was never
    /// written is no run.
    Refuse,
    /// Continue it when its header matches this run's; refuse one that
    /// does not (export). A checkpoint that cannot be read is started over.
    ContinueOrRefuse,
    /// Continue it when its header matches this run's; otherwise start over
    /// (accounts, RFIs).
    ContinueOrStartOver,
}

/// Where a run begins.
pub enum Begin<L: Line> {
    /// No unfinished run to continue: create the checkpoint.
    Fresh,
    /// Continue the unfinished run: its checkpoint, opened, with its lines.
    Continue(Checkpoint<L>, Replay<L>),
}

/// Applies `policy` to the checkpoint at `path` for a run whose header is
/// `this_run` (`None` when the header is not known yet, which only
/// [`Unfinished::Refuse`] allows). `restart` always begins afresh.
pub fn begin<L>(
    path: &Path,
    this_run: Option<&L::Header>,
    restart: bool,
    policy: Unfinished,
) -> Result<Begin<L>, CheckpointError>
where
    L: Line,
    L::Header: Header,
{
    if restart {
        return Ok(Begin::Fresh);
    }
    let (header, lines) = match Checkpoint::<L>::peek(path) {
        Ok(replay) => replay,
        // A run stopped before its first write sent nothing: start over.
        Err(JournalError::Missing { .. } | JournalError::Empty { .. }) => return Ok(Begin::Fresh),
        Err(e) if policy == Unfinished::Refuse => return Err(e.into()),
        Err(_) => return Ok(Begin::Fresh),
    };
    if finished(&lines) {
        return Ok(Begin::Fresh);
    }
    let checkpoint = path.to_owned();
    let mismatch = this_run.and_then(|this_run| header.differs_from(this_run));
    match (policy, mismatch) {
        (Unfinished::Refuse, _) => Err(CheckpointError::Unfinished { checkpoint }),
        (Unfinished::ContinueOrRefuse, Some(mismatch)) => Err(CheckpointError::Mismatch {
            checkpoint,
            mismatch,
        }),
        (Unfinished::ContinueOrStartOver, Some(_)) => Ok(Begin::Fresh),
        (_, None) => {
            let (opened, replay) = Checkpoint::open(path)?;
            Ok(Begin::Continue(opened, replay))
        }
    }
}
