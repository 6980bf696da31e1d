//! Accounts in bulk: a sheet in the columns the accounts export writes,
//! checked offline, then created, updated (with the ETag just read, so a
//! concurrent change is a conflict, never overwritten), upserted or
//! deleted, one row at a time through [`crate::rowjob`].

use crate::client::{ClientError, Precondition, ProvisioningClient, ServiceError, WriteOptions};
use crate::export::rows::{ACCOUNT_COLUMNS, ACCOUNT_READ_ONLY};
use crate::model::{
    Account, AccountServiceDetails, DirectRoutingConfiguration, DirectRoutingService,
    SubdomainTokens, SyncService,
};
use crate::rowjob::{Attempt, Operation, OperationError, Refused, RowResult};
use crate::sheet::table::Table;
use crate::spelling::{check_label, parse_bool, string_enum};
use crate::validate::check_account_name;
use std::collections::HashMap;
use std::sync::Arc;

string_enum!(
    /// What `accounts import` does with each row.
    Mode {
        /// Only new accounts (`If-None-Match: *`).
        Create => "create",
        /// Only existing accounts (`If-Match` with the ETag just read).
        Update => "update",
        /// Whichever applies.
        Upsert => "upsert",
    }
);

/// Every heading an accounts sheet may have.
pub fn known_columns() -> Vec<&'static str> {
    ACCOUNT_COLUMNS
        .iter()
        .chain(ACCOUNT_READ_ONLY.iter())
        .copied()
        .collect()
}

/// The extra results columns of accounts jobs.
pub const RESULT_COLUMNS: [&str; 2] = ["subdomainStatus", "dnsRecords"];

fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Reads an accounts sheet: the accounts to write, and the rows refused
/// offline (name, booleans, tenant id, Direct Routing subdomain and tokens,
/// duplicates). A refused row names its first error.
pub fn read_accounts(table: &Table) -> (Vec<Operation<Account>>, Vec<Refused>) {
    let mut operations = Vec::new();
    let mut refused = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for (row, cells) in &table.rows {
        let get = |column: &str| table.get(cells, column);
        let name = get("name").unwrap_or("").to_owned();
        let mut errors = RowErrors::default();
        if let Err(message) = check_account_name(&name) {
            errors.push("ACCOUNT_NAME", message);
        }
        if let Some(&other) = seen.get(&name) {
            errors.push(
                "DUPLICATE",
                format!("account '{name}' is also in row {other}"),
            );
        }
        seen.entry(name.clone()).or_insert(*row);
        let service_details = account_services(&get, &mut errors);
        if let Some((code, message)) = errors.0.into_iter().next() {
            refused.push(Refused {
                row: *row,
                key: name,
                code,
                message,
            });
            continue;
        }
        operations.push(Operation {
            row: *row,
            key: name.clone(),
            what: Account {
                name: Some(name),
                correlation_id: get("correlationId").map(str::to_owned),
                service_details,
                service_provisioning_status: None,
                service_provisioning_errors: None,
            },
        });
    }
    (operations, refused)
}

/// What is wrong with one row, in the order found: (code, message).
#[derive(Default)]
struct RowErrors(Vec<(String, String)>);

impl RowErrors {
    fn push(&mut self, code: &str, message: String) {
        self.0.push((code.to_owned(), message));
    }

    /// A boolean cell, or `None` when it is empty or not a boolean (then an
    /// error).
    fn flag(&mut self, column: &str, text: Option<&str>) -> Option<bool> {
        let text = text?;
        let value = parse_bool(text);
        if value.is_none() {
            self.push(
                "BOOLEAN",
                format!("{column}: '{text}' is not true or false"),
            );
        }
        value
    }
}

