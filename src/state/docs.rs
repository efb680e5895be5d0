//! Documents as readers see them: every collection's keys, each with its newest version.

use std::collections::BTreeMap;
use std::sync::Arc;

/// One stored document in memory.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    pub version: u64,
    pub written_unix_ns: u64,
    /// LSN of the record that wrote this version.
    pub lsn: u64,
    pub json: Arc<[u8]>,
}

/// The documents readers see: everything in the log, applied in LSN order.
pub(crate) type Docs = BTreeMap<String, BTreeMap<String, Doc>>;

/// Version floors: per collection, the highest version any deleted document of it ever had.
/// A document created while its key is absent gets `floor + 1`, so a key's versions never
/// repeat, across deletes, restarts and compactions (collections never seen in a delete have
/// no entry: floor 0).
pub(crate) type Floors = BTreeMap<String, u64>;

/// Raises `collection`'s floor to `version` if it is below.
pub(crate) fn raise_floor(floors: &mut Floors, collection: &str, version: u64) {
    match floors.get_mut(collection) {
        Some(f) => *f = (*f).max(version),
        None => {
            floors.insert(collection.to_owned(), version);
        }
    }
}

/// Applies one document change (`None`: deleted).
pub(crate) fn apply_doc(docs: &mut Docs, collection: &str, key: &str, doc: Option<Doc>) {
    match doc {
        Some(doc) => {
            if let Some(c) = docs.get_mut(collection) {
                c.insert(key.to_owned(), doc);
            } else {
                docs.entry(collection.to_owned()).or_default().insert(key.to_owned(), doc);
            }
        }
        None => {
            if let Some(c) = docs.get_mut(collection) {
                c.remove(key);
                if c.is_empty() {
                    docs.remove(collection);
                }
            }
        }
    }
}
