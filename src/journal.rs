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
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
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
        file.set_len(0).map_err(io_err)?;
        let mut file = file;
        file.write_all(&encode(first)).map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        crate::durable::sync_dir(path).map_err(io_err)?;
        Ok(Journal::start(path, file))
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
            .map_err(io_err)?;
        lock(&file, path)?;
        let (records, good_len) = read_records(&file, path)?;
        file.set_len(good_len).map_err(io_err)?;
        file.seek(SeekFrom::End(0)).map_err(io_err)?;
        Ok((Journal::start(path, file), records))
    }

    /// Reads a journal's records without locking it.
    pub fn read<R: DeserializeOwned>(path: &Path) -> Result<Vec<R>, JournalError> {
        let file = File::open(path).map_err(|source| JournalError::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(read_records(&file, path)?.0)
    }

    fn start(path: &Path, mut file: File) -> Journal {
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
                    let result = file.write_all(&bytes).and_then(|()| file.sync_data());
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
        let io_err = |source| JournalError::Io {
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
