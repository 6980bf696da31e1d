//! `--normalize`: turning the ways people write numbers into E.164.

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

/// Normalises `raw` to `+digits`. Returns `Ok(None)` when `raw` already was
/// E.164 text (nothing rewritten).
pub fn normalize(raw: &str, default_country: Option<Id>) -> Result<Option<String>, NormalizeError> {
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
    let parsed =
        phonenumber::parse(Some(country), &cleaned).map_err(|e| NormalizeError::NotANumber {
            country: country.as_ref().to_owned(),
            reason: e.to_string(),
        })?;
    Ok(Some(parsed.format().mode(Mode::E164).to_string()))
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

    #[test]
    fn strips_separators_and_double_zero() {
        assert_eq!(
            normalize("+44 (1632) 960-123", None).unwrap().as_deref(),
            Some("+441632960123")
        );
        assert_eq!(
            normalize("0044 1632 960123", None).unwrap().as_deref(),
            Some("+441632960123")
        );
        assert_eq!(normalize("+441632960123", None).unwrap(), None);
    }

    #[test]
    fn national_numbers_need_a_country() {
        assert_eq!(
            normalize("01632 960123", None),
            Err(NormalizeError::NeedsCountry)
        );
        let gb = parse_country("gb").unwrap();
        assert_eq!(
            normalize("01632 960123", Some(gb)).unwrap().as_deref(),
            Some("+441632960123")
        );
        assert_eq!(
            normalize("abc", Some(gb)),
            Err(NormalizeError::BadCharacters)
        );
    }
}
