//! [`AsyncStore`]: documents, sync and close as futures over a [`Store`].

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;
use walden::{
    Batch, BreakerConfig, Completion, Error, Options, Quota, Result, Store, Submitted, Versioned,
};

use crate::{AsyncBreaker, AsyncLimiter};

/// An async handle on a walden [`Store`]. Cheap to clone; all clones share one store.
///
/// Writes return futures that resolve once the write is acknowledged (durable, with the
/// default [`walden::Durability::Immediate`]). Reads are synchronous: they never wait for I/O.
#[derive(Clone, Debug)]
pub struct AsyncStore {
    store: Store,
}

impl From<Store> for AsyncStore {
    fn from(store: Store) -> AsyncStore {
        AsyncStore { store }
    }
}

/// Runs blocking store work (opening, closing) on tokio's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| match e.try_into_panic() {
        Ok(panic) => std::panic::resume_unwind(panic),
        // The runtime is shutting down.
        Err(_) => Error::Closed,
    })?
}

impl AsyncStore {
    /// Opens (or creates) the store at `path` with default options, on the blocking pool
    /// (recovery reads the whole log).
    pub async fn open(path: impl AsRef<Path>) -> Result<AsyncStore> {
        let path = path.as_ref().to_path_buf();
        Ok(AsyncStore { store: blocking(move || Store::open(path)).await? })
    }

    /// Opens (or creates) the store at `path` with `options`, on the blocking pool.
    pub async fn open_with(path: impl AsRef<Path>, options: Options) -> Result<AsyncStore> {
        let path = path.as_ref().to_path_buf();
        Ok(AsyncStore { store: blocking(move || Store::open_with(path, options)).await? })
    }

    /// The blocking store underneath (for reads, scans, stats, compaction, backups).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs `f` — any writes through this store or its limiters and breakers — now, without
    /// waiting, and returns what it queued as a [`Submitted`]: its [`lsn`](Submitted::lsn) is
    /// known before the first await, and awaiting it yields `f`'s value once the write is
    /// acknowledged. Dropping it cancels nothing (see the crate docs).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> walden::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = walden_tokio::AsyncStore::open(dir.path()).await?;
    /// let pending = store.submit(|s| s.put("jobs", "42", &"queued"))?;
    /// let lsn = pending.lsn().unwrap();
    /// drop(pending); // a cancelled request...
    /// store.durable(lsn).unwrap().await?; // ...can still learn that its write is durable
    /// assert_eq!(store.store().commit_status(lsn), walden::CommitStatus::Durable);
    /// # Ok(())
    /// # }
    /// ```
    pub fn submit<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<Submitted<T>> {
        self.store.submit(|| f(&self.store))
    }

    /// A future that resolves once the record with `lsn` is durable; `None` for an LSN the
    /// store never handed out.
    pub fn durable(&self, lsn: u64) -> Option<Completion> {
        self.store.durable(lsn)
    }

    /// Reads a document (synchronous: reads never wait for I/O).
    pub fn get<T: DeserializeOwned>(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<Option<Versioned<T>>> {
        self.store.get(collection, key)
    }

    /// Stores `value` under `key`; resolves to its new version once acknowledged.
    pub async fn put<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        key: &str,
        value: &T,
    ) -> Result<u64> {
        self.submit(|s| s.put(collection, key, value))?.await
    }

    /// Stores `value` only if `key` is absent (else [`Error::AlreadyExists`], nothing
    /// written); resolves to the version once acknowledged.
    pub async fn insert<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        key: &str,
        value: &T,
    ) -> Result<u64> {
        self.submit(|s| s.insert(collection, key, value))?.await
    }

    /// Compare-and-set: stores `value` only if the document is at `expected_version` (else
    /// [`Error::Conflict`], nothing written).
    pub async fn put_if_version<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        key: &str,
        value: &T,
        expected_version: u64,
    ) -> Result<u64> {
        self.submit(|s| s.put_if_version(collection, key, value, expected_version))?.await
    }

    /// Deletes a document; resolves to the version it had (`None`: there was none, nothing
    /// written).
    pub async fn delete(&self, collection: &str, key: &str) -> Result<Option<u64>> {
        self.submit(|s| s.delete(collection, key))?.await
    }

    /// Atomic read-modify-write (see [`Store::update`]): `f` runs on the calling task, possibly
    /// more than once, and must not have side effects.
    pub async fn update<T, F>(&self, collection: &str, key: &str, f: F) -> Result<Option<u64>>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> Option<T>,
    {
        self.submit(|s| s.update(collection, key, f))?.await
    }

    /// Commits a batch as one record (see [`Store::commit`]).
    pub async fn commit(&self, batch: Batch) -> Result<Vec<Option<u64>>> {
        self.submit(|s| s.commit(batch))?.await
    }

    /// Makes every acknowledged write durable, the `Buffered` ones included.
    pub async fn sync(&self) -> Result<()> {
        self.store.sync_completion().await
    }

    /// Syncs and closes the store (see [`Store::close`]); the final steps (joining the
    /// store's threads, releasing the lock) run on the blocking pool.
    pub async fn close(self) -> Result<()> {
        self.sync().await?;
        let store = self.store;
        blocking(move || store.close()).await
    }

    /// The rate limiter `name` with default `quota` (see [`Store::rate_limiter`]).
    pub async fn rate_limiter(&self, name: &str, quota: Quota) -> Result<AsyncLimiter> {
        let limiter = self.submit(|s| s.rate_limiter(name, quota))?.await?;
        Ok(AsyncLimiter::new(self.store.clone(), limiter))
    }

    /// The circuit breaker `name` with `config` (see [`Store::breaker`]; a breaker recovered
    /// half-open is reopened durably before this resolves).
    pub async fn breaker(&self, name: &str, config: BreakerConfig) -> Result<AsyncBreaker> {
        let breaker = self.submit(|s| s.breaker(name, config))?.await?;
        Ok(AsyncBreaker::new(self.store.clone(), breaker))
    }
}
