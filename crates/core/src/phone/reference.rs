//! The plain per-number calls that [`super::PhoneRules`] must agree with.
//!
//! Slow (several microseconds a number, worse under threads): used by the
//! equivalence test and the benchmark as the yardstick, never on the hot path.

use super::Verdict;
use phonenumber::metadata::DATABASE;
use phonenumber::{Mode, ParseError};

/// The verdict for `+` followed by `digits`, by calling the `phonenumber`
/// crate directly: `parse`, then the possible lengths (libphonenumber's
/// union over number types, see [`super::possible_lengths`]) of the region
/// `PhoneNumber::metadata` picks (the main region of the code when it picks
/// none), then `is_valid`.
pub fn verdict(digits: &str) -> Verdict {
    checked(digits).0
}

/// The verdict and, for a number of a possible length, the crate's E.164
/// form (`format().mode(E164)`) of `+` followed by `digits`.
pub fn checked(digits: &str) -> (Verdict, Option<String>) {
    let (verdict, number) = parsed(digits);
    let canonical = match verdict {
        Verdict::Valid | Verdict::NotValid => {
            number.map(|n| n.format().mode(Mode::E164).to_string())
        }
        _ => None,
    };
    (verdict, canonical)
}

fn parsed(digits: &str) -> (Verdict, Option<phonenumber::PhoneNumber>) {
    let text = format!("+{digits}");
    let number = match phonenumber::parse(None, &text) {
        Ok(number) => number,
        Err(ParseError::InvalidCountryCode) => return (Verdict::UnknownCountryCode, None),
        Err(_) => return (Verdict::BadLength, None),
    };
    let national = number.national().to_string();
    let code = number.code().value();
    let meta = number.metadata(&DATABASE).or_else(|| {
        DATABASE
            .by_code(&code)
            .and_then(|metas| metas.into_iter().next())
    });
    if let Some(meta) = meta {
        let possible = super::possible_lengths(meta);
        if !possible.is_empty() && !possible.contains(&(national.len() as u16)) {
            return (Verdict::BadLength, None);
        }
    }
    let verdict = if phonenumber::is_valid(&number) {
        Verdict::Valid
    } else {
        Verdict::NotValid
    };
    (verdict, Some(number))
}
