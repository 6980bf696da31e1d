//! The number sheet's columns: the portal's flattened field paths, matched
//! case-insensitively in any order, and the map from a sheet's headings to
//! them.

use std::fmt;

/// The two Teams services whose numbers carry a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Teams {
    OperatorConnect,
    PhoneMobile,
}

impl Teams {
    pub const ALL: [Teams; 2] = [Teams::OperatorConnect, Teams::PhoneMobile];

    /// The service's key in `serviceDetails`.
    pub fn key(self) -> &'static str {
        match self {
            Teams::OperatorConnect => "teamsOperatorConnect",
            Teams::PhoneMobile => "teamsPhoneMobile",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Teams::OperatorConnect => "Operator Connect",
            Teams::PhoneMobile => "Teams Phone Mobile",
        }
    }
}

/// The fields of a Teams service on a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TeamsField {
    Enabled,
    AssignmentStatus,
    Usage,
    ChoosableCapabilities,
    AdditionalUsages,
    CivicAddressId,
    LocationId,
    AllowTenantAddressUpdate,
    DisplayedCountryCode,
    /// Read-only, written by exports and ignored on import.
    AcquiredCapabilities,
    /// Read-only, written by exports and ignored on import.
    AvailableCapabilities,
}

impl TeamsField {
    pub const ALL: [TeamsField; 11] = [
        TeamsField::Enabled,
        TeamsField::AssignmentStatus,
        TeamsField::Usage,
        TeamsField::ChoosableCapabilities,
        TeamsField::AdditionalUsages,
        TeamsField::CivicAddressId,
        TeamsField::LocationId,
        TeamsField::AllowTenantAddressUpdate,
        TeamsField::DisplayedCountryCode,
        TeamsField::AcquiredCapabilities,
        TeamsField::AvailableCapabilities,
    ];

    pub fn is_read_only(self) -> bool {
        matches!(
            self,
            TeamsField::AcquiredCapabilities | TeamsField::AvailableCapabilities
        )
    }

    fn path(self) -> &'static str {
        match self {
            TeamsField::Enabled => "enabled",
            TeamsField::AssignmentStatus => "assignmentStatus",
            TeamsField::Usage => "configuration_usage",
            TeamsField::ChoosableCapabilities => "configuration_choosableCapabilities",
            TeamsField::AdditionalUsages => "configuration_additionalUsages",
            TeamsField::CivicAddressId => "configuration_civicAddressId",
            TeamsField::LocationId => "configuration_locationId",
            TeamsField::AllowTenantAddressUpdate => "configuration_allowTenantAddressUpdate",
            TeamsField::DisplayedCountryCode => "configuration_displayedCountryCode",
            TeamsField::AcquiredCapabilities => "configuration_acquiredCapabilities",
            TeamsField::AvailableCapabilities => "configuration_availableCapabilities",
        }
    }
}

/// A column the sheet format knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Column {
    TelephoneNumber,
    AccountName,
    RangeStart,
    RangeEnd,
    Teams(Teams, TeamsField),
    DirectRoutingEnabled,
    ZoomEnabled,
    CallProtectionEnabled,
    CustomSipHeader,
    /// Read-only, written by exports and ignored on import.
    ServiceProvisioningStatus,
    /// Read-only, written by exports and ignored on import.
    ServiceProvisioningErrors,
}

