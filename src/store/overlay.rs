//! Document states that are sequenced (have an LSN) but not yet in the log.
//!
//! Readers see only what is in the log (`Docs`). Writers check their preconditions against the
//! overlay first, so two compare-and-sets on one key can never both pass while the first one is
//! still on its way to disk. Entries leave the overlay when the group that holds them has been
//! written and applied; if that write fails, the store is poisoned and the overlay is dropped.

use std::collections::HashMap;

use crate::state::docs::Doc;

/// `(collection, key)`.
pub(crate) type DocKey = (String, String);

#[derive(Default)]
pub(crate) struct Overlay {
    /// Latest sequenced state per key: `None` = deleted.
    entries: HashMap<DocKey, (u64, Option<Doc>)>,
}

impl Overlay {
    pub fn get(&self, key: &DocKey) -> Option<&Option<Doc>> {
        self.entries.get(key).map(|(_, d)| d)
    }

    pub fn set(&mut self, key: DocKey, lsn: u64, doc: Option<Doc>) {
        self.entries.insert(key, (lsn, doc));
    }

    /// Drops the entries whose newest state is in the log up to `lsn`.
    pub fn retire(&mut self, lsn: u64) {
        if !self.entries.is_empty() {
            self.entries.retain(|_, (l, _)| *l > lsn);
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}
