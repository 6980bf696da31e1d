//! Durable append-only journals: the checkpoints of imports and exports.
//!
//! Each line is `CRC32 JSON`: the CRC of the JSON text in eight hex digits.
//! Lines are written by one thread that commits everything waiting in one
//! write and one `fsync`, and a caller's `append` returns only once its line
//! is on disk. A crash can tear only the last line; loading drops a torn
//! tail (and cuts it off the file before appending again), so a journal is
//! never corrupt. An exclusive lock on the file keeps two runs apart.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use tokio::sync::oneshot;

/// Why a journal cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path} is in use by another acgbulk run (it is locked); wait for it or stop it first"
    )]
    Locked { path: PathBuf },
    #[error("{path}: line {line} is damaged ({why}); the checkpoint cannot be trusted")]
    Corrupt {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error("{path} is not an acgbulk checkpoint of this kind (no header line)")]
    NoHeader { path: PathBuf },
    /// An append (or the first line) could not be written: the records
    /// before it are intact and the failed one is not in the file.
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is in use by another acgbulk run (its lock {lock} is held); wait for it or stop it first, or give this run another results file")]
    InUse { path: PathBuf, lock: PathBuf },
    /// There is no file: no run got as far as its first write there.
    #[error("{path} does not exist")]
    Missing { path: PathBuf },
    /// The file holds no complete line: its run was stopped before its
    /// first write was on disk.
    #[error("{path} is empty (its run stopped before writing its first line)")]
    Empty { path: PathBuf },
}

impl JournalError {
    /// The file that could not be written, when that is the trouble.
    pub fn unwritable(&self) -> Option<&Path> {
        match self {
            JournalError::Write { path, .. } => Some(path),
            _ => None,
        }
    }
}

fn encode<R: Serialize>(record: &R) -> Vec<u8> {
    let json = serde_json::to_string(record).expect("records serialize");
    let mut line = format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes())).into_bytes();
    line.shrink_to_fit();
    line
}

/// Parses one line; `None` when its checksum or JSON is bad.
fn decode<R: DeserializeOwned>(line: &str) -> Option<R> {
    let (crc, json) = line.split_once(' ')?;
    let crc = u32::from_str_radix(crc, 16).ok()?;
    if crc32fast::hash(json.as_bytes()) != crc {
        return None;
    }
    serde_json::from_str(json).ok()
}

/// The first record of the file at `path`, without reading further (at
/// most 1 MiB) and without a word about a torn line: `None` for an empty
/// file, or one whose only line is a record torn by a crash (its run
/// stopped before its first line was on disk); an `InvalidData` error for
/// a first line that is not a record.
pub fn first_record<R: DeserializeOwned>(path: &Path) -> io::Result<Option<R>> {
    let file = File::open(path)?;
    let mut line = Vec::new();
    BufReader::new(file)
        .take(1 << 20)
        .read_until(b'\n', &mut line)?;
    let not_a_record = || io::Error::new(io::ErrorKind::InvalidData, "not a checkpoint line");
    let Some(text) = line.strip_suffix(b"\n") else {
        let torn = line.is_empty()
            || (line.len() > 9 && line[..8].iter().all(u8::is_ascii_hexdigit) && line[8] == b' ');
        return if torn { Ok(None) } else { Err(not_a_record()) };
    };
    std::str::from_utf8(text)
        .ok()
        .and_then(decode)
        .map(Some)
        .ok_or_else(not_a_record)
}

type Commit = (Vec<u8>, oneshot::Sender<io::Result<()>>);

