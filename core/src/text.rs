//! The text rule: what a text string the protocol carries may hold.
//!
//! Text fields (a site's name, an issuer URL, a program's path, the reason
//! a program gives) are shown to people, in a terminal or a desktop
//! notification. A character that moves the cursor, starts a new line or
//! reorders what follows could make a prompt say something other than
//! what was signed, so the protocol refuses (docs/protocol.md, section 1):
//!
//! * general category **Cc** (U+0000–U+001F, U+007F–U+009F): terminal
//!   escapes, carriage returns, newlines, NEL;
//! * **Zl** and **Zp**, U+2028 LINE SEPARATOR and U+2029 PARAGRAPH
//!   SEPARATOR, which some terminals and toolkits render as a new line;
//! * the Unicode property **Bidi_Control**: U+061C ARABIC LETTER MARK,
//!   U+200E and U+200F (LRM, RLM), U+202A–U+202E (embeddings, pop and the
//!   overrides LRO, RLO) and U+2066–U+2069 (the isolates LRI, RLI, FSI,
//!   PDI), which reorder the text around them.
//!
//! Everything else is allowed: letters of every script, combining marks,
//! emoji and the joiners they use (U+200C, U+200D).
//!
//! The CBOR decoder applies this rule to every text string it reads, and
//! the builders of each message that carries text apply it too, so a
//! message built here is never one a peer refuses.

/// Whether `c` is refused in protocol text (see the module doc).
pub fn is_forbidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') || is_bidi_control(c)
}

/// Whether `c` has the Unicode property Bidi_Control (Unicode 15.1
/// `PropList.txt`: exactly these twelve code points).
pub const fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Whether every character of `s` is allowed.
pub fn is_allowed(s: &str) -> bool {
    !s.chars().any(is_forbidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refused_class_is_refused() {
        for c in ('\u{0}'..='\u{1f}').chain('\u{7f}'..='\u{9f}') {
            assert!(is_forbidden(c), "{:04x}", u32::from(c));
        }
        for c in [
            '\u{2028}', '\u{2029}', '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}',
            '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ] {
            assert!(is_forbidden(c), "{:04x}", u32::from(c));
            assert!(!is_allowed(&format!("shop{c}.example")));
        }
    }

    #[test]
    fn ordinary_text_of_any_script_is_allowed() {
        for s in [
            "Example Shop",
            "Café Crème",
            "日本語のサイト",
            "متجر",
            "👩\u{200D}💻 dev tools",
            "a\u{200C}b",
            "/usr/bin/example-tool",
        ] {
            assert!(is_allowed(s), "{s}");
        }
        // The neighbours of the refused ranges are allowed.
        for c in [
            '\u{20}', '\u{7e}', '\u{a0}', '\u{061B}', '\u{061D}', '\u{200D}', '\u{2027}',
            '\u{202F}', '\u{2065}', '\u{206A}',
        ] {
            assert!(!is_forbidden(c), "{:04x}", u32::from(c));
        }
    }
}
