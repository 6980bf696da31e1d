//! What an export writes for each kind of resource: the headings, and a
//! row per resource (per location, for civic addresses).
//!
//! Number rows are import-sheet rows followed by the read-only columns, so
//! an export can be edited and imported again. Account and RFI rows use the
//! columns `acgbulk accounts import` and `acgbulk rfis update` read.

use crate::model::{Account, CivicAddress, Number, RequestForInformation};
use crate::record::Fields;
use crate::sheet::{Column, Teams, TeamsField};

/// The columns of a numbers export: the sheet's, then the read-only ones.
pub fn number_columns() -> Vec<Column> {
    Column::all()
        .iter()
        .copied()
        .filter(|c| !matches!(c, Column::RangeStart | Column::RangeEnd))
        .collect()
}

pub fn number_headings() -> Vec<String> {
    number_columns().into_iter().map(|c| c.heading()).collect()
}

/// A numbers export row.
pub fn number_row(number: &Number) -> Vec<String> {
    let fields = Fields::from_number(number);
    let teams = |service: Teams| match service {
        Teams::OperatorConnect => number.service_details.teams_operator_connect.as_ref(),
        Teams::PhoneMobile => number.service_details.teams_phone_mobile.as_ref(),
    };
    number_columns()
        .into_iter()
        .map(|column| match column {
            Column::TelephoneNumber => number.telephone_number.clone(),
            Column::AccountName => number.account_name.clone().unwrap_or_default(),
            Column::ServiceProvisioningStatus => number
                .service_provisioning_status
                .clone()
                .unwrap_or_default(),
            Column::ServiceProvisioningErrors => number
                .service_provisioning_errors
                .as_ref()
                .map(|e| serde_json::to_string(e).expect("serializes"))
                .unwrap_or_default(),
            Column::Teams(service, TeamsField::AcquiredCapabilities) => teams(service)
                .and_then(|s| s.configuration.as_ref())
                .and_then(|c| c.acquired_capabilities.as_ref())
                .map(|c| c.join(","))
                .unwrap_or_default(),
            Column::Teams(service, TeamsField::AvailableCapabilities) => teams(service)
                .and_then(|s| s.configuration.as_ref())
                .and_then(|c| c.available_capabilities.as_ref())
                .map(|c| c.join(","))
                .unwrap_or_default(),
            other => fields.cell(other).unwrap_or_default(),
        })
        .collect()
}