/// The services of one accounts-sheet row.
fn account_services<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    errors: &mut RowErrors,
) -> AccountServiceDetails {
    let mut flag = |column: &str| errors.flag(column, get(column));
    let service = |enabled: Option<bool>, sync: Option<bool>| {
        enabled.map(|enabled| SyncService {
            enabled,
            sync_enabled: sync,
            number_count: None,
        })
    };
    let oc = service(
        flag("serviceDetails_teamsOperatorConnect_enabled"),
        flag("serviceDetails_teamsOperatorConnect_syncEnabled"),
    );
    let tpm = service(
        flag("serviceDetails_teamsPhoneMobile_enabled"),
        flag("serviceDetails_teamsPhoneMobile_syncEnabled"),
    );
    let zoom = service(
        flag("serviceDetails_zoomPhoneCloudPeering_enabled"),
        flag("serviceDetails_zoomPhoneCloudPeering_syncEnabled"),
    );
    let call_protection = service(
        flag("serviceDetails_azureOperatorCallProtection_enabled"),
        None,
    );
    let dr_flags = [
        flag("serviceDetails_teamsDirectRouting_enabled"),
        flag("serviceDetails_teamsDirectRouting_syncEnabled"),
        flag("serviceDetails_teamsDirectRouting_configuration_callScreening"),
    ];
    let tenant = get("serviceDetails_teamsTenantId");
    if let Some(tenant) = tenant {
        if !is_guid(tenant) {
            errors.push(
                "TEAMS_TENANT_ID",
                format!("teamsTenantId '{tenant}' is not a GUID"),
            );
        }
    }
    let teams = [&oc, &tpm]
        .iter()
        .any(|s| s.as_ref().is_some_and(|s| s.enabled));
    if teams && tenant.is_none() {
        errors.push(
            "TEAMS_TENANT_ID",
            "Operator Connect and Teams Phone Mobile accounts need a teamsTenantId".into(),
        );
    }
    AccountServiceDetails {
        teams_tenant_id: tenant.map(str::to_owned),
        teams_operator_connect: oc,
        teams_phone_mobile: tpm,
        teams_direct_routing: direct_routing(get, dr_flags, errors),
        zoom_phone_cloud_peering: zoom,
        azure_operator_call_protection: call_protection,
    }
}

/// Direct Routing from its cells: `[enabled, syncEnabled, callScreening]`
/// already read, then the subdomain and its two tokens, which an enabled
/// service needs.
fn direct_routing<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    [enabled, sync, call_screening]: [Option<bool>; 3],
    errors: &mut RowErrors,
) -> Option<DirectRoutingService> {
    let subdomain = get("serviceDetails_teamsDirectRouting_configuration_subdomain");
    let token1 =
        get("serviceDetails_teamsDirectRouting_configuration_subdomainTokens_region1Token");
    let token2 =
        get("serviceDetails_teamsDirectRouting_configuration_subdomainTokens_region2Token");
    if enabled == Some(true) {
        match subdomain {
            None => errors.push(
                "SUBDOMAIN",
                "a Direct Routing account needs a subdomain".into(),
            ),
            Some(s) => {
                if let Err(message) = check_label(s, "subdomain", 1, 10) {
                    errors.push("SUBDOMAIN", message);
                }
            }
        }
        for (token, which) in [(token1, "region1Token"), (token2, "region2Token")] {
            match token {
                None => errors.push(
                    "SUBDOMAIN_TOKEN",
                    format!("a Direct Routing account needs {which}"),
                ),
                Some(t) => {
                    if let Err(message) = check_label(t, which, 1, 100) {
                        errors.push("SUBDOMAIN_TOKEN", message);
                    }
                }
            }
        }
    }
    enabled.map(|enabled| DirectRoutingService {
        enabled,
        sync_enabled: sync,
        configuration: (subdomain.is_some() || call_screening.is_some() || token1.is_some()).then(
            || DirectRoutingConfiguration {
                call_screening,
                subdomain: subdomain.map(str::to_owned),
                subdomain_tokens: (token1.is_some() || token2.is_some()).then(|| SubdomainTokens {
                    region1_token: token1.map(str::to_owned),
                    region2_token: token2.map(str::to_owned),
                }),
            },
        ),
        subdomain_status: None,
        number_count: None,
    })
}

