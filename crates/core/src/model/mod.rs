//! The Provisioning API's resources as JSON, shared by the client side and
//! the emulator so both speak exactly the same shapes.
//!
//! Enumerated fields travel as strings: the service accepts some values
//! (an empty `usage`) that only fail later, in backend sync, so the wire
//! types must carry them. [`Usage`], [`Capability`] and
//! [`AssignmentStatus`] give the known values for checks on both sides.

use serde::{Deserialize, Serialize};

pub mod acs;

/// The api-version this project speaks.
pub const API_VERSION: &str = "2024-02-29";

use crate::spelling::string_enum;

string_enum!(
    /// What a Teams number is for.
    Usage {
        CallingUserAssignment => "CallingUserAssignment",
        FirstPartyAppAssignment => "FirstPartyAppAssignment",
        ConferenceAssignment => "ConferenceAssignment",
    }
);

string_enum!(
    /// Call types a Teams number may be given.
    Capability {
        InboundCalling => "InboundCalling",
        OutboundCalling => "OutboundCalling",
        Mobile => "Mobile",
    }
);

string_enum!(
    /// Whether the customer has assigned a Teams number.
    AssignmentStatus {
        Assigned => "assigned",
        Unassigned => "unassigned",
    }
);

string_enum!(
    /// Backend sync state of a resource.
    ProvisioningStatus {
        Pending => "pending",
        Synced => "synced",
        Failed => "failed",
    }
);

string_enum!(
    /// The operator's relationship with a customer who consented (RFI).
    RelationshipStatus {
        New => "new",
        ContactInitiated => "contactInitiated",
        AgreementSigned => "agreementSigned",
        ConsentDeclined => "consentDeclined",
        ContractTerminated => "contractTerminated",
    }
);

impl RelationshipStatus {
    /// Declining or terminating needs a reason.
    pub fn needs_comment(self) -> bool {
        matches!(
            self,
            RelationshipStatus::ConsentDeclined | RelationshipStatus::ContractTerminated
        )
    }
}

/// An error the backend reported for a resource after a write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceProvisioningError {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// `{ "enabled": bool }`
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnabledService {
    #[serde(default)]
    pub enabled: bool,
}

/// A Teams service on a number (Operator Connect, Teams Phone Mobile).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamsNumberService {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<TeamsConfiguration>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamsConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choosable_capabilities: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_usages: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub civic_address_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_tenant_address_update: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub displayed_country_code: Option<String>,
    /// Output only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquired_capabilities: Option<Vec<String>>,
    /// Output only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_capabilities: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NumberServiceDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams_operator_connect: Option<TeamsNumberService>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams_phone_mobile: Option<TeamsNumberService>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams_direct_routing: Option<EnabledService>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zoom_phone_cloud_peering: Option<EnabledService>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_operator_call_protection: Option<EnabledService>,
}

impl NumberServiceDetails {
    /// The Teams service of `which` (`true` for Teams Phone Mobile).
    pub fn teams(&self, phone_mobile: bool) -> Option<&TeamsNumberService> {
        if phone_mobile {
            self.teams_phone_mobile.as_ref()
        } else {
            self.teams_operator_connect.as_ref()
        }
    }

    pub fn teams_mut(&mut self, phone_mobile: bool) -> &mut Option<TeamsNumberService> {
        if phone_mobile {
            &mut self.teams_phone_mobile
        } else {
            &mut self.teams_operator_connect
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NumberConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_sip_header: Option<String>,
}

/// A telephone number and its services.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Number {
    pub telephone_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    #[serde(default)]
    pub service_details: NumberServiceDetails,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<NumberConfiguration>,
    /// Output only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_provisioning_status: Option<String>,
    /// Output only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_provisioning_errors: Option<Vec<ServiceProvisioningError>>,
}

/// An account service that can sync to the backend.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncService {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_enabled: Option<bool>,
    /// Output only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_count: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubdomainTokens {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region1_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region2_token: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectRoutingConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_screening: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdomain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdomain_tokens: Option<SubdomainTokens>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectRoutingService {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<DirectRoutingConfiguration>,
    /// Output only: `provisioned`, `notProvisioned` or `inconsistent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdomain_status: Option<String>,
    /// Output only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_count: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountServiceDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams_tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams_operator_connect: Option<SyncService>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams_phone_mobile: Option<SyncService>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams_direct_routing: Option<DirectRoutingService>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zoom_phone_cloud_peering: Option<SyncService>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_operator_call_protection: Option<SyncService>,
}

/// A customer of the operator.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// Output only (the name is the path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default)]
    pub service_details: AccountServiceDetails,
    /// Output only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_provisioning_status: Option<String>,
    /// Output only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_provisioning_errors: Option<Vec<ServiceProvisioningError>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telephone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_size: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerRelationship {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// A ticket id in the operator's system, at most 64 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
    /// Output only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified_on: Option<String>,
}

/// A Request for Information: a prospective customer's consent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestForInformation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub tenant_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_context: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consented_on: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified_on: Option<String>,
    #[serde(default)]
    pub consented_countries: Vec<String>,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_relationship: Option<CustomerRelationship>,
}

/// The body of an RFI PATCH.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RfiPatch {
    pub customer_relationship: CustomerRelationship,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub civic_address_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_info: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_default: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elin: Option<String>,
}

/// A Teams emergency (civic) address of a customer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CivicAddress {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub house_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub house_number_suffix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_directional: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_suffix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_directional: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_or_province: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub county_or_district: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city_or_town: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city_or_town_alias: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_or_zip_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_location_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<String>,
    #[serde(default)]
    pub locations: Vec<Location>,
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub value: Vec<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
}

/// Body of the batch create/update.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumbersBody {
    pub numbers: Vec<Number>,
}

/// `{ "telephoneNumber": "+..." }`, for batch delete and capability queries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NumberRef {
    pub telephone_number: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberRefsBody {
    pub numbers: Vec<NumberRef>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapabilityPlan {
    pub name: String,
    pub offer_types: Vec<String>,
    pub usage: String,
    pub mandatory_capabilities: Vec<String>,
    pub choosable_capabilities: Vec<String>,
    pub supports_toll_free: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapabilityPlans {
    pub capability_plans: Vec<CapabilityPlan>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AvailableCapabilities {
    pub available_capabilities: Vec<String>,
}

/// The error body of every failed request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub innererror: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_parse_in_any_case_and_print_the_api_spelling() {
        assert_eq!(
            Usage::parse("callinguserassignment"),
            Some(Usage::CallingUserAssignment)
        );
        assert_eq!(Usage::parse_exact("callinguserassignment"), None);
        assert_eq!(Capability::parse(" Mobile "), Some(Capability::Mobile));
        assert_eq!(AssignmentStatus::Assigned.as_str(), "assigned");
        assert!(RelationshipStatus::ConsentDeclined.needs_comment());
    }

    #[test]
    fn number_json_round_trips_with_camel_case() {
        let json = r#"{"telephoneNumber":"+441632960001","accountName":"contoso","serviceDetails":{"teamsOperatorConnect":{"enabled":true,"assignmentStatus":"unassigned","configuration":{"usage":"CallingUserAssignment","choosableCapabilities":["InboundCalling"],"allowTenantAddressUpdate":true}}},"configuration":{"customSipHeader":"abc"}}"#;
        let number: Number = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&number).unwrap(), json);
    }
}
