//! From a validated sheet row to the API's number: the portal's flattened
//! columns put back into `serviceDetails`, with values in the API's
//! spelling (sheets may say `yes`, `callinguserassignment` or `gb`), through
//! the one comparable form of [`crate::record`].

use crate::model::Number;
use crate::record::Fields;
use crate::sheet::{HeaderMap, RawRow};

/// The number `number` of `row` (a row may be a range), for `account`.
pub fn number_from_row(row: &RawRow, header: &HeaderMap, number: u64, account: &str) -> Number {
    Fields::from_row(row, header).to_number(number, account)
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
            sheet: None,
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