impl Column {
    /// Every column, in the order an export writes them.
    pub fn all() -> &'static [Column] {
        static ALL: std::sync::OnceLock<Vec<Column>> = std::sync::OnceLock::new();
        ALL.get_or_init(|| {
            let mut all = vec![
                Column::TelephoneNumber,
                Column::AccountName,
                Column::RangeStart,
                Column::RangeEnd,
            ];
            for service in Teams::ALL {
                for field in TeamsField::ALL {
                    if !field.is_read_only() {
                        all.push(Column::Teams(service, field));
                    }
                }
            }
            all.extend([
                Column::DirectRoutingEnabled,
                Column::ZoomEnabled,
                Column::CallProtectionEnabled,
                Column::CustomSipHeader,
                Column::ServiceProvisioningStatus,
                Column::ServiceProvisioningErrors,
            ]);
            for service in Teams::ALL {
                all.push(Column::Teams(service, TeamsField::AcquiredCapabilities));
                all.push(Column::Teams(service, TeamsField::AvailableCapabilities));
            }
            all
        })
    }

    /// The columns of an import sheet (what an export writes first).
    pub fn sheet_columns() -> impl Iterator<Item = Column> {
        Column::all()
            .iter()
            .copied()
            .filter(|c| !c.is_read_only() && !matches!(c, Column::RangeStart | Column::RangeEnd))
    }

    /// The heading as the portal writes it.
    pub fn heading(self) -> String {
        match self {
            Column::TelephoneNumber => "telephoneNumber".into(),
            Column::AccountName => "accountName".into(),
            Column::RangeStart => "rangeStart".into(),
            Column::RangeEnd => "rangeEnd".into(),
            Column::Teams(service, field) => {
                format!("serviceDetails_{}_{}", service.key(), field.path())
            }
            Column::DirectRoutingEnabled => "serviceDetails_teamsDirectRouting_enabled".into(),
            Column::ZoomEnabled => "serviceDetails_zoomPhoneCloudPeering_enabled".into(),
            Column::CallProtectionEnabled => {
                "serviceDetails_azureOperatorCallProtection_enabled".into()
            }
            Column::CustomSipHeader => "configuration_customSipHeader".into(),
            Column::ServiceProvisioningStatus => "serviceProvisioningStatus".into(),
            Column::ServiceProvisioningErrors => "serviceProvisioningErrors".into(),
        }
    }

    /// Read-only columns are accepted (so an export imports unchanged) and
    /// ignored.
    pub fn is_read_only(self) -> bool {
        matches!(
            self,
            Column::ServiceProvisioningStatus
                | Column::ServiceProvisioningErrors
                | Column::Teams(
                    _,
                    TeamsField::AcquiredCapabilities | TeamsField::AvailableCapabilities
                )
        )
    }

    /// A dense index, for per-column arrays.
    #[inline]
    pub fn index(self) -> usize {
        const TEAMS: usize = TeamsField::ALL.len();
        match self {
            Column::TelephoneNumber => 0,
            Column::AccountName => 1,
            Column::RangeStart => 2,
            Column::RangeEnd => 3,
            Column::Teams(service, field) => 4 + service as usize * TEAMS + field as usize,
            Column::DirectRoutingEnabled => 4 + 2 * TEAMS,
            Column::ZoomEnabled => 5 + 2 * TEAMS,
            Column::CallProtectionEnabled => 6 + 2 * TEAMS,
            Column::CustomSipHeader => 7 + 2 * TEAMS,
            Column::ServiceProvisioningStatus => 8 + 2 * TEAMS,
            Column::ServiceProvisioningErrors => 9 + 2 * TEAMS,
        }
    }

    pub const fn count() -> usize {
        10 + 2 * TeamsField::ALL.len()
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.heading())
    }
}

/// Spreadsheet letters for a zero-based column index: 0 is A, 26 is AA.
pub fn column_letters(mut index: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    letters.reverse();
    String::from_utf8(letters).expect("ASCII")
}

/// Why a sheet's headings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadingError {
    #[error("unknown column heading '{heading}' in column {letters}{}; use --ignore-unknown-columns to skip it", suggestion.as_ref().map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default())]
    Unknown {
        /// As a message shows it ([`crate::text::excerpt`]).
        heading: String,
        letters: String,
        suggestion: Option<String>,
    },
    #[error("columns {first} and {second} both are '{heading}'")]
    Duplicate {
        heading: String,
        first: String,
        second: String,
    },
    #[error(
        "no number column: expected a 'telephoneNumber' column, or 'rangeStart' and 'rangeEnd'"
    )]
    NoNumberColumn,
    #[error("row {row}, given by --header-row, is empty")]
    BlankHeadingRow { row: u64 },
    /// No row near the top is a heading row; `first` is why the first
    /// non-blank row is not.
    #[error("{first}; no row of the first {searched} is a heading row: give --header-row N, and --map 'HEADING=FIELD' for headings in your own words")]
    NotFound {
        searched: u64,
        first: Box<HeadingError>,
    },
}

