//! Opening a store: directory, lock, identity, recovery, writer.

use std::collections::hash_map::RandomState;
use std::fs::{File, OpenOptions, TryLockError};
use std::hash::{BuildHasher, Hasher};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use super::{apply_doc, apply_group, Doc, Docs, Inner, Options, Store};
use crate::breaker::BreakerState;
use crate::error::{CorruptionKind, Error, IoOp, Result};
use crate::format::{decode_batch, BatchOpKind, RecordKind, StoreIdentity};
use crate::io::Io;
use crate::ratelimit::RateLimitState;
use crate::wal::recovery::{list_segments, recover};
use crate::wal::writer::{SegmentWriter, Wal};
use crate::wal::WAL_DIR;

/// Name of the lock file.
pub(crate) const LOCK_FILE: &str = "LOCK";
/// Name of the identity file.
pub(crate) const IDENTITY_FILE: &str = "STORE";
const LOCK_POLL_INTERVAL: Duration = Duration::from_millis(10);

fn take_lock(dir: &Path, timeout: Option<Duration>) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io(IoOp::Lock, &path, e))?;
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) => match deadline {
                Some(d) if Instant::now() < d => std::thread::sleep(LOCK_POLL_INTERVAL),
                _ => return Err(Error::Locked { path: dir.to_path_buf() }),
            },
            Err(TryLockError::Error(e)) => return Err(Error::io(IoOp::Lock, &path, e)),
        }
    }
}

fn random_id() -> [u8; 16] {
    // Two independently keyed SipHash states: RandomState draws its keys from the OS.
    let mut id = [0u8; 16];
    for half in id.chunks_mut(8) {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    id
}

/// Reads `STORE`, or creates it (temp file, fsync, rename, fsync directory) for a new store.
fn load_or_create_identity(
    io: &dyn Io,
    dir: &Path,
    wal_dir: &Path,
    now_unix_ns: u64,
) -> Result<StoreIdentity> {
    let path = dir.join(IDENTITY_FILE);
    let names = io.list_dir(dir).map_err(|e| Error::io(IoOp::ListDir, dir, e))?;
    if names.iter().any(|n| n == IDENTITY_FILE) {
        let bytes = io.read(&path).map_err(|e| Error::io(IoOp::Read, &path, e))?;
        return StoreIdentity::decode(&bytes).map_err(|kind| Error::Corruption {
            file: path.clone(),
            offset: 0,
            last_good_lsn: None,
            kind,
        });
    }
    if names.iter().any(|n| n == WAL_DIR) && !list_segments(io, wal_dir)?.is_empty() {
        return Err(Error::Corruption {
            file: path,
            offset: 0,
            last_good_lsn: None,
            kind: CorruptionKind::MissingIdentity,
        });
    }
    let identity = StoreIdentity { store_id: random_id(), created_unix_ns: now_unix_ns };
    let tmp = dir.join(format!("{IDENTITY_FILE}.tmp"));
    if names.iter().any(|n| *n == format!("{IDENTITY_FILE}.tmp")) {
        io.remove_file(&tmp).map_err(|e| Error::io(IoOp::Remove, &tmp, e))?;
    }
    let mut f = io.create_new(&tmp).map_err(|e| Error::io(IoOp::Open, &tmp, e))?;
    f.write_all(&identity.encode()).map_err(|e| Error::io(IoOp::Write, &tmp, e))?;
    f.sync_data().map_err(|e| Error::io(IoOp::Sync, &tmp, e))?;
    drop(f);
    io.rename(&tmp, &path).map_err(|e| Error::io(IoOp::Rename, &path, e))?;
    io.sync_dir(dir).map_err(|e| Error::io(IoOp::SyncDir, dir, e))?;
    Ok(identity)
}

pub(super) fn open(dir: &Path, options: Options) -> Result<Store> {
    let io = options.io.clone();
    io.create_dir_all(dir).map_err(|e| Error::io(IoOp::CreateDir, dir, e))?;
    let lock = take_lock(dir, options.lock_timeout)?;
    let wal_dir = dir.join(WAL_DIR);
    let identity = load_or_create_identity(&*io, dir, &wal_dir, options.clock.now_unix_ns())?;
    io.create_dir_all(&wal_dir).map_err(|e| Error::io(IoOp::CreateDir, &wal_dir, e))?;
    io.sync_dir(dir).map_err(|e| Error::io(IoOp::SyncDir, dir, e))?;

    let mut docs = Docs::new();
    let mut ratelimits = RateLimitState::default();
    let mut breakers = BreakerState::default();
    let recovered = recover(&*io, &wal_dir, identity.store_id, &mut |r| {
        let f = &r.frame;
        match RecordKind::from_u8(f.kind) {
            Some(RecordKind::Batch) => {
                for op in decode_batch(f.body).map_err(CorruptionKind::BadBody)? {
                    let doc = match op.kind {
                        BatchOpKind::Put => Some(Doc {
                            version: op.version,
                            written_unix_ns: f.timestamp_unix_ns,
                            json: Arc::from(op.value),
                        }),
                        BatchOpKind::Delete => None,
                    };
                    apply_doc(&mut docs, op.collection, op.key, doc);
                }
                Ok(())
            }
            Some(RecordKind::RateLimit) => ratelimits
                .replay(f.lsn, f.timestamp_unix_ns, f.body)
                .map_err(CorruptionKind::BadBody),
            Some(RecordKind::Breaker) => {
                breakers.replay(f.lsn, f.timestamp_unix_ns, f.body).map_err(CorruptionKind::BadBody)
            }
            None => Err(CorruptionKind::UnknownRecordKind(f.kind)),
        }
    })?;

    let writer = SegmentWriter::create(
        io.clone(),
        &wal_dir,
        identity.store_id,
        recovered.max_epoch + 1,
        recovered.next_segment_no,
        recovered.next_lsn,
        options.segment_target_bytes,
    )?;
    let docs = Arc::new(RwLock::new(docs));
    let apply_docs = docs.clone();
    let wal = Wal::new(
        writer,
        recovered.next_lsn,
        recovered.last_timestamp_unix_ns,
        Box::new(move |group| apply_group(&apply_docs, group)),
    );
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let inner = Arc::new(Inner {
        dir: dir.to_path_buf(),
        options,
        docs,
        wal,
        validators: RwLock::new(Default::default()),
        recovery: recovered.stats,
        ratelimits: Mutex::new(ratelimits),
        breakers: Mutex::new(breakers),
        flusher: Mutex::new(None),
        stop: stop.clone(),
        _lock: lock,
    });
    let handle =
        spawn_flusher(Arc::downgrade(&inner), stop, inner.options.buffered_flush_interval_ms);
    *inner.flusher.lock() = Some(handle);
    Ok(Store { inner })
}

/// Fsyncs `Buffered` writes every `interval_ms` until the store is dropped.
fn spawn_flusher(
    weak: Weak<Inner>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    interval_ms: u64,
) -> std::thread::JoinHandle<()> {
    let interval = Duration::from_millis(interval_ms.max(1));
    std::thread::Builder::new()
        .name("walden-flusher".into())
        .spawn(move || loop {
            {
                let (lock, cv) = &*stop;
                let mut stopped = lock.lock();
                if !*stopped {
                    cv.wait_for(&mut stopped, interval);
                }
                if *stopped {
                    return;
                }
            }
            let Some(inner) = weak.upgrade() else { return };
            if inner.wal.has_unsynced() {
                // A failure poisons the store; writers see it on their next call.
                let _ = inner.wal.sync();
            }
        })
        .expect("spawn the flusher thread")
}
