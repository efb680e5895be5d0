//! Writing single documents: put, insert, compare-and-set, delete, read-modify-write. Each
//! is a one-operation [`Batch`] through [`Store::commit`].

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::names::check_collection;
use super::overlay::DocKey;
use super::reads::decode_doc;
use super::{Batch, Store};
use crate::error::{Error, Result};

impl Store {
    /// Stores `value` under `key` and returns its new version: the current one + 1, or, for an
    /// absent key, one above every version a deleted document of the collection had (1 in a
    /// collection that never saw a delete).
    pub fn put<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        key: &str,
        value: &T,
    ) -> Result<u64> {
        let mut b = Batch::new();
        b.put(collection, key, value);
        self.commit_one(b)
    }

    /// Stores `value` only if `key` is absent; otherwise [`Error::AlreadyExists`] and nothing is
    /// written. Returns the new version (see [`Store::put`]).
    pub fn insert<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        key: &str,
        value: &T,
    ) -> Result<u64> {
        let mut b = Batch::new();
        b.insert(collection, key, value);
        self.commit_one(b)
    }

    /// Compare-and-set: stores `value` only if the document is at `expected_version`;
    /// otherwise [`Error::Conflict`] with the current version and nothing is written.
    pub fn put_if_version<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        key: &str,
        value: &T,
        expected_version: u64,
    ) -> Result<u64> {
        let mut b = Batch::new();
        b.put_if_version(collection, key, value, expected_version);
        self.commit_one(b)
    }

    /// Saves `value` with the version read: stores it only if the document is at `expected`,
    /// where `None` means "I read nothing" (the key must then be absent). Any mismatch —
    /// created meanwhile, changed, deleted — is the one [`Error::Conflict`], with the
    /// version found in `current`, and nothing is written. Returns the new version.
    ///
    /// This is HTTP's `If-Match` / `If-None-Match: *` in one call. Versions never repeat for a
    /// key (see [`Versioned::version`](crate::Versioned::version)), so a version read before a
    /// delete never matches the document created after it.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use walden::{Error, Store};
    /// let store = Store::open(dir.path())?;
    /// let read = store.get::<String>("notes", "a")?.map(|d| d.version); // None: absent
    /// let v = store.put_expecting("notes", "a", &"first", read)?;
    /// match store.put_expecting("notes", "a", &"again", read) {
    ///     Err(Error::Conflict { current, .. }) => assert_eq!(current, Some(v)),
    ///     other => panic!("expected a conflict, got {other:?}"),
    /// }
    /// assert_eq!(store.put_expecting("notes", "a", &"second", Some(v))?, v + 1);
    /// # Ok::<(), walden::Error>(())
    /// ```
    pub fn put_expecting<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        key: &str,
        value: &T,
        expected: Option<u64>,
    ) -> Result<u64> {
        let mut b = Batch::new();
        b.put_expecting(collection, key, value, expected);
        self.commit_one(b)
    }

    /// Deletes a document; returns the version it had, or `None` if there was none (then
    /// nothing is written). Its key's next version is still above this one.
    pub fn delete(&self, collection: &str, key: &str) -> Result<Option<u64>> {
        let mut b = Batch::new();
        b.delete(collection, key);
        Ok(self.commit(b)?.pop().flatten())
    }

    /// Deletes a document only if it is at `expected_version`; otherwise [`Error::Conflict`].
    pub fn delete_if_version(
        &self,
        collection: &str,
        key: &str,
        expected_version: u64,
    ) -> Result<()> {
        let mut b = Batch::new();
        b.delete_if_version(collection, key, expected_version);
        self.commit(b).map(|_| ())
    }

    fn commit_one(&self, batch: Batch) -> Result<u64> {
        let v = self.commit(batch)?;
        Ok(v.first().copied().flatten().expect("a put yields a version"))
    }

    /// Atomic read-modify-write: `f` gets the current document (or `None`) and returns the new
    /// one (or `None` to delete). Retried on a concurrent change, so `f` may run more than once
    /// and must not have side effects.
    ///
    /// Returns the document's new **version** — not its value — or `None` if the document is
    /// absent afterwards. To see the value written, read it back with [`Store::get`] (or keep
    /// what `f` returned).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = walden::Store::open(dir.path())?;
    /// let version = store.update::<u64, _>("counters", "hits", |n| Some(n.unwrap_or(0) + 10))?;
    /// assert_eq!(version, Some(1)); // the first version of the document...
    /// assert_eq!(store.get::<u64>("counters", "hits")?.unwrap().value, 10); // ...holding 10
    /// # Ok::<(), walden::Error>(())
    /// ```
    pub fn update<T, F>(&self, collection: &str, key: &str, mut f: F) -> Result<Option<u64>>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> Option<T>,
    {
        check_collection(collection)?;
        self.check_key(key)?;
        let dkey: DocKey = (collection.to_owned(), key.to_owned());
        loop {
            let current = {
                let q = self.inner.wal.lock();
                self.latest(&q, &dkey)
            };
            let (cur_version, cur_value) = match &current {
                Some(doc) => {
                    (Some(doc.version), Some(decode_doc::<T>(collection, key, doc)?.value))
                }
                None => (None, None),
            };
            let new = f(cur_value);
            let is_put = new.is_some();
            let mut b = Batch::new();
            match (new, cur_version) {
                (Some(new), cur) => b.put_expecting(collection, key, &new, cur),
                (None, Some(v)) => b.delete_if_version(collection, key, v),
                (None, None) => b.expect_version(collection, key, None),
            };
            match self.commit(b) {
                Ok(versions) => return Ok(if is_put { versions[0] } else { None }),
                Err(Error::Conflict { .. }) | Err(Error::AlreadyExists { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}
