//! What the service checks in a write before applying it: field formats,
//! enumerations, and consistency with the account. Each problem becomes an
//! error detail whose `target` is the JSON path of the field.

use super::error::field;
use super::store::{AccountRecord, NumberBody};
use crate::model::{
    Account, AssignmentStatus, Capability, ErrorDetail, Number, TeamsNumberService, Usage,
};

/// Bounds the documentation gives: names, SIP headers and subdomain tokens,
/// subdomains, RFI ticket ids.
pub const MAX_NAME: usize = 100;
pub const MAX_CUSTOM_SIP_HEADER: usize = 100;
pub const MAX_SUBDOMAIN: usize = 10;
pub const MAX_SUBDOMAIN_TOKEN: usize = 100;
pub const MAX_TICKET_ID: usize = 64;

/// Bounds the documentation does not give, chosen here (and listed in the
/// README): ids from other systems (`civicAddressId`, `locationId`,
/// `teamsTenantId`), a relationship status, a comment, the
/// `correlationId`, and lists of enumerated values.
pub const MAX_ID: usize = 256;
pub const MAX_CORRELATION_ID: usize = 100;
pub const MAX_RELATIONSHIP_STATUS: usize = 256;
pub const MAX_COMMENT: usize = 1000;
pub const MAX_LIST: usize = 10;

/// A value for an error message: at most 40 characters of it, so an
/// answer to a megabyte of text stays small.
pub fn clip(text: &str) -> String {
    const SHOWN: usize = 40;
    let count = text.chars().count();
    if count <= SHOWN {
        text.to_owned()
    } else {
        let head: String = text.chars().take(SHOWN).collect();
        format!("{head}... ({count} characters)")
    }
}

