//! What to search for: one search from command-line values, or a sheet of
//! them (`countryCode, phoneNumberType, assignmentType, calling, sms,
//! areaCode, quantity`), each checked offline before any is sent.

use super::model::{AssignmentType, Capabilities, CapabilityType, PhoneNumberType, SearchBody};
use crate::sheet::table::Table;

pub const COLUMNS: [&str; 7] = [
    "countryCode",
    "phoneNumberType",
    "assignmentType",
    "calling",
    "sms",
    "areaCode",
    "quantity",
];
pub const REQUIRED: [&str; 3] = ["countryCode", "phoneNumberType", "assignmentType"];

/// Calls both ways and no SMS, when a request does not say.
pub const DEFAULT_CALLING: CapabilityType = CapabilityType::InboundOutbound;
pub const DEFAULT_SMS: CapabilityType = CapabilityType::None;

/// One search, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchSpec {
    /// The request's row in its sheet (1 for a search given by flags).
    pub row: u64,
    /// ISO 3166 alpha-2, upper case.
    pub country: String,
    pub body: SearchBody,
}

impl SearchSpec {
    pub fn quantity(&self) -> u32 {
        self.body.quantity.unwrap_or(1)
    }
}

/// A request refused offline: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    pub row: u64,
    pub column: &'static str,
    pub message: String,
}

/// The cells of one request, as typed.
#[derive(Debug, Default, Clone)]
pub struct RequestCells<'a> {
    pub country: Option<&'a str>,
    pub phone_number_type: Option<&'a str>,
    pub assignment_type: Option<&'a str>,
    pub calling: Option<&'a str>,
    pub sms: Option<&'a str>,
    pub area_code: Option<&'a str>,
    pub quantity: Option<&'a str>,
}

fn names(list: &[&str]) -> String {
    list.join(", ")
}

/// A row's problems, in the order found.
struct Problems {
    row: u64,
    errors: Vec<RequestError>,
}

impl Problems {
    fn fail(&mut self, column: &'static str, message: String) {
        self.errors.push(RequestError {
            row: self.row,
            column,
            message,
        });
    }

    /// A required cell holding one of `names` (`what` says which, with its
    /// article), read by `parse`.
    fn word<T>(
        &mut self,
        column: &'static str,
        text: Option<&str>,
        what: &str,
        names: &[&str],
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        match text.map(str::trim) {
            None | Some("") => {
                self.fail(column, format!("{what} is required ({})", names.join(", ")));
                None
            }
            Some(text) => {
                let parsed = parse(text);
                if parsed.is_none() {
                    self.fail(
                        column,
                        format!("'{text}' is not {what} ({})", names.join(", ")),
                    );
                }
                parsed
            }
        }
    }

    /// An ISO 3166 two-letter country, upper-cased.
    fn country(&mut self, text: Option<&str>) -> String {
        let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
            self.fail(
                "countryCode",
                "a country is required (ISO 3166 two letters, e.g. US)".into(),
            );
            return String::new();
        };
        let upper = text.to_ascii_uppercase();
        if upper.len() != 2
            || !upper.bytes().all(|b| b.is_ascii_uppercase())
            || phonenumber::metadata::DATABASE.by_id(&upper).is_none()
        {
            self.fail(
                "countryCode",
                format!("'{text}' is not an ISO 3166 two-letter country code (e.g. US, GB, DK)"),
            );
        }
        upper
    }

    /// A capability cell; `default` when it is empty.
    fn capability(
        &mut self,
        column: &'static str,
        text: Option<&str>,
        default: CapabilityType,
    ) -> CapabilityType {
        let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
            return default;
        };
        let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        CapabilityType::parse(&squeezed).unwrap_or_else(|| {
            self.fail(
                column,
                format!(
                    "'{text}' is not a capability ({})",
                    names(CapabilityType::NAMES)
                ),
            );
            default
        })
    }

    /// An optional area code: 1 to 6 digits.
    fn area_code(&mut self, text: Option<&str>) -> Option<String> {
        let text = text.map(str::trim).filter(|t| !t.is_empty())?;
        if (1..=6).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()) {
            return Some(text.to_owned());
        }
        self.fail(
            "areaCode",
            format!("'{text}' is not an area code (1 to 6 digits, e.g. 425)"),
        );
        None
    }

    /// An optional quantity: a whole number of at least 1.
    fn quantity(&mut self, text: Option<&str>) -> Option<u32> {
        let text = text.map(str::trim).filter(|t| !t.is_empty())?;
        match text.parse::<u32>() {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                self.fail(
                    "quantity",
                    format!("'{text}' is not a whole number of at least 1"),
                );
                None
            }
        }
    }
}

