//! The number search API of Azure Communication Services as JSON, shared by
//! the client side and the emulator. As in [`crate::model`], enumerated
//! fields travel as strings and the enums give the known values.

use crate::model::ErrorDetail;
use crate::spelling::string_enum;
use serde::{Deserialize, Serialize};

/// The api-version of the number search API.
pub const API_VERSION: &str = "2022-12-01";

/// The Entra ID scope for Azure Communication Services.
pub const SCOPE: &str = "https://communication.azure.com/.default";

/// What a search result's `error` may say, as documented.
pub const SEARCH_ERRORS: &[&str] = &[
    "NoError",
    "UnknownErrorCode",
    "OutOfStock",
    "AuthorizationDenied",
    "MissingAddress",
    "InvalidAddress",
    "InvalidOfferModel",
    "NotEnoughLicenses",
    "NoWallet",
    "NotEnoughCredit",
    "NumbersPartiallyAcquired",
    "AllNumbersNotAcquired",
    "ReservationExpired",
    "PurchaseFailed",
    "BillingUnavailable",
    "ProvisioningFailed",
    "UnknownSearchError",
];

string_enum!(
    /// Geographic numbers belong to an area; toll-free ones do not.
    PhoneNumberType {
        Geographic => "geographic",
        TollFree => "tollFree",
    }
);

string_enum!(
    /// Who a number will be assigned to.
    AssignmentType {
        Person => "person",
        Application => "application",
    }
);

string_enum!(
    /// Which way calls or messages may go.
    CapabilityType {
        None => "none",
        Inbound => "inbound",
        Outbound => "outbound",
        InboundOutbound => "inbound+outbound",
    }
);

string_enum!(
    /// Where a long-running operation is.
    OperationStatus {
        NotStarted => "notStarted",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
    }
);

impl OperationStatus {
    pub fn is_final(self) -> bool {
        matches!(self, OperationStatus::Succeeded | OperationStatus::Failed)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub calling: String,
    pub sms: String,
}

/// The body of a search (the country is in the path).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchBody {
    pub phone_number_type: String,
    pub assignment_type: String,
    pub capabilities: Capabilities,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u32>,
}

/// What one number costs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    pub amount: f64,
    pub currency_code: String,
    pub billing_frequency: String,
}

/// What a finished search found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResult {
    pub search_id: String,
    #[serde(default)]
    pub phone_numbers: Vec<String>,
    pub phone_number_type: String,
    pub assignment_type: String,
    pub capabilities: Capabilities,
    pub cost: Cost,
    pub search_expires_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
}

/// A long-running operation as its status URL shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub id: String,
    pub operation_type: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_location: Option<String>,
    pub created_date_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_action_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseBody {
    pub search_id: String,
}
