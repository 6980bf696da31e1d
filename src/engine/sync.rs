//! `--wait-sync`: after the writes, poll the accounts' number lists (paged,
//! at the run's pace: never one GET per number) until no number of the run
//! is pending backend sync, or the time runs out.

use super::PartDone;
use crate::client::pacer::sleep_or_stop;
use crate::client::{ListOptions, ProvisioningClient};
use crate::model::{Number, ProvisioningStatus};
use crate::plan::Plan;
use crate::validate::pipeline::Expanded;
use rustc_hash::FxHashMap;
use std::collections::BTreeSet;
use std::time::Instant;
use tokio::sync::watch;

/// Sync states learnt by polling, over what the writes answered.
#[derive(Debug, Default)]
pub struct SyncState {
    /// Numbers still pending: number to entry.
    pending: FxHashMap<u64, u32>,
    accounts: BTreeSet<u32>,
    /// What polling found, by entry: the state and the backend's errors
    /// (JSON).
    found: FxHashMap<u32, (Option<ProvisioningStatus>, Option<String>)>,
}

impl SyncState {
    pub fn from_outcomes(
        plan: &Plan,
        expanded: &Expanded,
        outcomes: &[Option<Vec<PartDone>>],
    ) -> SyncState {
        let mut state = SyncState::default();
        for (b, parts) in outcomes.iter().enumerate() {
            for part in parts.iter().flatten() {
                let Some(states) = &part.sync else { continue };
                for (&e, answered) in plan
                    .entries(b, part.lo as usize, part.hi as usize)
                    .iter()
                    .zip(&states.0)
                {
                    if *answered == Some(ProvisioningStatus::Pending) {
                        state.pending.insert(expanded.entries[e as usize].number, e);
                        state.accounts.insert(plan.batches[b].account);
                    }
                }
            }
        }
        state
    }

    pub fn pending(&self) -> u64 {
        self.pending.len() as u64
    }

    /// What polling learnt of `entry`, if anything.
    pub fn status(&self, entry: u32) -> Option<(Option<ProvisioningStatus>, Option<String>)> {
        self.found.get(&entry).cloned()
    }

    fn learn(&mut self, number: &Number) {
        let Some(digits) = crate::spelling::e164_digits(&number.telephone_number) else {
            return;
        };
        let Some(&entry) = self.pending.get(&digits) else {
            return;
        };
        let state = number
            .service_provisioning_status
            .as_deref()
            .and_then(ProvisioningStatus::parse_exact);
        if state == Some(ProvisioningStatus::Pending) {
            return;
        }
        let errors = number
            .service_provisioning_errors
            .as_ref()
            .map(|e| serde_json::to_string(e).expect("serializes"));
        self.found.insert(entry, (state, errors));
        self.pending.remove(&digits);
    }
}

/// The first backend error of a `serviceProvisioningErrors` JSON list.
pub fn first_error(errors: &str) -> (String, String) {
    let list: Vec<crate::model::ServiceProvisioningError> =
        serde_json::from_str(errors).unwrap_or_default();
    match list.first() {
        Some(e) => (
            e.code.clone(),
            match &e.target {
                Some(target) => format!("backend sync failed ({target}): {}", e.message),
                None => format!("backend sync failed: {}", e.message),
            },
        ),
        None => ("SyncFailed".into(), "backend sync failed".into()),
    }
}

/// Polls until nothing of the run is pending, `deadline` passes, or `stop`.
pub async fn wait(
    client: &ProvisioningClient,
    expanded: &Expanded,
    state: &mut SyncState,
    poll: std::time::Duration,
    deadline: Instant,
    stop: &mut watch::Receiver<bool>,
) {
    while state.pending() > 0 && Instant::now() < deadline {
        if sleep_or_stop(poll, stop).await.is_err() {
            return;
        }
        for account in state.accounts.clone() {
            let name = &expanded.accounts[account as usize];
            let mut pager = client.list_numbers(Some(name), &ListOptions::page_size(1000));
            while let Some(page) = pager.next_page(stop).await {
                match page {
                    Ok(page) => page.items.iter().for_each(|number| state.learn(number)),
                    // An answer, but not a page: try this account again
                    // at the next poll.
                    Err(e) if e.answered() => {
                        tracing::warn!("wait-sync: listing {name}: {e}");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!("wait-sync: {e}");
                        return;
                    }
                }
            }
        }
        state.accounts.retain(|&a| {
            state
                .pending
                .values()
                .any(|&e| expanded.entries[e as usize].account == a)
        });
    }
}
