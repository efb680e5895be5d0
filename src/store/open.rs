//! Opening a store: directory, lock, identity, recovery, writer.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use super::compact::{CompactionPolicy, Compactor};
use super::hook::{DocHook, DocLog};
use super::{Inner, Options, RecoveryStats, Store};
use crate::error::{CorruptionKind, Error, Result};
use crate::format::files::{IDENTITY_FILE, IDENTITY_TMP_FILE, LOCK_FILE, WAL_DIR};
use crate::format::{parse_snapshot_file_name, StoreIdentity, Watermark};
use crate::io::{Fs, Io, StoreLock};
use crate::snapshot::{remove_snapshots, SnapshotInfo};
use crate::state::State;
use crate::wal::recovery::{list_segments, recover, ReplayReport};
use crate::wal::segment_writer::SegmentWriter;

fn take_lock(dir: &Path, timeout: Option<Duration>) -> Result<StoreLock> {
    StoreLock::acquire(&dir.join(LOCK_FILE), timeout)?
        .ok_or_else(|| Error::Locked { path: dir.to_path_buf() })
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

/// Creates the missing directories of `dir` (mode 0700) and returns them, outermost first.
fn create_dirs(io: &dyn Io, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut p = dir;
    while !io.is_dir(p) {
        missing.push(p.to_path_buf());
        match p.parent() {
            Some(parent) => p = parent,
            None => break,
        }
    }
    Fs(io).create_dir_all(dir)?;
    missing.reverse();
    Ok(missing)
}

/// fsyncs the parent of `dir` and of every ancestor up to the file-system root, so the path
/// to a new store survives a power cut: the parents of the directories this open `created`,
/// and the existing ones above (an earlier creation that crashed may have left their new
/// entries unsynced). An existing ancestor that this process may not open ends the walk.
fn sync_ancestors(io: &dyn Io, dir: &Path, created: &[PathBuf]) -> Result<()> {
    let mut p = dir;
    while let Some(parent) = p.parent() {
        // A relative path's last ancestor is the working directory.
        let relative_top = parent.as_os_str().is_empty();
        let parent = if relative_top { Path::new(".") } else { parent };
        match Fs(io).sync_dir(parent) {
            Ok(()) => {}
            // An ancestor this process may not open ends the walk; any other failure, or any
            // failure on a directory this open created, is an error like every failed fsync.
            Err(e)
                if e.source.kind() == std::io::ErrorKind::PermissionDenied
                    && !created.iter().any(|c| c == p) =>
            {
                break
            }
            Err(e) => return Err(e.into()),
        }
        if relative_top {
            break;
        }
        p = parent;
    }
    Ok(())
}

/// Reads `STORE`, or creates it for a new store: first the path to the store is made durable
/// ([`sync_ancestors`]), then the identity (temp file, fsync, rename, fsync directory).
fn load_or_create_identity(
    io: &dyn Io,
    dir: &Path,
    wal_dir: &Path,
    now_unix_ns: u64,
    created: &[PathBuf],
) -> Result<StoreIdentity> {
    let path = dir.join(IDENTITY_FILE);
    let names = Fs(io).list_dir(dir)?;
    if names.iter().any(|n| n == IDENTITY_FILE) {
        let bytes = Fs(io).read(&path)?;
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
    sync_ancestors(io, dir, created)?;
    let identity = StoreIdentity { store_id: random_id(), created_unix_ns: now_unix_ns };
    let tmp = dir.join(IDENTITY_TMP_FILE);
    if names.iter().any(|n| n == IDENTITY_TMP_FILE) {
        Fs(io).remove_file(&tmp)?;
    }
    let mut f = Fs(io).create_new(&tmp)?;
    f.write_all(&identity.encode())?;
    f.sync_data()?;
    drop(f);
    Fs(io).rename(&tmp, &path)?;
    Fs(io).sync_dir(dir)?;
    Ok(identity)
}

impl Store {
    /// Opens (or creates) the store in directory `path` with default [`Options`].
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(path, Options::default())
    }

    /// Opens (or creates) the store in directory `path`, replaying its log.
    ///
    /// Fails with [`Error::Locked`] if another opener holds it, and with [`Error::Corruption`]
    /// (file, byte offset and, for a damaged record, the proof that it had been durable) if
    /// the store is damaged; an unsynced tail a power cut left is cut, not refused
    /// (`stats().recovery.torn_tail`, and a `warn` event).
    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<Store> {
        open(path.as_ref(), options)
    }
}

fn open(dir: &Path, options: Options) -> Result<Store> {
    let io = options.io.clone();
    let created = create_dirs(&*io, dir)?;
    let lock = take_lock(dir, options.lock_timeout)?;
    let wal_dir = dir.join(WAL_DIR);
    let now = options.clock.now_unix_ns();
    let identity = load_or_create_identity(&*io, dir, &wal_dir, now, &created)?;
    Fs(&*io).create_dir_all(&wal_dir)?;
    Fs(&*io).sync_dir(dir)?;

    let names = Fs(&*io).list_dir(dir)?;
    // Temp files of snapshot writes a crash interrupted; no snapshot itself goes.
    remove_snapshots(&*io, dir, &names, |_| false)?;
    let (mut state, loaded, rejected) = load_snapshot(&*io, dir, &names, identity.store_id)?;
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
    check_log_start(recovered.first.as_ref(), loaded.is_some(), snapshot_lsn, rejected)?;
    let stats =
        recovery_stats(&recovered.report, loaded.as_ref().map(|(s, _)| s.lsn), rejected_paths);
    let epoch = recovered.max_epoch.max(loaded.as_ref().map_or(0, |(_, e)| *e)) + 1;
    let base = durable_base(recovered.last_record, loaded.as_ref().map(|(s, e)| (s.lsn, *e)));

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
        DocLog::new(writer, recovered.next_lsn, recovered.last_timestamp_unix_ns, base, hook)
            .with_max_commit_delay(options.max_commit_delay),
    );
    wal.counters.wal_bytes_on_disk.fetch_add(recovered.wal_bytes_on_disk, Ordering::Relaxed);
    let snapshot = loaded.map(|(s, _)| s);
    let compactor =
        Arc::new(compactor(&options, dir, &wal_dir, identity.store_id, epoch, &wal, snapshot));
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let threads = spawn_background(&options, &wal, &compactor, &stop);
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
        threads: Mutex::new(threads),
        stop,
        lock,
    });
    Ok(Store { inner })
}

