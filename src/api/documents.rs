//! Documents behind a trait: [`Documents`] (object-safe, JSON text) and [`DocumentsExt`]
//! (typed, for every implementation).

use std::io::{Read, Write};
use std::ops::Bound;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::{Batch, ImportMode, ImportReport, Validator, Versioned};

/// A document as JSON text with its version and write time.
pub type RawDoc = Versioned<Box<RawValue>>;

/// Which keys a scan visits: those that start with `prefix` and lie between `start` and
/// `end`, in key (byte) order.
///
/// ```
/// use walden::api::KeyRange;
/// let r = KeyRange::prefix("user:");
/// assert!(r.contains("user:ada") && !r.contains("team:x"));
/// let next_page = r.after("user:ada");
/// assert!(!next_page.contains("user:ada") && next_page.contains("user:bob"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// Keys must start with this (empty: any key).
    pub prefix: String,
    /// Lower bound.
    pub start: Bound<String>,
    /// Upper bound.
    pub end: Bound<String>,
}

impl Default for KeyRange {
    fn default() -> KeyRange {
        KeyRange::all()
    }
}

impl KeyRange {
    /// Every key.
    pub fn all() -> KeyRange {
        KeyRange { prefix: String::new(), start: Bound::Unbounded, end: Bound::Unbounded }
    }

    /// Keys that start with `prefix`.
    pub fn prefix(prefix: impl Into<String>) -> KeyRange {
        KeyRange { prefix: prefix.into(), ..KeyRange::all() }
    }

    /// Keys between `start` and `end`.
    pub fn between(start: Bound<String>, end: Bound<String>) -> KeyRange {
        KeyRange { prefix: String::new(), start, end }
    }

    /// The same range restricted to keys after `key`: the next page of a scan that returned
    /// `key` last.
    pub fn after(&self, key: &str) -> KeyRange {
        KeyRange { start: Bound::Excluded(key.to_owned()), ..self.clone() }
    }

    /// Whether `key` is in the range.
    pub fn contains(&self, key: &str) -> bool {
        let above = match &self.start {
            Bound::Included(s) => key >= s.as_str(),
            Bound::Excluded(s) => key > s.as_str(),
            Bound::Unbounded => true,
        };
        let below = match &self.end {
            Bound::Included(e) => key <= e.as_str(),
            Bound::Excluded(e) => key < e.as_str(),
            Bound::Unbounded => true,
        };
        above && below && key.starts_with(&self.prefix)
    }

    /// The lower bound that also accounts for the prefix (the larger of the two).
    pub fn effective_start(&self) -> Bound<&str> {
        let bound = match &self.start {
            Bound::Included(s) => Bound::Included(s.as_str()),
            Bound::Excluded(s) => Bound::Excluded(s.as_str()),
            Bound::Unbounded => Bound::Unbounded,
        };
        let prefix_is_higher = match bound {
            Bound::Unbounded => true,
            Bound::Included(s) | Bound::Excluded(s) => self.prefix.as_str() > s,
        };
        if !self.prefix.is_empty() && prefix_is_higher {
            Bound::Included(self.prefix.as_str())
        } else {
            bound
        }
    }
}

/// Documents with exact versions, as JSON text: what every backend implements.
///
/// Object-safe, so an application can hold an `Arc<dyn Documents>` (or `Arc<dyn Backend>`)
/// and choose the backend by configuration. Use [`DocumentsExt`] for typed values.
///
/// Versions follow one rule on every backend: a document written where its key is absent gets
/// a version above every version that key had before, and each later write adds 1; a version
/// is never reused for a key, so an expected version never matches a different document.
pub trait Documents: Send + Sync {
    /// The document under `key`: its JSON text, version and write time, or `None`.
    fn get_raw(&self, collection: &str, key: &str) -> Result<Option<RawDoc>>;

    /// Commits a batch all-or-nothing: every precondition is checked against one state, and
    /// either every operation takes effect or none does. Returns, per operation: a put's new
    /// version, a delete's removed version (`None` if nothing was there), an
    /// `expect_version`'s current version.
    fn commit(&self, batch: Batch) -> Result<Vec<Option<u64>>>;

    /// Documents of `collection` in `range`, in key order, at most `limit` of them (`None`:
    /// all). Page with [`KeyRange::after`] and the last key returned.
    fn scan_raw(
        &self,
        collection: &str,
        range: &KeyRange,
        limit: Option<usize>,
    ) -> Result<Vec<(String, RawDoc)>>;

    /// Number of documents in `collection`.
    fn count(&self, collection: &str) -> Result<u64>;

    /// Names of the collections that hold documents, sorted.
    fn collections(&self) -> Result<Vec<String>>;

    /// Installs a validator for `collection` (in this process, for this handle): every
    /// document written to it is checked first, and an `Err(message)` refuses the write with
    /// [`Error::Invalid`].
    fn set_validator(&self, collection: &str, validator: Validator) -> Result<()>;

