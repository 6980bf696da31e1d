//! How values are spelled, in number sheets and on the wire: telephone
//! numbers as `+digits`, booleans, the names and labels the API allows, and
//! closed sets of words ([`string_enum!`]).
//!
//! A leaf: it uses nothing of the crate but [`crate::text`], so the sheet
//! reader, the checks, the records and the jobs share one spelling of each
//! instead of each keeping its own copy.

use crate::text::excerpt;

/// `+digits` text for a number kept as digits.
pub fn e164(number: u64) -> String {
    format!("+{number}")
}

/// The digits of `+` and 1 to 15 digits, the first not 0; `None` for any
/// other text (a leading 0 would be lost in the integer, so it is refused).
pub fn e164_digits(text: &str) -> Option<u64> {
    let digits = text.strip_prefix('+')?;
    if digits.is_empty()
        || digits.len() > 15
        || digits.starts_with('0')
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    digits.parse().ok()
}

/// `true`/`false`, `yes`/`no`, `1`/`0`, in any case.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// The characters of the API's names and labels (account names, Direct
/// Routing subdomains and tokens, custom SIP headers).
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Checks a name or label: `min` to `max` characters (`min` is 0 where the
/// API allows an empty value), each a letter, digit, `_` or `-`. The error
/// names `what` and quotes the value shortened.
pub fn check_label(value: &str, what: &str, min: usize, max: usize) -> Result<(), String> {
    let length = value.chars().count();
    if length < min || length > max {
        let bounds = if min == 0 {
            format!("at most {max}")
        } else {
            format!("{min} to {max}")
        };
        return Err(format!(
            "{what} '{}' must be {bounds} characters (it has {length})",
            excerpt(value)
        ));
    }
    if let Some(bad) = value.chars().find(|&c| !is_name_char(c)) {
        return Err(format!(
            "{what} '{}' has '{}'; only letters, digits, '_' and '-' are allowed",
            excerpt(value),
            excerpt(&bad.to_string())
        ));
    }
    Ok(())
}

/// A closed set of words as an enum: the API's (or the report's) spelling
/// of each variant, a case-insensitive parse for what people type, an exact
/// parse for what the API sends, `Display` and `Serialize` as that spelling.
/// One table per enum, so a word is spelled in one place.
#[macro_export]
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Reads a value in any case, as sheets are typed by people.
            pub fn parse(text: &str) -> Option<$name> {
                let text = text.trim();
                $name::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(text))
            }

            /// Reads a value exactly as it is spelled.
            pub fn parse_exact(text: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == text)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}

pub use crate::string_enum;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_digits_takes_only_plus_and_digits() {
        assert_eq!(e164_digits("+442079460116"), Some(442079460116));
        assert_eq!(e164(442079460116), "+442079460116");
        for bad in [
            "",
            "+",
            "442079460116",
            "+0442",
            "+44 20",
            "+1234567890123456",
            "+4x",
        ] {
            assert_eq!(e164_digits(bad), None, "{bad}");
        }
        assert_eq!(e164_digits("+123456789012345"), Some(123456789012345));
    }

    #[test]
    fn booleans_in_any_case() {
        assert_eq!(parse_bool(" Yes "), Some(true));
        assert_eq!(parse_bool("FALSE"), Some(false));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("y"), None);
    }

    #[test]
    fn labels_name_the_bound_and_the_bad_character() {
        assert!(check_label("contoso_EU-1", "account name", 1, 100).is_ok());
        assert!(check_label("", "custom SIP header", 0, 100).is_ok());
        let empty = check_label("", "account name", 1, 100).unwrap_err();
        assert!(
            empty.contains("must be 1 to 100 characters (it has 0)"),
            "{empty}"
        );
        let long = check_label(&"a".repeat(101), "custom SIP header", 0, 100).unwrap_err();
        assert!(
            long.contains("must be at most 100 characters (it has 101)"),
            "{long}"
        );
        let bad = check_label("a b", "subdomain", 1, 10).unwrap_err();
        assert!(bad.contains("has ' '; only letters"), "{bad}");
    }
}
