//! Starting data: a `--seed FILE` (JSON) or the built-in demo set, and the
//! state file the emulator saves and loads.
//!
//! The demo set has every account name the samples and `acgbulk sample`
//! use, each with every service enabled (Operator Connect and Teams Phone
//! Mobile with backend sync), civic addresses for three of them, and a few
//! Requests for Information.

use super::repeat::{RepeatCache, RepeatEntry};
use super::store::{
    AccountRecord, BackendSync, Counters, Millis, NumberBody, NumberRecord, RfiRecord, Store,
};
use crate::model::{
    Account, AccountServiceDetails, CivicAddress, Contact, CustomerRelationship,
    DirectRoutingConfiguration, DirectRoutingService, Location, Number, RequestForInformation,
    SubdomainTokens, SyncService,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The `--seed` file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seed {
    #[serde(default)]
    pub accounts: Vec<Account>,
    #[serde(default)]
    pub numbers: Vec<Number>,
    /// Civic addresses by account name.
    #[serde(default)]
    pub civic_addresses: BTreeMap<String, Vec<CivicAddress>>,
    #[serde(default)]
    pub requests_for_information: Vec<RequestForInformation>,
}

/// The demo accounts: the names the samples use.
pub const DEMO_ACCOUNTS: [&str; 16] = crate::sample::ACCOUNT_NAMES;

/// An account with every service enabled, the Teams ones syncing.
pub fn full_account(name: &str, index: usize) -> Account {
    let sync = |sync_enabled| {
        Some(SyncService {
            enabled: true,
            sync_enabled: Some(sync_enabled),
            number_count: None,
        })
    };
    let subdomain: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(10)
        .collect();
    Account {
        name: Some(name.to_owned()),
        correlation_id: Some(format!("crm-{:05}", 1000 + index)),
        service_details: AccountServiceDetails {
            teams_tenant_id: Some(format!(
                "{:08x}-0000-4000-8000-{:012x}",
                0x5eed_0000u32 + index as u32,
                index
            )),
            teams_operator_connect: sync(true),
            teams_phone_mobile: sync(true),
            teams_direct_routing: Some(DirectRoutingService {
                enabled: true,
                sync_enabled: Some(false),
                configuration: Some(DirectRoutingConfiguration {
                    call_screening: Some(true),
                    subdomain: Some(subdomain),
                    subdomain_tokens: Some(SubdomainTokens {
                        region1_token: Some(format!("tok1-{index:04}")),
                        region2_token: Some(format!("tok2-{index:04}")),
                    }),
                }),
                subdomain_status: None,
                number_count: None,
            }),
            zoom_phone_cloud_peering: sync(false),
            azure_operator_call_protection: Some(SyncService {
                enabled: true,
                sync_enabled: None,
                number_count: None,
            }),
        },
        service_provisioning_status: None,
        service_provisioning_errors: None,
    }
}

fn civic(
    id: &str,
    street: &str,
    number: &str,
    city: &str,
    postcode: &str,
    country: &str,
    tenant: &str,
) -> CivicAddress {
    CivicAddress {
        id: id.to_owned(),
        country: Some(country.to_owned()),
        house_number: Some(number.to_owned()),
        street_name: Some(street.to_owned()),
        city_or_town: Some(city.to_owned()),
        postal_or_zip_code: Some(postcode.to_owned()),
        description: Some(format!("{city} office")),
        company_name: Some("Demo".to_owned()),
        default_location_id: Some(format!("loc-{}", id.trim_start_matches("civic-"))),
        validation_status: Some("validated".to_owned()),
        tenant_id: Some(tenant.to_owned()),
        partner_id: Some("acgbulk-emulator".to_owned()),
        latitude: None,
        longitude: None,
        locations: vec![
            Location {
                id: format!("loc-{}", id.trim_start_matches("civic-")),
                civic_address_id: Some(id.to_owned()),
                description: Some("Reception".to_owned()),
                is_default: Some(true),
                ..Location::default()
            },
            Location {
                id: format!("loc-{}-3f", id.trim_start_matches("civic-")),
                civic_address_id: Some(id.to_owned()),
                description: Some("Third floor".to_owned()),
                is_default: Some(false),
                ..Location::default()
            },
        ],
        ..CivicAddress::default()
    }
}

/// The built-in demo set.
pub fn demo() -> Seed {
    let accounts: Vec<Account> = DEMO_ACCOUNTS
        .iter()
        .enumerate()
        .map(|(i, n)| full_account(n, i))
        .collect();
    let tenant = |name: &str| {
        accounts
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
            .and_then(|a| a.service_details.teams_tenant_id.clone())
            .unwrap_or_default()
    };
    let mut civic_addresses = BTreeMap::new();
    civic_addresses.insert(
        "contoso".to_owned(),
        vec![
            civic(
                "civic-contoso-london",
                "Whitehall",
                "1",
                "London",
                "SW1A 2AA",
                "GB",
                &tenant("contoso"),
            ),
            civic(
                "civic-contoso-leeds",
                "Park Row",
                "10",
                "Leeds",
                "LS1 5HD",
                "GB",
                &tenant("contoso"),
            ),
        ],
    );
    civic_addresses.insert(
        "fabrikam".to_owned(),
        vec![civic(
            "civic-fabrikam-redmond",
            "NE 36th St",
            "15010",
            "Redmond",
            "98052",
            "US",
            &tenant("fabrikam"),
        )],
    );
    civic_addresses.insert(
        "northwind".to_owned(),
        vec![civic(
            "civic-northwind-1",
            "Deansgate",
            "100",
            "Manchester",
            "M3 2GP",
            "GB",
            &tenant("northwind"),
        )],
    );
    let rfi = |i: u32, company: &str, account: Option<&str>, status: Option<&str>| {
        RequestForInformation {
            id: Some(format!("rfi-{i:04}")),
            tenant_id: format!("7e4a{i:04}-0000-4000-8000-00000000{i:04}"),
            account_name: account.map(str::to_owned),
            product_context: Some("teams".into()),
            operator_id: Some("acgbulk-demo-operator".into()),
            status: Some("active".into()),
            consented_on: Some("2026-10-01T09:00:00Z".into()),
            last_modified_on: Some("2026-10-01T09:00:00Z".into()),
            consented_countries: vec!["GB".into(), "US".into()],
            contacts: vec![
                Contact {
                    full_name: Some(format!("Alex {company}")),
                    email: Some(format!("alex@{}.example", company.to_lowercase())),
                    telephone_number: Some("+442079460999".into()),
                    company_name: Some(company.into()),
                    company_size: Some("100-999".into()),
                },
                Contact {
                    full_name: Some(format!("Sam {company}")),
                    email: Some(format!("sam@{}.example", company.to_lowercase())),
                    telephone_number: None,
                    company_name: Some(company.into()),
                    company_size: Some("100-999".into()),
                },
            ],
            customer_relationship: status.map(|s| CustomerRelationship {
                status: Some(s.into()),
                comment: None,
                ticket_id: None,
                last_modified_on: Some("2026-10-02T09:00:00Z".into()),
            }),
        }
    };
    Seed {
        accounts,
        numbers: Vec::new(),
        civic_addresses,
        requests_for_information: vec![
            rfi(1, "Contoso", Some("contoso"), Some("agreementSigned")),
            rfi(2, "Fabrikam", Some("fabrikam"), Some("contactInitiated")),
            rfi(3, "Litware", None, None),
            rfi(4, "Tailspin", None, Some("new")),
        ],
    }
}

/// Loads a `--seed` file.
pub fn load_seed(path: &Path) -> Result<Seed, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut de = serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(&mut de)
        .map_err(|e| format!("{}: at {}: {}", path.display(), e.path(), e.inner()))
}