    /// Removes the validator of `collection`, if any.
    fn clear_validator(&self, collection: &str) -> Result<()>;

    /// Writes `collection` as one JSON object, key → document, in key order. Returns the number
    /// of documents written.
    fn export_json(&self, collection: &str, out: &mut dyn Write) -> Result<u64>;

    /// Imports a JSON object of key → document into `collection` (each a `put`). Invalid input
    /// writes nothing and says where.
    fn import_json(
        &self,
        collection: &str,
        input: &mut dyn Read,
        mode: ImportMode,
    ) -> Result<ImportReport>;

    /// One step of an optimistic read-modify-write on `collection`/`key`: commits `batch`
    /// (operations on that document only) or, if a concurrent change broke its precondition
    /// (`Conflict`, `AlreadyExists`), returns the document as it is now, so the caller can
    /// retry without another read. A backend may answer both from one round trip.
    fn commit_or_read(&self, batch: Batch, collection: &str, key: &str) -> Result<CasStep> {
        match self.commit(batch) {
            Ok(versions) => Ok(CasStep::Committed(versions)),
            Err(Error::Conflict { .. }) | Err(Error::AlreadyExists { .. }) => {
                Ok(CasStep::Changed(self.get_raw(collection, key)?))
            }
            Err(e) => Err(e),
        }
    }

    /// An optimistic read-modify-write of `collection`/`key`: `attempt` gets the document as
    /// it is now (version and JSON, or `None`) and returns the batch to commit (writes of that
    /// document only, conditioned on the version it saw); on a concurrent change it runs again
    /// with the changed document, until a batch commits. Returns that batch's results.
    /// [`DocumentsExt::update`] is built on it.
    ///
    /// A backend may do better than read-then-commit. The Redis backend queues the threads of
    /// one process that update the same document: each runs `attempt` on the document as the
    /// writes queued before it leave it, and the queue commits in one script, every write
    /// still checked against its version and given its own. `attempt` therefore runs while
    /// other threads wait for the same document: it must not wait for them.
    fn update_raw(
        &self,
        collection: &str,
        key: &str,
        attempt: &mut Attempt<'_>,
    ) -> Result<Vec<Option<u64>>> {
        let mut current = self.get_raw(collection, key)?;
        loop {
            let batch = attempt(current.as_ref().map(|d| (d.version, &*d.value)))?;
            match self.commit_or_read(batch, collection, key)? {
                CasStep::Committed(versions) => return Ok(versions),
                CasStep::Changed(now) => current = now,
            }
        }
    }

    /// Stores JSON text under `key`; returns the new version.
    fn put_raw(&self, collection: &str, key: &str, json: &RawValue) -> Result<u64> {
        let mut b = Batch::new();
        b.put(collection, key, json);
        first_version(self.commit(b)?)
    }

    /// Deletes a document; returns the version it had, or `None` if there was none.
    fn delete(&self, collection: &str, key: &str) -> Result<Option<u64>> {
        let mut b = Batch::new();
        b.delete(collection, key);
        Ok(self.commit(b)?.pop().flatten())
    }

    /// Deletes a document only if it is at `expected_version`; otherwise [`Error::Conflict`].
    fn delete_if_version(&self, collection: &str, key: &str, expected_version: u64) -> Result<()> {
        let mut b = Batch::new();
        b.delete_if_version(collection, key, expected_version);
        self.commit(b).map(|_| ())
    }
}

/// One attempt of [`Documents::update_raw`]: gets the document as it is now (version and JSON,
/// or `None`) and returns the batch to commit.
pub type Attempt<'a> = dyn FnMut(Option<(u64, &RawValue)>) -> Result<Batch> + 'a;

/// The outcome of [`Documents::commit_or_read`].
#[derive(Debug)]
pub enum CasStep {
    /// The batch committed: its per-operation results, as [`Documents::commit`] returns them.
    Committed(Vec<Option<u64>>),
    /// A concurrent change broke a precondition; nothing was written. The document now.
    Changed(Option<RawDoc>),
}

fn first_version(versions: Vec<Option<u64>>) -> Result<u64> {
    versions.first().copied().flatten().ok_or_else(|| Error::Backend {
        backend: "walden",
        message: "a put returned no version".to_owned(),
    })
}

fn decode_json<T: DeserializeOwned>(collection: &str, key: &str, json: &RawValue) -> Result<T> {
    serde_json::from_str(json.get()).map_err(|source| Error::Json {
        collection: collection.to_owned(),
        key: key.to_owned(),
        source,
    })
}

fn decode<T: DeserializeOwned>(collection: &str, key: &str, doc: RawDoc) -> Result<Versioned<T>> {
    let value = decode_json(collection, key, &doc.value)?;
    Ok(Versioned { value, version: doc.version, written_unix_ns: doc.written_unix_ns })
}

