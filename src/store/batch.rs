//! Batches: several operations with preconditions, committed as one record.

use serde::Serialize;

use super::document::{encode_document, EncodeError};
use super::Durability;

/// A precondition on a document's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cond {
    /// No condition.
    Any,
    /// The document must not exist.
    Absent,
    /// The document must exist at exactly this version.
    Version(u64),
    /// The document must be at this version (`None`: absent); any mismatch is a `Conflict`.
    Expect(Option<u64>),
}

impl Cond {
    pub(crate) fn expected(self) -> Option<u64> {
        match self {
            Cond::Version(v) => Some(v),
            Cond::Expect(e) => e,
            Cond::Any | Cond::Absent => None,
        }
    }
}

#[derive(Debug)]
pub(crate) enum Op {
    Put { collection: String, key: String, json: Result<Vec<u8>, EncodeError>, cond: Cond },
    Delete { collection: String, key: String, cond: Cond },
    Check { collection: String, key: String, cond: Cond },
}

impl Op {
    pub(crate) fn target(&self) -> (&str, &str) {
        match self {
            Op::Put { collection, key, .. }
            | Op::Delete { collection, key, .. }
            | Op::Check { collection, key, .. } => (collection, key),
        }
    }
}

/// Operations on any collections, committed together as one WAL record: either all of them
/// take effect or none does, and every precondition is checked against one state.
///
/// Operations apply in the order they were added, so a later one sees an earlier one's effect
/// (two puts of one key in a batch raise its version by two).
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use walden::{Batch, Store};
/// let store = Store::open(dir.path())?;
/// store.put("accounts", "alice", &100)?;
/// let mut batch = Batch::new();
/// batch
///     .put_if_version("accounts", "alice", &70, 1)
///     .insert("accounts", "bob", &30);
/// let versions = store.commit(batch)?;
/// assert_eq!(versions, vec![Some(2), Some(1)]);
/// # Ok::<(), walden::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct Batch {
    pub(crate) ops: Vec<Op>,
    pub(crate) durability: Option<Durability>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Number of operations in the batch.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch has no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Commits this batch with `durability` instead of the store's default.
    pub fn durability(&mut self, durability: Durability) -> &mut Batch {
        self.durability = Some(durability);
        self
    }

    fn push_put<T: Serialize + ?Sized>(
        &mut self,
        collection: &str,
        key: &str,
        value: &T,
        cond: Cond,
    ) -> &mut Batch {
        self.ops.push(Op::Put {
            collection: collection.to_owned(),
            key: key.to_owned(),
            json: encode_document(value),
            cond,
        });
        self
    }

    /// Stores `value` under `key`, whatever is there.
    pub fn put<T: Serialize + ?Sized>(
        &mut self,
        collection: &str,
        key: &str,
        value: &T,
    ) -> &mut Batch {
        self.push_put(collection, key, value, Cond::Any)
    }

    /// Stores `value` only if `key` is absent (else the batch fails with `AlreadyExists`).
    pub fn insert<T: Serialize + ?Sized>(
        &mut self,
        collection: &str,
        key: &str,
        value: &T,
    ) -> &mut Batch {
        self.push_put(collection, key, value, Cond::Absent)
    }

    /// Stores `value` only if the document is at `expected_version` (else `Conflict`).
    pub fn put_if_version<T: Serialize + ?Sized>(
        &mut self,
        collection: &str,
        key: &str,
        value: &T,
        expected_version: u64,
    ) -> &mut Batch {
        self.push_put(collection, key, value, Cond::Version(expected_version))
    }

    /// Stores `value` only if the document is at `expected` — the version read, or `None` if
    /// nothing was read (then the key must be absent) — else the batch fails with
    /// [`Error::Conflict`](crate::Error::Conflict) in both cases. See [`Store::put_expecting`](crate::Store::put_expecting).
    pub fn put_expecting<T: Serialize + ?Sized>(
        &mut self,
        collection: &str,
        key: &str,
        value: &T,
        expected: Option<u64>,
    ) -> &mut Batch {
        self.push_put(collection, key, value, Cond::Expect(expected))
    }

    /// Deletes the document if it exists.
    pub fn delete(&mut self, collection: &str, key: &str) -> &mut Batch {
        self.ops.push(Op::Delete {
            collection: collection.to_owned(),
            key: key.to_owned(),
            cond: Cond::Any,
        });
        self
    }

    /// Deletes the document only if it is at `expected_version` (else `Conflict`).
    pub fn delete_if_version(
        &mut self,
        collection: &str,
        key: &str,
        expected_version: u64,
    ) -> &mut Batch {
        self.ops.push(Op::Delete {
            collection: collection.to_owned(),
            key: key.to_owned(),
            cond: Cond::Version(expected_version),
        });
        self
    }

    /// Writes nothing but requires the document to be at `expected` (`None`: absent).
    pub fn expect_version(
        &mut self,
        collection: &str,
        key: &str,
        expected: Option<u64>,
    ) -> &mut Batch {
        let cond = expected.map_or(Cond::Absent, Cond::Version);
        self.ops.push(Op::Check { collection: collection.to_owned(), key: key.to_owned(), cond });
        self
    }
}
