//! A number's configuration in one comparable form, whatever it came from:
//! a sheet row, or the API's JSON. From it come the request body an import
//! sends, the sheet row an export writes, and the field-by-field differences
//! a reconcile reports.
//!
//! Values are normalised the way the API means them: booleans by value,
//! capability and usage lists as sets, enumerations in the API's spelling,
//! a disabled service the same as an absent one. Cells render an absent
//! value as the API's default (`unassigned`, `false`), so two records whose
//! cells are equal are provisioned the same.

use crate::csvconf::split_list;
use crate::model::{
    AssignmentStatus, Capability, EnabledService, Number, NumberConfiguration,
    NumberServiceDetails, TeamsConfiguration, TeamsNumberService, Usage,
};
use crate::sheet::{Column, HeaderMap, RawRow, Teams, TeamsField};
use crate::spelling::{e164, parse_bool};
use std::borrow::Cow;

/// A Teams service (Operator Connect or Teams Phone Mobile) on a number.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TeamsFields {
    /// `Some(true)` assigned, `Some(false)` unassigned, `None` not given.
    pub assigned: Option<bool>,
    /// The API's spelling when known, else the text as given.
    pub usage: Option<Cow<'static, str>>,
    /// One bit per [`Capability::ALL`] entry.
    pub capabilities: u8,
    /// One bit per [`Usage::ALL`] entry.
    pub additional_usages: u8,
    pub civic_address_id: Option<Box<str>>,
    pub location_id: Option<Box<str>>,
    pub allow_tenant_address_update: Option<bool>,
    /// Upper case.
    pub displayed_country_code: Option<Box<str>>,
}

/// What a number is provisioned with, apart from its digits and account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Fields {
    /// Operator Connect and Teams Phone Mobile, when enabled.
    pub teams: [Option<TeamsFields>; 2],
    pub direct_routing: bool,
    pub zoom: bool,
    pub call_protection: bool,
    pub custom_sip_header: Option<Box<str>>,
}

fn bits<T: Copy + PartialEq>(all: &[T], items: impl Iterator<Item = Option<T>>) -> u8 {
    items
        .flatten()
        .filter_map(|item| all.iter().position(|&a| a == item))
        .fold(0, |acc, i| acc | (1 << i))
}

fn names<T: Copy>(all: &[T], set: u8, name: fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter()
        .enumerate()
        .filter(|(i, _)| set & (1 << i) != 0)
        .map(|(_, &t)| name(t))
        .collect()
}

fn usage_value(text: &str) -> Option<Cow<'static, str>> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    Some(match Usage::parse(text) {
        Some(known) => Cow::Borrowed(known.as_str()),
        None => Cow::Owned(text.to_owned()),
    })
}

fn boxed(text: Option<&str>) -> Option<Box<str>> {
    text.map(str::trim).filter(|t| !t.is_empty()).map(Box::from)
}

const SERVICES: [Teams; 2] = [Teams::OperatorConnect, Teams::PhoneMobile];

impl Fields {
    /// From a sheet row (cells in any case; unknown list items dropped).
    pub fn from_row(row: &RawRow, header: &HeaderMap) -> Fields {
        let get = |column| row.get(header, column);
        let on = |column| get(column).and_then(parse_bool).unwrap_or(false);
        let teams = SERVICES.map(|service| {
            let column = |field| Column::Teams(service, field);
            if !on(column(TeamsField::Enabled)) {
                return None;
            }
            let list = |field| get(column(field)).map(split_list).into_iter().flatten();
            Some(TeamsFields {
                assigned: get(column(TeamsField::AssignmentStatus))
                    .and_then(AssignmentStatus::parse)
                    .map(|s| s == AssignmentStatus::Assigned),
                usage: get(column(TeamsField::Usage)).and_then(usage_value),
                capabilities: bits(
                    Capability::ALL,
                    list(TeamsField::ChoosableCapabilities).map(Capability::parse),
                ),
                additional_usages: bits(
                    Usage::ALL,
                    list(TeamsField::AdditionalUsages).map(Usage::parse),
                ),
                civic_address_id: boxed(get(column(TeamsField::CivicAddressId))),
                location_id: boxed(get(column(TeamsField::LocationId))),
                allow_tenant_address_update: get(column(TeamsField::AllowTenantAddressUpdate))
                    .and_then(parse_bool),
                displayed_country_code: get(column(TeamsField::DisplayedCountryCode))
                    .map(|c| c.to_ascii_uppercase().into()),
            })
        });
        Fields {
            teams,
            direct_routing: on(Column::DirectRoutingEnabled),
            zoom: on(Column::ZoomEnabled),
            call_protection: on(Column::CallProtectionEnabled),
            custom_sip_header: boxed(get(Column::CustomSipHeader)),
        }
    }

