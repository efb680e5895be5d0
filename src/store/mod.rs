//! The store: documents, versions, batches, scans and the write path.

mod backup;
pub(crate) mod batch;
mod json;
mod open;
pub(crate) mod overlay;
pub(crate) mod replay;
mod stats;

pub use backup::{prune_backups, BackupReport, Retention, BACKUP_DIR_PREFIX};
pub use batch::Batch;
pub use json::{ImportMode, ImportReport};
pub use stats::{RecoveryStats, Stats};

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex, RwLock};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::breaker::BreakerState;
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, LimitKind, Result};
use crate::format::{
    batch_op_encoded_len, encode_batch_op, BatchOp, BatchOpKind, RecordKind, BATCH_COUNT_BYTES,
};
use crate::io::{Io, RealIo};
use crate::limits::{
    DEFAULT_BUFFERED_FLUSH_INTERVAL_MS, DEFAULT_COMPACTION_CHECK_INTERVAL_MS,
    DEFAULT_COMPACTION_MIN_WAL_BYTES, DEFAULT_COMPACTION_WAL_TO_SNAPSHOT_RATIO,
    DEFAULT_MAX_DOCUMENT_BYTES, DEFAULT_MAX_KEY_BYTES, DEFAULT_SEGMENT_TARGET_BYTES, MAX_BATCH_OPS,
    MAX_COLLECTION_NAME_BYTES, MAX_KEY_BYTES_LIMIT, MAX_RECORD_BODY_BYTES,
};
use crate::ratelimit::RateLimitState;
use crate::snapshot::compact::{CompactionReport, Compactor};
use crate::wal::writer::{PendingRecord, Queue, Ticket, Wal};
use batch::{Cond, Op};
use overlay::DocKey;

/// When a write is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Acknowledged only after an fsync that covers it returned: survives a crash or power loss.
    #[default]
    Immediate,
    /// Acknowledged once handed to the OS; a background flusher fsyncs within
    /// `Options::buffered_flush_interval_ms`. A process crash loses nothing; a power loss or
    /// kernel crash may lose the writes of the last interval.
    Buffered,
}

/// A document with its version and the time it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The document.
    pub value: T,
    /// Its version: 1 for the first write, +1 for each later one. A document deleted and
    /// created again starts at 1.
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

/// A validator: `Err(message)` rejects a document before anything is logged.
pub type Validator =
    Arc<dyn Fn(&serde_json::Value) -> std::result::Result<(), String> + Send + Sync>;

/// How a store is opened.
#[derive(Debug, Clone)]
pub struct Options {
    /// Default durability of writes (a [`Batch`] may override it).
    pub durability: Durability,
    /// Largest key, in bytes (at most [`MAX_KEY_BYTES_LIMIT`]).
    pub max_key_bytes: usize,
    /// Largest document (its JSON), in bytes (below [`MAX_RECORD_BODY_BYTES`]).
    pub max_document_bytes: usize,
    /// Size at which the log moves on to a new segment file.
    pub segment_target_bytes: u64,
    /// How often the background flusher fsyncs `Buffered` writes, in milliseconds.
    pub buffered_flush_interval_ms: u64,
    /// How long `open` waits for another opener to release the lock; `None` fails at once.
    pub lock_timeout: Option<Duration>,
    /// The file-system seam (replace it to inject faults in tests).
    pub io: Arc<dyn Io>,
    /// The wall clock (replace it to control time in tests).
    pub clock: Arc<dyn Clock>,
    /// Whether a background thread compacts the log when it grows (see the two thresholds).
    pub auto_compact: bool,
    /// Background compaction waits until the log holds at least this many bytes...
    pub compaction_min_wal_bytes: u64,
    /// ...and at least this multiple of the newest snapshot's size.
    pub compaction_wal_to_snapshot_ratio: f64,
    /// How often the background compactor checks the two thresholds, in milliseconds.
    pub compaction_check_interval_ms: u64,
    /// Group commit: how long a leader waits, when other writers are active, before taking
    /// the queue, so more commits share one fsync. `None` (the default): no wait; groups form
    /// from whatever queued during the previous fsync. A single writer never waits.
    pub max_commit_delay: Option<Duration>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            durability: Durability::Immediate,
            max_key_bytes: DEFAULT_MAX_KEY_BYTES,
            max_document_bytes: DEFAULT_MAX_DOCUMENT_BYTES,
            segment_target_bytes: DEFAULT_SEGMENT_TARGET_BYTES,
            buffered_flush_interval_ms: DEFAULT_BUFFERED_FLUSH_INTERVAL_MS,
            lock_timeout: None,
            io: Arc::new(RealIo),
            clock: Arc::new(SystemClock),
            auto_compact: true,
            compaction_min_wal_bytes: DEFAULT_COMPACTION_MIN_WAL_BYTES,
            compaction_wal_to_snapshot_ratio: DEFAULT_COMPACTION_WAL_TO_SNAPSHOT_RATIO,
            compaction_check_interval_ms: DEFAULT_COMPACTION_CHECK_INTERVAL_MS,
            max_commit_delay: None,
        }
    }
}

