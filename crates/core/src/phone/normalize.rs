//! `--normalize`: turning the ways people write numbers into E.164.

use super::{PhoneRules, Verdict};
use phonenumber::country::Id;
use phonenumber::Mode;

/// Why a number could not be normalised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    #[error("national number needs --default-country to become E.164")]
    NeedsCountry,
    #[error("not a number in {country}: {reason}")]
    NotANumber { country: String, reason: String },
    #[error("characters other than digits, spaces, '-', '.', '(' and ')'")]
    BadCharacters,
}

/// Characters `--normalize` removes: the separators people type.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '-' | '.' | '(' | ')' | '\u{2010}'..='\u{2015}')
}

/// A `--default-country`: the region and its calling code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefaultCountry {
    pub id: Id,
    pub code: u16,
}

impl DefaultCountry {
    pub fn new(id: Id) -> Option<DefaultCountry> {
        let code = phonenumber::metadata::DATABASE
            .by_id(id.as_ref())?
            .country_code();
        Some(DefaultCountry { id, code })
    }

    /// The E.164 digits of `national`, digits as dialled in this country:
    /// the `phonenumber` crate's reading with this region (which strips a
    /// trunk prefix: `020...` is `+4420...`), and its E.164 form.
    ///
    /// One correction: the crate also strips a leading calling code
    /// whenever the digits begin with it, which turns Rwanda's `250 123 456`
    /// into `+250123456`. libphonenumber strips it only when the number
    /// read with it is not valid; so does this.
    pub fn national_digits(&self, national: &str, rules: &PhoneRules) -> Option<u64> {
        let code = self.code.to_string();
        if national.len() > code.len() && national.starts_with(&code) {
            let with_code = format!("{code}{national}");
            let checked = rules.check(&with_code);
            if checked.verdict == Verdict::Valid {
                return Some(checked.canonical_or(with_code.parse().ok()?));
            }
        }
        let parsed = phonenumber::parse(Some(self.id), national).ok()?;
        parsed.format().mode(Mode::E164).to_string()[1..]
            .parse()
            .ok()
    }
}

/// Normalises `raw` to `+digits`. Returns `Ok(None)` when `raw` already was
/// E.164 text (nothing rewritten).
pub fn normalize(
    raw: &str,
    default_country: Option<DefaultCountry>,
    rules: &PhoneRules,
) -> Result<Option<String>, NormalizeError> {
    let cleaned: String = raw.chars().filter(|&c| !is_separator(c)).collect();
    let international = if let Some(rest) = cleaned.strip_prefix('+') {
        Some(rest)
    } else {
        cleaned.strip_prefix("00")
    };
    if let Some(digits) = international {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NormalizeError::BadCharacters);
        }
        let e164 = format!("+{digits}");
        return Ok((e164 != raw).then_some(e164));
    }
    if !cleaned.bytes().all(|b| b.is_ascii_digit()) || cleaned.is_empty() {
        return Err(NormalizeError::BadCharacters);
    }
    let country = default_country.ok_or(NormalizeError::NeedsCountry)?;
    let digits =
        country
            .national_digits(&cleaned, rules)
            .ok_or_else(|| NormalizeError::NotANumber {
                country: country.id.as_ref().to_owned(),
                reason: "too many digits".into(),
            })?;
    Ok(Some(format!("+{digits}")))
}

/// Parses a `--default-country` value (ISO 3166 two letters, any case).
pub fn parse_country(text: &str) -> Result<Id, String> {
    text.to_ascii_uppercase()
        .parse::<Id>()
        .map_err(|_| format!("'{text}' is not a two-letter country code (for example GB or US)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn country(code: &str) -> Option<DefaultCountry> {
        DefaultCountry::new(parse_country(code).unwrap())
    }

    #[test]
    fn strips_separators_and_double_zero() {
        let rules = PhoneRules::new();
        assert_eq!(
            normalize("+44 (1632) 960-123", None, &rules)
                .unwrap()
                .as_deref(),
            Some("+441632960123")
        );
        assert_eq!(
            normalize("0044 1632 960123", None, &rules)
                .unwrap()
                .as_deref(),
            Some("+441632960123")
        );
        assert_eq!(normalize("+441632960123", None, &rules).unwrap(), None);
    }

    #[test]
    fn national_numbers_need_a_country() {
        let rules = PhoneRules::new();
        assert_eq!(
            normalize("01632 960123", None, &rules),
            Err(NormalizeError::NeedsCountry)
        );
        let gb = country("gb");
        assert_eq!(
            normalize("01632 960123", gb, &rules).unwrap().as_deref(),
            Some("+441632960123")
        );
        assert_eq!(
            normalize("abc", gb, &rules),
            Err(NormalizeError::BadCharacters)
        );
    }

    #[test]
    fn national_numbers_that_begin_with_the_calling_code() {
        let rules = PhoneRules::new();
        // Rwanda's toll-free 250 123 456 is +250250123456, not +250123456.
        assert_eq!(
            normalize("250 123 456", country("RW"), &rules)
                .unwrap()
                .as_deref(),
            Some("+250250123456")
        );
        // A GB number that lost only its '+' keeps its calling code once.
        assert_eq!(
            normalize("44 20 7946 0116", country("GB"), &rules)
                .unwrap()
                .as_deref(),
            Some("+442079460116")
        );
    }
}
