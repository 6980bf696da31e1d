//! Why a run stops early, and the token that stops it.

use serde::{Serialize, Serializer};
use std::io;
use std::path::{Path, PathBuf};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Exit status of a run stopped early that the same command (or `resume`)
/// continues.
pub const EXIT_STOPPED: u8 = 3;
/// Exit status of a run stopped by its configuration (credentials, role,
/// address): running it again as it is would meet the same refusal.
pub const EXIT_CONFIGURATION: u8 = 2;

/// Why a run stopped before every unit had its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Ctrl-C or SIGTERM.
    Signal,
    /// A file could not be written for want of room (a full disk, a quota,
    /// a file-size limit); the run goes on once there is room.
    NoRoom { path: PathBuf, detail: String },
    /// A file could not be written for another reason.
    WriteFailed { path: PathBuf, detail: String },
    /// The service refused the run as a whole (refused credentials, a
    /// missing role, an address not on the allowlist): every other unit
    /// would meet the same answer.
    Refused(String),
    /// The circuit breaker: the service answered nothing for the outage
    /// timeout. Nothing in flight is taken as failed; the run goes on
    /// once the service answers again.
    Outage(String),
}

impl StopReason {
    /// `path` could not be written: for want of room, or otherwise.
    pub fn cannot_write(path: &Path, error: &io::Error) -> StopReason {
        let (path, detail) = (path.to_owned(), error.to_string());
        match error.kind() {
            io::ErrorKind::StorageFull
            | io::ErrorKind::QuotaExceeded
            | io::ErrorKind::FileTooLarge => StopReason::NoRoom { path, detail },
            _ => StopReason::WriteFailed { path, detail },
        }
    }

    /// The stop a checkpoint error means, when it is a file that could not
    /// be written (a full disk): the run goes on once there is room.
    pub fn of_journal(error: &crate::journal::JournalError) -> Option<StopReason> {
        match error {
            crate::journal::JournalError::Write { path, source } => {
                Some(StopReason::cannot_write(path, source))
            }
            _ => None,
        }
    }

    /// The stop a service error means for the whole run: an outage, or a
    /// refusal every other unit would meet too; `None` for an error of
    /// the unit alone.
    pub fn of_service(error: &crate::client::ServiceError) -> Option<StopReason> {
        use crate::client::{ClientError, ServiceError};
        match error {
            ServiceError::Client(ClientError::Outage { .. }) => {
                Some(StopReason::Outage(error.to_string()))
            }
            _ if error.stops_the_run() => Some(StopReason::Refused(error.to_string())),
            _ => None,
        }
    }

    /// The file that could not be written, when that stopped the run.
    pub fn file(&self) -> Option<&Path> {
        match self {
            StopReason::NoRoom { path, .. } | StopReason::WriteFailed { path, .. } => Some(path),
            StopReason::Signal | StopReason::Refused(_) | StopReason::Outage(_) => None,
        }
    }

    /// The process's exit status for a run that stopped for this reason:
    /// the one place it is decided.
    pub fn exit_code(&self) -> u8 {
        match self {
            StopReason::Refused(_) => EXIT_CONFIGURATION,
            StopReason::Signal
            | StopReason::NoRoom { .. }
            | StopReason::WriteFailed { .. }
            | StopReason::Outage(_) => EXIT_STOPPED,
        }
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Signal => f.write_str("stopped by a signal"),
            StopReason::NoRoom { path, detail } | StopReason::WriteFailed { path, detail } => {
                write!(f, "cannot write {}: {detail}", path.display())
            }
            StopReason::Refused(message) | StopReason::Outage(message) => f.write_str(message),
        }
    }
}

/// In a `--json` summary, the reason in words.
impl Serialize for StopReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A run's cancellation: a token (cancelled by Ctrl-C/SIGTERM, or by the
/// run itself), and the same state as the `watch` the client's pacer and
/// retries wait on.
#[derive(Clone, Debug)]
pub struct Stop {
    token: CancellationToken,
    watch: watch::Receiver<bool>,
}

impl Stop {
    /// Follows `token`. Needs a Tokio runtime: a task carries the
    /// cancellation over to the client's `watch`.
    pub fn new(token: CancellationToken) -> Stop {
        let (tx, watch) = watch::channel(token.is_cancelled());
        let followed = token.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = followed.cancelled() => { let _ = tx.send(true); }
                _ = tx.closed() => {}
            }
        });
        Stop { token, watch }
    }

    /// A stop of its own that this one's cancellation also cancels.
    pub fn child(&self) -> Stop {
        Stop::new(self.token.child_token())
    }

    pub fn cancel(&self) {
        self.token.cancel();
    }

    pub fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Returns once cancelled.
    pub async fn stopped(&self) {
        self.token.cancelled().await
    }

    /// What the client waits on (`ProvisioningClient::execute` and the
    /// pacer take a `watch::Receiver<bool>`).
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.watch.clone()
    }

    pub fn token(&self) -> &CancellationToken {
        &self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_words() {
        let full = io::Error::from(io::ErrorKind::StorageFull);
        let no_room = StopReason::cannot_write(Path::new("/d/run.csv"), &full);
        assert!(matches!(no_room, StopReason::NoRoom { .. }));
        assert_eq!(no_room.exit_code(), EXIT_STOPPED);
        assert!(no_room.to_string().starts_with("cannot write /d/run.csv: "));
        assert_eq!(no_room.file(), Some(Path::new("/d/run.csv")));
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert!(matches!(
            StopReason::cannot_write(Path::new("/x"), &denied),
            StopReason::WriteFailed { .. }
        ));
        assert_eq!(StopReason::Signal.exit_code(), EXIT_STOPPED);
        assert_eq!(StopReason::Signal.to_string(), "stopped by a signal");
        let refused = StopReason::Refused("the service refused the credential".into());
        assert_eq!(refused.exit_code(), EXIT_CONFIGURATION);
        let outage = crate::client::ServiceError::Client(crate::client::ClientError::Outage {
            endpoint: "https://provapi.example".into(),
            silent: std::time::Duration::from_secs(300),
            cause: "connection refused".into(),
        });
        let outage = StopReason::of_service(&outage).expect("a stop");
        assert!(matches!(outage, StopReason::Outage(_)));
        assert_eq!(outage.exit_code(), EXIT_STOPPED);
        assert_eq!(
            outage.to_string(),
            "no answer from https://provapi.example for 5m (the outage timeout); last: connection refused"
        );
        assert_eq!(
            serde_json::to_value(&refused).unwrap(),
            "the service refused the credential"
        );
    }

    #[tokio::test]
    async fn a_child_follows_its_parent_and_the_watch_follows_the_token() {
        let parent = Stop::new(CancellationToken::new());
        let child = parent.child();
        child.cancel();
        assert!(child.is_stopped() && !parent.is_stopped());
        let child = parent.child();
        let mut watch = child.watch();
        parent.cancel();
        child.stopped().await;
        watch.wait_for(|s| *s).await.unwrap();
    }
}
