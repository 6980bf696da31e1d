//! The emulator's data: accounts, numbers, RFIs and civic addresses, with
//! their ETags, modification times and backend-sync state, and the counters
//! `/_emulator/stats` reports.
//!
//! Numbers are kept compactly (a million fit in about a hundred megabytes):
//! keyed by their digits, with the owning account's name shared and their
//! service details interned, since a bulk load gives most numbers the same
//! configuration.

use super::repeat::RepeatCache;
use crate::model::{
    Account, CivicAddress, NumberConfiguration, NumberServiceDetails, RequestForInformation,
    ServiceProvisioningError,
};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use super::clock::{now_ms, Millis};

/// What a number is, apart from its digits and account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NumberBody {
    #[serde(default)]
    pub service_details: NumberServiceDetails,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<NumberConfiguration>,
}

/// Backend sync of a resource whose services sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendSync {
    /// No service of the resource syncs to a backend.
    None,
    /// Written; the backend answers at `due`.
    Due(Millis),
}

#[derive(Clone, Debug)]
pub struct NumberRecord {
    pub account: Arc<str>,
    pub body: Arc<NumberBody>,
    pub modified: Millis,
    pub sync: BackendSync,
    /// How many writes changed this number: tests prove nothing is
    /// applied twice with it.
    pub writes: u32,
}

#[derive(Clone, Debug)]
pub struct AccountRecord {
    /// The writable fields as last written.
    pub account: Account,
    pub modified: Millis,
    /// When the Direct Routing subdomain and tokens were last changed:
    /// provisioning them takes the sync delay from then, whatever else
    /// the account's writes change.
    pub subdomain_since: Millis,
    pub sync: BackendSync,
    pub numbers: BTreeSet<u64>,
}

#[derive(Clone, Debug)]
pub struct RfiRecord {
    pub rfi: RequestForInformation,
}

/// Counters for `/_emulator/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    pub requests: u64,
    pub throttled: u64,
    /// Write requests that changed state (a batch counts once).
    pub writes_applied: u64,
    /// Numbers created, changed or deleted by writes.
    pub number_writes: u64,
    pub repeats_replayed: u64,
    pub repeats_rejected: u64,
    pub faults_injected: u64,
    pub dropped_after_commit: u64,
    pub tokens_issued: u64,
    pub unauthorized: u64,
    pub forbidden: u64,
    pub per_route: BTreeMap<String, u64>,
}

#[derive(Default)]
pub struct Store {
    pub accounts: BTreeMap<String, AccountRecord>,
    pub numbers: BTreeMap<u64, NumberRecord>,
    pub rfis: BTreeMap<String, RfiRecord>,
    pub civic: BTreeMap<String, BTreeMap<String, CivicAddress>>,
    pub counters: Counters,
    pub repeats: RepeatCache,
    bodies: FxHashSet<Arc<NumberBody>>,
    account_names: FxHashMap<String, Arc<str>>,
    /// Changed since the last save.
    pub dirty: bool,
}

/// The strong ETag of a representation: a hash of the bytes served, so it
/// changes exactly when they do (sync status and counts included).
pub fn etag_of(served: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, served);
    format!("\"0x{}\"", hex::encode_upper(&digest.as_ref()[..8]))
}

/// `If-Match` / `If-None-Match` lists: `*` or quoted tags.
pub fn etag_matches(header: &str, etag: Option<&str>) -> bool {
    header.split(',').map(str::trim).any(|candidate| {
        candidate == "*" && etag.is_some()
            || etag.is_some_and(|e| candidate.trim_start_matches("W/") == e)
    })
}

impl Store {
    /// The shared copy of `body`.
    pub fn intern(&mut self, body: NumberBody) -> Arc<NumberBody> {
        if let Some(existing) = self.bodies.get(&body) {
            return existing.clone();
        }
        let body = Arc::new(body);
        self.bodies.insert(body.clone());
        body
    }

    pub fn account_name(&mut self, name: &str) -> Arc<str> {
        if let Some(existing) = self.account_names.get(name) {
            return existing.clone();
        }
        let shared: Arc<str> = Arc::from(name);
        self.account_names.insert(name.to_owned(), shared.clone());
        shared
    }

    /// Drops interned bodies no number uses any more (after deletes).
    pub fn compact(&mut self) {
        self.bodies.retain(|b| Arc::strong_count(b) > 1);
    }

    /// Stores a number, keeping the account's index current. Returns true
    /// when it was new.
    pub fn put_number(&mut self, number: u64, record: NumberRecord) -> bool {
        let account = record.account.to_string();
        let previous = self.numbers.insert(number, record);
        if let Some(previous) = &previous {
            if *previous.account != *account {
                if let Some(old) = self.accounts.get_mut(&*previous.account) {
                    old.numbers.remove(&number);
                }
            }
        }
        if let Some(owner) = self.accounts.get_mut(&account) {
            owner.numbers.insert(number);
        }
        self.counters.number_writes += 1;
        self.dirty = true;
        previous.is_none()
    }