/// Typed documents on every [`Documents`] implementation, `dyn Documents` included.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use walden::api::{Documents, DocumentsExt};
/// let docs: Box<dyn Documents> = Box::new(walden::Store::open(dir.path())?);
/// docs.put("counters", "hits", &1u64)?;
/// docs.update::<u64, _>("counters", "hits", |n| Some(n.unwrap_or(0) + 1))?;
/// assert_eq!(docs.get::<u64>("counters", "hits")?.unwrap().value, 2);
/// # Ok::<(), walden::Error>(())
/// ```
pub trait DocumentsExt: Documents {
    /// Reads a document as `T`, or `None` if absent.
    fn get<T: DeserializeOwned>(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<Option<Versioned<T>>> {
        self.get_raw(collection, key)?.map(|d| decode(collection, key, d)).transpose()
    }

    /// Stores `value` under `key`; returns its new version.
    fn put<T: Serialize + ?Sized>(&self, collection: &str, key: &str, value: &T) -> Result<u64> {
        let mut b = Batch::new();
        b.put(collection, key, value);
        first_version(self.commit(b)?)
    }

    /// Stores `value` only if `key` is absent; otherwise [`Error::AlreadyExists`].
    fn insert<T: Serialize + ?Sized>(&self, collection: &str, key: &str, value: &T) -> Result<u64> {
        let mut b = Batch::new();
        b.insert(collection, key, value);
        first_version(self.commit(b)?)
    }

    /// Compare-and-set: stores `value` only if the document is at `expected_version`;
    /// otherwise [`Error::Conflict`] with the current version.
    fn put_if_version<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        key: &str,
        value: &T,
        expected_version: u64,
    ) -> Result<u64> {
        let mut b = Batch::new();
        b.put_if_version(collection, key, value, expected_version);
        first_version(self.commit(b)?)
    }

    /// Atomic read-modify-write: `f` gets the current document (or `None`) and returns the new
    /// one (or `None` to delete); retried on a concurrent change, so `f` may run more than
    /// once. Returns the new version, or `None` if the document is absent afterwards.
    fn update<T, F>(&self, collection: &str, key: &str, mut f: F) -> Result<Option<u64>>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> Option<T>,
    {
        let mut is_put = false;
        let versions = self.update_raw(collection, key, &mut |current| {
            let (version, value) = match current {
                Some((v, json)) => (Some(v), Some(decode_json::<T>(collection, key, json)?)),
                None => (None, None),
            };
            let new = f(value);
            is_put = new.is_some();
            let mut b = Batch::new();
            match (new, version) {
                (Some(new), Some(v)) => b.put_if_version(collection, key, &new, v),
                (Some(new), None) => b.insert(collection, key, &new),
                (None, Some(v)) => b.delete_if_version(collection, key, v),
                (None, None) => b.expect_version(collection, key, None),
            };
            Ok(b)
        })?;
        Ok(if is_put { versions.first().copied().flatten() } else { None })
    }

    /// Documents of `collection` in `range` as `T`, in key order.
    fn scan<T: DeserializeOwned>(
        &self,
        collection: &str,
        range: &KeyRange,
    ) -> Result<Vec<(String, Versioned<T>)>> {
        self.scan_raw(collection, range, None)?
            .into_iter()
            .map(|(k, d)| decode(collection, &k, d).map(|v| (k, v)))
            .collect()
    }
}

impl<D: Documents + ?Sized> DocumentsExt for D {}

/// Documents copied per batch by [`copy_collection`].
pub const COPY_BATCH_DOCUMENTS: usize = 1_000;

/// Copies every document of `collection` from one backend to another (a local store into Redis
/// or back: the migration path), in batches of [`COPY_BATCH_DOCUMENTS`]. Each document is a
/// `put` on the destination, so it gets the destination's next version. The source is read
/// page by page: copy from a source nobody writes to. Returns the number of documents copied.
pub fn copy_collection(from: &dyn Documents, to: &dyn Documents, collection: &str) -> Result<u64> {
    let mut range = KeyRange::all();
    let mut copied = 0;
    loop {
        let page = from.scan_raw(collection, &range, Some(COPY_BATCH_DOCUMENTS))?;
        let Some((last, _)) = page.last() else { return Ok(copied) };
        range = range.after(last);
        let mut b = Batch::new();
        for (key, doc) in &page {
            b.put(collection, key, &doc.value);
        }
        to.commit(b)?;
        copied += page.len() as u64;
    }
}

/// Copies every collection from one backend to another with [`copy_collection`]: the whole
/// migration from a local store to Redis, or back. Returns the number of documents copied.
pub fn copy_all(from: &dyn Documents, to: &dyn Documents) -> Result<u64> {
    let mut copied = 0;
    for collection in from.collections()? {
        copied += copy_collection(from, to, &collection)?;
    }
    Ok(copied)
}