    /// From the API's JSON.
    pub fn from_number(number: &Number) -> Fields {
        let d = &number.service_details;
        let teams = [&d.teams_operator_connect, &d.teams_phone_mobile].map(|service| {
            let service = service.as_ref().filter(|s| s.enabled)?;
            let config = service.configuration.clone().unwrap_or_default();
            Some(TeamsFields {
                assigned: service
                    .assignment_status
                    .as_deref()
                    .and_then(AssignmentStatus::parse)
                    .map(|s| s == AssignmentStatus::Assigned),
                usage: config.usage.as_deref().and_then(usage_value),
                capabilities: bits(
                    Capability::ALL,
                    config
                        .choosable_capabilities
                        .iter()
                        .map(|c| Capability::parse(c)),
                ),
                additional_usages: bits(
                    Usage::ALL,
                    config.additional_usages.iter().map(|u| Usage::parse(u)),
                ),
                civic_address_id: boxed(config.civic_address_id.as_deref()),
                location_id: boxed(config.location_id.as_deref()),
                allow_tenant_address_update: config.allow_tenant_address_update,
                displayed_country_code: config
                    .displayed_country_code
                    .as_deref()
                    .map(|c| c.to_ascii_uppercase().into()),
            })
        });
        let on = |s: &Option<EnabledService>| s.as_ref().is_some_and(|s| s.enabled);
        Fields {
            teams,
            direct_routing: on(&d.teams_direct_routing),
            zoom: on(&d.zoom_phone_cloud_peering),
            call_protection: on(&d.azure_operator_call_protection),
            custom_sip_header: boxed(
                number
                    .configuration
                    .as_ref()
                    .and_then(|c| c.custom_sip_header.as_deref()),
            ),
        }
    }

    /// The API's number for `number` (digits) in `account`.
    pub fn to_number(&self, number: u64, account: &str) -> Number {
        let teams = |fields: &Option<TeamsFields>| {
            fields.as_ref().map(|t| TeamsNumberService {
                enabled: true,
                assignment_status: t.assigned.map(|a| {
                    if a {
                        AssignmentStatus::Assigned
                    } else {
                        AssignmentStatus::Unassigned
                    }
                    .as_str()
                    .to_owned()
                }),
                configuration: Some(TeamsConfiguration {
                    usage: t.usage.as_deref().map(str::to_owned),
                    choosable_capabilities: names(
                        Capability::ALL,
                        t.capabilities,
                        Capability::as_str,
                    )
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                    additional_usages: names(Usage::ALL, t.additional_usages, Usage::as_str)
                        .into_iter()
                        .map(str::to_owned)
                        .collect(),
                    civic_address_id: t.civic_address_id.as_deref().map(str::to_owned),
                    location_id: t.location_id.as_deref().map(str::to_owned),
                    allow_tenant_address_update: t.allow_tenant_address_update,
                    displayed_country_code: t.displayed_country_code.as_deref().map(str::to_owned),
                    acquired_capabilities: None,
                    available_capabilities: None,
                }),
            })
        };
        let plain = |on: bool| on.then_some(EnabledService { enabled: true });
        Number {
            telephone_number: e164(number),
            account_name: Some(account.to_owned()),
            service_details: NumberServiceDetails {
                teams_operator_connect: teams(&self.teams[0]),
                teams_phone_mobile: teams(&self.teams[1]),
                teams_direct_routing: plain(self.direct_routing),
                zoom_phone_cloud_peering: plain(self.zoom),
                azure_operator_call_protection: plain(self.call_protection),
            },
            configuration: self
                .custom_sip_header
                .as_deref()
                .map(|h| NumberConfiguration {
                    custom_sip_header: Some(h.to_owned()),
                }),
            service_provisioning_status: None,
            service_provisioning_errors: None,
        }
    }