/// An open, locked journal.
pub struct Journal {
    path: PathBuf,
    queue: std::sync::mpsc::Sender<Commit>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Journal {
    /// Starts a new journal at `path` (replacing any file there) with its
    /// first record.
    pub fn create<R: Serialize>(path: &Path, first: &R) -> Result<Journal, JournalError> {
        let io_err = |source| JournalError::Io {
            path: path.to_owned(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_err)?;
        lock(&file, path)?;
        let first = encode(first);
        let mut file = file;
        let written = file
            .set_len(0)
            .and_then(|()| file.write_all(&first))
            .and_then(|()| file.sync_all())
            .and_then(|()| crate::durable::sync_dir(path));
        if let Err(source) = written {
            // A checkpoint without its header line is of no use to anyone.
            let _ = std::fs::remove_file(path);
            return Err(JournalError::Write {
                path: path.to_owned(),
                source,
            });
        }
        Ok(Journal::start(path, file, first.len() as u64))
    }

    /// Opens an existing journal: its records, with a torn last line cut
    /// off.
    pub fn open<R: DeserializeOwned>(path: &Path) -> Result<(Journal, Vec<R>), JournalError> {
        let io_err = |source| JournalError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|source| open_error(path, source))?;
        lock(&file, path)?;
        let (records, good_len) = read_records(&file, path)?;
        file.set_len(good_len).map_err(io_err)?;
        file.seek(SeekFrom::End(0)).map_err(io_err)?;
        Ok((Journal::start(path, file, good_len), records))
    }

    /// Reads a journal's records without locking it.
    pub fn read<R: DeserializeOwned>(path: &Path) -> Result<Vec<R>, JournalError> {
        let file = File::open(path).map_err(|source| open_error(path, source))?;
        Ok(read_records(&file, path)?.0)
    }

    /// `len` is the length of the file's intact records, where it is cut
    /// back to when a write fails.
    fn start(path: &Path, mut file: File, mut len: u64) -> Journal {
        let (queue, commits) = std::sync::mpsc::channel::<Commit>();
        let writer = std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || {
                // Everything queued while the last fsync ran goes out in one
                // write and one fsync.
                while let Ok(first) = commits.recv() {
                    let mut batch = vec![first];
                    while let Ok(more) = commits.try_recv() {
                        batch.push(more);
                    }
                    let bytes: Vec<u8> = batch
                        .iter()
                        .flat_map(|(line, _)| line.iter().copied())
                        .collect();
                    let mut result = file.write_all(&bytes).and_then(|()| file.sync_data());
                    match &result {
                        Ok(()) => len += bytes.len() as u64,
                        // A full disk may take part of the write: cut it
                        // off, so that a later line (once there is room)
                        // does not follow a torn one, which would make the
                        // checkpoint unreadable.
                        Err(_) => {
                            if let Err(e) = file
                                .set_len(len)
                                .and_then(|()| file.seek(SeekFrom::Start(len)).map(drop))
                            {
                                result = Err(e);
                            }
                        }
                    }
                    for (_, done) in batch {
                        let _ = done.send(match &result {
                            Ok(()) => Ok(()),
                            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                        });
                    }
                }
            })
            .expect("a thread for the checkpoint");
        Journal {
            path: path.to_owned(),
            queue,
            writer: Some(writer),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record`; returns once it is on disk.
    pub async fn append<R: Serialize>(&self, record: &R) -> Result<(), JournalError> {
        let (done, wait) = oneshot::channel();
        let io_err = |source| JournalError::Write {
            path: self.path.clone(),
            source,
        };
        self.queue
            .send((encode(record), done))
            .map_err(|_| io_err(io::Error::other("the checkpoint writer stopped")))?;
        wait.await
            .map_err(|_| io_err(io::Error::other("the checkpoint writer stopped")))?
            .map_err(io_err)
    }

    /// Waits for everything queued, then releases the file and its lock.
    pub fn close(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        let (queue, _) = std::sync::mpsc::channel();
        drop(std::mem::replace(&mut self.queue, queue));
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.shut();
    }
}

/// Keeps two runs off one file that is replaced by renaming (a results
/// file), which cannot itself hold a lock: an exclusive lock on a lock file
/// beside it, `FILE.lock`, held while the run lasts and removed after.
pub struct RunLock {
    path: PathBuf,
    _file: File,
}

impl RunLock {
    /// Locks `target` for this run, or says which run holds it.
    pub fn acquire(target: &Path) -> Result<RunLock, JournalError> {
        let mut name = target.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let write_err = |source| JournalError::Write {
            path: path.clone(),
            source,
        };
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(write_err)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(JournalError::InUse {
                        path: target.to_owned(),
                        lock: path,
                    })
                }
                Err(std::fs::TryLockError::Error(source)) => {
                    return Err(JournalError::Io { path, source })
                }
            }
            if still_there(&file, &path) {
                return Ok(RunLock { path, _file: file });
            }
            // The run before removed the file after we opened it: our lock
            // is on a file nobody else will open. Lock the one there now.
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed while still locked, so that a run waiting on this file
        // sees it gone (see `still_there`) rather than taking a lock on it.
        if cfg!(unix) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(unix)]
fn still_there(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(held), Ok(now)) => held.dev() == now.dev() && held.ino() == now.ino(),
        _ => false,
    }
}

/// Without inode numbers the lock file is never removed, so the file
/// locked is always the one there.
#[cfg(not(unix))]
fn still_there(_: &File, _: &Path) -> bool {
    true
}

fn lock(file: &File, path: &Path) -> Result<(), JournalError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(JournalError::Locked {
            path: path.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(JournalError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

fn open_error(path: &Path, source: io::Error) -> JournalError {
    if source.kind() == io::ErrorKind::NotFound {
        JournalError::Missing {
            path: path.to_owned(),
        }
    } else {
        JournalError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// The records of a journal and the length of its intact part.
fn read_records<R: DeserializeOwned>(
    file: &File,
    path: &Path,
) -> Result<(Vec<R>, u64), JournalError> {
    let io_err = |source| JournalError::Io {
        path: path.to_owned(),
        source,
    };
    let mut reader = BufReader::new(file);
    reader.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let mut records = Vec::new();
    let mut good = 0u64;
    let mut line = String::new();
    let mut number = 0;
    let mut damaged: Option<(usize, String)> = None;
    loop {
        line.clear();
        let read = match reader.read_line(&mut line) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                damaged = Some((number + 1, "not UTF-8".into()));
                break;
            }
            Err(e) => return Err(io_err(e)),
        };
        if read == 0 {
            break;
        }
        number += 1;
        let complete = line.ends_with('\n');
        match decode(line.trim_end_matches('\n')).filter(|_| complete) {
            Some(record) => {
                if let Some((at, why)) = damaged.take() {
                    // A good line after a bad one: not a torn tail.
                    return Err(JournalError::Corrupt {
                        path: path.to_owned(),
                        line: at,
                        why,
                    });
                }
                records.push(record);
                good += read as u64;
            }
            None if damaged.is_none() => {
                damaged = Some((
                    number,
                    if complete {
                        "checksum mismatch".into()
                    } else {
                        "incomplete line".into()
                    },
                ));
            }
            None => {}
        }
    }
    if records.is_empty() {
        // Not even the first line is whole: the run that created the file
        // was stopped before that line was on disk.
        return Err(JournalError::Empty {
            path: path.to_owned(),
        });
    }
    if let Some((at, why)) = damaged {
        tracing::warn!("{}: dropping a torn last line {at} ({why})", path.display());
    }
    Ok((records, good))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Line {
        n: u32,
    }

    #[tokio::test]
    async fn appends_reopens_and_drops_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.checkpoint");
        let journal = Journal::create(&path, &Line { n: 0 }).unwrap();
        journal.append(&Line { n: 1 }).await.unwrap();
        journal.append(&Line { n: 2 }).await.unwrap();
        journal.close();
        // A crash mid-line.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"0badc0de {\"n\":3").unwrap();
        drop(file);
        let (journal, records) = Journal::open::<Line>(&path).unwrap();
        assert_eq!(records, vec![Line { n: 0 }, Line { n: 1 }, Line { n: 2 }]);
        journal.append(&Line { n: 4 }).await.unwrap();
        journal.close();
        let records: Vec<Line> = Journal::read(&path).unwrap();
        assert_eq!(records.last(), Some(&Line { n: 4 }));
        assert_eq!(records.len(), 4);
    }

    #[test]
    fn a_results_lock_is_exclusive_and_removed_after() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("run.results.csv");
        let lock = RunLock::acquire(&results).unwrap();
        assert!(dir.path().join("run.results.csv.lock").exists());
        let Err(refused) = RunLock::acquire(&results) else {
            panic!("locked")
        };
        assert!(matches!(refused, JournalError::InUse { .. }));
        assert!(refused.to_string().contains("another acgbulk run"));
        drop(lock);
        assert!(!dir.path().join("run.results.csv.lock").exists());
        drop(RunLock::acquire(&results).unwrap());
    }

    #[test]
    fn a_checkpoint_never_written_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.checkpoint");
        assert!(matches!(
            Journal::read::<Line>(&path),
            Err(JournalError::Missing { .. })
        ));
        std::fs::write(&path, "").unwrap();
        assert!(matches!(
            Journal::read::<Line>(&path),
            Err(JournalError::Empty { .. })
        ));
        std::fs::write(&path, "0badc0de {\"n\"").unwrap();
        assert!(matches!(
            Journal::open::<Line>(&path),
            Err(JournalError::Empty { .. })
        ));
    }

    #[tokio::test]
    async fn a_failed_append_leaves_no_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.checkpoint");
        let journal = Journal::create(&path, &Line { n: 0 }).unwrap();
        journal.append(&Line { n: 1 }).await.unwrap();
        journal.close();
        // Another handle makes the writer's appends fail: opened read-only.
        let len = std::fs::metadata(&path).unwrap().len();
        let file = OpenOptions::new().read(true).open(&path).unwrap();
        let journal = Journal::start(&path, file, len);
        let failed = journal.append(&Line { n: 2 }).await.expect_err("fails");
        assert!(failed.unwritable().is_some(), "{failed}");
        assert!(failed.to_string().starts_with("cannot write"), "{failed}");
        journal.close();
        let records: Vec<Line> = Journal::read(&path).unwrap();
        assert_eq!(records, vec![Line { n: 0 }, Line { n: 1 }]);
    }

    #[tokio::test]
    async fn a_second_run_is_locked_out_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.checkpoint");
        let journal = Journal::create(&path, &Line { n: 0 }).unwrap();
        journal.append(&Line { n: 1 }).await.unwrap();
        assert!(matches!(
            Journal::open::<Line>(&path),
            Err(JournalError::Locked { .. })
        ));
        journal.append(&Line { n: 2 }).await.unwrap();
        drop(journal);
        // Change a byte of the middle line: not a torn tail.
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replacen("\"n\":1", "\"n\":7", 1);
        std::fs::write(&path, text).unwrap();
        assert!(matches!(
            Journal::open::<Line>(&path),
            Err(JournalError::Corrupt { line: 2, .. })
        ));
    }
}