/// The state file. (ETags are not kept: they are derived from what is
/// served. Files from versions that kept them load; the extra fields are
/// ignored.)
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub version: u32,
    pub accounts: Vec<AccountSnapshot>,
    /// Distinct number bodies; numbers refer to them by index.
    pub bodies: Vec<NumberBody>,
    pub numbers: Vec<NumberSnapshot>,
    pub rfis: Vec<RfiSnapshot>,
    pub civic_addresses: BTreeMap<String, Vec<CivicAddress>>,
    pub repeatability: Vec<RepeatEntry>,
    pub counters: Counters,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountSnapshot {
    pub account: Account,
    pub modified: Millis,
    /// Absent in older files: then `modified`.
    #[serde(default)]
    pub subdomain_since: Option<Millis>,
    pub sync_due: Option<Millis>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NumberSnapshot {
    pub number: u64,
    pub account: String,
    pub body: usize,
    pub modified: Millis,
    pub sync_due: Option<Millis>,
    pub writes: u32,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RfiSnapshot {
    pub rfi: RequestForInformation,
}

fn due(sync: BackendSync) -> Option<Millis> {
    match sync {
        BackendSync::None => None,
        BackendSync::Due(at) => Some(at),
    }
}

fn sync_of(due: Option<Millis>) -> BackendSync {
    due.map_or(BackendSync::None, BackendSync::Due)
}

impl Store {
    /// A store holding `seed`; seeded resources are synced already.
    pub fn from_seed(seed: Seed, now: Millis) -> Result<Store, String> {
        // Seeded data is as if written an hour ago: synced, subdomains provisioned.
        let now = now.saturating_sub(3_600_000);
        let mut store = Store::default();
        for account in seed.accounts {
            let name = account.name.clone().ok_or("a seed account has no name")?;
            let sync = if super::rules::account_syncs(&account) {
                BackendSync::Due(now)
            } else {
                BackendSync::None
            };
            store.accounts.insert(
                name,
                AccountRecord {
                    account,
                    modified: now,
                    subdomain_since: now,
                    sync,
                    numbers: BTreeSet::new(),
                },
            );
        }
        for number in seed.numbers {
            let account = number.account_name.clone().ok_or_else(|| {
                format!("seed number {} has no accountName", number.telephone_number)
            })?;
            let digits = super::rules::parse_e164(&number.telephone_number)
                .ok_or_else(|| format!("seed number '{}' is not E.164", number.telephone_number))?;
            let record = store.accounts.get(&account).ok_or_else(|| {
                format!(
                    "seed number {} names unknown account {account}",
                    number.telephone_number
                )
            })?;
            let sync = if super::rules::number_syncs(&record.account, &number) {
                BackendSync::Due(now)
            } else {
                BackendSync::None
            };
            let body = store.intern(super::rules::number_body(&number));
            let account = store.account_name(&account);
            store.put_number(
                digits,
                NumberRecord {
                    account,
                    body,
                    modified: now,
                    sync,
                    writes: 0,
                },
            );
        }
        for rfi in seed.requests_for_information {
            store.rfis.insert(rfi.tenant_id.clone(), RfiRecord { rfi });
        }
        for (account, addresses) in seed.civic_addresses {
            store.civic.insert(
                account,
                addresses.into_iter().map(|a| (a.id.clone(), a)).collect(),
            );
        }
        store.counters = Counters::default();
        store.dirty = false;
        Ok(store)
    }

    pub fn to_snapshot(&self) -> Snapshot {
        let mut body_index: rustc_hash::FxHashMap<*const NumberBody, usize> = Default::default();
        let mut bodies = Vec::new();
        let numbers = self
            .numbers
            .iter()
            .map(|(&number, record)| {
                let key = std::sync::Arc::as_ptr(&record.body);
                let body = *body_index.entry(key).or_insert_with(|| {
                    bodies.push((*record.body).clone());
                    bodies.len() - 1
                });
                NumberSnapshot {
                    number,
                    account: record.account.to_string(),
                    body,
                    modified: record.modified,
                    sync_due: due(record.sync),
                    writes: record.writes,
                }
            })
            .collect();
        Snapshot {
            version: 1,
            accounts: self
                .accounts
                .values()
                .map(|a| AccountSnapshot {
                    account: a.account.clone(),
                    modified: a.modified,
                    subdomain_since: Some(a.subdomain_since),
                    sync_due: due(a.sync),
                })
                .collect(),
            bodies,
            numbers,
            rfis: self
                .rfis
                .values()
                .map(|r| RfiSnapshot { rfi: r.rfi.clone() })
                .collect(),
            civic_addresses: self
                .civic
                .iter()
                .map(|(account, addresses)| {
                    (account.clone(), addresses.values().cloned().collect())
                })
                .collect(),
            repeatability: self.repeats.snapshot(),
            counters: self.counters.clone(),
        }
    }

    pub fn from_snapshot(snapshot: Snapshot) -> Result<Store, String> {
        if snapshot.version != 1 {
            return Err(format!(
                "state file version {} is not supported",
                snapshot.version
            ));
        }
        let mut store = Store::default();
        for a in snapshot.accounts {
            let name = a
                .account
                .name
                .clone()
                .ok_or("an account in the state file has no name")?;
            store.accounts.insert(
                name,
                AccountRecord {
                    account: a.account,
                    modified: a.modified,
                    subdomain_since: a.subdomain_since.unwrap_or(a.modified),
                    sync: sync_of(a.sync_due),
                    numbers: BTreeSet::new(),
                },
            );
        }
        let bodies: Vec<_> = snapshot
            .bodies
            .into_iter()
            .map(|b| store.intern(b))
            .collect();
        for n in snapshot.numbers {
            let body = bodies
                .get(n.body)
                .cloned()
                .ok_or("a number in the state file refers to no body")?;
            let account = store.account_name(&n.account);
            store.put_number(
                n.number,
                NumberRecord {
                    account,
                    body,
                    modified: n.modified,
                    sync: sync_of(n.sync_due),
                    writes: n.writes,
                },
            );
        }
        for r in snapshot.rfis {
            store
                .rfis
                .insert(r.rfi.tenant_id.clone(), RfiRecord { rfi: r.rfi });
        }
        for (account, addresses) in snapshot.civic_addresses {
            store.civic.insert(
                account,
                addresses.into_iter().map(|a| (a.id.clone(), a)).collect(),
            );
        }
        store.repeats = RepeatCache::restore(snapshot.repeatability);
        store.counters = snapshot.counters;
        store.dirty = false;
        Ok(store)
    }
}

/// Writes `snapshot` to `path` atomically: a temporary file beside it,
/// flushed to disk, renamed over the old one, and the directory synced.
pub fn save_snapshot(path: &Path, snapshot: &Snapshot) -> std::io::Result<()> {
    crate::durable::replace(path, |out| {
        serde_json::to_writer(out, snapshot).map_err(std::io::Error::from)
    })
}

pub fn load_snapshot(path: &Path) -> Result<Snapshot, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_reader(std::io::BufReader::new(file))
        .map_err(|e| format!("{}: not a state file: {e}", path.display()))
}