    /// The cell of `column` as an export writes it; `None` for the columns
    /// a record does not hold (number, account, ranges, read-only ones).
    pub fn cell(&self, column: Column) -> Option<String> {
        let flag = |on: bool| if on { "true" } else { "false" }.to_owned();
        Some(match column {
            Column::Teams(service, field) => {
                let index = SERVICES
                    .iter()
                    .position(|&s| s == service)
                    .expect("two services");
                let Some(t) = &self.teams[index] else {
                    return (field == TeamsField::Enabled)
                        .then(|| flag(false))
                        .or_else(|| (!field.is_read_only()).then(String::new));
                };
                match field {
                    TeamsField::Enabled => flag(true),
                    TeamsField::AssignmentStatus => if t.assigned == Some(true) {
                        "assigned"
                    } else {
                        "unassigned"
                    }
                    .to_owned(),
                    TeamsField::Usage => t.usage.as_deref().unwrap_or("").to_owned(),
                    TeamsField::ChoosableCapabilities => {
                        names(Capability::ALL, t.capabilities, Capability::as_str).join(",")
                    }
                    TeamsField::AdditionalUsages => {
                        names(Usage::ALL, t.additional_usages, Usage::as_str).join(",")
                    }
                    TeamsField::CivicAddressId => {
                        t.civic_address_id.as_deref().unwrap_or("").to_owned()
                    }
                    TeamsField::LocationId => t.location_id.as_deref().unwrap_or("").to_owned(),
                    TeamsField::AllowTenantAddressUpdate => {
                        flag(t.allow_tenant_address_update == Some(true))
                    }
                    TeamsField::DisplayedCountryCode => {
                        t.displayed_country_code.as_deref().unwrap_or("").to_owned()
                    }
                    TeamsField::AcquiredCapabilities | TeamsField::AvailableCapabilities => {
                        return None
                    }
                }
            }
            Column::DirectRoutingEnabled => flag(self.direct_routing),
            Column::ZoomEnabled => flag(self.zoom),
            Column::CallProtectionEnabled => flag(self.call_protection),
            Column::CustomSipHeader => self.custom_sip_header.as_deref().unwrap_or("").to_owned(),
            _ => return None,
        })
    }

    /// The form in which equal cells mean equal values: absent values as
    /// the API's defaults, empty texts as absent. Interned for comparisons,
    /// so that most pairs compare as two integers.
    pub fn canonical(&self) -> Fields {
        let text = |t: &Option<Box<str>>| t.clone().filter(|t| !t.is_empty());
        Fields {
            teams: self.teams.clone().map(|t| {
                t.map(|t| TeamsFields {
                    assigned: Some(t.assigned.unwrap_or(false)),
                    usage: t.usage.filter(|u| !u.is_empty()),
                    allow_tenant_address_update: Some(
                        t.allow_tenant_address_update.unwrap_or(false),
                    ),
                    civic_address_id: text(&t.civic_address_id),
                    location_id: text(&t.location_id),
                    displayed_country_code: text(&t.displayed_country_code),
                    ..t
                })
            }),
            custom_sip_header: text(&self.custom_sip_header),
            ..self.clone()
        }
    }

    /// Every sheet column where `self` and `other` differ, with both cells.
    pub fn diff(&self, other: &Fields) -> Vec<(Column, String, String)> {
        Column::sheet_columns()
            .filter_map(|column| {
                let (a, b) = (self.cell(column)?, other.cell(column)?);
                (a != b).then_some((column, a, b))
            })
            .collect()
    }
}

/// The columns of an import sheet, after the number and account.
pub fn field_columns() -> impl Iterator<Item = Column> {
    Column::sheet_columns().filter(|c| !matches!(c, Column::TelephoneNumber | Column::AccountName))
}

/// The headings of an import sheet in the portal's format, as
/// [`sheet_row`] fills them.
pub fn sheet_headings() -> Vec<String> {
    Column::sheet_columns().map(Column::heading).collect()
}

