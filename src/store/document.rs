//! A document's JSON, and the numbers JSON cannot hold.
//!
//! JSON has no NaN and no infinity; serde_json writes `null` for them, so a document holding
//! one would be stored as something else and every typed read of it would then fail. Every
//! path that turns a value into a document's bytes ([`encode_document`]: `put`, batches,
//! `update`, imports) refuses such a value before anything is logged, naming where it is.
//!
//! The check costs nothing for most documents: a non-finite number always leaves a `null` in
//! the output, so only a document whose JSON contains `null` is walked again by
//! [`non_finite_path`] to tell a real `None` from a number that was lost.

use std::fmt;

use serde::ser::{self, Serialize};

use crate::error::{Error, LimitKind, Result};

/// Why a value did not become a document.
#[derive(Debug)]
pub(crate) enum EncodeError {
    /// serde_json refused it (a map with non-string keys, a failing `Serialize` impl).
    Json(serde_json::Error),
    /// It holds NaN or an infinity at this JSON Pointer (`""`: the value itself).
    NonFinite(String),
}

/// The document's JSON bytes, or why there are none.
pub(crate) fn encode_document<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    let json = serde_json::to_vec(value).map_err(EncodeError::Json)?;
    if contains_null(&json) {
        if let Some(path) = non_finite_path(value) {
            return Err(EncodeError::NonFinite(path));
        }
    }
    Ok(json)
}

/// A collection's validator as [`check_document`] calls it (a `Validator` derefs to one; named
/// here rather than imported so this module stays below the store's options).
pub(crate) type ValidateFn =
    dyn Fn(&serde_json::Value) -> std::result::Result<(), String> + Send + Sync;

/// The one check of a document before anything is logged, shared by the store and the
/// backends of `walden::api`: it was encoded (no serde failure, no non-finite number), it fits
/// `max_document_bytes`, and the collection's validator, if any, accepts its JSON.
pub(crate) fn check_document(
    collection: &str,
    key: &str,
    json: Result<Vec<u8>, EncodeError>,
    max_document_bytes: usize,
    validator: Option<&ValidateFn>,
) -> Result<Vec<u8>> {
    let collection_owned = || collection.to_owned();
    let key_owned = || key.to_owned();
    let json = match json {
        Ok(json) => json,
        Err(EncodeError::Json(source)) => {
            return Err(Error::Json { collection: collection_owned(), key: key_owned(), source })
        }
        Err(EncodeError::NonFinite(path)) => {
            let (collection, key) = (collection_owned(), key_owned());
            return Err(Error::NonFiniteNumber { collection, key, path });
        }
    };
    if json.len() > max_document_bytes {
        return Err(Error::TooLarge {
            what: LimitKind::Document,
            size: json.len(),
            limit: max_document_bytes,
        });
    }
    if let Some(v) = validator {
        let value: serde_json::Value = serde_json::from_slice(&json).map_err(|source| {
            Error::Json { collection: collection_owned(), key: key_owned(), source }
        })?;
        v(&value).map_err(|message| Error::Invalid {
            collection: collection_owned(),
            key: key_owned(),
            message,
        })?;
    }
    Ok(json)
}

fn contains_null(json: &[u8]) -> bool {
    json.windows(4).any(|w| w == b"null")
}

/// Where `value` holds NaN or an infinity (`f32` or `f64`), as a JSON Pointer (RFC 6901:
/// `/readings/3/celsius`, `""` for the value itself), or `None` if it holds none. Imports
/// and other paths that build documents call this before anything is logged.
pub(crate) fn non_finite_path<T: Serialize + ?Sized>(value: &T) -> Option<String> {
    let mut finder = Finder { path: Vec::new() };
    match value.serialize(&mut finder) {
        Err(Stop::Found(path)) => Some(path),
        // A failing `Serialize` impl fails serde_json too, with its own error.
        Ok(()) | Err(Stop::Other) => None,
    }
}

