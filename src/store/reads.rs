//! Reading documents: point reads, scans, and the versioned values they return.

use std::ops::Bound;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;

use super::hook::DocQueue;
use super::names::check_collection;
use super::overlay::DocKey;
use super::Store;
use crate::error::{Error, Result};
use crate::state::docs::Doc;

/// A document with its version and the time it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The document.
    pub value: T,
    /// Its version: +1 for each write of the document. Versions never repeat for a key: a
    /// document created while its key is absent starts one above every version any deleted
    /// document of its collection had (the collection's durable *version floor*; 1 in a
    /// collection that never saw a delete), across restarts and compactions. So a version
    /// read before a delete never matches the document created after it (no ABA for
    /// compare-and-set or an HTTP `If-Match`). Versions are per key, not store-wide.
    pub version: u64,
    /// Commit time of the write, nanoseconds since the Unix epoch.
    pub written_unix_ns: u64,
}

impl<T> Versioned<T> {
    /// Commit time of the write as a `SystemTime`.
    pub fn written_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.written_unix_ns)
    }
}

impl Store {
    /// Reads a document: its value, version and write time, or `None` if absent.
    pub fn get<T: DeserializeOwned>(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<Option<Versioned<T>>> {
        check_collection(collection)?;
        self.check_key(key)?;
        self.applied(collection, key).map(|d| decode_doc(collection, key, &d)).transpose()
    }

    /// The state of a key in the log (what readers see).
    pub(crate) fn applied(&self, collection: &str, key: &str) -> Option<Doc> {
        self.inner.docs.read().get(collection).and_then(|c| c.get(key)).cloned()
    }

    /// The newest sequenced state of a document, queued writes included (what `update`
    /// compares against): for read-modify-write loops that retry after a conflict.
    pub(crate) fn latest_versioned<T: DeserializeOwned>(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<Option<Versioned<T>>> {
        let dkey: DocKey = (collection.to_owned(), key.to_owned());
        let current = {
            let q = self.inner.wal.lock();
            self.latest(&q, &dkey)
        };
        current.map(|d| decode_doc(collection, key, &d)).transpose()
    }

    /// The newest sequenced state of a key: the overlay, else the applied documents.
    pub(crate) fn latest(&self, q: &DocQueue, key: &DocKey) -> Option<Doc> {
        match q.sequenced.get(key) {
            Some(state) => state.clone(),
            None => self.applied(&key.0, &key.1),
        }
    }

    /// Documents of `collection` in key order, as of one instant: writes that commit while
    /// the caller iterates are not seen. Each item is decoded as the iterator reaches it, so
    /// a document that does not decode as `T` is an `Err` item, not a failed scan.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use std::ops::Bound;
    /// use walden::Store;
    /// let store = Store::open(dir.path())?;
    /// for (day, n) in [("2026-01-01", 3), ("2026-01-02", 5), ("2026-02-01", 7)] {
    ///     store.put("visits", day, &n)?;
    /// }
    /// let mut total = 0;
    /// for item in store.scan::<u32>("visits")? {
    ///     let (_key, doc) = item?;
    ///     total += doc.value;
    /// }
    /// assert_eq!(total, 15);
    /// let january: Vec<String> = store
    ///     .scan_prefix::<u32>("visits", "2026-01-")?
    ///     .map(|item| item.map(|(key, _)| key))
    ///     .collect::<walden::Result<_>>()?;
    /// assert_eq!(january, ["2026-01-01", "2026-01-02"]);
    /// let from_jan_2 = store.scan_range::<u32>("visits", Bound::Included("2026-01-02"), Bound::Unbounded)?;
    /// assert_eq!(from_jan_2.count(), 2);
    /// # Ok::<(), walden::Error>(())
    /// ```
    pub fn scan<T: DeserializeOwned>(&self, collection: &str) -> Result<Scan<T>> {
        self.scan_range(collection, Bound::Unbounded, Bound::Unbounded)
    }

    /// Documents of `collection` whose keys start with `prefix`, in key order, as of one instant.
    pub fn scan_prefix<T: DeserializeOwned>(
        &self,
        collection: &str,
        prefix: &str,
    ) -> Result<Scan<T>> {
        self.check_open()?;
        check_collection(collection)?;
        let docs = self.inner.docs.read();
        let items = docs.get(collection).map_or_else(Vec::new, |c| {
            c.range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, d)| (k.clone(), d.clone()))
                .collect()
        });
        Ok(Scan {
            collection: collection.to_owned(),
            items: items.into_iter(),
            _t: std::marker::PhantomData,
        })
    }

    /// Documents of `collection` with keys in `(start, end)`, in key order, as of one instant.
    pub fn scan_range<T: DeserializeOwned>(
        &self,
        collection: &str,
        start: Bound<&str>,
        end: Bound<&str>,
    ) -> Result<Scan<T>> {
        self.check_open()?;
        check_collection(collection)?;
        let docs = self.inner.docs.read();
        let items = docs.get(collection).map_or_else(Vec::new, |c| {
            c.range::<str, _>((start, end)).map(|(k, d)| (k.clone(), d.clone())).collect()
        });
        Ok(Scan {
            collection: collection.to_owned(),
            items: items.into_iter(),
            _t: std::marker::PhantomData,
        })
    }

    /// Names of the collections that hold documents, sorted.
    pub fn collections(&self) -> Result<Vec<String>> {
        self.check_open()?;
        Ok(self.inner.docs.read().keys().cloned().collect())
    }

    /// Number of documents in `collection` (0 if it holds none). The name is checked like
    /// every other path's: an invalid one is [`Error::InvalidName`], never a count of 0.
    pub fn count(&self, collection: &str) -> Result<usize> {
        self.check_open()?;
        check_collection(collection)?;
        Ok(self.inner.docs.read().get(collection).map_or(0, |c| c.len()))
    }
}

pub(crate) fn decode_doc<T: DeserializeOwned>(
    collection: &str,
    key: &str,
    doc: &Doc,
) -> Result<Versioned<T>> {
    let value = serde_json::from_slice(&doc.json).map_err(|source| Error::Json {
        collection: collection.to_owned(),
        key: key.to_owned(),
        source,
    })?;
    Ok(Versioned { value, version: doc.version, written_unix_ns: doc.written_unix_ns })
}

/// A point-in-time iterator over documents, yielding `(key, document)` in key order.
pub struct Scan<T> {
    collection: String,
    items: std::vec::IntoIter<(String, Doc)>,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T> Scan<T> {
    /// A scan over documents collected under one read lock (for followers).
    pub(crate) fn from_items(collection: &str, items: Vec<(String, Doc)>) -> Scan<T> {
        Scan {
            collection: collection.to_owned(),
            items: items.into_iter(),
            _t: std::marker::PhantomData,
        }
    }
}

impl<T: DeserializeOwned> Iterator for Scan<T> {
    type Item = Result<(String, Versioned<T>)>;
    fn next(&mut self) -> Option<Self::Item> {
        let (k, d) = self.items.next()?;
        Some(decode_doc(&self.collection, &k, &d).map(|v| (k, v)))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.items.size_hint()
    }
}
