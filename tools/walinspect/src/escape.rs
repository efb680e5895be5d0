//! Names in text output: keys, collections, limiter and breaker names come from the data and may
//! hold anything. Control characters (a newline, an escape sequence that recolours or clears the
//! terminal) and bidirectional overrides (which reorder what is shown) are written as escapes, so
//! one record is one record on screen and what is shown is what is stored. NDJSON output needs
//! none of this: JSON strings escape control characters themselves.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` must not reach a terminal raw.
fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\\' || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with control characters, bidirectional overrides and backslashes escaped (`\n`, `\t`,
/// `\r`, `\\`, `\u{1b}`); unchanged (and not copied) when it holds none.
pub fn esc(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn control_characters_and_bidi_overrides_are_escaped_and_plain_names_untouched() {
        assert!(matches!(esc("ada"), std::borrow::Cow::Borrowed("ada")));
        assert_eq!(esc("a\nb\tc\rd"), "a\\nb\\tc\\rd");
        assert_eq!(esc("\u{1b}[2Jx"), "\\u{1b}[2Jx");
        assert_eq!(esc("a\\nb"), "a\\\\nb", "a literal backslash cannot pass for an escape");
        assert_eq!(esc("x\u{202e}y\u{7f}"), "x\\u{202e}y\\u{7f}");
        assert_eq!(esc("日本"), "日本");
    }
}