/// Walks a value the way serde_json would write it, keeping the path to where it is.
struct Finder {
    path: Vec<String>,
}

impl Finder {
    fn pointer(&self) -> String {
        self.path.iter().map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1"))).collect()
    }

    fn float(&self, finite: bool) -> Result<(), Stop> {
        if finite {
            Ok(())
        } else {
            Err(Stop::Found(self.pointer()))
        }
    }

    fn nested<T: Serialize + ?Sized>(&mut self, segment: String, value: &T) -> Result<(), Stop> {
        self.path.push(segment);
        value.serialize(&mut *self)?;
        self.path.pop();
        Ok(())
    }
}

#[derive(Debug)]
enum Stop {
    Found(String),
    Other,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Found(path) => write!(f, "non-finite number at {path:?}"),
            Stop::Other => f.write_str("the value failed to serialize"),
        }
    }
}

impl std::error::Error for Stop {}

impl ser::Error for Stop {
    fn custom<M: fmt::Display>(_: M) -> Stop {
        Stop::Other
    }
}

macro_rules! accept {
    ($($name:ident: $ty:ty),* $(,)?) => {
        $(fn $name(self, _: $ty) -> Result<(), Stop> { Ok(()) })*
    };
}

impl<'a> ser::Serializer for &'a mut Finder {
    type Ok = ();
    type Error = Stop;
    type SerializeSeq = Elements<'a>;
    type SerializeTuple = Elements<'a>;
    type SerializeTupleStruct = Elements<'a>;
    type SerializeTupleVariant = Elements<'a>;
    type SerializeMap = Entries<'a>;
    type SerializeStruct = Fields<'a>;
    type SerializeStructVariant = Fields<'a>;

    accept!(
        serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_char: char,
        serialize_str: &str, serialize_bytes: &[u8], serialize_unit_struct: &'static str,
    );

    fn serialize_f32(self, v: f32) -> Result<(), Stop> {
        self.float(v.is_finite())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Stop> {
        self.float(v.is_finite())
    }
    fn serialize_none(self) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Stop> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Stop> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), Stop> {
        // serde_json writes `{"variant": value}`.
        self.nested(variant.to_owned(), v)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Elements<'a>, Stop> {
        Ok(Elements { f: self, index: 0, variant: false })
    }
    fn serialize_tuple(self, _: usize) -> Result<Elements<'a>, Stop> {
        Ok(Elements { f: self, index: 0, variant: false })
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Elements<'a>, Stop> {
        Ok(Elements { f: self, index: 0, variant: false })
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Elements<'a>, Stop> {
        self.path.push(variant.to_owned());
        Ok(Elements { f: self, index: 0, variant: true })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Entries<'a>, Stop> {
        Ok(Entries { f: self, key: String::new() })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Fields<'a>, Stop> {
        Ok(Fields { f: self, variant: false })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Fields<'a>, Stop> {
        self.path.push(variant.to_owned());
        Ok(Fields { f: self, variant: true })
    }
}

/// Elements of a sequence, tuple or tuple variant: path segments are indexes.
struct Elements<'a> {
    f: &'a mut Finder,
    index: usize,
    /// Inside a variant, whose name is on the path until the end.
    variant: bool,
}

impl Elements<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Stop> {
        self.f.nested(self.index.to_string(), v)?;
        self.index += 1;
        Ok(())
    }
    fn finish(self) -> Result<(), Stop> {
        if self.variant {
            self.f.path.pop();
        }
        Ok(())
    }
}

impl ser::SerializeSeq for Elements<'_> {
    type Ok = ();
    type Error = Stop;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Stop> {
        self.element(v)
    }
    fn end(self) -> Result<(), Stop> {
        self.finish()
    }
}