/// Checks one request; every problem is reported, not just the first.
pub fn check(row: u64, cells: &RequestCells) -> Result<SearchSpec, Vec<RequestError>> {
    let mut p = Problems {
        row,
        errors: Vec::new(),
    };
    let country = p.country(cells.country);
    let phone_number_type = p.word(
        "phoneNumberType",
        cells.phone_number_type,
        "a number type",
        PhoneNumberType::NAMES,
        |text| {
            let squeezed: String = text.chars().filter(|c| *c != '-' && *c != ' ').collect();
            PhoneNumberType::parse(&squeezed)
        },
    );
    let assignment_type = p.word(
        "assignmentType",
        cells.assignment_type,
        "an assignment type",
        AssignmentType::NAMES,
        AssignmentType::parse,
    );
    let calling = p.capability("calling", cells.calling, DEFAULT_CALLING);
    let sms = p.capability("sms", cells.sms, DEFAULT_SMS);
    let area_code = p.area_code(cells.area_code);
    let quantity = p.quantity(cells.quantity);
    if calling == CapabilityType::None && sms == CapabilityType::None {
        p.fail(
            "calling",
            "a number with neither calling nor SMS is of no use: give --calling or --sms".into(),
        );
    }
    match (p.errors.is_empty(), phone_number_type, assignment_type) {
        (true, Some(phone_number_type), Some(assignment_type)) => Ok(SearchSpec {
            row,
            country,
            body: SearchBody {
                phone_number_type: phone_number_type.as_str().to_owned(),
                assignment_type: assignment_type.as_str().to_owned(),
                capabilities: Capabilities {
                    calling: calling.as_str().to_owned(),
                    sms: sms.as_str().to_owned(),
                },
                area_code,
                quantity: Some(quantity.unwrap_or(1)),
            },
        }),
        _ => Err(p.errors),
    }
}

/// Reads a sheet of requests: the searches, or every row's problems.
pub fn read(table: &Table) -> Result<Vec<SearchSpec>, Vec<RequestError>> {
    let mut specs = Vec::new();
    let mut errors = Vec::new();
    for (row, cells) in &table.rows {
        let get = |column: &str| table.get(cells, column);
        let cells = RequestCells {
            country: get("countryCode"),
            phone_number_type: get("phoneNumberType"),
            assignment_type: get("assignmentType"),
            calling: get("calling"),
            sms: get("sms"),
            area_code: get("areaCode"),
            quantity: get("quantity"),
        };
        match check(*row, &cells) {
            Ok(spec) => specs.push(spec),
            Err(found) => errors.extend(found),
        }
    }
    if errors.is_empty() {
        Ok(specs)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_every_cell() {
        let spec = check(
            2,
            &RequestCells {
                country: Some("us"),
                phone_number_type: Some("toll-free"),
                assignment_type: Some("Application"),
                sms: Some("inbound + outbound"),
                calling: Some("none"),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(spec.country, "US");
        assert_eq!(spec.body.phone_number_type, "tollFree");
        assert_eq!(spec.body.capabilities.sms, "inbound+outbound");
        assert_eq!(spec.quantity(), 1);
        let errors = check(
            3,
            &RequestCells {
                country: Some("USA"),
                phone_number_type: Some("mobile"),
                assignment_type: None,
                area_code: Some("42x"),
                quantity: Some("0"),
                ..Default::default()
            },
        )
        .unwrap_err();
        let columns: Vec<_> = errors.iter().map(|e| e.column).collect();
        assert_eq!(
            columns,
            [
                "countryCode",
                "phoneNumberType",
                "assignmentType",
                "areaCode",
                "quantity"
            ]
        );
        assert!(errors.iter().all(|e| e.row == 3));
        assert!(errors[0].message.contains("'USA'"), "{}", errors[0].message);
    }
}
