//! From a validated sheet row to the API's number: the portal's flattened
//! columns put back into `serviceDetails`, with values in the API's
//! spelling (sheets may say `yes`, `callinguserassignment` or `gb`).

use crate::csvconf::split_list;
use crate::model::{
    AssignmentStatus, Capability, EnabledService, Number, NumberConfiguration,
    NumberServiceDetails, TeamsConfiguration, TeamsNumberService, Usage,
};
use crate::sheet::{Column, HeaderMap, RawRow, Teams, TeamsField};
use crate::validate::{e164, parse_bool};

/// The number `number` of `row` (a row may be a range), for `account`.
pub fn number_from_row(row: &RawRow, header: &HeaderMap, number: u64, account: &str) -> Number {
    let get = |column| row.get(header, column);
    let enabled = |column| get(column).and_then(parse_bool).unwrap_or(false);
    let teams = |service: Teams| -> Option<TeamsNumberService> {
        let column = |field| Column::Teams(service, field);
        if !enabled(column(TeamsField::Enabled)) {
            return None;
        }
        let list = |field, parse: fn(&str) -> Option<&'static str>| -> Vec<String> {
            get(column(field))
                .map(|cell| {
                    split_list(cell)
                        .filter_map(parse)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        Some(TeamsNumberService {
            enabled: true,
            assignment_status: get(column(TeamsField::AssignmentStatus))
                .and_then(AssignmentStatus::parse)
                .map(|s| s.as_str().to_owned()),
            configuration: Some(TeamsConfiguration {
                usage: get(column(TeamsField::Usage))
                    .and_then(Usage::parse)
                    .map(|u| u.as_str().to_owned()),
                choosable_capabilities: list(TeamsField::ChoosableCapabilities, |c| {
                    Capability::parse(c).map(Capability::as_str)
                }),
                additional_usages: list(TeamsField::AdditionalUsages, |u| {
                    Usage::parse(u).map(Usage::as_str)
                }),
                civic_address_id: get(column(TeamsField::CivicAddressId)).map(str::to_owned),
                location_id: get(column(TeamsField::LocationId)).map(str::to_owned),
                allow_tenant_address_update: get(column(TeamsField::AllowTenantAddressUpdate))
                    .and_then(parse_bool),
                displayed_country_code: get(column(TeamsField::DisplayedCountryCode))
                    .map(|c| c.to_ascii_uppercase()),
                acquired_capabilities: None,
                available_capabilities: None,
            }),
        })
    };
    let plain = |column| enabled(column).then_some(EnabledService { enabled: true });
    Number {
        telephone_number: e164(number),
        account_name: Some(account.to_owned()),
        service_details: NumberServiceDetails {
            teams_operator_connect: teams(Teams::OperatorConnect),
            teams_phone_mobile: teams(Teams::PhoneMobile),
            teams_direct_routing: plain(Column::DirectRoutingEnabled),
            zoom_phone_cloud_peering: plain(Column::ZoomEnabled),
            azure_operator_call_protection: plain(Column::CallProtectionEnabled),
        },
        configuration: get(Column::CustomSipHeader).map(|h| NumberConfiguration {
            custom_sip_header: Some(h.to_owned()),
        }),
        service_provisioning_status: None,
        service_provisioning_errors: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_back_into_service_details() {
        let header = HeaderMap::new(
            &[
                "telephoneNumber",
                "serviceDetails_teamsOperatorConnect_enabled",
                "serviceDetails_teamsOperatorConnect_assignmentStatus",
                "serviceDetails_teamsOperatorConnect_configuration_usage",
                "serviceDetails_teamsOperatorConnect_configuration_choosableCapabilities",
                "serviceDetails_teamsOperatorConnect_configuration_allowTenantAddressUpdate",
                "serviceDetails_teamsOperatorConnect_configuration_displayedCountryCode",
                "serviceDetails_teamsDirectRouting_enabled",
                "configuration_customSipHeader",
            ],
            false,
        )
        .unwrap();
        let row = RawRow {
            row: 2,
            at: 0,
            cells: csv::StringRecord::from(vec![
                "+18005550100..+18005550109",
                "YES",
                "Unassigned",
                "firstpartyappassignment",
                "inboundcalling; OutboundCalling",
                "1",
                "us",
                "false",
                "trunk-1",
            ]),
            notes: vec![],
        };
        let number = number_from_row(&row, &header, 18005550103, "fabrikam");
        assert_eq!(
            serde_json::to_value(&number).unwrap(),
            serde_json::json!({
                "telephoneNumber": "+18005550103",
                "accountName": "fabrikam",
                "serviceDetails": { "teamsOperatorConnect": {
                    "enabled": true,
                    "assignmentStatus": "unassigned",
                    "configuration": {
                        "usage": "FirstPartyAppAssignment",
                        "choosableCapabilities": ["InboundCalling", "OutboundCalling"],
                        "allowTenantAddressUpdate": true,
                        "displayedCountryCode": "US"
                    }
                } },
                "configuration": { "customSipHeader": "trunk-1" }
            })
        );
    }
}