/// One stored document in memory.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    pub version: u64,
    pub written_unix_ns: u64,
    /// LSN of the record that wrote this version.
    pub lsn: u64,
    pub json: Arc<[u8]>,
}

/// The state readers see: everything in the log, applied in LSN order.
pub(crate) type Docs = BTreeMap<String, BTreeMap<String, Doc>>;

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

/// Applies one document change; the record's timestamp becomes the document's.
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

pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) options: Options,
    pub(crate) docs: Arc<RwLock<Docs>>,
    pub(crate) wal: Arc<Wal>,
    pub(crate) compactor: Arc<Compactor>,
    validators: RwLock<HashMap<String, Validator>>,
    pub(crate) recovery: RecoveryStats,
    pub(crate) ratelimits: Mutex<RateLimitState>,
    pub(crate) breakers: Mutex<BreakerState>,
    /// The flusher and compactor threads.
    threads: Mutex<Vec<JoinHandle<()>>>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    lock: File,
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

/// Checks a name (collection, limiter, breaker): 1 to `max_bytes` bytes of `[A-Za-z0-9_.-]`.
pub(crate) fn check_name(what: LimitKind, name: &str, max_bytes: usize) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidName { what, name: String::new(), reason: "must not be empty" });
    }
    if name.len() > max_bytes {
        return Err(Error::TooLarge { what, size: name.len(), limit: max_bytes });
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
        return Err(Error::InvalidName {
            what,
            name: name.to_owned(),
            reason: "only A-Z, a-z, 0-9, '_', '.' and '-' are allowed",
        });
    }
    Ok(())
}

/// Checks a key: non-empty, at most `max_key_bytes` (capped at [`MAX_KEY_BYTES_LIMIT`]).
pub(crate) fn check_key(key: &str, max_key_bytes: usize) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidName {
            what: LimitKind::Key,
            name: String::new(),
            reason: "must not be empty",
        });
    }
    let limit = max_key_bytes.min(MAX_KEY_BYTES_LIMIT);
    if key.len() > limit {
        return Err(Error::TooLarge { what: LimitKind::Key, size: key.len(), limit });
    }
    Ok(())
}

fn check_collection(name: &str) -> Result<()> {
    check_name(LimitKind::CollectionName, name, MAX_COLLECTION_NAME_BYTES)
}