fn too_long(text: &str, max: usize) -> bool {
    text.chars().count() > max
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Account names (and subdomains, tokens, SIP headers) use letters, digits,
/// `_` and `-`.
pub fn check_name(value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() || value.chars().count() > max {
        return Err(format!("must be 1 to {max} characters"));
    }
    if let Some(bad) = value.chars().find(|&c| !is_name_char(c)) {
        return Err(format!(
            "'{bad}' is not allowed: use letters, digits, '_' and '-'"
        ));
    }
    Ok(())
}

/// `+` and 1 to 15 digits, the first not 0: returns the digits as a number.
pub fn parse_e164(text: &str) -> Option<u64> {
    let digits = text.strip_prefix('+')?;
    if digits.is_empty() || digits.len() > 15 || digits.starts_with('0') {
        return None;
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Checks one number of a write against its account. `at` is the JSON path
/// of the number in the request (`numbers[3]`, or empty for a single PUT).
pub fn check_number(
    number: &Number,
    account_name: &str,
    account: &AccountRecord,
    at: &str,
) -> Vec<ErrorDetail> {
    let path = |field: &str| {
        if at.is_empty() {
            field.to_owned()
        } else {
            format!("{at}.{field}")
        }
    };
    let mut errors = Vec::new();
    if parse_e164(&number.telephone_number).is_none() {
        errors.push(field(
            "InvalidTelephoneNumber",
            path("telephoneNumber"),
            format!(
                "'{}' is not an E.164 number: '+' then up to 15 digits (16 characters in all), not starting with 0",
                clip(&number.telephone_number)
            ),
        ));
    }
    if let Some(name) = &number.account_name {
        if name != account_name {
            errors.push(field(
                "AccountNameMismatch",
                path("accountName"),
                format!(
                    "accountName '{}' does not match the account '{account_name}' in the path",
                    clip(name)
                ),
            ));
        }
    }
    check_services(number, account_name, account, &path, &mut errors);
    check_custom_sip_header(number, &path, &mut errors);
    errors
}

/// A number's services: each enabled one must be enabled on its account,
/// and at least one must be enabled.
fn check_services(
    number: &Number,
    account_name: &str,
    account: &AccountRecord,
    path: &dyn Fn(&str) -> String,
    errors: &mut Vec<ErrorDetail>,
) {
    let d = &number.service_details;
    let a = &account.account.service_details;
    let teams = [
        (
            "teamsOperatorConnect",
            &d.teams_operator_connect,
            a.teams_operator_connect.as_ref().is_some_and(|s| s.enabled),
        ),
        (
            "teamsPhoneMobile",
            &d.teams_phone_mobile,
            a.teams_phone_mobile.as_ref().is_some_and(|s| s.enabled),
        ),
    ];
    let plain = [
        (
            "teamsDirectRouting",
            d.teams_direct_routing.as_ref().is_some_and(|s| s.enabled),
            a.teams_direct_routing.as_ref().is_some_and(|s| s.enabled),
        ),
        (
            "zoomPhoneCloudPeering",
            d.zoom_phone_cloud_peering
                .as_ref()
                .is_some_and(|s| s.enabled),
            a.zoom_phone_cloud_peering
                .as_ref()
                .is_some_and(|s| s.enabled),
        ),
        (
            "azureOperatorCallProtection",
            d.azure_operator_call_protection
                .as_ref()
                .is_some_and(|s| s.enabled),
            a.azure_operator_call_protection
                .as_ref()
                .is_some_and(|s| s.enabled),
        ),
    ];
    let mut any = false;
    for (key, service, on_account) in teams {
        let Some(service) = service.as_ref() else {
            continue;
        };
        let at = path(&format!("serviceDetails.{key}"));
        // A disabled service's fields are stored too: they are checked alike.
        if !service.enabled {
            check_teams(service, &at, errors);
            continue;
        }
        any = true;
        if !on_account {
            errors.push(field(
                "ServiceNotEnabledOnAccount",
                at.clone(),
                format!("{key} is not enabled on account '{account_name}'"),
            ));
        }
        check_teams(service, &at, errors);
    }
    for (key, enabled, on_account) in plain {
        if !enabled {
            continue;
        }
        any = true;
        if !on_account {
            errors.push(field(
                "ServiceNotEnabledOnAccount",
                path(&format!("serviceDetails.{key}")),
                format!("{key} is not enabled on account '{account_name}'"),
            ));
        }
    }
    if !any {
        errors.push(field(
            "NoServiceEnabled",
            path("serviceDetails"),
            "at least one service must be enabled on a number",
        ));
    }
}

/// A custom SIP header: its characters, and a service that carries it.
fn check_custom_sip_header(
    number: &Number,
    path: &dyn Fn(&str) -> String,
    errors: &mut Vec<ErrorDetail>,
) {
    let d = &number.service_details;
    if let Some(header) = number
        .configuration
        .as_ref()
        .and_then(|c| c.custom_sip_header.as_deref())
    {
        if let Err(message) = check_name(header, MAX_CUSTOM_SIP_HEADER) {
            errors.push(field(
                "InvalidCustomSipHeader",
                path("configuration.customSipHeader"),
                format!("customSipHeader {message}"),
            ));
        }
        let carries = d.teams_operator_connect.as_ref().is_some_and(|s| s.enabled)
            || d.teams_direct_routing.as_ref().is_some_and(|s| s.enabled)
            || d.zoom_phone_cloud_peering
                .as_ref()
                .is_some_and(|s| s.enabled);
        if !carries {
            errors.push(field(
                "CustomSipHeaderNotSupported",
                path("configuration.customSipHeader"),
                "a custom SIP header is not available for Teams Phone Mobile or Azure Operator Call Protection numbers",
            ));
        }
    }
}

fn check_teams(service: &TeamsNumberService, at: &str, errors: &mut Vec<ErrorDetail>) {
    if let Some(status) = &service.assignment_status {
        if AssignmentStatus::parse_exact(status).is_none() {
            errors.push(field(
                "InvalidAssignmentStatus",
                format!("{at}.assignmentStatus"),
                format!("'{}' is not one of: assigned, unassigned", clip(status)),
            ));
        }
    }
    let Some(config) = &service.configuration else {
        return;
    };
    let at = format!("{at}.configuration");
    // An empty usage is accepted here and fails in backend sync, as the
    // service does.
    if let Some(usage) = config.usage.as_deref().filter(|u| !u.is_empty()) {
        if Usage::parse_exact(usage).is_none() {
            errors.push(field(
                "InvalidUsage",
                format!("{at}.usage"),
                format!(
                    "'{}' is not one of: {}",
                    clip(usage),
                    Usage::NAMES.join(", ")
                ),
            ));
        }
    }
    for (key, len) in [
        ("choosableCapabilities", config.choosable_capabilities.len()),
        ("additionalUsages", config.additional_usages.len()),
    ] {
        if len > MAX_LIST {
            errors.push(field(
                "TooManyValues",
                format!("{at}.{key}"),
                format!("{key} has {len} entries; at most {MAX_LIST} are allowed"),
            ));
        }
    }
    for (key, value) in [
        ("civicAddressId", &config.civic_address_id),
        ("locationId", &config.location_id),
    ] {
        if value.as_deref().is_some_and(|v| too_long(v, MAX_ID)) {
            errors.push(field(
                "ValueTooLong",
                format!("{at}.{key}"),
                format!("{key} is longer than {MAX_ID} characters"),
            ));
        }
    }
    for (i, capability) in config.choosable_capabilities.iter().enumerate() {
        if Capability::parse_exact(capability).is_none() {
            errors.push(field(
                "InvalidCapability",
                format!("{at}.choosableCapabilities[{i}]"),
                format!(
                    "'{}' is not one of: {}",
                    clip(capability),
                    Capability::NAMES.join(", ")
                ),
            ));
        }
    }
    for (i, usage) in config.additional_usages.iter().enumerate() {
        if Usage::parse_exact(usage).is_none() {
            errors.push(field(
                "InvalidUsage",
                format!("{at}.additionalUsages[{i}]"),
                format!(
                    "'{}' is not one of: {}",
                    clip(usage),
                    Usage::NAMES.join(", ")
                ),
            ));
        }
    }
    if let Some(code) = &config.displayed_country_code {
        if code.len() != 2 || !crate::phone::is_known_region(code) {
            errors.push(field(
                "InvalidDisplayedCountryCode",
                format!("{at}.displayedCountryCode"),
                format!("'{}' is not a two-letter country code", clip(code)),
            ));
        }
    }
}

/// The number's stored body: the writable fields only.
pub fn number_body(number: &Number) -> NumberBody {
    let mut details = number.service_details.clone();
    for service in [
        &mut details.teams_operator_connect,
        &mut details.teams_phone_mobile,
    ] {
        if let Some(config) = service.as_mut().and_then(|s| s.configuration.as_mut()) {
            config.acquired_capabilities = None;
            config.available_capabilities = None;
        }
    }
    NumberBody {
        service_details: details,
        configuration: number
            .configuration
            .clone()
            .filter(|c| c.custom_sip_header.is_some()),
    }
}

/// Whether writing `new` over `stored` changes nothing the service keeps:
/// the two are equal once each is in [`comparable`] form. The service
/// treats capability and usage lists as sets, a disabled service as no
/// service, and an absent assignment status or address-update flag as
/// their defaults, so writing back what a read returned is no change.
pub fn unchanged(stored: &NumberBody, new: &NumberBody) -> bool {
    comparable(stored) == comparable(new)
}

fn comparable(body: &NumberBody) -> NumberBody {
    let mut body = body.clone();
    let details = &mut body.service_details;
    for service in [
        &mut details.teams_operator_connect,
        &mut details.teams_phone_mobile,
    ] {
        if service.as_ref().is_some_and(|s| !s.enabled) {
            *service = None;
        }
        if let Some(service) = service.as_mut() {
            service
                .assignment_status
                .get_or_insert_with(|| "unassigned".into());
            if let Some(config) = service.configuration.as_mut() {
                for list in [
                    &mut config.choosable_capabilities,
                    &mut config.additional_usages,
                ] {
                    list.sort();
                    list.dedup();
                }
                config.allow_tenant_address_update.get_or_insert(false);
            }
        }
    }
    for service in [
        &mut details.teams_direct_routing,
        &mut details.zoom_phone_cloud_peering,
        &mut details.azure_operator_call_protection,
    ] {
        if service.as_ref().is_some_and(|s| !s.enabled) {
            *service = None;
        }
    }
    body
}

/// Checks an account write. `existing` is the account being replaced.
pub fn check_account(
    name: &str,
    account: &Account,
    existing: Option<(&AccountRecord, super::store::ServiceCounts)>,
) -> Vec<ErrorDetail> {
    let mut errors = Vec::new();
    if let Err(message) = check_name(name, MAX_NAME) {
        errors.push(field(
            "InvalidAccountName",
            "name",
            format!("account name {message}"),
        ));
    }
    if let Some(body_name) = &account.name {
        if body_name != name {
            errors.push(field(
                "AccountNameMismatch",
                "name",
                format!(
                    "name '{}' does not match '{name}' in the path",
                    clip(body_name)
                ),
            ));
        }
    }
    if let Some(id) = &account.correlation_id {
        if too_long(id, MAX_CORRELATION_ID) {
            errors.push(field(
                "InvalidCorrelationId",
                "correlationId",
                format!("correlationId is longer than {MAX_CORRELATION_ID} characters"),
            ));
        }
    }
    let d = &account.service_details;
    if let Some(tenant) = &d.teams_tenant_id {
        if too_long(tenant, MAX_ID) {
            errors.push(field(
                "ValueTooLong",
                "serviceDetails.teamsTenantId",
                format!("teamsTenantId is longer than {MAX_ID} characters"),
            ));
        }
    }
    check_direct_routing(account, &mut errors);
    if let Some((old, counts)) = existing {
        check_account_change(account, old, counts, &mut errors);
    }
    errors
}

/// Direct Routing's subdomain and tokens.
fn check_direct_routing(account: &Account, errors: &mut Vec<ErrorDetail>) {
    let d = &account.service_details;
    if let Some(dr) = d.teams_direct_routing.as_ref() {
        if let Some(config) = &dr.configuration {
            let at = "serviceDetails.teamsDirectRouting.configuration";
            if let Some(subdomain) = &config.subdomain {
                if let Err(message) = check_name(subdomain, MAX_SUBDOMAIN) {
                    errors.push(field(
                        "InvalidSubdomain",
                        format!("{at}.subdomain"),
                        format!("subdomain {message}"),
                    ));
                }
            }
            if let Some(tokens) = &config.subdomain_tokens {
                for (key, token) in [
                    ("region1Token", &tokens.region1_token),
                    ("region2Token", &tokens.region2_token),
                ] {
                    if let Some(token) = token {
                        if let Err(message) = check_name(token, MAX_SUBDOMAIN_TOKEN) {
                            errors.push(field(
                                "InvalidSubdomainToken",
                                format!("{at}.subdomainTokens.{key}"),
                                format!("{key} {message}"),
                            ));
                        }
                    }
                }
            }
        }
    }
}

/// What an existing account may not change: its Teams tenant, or a service
/// its numbers use.
fn check_account_change(
    account: &Account,
    old: &AccountRecord,
    counts: super::store::ServiceCounts,
    errors: &mut Vec<ErrorDetail>,
) {
    let d = &account.service_details;
    let od = &old.account.service_details;
    let teams_numbers = counts.operator_connect + counts.phone_mobile;
    if teams_numbers > 0 && od.teams_tenant_id != d.teams_tenant_id {
        errors.push(field(
            "TeamsTenantIdChangeNotAllowed",
            "serviceDetails.teamsTenantId",
            format!("teamsTenantId cannot change while the account has {teams_numbers} Operator Connect or Teams Phone Mobile numbers"),
        ));
    }
    let enabled = |s: Option<bool>| s.unwrap_or(false);
    let in_use = [
        (
            "teamsOperatorConnect",
            counts.operator_connect,
            enabled(d.teams_operator_connect.as_ref().map(|s| s.enabled)),
        ),
        (
            "teamsPhoneMobile",
            counts.phone_mobile,
            enabled(d.teams_phone_mobile.as_ref().map(|s| s.enabled)),
        ),
        (
            "teamsDirectRouting",
            counts.direct_routing,
            enabled(d.teams_direct_routing.as_ref().map(|s| s.enabled)),
        ),
        (
            "zoomPhoneCloudPeering",
            counts.zoom,
            enabled(d.zoom_phone_cloud_peering.as_ref().map(|s| s.enabled)),
        ),
        (
            "azureOperatorCallProtection",
            counts.call_protection,
            enabled(d.azure_operator_call_protection.as_ref().map(|s| s.enabled)),
        ),
    ];
    for (key, count, still_enabled) in in_use {
        if count > 0 && !still_enabled {
            errors.push(field(
                "ServiceInUse",
                format!("serviceDetails.{key}"),
                format!("{key} cannot be disabled while {count} numbers of the account use it"),
            ));
        }
    }
}

/// True when any service of the account syncs to a backend.
pub fn account_syncs(account: &Account) -> bool {
    let d = &account.service_details;
    [&d.teams_operator_connect, &d.teams_phone_mobile]
        .into_iter()
        .any(|s| {
            s.as_ref()
                .is_some_and(|s| s.enabled && s.sync_enabled == Some(true))
        })
}

/// True when a number uses a service that syncs on its account.
pub fn number_syncs(account: &Account, number: &Number) -> bool {
    let a = &account.service_details;
    let n = &number.service_details;
    let on = |s: &Option<crate::model::TeamsNumberService>| s.as_ref().is_some_and(|s| s.enabled);
    let syncs = |s: &Option<crate::model::SyncService>| {
        s.as_ref()
            .is_some_and(|s| s.enabled && s.sync_enabled == Some(true))
    };
    (on(&n.teams_operator_connect) && syncs(&a.teams_operator_connect))
        || (on(&n.teams_phone_mobile) && syncs(&a.teams_phone_mobile))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_digits() {
        assert_eq!(parse_e164("+442079460100"), Some(442079460100));
        assert_eq!(parse_e164("442079460100"), None);
        assert_eq!(parse_e164("+0442079460100"), None);
        assert_eq!(parse_e164("+1234567890123456"), None);
        assert_eq!(parse_e164("+44 20"), None);
    }

    #[test]
    fn names() {
        assert!(check_name("contoso-1_a", 100).is_ok());
        assert!(check_name("", 100).is_err());
        assert!(check_name("abcdefghijk", 10).is_err());
        assert!(check_name("a.b", 100).is_err());
    }
}
