//! The body of a `Batch` record: document puts and deletes committed together.
//!
//! ```text
//! u32 op_count
//! op_count times:
//!   u8  op            1 = put, 2 = delete
//!   u8  collection_len, then that many bytes (UTF-8)
//!   u16 key_len,        then that many bytes (UTF-8)
//!   u64 version       put: the version the document now has; delete: the version removed
//!   put only: u32 value_len, then that many bytes (the document as JSON)
//! ```
//! All integers little-endian. Preconditions are checked before a batch is logged and are not
//! recorded: replay only re-applies outcomes.

use super::body::BodyReader;
use crate::limits::MAX_BATCH_OPS;

/// Op byte of a put.
pub const BATCH_OP_PUT: u8 = 1;
/// Op byte of a delete.
pub const BATCH_OP_DELETE: u8 = 2;

/// Whether an operation stores or removes a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOpKind {
    /// The document now has `version` and `value`.
    Put,
    /// The document (which had `version`) is gone.
    Delete,
}

/// One decoded operation of a batch record, borrowed from the record body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOp<'a> {
    /// Put or delete.
    pub kind: BatchOpKind,
    /// Collection name.
    pub collection: &'a str,
    /// Document key.
    pub key: &'a str,
    /// Version after a put, or the version a delete removed.
    pub version: u64,
    /// JSON bytes of the document (empty for a delete).
    pub value: &'a [u8],
}

/// Bytes of a batch body's leading `u32` operation count.
pub const BATCH_COUNT_BYTES: usize = size_of::<u32>();

/// Bytes one operation takes in a batch body: op byte, collection (u8 length), key (u16
/// length), version, and for a put the value with its u32 length.
pub fn batch_op_encoded_len(collection: &str, key: &str, value: Option<&[u8]>) -> usize {
    let fixed = size_of::<u8>() + size_of::<u8>() + size_of::<u16>() + size_of::<u64>();
    fixed + collection.len() + key.len() + value.map_or(0, |v| size_of::<u32>() + v.len())
}

/// Appends one operation's bytes to a batch body (the caller writes the `u32` count first).
///
/// The caller has checked the collection, key and value against their limits.
pub fn encode_batch_op(out: &mut Vec<u8>, op: &BatchOp<'_>) {
    let kind = match op.kind {
        BatchOpKind::Put => BATCH_OP_PUT,
        BatchOpKind::Delete => BATCH_OP_DELETE,
    };
    out.push(kind);
    out.push(u8::try_from(op.collection.len()).expect("collection name length checked"));
    out.extend_from_slice(op.collection.as_bytes());
    out.extend_from_slice(&u16::try_from(op.key.len()).expect("key length checked").to_le_bytes());
    out.extend_from_slice(op.key.as_bytes());
    out.extend_from_slice(&op.version.to_le_bytes());
    if op.kind == BatchOpKind::Put {
        out.extend_from_slice(
            &u32::try_from(op.value.len()).expect("value length checked").to_le_bytes(),
        );
        out.extend_from_slice(op.value);
    }
}

/// Decodes a batch body. Never panics and never allocates more than the body's size warrants.
pub fn decode_batch(body: &[u8]) -> Result<Vec<BatchOp<'_>>, String> {
    let ops = batch_ops(body)?;
    // Each op needs at least 12 bytes; bound the allocation by the body, not the count field.
    let mut out = Vec::with_capacity(ops.remaining.min(body.len() / 12));
    for op in ops {
        out.push(op?);
    }
    Ok(out)
}

/// Iterates a batch body's operations without collecting them (the replay path). Each item is
/// an operation or the reason the body does not decode; after an error the iterator ends. The
/// check that no bytes trail the last operation is the last item's.
pub fn batch_ops(body: &[u8]) -> Result<BatchOps<'_>, String> {
    let mut reader = BodyReader::new(body);
    let count = reader.u32("op count")? as usize;
    if count > MAX_BATCH_OPS {
        return Err(format!("op count {count} exceeds the limit of {MAX_BATCH_OPS}"));
    }
    Ok(BatchOps { reader, remaining: count, failed: false })
}

