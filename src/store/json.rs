//! JSON import and export: the migration path from a JSON file per collection.

use std::io::{Read, Write};

use serde_json::value::RawValue;

use super::import::{parse_lines, parse_object, utf8_text, RawDocs};
use super::reads::{decode_doc, Versioned};
use super::{Batch, Store};
use crate::error::{Error, IoOp, LimitKind, Result};
use crate::format::{batch_op_encoded_len, BATCH_COUNT_BYTES};
use crate::limits::{MAX_BATCH_OPS, MAX_RECORD_BODY_BYTES};
use crate::state::docs::Doc;

/// How an import commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportMode {
    /// The whole input as one batch: all documents or none (up to [`MAX_BATCH_OPS`] documents
    /// and one record's size).
    #[default]
    Atomic,
    /// Batches of at most this many documents (1 to [`MAX_BATCH_OPS`]; anything else is
    /// [`Error::InvalidArgument`]). Every document is checked (names, sizes, validators)
    /// and every batch is checked to fit in one record before the first batch is written, so
    /// only an I/O failure can stop an import part-way; the error then says nothing of how far
    /// it got, but each batch is atomic and a re-run overwrites the same keys.
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

fn export_io(e: std::io::Error) -> Error {
    Error::io(IoOp::Write, "<export writer>", e)
}

fn read_io(e: std::io::Error) -> Error {
    Error::io(IoOp::Read, "<import reader>", e)
}

impl Store {
    /// Writes `collection` as one JSON object, key → document, keys in order, as of one
    /// instant. Returns the number of documents written. Documents are written as stored
    /// (an imported document comes back with the text it was imported with).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use walden::Store;
    /// let store = Store::open(dir.path())?;
    /// store.put("users", "bob", &serde_json::json!({"age": 41}))?;
    /// store.put("users", "ada", &serde_json::json!({"age": 36}))?;
    /// let mut out = Vec::new();
    /// assert_eq!(store.export_json("users", &mut out)?, 2);
    /// assert_eq!(out, b"{\"ada\":{\"age\":36},\"bob\":{\"age\":41}}\n");
    /// # Ok::<(), walden::Error>(())
    /// ```
    pub fn export_json<W: Write>(&self, collection: &str, mut out: W) -> Result<u64> {
        let docs = self.scan::<Box<RawValue>>(collection)?;
        let n = write_object(&mut out, docs)?;
        out.write_all(b"\n").map_err(export_io)?;
        Ok(n)
    }