/// Warnings that do not stop a row: the documentation advises a subdomain
/// label of at most eight characters, and Entra ID takes domain names of at
/// most 48.
pub fn warnings(account: &Account, base_domain: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    let Some(subdomain) = account
        .service_details
        .teams_direct_routing
        .as_ref()
        .and_then(|d| d.configuration.as_ref())
        .and_then(|c| c.subdomain.as_deref())
    else {
        return warnings;
    };
    if subdomain.len() > 8 {
        warnings.push(format!(
            "subdomain '{subdomain}' is longer than the eight characters the documentation advises"
        ));
    }
    for domain in region_domains(subdomain, base_domain) {
        if domain.len() > 48 {
            warnings.push(format!(
                "{domain} is {} characters; Entra ID takes domain names of at most 48",
                domain.len()
            ));
        }
    }
    warnings
}

/// The customer's two per-region domains: `<label>.1-r1.<base>` and
/// `<label>.1-r2.<base>`.
pub fn region_domains(subdomain: &str, base_domain: &str) -> [String; 2] {
    [
        format!("{subdomain}.1-r1.{base_domain}"),
        format!("{subdomain}.1-r2.{base_domain}"),
    ]
}

/// The gateway's base domain from its Provisioning API endpoint
/// (`provapi.<base-domain>`).
pub fn base_domain(endpoint: &str) -> String {
    let host = url::Url::parse(endpoint)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    host.strip_prefix("provapi.")
        .map(str::to_owned)
        .unwrap_or(host)
}

/// Subdomain status and, until it is provisioned, the TXT records with the
/// tokens on the customer's per-region domains, which the customer verifies
/// in the Microsoft 365 admin center.
fn direct_routing_report(account: &Account, base: &str) -> Vec<String> {
    let Some(dr) = account
        .service_details
        .teams_direct_routing
        .as_ref()
        .filter(|d| d.enabled)
    else {
        return vec![String::new(), String::new()];
    };
    let status = dr.subdomain_status.clone().unwrap_or_default();
    let config = dr.configuration.clone().unwrap_or_default();
    let records = match (&config.subdomain, status.as_str()) {
        (Some(subdomain), s) if s != "provisioned" => {
            let tokens = config.subdomain_tokens.clone().unwrap_or_default();
            let [r1, r2] = region_domains(subdomain, base);
            format!(
                "TXT {r1} \"{}\"; TXT {r2} \"{}\"",
                tokens.region1_token.unwrap_or_default(),
                tokens.region2_token.unwrap_or_default()
            )
        }
        _ => String::new(),
    };
    vec![status, records]
}

/// A refusal as the row's result. What every other row would meet too
/// (a missing role, this machine not allowed) or a request that got no
/// answer stops the job instead.
fn refused(
    error: ServiceError,
    code: Option<String>,
    message: Option<String>,
) -> Result<RowResult, OperationError> {
    match error.refusal() {
        Some(refusal) if !error.stops_the_run() => Ok(RowResult {
            ok: false,
            status: refusal.status.as_u16(),
            code: code.or_else(|| refusal.code.clone()),
            message: message.or_else(|| refusal.message().map(str::to_owned)),
            request_id: Some(refusal.request_id.clone()),
            extra: Vec::new(),
        }),
        _ => Err(fatal(error)),
    }
}

fn fatal(e: ServiceError) -> OperationError {
    match e {
        ServiceError::Client(ClientError::Stopped) => OperationError::Stopped,
        outage @ ServiceError::Client(ClientError::Outage { .. }) => {
            OperationError::Outage(outage.to_string())
        }
        other => OperationError::Fatal(other.to_string()),
    }
}