    pub fn remove_number(&mut self, number: u64) -> Option<NumberRecord> {
        let removed = self.numbers.remove(&number)?;
        if let Some(owner) = self.accounts.get_mut(&*removed.account) {
            owner.numbers.remove(&number);
        }
        self.counters.number_writes += 1;
        self.dirty = true;
        Some(removed)
    }

    /// How many numbers of `account` use each service, for `numberCount`.
    pub fn service_counts(&self, account: &AccountRecord) -> ServiceCounts {
        let mut counts = ServiceCounts::default();
        for number in &account.numbers {
            if let Some(record) = self.numbers.get(number) {
                let d = &record.body.service_details;
                let on = |s: &Option<crate::model::TeamsNumberService>| {
                    s.as_ref().is_some_and(|s| s.enabled)
                };
                let on2 = |s: &Option<crate::model::EnabledService>| {
                    s.as_ref().is_some_and(|s| s.enabled)
                };
                counts.operator_connect += on(&d.teams_operator_connect) as u64;
                counts.phone_mobile += on(&d.teams_phone_mobile) as u64;
                counts.direct_routing += on2(&d.teams_direct_routing) as u64;
                counts.zoom += on2(&d.zoom_phone_cloud_peering) as u64;
                counts.call_protection += on2(&d.azure_operator_call_protection) as u64;
            }
        }
        counts
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ServiceCounts {
    pub operator_connect: u64,
    pub phone_mobile: u64,
    pub direct_routing: u64,
    pub zoom: u64,
    pub call_protection: u64,
}

/// The backend's verdict on a number once its sync is due: the documented
/// failure for an empty usage, the same for missing capabilities, and a
/// calling-user number with neither an address nor permission for the
/// customer to set one.
pub fn number_sync_errors(body: &NumberBody) -> Vec<ServiceProvisioningError> {
    let mut errors = Vec::new();
    for (service, target) in [
        (&body.service_details.teams_operator_connect, "oc"),
        (&body.service_details.teams_phone_mobile, "tpm"),
    ] {
        let Some(service) = service.as_ref().filter(|s| s.enabled) else {
            continue;
        };
        let config = service.configuration.clone().unwrap_or_default();
        let mut missing = Vec::new();
        if config.usage.as_deref().unwrap_or("").trim().is_empty() {
            missing.push("Usage");
        }
        if config.choosable_capabilities.is_empty() {
            missing.push("ChoosableCapabilities");
        }
        if !missing.is_empty() {
            errors.push(ServiceProvisioningError {
                code: "InvalidRequest".into(),
                message: format!(
                    "Invalid/missing required configuration attributes: {}",
                    missing.join(", ")
                ),
                target: Some(target.into()),
            });
        } else if config.usage.as_deref() == Some("CallingUserAssignment")
            && config.allow_tenant_address_update != Some(true)
            && config.civic_address_id.is_none()
            && config.location_id.is_none()
        {
            errors.push(ServiceProvisioningError {
                code: "InvalidRequest".into(),
                message: "An emergency address (civicAddressId or locationId) is required for CallingUserAssignment numbers unless allowTenantAddressUpdate is true".into(),
                target: Some(target.into()),
            });
        }
    }
    errors
}

/// The backend's verdict on an account once its sync is due.
pub fn account_sync_errors(account: &Account) -> Vec<ServiceProvisioningError> {
    let d = &account.service_details;
    let teams = [&d.teams_operator_connect, &d.teams_phone_mobile]
        .into_iter()
        .any(|s| {
            s.as_ref()
                .is_some_and(|s| s.enabled && s.sync_enabled == Some(true))
        });
    if teams && d.teams_tenant_id.as_deref().unwrap_or("").is_empty() {
        return vec![ServiceProvisioningError {
            code: "InvalidRequest".into(),
            message: "Invalid/missing required configuration attributes: TeamsTenantId".into(),
            target: Some("account".into()),
        }];
    }
    Vec::new()
}

/// `pending`, `synced` or `failed` at `now`, with the failure's errors.
pub fn sync_status(
    sync: BackendSync,
    now: Millis,
    errors: impl FnOnce() -> Vec<ServiceProvisioningError>,
) -> Option<(&'static str, Option<Vec<ServiceProvisioningError>>)> {
    match sync {
        BackendSync::None => None,
        BackendSync::Due(due) if now < due => Some(("pending", None)),
        BackendSync::Due(_) => {
            let errors = errors();
            if errors.is_empty() {
                Some(("synced", None))
            } else {
                Some(("failed", Some(errors)))
            }
        }
    }
}
