//! The one encoder of URL path segments: account names, tenant ids, civic
//! address ids, country codes. Percent-encoding, not form encoding (which
//! would turn a space into `+`, a literal plus in a path).

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

/// What a path segment cannot carry as is: the URL standard's path set,
/// plus `/` (it would start another segment), `%` (it would start an
/// escape) and `+` (some servers read it as a space). Non-ASCII is always
/// encoded.
pub const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'%')
    .add(b'+')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']');

/// `text` as one path segment.
pub fn segment(text: &str) -> String {
    utf8_percent_encode(text, PATH_SEGMENT).to_string()
}

/// A segment back to its text (invalid UTF-8 replaced).
pub fn decode_segment(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_escape_what_a_path_cannot_carry() {
        assert_eq!(segment("contoso"), "contoso");
        assert_eq!(segment("a b"), "a%20b");
        assert_eq!(segment("a/b"), "a%2Fb");
        assert_eq!(segment("50%"), "50%25");
        assert_eq!(segment("+4420"), "%2B4420");
        assert_eq!(segment("Zürich"), "Z%C3%BCrich");
        assert_eq!(segment("a?b#c"), "a%3Fb%23c");
        assert_eq!(segment("my_acct-1:x"), "my_acct-1:x");
        for text in ["a b", "a/b", "50%", "+4420", "Zürich", "a+b c/d%e"] {
            assert_eq!(decode_segment(&segment(text)), text);
        }
    }
}