fn flag(value: Option<bool>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

/// The writable columns of an accounts sheet (what `accounts import`
/// reads), in order.
pub const ACCOUNT_COLUMNS: [&str; 16] = [
    "name",
    "correlationId",
    "serviceDetails_teamsTenantId",
    "serviceDetails_teamsOperatorConnect_enabled",
    "serviceDetails_teamsOperatorConnect_syncEnabled",
    "serviceDetails_teamsPhoneMobile_enabled",
    "serviceDetails_teamsPhoneMobile_syncEnabled",
    "serviceDetails_teamsDirectRouting_enabled",
    "serviceDetails_teamsDirectRouting_syncEnabled",
    "serviceDetails_teamsDirectRouting_configuration_callScreening",
    "serviceDetails_teamsDirectRouting_configuration_subdomain",
    "serviceDetails_teamsDirectRouting_configuration_subdomainTokens_region1Token",
    "serviceDetails_teamsDirectRouting_configuration_subdomainTokens_region2Token",
    "serviceDetails_zoomPhoneCloudPeering_enabled",
    "serviceDetails_zoomPhoneCloudPeering_syncEnabled",
    "serviceDetails_azureOperatorCallProtection_enabled",
];

/// Read-only account columns an export adds.
pub const ACCOUNT_READ_ONLY: [&str; 8] = [
    "serviceDetails_teamsDirectRouting_subdomainStatus",
    "serviceDetails_teamsOperatorConnect_numberCount",
    "serviceDetails_teamsPhoneMobile_numberCount",
    "serviceDetails_teamsDirectRouting_numberCount",
    "serviceDetails_zoomPhoneCloudPeering_numberCount",
    "serviceDetails_azureOperatorCallProtection_numberCount",
    "serviceProvisioningStatus",
    "serviceProvisioningErrors",
];

pub fn account_headings() -> Vec<String> {
    ACCOUNT_COLUMNS
        .iter()
        .chain(ACCOUNT_READ_ONLY.iter())
        .map(|s| s.to_string())
        .collect()
}

pub fn account_row(account: &Account) -> Vec<String> {
    let d = &account.service_details;
    let dr = d.teams_direct_routing.as_ref();
    let config = dr.and_then(|s| s.configuration.as_ref());
    let tokens = config.and_then(|c| c.subdomain_tokens.as_ref());
    let count = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    vec![
        text(&account.name),
        text(&account.correlation_id),
        text(&d.teams_tenant_id),
        flag(d.teams_operator_connect.as_ref().map(|s| s.enabled)),
        flag(
            d.teams_operator_connect
                .as_ref()
                .and_then(|s| s.sync_enabled),
        ),
        flag(d.teams_phone_mobile.as_ref().map(|s| s.enabled)),
        flag(d.teams_phone_mobile.as_ref().and_then(|s| s.sync_enabled)),
        flag(dr.map(|s| s.enabled)),
        flag(dr.and_then(|s| s.sync_enabled)),
        flag(config.and_then(|c| c.call_screening)),
        config.and_then(|c| c.subdomain.clone()).unwrap_or_default(),
        tokens
            .and_then(|t| t.region1_token.clone())
            .unwrap_or_default(),
        tokens
            .and_then(|t| t.region2_token.clone())
            .unwrap_or_default(),
        flag(d.zoom_phone_cloud_peering.as_ref().map(|s| s.enabled)),
        flag(
            d.zoom_phone_cloud_peering
                .as_ref()
                .and_then(|s| s.sync_enabled),
        ),
        flag(d.azure_operator_call_protection.as_ref().map(|s| s.enabled)),
        dr.and_then(|s| s.subdomain_status.clone())
            .unwrap_or_default(),
        count(
            d.teams_operator_connect
                .as_ref()
                .and_then(|s| s.number_count),
        ),
        count(d.teams_phone_mobile.as_ref().and_then(|s| s.number_count)),
        count(dr.and_then(|s| s.number_count)),
        count(
            d.zoom_phone_cloud_peering
                .as_ref()
                .and_then(|s| s.number_count),
        ),
        count(
            d.azure_operator_call_protection
                .as_ref()
                .and_then(|s| s.number_count),
        ),
        text(&account.service_provisioning_status),
        account
            .service_provisioning_errors
            .as_ref()
            .map(|e| serde_json::to_string(e).expect("serializes"))
            .unwrap_or_default(),
    ]
}

pub const RFI_COLUMNS: [&str; 19] = [
    "tenantId",
    "id",
    "accountName",
    "productContext",
    "operatorId",
    "status",
    "consentedOn",
    "lastModifiedOn",
    "consentedCountries",
    "contact_fullName",
    "contact_email",
    "contact_telephoneNumber",
    "contact_companyName",
    "contact_companySize",
    "contacts",
    "customerRelationship_status",
    "customerRelationship_comment",
    "customerRelationship_ticketId",
    "customerRelationship_lastModifiedOn",
];

pub fn rfi_headings() -> Vec<String> {
    RFI_COLUMNS.iter().map(|s| s.to_string()).collect()
}

pub fn rfi_row(rfi: &RequestForInformation) -> Vec<String> {
    let first = rfi.contacts.first().cloned().unwrap_or_default();
    let relationship = rfi.customer_relationship.clone().unwrap_or_default();
    vec![
        rfi.tenant_id.clone(),
        text(&rfi.id),
        text(&rfi.account_name),
        text(&rfi.product_context),
        text(&rfi.operator_id),
        text(&rfi.status),
        text(&rfi.consented_on),
        text(&rfi.last_modified_on),
        rfi.consented_countries.join(","),
        text(&first.full_name),
        text(&first.email),
        text(&first.telephone_number),
        text(&first.company_name),
        text(&first.company_size),
        serde_json::to_string(&rfi.contacts).expect("serializes"),
        text(&relationship.status),
        text(&relationship.comment),
        text(&relationship.ticket_id),
        text(&relationship.last_modified_on),
    ]
}

const CIVIC_COLUMNS: [&str; 28] = [
    "accountName",
    "civicAddressId",
    "country",
    "houseNumber",
    "houseNumberSuffix",
    "preDirectional",
    "streetName",
    "streetSuffix",
    "postDirectional",
    "stateOrProvince",
    "countyOrDistrict",
    "cityOrTown",
    "cityOrTownAlias",
    "postalOrZipCode",
    "description",
    "companyName",
    "companyId",
    "defaultLocationId",
    "validationStatus",
    "tenantId",
    "partnerId",
    "latitude",
    "longitude",
    "locationId",
    "location_description",
    "location_additionalInfo",
    "location_isDefault",
    "location_elin",
];

pub fn civic_headings() -> Vec<String> {
    CIVIC_COLUMNS.iter().map(|s| s.to_string()).collect()
}

/// One row per location of the address (the address fields repeated); one
/// row with empty location fields for an address without locations.
pub fn civic_rows(account: &str, address: &CivicAddress) -> Vec<Vec<String>> {
    let base = vec![
        account.to_owned(),
        address.id.clone(),
        text(&address.country),
        text(&address.house_number),
        text(&address.house_number_suffix),
        text(&address.pre_directional),
        text(&address.street_name),
        text(&address.street_suffix),
        text(&address.post_directional),
        text(&address.state_or_province),
        text(&address.county_or_district),
        text(&address.city_or_town),
        text(&address.city_or_town_alias),
        text(&address.postal_or_zip_code),
        text(&address.description),
        text(&address.company_name),
        text(&address.company_id),
        text(&address.default_location_id),
        text(&address.validation_status),
        text(&address.tenant_id),
        text(&address.partner_id),
        text(&address.latitude),
        text(&address.longitude),
    ];
    if address.locations.is_empty() {
        let mut row = base;
        row.extend(std::iter::repeat_n(String::new(), 5));
        return vec![row];
    }
    address
        .locations
        .iter()
        .map(|location| {
            let mut row = base.clone();
            row.extend([
                location.id.clone(),
                text(&location.description),
                text(&location.additional_info),
                flag(location.is_default),
                text(&location.elin),
            ]);
            row
        })
        .collect()
}
