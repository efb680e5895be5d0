//! The commit path: a batch checked, sequenced against the overlay, encoded as one record and
//! handed to the log.

use std::collections::HashMap;
use std::sync::Arc;

use super::batch::{Cond, Op};
use super::document::check_document;
use super::hook::{DocEffect, DocLog, DocQueue, Effects};
use super::names::check_collection;
use super::overlay::DocKey;
use super::{Batch, Store};
use crate::error::{Error, LimitKind, Result};
use crate::format::{
    batch_op_encoded_len, encode_batch_op, BatchOp, BatchOpKind, RecordKind, BATCH_COUNT_BYTES,
};
use crate::limits::{MAX_BATCH_OPS, MAX_RECORD_BODY_BYTES};
use crate::state::docs::Doc;
use crate::wal::commit::Ticket;

impl Store {
    /// Commits a batch as one record: all operations take effect or none does. Returns, per
    /// operation: a put's new version, a delete's removed version (`None` if nothing was
    /// there), an `expect_version`'s current version.
    pub fn commit(&self, batch: Batch) -> Result<Vec<Option<u64>>> {
        self.check_open()?;
        let durability = batch.durability.unwrap_or(self.inner.options.durability);
        check_batch_len(batch.ops.len())?;
        let ops = self.validate(batch.ops)?;
        let body_estimate = check_record_size(body_size(&ops))?;

        let mut q = self.inner.wal.lock();
        DocLog::check_writable(&q)?;
        let now = self.inner.options.clock.now_unix_ns();
        // One pass in batch order: each op sees the effects of the ops before it.
        let mut working: HashMap<DocKey, Option<Doc>> = HashMap::new();
        // Floors this batch raises (a delete then an insert of one key in one batch).
        let mut floors: HashMap<&str, u64> = HashMap::new();
        let mut results = Vec::with_capacity(ops.len());
        let mut effects = Vec::new();
        let mut body = Vec::with_capacity(body_estimate);
        body.extend_from_slice(&0u32.to_le_bytes());
        for op in &ops {
            let (collection, key, _) = op.target();
            let dkey: DocKey = (collection.to_owned(), key.to_owned());
            let current = match working.get(&dkey) {
                Some(s) => s.clone(),
                None => self.latest(&q, &dkey),
            };
            let cur_version = current.as_ref().map(|d| d.version);
            check_precondition(op, cur_version)?;
            let (kind, version, after, value) = match op {
                Prepared::Put { json, .. } => {
                    // A key that is absent starts above every version its collection deleted.
                    let floor = || floors.get(collection).copied();
                    let floor = || floor().unwrap_or_else(|| q.sequenced.floor(collection));
                    let version = cur_version.map_or_else(|| floor() + 1, |v| v + 1);
                    let doc = Doc { version, written_unix_ns: now, lsn: 0, json: json.clone() };
                    (BatchOpKind::Put, version, Some(doc), &json[..])
                }
                Prepared::Delete { .. } => match cur_version {
                    Some(version) => {
                        floors
                            .entry(collection)
                            .and_modify(|f| *f = version.max(*f))
                            .or_insert(version);
                        (BatchOpKind::Delete, version, None, &[][..])
                    }
                    None => {
                        results.push(None);
                        continue;
                    }
                },
                Prepared::Check { .. } => {
                    results.push(cur_version);
                    continue;
                }
            };
            results.push(Some(version));
            encode_batch_op(&mut body, &BatchOp { kind, collection, key, version, value });
            working.insert(dkey.clone(), after.clone());
            effects.push(DocEffect { collection: dkey.0, key: dkey.1, doc: after });
        }
        if effects.is_empty() {
            return Ok(results);
        }
        let ticket = enqueue_batch(&mut q, now, body, effects, working, floors);
        drop(q);
        self.wait_for(ticket, durability)?;
        Ok(results)
    }