/// One number as a row of an import sheet in the portal's format.
pub fn sheet_row(number: u64, account: &str, fields: &Fields) -> Vec<String> {
    Column::sheet_columns()
        .map(|column| match column {
            Column::TelephoneNumber => e164(number),
            Column::AccountName => account.to_owned(),
            other => fields.cell(other).unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(headings: &[&str], cells: &[&str]) -> Fields {
        let header = HeaderMap::new(headings, false).unwrap();
        Fields::from_row(
            &RawRow {
                row: 2,
                at: 0,
                sheet: None,
                cells: csv::StringRecord::from(cells.to_vec()),
                notes: vec![],
            },
            &header,
        )
    }

    const OC: [&str; 7] = [
        "telephoneNumber",
        "serviceDetails_teamsOperatorConnect_enabled",
        "serviceDetails_teamsOperatorConnect_configuration_usage",
        "serviceDetails_teamsOperatorConnect_configuration_choosableCapabilities",
        "serviceDetails_teamsOperatorConnect_configuration_allowTenantAddressUpdate",
        "serviceDetails_teamsDirectRouting_enabled",
        "serviceDetails_teamsOperatorConnect_assignmentStatus",
    ];

    #[test]
    fn sheets_and_json_meet_in_one_form() {
        let a = row(
            &OC,
            &[
                "+1",
                "YES",
                "callinguserassignment",
                "OutboundCalling;InboundCalling",
                "",
                "false",
                "",
            ],
        );
        let b = row(
            &OC,
            &[
                "+1",
                "true",
                "CallingUserAssignment",
                "InboundCalling,OutboundCalling",
                "false",
                "",
                "unassigned",
            ],
        );
        assert!(a.diff(&b).is_empty(), "{:?}", a.diff(&b));
        let json = a.to_number(14255550100, "contoso");
        assert_eq!(Fields::from_number(&json), a);
        let c = row(
            &OC,
            &[
                "+1",
                "true",
                "ConferenceAssignment",
                "InboundCalling",
                "",
                "true",
                "assigned",
            ],
        );
        let columns: Vec<String> = a
            .diff(&c)
            .into_iter()
            .map(|(c, _, _)| c.heading())
            .collect();
        assert_eq!(
            columns,
            [
                "serviceDetails_teamsOperatorConnect_assignmentStatus",
                "serviceDetails_teamsOperatorConnect_configuration_usage",
                "serviceDetails_teamsOperatorConnect_configuration_choosableCapabilities",
                "serviceDetails_teamsDirectRouting_enabled",
            ]
        );
    }

    #[test]
    fn canonical_forms_are_equal_exactly_when_cells_are() {
        let a = row(
            &OC,
            &[
                "+1",
                "YES",
                "callinguserassignment",
                "OutboundCalling;InboundCalling",
                "",
                "false",
                "",
            ],
        );
        let b = row(
            &OC,
            &[
                "+1",
                "true",
                "CallingUserAssignment",
                "InboundCalling,OutboundCalling",
                "false",
                "",
                "unassigned",
            ],
        );
        assert_ne!(a, b);
        assert_eq!(a.canonical(), b.canonical());
        let c = row(
            &OC,
            &[
                "+1",
                "true",
                "CallingUserAssignment",
                "InboundCalling",
                "false",
                "",
                "unassigned",
            ],
        );
        assert_ne!(a.canonical(), c.canonical());
        assert!(!a.diff(&c).is_empty());
    }

    #[test]
    fn a_disabled_service_is_an_absent_one() {
        let a = row(
            &OC,
            &[
                "+1",
                "false",
                "CallingUserAssignment",
                "InboundCalling",
                "true",
                "true",
                "",
            ],
        );
        let b = row(&OC, &["+1", "", "", "", "", "1", ""]);
        assert_eq!(a, b);
        assert_eq!(
            a.cell(Column::Teams(Teams::OperatorConnect, TeamsField::Enabled))
                .as_deref(),
            Some("false")
        );
        assert_eq!(
            a.cell(Column::Teams(Teams::OperatorConnect, TeamsField::Usage))
                .as_deref(),
            Some("")
        );
    }
}