/// The last record recovery made durable, which new records name until their own are durable:
/// the log's last record, or the snapshot's `(epoch, LSN)` when no record follows it.
fn durable_base(last_record: Option<Watermark>, snapshot: Option<(u64, u64)>) -> Watermark {
    let snapshot_lsn = snapshot.map_or(0, |(lsn, _)| lsn);
    last_record
        .filter(|w| w.lsn >= snapshot_lsn)
        .or(snapshot.map(|(lsn, epoch)| Watermark { epoch, lsn }))
        .unwrap_or(Watermark::NONE)
}

/// The log must start right after the snapshot (or at LSN 1 without one). If it does not, the
/// newest rejected snapshot (if any) is the error to report, else the gap.
fn check_log_start(
    first: Option<&(u64, PathBuf)>,
    loaded: bool,
    snapshot_lsn: u64,
    rejected: Vec<Error>,
) -> Result<()> {
    if let Some((first_lsn, first_path)) = first {
        if *first_lsn > snapshot_lsn + 1 {
            return Err(rejected.into_iter().next().unwrap_or(Error::Corruption {
                file: first_path.clone(),
                offset: 0,
                last_good_lsn: None,
                kind: CorruptionKind::LsnGap { expected: snapshot_lsn + 1, found: *first_lsn },
            }));
        }
    } else if !loaded {
        if let Some(e) = rejected.into_iter().next() {
            return Err(e);
        }
    }
    Ok(())
}

fn recovery_stats(
    report: &ReplayReport,
    snapshot_lsn: Option<u64>,
    snapshots_rejected: Vec<PathBuf>,
) -> RecoveryStats {
    RecoveryStats {
        records_replayed: report.records_replayed,
        segments_read: report.segments_read,
        bytes_read: report.bytes_read,
        replay_us: report.replay_us,
        torn_tail: report.torn_tail.clone(),
        torn_saved_to: report.torn_saved_to.clone(),
        snapshot_lsn,
        snapshots_rejected,
    }
}

/// The compactor of a store opened at `epoch`, whose newest snapshot is `snapshot`.
fn compactor(
    options: &Options,
    dir: &Path,
    wal_dir: &Path,
    store_id: [u8; 16],
    epoch: u64,
    wal: &Arc<DocLog>,
    snapshot: Option<SnapshotInfo>,
) -> Compactor {
    Compactor {
        io: options.io.clone(),
        dir: dir.to_path_buf(),
        wal_dir: wal_dir.to_path_buf(),
        store_id,
        epoch,
        wal: wal.clone(),
        clock: options.clock.clone(),
        current: Mutex::new(snapshot),
        serial: Mutex::new(()),
        policy: CompactionPolicy {
            auto: options.auto_compact,
            min_wal_bytes: options.compaction_min_wal_bytes,
            wal_to_snapshot_ratio: options.compaction_wal_to_snapshot_ratio,
        },
        counters: Default::default(),
    }
}

/// The state of the newest snapshot that verifies, with the snapshot and its epoch, and the
/// newer snapshots rejected on the way (newest first). A damaged snapshot is skipped if an
/// older one and the log cover it; the caller checks that they do.
fn load_snapshot(io: &dyn Io, dir: &Path, names: &[String], store_id: [u8; 16]) -> Result<Loaded> {
    let mut snapshots: Vec<(u64, PathBuf)> = names
        .iter()
        .filter_map(|n| parse_snapshot_file_name(n).map(|lsn| (lsn, dir.join(n))))
        .collect();
    snapshots.sort_by(|a, b| b.cmp(a));
    let mut state = State::default();
    let mut loaded: Option<(SnapshotInfo, u64)> = None;
    let mut rejected: Vec<Error> = Vec::new();
    for (lsn, path) in snapshots {
        let bytes = Fs(io).read(&path)?;
        match State::from_snapshot(&bytes, store_id) {
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
        if let Some(e) = rejected.last() {
            tracing::warn!(
                target: "walden",
                error = %e,
                "snapshot rejected; falling back to an older snapshot and the log"
            );
        }
    }
    Ok((state, loaded, rejected))
}

/// What [`load_snapshot`] found: the state, the snapshot and its epoch, the rejected ones.
type Loaded = (State, Option<(SnapshotInfo, u64)>, Vec<Error>);

/// Starts the flusher and the compactor threads.
fn spawn_background(
    options: &Options,
    wal: &Arc<DocLog>,
    compactor: &Arc<Compactor>,
    stop: &Arc<(Mutex<bool>, Condvar)>,
) -> Vec<std::thread::JoinHandle<()>> {
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
    vec![flusher, compaction]
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