    /// Checks names and sizes, serializes and validates documents: all before taking any lock.
    pub(super) fn validate(&self, ops: Vec<Op>) -> Result<Vec<Prepared>> {
        let validators = self.inner.validators.read();
        let max_doc = self.inner.options.max_document_bytes;
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            {
                let (collection, key) = op.target();
                check_collection(collection)?;
                self.check_key(key)?;
            }
            out.push(match op {
                Op::Put { collection, key, json, cond } => {
                    let validator = validators.get(&collection).map(|v| &**v);
                    let json = check_document(&collection, &key, json, max_doc, validator)?;
                    Prepared::Put { collection, key, json: Arc::from(json), cond }
                }
                Op::Delete { collection, key, cond } => Prepared::Delete { collection, key, cond },
                Op::Check { collection, key, cond } => Prepared::Check { collection, key, cond },
            });
        }
        Ok(out)
    }

    /// Queues a record of a kind other than documents (rate-limit, breaker) and returns its
    /// ticket; it is applied to no document. Call it while holding the lock that guards the
    /// in-memory state the record describes, so LSN order is mutation order; then release that
    /// lock and [`Store::wait_for`] the ticket.
    pub(crate) fn append_record(&self, kind: RecordKind, body: Vec<u8>) -> Result<Ticket> {
        self.check_open()?;
        super::pending::append_to(
            &self.inner.wal,
            self.inner.options.clock.now_unix_ns(),
            kind,
            body,
        )
    }
}

/// An operation after checks and serialization.
pub(super) enum Prepared {
    Put { collection: String, key: String, json: Arc<[u8]>, cond: Cond },
    Delete { collection: String, key: String, cond: Cond },
    Check { collection: String, key: String, cond: Cond },
}

impl Prepared {
    fn target(&self) -> (&str, &str, Cond) {
        match self {
            Prepared::Put { collection, key, cond, .. }
            | Prepared::Delete { collection, key, cond }
            | Prepared::Check { collection, key, cond } => (collection, key, *cond),
        }
    }
}

/// Bytes of the batch body that `ops` encode to (checks take none).
fn body_size(ops: &[Prepared]) -> usize {
    BATCH_COUNT_BYTES
        + ops
            .iter()
            .map(|op| match op {
                Prepared::Put { collection, key, json, .. } => {
                    batch_op_encoded_len(collection, key, Some(json))
                }
                Prepared::Delete { collection, key, .. } => {
                    batch_op_encoded_len(collection, key, None)
                }
                Prepared::Check { .. } => 0,
            })
            .sum::<usize>()
}

/// Checks an operation's precondition against the document's current version.
fn check_precondition(op: &Prepared, cur_version: Option<u64>) -> Result<()> {
    let (collection, key, cond) = op.target();
    // `insert` reports what is there; `put_expecting(None)` gives the one conflict shape.
    if let (Cond::Absent, Some(version), Prepared::Put { .. }) = (cond, cur_version, op) {
        return Err(Error::AlreadyExists {
            collection: collection.to_owned(),
            key: key.to_owned(),
            version,
        });
    }
    if cond != Cond::Any && cond.expected() != cur_version {
        return Err(Error::Conflict {
            collection: collection.to_owned(),
            key: key.to_owned(),
            expected: cond.expected(),
            current: cur_version,
        });
    }
    Ok(())
}

/// Enqueues a batch's record under the held queue lock, and records in the overlay the document
/// states and floors it sequenced.
fn enqueue_batch(
    q: &mut DocQueue,
    now: u64,
    mut body: Vec<u8>,
    effects: Vec<DocEffect>,
    working: HashMap<DocKey, Option<Doc>>,
    floors: HashMap<&str, u64>,
) -> Ticket {
    let count = u32::try_from(effects.len()).expect("bounded by MAX_BATCH_OPS");
    body[..4].copy_from_slice(&count.to_le_bytes());
    let ticket = DocLog::enqueue(q, now, RecordKind::Batch, body, Effects::Docs(effects));
    for (k, state) in working {
        q.sequenced.set(k, ticket.lsn, state);
    }
    for (collection, floor) in floors {
        q.sequenced.raise_floor(collection, floor);
    }
    ticket
}

/// A record body is at most [`MAX_RECORD_BODY_BYTES`]; returns `body_bytes`.
fn check_record_size(body_bytes: usize) -> Result<usize> {
    if body_bytes > MAX_RECORD_BODY_BYTES {
        return Err(Error::TooLarge {
            what: LimitKind::Record,
            size: body_bytes,
            limit: MAX_RECORD_BODY_BYTES,
        });
    }
    Ok(body_bytes)
}

/// A batch holds at most [`MAX_BATCH_OPS`] operations.
fn check_batch_len(ops: usize) -> Result<()> {
    if ops > MAX_BATCH_OPS {
        return Err(Error::TooLarge { what: LimitKind::BatchOps, size: ops, limit: MAX_BATCH_OPS });
    }
    Ok(())
}
