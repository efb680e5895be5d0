//! Reading import input exactly: each document keeps its own JSON text, as written, less the
//! whitespace between tokens (a pretty-printed file's indentation is not stored per document).
//!
//! serde_json's `Value` rounds integers beyond 64 bits and long decimals to `f64` and, without
//! its `preserve_order` feature, sorts object keys. Turning on `arbitrary_precision` or
//! `preserve_order` would change every build that links walden, so instead each document is
//! captured as a [`RawValue`] (its exact text) after a first pass has checked what a raw capture
//! does not: one value per name in every object, and numbers that fit an `f64` (`1e400` reads
//! as infinity everywhere, so it is refused like `NaN`). Input is refused, with a line and
//! column, rather than changed.

use std::collections::hash_map::{Entry, HashMap};
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::{Error, Result};

/// Documents in input order, each with its key and its exact JSON text.
pub(crate) type RawDocs = Vec<(String, Box<RawValue>)>;

fn invalid(line: usize, column: usize, message: impl Into<String>) -> Error {
    Error::InvalidJson { line, column, message: message.into() }
}

const NON_FINITE_HINT: &str = "NaN and Infinity are not JSON (Python's json.dump writes them \
     unless called with allow_nan=False): store null or a string instead";

/// serde_json's message without its " at line L column C" suffix: `Error::InvalidJson` prints
/// the position once, itself.
fn message_of(e: &serde_json::Error, text_line: &str) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let mut message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    if non_finite_at(text_line, e.column()) {
        message.push_str("; ");
        message.push_str(NON_FINITE_HINT);
    } else if message.starts_with("number out of range") {
        message.push_str(
            "; it is beyond what an f64 holds, so most JSON readers would read it as infinity: \
             store it as a string instead",
        );
    }
    message
}

/// Whether a `NaN`, `Infinity` or `-Infinity` literal starts at (or just before) 1-based
/// `column` of `line`, where serde_json stops at such a literal.
fn non_finite_at(line: &str, column: usize) -> bool {
    let bytes = line.as_bytes();
    (column.saturating_sub(3)..column.min(bytes.len()) + 1).any(|start| {
        let rest = &bytes[start.min(bytes.len())..];
        [&b"NaN"[..], b"Infinity", b"-Infinity"].iter().any(|w| rest.starts_with(w))
    })
}

/// The input as UTF-8 without a byte order mark, or an error saying where it is not.
pub(crate) fn utf8_text(bytes: &[u8]) -> Result<&str> {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err(invalid(
            1,
            1,
            "the input starts with a UTF-8 byte order mark (EF BB BF), which JSON does not \
             allow: save it as UTF-8 without BOM (in Python: encoding=\"utf-8\", not \
             \"utf-8-sig\"; in PowerShell 5: Out-File -Encoding utf8 writes one)",
        ));
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let before = &bytes[..e.valid_up_to()];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let column = e.valid_up_to() - line_start + 1;
        invalid(line, column, "the input is not UTF-8: JSON text must be UTF-8")
    })
}

/// Parses a JSON object of key → document, keeping each document's text and the input order.
pub(crate) fn parse_object(text: &str) -> Result<RawDocs> {
    let on_err = |e: serde_json::Error| {
        let line = text.lines().nth(e.line().saturating_sub(1)).unwrap_or("");
        invalid(e.line(), e.column(), message_of(&e, line))
    };
    let mut de = serde_json::Deserializer::from_str(text);
    Check { top: true }.deserialize(&mut de).and_then(|()| de.end()).map_err(on_err)?;
    let mut de = serde_json::Deserializer::from_str(text);
    let docs = de.deserialize_map(RawObject).map_err(on_err)?;
    Ok(docs.into_iter().map(|(k, v)| (k, compact(v))).collect())
}

/// The same JSON text without whitespace between tokens; every token (numbers, strings, names
/// and their order) is kept byte for byte.
fn compact(raw: Box<RawValue>) -> Box<RawValue> {
    let text = raw.get();
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            in_string = c == '"';
            out.push(c);
        }
    }
    if out.len() == text.len() {
        return raw;
    }
    // Removing whitespace between tokens keeps valid JSON valid; should it ever not, the text
    // as written is kept.
    RawValue::from_string(out).unwrap_or(raw)
}

/// Parses JSON Lines: one `{"key": "...", "value": <document>}` per line, blank lines skipped.
/// A key on two lines is refused, naming both.
pub(crate) fn parse_lines(text: &str) -> Result<RawDocs> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Line {
        key: String,
        value: Box<RawValue>,
    }
    let mut docs = Vec::new();
    let mut first_line_of: HashMap<String, usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut de = serde_json::Deserializer::from_str(line);
        let parsed = Check { top: false }
            .deserialize(&mut de)
            .and_then(|()| de.end())
            .and_then(|()| serde_json::from_str::<Line>(line));
        let parsed = match parsed {
            Ok(p) => p,
            Err(e) => {
                if let Some(hint) = whole_object_hint(text) {
                    return Err(invalid(line_no, 0, hint));
                }
                return Err(invalid(line_no, e.column(), message_of(&e, line)));
            }
        };
        match first_line_of.entry(parsed.key) {
            Entry::Occupied(first) => {
                return Err(invalid(
                    line_no,
                    0,
                    format!(
                        "key {:?} is also on line {}: each key may appear once (nothing was \
                         written)",
                        first.key(),
                        first.get()
                    ),
                ));
            }
            Entry::Vacant(v) => {
                docs.push((v.key().clone(), compact(parsed.value)));
                v.insert(line_no);
            }
        }
    }
    Ok(docs)
}

