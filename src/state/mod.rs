//! The replayed in-memory state: documents, rate-limit and breaker state, and the record that
//! built them.
//!
//! One [`State::apply_frame`] is shared by recovery (snapshot + log at open) and compaction
//! (previous snapshot + sealed segments, folded into the next snapshot). A new record kind
//! gets its piece of state here (a file beside [`ratelimit`] and [`breaker`]), its arm in
//! `apply_frame` and its entries in [`State::snapshot_entries`].

pub(crate) mod breaker;
pub(crate) mod docs;
pub(crate) mod ratelimit;

use std::sync::Arc;

use crate::error::{CorruptionKind, Result};
use crate::format::floor::VersionFloorRecord;
use crate::format::{
    batch_ops, encode_batch_op, BatchOp, BatchOpKind, Frame, RecordKind, SnapshotHeader,
};
use crate::snapshot::{read_snapshot, EntrySink, SnapshotError, SnapshotRecord, SnapshotSource};
use breaker::BreakerState;
use docs::{apply_doc, raise_floor, Doc, Docs, Floors};
use ratelimit::RateLimitState;

/// Everything the log describes, as of `applied_lsn`.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub docs: Docs,
    pub ratelimits: RateLimitState,
    pub breakers: BreakerState,
    /// Version floors, from deletes in the log and `VersionFloor` entries of a snapshot.
    pub floors: Floors,
    /// LSN of the last record applied (0: none).
    pub applied_lsn: u64,
    /// Timestamp of the last record applied.
    pub last_timestamp_unix_ns: u64,
}

impl State {
    /// Applies one verified record (from the log, or an entry of a snapshot).
    pub fn apply_frame(&mut self, f: &Frame<'_>) -> Result<(), CorruptionKind> {
        match RecordKind::from_u8(f.kind) {
            Some(RecordKind::Batch) => {
                for op in batch_ops(f.body).map_err(CorruptionKind::BadBody)? {
                    let op = op.map_err(CorruptionKind::BadBody)?;
                    let doc = match op.kind {
                        BatchOpKind::Put => Some(Doc {
                            version: op.version,
                            written_unix_ns: f.timestamp_unix_ns,
                            lsn: f.lsn,
                            json: Arc::from(op.value),
                        }),
                        BatchOpKind::Delete => {
                            raise_floor(&mut self.floors, op.collection, op.version);
                            None
                        }
                    };
                    apply_doc(&mut self.docs, op.collection, op.key, doc);
                }
            }
            Some(RecordKind::RateLimit) => self
                .ratelimits
                .replay(f.lsn, f.timestamp_unix_ns, f.body)
                .map_err(CorruptionKind::BadBody)?,
            Some(RecordKind::Breaker) => self
                .breakers
                .replay(f.lsn, f.timestamp_unix_ns, f.body)
                .map_err(CorruptionKind::BadBody)?,
            Some(RecordKind::VersionFloor) => {
                let r = VersionFloorRecord::decode(f.body).map_err(CorruptionKind::BadBody)?;
                raise_floor(&mut self.floors, r.collection, r.floor);
            }
            // The reader never hands one over; it changes no state and consumes no LSN.
            Some(RecordKind::Close) => return Ok(()),
            None => return Err(CorruptionKind::UnknownRecordKind(f.kind)),
        }
        self.applied_lsn = self.applied_lsn.max(f.lsn);
        self.last_timestamp_unix_ns = self.last_timestamp_unix_ns.max(f.timestamp_unix_ns);
        Ok(())
    }
}

