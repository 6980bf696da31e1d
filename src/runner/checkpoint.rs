//! A job's checkpoint: a durable [`Journal`] whose first line says what
//! the run is (its header) and whose other lines say what was sent and
//! answered. The runner creates it, or opens it and checks its header
//! against this run: an unfinished run of the same input and options is
//! continued, whatever the job ([`begin`]).

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
    #[error("{} holds an unfinished run that cannot be read ({source}); give --restart to start over", checkpoint.display())]
    Unreadable {
        checkpoint: PathBuf,
        #[source]
        source: JournalError,
    },
    #[error("{} holds an unfinished run of other input or options ({mismatch}); run the same command as that run to continue it, or give --restart to start this one over", checkpoint.display())]
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

/// The run's non-secret settings, keyed by their flags' names in snake_case
/// (`endpoint`, `rate_limit`, `concurrency`, ...), as the command line
/// gave them or defaulted them: what a resume or a continuing run uses
/// unless the flag (or its environment variable) is given again. Never a
/// secret: a secret is never a flag's value.
pub type Settings = serde_json::Map<String, serde_json::Value>;

/// Where a run begins.
pub enum Begin<L: Line> {
    /// No unfinished run to continue: create the checkpoint.
    Fresh,
    /// Continue the unfinished run: its checkpoint, opened, with its lines.
    Continue(Checkpoint<L>, Replay<L>),
}

/// The one rule for every job, applied to the checkpoint at `path` for a
/// run whose header is `this_run`: an unfinished run of the same input and
/// options is continued; one that differs is refused, saying what differs;
/// `restart`, no checkpoint, an empty one (its run stopped before its first
/// write) or a finished one begins afresh. A checkpoint that cannot be read
/// is refused rather than overwritten.
pub fn begin<L>(
    path: &Path,
    this_run: &L::Header,
    restart: bool,
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
        Err(JournalError::Missing { .. } | JournalError::Empty { .. }) => return Ok(Begin::Fresh),
        Err(e @ (JournalError::Corrupt { .. } | JournalError::NoHeader { .. })) => {
            return Err(CheckpointError::Unreadable {
                checkpoint: path.to_owned(),
                source: e,
            })
        }
        Err(e) => return Err(e.into()),
    };
    if finished(&lines) {
        return Ok(Begin::Fresh);
    }
    if let Some(mismatch) = header.differs_from(this_run) {
        return Err(CheckpointError::Mismatch {
            checkpoint: path.to_owned(),
            mismatch,
        });
    }
    let (opened, replay) = Checkpoint::open(path)?;
    Ok(Begin::Continue(opened, replay))
}

/// Removes a finished run's checkpoint (after it is closed).
pub fn remove(path: &Path) -> Result<(), JournalError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(JournalError::Write {
            path: path.to_owned(),
            source,
        }),
    }
}

/// What a file is, judged from its first line alone, before anything reads
/// it as a checkpoint (whose reader would warn about a "torn" line).
#[derive(Debug, Clone, PartialEq)]
pub enum Sniffed {
    /// An acgbulk checkpoint; its header line as JSON.
    Checkpoint(serde_json::Value),
    /// No file there.
    Missing,
    /// An empty file (a checkpoint whose run stopped before its first line).
    Empty,
    /// Anything else.
    Other,
}

/// Looks at the first line of `path`.
pub fn sniff(path: &Path) -> std::io::Result<Sniffed> {
    Ok(
        match crate::journal::first_record::<serde_json::Value>(path) {
            Ok(Some(header)) if header.get("t").and_then(|t| t.as_str()) == Some("header") => {
                Sniffed::Checkpoint(header)
            }
            Ok(Some(_)) => Sniffed::Other,
            Ok(None) => Sniffed::Empty,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Sniffed::Missing,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Sniffed::Other,
            Err(e) => return Err(e),
        },
    )
}

/// What job a checkpoint's header line belongs to, in words: `import`,
/// `delete`, `accounts-import`, `numbers export`.
pub fn kind_of(header: &serde_json::Value) -> String {
    let word = |key: &str| header.get(key).and_then(|v| v.as_str());
    match (word("action"), word("kind"), header.get("out")) {
        (Some(action), _, _) => action.to_owned(),
        (None, Some(kind), Some(_)) => format!("{kind} export"),
        (None, Some(kind), None) => kind.to_owned(),
        (None, None, _) => "unknown".to_owned(),
    }
}
