//! Reading a JSON import for backends other than the embedded store: the same input shape and
//! the same errors as [`Store::import_json`](crate::Store::import_json).

use std::io::{BufReader, Read};

use crate::error::{Error, IoOp, Result};
use crate::limits::MAX_BATCH_OPS;
use crate::ImportMode;

/// Parses a JSON object of key → document. Invalid JSON or a top level that is not an object
/// is [`Error::InvalidJson`] with its line and column.
pub fn parse_import_object(input: &mut dyn Read) -> Result<Vec<(String, serde_json::Value)>> {
    let mut text = String::new();
    BufReader::new(input).read_to_string(&mut text).map_err(|e| Error::Io {
        op: IoOp::Read,
        path: "<import reader>".into(),
        source: e,
    })?;
    match serde_json::from_str(&text) {
        Ok(serde_json::Value::Object(m)) => Ok(m.into_iter().collect()),
        Ok(_) => Err(Error::InvalidJson {
            line: 1,
            column: 1,
            message: "expected an object of key → document".to_owned(),
        }),
        Err(e) => {
            Err(Error::InvalidJson { line: e.line(), column: e.column(), message: e.to_string() })
        }
    }
}

/// Documents per batch for an import of `documents` documents in `mode`.
pub fn import_chunk_len(mode: ImportMode, documents: usize) -> usize {
    match mode {
        ImportMode::Atomic => documents.max(1),
        ImportMode::Chunked { documents_per_batch } => documents_per_batch.clamp(1, MAX_BATCH_OPS),
    }
}
