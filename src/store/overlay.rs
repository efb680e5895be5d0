//! Document states that are sequenced (have an LSN) but not yet in the log.
//!
//! Readers see only what is in the log (`Docs`). Writers check their preconditions against the
//! overlay first, so two compare-and-sets on one key can never both pass while the first one is
//! still on its way to disk. Entries leave the overlay when the group that holds them has been
//! written and applied; if that write fails, the store is poisoned and the overlay is dropped.

use std::collections::HashMap;

use crate::state::docs::{raise_floor, Doc, Floors};

/// `(collection, key)`.
pub(crate) type DocKey = (String, String);

#[derive(Default)]
pub(crate) struct Overlay {
    /// Latest sequenced state per key: `None` = deleted.
    entries: HashMap<DocKey, (u64, Option<Doc>)>,
    /// Every collection's version floor, including deletes sequenced but not yet written.
    /// Never retired: writers are the only ones that need floors, and they need all of them.
    floors: Floors,
}

impl Overlay {
    /// Sets the floors recovered at open.
    pub fn set_floors(&mut self, floors: Floors) {
        self.floors = floors;
    }

    /// The version floor of `collection` (0 if none of its documents was ever deleted).
    pub fn floor(&self, collection: &str) -> u64 {
        self.floors.get(collection).copied().unwrap_or(0)
    }

    /// Raises `collection`'s floor to `version` if it is below.
    pub fn raise_floor(&mut self, collection: &str, version: u64) {
        raise_floor(&mut self.floors, collection, version)
    }

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

    /// Drops the sequenced document states (the log is poisoned). Floors stay: one raised by
    /// a write that never reached the log is merely higher than needed.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}
