//! Repeatable requests (OASIS, as Azure's REST guidelines use them): the
//! first request with a `Repeatability-Request-ID` is applied and its answer
//! kept; the same id with the same request gets that answer again without
//! being applied; the same id with another request is rejected.

use super::clock::Millis;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// An answer kept to be given again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The body, as text (every body this API sends is JSON).
    pub body: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepeatEntry {
    pub id: String,
    /// SHA-256 of method, path and body: "the same request".
    pub fingerprint: String,
    pub stored: Millis,
    /// `None` while the first request is still being processed.
    pub response: Option<StoredResponse>,
}

/// What to do with a request that carries a repeatability id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Never seen: process it (it is now marked in progress).
    New,
    /// Seen with the same request: answer with this.
    Replay(StoredResponse),
    /// Seen with the same request, still in progress.
    InProgress,
    /// Seen with another request.
    Mismatch,
}

/// Ids within the window, oldest first.
#[derive(Debug, Default)]
pub struct RepeatCache {
    entries: HashMap<String, RepeatEntry>,
    order: VecDeque<(Millis, String)>,
}

impl RepeatCache {
    /// Forgets ids stored before `now - window`.
    pub fn expire(&mut self, now: Millis, window: Millis) {
        while let Some((stored, id)) = self.order.front() {
            if now.saturating_sub(*stored) <= window {
                break;
            }
            if self.entries.get(id).is_some_and(|e| e.stored == *stored) {
                self.entries.remove(id);
            }
            self.order.pop_front();
        }
    }

    pub fn lookup(&mut self, id: &str, fingerprint: &str, now: Millis) -> Lookup {
        match self.entries.get(id) {
            Some(entry) if entry.fingerprint != fingerprint => Lookup::Mismatch,
            Some(RepeatEntry {
                response: Some(response),
                ..
            }) => Lookup::Replay(response.clone()),
            Some(_) => Lookup::InProgress,
            None => {
                self.entries.insert(
                    id.to_owned(),
                    RepeatEntry {
                        id: id.to_owned(),
                        fingerprint: fingerprint.to_owned(),
                        stored: now,
                        response: None,
                    },
                );
                self.order.push_back((now, id.to_owned()));
                Lookup::New
            }
        }
    }

    /// Keeps the answer to a request marked in progress.
    pub fn complete(&mut self, id: &str, response: StoredResponse) {
        if let Some(entry) = self.entries.get_mut(id) {
            entry.response = Some(response);
        }
    }

    /// Forgets an id whose request was not applied (it may be sent again).
    pub fn abandon(&mut self, id: &str) {
        self.entries.remove(id);
    }

    pub fn contains(&self, id: &str) -> bool {
        self.entries.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Completed entries, oldest first, for saving.
    pub fn snapshot(&self) -> Vec<RepeatEntry> {
        self.order
            .iter()
            .filter_map(|(stored, id)| self.entries.get(id).filter(|e| e.stored == *stored))
            .filter(|e| e.response.is_some())
            .cloned()
            .collect()
    }

    pub fn restore(entries: Vec<RepeatEntry>) -> RepeatCache {
        let mut cache = RepeatCache::default();
        for entry in entries {
            cache.order.push_back((entry.stored, entry.id.clone()));
            cache.entries.insert(entry.id.clone(), entry);
        }
        cache
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer() -> StoredResponse {
        StoredResponse {
            status: 200,
            headers: vec![],
            body: "{}".into(),
        }
    }

    #[test]
    fn first_then_replay_then_mismatch() {
        let mut cache = RepeatCache::default();
        assert_eq!(cache.lookup("a", "f1", 0), Lookup::New);
        assert_eq!(cache.lookup("a", "f1", 1), Lookup::InProgress);
        cache.complete("a", answer());
        assert_eq!(cache.lookup("a", "f1", 2), Lookup::Replay(answer()));
        assert_eq!(cache.lookup("a", "f2", 3), Lookup::Mismatch);
    }

    #[test]
    fn expires_after_the_window() {
        let mut cache = RepeatCache::default();
        cache.lookup("a", "f", 0);
        cache.complete("a", answer());
        cache.expire(1_000, 5_000);
        assert_eq!(cache.len(), 1);
        cache.expire(6_000, 5_000);
        assert!(cache.is_empty());
        assert_eq!(cache.lookup("a", "f2", 6_001), Lookup::New);
    }

    #[test]
    fn abandoned_ids_can_be_sent_again() {
        let mut cache = RepeatCache::default();
        cache.lookup("a", "f", 0);
        cache.abandon("a");
        assert_eq!(cache.lookup("a", "f", 1), Lookup::New);
    }
}