/// Creates, updates or upserts one account.
pub async fn write(
    client: Arc<ProvisioningClient>,
    mode: Mode,
    base: String,
    operation: Operation<Account>,
    mut attempt: Attempt,
) -> Result<RowResult, OperationError> {
    let name = operation.key.clone();
    let mut stop = attempt.stop.clone();
    // An update already begun (a checkpointed ETag) goes on with that ETag.
    let resumed_etag = attempt
        .previous
        .as_ref()
        .and_then(|(_, _, etag)| etag.clone());
    let etag = match (mode, &resumed_etag, &attempt.previous) {
        (Mode::Create, _, _) => None,
        (_, Some(etag), _) => Some(etag.clone()),
        // A create begun under upsert.
        (Mode::Upsert, None, Some(_)) => None,
        _ => match client.get_account(&name, &mut stop).await {
            Ok(response) => response.etag().map(str::to_owned),
            Err(ServiceError::NotFound(_)) if mode == Mode::Upsert => None,
            Err(e @ ServiceError::NotFound(_)) => {
                return refused(e, Some("AccountNotFound".into()), Some(format!("account '{name}' does not exist (--mode update changes existing accounts only)")))
            }
            Err(e) => return refused(e, None, None),
        },
    };
    let (id, first) = attempt.sent(etag.clone()).await?;
    let precondition = match &etag {
        Some(etag) => Precondition::IfMatch(etag.clone()),
        None => Precondition::IfNoneMatchAny,
    };
    let options = WriteOptions {
        repeatability: Some((id, first)),
    };
    match client
        .put_account(&name, &operation.what, precondition, &options, &mut stop)
        .await
    {
        Ok(response) => {
            let written: Account = response.model().unwrap_or_else(|_| operation.what.clone());
            Ok(RowResult {
                ok: true,
                status: response.status.as_u16(),
                code: None,
                message: None,
                request_id: Some(response.request_id.clone()),
                extra: direct_routing_report(&written, &base),
            })
        }
        Err(e @ ServiceError::PreconditionFailed(_)) => refused(
            e,
            Some("Conflict".into()),
            Some(format!("account '{name}' changed after it was read; not overwritten: read it again and retry")),
        ),
        Err(e @ ServiceError::Conflict(_)) if etag.is_none() => refused(
            e,
            None,
            Some(format!("account '{name}' already exists (use --mode update or upsert to change it)")),
        ),
        Err(e) => refused(e, None, None),
    }
}

/// Deletes one account (with `?deleteNumbers=true` when asked).
pub async fn delete(
    client: Arc<ProvisioningClient>,
    with_numbers: bool,
    operation: Operation<()>,
    mut attempt: Attempt,
) -> Result<RowResult, OperationError> {
    let mut stop = attempt.stop.clone();
    let (id, first) = attempt.sent(None).await?;
    let options = WriteOptions {
        repeatability: Some((id, first)),
    };
    match client
        .delete_account(&operation.key, with_numbers, &options, &mut stop)
        .await
    {
        Ok(response) => Ok(RowResult {
            ok: true,
            status: response.status.as_u16(),
            request_id: Some(response.request_id.clone()),
            ..RowResult::default()
        }),
        Err(e @ ServiceError::Conflict(_)) => refused(
            e,
            None,
            Some(format!(
                "account '{}' still holds numbers; give --with-numbers to release them too",
                operation.key
            )),
        ),
        Err(e) => refused(e, None, None),
    }
}

/// Reads an accounts sheet for deletion: only names.
pub fn read_names(table: &Table) -> (Vec<Operation<()>>, Vec<Refused>) {
    let mut operations = Vec::new();
    let mut refused = Vec::new();
    for (row, cells) in &table.rows {
        let name = table.get(cells, "name").unwrap_or("").to_owned();
        match check_account_name(&name) {
            Ok(()) => operations.push(Operation {
                row: *row,
                key: name,
                what: (),
            }),
            Err(message) => refused.push(Refused {
                row: *row,
                key: name,
                code: "ACCOUNT_NAME".into(),
                message,
            }),
        }
    }
    (operations, refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_domains_and_warnings() {
        assert!(is_guid("0f6f2e1e-3f0a-4a5e-9a53-8d7a3c6e2b11"));
        assert!(!is_guid("not-a-guid"));
        assert_eq!(
            base_domain("https://provapi.a1b2c3d4e5f6g7h8.commsgw.azure.com"),
            "a1b2c3d4e5f6g7h8.commsgw.azure.com"
        );
        assert_eq!(
            region_domains("contoso1", "a1b2c3d4e5f6g7h8.commsgw.azure.com")[0],
            "contoso1.1-r1.a1b2c3d4e5f6g7h8.commsgw.azure.com"
        );
        let account: Account = serde_json::from_value(serde_json::json!({
            "serviceDetails": {"teamsDirectRouting": {
                "enabled": true,
                "configuration": {"subdomain": "contoso123"}
            }}
        }))
        .unwrap();
        let w = warnings(&account, "a1b2c3d4e5f6g7h8.commsgw.azure.com");
        assert_eq!(w.len(), 3, "{w:?}");
    }
}