/// Iterator returned by [`batch_ops`].
pub struct BatchOps<'a> {
    reader: BodyReader<'a>,
    remaining: usize,
    failed: bool,
}

impl<'a> BatchOps<'a> {
    fn next_op(&mut self) -> Result<BatchOp<'a>, String> {
        let r = &mut self.reader;
        let kind = match r.u8("op")? {
            BATCH_OP_PUT => BatchOpKind::Put,
            BATCH_OP_DELETE => BatchOpKind::Delete,
            other => {
                return Err(format!("unknown op byte {other} at body offset {}", r.offset() - 1))
            }
        };
        let clen = r.u8("collection length")?;
        let collection = r.str(usize::from(clen), "collection")?;
        let key = r.str16("key")?;
        let version = r.u64("version")?;
        let value = match kind {
            BatchOpKind::Put => {
                let vlen = r.u32("value length")?;
                r.bytes(vlen as usize, "value")?
            }
            BatchOpKind::Delete => &[][..],
        };
        if self.remaining == 1 {
            r.at_end()?;
        }
        Ok(BatchOp { kind, collection, key, version, value })
    }
}

impl<'a> Iterator for BatchOps<'a> {
    type Item = Result<BatchOp<'a>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.remaining == 0 {
            // A body of zero ops must still be exactly its count field.
            return match self.reader.at_end() {
                Ok(()) => None,
                Err(e) => {
                    self.failed = true;
                    Some(Err(e))
                }
            };
        }
        let op = self.next_op();
        self.remaining -= 1;
        self.failed = op.is_err();
        Some(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(ops: &[BatchOp<'_>]) -> Vec<u8> {
        let mut out = (ops.len() as u32).to_le_bytes().to_vec();
        for op in ops {
            encode_batch_op(&mut out, op);
        }
        out
    }

    #[test]
    fn encoded_len_matches_the_encoder() {
        for op in [
            BatchOp {
                kind: BatchOpKind::Put,
                collection: "users",
                key: "ada",
                version: 3,
                value: b"{}",
            },
            BatchOp {
                kind: BatchOpKind::Delete,
                collection: "c",
                key: "k",
                version: 9,
                value: b"",
            },
        ] {
            let mut out = Vec::new();
            encode_batch_op(&mut out, &op);
            let value = (op.kind == BatchOpKind::Put).then_some(op.value);
            assert_eq!(out.len(), batch_op_encoded_len(op.collection, op.key, value));
        }
    }

    #[test]
    fn batch_round_trips() {
        let ops = [
            BatchOp {
                kind: BatchOpKind::Put,
                collection: "users",
                key: "ada",
                version: 3,
                value: b"{\"x\":1}",
            },
            BatchOp {
                kind: BatchOpKind::Delete,
                collection: "c",
                key: "k",
                version: 9,
                value: b"",
            },
        ];
        assert_eq!(decode_batch(&body(&ops)).unwrap(), ops);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let ops = [BatchOp {
            kind: BatchOpKind::Put,
            collection: "users",
            key: "ada",
            version: 3,
            value: b"{}",
        }];
        let b = body(&ops);
        for len in 0..b.len() {
            assert!(decode_batch(&b[..len]).is_err());
        }
        let mut long = b.clone();
        long.push(0);
        assert!(decode_batch(&long).is_err());
    }

    #[test]
    fn an_empty_batch_must_be_exactly_its_count() {
        assert_eq!(decode_batch(&0u32.to_le_bytes()).unwrap(), vec![]);
        assert!(decode_batch(&[0, 0, 0, 0, 9]).is_err());
        let mut it = batch_ops(&[0, 0, 0, 0, 9]).unwrap();
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none(), "the iterator ends after an error");
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 64) as usize;
            let bytes: Vec<u8> = (0..len).map(|i| (x >> (i % 8 * 8)) as u8).collect();
            let _ = decode_batch(&bytes);
        }
    }
}