impl Store {
    /// Opens (or creates) the store in directory `path` with default [`Options`].
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(path, Options::default())
    }

    /// Opens (or creates) the store in directory `path`, replaying its log.
    ///
    /// Fails with [`Error::Locked`] if another opener holds it, and with [`Error::Corruption`]
    /// (file and byte offset) if the log is damaged anywhere but a torn tail.
    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<Store> {
        open::open(path.as_ref(), options)
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    pub(crate) fn check_key(&self, key: &str) -> Result<()> {
        check_key(key, self.inner.options.max_key_bytes)
    }

    /// Installs a validator for `collection`: every document written to it is passed to
    /// `validator` as JSON first, and an `Err(message)` rejects the write with
    /// [`Error::Invalid`] before anything is logged. Replaces an earlier validator.
    pub fn set_validator<F>(&self, collection: &str, validator: F) -> Result<()>
    where
        F: Fn(&serde_json::Value) -> std::result::Result<(), String> + Send + Sync + 'static,
    {
        check_collection(collection)?;
        self.inner.validators.write().insert(collection.to_owned(), Arc::new(validator));
        Ok(())
    }

    /// Removes the validator of `collection`, if any.
    pub fn clear_validator(&self, collection: &str) {
        self.inner.validators.write().remove(collection);
    }

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

    /// Stores `value` under `key` and returns its new version (1 for a new document).
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
    /// written. Returns the version (1).
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

    /// Deletes a document; returns the version it had, or `None` if there was none (then
    /// nothing is written).
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
    /// and must not have side effects. Returns the new version, or `None` if the document is
    /// absent afterwards.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = walden::Store::open(dir.path())?;
    /// store.update::<u64, _>("counters", "hits", |n| Some(n.unwrap_or(0) + 1))?;
    /// assert_eq!(store.get::<u64>("counters", "hits")?.unwrap().value, 1);
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
                (Some(new), Some(v)) => b.put_if_version(collection, key, &new, v),
                (Some(new), None) => b.insert(collection, key, &new),
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

    /// The state of a key in the log (what readers see).
    fn applied(&self, collection: &str, key: &str) -> Option<Doc> {
        self.inner.docs.read().get(collection).and_then(|c| c.get(key)).cloned()
    }

    /// The newest sequenced state of a key: the overlay, else the applied documents.
    fn latest(&self, q: &Queue, key: &DocKey) -> Option<Doc> {
        match q.overlay.get(key) {
            Some(state) => state.clone(),
            None => self.applied(&key.0, &key.1),
        }
    }

    /// Commits a batch as one record: all operations take effect or none does. Returns, per
    /// operation: a put's new version, a delete's removed version (`None` if nothing was
    /// there), an `expect_version`'s current version.
    pub fn commit(&self, batch: Batch) -> Result<Vec<Option<u64>>> {
        let durability = batch.durability.unwrap_or(self.inner.options.durability);
        if batch.ops.len() > MAX_BATCH_OPS {
            return Err(Error::TooLarge {
                what: LimitKind::BatchOps,
                size: batch.ops.len(),
                limit: MAX_BATCH_OPS,
            });
        }
        let ops = self.validate(batch.ops)?;
        let body_estimate: usize = BATCH_COUNT_BYTES
            + ops
                .iter()
                .map(|op| match op {
                    Prepared::Put { collection, key, json, .. } => {
                        batch_op_encoded_len(collection, key, Some(json))
                    }
                    Prepared::Delete { collection, key, .. } => {
                        batch_op_encoded_len(collection, key, None)
                    }
                    Prepared::Check { .. } => 0,
                })
                .sum::<usize>();
        if body_estimate > MAX_RECORD_BODY_BYTES {
            return Err(Error::TooLarge {
                what: LimitKind::Record,
                size: body_estimate,
                limit: MAX_RECORD_BODY_BYTES,
            });
        }

        let mut q = self.inner.wal.lock();
        Wal::check_writable(&q)?;
        let now = self.inner.options.clock.now_unix_ns();
        // One pass in batch order: each op sees the effects of the ops before it.
        let mut working: HashMap<DocKey, Option<Doc>> = HashMap::new();
        let mut results = Vec::with_capacity(ops.len());
        let mut effects = Vec::new();
        let mut body = Vec::with_capacity(body_estimate);
        body.extend_from_slice(&0u32.to_le_bytes());
        for op in &ops {
            let (collection, key, cond) = op.target();
            let dkey: DocKey = (collection.to_owned(), key.to_owned());
            let current = match working.get(&dkey) {
                Some(s) => s.clone(),
                None => self.latest(&q, &dkey),
            };
            let cur_version = current.as_ref().map(|d| d.version);
            if let (Cond::Absent, Some(version), Prepared::Put { .. }) = (cond, cur_version, op) {
                return Err(Error::AlreadyExists {
                    collection: collection.to_owned(),
                    key: key.to_owned(),
                    version,
                });
            }
            if cond != Cond::Any && cond.expected() != cur_version {
                return Err(Error::Conflict {
                    collection: collection.to_owned(),
                    key: key.to_owned(),
                    expected: cond.expected(),
                    current: cur_version,
                });
            }
            let (kind, version, after, value) = match op {
                Prepared::Put { json, .. } => {
                    let version = cur_version.map_or(1, |v| v + 1);
                    let doc = Doc { version, written_unix_ns: now, lsn: 0, json: json.clone() };
                    (BatchOpKind::Put, version, Some(doc), &json[..])
                }
                Prepared::Delete { .. } => match cur_version {
                    Some(version) => (BatchOpKind::Delete, version, None, &[][..]),
                    None => {
                        results.push(None);
                        continue;
                    }
                },
                Prepared::Check { .. } => {
                    results.push(cur_version);
                    continue;
                }
            };
            results.push(Some(version));
            encode_batch_op(&mut body, &BatchOp { kind, collection, key, version, value });
            working.insert(dkey.clone(), after.clone());
            effects.push(DocEffect { collection: dkey.0, key: dkey.1, doc: after });
        }
        if effects.is_empty() {
            return Ok(results);
        }
        let count = u32::try_from(effects.len()).expect("bounded by MAX_BATCH_OPS");
        body[..4].copy_from_slice(&count.to_le_bytes());
        let ticket = Wal::enqueue(&mut q, now, RecordKind::Batch, body, Effects::Docs(effects));
        for (k, state) in working {
            q.overlay.set(k, ticket.lsn, state);
        }
        drop(q);
        self.inner.wal.wait(ticket, durability)?;
        Ok(results)
    }

    /// Checks names and sizes, serializes and validates documents: all before taking any lock.
    fn validate(&self, ops: Vec<Op>) -> Result<Vec<Prepared>> {
        let validators = self.inner.validators.read();
        let max_doc = self.inner.options.max_document_bytes.min(MAX_RECORD_BODY_BYTES);
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            {
                let (collection, key) = op.target();
                check_collection(collection)?;
                self.check_key(key)?;
            }
            out.push(match op {
                Op::Put { collection, key, json, cond } => {
                    let json = json.map_err(|source| Error::Json {
                        collection: collection.clone(),
                        key: key.clone(),
                        source,
                    })?;
                    if json.len() > max_doc {
                        return Err(Error::TooLarge {
                            what: LimitKind::Document,
                            size: json.len(),
                            limit: max_doc,
                        });
                    }
                    if let Some(v) = validators.get(&collection) {
                        let value: serde_json::Value =
                            serde_json::from_slice(&json).map_err(|source| Error::Json {
                                collection: collection.clone(),
                                key: key.clone(),
                                source,
                            })?;
                        if let Err(message) = v(&value) {
                            return Err(Error::Invalid { collection, key, message });
                        }
                    }
                    Prepared::Put { collection, key, json: Arc::from(json), cond }
                }
                Op::Delete { collection, key, cond } => Prepared::Delete { collection, key, cond },
                Op::Check { collection, key, cond } => Prepared::Check { collection, key, cond },
            });
        }
        Ok(out)
    }

    /// Documents of `collection` in key order, as of one instant: writes that commit while
    /// the caller iterates are not seen.
    pub fn scan<T: DeserializeOwned>(&self, collection: &str) -> Result<Scan<T>> {
        self.scan_range(collection, Bound::Unbounded, Bound::Unbounded)
    }

    /// Documents of `collection` whose keys start with `prefix`, in key order, as of one instant.
    pub fn scan_prefix<T: DeserializeOwned>(
        &self,
        collection: &str,
        prefix: &str,
    ) -> Result<Scan<T>> {
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
    pub fn collections(&self) -> Vec<String> {
        self.inner.docs.read().keys().cloned().collect()
    }

    /// Number of documents in `collection`.
    pub fn count(&self, collection: &str) -> usize {
        self.inner.docs.read().get(collection).map_or(0, |c| c.len())
    }

    /// Makes every acknowledged write durable, including `Buffered` ones.
    pub fn sync(&self) -> Result<()> {
        self.inner.wal.sync()
    }

    /// Syncs and closes the store: later writes through any clone fail with [`Error::Closed`]
    /// and the directory's lock is released at once, so the store can be reopened right away.
    /// Dropping the last clone without `close` is safe too (it syncs, ignoring errors).
    pub fn close(self) -> Result<()> {
        let r = self.inner.wal.sync();
        self.inner.wal.close();
        self.inner.stop_background();
        // Nothing can be written any more; let the next opener in.
        let _ = self.inner.lock.unlock();
        r
    }

    /// Queues a record of a kind other than documents (rate-limit, breaker) and returns its
    /// ticket; it is applied to no document. Call it while holding the lock that guards the
    /// in-memory state the record describes, so LSN order is mutation order; then release that
    /// lock and [`Store::wait_for`] the ticket.
    pub(crate) fn append_record(&self, kind: RecordKind, body: Vec<u8>) -> Result<Ticket> {
        if body.len() > MAX_RECORD_BODY_BYTES {
            return Err(Error::TooLarge {
                what: LimitKind::Record,
                size: body.len(),
                limit: MAX_RECORD_BODY_BYTES,
            });
        }
        let mut q = self.inner.wal.lock();
        Wal::check_writable(&q)?;
        let now = self.inner.options.clock.now_unix_ns();
        Ok(Wal::enqueue(&mut q, now, kind, body, Effects::None))
    }

    /// Waits until a ticket's record is written (`Buffered`) or fsynced (`Immediate`).
    pub(crate) fn wait_for(&self, ticket: Ticket, durability: Durability) -> Result<()> {
        self.inner.wal.wait(ticket, durability)
    }

    /// Compacts now: writes a snapshot of the state as of the end of the log (writers keep
    /// committing meanwhile), then deletes the log segments and older snapshots it covers.
    /// Returns `None` if the newest snapshot already covers the whole log.
    pub fn compact(&self) -> Result<Option<CompactionReport>> {
        self.inner.compactor.compact()
    }

    /// Counters and positions: see [`Stats`].
    pub fn stats(&self) -> Stats {
        stats::collect(&self.inner)
    }
}

/// An operation after checks and serialization.
enum Prepared {
    Put { collection: String, key: String, json: Arc<[u8]>, cond: Cond },
    Delete { collection: String, key: String, cond: Cond },
    Check { collection: String, key: String, cond: Cond },
}

impl Prepared {
    fn target(&self) -> (&str, &str, Cond) {
        match self {
            Prepared::Put { collection, key, cond, .. }
            | Prepared::Delete { collection, key, cond }
            | Prepared::Check { collection, key, cond } => (collection, key, *cond),
        }
    }
}

fn decode_doc<T: DeserializeOwned>(collection: &str, key: &str, doc: &Doc) -> Result<Versioned<T>> {
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
        let _ = self.wal.sync();
    }
}

/// Applies a written group's effects to the documents readers see.
pub(crate) fn apply_group(docs: &RwLock<Docs>, group: &[PendingRecord]) {
    let mut docs = docs.write();
    for r in group {
        if let Effects::Docs(effects) = &r.effects {
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
