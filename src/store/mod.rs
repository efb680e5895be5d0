//! The store: documents, versions, batches, scans and the write path, in one folder split by
//! concept: [`options`] (how a store is opened), [`names`] (what names are valid), [`open`]
//! (lock, identity, recovery), [`commit`] (the commit path and the hook the log calls),
//! [`document`] (a value's JSON; NaN and infinities refused),
//! [`write`] and [`reads`] (the document API), [`overlay`] (sequenced, not yet applied),
//! [`compact`], [`backup`], [`json`] and [`stats`].

mod backup;
pub(crate) mod batch;
mod commit;
pub(crate) mod compact;
pub(crate) mod document;
pub(crate) mod hook;
pub(crate) mod import;
mod json;
pub(crate) mod names;
mod open;
mod options;
pub(crate) mod overlay;
mod reads;
mod recovery;
mod stats;
mod submit;
mod write;

pub use crate::wal::{Completion, Durability};
pub use backup::{BackupReport, Retention, BACKUP_DIR_PREFIX};
pub use batch::Batch;
pub use compact::CompactionReport;
pub use json::{ImportMode, ImportReport};
pub use options::{Options, Validator};
pub(crate) use reads::decode_doc;
pub use reads::{Scan, Versioned};
pub use recovery::RecoveryStats;
pub use stats::Stats;
pub use submit::{CommitStatus, Submitted};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::error::{Error, Result};
use crate::io::StoreLock;
use crate::state::breaker::BreakerState;
use crate::state::docs::Docs;
use crate::state::ratelimit::RateLimitState;
use compact::Compactor;
use hook::DocLog;
use names::check_collection;

pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) options: Options,
    pub(crate) docs: Arc<RwLock<Docs>>,
    pub(crate) wal: Arc<DocLog>,
    pub(crate) compactor: Arc<Compactor>,
    validators: RwLock<HashMap<String, Validator>>,
    pub(crate) recovery: RecoveryStats,
    pub(crate) ratelimits: Mutex<RateLimitState>,
    pub(crate) breakers: Mutex<BreakerState>,
    /// The flusher and compactor threads.
    threads: Mutex<Vec<JoinHandle<()>>>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    lock: StoreLock,
    /// Set by [`Store::close`]: every operation through any clone then fails with
    /// [`Error::Closed`] (another opener may already be writing the directory).
    closed: AtomicBool,
}

/// An open walden store. Cheap to clone; all clones share one store. `Send + Sync`.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use walden::Store;
/// let store = Store::open(dir.path())?;
/// let v1 = store.put("users", "ada", &serde_json::json!({"name": "Ada"}))?;
/// assert_eq!(v1, 1);
/// let got = store.get::<serde_json::Value>("users", "ada")?.unwrap();
/// assert_eq!((got.value["name"].as_str(), got.version), (Some("Ada"), 1));
/// # Ok::<(), walden::Error>(())
/// ```
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.inner.dir).finish_non_exhaustive()
    }
}

impl Store {
    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// Fails with [`Error::Closed`] once [`Store::close`] was called on any clone.
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Checks a key (1 to `max_key_bytes` bytes). Every keyed operation (documents, rate
    /// limiters) comes through here, so this is also where a closed store is refused.
    pub(crate) fn check_key(&self, key: &str) -> Result<()> {
        self.check_open()?;
        names::check_key(key, self.inner.options.max_key_bytes)
    }

    /// Installs a validator for `collection`: every document written to it is passed to
    /// `validator` as JSON first, and an `Err(message)` rejects the write with
    /// [`Error::Invalid`](crate::Error::Invalid) before anything is logged. Replaces an earlier
    /// validator.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use walden::{Error, Store};
    /// let store = Store::open(dir.path())?;
    /// store.set_validator("accounts", |doc| match doc["balance_cents"].as_i64() {
    ///     Some(b) if b >= 0 => Ok(()),
    ///     _ => Err("balance_cents must be a non-negative integer".into()),
    /// })?;
    /// store.put("accounts", "ada", &serde_json::json!({"balance_cents": 100}))?;
    /// match store.put("accounts", "bob", &serde_json::json!({"balance_cents": -1})) {
    ///     Err(Error::Invalid { key, message, .. }) => {
    ///         assert_eq!((key.as_str(), message.as_str()), ("bob", "balance_cents must be a non-negative integer"));
    ///     }
    ///     other => panic!("expected Invalid, got {other:?}"),
    /// }
    /// assert_eq!(store.count("accounts")?, 1); // nothing was written for bob
    /// # Ok::<(), walden::Error>(())
    /// ```
    pub fn set_validator<F>(&self, collection: &str, validator: F) -> Result<()>
    where
        F: Fn(&serde_json::Value) -> std::result::Result<(), String> + Send + Sync + 'static,
    {
        self.check_open()?;
        check_collection(collection)?;
        self.inner.validators.write().insert(collection.to_owned(), Arc::new(validator));
        Ok(())
    }

    /// Removes the validator of `collection`, if any.
    pub fn clear_validator(&self, collection: &str) -> Result<()> {
        self.check_open()?;
        check_collection(collection)?;
        self.inner.validators.write().remove(collection);
        Ok(())
    }

    /// Makes every acknowledged write durable, including `Buffered` ones.
    pub fn sync(&self) -> Result<()> {
        self.check_open()?;
        self.inner.wal.sync()
    }

    /// Syncs and closes the store: every later operation through any clone (reads, writes,
    /// counts, rate limiters and breakers made from it) fails with [`Error::Closed`], and the
    /// directory's lock is released at once, so the store can be reopened right away. Only
    /// [`Store::stats`] still answers, with the counters as they were at the close.
    /// A clean close ends the log with a close marker (`docs/FORMAT.md`), so the next open
    /// refuses any damage before it. Dropping the last clone without `close` is safe too (it
    /// syncs and writes the marker, ignoring errors).
    pub fn close(self) -> Result<()> {
        // First, so no clone reads what another opener may soon overwrite.
        self.inner.closed.store(true, Ordering::Release);
        let synced = self.inner.wal.sync();
        // Writes the marker only if everything is durable; refuses later writes either way.
        let closed = self.inner.wal.close();
        let r = synced.and(closed);
        self.inner.stop_background();
        self.inner.wal.stop_committer();
        // Nothing can be written any more; let the next opener in.
        self.inner.lock.unlock();
        r
    }

    /// Compacts now: writes a snapshot of the state as of the end of the log (writers keep
    /// committing meanwhile), then deletes the log segments and older snapshots it covers.
    /// Returns `None` if the newest snapshot already covers the whole log.
    pub fn compact(&self) -> Result<Option<CompactionReport>> {
        self.check_open()?;
        self.inner.compactor.compact()
    }
}

impl Inner {
    /// Stops the background threads and waits for them to exit (a compaction in progress
    /// finishes first).
    fn stop_background(&self) {
        let (lock, cv) = &*self.stop;
        *lock.lock() = true;
        cv.notify_all();
        for h in self.threads.lock().drain(..) {
            let _ = h.join();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The flusher holds the log, not the store, so this runs on the thread that dropped
        // the last clone and the lock is free when the drop returns.
        self.stop_background();
        self.wal.stop_committer();
        if self.wal.sync().is_ok() {
            let _ = self.wal.close();
        }
    }
}