impl ser::SerializeTuple for Elements<'_> {
    type Ok = ();
    type Error = Stop;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Stop> {
        self.element(v)
    }
    fn end(self) -> Result<(), Stop> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Elements<'_> {
    type Ok = ();
    type Error = Stop;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Stop> {
        self.element(v)
    }
    fn end(self) -> Result<(), Stop> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Elements<'_> {
    type Ok = ();
    type Error = Stop;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Stop> {
        self.element(v)
    }
    fn end(self) -> Result<(), Stop> {
        self.finish()
    }
}

/// Entries of a map: path segments are the keys as serde_json writes them.
struct Entries<'a> {
    f: &'a mut Finder,
    key: String,
}

impl ser::SerializeMap for Entries<'_> {
    type Ok = ();
    type Error = Stop;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), Stop> {
        // A key serde_json refuses fails the encoding anyway; its text here is only a label.
        self.key = match serde_json::to_value(k) {
            Ok(serde_json::Value::String(s)) => s,
            Ok(other) => other.to_string(),
            Err(_) => return Err(Stop::Other),
        };
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Stop> {
        self.f.nested(std::mem::take(&mut self.key), v)
    }
    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}

/// Fields of a struct or struct variant: path segments are the field names.
struct Fields<'a> {
    f: &'a mut Finder,
    variant: bool,
}

impl Fields<'_> {
    fn field<T: Serialize + ?Sized>(&mut self, name: &'static str, v: &T) -> Result<(), Stop> {
        self.f.nested(name.to_owned(), v)
    }
    fn finish(self) -> Result<(), Stop> {
        if self.variant {
            self.f.path.pop();
        }
        Ok(())
    }
}

impl ser::SerializeStruct for Fields<'_> {
    type Ok = ();
    type Error = Stop;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        v: &T,
    ) -> Result<(), Stop> {
        self.field(name, v)
    }
    fn end(self) -> Result<(), Stop> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Fields<'_> {
    type Ok = ();
    type Error = Stop;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        v: &T,
    ) -> Result<(), Stop> {
        self.field(name, v)
    }
    fn end(self) -> Result<(), Stop> {
        self.finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(serde::Serialize)]
    struct Reading {
        sensor: String,
        celsius: Option<f64>,
        history: Vec<f32>,
    }

    #[derive(serde::Serialize)]
    enum Event {
        Sample { at: u64, value: f64 },
        Pair(f64, f64),
        One(f64),
    }

    #[test]
    fn finite_values_encode_as_serde_json_writes_them() {
        let r = Reading { sensor: "a/b~c".into(), celsius: None, history: vec![1.5, -0.0] };
        assert_eq!(encode_document(&r).unwrap(), serde_json::to_vec(&r).unwrap());
        assert_eq!(non_finite_path(&r), None);
    }

    #[test]
    fn non_finite_numbers_are_found_with_their_json_pointer() {
        let r = Reading { sensor: "s".into(), celsius: Some(f64::NAN), history: vec![] };
        assert_eq!(non_finite_path(&r).as_deref(), Some("/celsius"));
        let r = Reading { sensor: "s".into(), celsius: None, history: vec![1.0, f32::INFINITY] };
        assert_eq!(non_finite_path(&r).as_deref(), Some("/history/1"));
        assert_eq!(non_finite_path(&f64::NEG_INFINITY).as_deref(), Some(""));
        let mut m = BTreeMap::new();
        m.insert("a/b~c", vec![Event::Sample { at: 1, value: f64::NAN }]);
        assert_eq!(non_finite_path(&m).as_deref(), Some("/a~1b~0c/0/Sample/value"));
        assert_eq!(non_finite_path(&Event::Pair(0.0, f64::NAN)).as_deref(), Some("/Pair/1"));
        assert_eq!(non_finite_path(&Event::One(f64::INFINITY)).as_deref(), Some("/One"));
        let mut ints = BTreeMap::new();
        ints.insert(7u32, (1u8, f64::NAN));
        assert_eq!(non_finite_path(&ints).as_deref(), Some("/7/1"));
        assert!(matches!(encode_document(&ints), Err(EncodeError::NonFinite(p)) if p == "/7/1"));
    }
}
