//! The hook through which the log applies written groups to the documents readers see, and
//! the overlay of document states sequenced but not yet applied.

use std::sync::Arc;

use parking_lot::RwLock;

use super::overlay::Overlay;
use crate::state::docs::{apply_doc, Doc, Docs};
use crate::wal::commit::{CommitHook, LogWriter, PendingRecord, Queue};

/// One document change a record makes, applied once the record is written.
#[derive(Debug)]
pub(crate) struct DocEffect {
    pub collection: String,
    pub key: String,
    /// `None`: deleted.
    pub doc: Option<Doc>,
}

/// The in-memory effects of a queued record.
#[derive(Debug)]
pub(crate) enum Effects {
    /// Nothing for the document map (rate-limit and breaker records).
    None,
    /// Document changes.
    Docs(Vec<DocEffect>),
}

/// The hook the log calls: applies written groups to the documents readers see, and keeps
/// the overlay of document states sequenced but not yet applied.
pub(crate) struct DocHook {
    pub docs: Arc<RwLock<Docs>>,
}

impl CommitHook for DocHook {
    type Payload = Effects;
    type Sequenced = Overlay;

    fn apply(&self, group: &[PendingRecord<Effects>]) {
        apply_group(&self.docs, group)
    }

    fn retire(overlay: &mut Overlay, lsn: u64) {
        overlay.retire(lsn)
    }

    fn clear(overlay: &mut Overlay) {
        overlay.clear()
    }
}

/// The store's log writer.
pub(crate) type DocLog = LogWriter<DocHook>;
/// The store's commit queue.
pub(crate) type DocQueue = Queue<DocHook>;

/// Records applied per hold of the documents' write lock. A group of a thousand records
/// applied under one hold would stall every reader — and every writer, which reads the applied
/// state under the queue mutex to check its preconditions — for the whole apply; readers may
/// see a prefix of a written group, which is a state the log holds (records are applied whole,
/// in LSN order).
const APPLY_RECORDS_PER_LOCK: usize = 64;

/// Applies a written group's effects to the documents readers see.
fn apply_group(docs: &RwLock<Docs>, group: &[PendingRecord<Effects>]) {
    for chunk in group.chunks(APPLY_RECORDS_PER_LOCK) {
        let mut docs = docs.write();
        for r in chunk {
            if let Effects::Docs(effects) = &r.payload {
                for e in effects {
                    let doc = e.doc.clone().map(|mut d| {
                        d.written_unix_ns = r.timestamp_unix_ns;
                        d.lsn = r.lsn;
                        d
                    });
                    apply_doc(&mut docs, &e.collection, &e.key, doc);
                }
            }
        }
    }
}
