//! Requests for Information in bulk: a sheet of `tenantId`,
//! `customerRelationship_status`, `customerRelationship_comment` (and an
//! optional `customerRelationship_ticketId`), checked offline and patched
//! one row at a time through [`crate::rowjob`]. The RFI export's columns are
//! accepted, so an export can be edited and sent back.

use crate::client::{ClientError, ProvisioningClient, ServiceError, WriteOptions};
use crate::export::rows::RFI_COLUMNS;
use crate::model::{CustomerRelationship, RelationshipStatus, RfiPatch};
use crate::rowjob::{Attempt, Operation, OperationError, Refused, RowResult};
use crate::sheet::table::Table;
use std::sync::Arc;

pub const REQUIRED: [&str; 2] = ["tenantId", "customerRelationship_status"];

/// Reads a status as the API spells it or as the portal shows it
/// (`Agreement signed`), in any case.
pub fn parse_status(text: &str) -> Option<RelationshipStatus> {
    let squeezed: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '_' && *c != '-')
        .collect();
    RelationshipStatus::ALL
        .iter()
        .copied()
        .find(|s| s.as_str().eq_ignore_ascii_case(&squeezed))
}

/// Reads an RFI sheet: the patches to send and the rows refused offline.
pub fn read_updates(table: &Table) -> (Vec<Operation<RfiPatch>>, Vec<Refused>) {
    let mut operations = Vec::new();
    let mut refused = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (row, cells) in &table.rows {
        let get = |column: &str| table.get(cells, column);
        let tenant = get("tenantId").unwrap_or("").to_owned();
        let refuse = |code: &str, message: String| Refused {
            row: *row,
            key: tenant.clone(),
            code: code.into(),
            message,
        };
        if tenant.is_empty() {
            refused.push(refuse("TENANT_ID", "no tenantId".into()));
            continue;
        }
        if let Some(other) = seen.insert(tenant.clone(), *row) {
            refused.push(refuse(
                "DUPLICATE",
                format!("tenant {tenant} is also in row {other}"),
            ));
            continue;
        }
        let status_text = get("customerRelationship_status").unwrap_or("");
        let Some(status) = parse_status(status_text) else {
            refused.push(refuse(
                "RELATIONSHIP_STATUS",
                format!(
                    "'{status_text}' is not a relationship status ({})",
                    RelationshipStatus::NAMES.join(", ")
                ),
            ));
            continue;
        };
        let comment = get("customerRelationship_comment");
        if status.needs_comment() && comment.is_none() {
            refused.push(refuse(
                "COMMENT_REQUIRED",
                format!("a status of {status} needs a comment giving the reason"),
            ));
            continue;
        }
        if comment.is_some_and(|c| c.chars().count() > 1000) {
            refused.push(refuse(
                "COMMENT",
                "the comment is longer than 1000 characters".into(),
            ));
            continue;
        }
        let ticket = get("customerRelationship_ticketId");
        if ticket.is_some_and(|t| t.chars().count() > 64) {
            refused.push(refuse(
                "TICKET_ID",
                "the ticket id is longer than 64 characters".into(),
            ));
            continue;
        }
        operations.push(Operation {
            row: *row,
            key: tenant,
            what: RfiPatch {
                customer_relationship: CustomerRelationship {
                    status: Some(status.as_str().to_owned()),
                    comment: comment.map(str::to_owned),
                    ticket_id: ticket.map(str::to_owned),
                    last_modified_on: None,
                },
            },
        });
    }
    (operations, refused)
}

/// Every heading an RFI sheet may have.
pub fn known_columns() -> Vec<&'static str> {
    RFI_COLUMNS.to_vec()
}

/// Patches one RFI.
pub async fn patch(
    client: Arc<ProvisioningClient>,
    operation: Operation<RfiPatch>,
    mut attempt: Attempt,
) -> Result<RowResult, OperationError> {
    let mut stop = attempt.stop.clone();
    let (id, first) = attempt.sent(None).await?;
    let options = WriteOptions {
        repeatability: Some((id, first)),
    };
    match client
        .patch_rfi(&operation.key, &operation.what, &options, &mut stop)
        .await
    {
        Ok(response) => Ok(RowResult {
            ok: true,
            status: response.status.as_u16(),
            code: None,
            message: None,
            request_id: Some(response.request_id.clone()),
            extra: Vec::new(),
        }),
        Err(ServiceError::Client(ClientError::Stopped)) => Err(OperationError::Stopped),
        Err(e @ ServiceError::Client(ClientError::Outage { .. })) => {
            Err(OperationError::Outage(e.to_string()))
        }
        Err(e) => match e.refusal() {
            // What every other row would meet too stops the job.
            Some(refusal) if !e.stops_the_run() => Ok(RowResult {
                ok: false,
                status: refusal.status.as_u16(),
                code: refusal.code.clone(),
                message: refusal.error.as_ref().map(|e| {
                    e.details
                        .first()
                        .map_or_else(|| e.message.clone(), |d| d.message.clone())
                }),
                request_id: Some(refusal.request_id.clone()),
                extra: Vec::new(),
            }),
            _ => Err(OperationError::Fatal(e.to_string())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_as_api_or_portal_write_them() {
        assert_eq!(
            parse_status("Agreement signed"),
            Some(RelationshipStatus::AgreementSigned)
        );
        assert_eq!(
            parse_status("consentDeclined"),
            Some(RelationshipStatus::ConsentDeclined)
        );
        assert_eq!(
            parse_status("CONTRACT_TERMINATED"),
            Some(RelationshipStatus::ContractTerminated)
        );
        assert_eq!(parse_status("maybe"), None);
    }
}
