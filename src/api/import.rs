//! Reading a JSON import for backends other than the embedded store: the same input rules and
//! the same errors as [`Store::import_json`](crate::Store::import_json), from the same code.

use std::io::Read;

use serde_json::value::RawValue;

use crate::error::{Error, IoOp, Result};
use crate::store::import::{parse_object, utf8_text};
use crate::ImportMode;

/// Parses a JSON object of key → document, in input order, each document as its exact JSON
/// text (nothing rounded or reordered). Input the store's import refuses (invalid JSON, a top
/// level that is not an object, a key twice, `NaN`, a byte order mark…) is
/// [`Error::InvalidJson`] with its line and column.
pub fn parse_import_object(input: &mut dyn Read) -> Result<Vec<(String, Box<RawValue>)>> {
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes).map_err(|e| Error::Io {
        op: IoOp::Read,
        path: "<import reader>".into(),
        source: e,
    })?;
    parse_object(utf8_text(&bytes)?)
}

/// Documents per batch for an import of `documents` documents in `mode`: a `Chunked` size
/// outside `1..=MAX_BATCH_OPS` is [`Error::InvalidArgument`], an `Atomic` import over
/// `MAX_BATCH_OPS` documents [`Error::AtomicImportTooLarge`].
pub fn import_chunk_len(mode: ImportMode, documents: usize) -> Result<usize> {
    mode.documents_per_batch(documents)
}
