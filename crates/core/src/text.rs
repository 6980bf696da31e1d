//! Quoting values in messages: a sheet can hold a 64 KiB cell, a 10 MB
//! heading or characters a terminal does not show, and a message must stay
//! short and say what is really there.

/// How many characters of a value a message shows.
pub const EXCERPT_CHARS: usize = 80;

/// `value` as a message shows it: at most [`EXCERPT_CHARS`] characters, then
/// `...`; characters that are invisible or move the cursor (control
/// characters, zero-width and non-breaking spaces, byte order marks,
/// direction marks) written as `\u{200b}`, so `telephoneNumber\u{200b}` shows
/// why it is not `telephoneNumber`.
pub fn excerpt(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(EXCERPT_CHARS + 16));
    let mut shown = 0;
    for c in value.chars() {
        let piece = if is_invisible(c) {
            format!("\\u{{{:x}}}", c as u32)
        } else {
            c.to_string()
        };
        let width = piece.chars().count();
        if shown + width > EXCERPT_CHARS {
            out.push_str("...");
            return out;
        }
        shown += width;
        out.push_str(&piece);
    }
    out
}

/// Characters a reader cannot see (or that rearrange what they see).
pub fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{a0}'
                | '\u{ad}'
                | '\u{34f}'
                | '\u{61c}'
                | '\u{115f}'
                | '\u{1160}'
                | '\u{180e}'
                | '\u{2000}'..='\u{200f}'
                | '\u{2028}'..='\u{202f}'
                | '\u{205f}'..='\u{206f}'
                | '\u{3000}'
                | '\u{3164}'
                | '\u{fe00}'..='\u{fe0f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_unchanged() {
        assert_eq!(excerpt("accountName"), "accountName");
        assert_eq!(excerpt(""), "");
        assert_eq!(excerpt("Zürich"), "Zürich");
    }

    #[test]
    fn long_values_are_cut_with_an_ellipsis() {
        let long = "a".repeat(10_000_000);
        let shown = excerpt(&long);
        assert_eq!(shown, format!("{}...", "a".repeat(80)));
        assert_eq!(excerpt(&"é".repeat(80)), "é".repeat(80));
        assert_eq!(excerpt(&"é".repeat(81)), format!("{}...", "é".repeat(80)));
    }

    #[test]
    fn invisible_characters_are_escaped() {
        assert_eq!(
            excerpt("telephoneNumber\u{200b}"),
            "telephoneNumber\\u{200b}"
        );
        assert_eq!(
            excerpt("\u{feff}a\u{a0}b\tc\0"),
            "\\u{feff}a\\u{a0}b\\u{9}c\\u{0}"
        );
        assert_eq!(excerpt("a b"), "a b");
        // An escape is never cut in half.
        let value = format!("{}\u{200b}", "x".repeat(75));
        assert_eq!(excerpt(&value), format!("{}...", "x".repeat(75)));
    }
}
