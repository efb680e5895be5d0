//! Opening a store: directory, lock, identity, recovery, writer.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use super::compact::{CompactionPolicy, Compactor};
use super::hook::{DocHook, DocLog};
use super::pending::HeldBack;
use super::{Inner, Options, RecoveryStats, Store};
use crate::error::{CorruptionKind, Error, Result};
use crate::format::files::is_torn_file_name;
use crate::format::files::{
    DURABLE_FILE, DURABLE_TMP_FILE, IDENTITY_FILE, IDENTITY_TMP_FILE, LOCK_FILE, WAL_DIR,
};
use crate::format::{
    parse_segment_file_name, parse_snapshot_file_name, StoreIdentity, Watermark, IDENTITY_MAGIC,
};
use crate::io::{Fs, Io, LockHolder, StoreLock};
use crate::snapshot::{remove_snapshots, SnapshotInfo};
use crate::state::State;
use crate::wal::durable_mark::MarkPublisher;
use crate::wal::recovery::{list_segments, recover, Recovered, ReplayReport};
use crate::wal::segment_writer::SegmentWriter;

fn take_lock(dir: &Path, timeout: Option<Duration>, now_unix_ns: u64) -> Result<StoreLock> {
    let me = LockHolder::this_process(now_unix_ns);
    StoreLock::acquire(&dir.join(LOCK_FILE), timeout, &me)?
        .map_err(|holder| Error::Locked { path: dir.to_path_buf(), holder })
}

/// A name an empty file system puts in its root: a mount point holding only it is empty.
const LOST_AND_FOUND: &str = "lost+found";
/// Most foreign names [`Error::NotAStore`] lists.
const FOREIGN_NAMES_SHOWN: usize = 5;

/// Refuses, before anything is created in it, a directory that is not a walden store: one
/// with a `STORE` that is not walden's and no log or snapshot beside it, or without `STORE` but
/// holding anything other than walden's own files (`LOCK`, `STORE.tmp`, `wal/`, `DURABLE`) or
/// `lost+found`. A damaged `STORE` beside a log is a damaged store: recovery reports
/// it as corruption.
fn check_is_store(io: &dyn Io, dir: &Path) -> Result<()> {
    let not_a_store = |found: String| Error::NotAStore { path: dir.to_path_buf(), found };
    let names = Fs(io).list_dir(dir)?;
    let has_data = names.iter().any(|n| n == WAL_DIR || parse_snapshot_file_name(n).is_some());
    if names.iter().any(|n| n == IDENTITY_FILE) {
        if has_data {
            return Ok(());
        }
        let bytes = Fs(io).read(&dir.join(IDENTITY_FILE))?;
        let head = &bytes[..bytes.len().min(IDENTITY_MAGIC.len())];
        if !IDENTITY_MAGIC.starts_with(head) || bytes.is_empty() {
            return Err(not_a_store(format!(
                "a file named {IDENTITY_FILE} that is not a walden identity file"
            )));
        }
        return Ok(());
    }
    let mut foreign: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| {
            ![LOCK_FILE, IDENTITY_TMP_FILE, WAL_DIR, DURABLE_FILE, DURABLE_TMP_FILE, LOST_AND_FOUND]
                .contains(n)
        })
        .filter(|n| parse_snapshot_file_name(n).is_none())
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    foreign.sort_unstable();
    let more = foreign.len().saturating_sub(FOREIGN_NAMES_SHOWN);
    let mut found = foreign[..foreign.len() - more].join(", ");
    if more > 0 {
        found.push_str(&format!(" and {more} more"));
    }
    Err(not_a_store(format!("{found} (and no {IDENTITY_FILE})")))
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
    let snapshots = names.iter().any(|n| parse_snapshot_file_name(n).is_some());
    if snapshots || names.iter().any(|n| n == WAL_DIR) && !list_segments(io, wal_dir)?.is_empty() {
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
    /// Fails with [`Error::InvalidOption`] for options out of range, [`Error::InvalidPath`]
    /// for an empty path, [`Error::NotAStore`] for a non-empty directory that is not a walden
    /// store, [`Error::Locked`] (naming the holder) if another opener holds it,
    /// [`Error::NoSpaceAtOpen`] if the file system is full, and with [`Error::Corruption`]
    /// (file, byte offset and, for a damaged record, the proof that it had been durable) if
    /// the store is damaged; an unsynced tail a power cut left is cut, not refused
    /// (`stats().recovery.torn_tail`, and a `warn` event).
    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<Store> {
        let dir = path.as_ref();
        open(dir, options.with_group_mode()).map_err(|e| no_space_at_open(dir, e))
    }
}

/// An open that must write (the identity, a torn tail's copy, the new segment) on a full file
/// system says so, and what needed the space, instead of a bare ENOSPC.
fn no_space_at_open(dir: &Path, e: Error) -> Error {
    const ENOSPC: i32 = 28;
    match e {
        Error::Io { op, path, source }
            if source.raw_os_error() == Some(ENOSPC)
                || source.kind() == std::io::ErrorKind::StorageFull =>
        {
            let needed_for = what_needs_space(&path);
            Error::NoSpaceAtOpen { dir: dir.to_path_buf(), op, path, needed_for }
        }
        other => other,
    }
}

