//! The checkpoint: an append-only journal of what a run decided and what
//! the service answered, durable before anything depends on it.
//!
//! Each line is `CRC32 JSON`: the CRC of the JSON text in eight hex digits.
//! Lines are written by one thread that commits everything waiting in one
//! write and one `fsync`, and a caller's `append` returns only once its line
//! is on disk. A crash can tear only the last line; loading drops a torn
//! tail (and cuts it off the file before appending again), so the journal
//! is never corrupt. An exclusive lock on the file keeps two runs apart.
//! No secret is ever written here.

use crate::sheet::SheetOptions;
use crate::validate::RuleOptions;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use tokio::sync::oneshot;

pub const VERSION: u32 = 1;

/// What the run does with each number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Import,
    Delete,
}

impl Action {
    /// The batch operation.
    pub fn operation(self) -> &'static str {
        match self {
            Action::Import => "createOrUpdateNumbers",
            Action::Delete => "deleteNumbers",
        }
    }

    /// The results file's `action` column.
    pub fn label(self) -> &'static str {
        match self {
            Action::Import => "createOrUpdate",
            Action::Delete => "delete",
        }
    }
}

/// The first line: what the run is, so a resume can redo the same plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    pub version: u32,
    pub action: Action,
    /// The input, as an absolute path.
    pub input: PathBuf,
    /// Size and SHA-256 of the input.
    pub fingerprint: String,
    pub sheet: SheetOptions,
    pub rules: RuleOptions,
    pub batch_size: usize,
    pub skip_invalid: bool,
    pub wait_sync: bool,
    pub sync_timeout_secs: u64,
    pub endpoint: String,
    pub api_version: String,
    pub results: PathBuf,
    pub report: PathBuf,
    pub plan_fingerprint: String,
    pub batches: u32,
    pub numbers: u64,
    pub created: String,
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "camelCase")]
pub enum Record {
    Header(Box<Header>),
    /// Positions `lo..hi` of batch `b` are about to be sent with this
    /// repeatability id and first-sent date (written before the first try).
    Sent {
        b: u32,
        lo: u32,
        hi: u32,
        id: String,
        first: String,
    },
    /// The service refused the part as a whole (400/409); it is sent again
    /// in halves.
    Split {
        b: u32,
        lo: u32,
        hi: u32,
        status: u16,
        code: Option<String>,
        req: String,
    },
    /// The final answer for positions `lo..hi`.
    Done {
        b: u32,
        lo: u32,
        hi: u32,
        status: u16,
        ok: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        req: String,
        /// Backend sync state per number, one letter each: `p`ending,
        /// `s`ynced, `f`ailed, `-` none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sync: Option<String>,
    },
    /// Every batch has its final answer.
    Finished {
        at: String,
    },
}

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
    #[error("{path} is not an acgbulk checkpoint (no header line)")]
    NoHeader { path: PathBuf },
}

fn encode(record: &Record) -> Vec<u8> {
    let json = serde_json::to_string(record).expect("records serialize");
    let mut line = format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes())).into_bytes();
    line.shrink_to_fit();
    line
}

/// Parses one line; `None` when its checksum or JSON is bad.
fn decode(line: &str) -> Option<Record> {
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
    /// header.
    pub fn create(path: &Path, header: Header) -> Result<Journal, JournalError> {
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
        file.write_all(&encode(&Record::Header(Box::new(header))))
            .map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        sync_dir(path).map_err(io_err)?;
        Ok(Journal::start(path, file))
    }

    /// Opens an existing journal: its header and records, with a torn last
    /// line cut off.
    pub fn open(path: &Path) -> Result<(Journal, Header, Vec<Record>), JournalError> {
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
        let mut records = records.into_iter();
        let header = match records.next() {
            Some(Record::Header(header)) => *header,
            _ => {
                return Err(JournalError::NoHeader {
                    path: path.to_owned(),
                })
            }
        };
        Ok((Journal::start(path, file), header, records.collect()))
    }

    /// Reads the header of a journal without locking it.
    pub fn peek(path: &Path) -> Result<(Header, Vec<Record>), JournalError> {
        let file = File::open(path).map_err(|source| JournalError::Io {
            path: path.to_owned(),
            source,
        })?;
        let (records, _) = read_records(&file, path)?;
        let mut records = records.into_iter();
        match records.next() {
            Some(Record::Header(header)) => Ok((*header, records.collect())),
            _ => Err(JournalError::NoHeader {
                path: path.to_owned(),
            }),
        }
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
    pub async fn append(&self, record: &Record) -> Result<(), JournalError> {
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

fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

/// The records of a journal and the length of its intact part.
fn read_records(file: &File, path: &Path) -> Result<(Vec<Record>, u64), JournalError> {
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

    fn header() -> Header {
        Header {
            version: VERSION,
            action: Action::Import,
            input: "/in.csv".into(),
            fingerprint: "1:ab".into(),
            sheet: SheetOptions::default(),
            rules: RuleOptions::default(),
            batch_size: 100,
            skip_invalid: false,
            wait_sync: false,
            sync_timeout_secs: 600,
            endpoint: "http://127.0.0.1:1".into(),
            api_version: "2024-02-29".into(),
            results: "/in.results.csv".into(),
            report: "/in.report.csv".into(),
            plan_fingerprint: "f".into(),
            batches: 1,
            numbers: 1,
            created: "now".into(),
        }
    }

    fn sent(b: u32) -> Record {
        Record::Sent {
            b,
            lo: 0,
            hi: 100,
            id: format!("id-{b}"),
            first: "Sat, 21 Nov 2026 10:00:00 GMT".into(),
        }
    }

    #[tokio::test]
    async fn appends_reopens_and_drops_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.checkpoint");
        let journal = Journal::create(&path, header()).unwrap();
        journal.append(&sent(0)).await.unwrap();
        journal.append(&sent(1)).await.unwrap();
        journal.close();
        // A crash mid-line.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"0badc0de {\"t\":\"sent\",\"b\":2").unwrap();
        drop(file);
        let (journal, h, records) = Journal::open(&path).unwrap();
        assert_eq!(h, header());
        assert_eq!(records, vec![sent(0), sent(1)]);
        journal.append(&sent(3)).await.unwrap();
        journal.close();
        let (_, records) = Journal::peek(&path).unwrap();
        assert_eq!(records, vec![sent(0), sent(1), sent(3)]);
    }

    #[tokio::test]
    async fn a_second_run_is_locked_out_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.checkpoint");
        let journal = Journal::create(&path, header()).unwrap();
        journal.append(&sent(0)).await.unwrap();
        assert!(matches!(
            Journal::open(&path),
            Err(JournalError::Locked { .. })
        ));
        journal.append(&sent(1)).await.unwrap();
        drop(journal);
        // Flip a byte in the middle line: not a torn tail.
        let mut text = std::fs::read_to_string(&path).unwrap();
        let second = text.find("\"b\":0").unwrap();
        text.replace_range(second..second + 5, "\"b\":7");
        std::fs::write(&path, text).unwrap();
        assert!(matches!(
            Journal::open(&path),
            Err(JournalError::Corrupt { line: 2, .. })
        ));
    }
}
