//! Text from outside, made safe to show on a terminal or in a desktop
//! notification.
//!
//! A site's name, its origin, the bridge it claims, the browser's
//! address, a program's path, a friend's name from a recovery kit: the
//! agent prints them in a prompt the person trusts. Control characters,
//! Unicode format characters (bidi overrides and isolates such as U+202E,
//! zero-width characters, the byte-order mark, tag characters) and line
//! and paragraph separators (U+2028, U+2029) could reorder or split that
//! prompt: "paypal.com" shown for "moc.lapyap", a fake second line. They
//! are shown as `\u{…}` escapes instead. The JSON output (`--json`) keeps
//! the text as it is, for programs.

use std::borrow::Cow;

/// Whether `c` is a Unicode format character (general category Cf).
fn is_format(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

/// Whether `c` must not reach a terminal as it is: a control character,
/// a format character, or a line or paragraph separator.
fn is_unsafe(c: char) -> bool {
    c.is_control() || is_format(c) || matches!(c, '\u{2028}' | '\u{2029}')
}

fn escape(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) && !keep(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One field from outside, safe to print: every control, format and
/// separator character escaped, new lines and tabs included.
pub fn untrusted(s: &str) -> Cow<'_, str> {
    escape(s, |_| false)
}

/// A whole text the agent made (which may hold fields from outside),
/// safe to print: as [`untrusted`], but its own new lines and tabs stay.
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    escape(s, |c| matches!(c, '\n' | '\t'))
}

/// A count and its noun, singular or plural: `1 try`, `2 tries`, `0 links`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A span of time for a person: `45 s`, `5 min`, `24 h`, `3 days`
/// (rounded down).
pub fn duration(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min", secs / 60),
        3600..=172_799 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_take_the_singular_only_for_one() {
        assert_eq!(count(1, "try", "tries"), "1 try");
        assert_eq!(count(2, "try", "tries"), "2 tries");
        assert_eq!(count(0, "link", "links"), "0 links");
    }

    #[test]
    fn bidi_overrides_separators_and_controls_are_escaped() {
        // Right-to-left override: "moc.lapyap" would show as "paypal.com".
        assert_eq!(untrusted("\u{202e}moc.lapyap"), "\\u{202e}moc.lapyap");
        // Isolates, marks, zero-width characters, the BOM, tags.
        for c in [
            '\u{2066}',
            '\u{2069}',
            '\u{200e}',
            '\u{200f}',
            '\u{061c}',
            '\u{200b}',
            '\u{200d}',
            '\u{2060}',
            '\u{feff}',
            '\u{e0041}',
            '\u{00ad}',
        ] {
            let s = format!("a{c}b");
            assert_eq!(
                untrusted(&s),
                format!("a\\u{{{:x}}}b", u32::from(c)),
                "{:x}",
                u32::from(c)
            );
        }
        // Line and paragraph separators, and controls: no fake line.
        assert_eq!(
            untrusted("Shop\u{2028}Approve: yes"),
            "Shop\\u{2028}Approve: yes"
        );
        assert_eq!(untrusted("a\u{2029}b"), "a\\u{2029}b");
        assert_eq!(untrusted("a\nb\tc\u{1b}[31m"), "a\\u{a}b\\u{9}c\\u{1b}[31m");
        assert_eq!(untrusted("a\u{85}b\u{7f}"), "a\\u{85}b\\u{7f}");
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for s in [
            "The shop site",
            "https://shop.example",
            "Café Müller",
            "東京の店",
            "متجر",
            "emoji 🎉 and ZWJ-free text",
            "",
        ] {
            assert!(matches!(untrusted(s), Cow::Borrowed(_)), "{s}");
            assert_eq!(untrusted(s), s);
        }
    }

    #[test]
    fn a_whole_text_keeps_its_own_lines() {
        assert_eq!(
            for_terminal("[1] main ← \u{202e}site\n    through x\n"),
            "[1] main ← \\u{202e}site\n    through x\n"
        );
        assert_eq!(for_terminal("a\u{2028}b\rc"), "a\\u{2028}b\\u{d}c");
    }
}
