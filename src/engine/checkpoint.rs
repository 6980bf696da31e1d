//! An import's checkpoint: a durable journal of what the run decided and
//! what the service answered, durable before anything depends on it. No
//! secret is ever written here.

pub use crate::journal::JournalError;
use crate::model::ProvisioningStatus;
use crate::runner::checkpoint::{self, Mismatch, Settings};
use crate::sheet::SheetOptions;
use crate::validate::RuleOptions;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
    /// The run's non-secret settings (connection, pace, retries,
    /// concurrency, sync): a resume uses them unless given again.
    /// Checkpoints written before them have none.
    #[serde(default, skip_serializing_if = "Settings::is_empty")]
    pub settings: Settings,
}

impl Header {
    /// The settings a resume takes: the kept ones, and for a checkpoint
    /// written before settings were kept, those its header already held.
    pub fn kept_settings(&self) -> Settings {
        let mut kept = Settings::new();
        kept.insert("endpoint".into(), self.endpoint.clone().into());
        kept.insert("api_version".into(), self.api_version.clone().into());
        kept.insert("wait_sync".into(), self.wait_sync.into());
        kept.insert(
            "sync_timeout".into(),
            serde_json::to_value(std::time::Duration::from_secs(self.sync_timeout_secs))
                .expect("a duration is JSON"),
        );
        kept.extend(self.settings.clone());
        kept
    }
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

impl checkpoint::Header for Header {
    /// What decides the plan; the plan itself is compared once the
    /// accounts the run left out are left out again
    /// ([`super::continue_prepared`]).
    fn differs_from(&self, this_run: &Self) -> Option<Mismatch> {
        Mismatch::setting("action", &self.action, &this_run.action)
            // The same command against another gateway must not take what
            // this one answered as done there (`resume --endpoint` may).
            .or_else(|| Mismatch::setting("endpoint", &self.endpoint, &this_run.endpoint))
            .or_else(|| Mismatch::setting("input", &self.input, &this_run.input))
            .or_else(|| {
                (self.fingerprint != this_run.fingerprint).then(|| Mismatch::Input {
                    input: this_run.input.clone(),
                    was: self.fingerprint.clone(),
                    now: this_run.fingerprint.clone(),
                })
            })
            .or_else(|| Mismatch::setting("--batch-size", &self.batch_size, &this_run.batch_size))
            .or_else(|| {
                Mismatch::setting("--skip-invalid", &self.skip_invalid, &this_run.skip_invalid)
            })
            .or_else(|| Mismatch::setting("sheet options", &self.sheet, &this_run.sheet))
            .or_else(|| Mismatch::setting("validation options", &self.rules, &this_run.rules))
    }
}

/// The backend sync state of each number of a part, in order (`None`: the
/// answer did not say).
///
/// Written as a list of the API's words (`"pending"`, `"synced"`,
/// `"failed"`, `null`); checkpoints written before as one letter a number
/// (`p`, `s`, `f`, `-`) are read too.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncStates(pub Vec<Option<ProvisioningStatus>>);

impl SyncStates {
    pub fn get(&self, k: usize) -> Option<ProvisioningStatus> {
        self.0.get(k).copied().flatten()
    }
}

impl Serialize for SyncStates {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|s| s.map(ProvisioningStatus::as_str)))
    }
}

impl<'de> Deserialize<'de> for SyncStates {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Words(Vec<Option<String>>),
            Letters(String),
        }
        Ok(SyncStates(match Written::deserialize(deserializer)? {
            Written::Words(words) => words
                .iter()
                .map(|w| w.as_deref().and_then(ProvisioningStatus::parse_exact))
                .collect(),
            Written::Letters(letters) => letters
                .chars()
                .map(|letter| match letter {
                    'p' => Some(ProvisioningStatus::Pending),
                    's' => Some(ProvisioningStatus::Synced),
                    'f' => Some(ProvisioningStatus::Failed),
                    _ => None,
                })
                .collect(),
        }))
    }
}

/// One line of an import's checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "camelCase")]
pub enum Entry {
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
        /// Backend sync state per number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sync: Option<SyncStates>,
    },
    /// Every batch has its final answer.
    Finished {
        at: String,
    },
}

impl checkpoint::Line for Entry {
    type Header = Header;

    fn from_header(header: Header) -> Self {
        Entry::Header(Box::new(header))
    }

    fn into_header(self) -> Option<Header> {
        match self {
            Entry::Header(header) => Some(*header),
            _ => None,
        }
    }

    fn is_finished(&self) -> bool {
        matches!(self, Entry::Finished { .. })
    }
}

/// An import's checkpoint, open.
pub type Checkpoint = checkpoint::Checkpoint<Entry>;

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
            settings: Settings::new(),
            created: "now".into(),
        }
    }

    #[tokio::test]
    async fn header_and_entries_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.checkpoint");
        let sent = Entry::Sent {
            b: 0,
            lo: 0,
            hi: 100,
            id: "id".into(),
            first: "date".into(),
        };
        let checkpoint = Checkpoint::create(&path, header()).unwrap();
        checkpoint.append(&sent).await.unwrap();
        checkpoint.close();
        let (h, entries) = Checkpoint::peek(&path).unwrap();
        assert_eq!(h, header());
        assert_eq!(entries, vec![sent]);
        std::fs::write(&path, "").unwrap();
        assert!(matches!(
            Checkpoint::open(&path),
            Err(JournalError::Empty { .. })
        ));
    }

    #[test]
    fn sync_states_are_written_as_words_and_read_as_letters_too() {
        use ProvisioningStatus::*;
        let done = |sync: &str| {
            format!(
                r#"{{"t":"done","b":0,"lo":0,"hi":4,"status":200,"ok":true,"req":"r","sync":{sync}}}"#
            )
        };
        let states = SyncStates(vec![Some(Pending), Some(Synced), Some(Failed), None]);
        let Entry::Done { sync, .. } = serde_json::from_str(&done(r#""psf-""#)).unwrap() else {
            panic!("a done line")
        };
        assert_eq!(
            sync.as_ref(),
            Some(&states),
            "letters of an older checkpoint"
        );
        let written = serde_json::to_string(&states).unwrap();
        assert_eq!(written, r#"["pending","synced","failed",null]"#);
        let Entry::Done { sync, .. } = serde_json::from_str(&done(&written)).unwrap() else {
            panic!("a done line")
        };
        assert_eq!(sync, Some(states));
    }
}