impl State {
    /// Loads a snapshot file's bytes (verified throughout by [`read_snapshot`]). Documents are
    /// collected per collection and each map is built once from the file's sorted order, which
    /// costs a fraction of inserting them one by one.
    pub fn from_snapshot(
        bytes: &[u8],
        store_id: [u8; 16],
    ) -> Result<(State, SnapshotHeader), SnapshotError> {
        let mut state = State::default();
        let mut collections: Vec<(String, Vec<(String, Doc)>)> = Vec::new();
        let header = read_snapshot(bytes, Some(store_id), &mut |e| {
            let f = &e.frame;
            if RecordKind::from_u8(f.kind) != Some(RecordKind::Batch) {
                return state.apply_frame(f);
            }
            let mut ops = batch_ops(f.body).map_err(CorruptionKind::BadBody)?;
            let op = match (ops.next(), ops.next()) {
                (Some(Ok(op)), None) if op.kind == BatchOpKind::Put => op,
                (Some(Err(e)), _) => return Err(CorruptionKind::BadBody(e)),
                _ => {
                    return Err(CorruptionKind::BadBody(
                        "a snapshot document entry must be exactly one put".into(),
                    ))
                }
            };
            let doc = Doc {
                version: op.version,
                written_unix_ns: f.timestamp_unix_ns,
                lsn: f.lsn,
                json: Arc::from(op.value),
            };
            match collections.last_mut() {
                Some((c, docs)) if c == op.collection => docs.push((op.key.to_owned(), doc)),
                _ => collections.push((op.collection.to_owned(), vec![(op.key.to_owned(), doc)])),
            }
            state.last_timestamp_unix_ns = state.last_timestamp_unix_ns.max(f.timestamp_unix_ns);
            Ok(())
        })?;
        for (collection, docs) in collections {
            // `from_iter` sorts (linear on sorted input) and builds the tree in bulk.
            let built: std::collections::BTreeMap<String, Doc> = docs.into_iter().collect();
            state.docs.entry(collection).or_default().extend(built);
        }
        state.applied_lsn = header.lsn;
        Ok((state, header))
    }
}

impl State {
    /// What a snapshot of this state at `now_unix_ns` holds: every document as a one-put
    /// batch, then the rate-limit and breaker records that recreate their state, then one
    /// version floor per collection that has one (the deletes that raised it leave the log).
    pub fn snapshot_source(&self, now_unix_ns: u64) -> StateSnapshot<'_> {
        let limits = self.ratelimits.snapshot_records(now_unix_ns).into_iter();
        let breakers = self.breakers.snapshot_records(now_unix_ns).into_iter();
        let floors = self.floors.iter().map(|(collection, &floor)| SnapshotRecord {
            lsn: self.applied_lsn,
            timestamp_unix_ns: self.last_timestamp_unix_ns,
            body: VersionFloorRecord { collection, floor }.encode(),
        });
        let extra = limits
            .map(|r| (RecordKind::RateLimit, r))
            .chain(breakers.map(|r| (RecordKind::Breaker, r)))
            .chain(floors.map(|r| (RecordKind::VersionFloor, r)))
            .collect();
        StateSnapshot { state: self, extra }
    }
}

/// A [`State`] as the entries of one snapshot (see [`State::snapshot_source`]).
pub(crate) struct StateSnapshot<'a> {
    state: &'a State,
    extra: Vec<(RecordKind, SnapshotRecord)>,
}

impl SnapshotSource for StateSnapshot<'_> {
    fn entry_count(&self) -> u64 {
        let docs: usize = self.state.docs.values().map(|c| c.len()).sum();
        (docs + self.extra.len()) as u64
    }

    fn for_each_entry(&self, sink: &mut EntrySink<'_>) -> Result<()> {
        let mut body = Vec::new();
        for (collection, docs) in &self.state.docs {
            for (key, doc) in docs {
                body.clear();
                body.extend_from_slice(&1u32.to_le_bytes());
                let op = BatchOp {
                    kind: BatchOpKind::Put,
                    collection,
                    key,
                    version: doc.version,
                    value: &doc.json,
                };
                encode_batch_op(&mut body, &op);
                sink(RecordKind::Batch, doc.lsn, doc.written_unix_ns, &body)?;
            }
        }
        for (kind, r) in &self.extra {
            sink(*kind, r.lsn, r.timestamp_unix_ns, &r.body)?;
        }
        Ok(())
    }
}