    /// Writes every collection as one JSON object, collection → (key → document), as of one
    /// instant. Returns the number of documents written.
    pub fn export_all_json<W: Write>(&self, mut out: W) -> Result<u64> {
        self.check_open()?;
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
    /// `collection`, in the object's order. Each document is stored exactly as written (its
    /// own JSON text: integers beyond 64 bits, long decimals and key order are kept; only the
    /// whitespace between tokens is dropped).
    ///
    /// Nothing is written, and [`Error::InvalidJson`] says where, for: invalid JSON or not
    /// UTF-8 (a byte order mark gets a hint), a top level that is not an object, a key that
    /// appears twice in an object, `NaN`/`Infinity` or a number beyond `f64` (a hint says that
    /// Python's `json.dump` writes those). A bad key or a rejected document also writes nothing.
    /// An [`ImportMode::Atomic`] import larger than one batch is
    /// [`Error::AtomicImportTooLarge`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use walden::{ImportMode, Store};
    /// let store = Store::open(dir.path())?;
    /// let file = r#"{"ada": {"id": 123456789012345678901234567890, "b": 1.10, "a": 2}}"#;
    /// let report = store.import_json("users", file.as_bytes(), ImportMode::Atomic)?;
    /// assert_eq!(report.documents, 1);
    /// let mut out = Vec::new();
    /// store.export_json("users", &mut out)?;
    /// let doc = r#"{"id":123456789012345678901234567890,"b":1.10,"a":2}"#;
    /// assert_eq!(String::from_utf8(out).unwrap(), format!("{{\"ada\":{doc}}}\n"));
    /// # Ok::<(), walden::Error>(())
    /// ```
    pub fn import_json<R: Read>(
        &self,
        collection: &str,
        input: R,
        mode: ImportMode,
    ) -> Result<ImportReport> {
        let bytes = read_all(input)?;
        let docs = parse_object(utf8_text(&bytes)?)?;
        self.import_pairs(collection, docs, mode)
    }

    /// Imports JSON Lines into `collection`: one object `{"key": "...", "value": <document>}`
    /// per line (blank lines are skipped), each document stored exactly as written. Any bad
    /// line writes nothing and is named (one line number, one position); so is a key that
    /// appears on two lines (the import refuses rather than keep one of them). The other checks
    /// are those of [`Store::import_json`], which a whole JSON object given here is pointed to.
    pub fn import_json_lines<R: Read>(
        &self,
        collection: &str,
        input: R,
        mode: ImportMode,
    ) -> Result<ImportReport> {
        let bytes = read_all(input)?;
        let docs = parse_lines(utf8_text(&bytes)?)?;
        self.import_pairs(collection, docs, mode)
    }

    fn import_pairs(
        &self,
        collection: &str,
        pairs: RawDocs,
        mode: ImportMode,
    ) -> Result<ImportReport> {
        let per_batch = mode.documents_per_batch(pairs.len())?;
        // Check everything before writing anything.
        let mut all = Batch::new();
        for (k, v) in &pairs {
            all.put(collection, k, v);
        }
        if per_batch >= pairs.len() {
            let n = pairs.len();
            let too_large =
                |what, size, limit| Error::AtomicImportTooLarge { documents: n, what, size, limit };
            if n > 0 {
                match self.commit(all) {
                    Err(Error::TooLarge { what: what @ LimitKind::Record, size, limit }) => {
                        return Err(too_large(what, size, limit));
                    }
                    r => r?,
                };
            }
            return Ok(ImportReport { documents: n as u64, batches: u64::from(n > 0) });
        }
        self.validate(all.ops)?;
        check_chunk_sizes(collection, &pairs, per_batch)?;
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

impl ImportMode {
    /// Documents per batch for an import of `documents` documents; a `Chunked` size outside
    /// `1..=MAX_BATCH_OPS` is an error, never clamped, and so is an `Atomic` import of more
    /// documents than one batch may hold.
    pub(crate) fn documents_per_batch(self, documents: usize) -> Result<usize> {
        match self {
            ImportMode::Atomic if documents > MAX_BATCH_OPS => Err(Error::AtomicImportTooLarge {
                documents,
                what: LimitKind::BatchOps,
                size: documents,
                limit: MAX_BATCH_OPS,
            }),
            ImportMode::Atomic => Ok(documents.max(1)),
            ImportMode::Chunked { documents_per_batch: n } if (1..=MAX_BATCH_OPS).contains(&n) => {
                Ok(n)
            }
            ImportMode::Chunked { documents_per_batch: n } => Err(Error::InvalidArgument {
                argument: "ImportMode::Chunked::documents_per_batch",
                value: n.to_string(),
                accepted: format!("from 1 to {MAX_BATCH_OPS} (MAX_BATCH_OPS) documents per batch"),
            }),
        }
    }
}

/// Every chunk must fit in one record, checked before the first is written, so a chunk over
/// the record limit cannot stop an import part-way.
fn check_chunk_sizes(collection: &str, pairs: &RawDocs, per_batch: usize) -> Result<()> {
    for (i, chunk) in pairs.chunks(per_batch).enumerate() {
        let size = BATCH_COUNT_BYTES
            + chunk
                .iter()
                .map(|(k, v)| batch_op_encoded_len(collection, k, Some(v.get().as_bytes())))
                .sum::<usize>();
        if size > MAX_RECORD_BODY_BYTES {
            return Err(Error::InvalidArgument {
                argument: "ImportMode::Chunked::documents_per_batch",
                value: per_batch.to_string(),
                accepted: format!(
                    "a size whose every batch fits in one record: batch {} would be {size} \
                     bytes, over the limit of {MAX_RECORD_BODY_BYTES} bytes (nothing was \
                     written); use fewer documents per batch",
                    i + 1
                ),
            });
        }
    }
    Ok(())
}

fn read_all<R: Read>(mut input: R) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes).map_err(read_io)?;
    Ok(bytes)
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