/// The hint for a JSON object (a pretty-printed one, or one line that is not a
/// `{"key", "value"}` pair) given where JSON Lines were expected.
fn whole_object_hint(text: &str) -> Option<&'static str> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).ok()?;
    let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
    let is_pair = object.contains_key("key") && object.contains_key("value");
    (lines > 1 || !is_pair)
        .then_some("this is a JSON object: use import_json (import_json_lines reads one {\"key\": ..., \"value\": ...} object per line)")
}

/// First pass: walks a value checking each object for a repeated name and each number for a
/// finite `f64` (serde_json reports one that is not as "number out of range"). `top`: the value
/// must be an object (the key → document map of `import_json`).
#[derive(Clone, Copy)]
struct Check {
    top: bool,
}

impl<'de> DeserializeSeed<'de> for Check {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        if self.top {
            d.deserialize_map(self)
        } else {
            d.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Check {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.top { "an object of key → document" } else { "a JSON value" })
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> std::result::Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while seq.next_element_seed(Check { top: false })?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if !seen.insert(name.clone()) {
                let place = if self.top { "the top-level object" } else { "an object" };
                return Err(de::Error::custom(format!(
                    "duplicate key {name:?} in {place}: JSON readers disagree on which value \
                     wins, so nothing was imported"
                )));
            }
            map.next_value_seed(Check { top: false })?;
        }
        Ok(())
    }
}

/// Second pass: the top-level object's pairs, each document as its exact text.
struct RawObject;

impl<'de> Visitor<'de> for RawObject {
    type Value = RawDocs;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of key → document")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<RawDocs, A::Error> {
        let mut docs = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            docs.push((key, map.next_value::<Box<RawValue>>()?));
        }
        Ok(docs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(r: Result<RawDocs>) -> (usize, usize, String) {
        match r {
            Err(Error::InvalidJson { line, column, message }) => (line, column, message),
            other => panic!("expected InvalidJson, got {other:?}"),
        }
    }

    #[test]
    fn documents_keep_their_text_and_order() {
        let text = "{\"b\": {\n  \"z\": 1, \"a\": 123456789012345678901234567890,\n  \"s\": \"x \\\" y\"},\n \"a\": 0.1000000000000000000001}";
        let docs = parse_object(text).unwrap();
        let got: Vec<(&str, &str)> = docs.iter().map(|(k, v)| (k.as_str(), v.get())).collect();
        assert_eq!(
            got,
            vec![
                ("b", r#"{"z":1,"a":123456789012345678901234567890,"s":"x \" y"}"#),
                ("a", "0.1000000000000000000001")
            ]
        );
    }

    #[test]
    fn a_duplicate_key_is_refused_with_its_name_and_place() {
        let (line, column, message) = err(parse_object("{\n\"a\": 1,\n\"a\": 2}"));
        assert_eq!(line, 3);
        assert!(column > 0);
        assert!(message.contains("duplicate key \"a\" in the top-level object"), "{message}");
        assert!(!message.contains("at line"), "position printed once: {message}");
        let (line, _, message) = err(parse_object("{\"d\": {\"x\": 1, \"x\": 2}}"));
        assert_eq!(line, 1);
        assert!(message.contains("duplicate key \"x\" in an object"), "{message}");
    }

    #[test]
    fn non_finite_numbers_are_refused_with_a_hint() {
        for text in ["{\"a\": NaN}", "{\"a\": Infinity}", "{\"a\": -Infinity}", "{\"a\": [1, NaN]}"]
        {
            let (_, _, message) = err(parse_object(text));
            assert!(message.contains("Python's json.dump"), "{text}: {message}");
        }
        let (_, _, message) = err(parse_object("{\"a\": 1e400}"));
        assert!(message.contains("number out of range"), "{message}");
        assert!(message.contains("store it as a string"), "{message}");
        let (_, _, message) = err(parse_lines("{\"key\": \"k\", \"value\": NaN}"));
        assert!(message.contains("Python's json.dump"), "{message}");
    }

    #[test]
    fn a_byte_order_mark_and_bad_utf8_get_a_hint() {
        let (line, column, message) = match utf8_text(b"\xEF\xBB\xBF{}") {
            Err(Error::InvalidJson { line, column, message }) => (line, column, message),
            other => panic!("{other:?}"),
        };
        assert_eq!((line, column), (1, 1));
        assert!(message.contains("byte order mark"), "{message}");
        match utf8_text(b"{\n\"a\": \"\xFF\"}") {
            Err(Error::InvalidJson { line: 2, column: 7, .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn json_lines_errors_name_one_line_and_one_position() {
        let (line, column, message) =
            err(parse_lines("{\"key\":\"c\",\"value\":1}\n{\"key\":\"d\",\"value\":}\n"));
        assert_eq!((line, column), (2, 20));
        assert!(!message.contains("line"), "one line number: {message}");
        let (line, column, message) =
            err(parse_lines("{\"key\":\"a\",\"value\":1}\n\n{\"key\":\"a\",\"value\":2}\n"));
        assert_eq!((line, column), (3, 0));
        assert!(message.contains("key \"a\" is also on line 1"), "{message}");
    }

    #[test]
    fn an_object_given_as_json_lines_says_use_import_json() {
        for text in ["{\n  \"a\": 1,\n  \"b\": 2\n}\n", "{\"a\": 1, \"b\": 2}"] {
            let (_, _, message) = err(parse_lines(text));
            assert!(message.starts_with("this is a JSON object: use import_json"), "{message}");
        }
    }
}