impl Column {
    /// The column whose heading is `heading`, without regard to case and
    /// surrounding spaces.
    pub fn from_heading(heading: &str) -> Option<Column> {
        let heading = heading.trim();
        Column::all()
            .iter()
            .copied()
            .find(|c| c.heading().eq_ignore_ascii_case(heading))
    }
}

/// `--map 'HEADING=FIELD'`: a sheet column read under another name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnMapping {
    /// The sheet's heading, as the user typed it.
    pub heading: String,
    /// The field it holds: a known heading such as `telephoneNumber`.
    pub field: String,
}

impl ColumnMapping {
    /// Parses `HEADING=FIELD`; the field must be a known column.
    pub fn parse(text: &str) -> Result<ColumnMapping, String> {
        let Some((heading, field)) = text.rsplit_once('=') else {
            return Err(format!(
                "'{text}' is not HEADING=FIELD (for example \"Phone Number=telephoneNumber\")"
            ));
        };
        if heading.trim().is_empty() {
            return Err(format!("'{text}' has no heading before the '='"));
        }
        let Some(column) = Column::from_heading(field) else {
            let hint = nearest_heading(&field.trim().to_ascii_lowercase())
                .map(|s| format!(" (did you mean '{s}'?)"))
                .unwrap_or_default();
            return Err(format!(
                "'{}' is not a field of the number sheet{hint}; fields are the portal's headings such as telephoneNumber, accountName",
                field.trim()
            ));
        };
        Ok(ColumnMapping {
            heading: heading.trim().to_owned(),
            field: column.heading(),
        })
    }
}

/// Where each known column sits in a sheet.
#[derive(Debug, Clone)]
pub struct HeaderMap {
    positions: Vec<Option<usize>>,
    /// The headings as the sheet spells them.
    pub headings: Vec<String>,
    /// Headings that were skipped under `--ignore-unknown-columns`.
    pub ignored: Vec<String>,
    /// Headings read under another name (`--map`), with their column.
    pub mapped: Vec<(String, Column)>,
}

impl HeaderMap {
    /// Maps `headings` to columns. Headings are trimmed and compared without
    /// regard to case; an empty heading over an empty column is allowed.
    pub fn new<S: AsRef<str>>(
        headings: &[S],
        ignore_unknown: bool,
    ) -> Result<HeaderMap, HeadingError> {
        HeaderMap::with_mappings(headings, ignore_unknown, &[])
    }

