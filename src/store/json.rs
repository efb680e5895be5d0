//! JSON import and export: the migration path from a JSON file per collection.

use std::io::{BufRead, BufReader, Read, Write};

use serde_json::value::RawValue;

use super::reads::{decode_doc, Versioned};
use super::{Batch, Store};
use crate::error::{Error, IoOp, Result};
use crate::limits::MAX_BATCH_OPS;
use crate::state::docs::Doc;

/// How an import commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportMode {
    /// The whole input as one batch: all documents or none (up to [`MAX_BATCH_OPS`] documents
    /// and one record's size).
    #[default]
    Atomic,
    /// Batches of at most this many documents. Every document is checked (names, sizes,
    /// validators) before the first batch is written, so only an I/O failure can stop an
    /// import part-way; the error then says nothing of how far it got, but each batch is
    /// atomic and a re-run overwrites the same keys.
    Chunked {
        /// Documents per batch.
        documents_per_batch: usize,
    },
}

/// What an import wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    /// Documents written (each a `put`: an existing key gets a new version).
    pub documents: u64,
    /// Batches (WAL records) committed.
    pub batches: u64,
}

fn invalid(line: usize, column: usize, message: impl Into<String>) -> Error {
    Error::InvalidJson { line, column, message: message.into() }
}

fn export_io(e: std::io::Error) -> Error {
    Error::io(IoOp::Write, "<export writer>", e)
}

fn read_io(e: std::io::Error) -> Error {
    Error::io(IoOp::Read, "<import reader>", e)
}

impl Store {
    /// Writes `collection` as one JSON object, key → document, keys in order, as of one
    /// instant. Returns the number of documents written.
    pub fn export_json<W: Write>(&self, collection: &str, mut out: W) -> Result<u64> {
        let docs = self.scan::<Box<RawValue>>(collection)?;
        let n = write_object(&mut out, docs)?;
        out.write_all(b"\n").map_err(export_io)?;
        Ok(n)
    }

    /// Writes every collection as one JSON object, collection → (key → document), as of one
    /// instant. Returns the number of documents written.
    pub fn export_all_json<W: Write>(&self, mut out: W) -> Result<u64> {
        // Collect every collection under one read lock: one instant for the whole store.
        let all: Vec<(String, Vec<(String, Doc)>)> = {
            let docs = self.inner.docs.read();
            docs.iter()
                .map(|(c, m)| (c.clone(), m.iter().map(|(k, d)| (k.clone(), d.clone())).collect()))
                .collect()
        };
        let mut n = 0;
        out.write_all(b"{").map_err(export_io)?;
        for (i, (collection, docs)) in all.into_iter().enumerate() {
            if i > 0 {
                out.write_all(b",").map_err(export_io)?;
            }
            serde_json::to_writer(&mut out, &collection).map_err(|e| export_io(e.into()))?;
            out.write_all(b":").map_err(export_io)?;
            let items = docs
                .into_iter()
                .map(|(k, d)| decode_doc::<Box<RawValue>>(&collection, &k, &d).map(|v| (k, v)));
            n += write_object(&mut out, items)?;
        }
        out.write_all(b"}\n").map_err(export_io)?;
        Ok(n)
    }

    /// Imports a JSON object of key → document (the shape of a typical JSON state file) into
    /// `collection`. Invalid JSON, a top level that is not an object, a bad key or a rejected
    /// document writes nothing and says where.
    pub fn import_json<R: Read>(
        &self,
        collection: &str,
        input: R,
        mode: ImportMode,
    ) -> Result<ImportReport> {
        let mut text = String::new();
        BufReader::new(input).read_to_string(&mut text).map_err(read_io)?;
        let object: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(&text) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(_) => return Err(invalid(1, 1, "expected an object of key → document")),
            Err(e) => return Err(invalid(e.line(), e.column(), e.to_string())),
        };
        self.import_pairs(collection, object.into_iter().collect(), mode)
    }

    /// Imports JSON Lines into `collection`: one object `{"key": "...", "value": <document>}`
    /// per line (blank lines are skipped). Any bad line writes nothing and is named.
    pub fn import_json_lines<R: Read>(
        &self,
        collection: &str,
        input: R,
        mode: ImportMode,
    ) -> Result<ImportReport> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Line {
            key: String,
            value: serde_json::Value,
        }
        let mut pairs = Vec::new();
        for (i, line) in BufReader::new(input).lines().enumerate() {
            let line = line.map_err(read_io)?;
            if line.trim().is_empty() {
                continue;
            }
            let parsed: Line = serde_json::from_str(&line)
                .map_err(|e| invalid(i + 1, e.column(), e.to_string()))?;
            pairs.push((parsed.key, parsed.value));
        }
        self.import_pairs(collection, pairs, mode)
    }

    fn import_pairs(
        &self,
        collection: &str,
        pairs: Vec<(String, serde_json::Value)>,
        mode: ImportMode,
    ) -> Result<ImportReport> {
        let per_batch = match mode {
            ImportMode::Atomic => pairs.len().max(1),
            ImportMode::Chunked { documents_per_batch } => {
                documents_per_batch.clamp(1, MAX_BATCH_OPS)
            }
        };
        // Check everything before writing anything.
        let mut all = Batch::new();
        for (k, v) in &pairs {
            all.put(collection, k, v);
        }
        if per_batch >= pairs.len() {
            let n = pairs.len() as u64;
            if n > 0 {
                self.commit(all)?;
            }
            return Ok(ImportReport { documents: n, batches: u64::from(n > 0) });
        }
        self.validate(all.ops)?;
        let mut report = ImportReport { documents: 0, batches: 0 };
        for chunk in pairs.chunks(per_batch) {
            let mut b = Batch::new();
            for (k, v) in chunk {
                b.put(collection, k, v);
            }
            self.commit(b)?;
            report.documents += chunk.len() as u64;
            report.batches += 1;
        }
        Ok(report)
    }
}

fn write_object<W: Write>(
    out: &mut W,
    items: impl Iterator<Item = Result<(String, Versioned<Box<RawValue>>)>>,
) -> Result<u64> {
    out.write_all(b"{").map_err(export_io)?;
    let mut n = 0;
    for item in items {
        let (key, doc) = item?;
        if n > 0 {
            out.write_all(b",").map_err(export_io)?;
        }
        serde_json::to_writer(&mut *out, &key).map_err(|e| export_io(e.into()))?;
        out.write_all(b":").map_err(export_io)?;
        out.write_all(doc.value.get().as_bytes()).map_err(export_io)?;
        n += 1;
    }
    out.write_all(b"}").map_err(export_io)?;
    Ok(n)
}
