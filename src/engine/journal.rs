//! An import's checkpoint: a [`Journal`] of what the run decided and what
//! the service answered, durable before anything depends on it. No secret
//! is ever written here.

pub use crate::journal::{Journal, JournalError};
use crate::sheet::SheetOptions;
use crate::validate::RuleOptions;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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
    /// Accounts the sheet names that the gateway did not have when the run
    /// began: their rows are failed offline and left out of the plan (a
    /// resume leaves them out again, so its plan is the same).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_accounts: Vec<MissingAccount>,
}

/// An account the gateway does not have, and what to tell the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingAccount {
    pub name: String,
    /// The nearest account that exists, if one is close.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nearest: Option<String>,
}

impl MissingAccount {
    pub fn message(&self) -> String {
        let hint = match &self.nearest {
            Some(nearest) => format!("; did you mean '{nearest}'?"),
            None => "; create it first (acgbulk accounts import)".to_owned(),
        };
        format!(
            "account '{}' does not exist on the gateway (checked before sending){hint}",
            self.name
        )
    }
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

/// Starts an import's checkpoint at `path` with its header.
pub fn create(path: &Path, header: Header) -> Result<Journal, JournalError> {
    Journal::create(path, &Record::Header(Box::new(header)))
}

fn split(path: &Path, records: Vec<Record>) -> Result<(Header, Vec<Record>), JournalError> {
    let mut records = records.into_iter();
    match records.next() {
        Some(Record::Header(header)) => Ok((*header, records.collect())),
        _ => Err(JournalError::NoHeader {
            path: path.to_owned(),
        }),
    }
}

/// Opens an import's checkpoint (locked): its header and records.
pub fn open(path: &Path) -> Result<(Journal, Header, Vec<Record>), JournalError> {
    let (journal, records) = Journal::open(path)?;
    let (header, records) = split(path, records)?;
    Ok((journal, header, records))
}

/// Reads an import's checkpoint without locking it.
pub fn peek(path: &Path) -> Result<(Header, Vec<Record>), JournalError> {
    split(path, Journal::read(path)?)
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
            missing_accounts: Vec::new(),
            created: "now".into(),
        }
    }

    #[tokio::test]
    async fn header_and_records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.checkpoint");
        let sent = Record::Sent {
            b: 0,
            lo: 0,
            hi: 100,
            id: "id".into(),
            first: "date".into(),
        };
        let journal = create(&path, header()).unwrap();
        journal.append(&sent).await.unwrap();
        journal.close();
        let (h, records) = peek(&path).unwrap();
        assert_eq!(h, header());
        assert_eq!(records, vec![sent]);
        std::fs::write(&path, "").unwrap();
        assert!(matches!(open(&path), Err(JournalError::Empty { .. })));
    }
}