/// What an open was writing at `path`, for [`Error::NoSpaceAtOpen`].
fn what_needs_space(path: &Path) -> &'static str {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    if is_torn_file_name(&name) {
        "saving the torn tail cut off the log (kept for forensics) before cutting it"
    } else if name == IDENTITY_FILE || name == IDENTITY_TMP_FILE {
        "creating the store's identity file"
    } else if parse_segment_file_name(&name).is_some() {
        "starting the log segment this open writes to"
    } else if name == WAL_DIR {
        "creating the log directory"
    } else {
        "a file the open must write"
    }
}

/// Checks the options and the path, creates the directory if missing, refuses one that is
/// not a store, and takes the lock: the steps before anything is written in the directory.
/// Returns the lock and the directories created (see [`create_dirs`]).
fn prepare_dir(dir: &Path, options: &Options) -> Result<(StoreLock, Vec<PathBuf>)> {
    options.validate()?;
    if dir.as_os_str().is_empty() {
        return Err(Error::InvalidPath {
            path: dir.to_path_buf(),
            reason: "an empty path names no directory (use \".\" for the current one)",
        });
    }
    let created = create_dirs(&*options.io, dir)?;
    check_is_store(&*options.io, dir)?;
    let lock = take_lock(dir, options.lock_timeout, options.clock.now_unix_ns())?;
    Ok((lock, created))
}

fn open(dir: &Path, options: Options) -> Result<Store> {
    let (lock, created) = prepare_dir(dir, &options)?;
    let io = options.io.clone();
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

    let writer = segment_writer(&options, dir, identity.store_id, epoch, &recovered)?;
    let State { docs, ratelimits, breakers, lockouts, floors, .. } = state;
    let docs = Arc::new(RwLock::new(docs));
    let hook = DocHook { docs: docs.clone() };
    let wal = Arc::new(
        DocLog::new(writer, recovered.next_lsn, recovered.last_timestamp_unix_ns, base, hook)
            .with_max_commit_delay(options.max_commit_delay),
    );
    wal.counters.wal_bytes_on_disk.fetch_add(recovered.wal_bytes_on_disk, Ordering::Relaxed);
    wal.lock().sequenced.set_floors(floors);
    let snapshot = loaded.map(|(s, _)| s);
    let compactor =
        Arc::new(compactor(&options, dir, &wal_dir, identity.store_id, epoch, &wal, snapshot));
    let held_back = HeldBack::new(wal.clone(), ratelimits, breakers, options.clock.clone());
    let (stop, threads) = spawn_background(&options, &held_back, &compactor);
    let inner = Arc::new(Inner {
        dir: dir.to_path_buf(),
        options,
        docs,
        wal,
        compactor,
        validators: RwLock::new(Default::default()),
        recovery: stats,
        lockouts: Mutex::new(lockouts),
        held_back,
        threads: Mutex::new(threads),
        stop,
        lock,
        closed: AtomicBool::new(false),
    });
    Ok(Store { inner })
}

/// The new epoch's first segment, publishing the durable position for followers from the
/// start: everything recovery replayed (and made durable).
fn segment_writer(
    options: &Options,
    dir: &Path,
    store_id: [u8; 16],
    epoch: u64,
    recovered: &Recovered,
) -> Result<SegmentWriter> {
    let io = &options.io;
    let mark = MarkPublisher::create(&**io, dir, store_id, (epoch, recovered.next_lsn));
    let writer = SegmentWriter::create(
        io.clone(),
        &dir.join(WAL_DIR),
        store_id,
        epoch,
        recovered.next_segment_no,
        recovered.next_lsn,
        options.segment_target_bytes,
    )?;
    Ok(writer.with_mark(mark))
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

/// The background threads' stop signal: set the flag, notify the condition variable.
type StopSignal = Arc<(Mutex<bool>, Condvar)>;

/// Starts the flusher and the compactor threads; returns their stop signal and handles.
fn spawn_background(
    options: &Options,
    held_back: &HeldBack,
    compactor: &Arc<Compactor>,
) -> (StopSignal, Vec<std::thread::JoinHandle<()>>) {
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let stop = &stop;
    let flush_interval = Duration::from_millis(options.buffered_flush_interval_ms.max(1));
    let held_back = held_back.clone();
    let flusher_wal = held_back.wal.clone();
    let flusher = spawn_periodic("walden-flusher", stop.clone(), flush_interval, move || {
        // Breaker counters and violation histories whose interval has passed; a failure
        // poisons the store, and the writers see it.
        let _ = held_back.flush(false);
        if flusher_wal.has_unsynced() {
            // A failure poisons the store; writers see it on their next call.
            let _ = flusher_wal.sync();
        }
    });
    let background = compactor.clone();
    let check_interval = Duration::from_millis(options.compaction_check_interval_ms);
    let compaction = spawn_periodic("walden-compactor", stop.clone(), check_interval, move || {
        if background.should_compact() {
            // A failure is counted in stats and tried again at the next check.
            let _ = background.compact();
        }
    });
    (stop.clone(), vec![flusher, compaction])
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
