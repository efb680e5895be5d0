//! Opening a store: directory, lock, identity, recovery, writer.

use std::collections::hash_map::RandomState;
use std::fs::{File, OpenOptions, TryLockError};
use std::hash::{BuildHasher, Hasher};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use super::commit::{DocHook, DocLog};
use super::compact::{CompactionPolicy, Compactor};
use super::{Inner, Options, RecoveryStats, Store};
use crate::error::{CorruptionKind, Error, IoOp, Result};
use crate::format::{parse_snapshot_file_name, StoreIdentity};
use crate::io::Io;
use crate::snapshot::{SnapshotInfo, SNAPSHOT_TMP_SUFFIX};
use crate::state::State;
use crate::wal::recovery::{list_segments, recover};
use crate::wal::segment_writer::SegmentWriter;
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

    // Snapshots, newest first; a damaged one is skipped if an older one and the log cover it.
    let names = io.list_dir(dir).map_err(|e| Error::io(IoOp::ListDir, dir, e))?;
    let mut removed_tmp = false;
    for name in &names {
        if name.starts_with("snapshot-") && name.ends_with(SNAPSHOT_TMP_SUFFIX) {
            let path = dir.join(name);
            io.remove_file(&path).map_err(|e| Error::io(IoOp::Remove, &path, e))?;
            removed_tmp = true;
        }
    }
    if removed_tmp {
        io.sync_dir(dir).map_err(|e| Error::io(IoOp::SyncDir, dir, e))?;
    }
    let mut snapshots: Vec<(u64, PathBuf)> = names
        .iter()
        .filter_map(|n| parse_snapshot_file_name(n).map(|lsn| (lsn, dir.join(n))))
        .collect();
    snapshots.sort_by(|a, b| b.cmp(a));
    let mut state = State::default();
    let mut loaded: Option<(SnapshotInfo, u64)> = None;
    let mut rejected: Vec<Error> = Vec::new();
    for (lsn, path) in snapshots {
        let bytes = io.read(&path).map_err(|e| Error::io(IoOp::Read, &path, e))?;
        match State::from_snapshot(&bytes, identity.store_id) {
            Ok((candidate, h)) if h.lsn == lsn => {
                state = candidate;
                loaded = Some((SnapshotInfo { lsn, path, bytes: bytes.len() as u64 }, h.epoch));
                break;
            }
            Ok((_, h)) => rejected.push(Error::Corruption {
                file: path,
                offset: 0,
                last_good_lsn: None,
                kind: CorruptionKind::LsnGap { expected: lsn, found: h.lsn },
            }),
            Err(e) => rejected.push(Error::Corruption {
                file: path,
                offset: e.offset,
                last_good_lsn: None,
                kind: e.kind,
            }),
        }
    }
    let snapshot_lsn = loaded.as_ref().map_or(0, |(s, _)| s.lsn);
    let rejected_paths: Vec<PathBuf> = rejected
        .iter()
        .filter_map(|e| match e {
            Error::Corruption { file, .. } => Some(file.clone()),
            _ => None,
        })
        .collect();

    let recovered = recover(&*io, &wal_dir, identity.store_id, snapshot_lsn, &mut |r| {
        state.apply_frame(&r.frame)
    })?;
    // The log must start right after the snapshot (or at LSN 1 without one).
    if let Some((first_lsn, first_path)) = &recovered.first {
        if *first_lsn > snapshot_lsn + 1 {
            return Err(rejected.into_iter().next().unwrap_or(Error::Corruption {
                file: first_path.clone(),
                offset: 0,
                last_good_lsn: None,
                kind: CorruptionKind::LsnGap { expected: snapshot_lsn + 1, found: *first_lsn },
            }));
        }
    } else if loaded.is_none() {
        if let Some(e) = rejected.into_iter().next() {
            return Err(e);
        }
    }
    let report = recovered.report;
    let stats = RecoveryStats {
        records_replayed: report.records_replayed,
        segments_read: report.segments_read,
        bytes_read: report.bytes_read,
        replay_us: report.replay_us,
        torn_tail: report.torn_tail,
        torn_saved_to: report.torn_saved_to,
        snapshot_lsn: loaded.as_ref().map(|(s, _)| s.lsn),
        snapshots_rejected: rejected_paths,
    };
    let epoch = recovered.max_epoch.max(loaded.as_ref().map_or(0, |(_, e)| *e)) + 1;

    let writer = SegmentWriter::create(
        io.clone(),
        &wal_dir,
        identity.store_id,
        epoch,
        recovered.next_segment_no,
        recovered.next_lsn,
        options.segment_target_bytes,
    )?;
    let State { docs, ratelimits, breakers, .. } = state;
    let docs = Arc::new(RwLock::new(docs));
    let hook = DocHook { docs: docs.clone() };
    let wal = Arc::new(
        DocLog::new(writer, recovered.next_lsn, recovered.last_timestamp_unix_ns, hook)
            .with_max_commit_delay(options.max_commit_delay),
    );
    wal.counters.wal_bytes_on_disk.fetch_add(recovered.wal_bytes_on_disk, Ordering::Relaxed);
    let compactor = Arc::new(Compactor {
        io: io.clone(),
        dir: dir.to_path_buf(),
        wal_dir: wal_dir.clone(),
        store_id: identity.store_id,
        epoch,
        wal: wal.clone(),
        clock: options.clock.clone(),
        current: Mutex::new(loaded.map(|(s, _)| s)),
        serial: Mutex::new(()),
        policy: CompactionPolicy {
            auto: options.auto_compact,
            min_wal_bytes: options.compaction_min_wal_bytes,
            wal_to_snapshot_ratio: options.compaction_wal_to_snapshot_ratio,
        },
        counters: Default::default(),
    });
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let flush_interval = Duration::from_millis(options.buffered_flush_interval_ms.max(1));
    let flusher_wal = wal.clone();
    let flusher = spawn_periodic("walden-flusher", stop.clone(), flush_interval, move || {
        if flusher_wal.has_unsynced() {
            // A failure poisons the store; writers see it on their next call.
            let _ = flusher_wal.sync();
        }
    });
    let background = compactor.clone();
    let check_interval = Duration::from_millis(options.compaction_check_interval_ms.max(1));
    let compaction = spawn_periodic("walden-compactor", stop.clone(), check_interval, move || {
        if background.should_compact() {
            // A failure is counted in stats and tried again at the next check.
            let _ = background.compact();
        }
    });
    let inner = Arc::new(Inner {
        dir: dir.to_path_buf(),
        options,
        docs,
        wal,
        compactor,
        validators: RwLock::new(Default::default()),
        recovery: stats,
        ratelimits: Mutex::new(ratelimits),
        breakers: Mutex::new(breakers),
        threads: Mutex::new(vec![flusher, compaction]),
        stop,
        lock,
    });
    Ok(Store { inner })
}

/// Runs `tick` every `interval` on a named thread until `stop` is set.
fn spawn_periodic(
    name: &str,
    stop: Arc<(Mutex<bool>, Condvar)>,
    interval: Duration,
    mut tick: impl FnMut() + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.into())
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
            tick();
        })
        .expect("spawn a background thread")
}