    /// As [`HeaderMap::new`], reading the headings of `mappings` (matched
    /// without regard to case and surrounding spaces) as their fields.
    pub fn with_mappings<S: AsRef<str>>(
        headings: &[S],
        ignore_unknown: bool,
        mappings: &[ColumnMapping],
    ) -> Result<HeaderMap, HeadingError> {
        let known: Vec<(String, Column)> = Column::all()
            .iter()
            .map(|&c| (c.heading().to_ascii_lowercase(), c))
            .collect();
        let mut positions = vec![None; Column::count()];
        let mut ignored = Vec::new();
        let mut mapped = Vec::new();
        for (index, raw) in headings.iter().enumerate() {
            let heading = raw.as_ref().trim().trim_start_matches('\u{feff}').trim();
            if heading.is_empty() {
                continue;
            }
            let lower = heading.to_ascii_lowercase();
            let by_mapping = mappings
                .iter()
                .find(|m| m.heading.eq_ignore_ascii_case(heading))
                .and_then(|m| Column::from_heading(&m.field));
            if let Some(column) = by_mapping {
                mapped.push((heading.to_owned(), column));
            }
            let found = by_mapping.or_else(|| known.iter().find(|(k, _)| *k == lower).map(|k| k.1));
            match found {
                Some(column) => {
                    let slot = &mut positions[column.index()];
                    if let Some(first) = *slot {
                        return Err(HeadingError::Duplicate {
                            heading: column.heading(),
                            first: column_letters(first),
                            second: column_letters(index),
                        });
                    }
                    *slot = Some(index);
                }
                None if ignore_unknown => ignored.push(heading.to_owned()),
                None => {
                    return Err(HeadingError::Unknown {
                        heading: crate::text::excerpt(heading),
                        letters: column_letters(index),
                        suggestion: nearest_heading(&lower),
                    })
                }
            }
        }
        let map = HeaderMap {
            positions,
            headings: headings.iter().map(|h| h.as_ref().to_owned()).collect(),
            ignored,
            mapped,
        };
        let has_number = map.has(Column::TelephoneNumber)
            || (map.has(Column::RangeStart) && map.has(Column::RangeEnd));
        if !has_number {
            return Err(HeadingError::NoNumberColumn);
        }
        Ok(map)
    }

    /// The cell index of `column`, if the sheet has it.
    #[inline]
    pub fn position(&self, column: Column) -> Option<usize> {
        self.positions[column.index()]
    }

    pub fn has(&self, column: Column) -> bool {
        self.position(column).is_some()
    }

    /// The known column at cell `index`.
    pub fn column_at(&self, index: usize) -> Option<Column> {
        Column::all()
            .iter()
            .copied()
            .find(|&c| self.position(c) == Some(index))
    }
}

/// The known heading closest to `lower` (already lowercase), when it is
/// close enough to be a likely typo.
fn nearest_heading(lower: &str) -> Option<String> {
    // A heading far longer than any known one is no typo of one (and
    // comparing a 10 MB heading with each known one takes seconds).
    if lower.len() > 200 {
        return None;
    }
    Column::all()
        .iter()
        .map(|c| {
            let heading = c.heading();
            let score = strsim::jaro_winkler(lower, &heading.to_ascii_lowercase());
            (score, heading)
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .filter(|(score, _)| *score >= 0.8)
        .map(|(_, heading)| heading)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_are_dense_and_distinct() {
        let mut seen: Vec<usize> = Column::all().iter().map(|c| c.index()).collect();
        seen.sort();
        assert_eq!(seen, (0..Column::count()).collect::<Vec<_>>());
    }

    #[test]
    fn letters() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(27), "AB");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
    }

    #[test]
    fn headings_match_without_case_in_any_order() {
        let map = HeaderMap::new(
            &[
                "AccountName",
                " TELEPHONENUMBER ",
                "serviceDetails_teamsDirectRouting_enabled",
            ],
            false,
        )
        .unwrap();
        assert_eq!(map.position(Column::TelephoneNumber), Some(1));
        assert_eq!(map.position(Column::AccountName), Some(0));
        assert_eq!(map.column_at(2), Some(Column::DirectRoutingEnabled));
    }

    #[test]
    fn unknown_heading_suggests_the_nearest() {
        let err = HeaderMap::new(&["telephoneNumber", "acountName"], false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown column heading 'acountName' in column B (did you mean 'accountName'?); use --ignore-unknown-columns to skip it"
        );
        let map = HeaderMap::new(&["telephoneNumber", "acountName"], true).unwrap();
        assert_eq!(map.ignored, vec!["acountName".to_string()]);
    }

    #[test]
    fn needs_a_number_column() {
        assert_eq!(
            HeaderMap::new(&["accountName"], false).unwrap_err(),
            HeadingError::NoNumberColumn
        );
        assert!(HeaderMap::new(&["rangeStart", "rangeEnd"], false).is_ok());
        assert!(HeaderMap::new(&["telephoneNumber", "TelephoneNumber"], false).is_err());
    }
}
