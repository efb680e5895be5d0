//! Online backup and retention of rotated backups.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Store;
use crate::error::{Error, Result};
use crate::format::files::{backup_dir_name, parse_backup_dir_name, IDENTITY_FILE, WAL_DIR};
use crate::io::{Fs, Io};
use crate::snapshot::write_snapshot;
use crate::wal::recovery::list_segments;

/// Prefix of the directories [`Store::backup_rotated`] creates; the rest of the name is the
/// backup time in milliseconds since the Unix epoch, 20 digits.
pub use crate::format::files::BACKUP_DIR_PREFIX;

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The backup directory.
    pub path: PathBuf,
    /// The backup holds the state after every record up to this LSN.
    pub lsn: u64,
    /// Files written (`STORE` and, unless the store is empty, one snapshot).
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Which rotated backups [`Store::prune_backups`] keeps. A backup is deleted only when no rule
/// keeps it; with no rule at all nothing is deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep the newest N backups.
    pub keep_last: Option<usize>,
    /// Keep backups younger than this.
    pub max_age: Option<Duration>,
}

fn copy_file(io: &dyn Io, from: &Path, to: &Path) -> Result<u64> {
    let bytes = Fs(io).read(from)?;
    let mut f = Fs(io).create_new(to)?;
    f.write_all(&bytes)?;
    f.sync_data()?;
    Ok(bytes.len() as u64)
}

impl Store {
    /// Writes a consistent copy of the store's live state, as of one LSN, into `dest` while
    /// writers continue; the copy is fsynced and opens with [`Store::open`]. `dest` must not
    /// exist or be empty ([`Error::DestinationNotEmpty`] otherwise).
    ///
    /// The copy holds the live state, not the log's history: the log is sealed (the active
    /// segment fsynced and a new one started), then the newest snapshot and the sealed
    /// segments, immutable from then on, are folded into one new snapshot written into `dest`
    /// (the same replay code recovery and compaction use). A store with 33 KB of live
    /// documents gives a backup of about that size however many old versions its log still
    /// holds. Writers only wait for the seal; compaction waits for the backup. The cost is
    /// that of a compaction: the snapshot and the sealed log are read, and the live state is
    /// held a second time in memory while the copy is written.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let backups = tempfile::tempdir().unwrap();
    /// use walden::Store;
    /// let store = Store::open(dir.path().join("live"))?;
    /// for n in 0..100 {
    ///     store.put("counters", "hits", &n)?; // 100 versions in the log
    /// }
    /// let report = store.backup_to(backups.path().join("b1"))?;
    /// let copy = Store::open(&report.path)?;
    /// let hits = copy.get::<i32>("counters", "hits")?.unwrap();
    /// assert_eq!((hits.value, hits.version, report.lsn), (99, 100, 100));
    /// # Ok::<(), walden::Error>(())
    /// ```
    pub fn backup_to(&self, dest: impl AsRef<Path>) -> Result<BackupReport> {
        self.check_open()?;
        let dest = dest.as_ref();
        let io = &*self.inner.options.io;
        match io.list_dir(dest) {
            Ok(names) if !names.is_empty() => {
                return Err(Error::DestinationNotEmpty { path: dest.to_path_buf() });
            }
            _ => {}
        }
        let compactor = &self.inner.compactor;
        let serial = compactor.serial.lock();
        let current = compactor.current.lock().clone();
        let (active, sealed_lsn) = self.inner.wal.seal()?;
        let dest_wal = dest.join(WAL_DIR);
        Fs(io).create_dir_all(&dest_wal)?;
        let mut files = 0;
        let mut bytes = 0;
        bytes += copy_file(io, &self.inner.dir.join(IDENTITY_FILE), &dest.join(IDENTITY_FILE))?;
        files += 1;
        let base_lsn = current.as_ref().map_or(0, |c| c.lsn);
        if sealed_lsn > base_lsn {
            let segs: Vec<(u64, PathBuf)> = list_segments(io, &self.inner.dir.join(WAL_DIR))?
                .into_iter()
                .filter(|(no, _)| *no < active)
                .collect();
            let (state, _) = compactor.fold(current.as_ref(), sealed_lsn, &segs)?;
            let source = state.snapshot_source(self.inner.options.clock.now_unix_ns());
            let info =
                write_snapshot(io, dest, compactor.store_id, compactor.epoch, sealed_lsn, &source)?;
            bytes += info.bytes;
            files += 1;
        } else if let Some(snap) = current.as_ref() {
            // Nothing since the newest snapshot: it is the live state already.
            let name = snap.path.file_name().expect("snapshot has a name");
            bytes += copy_file(io, &snap.path, &dest.join(name))?;
            files += 1;
        }
        drop(serial);
        Fs(io).sync_dir(&dest_wal)?;
        Fs(io).sync_dir(dest)?;
        if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            Fs(io).sync_dir(parent)?;
        }
        tracing::info!(
            target: "walden",
            path = %dest.display(),
            lsn = sealed_lsn,
            bytes,
            "backup written"
        );
        Ok(BackupReport { path: dest.to_path_buf(), lsn: sealed_lsn, files, bytes })
    }

    /// Backs up into a new directory `parent/backup-<unix ms>`, the time read from the store's
    /// clock ([`Options::clock`](crate::Options::clock)); see [`Store::prune_backups`].
    pub fn backup_rotated(&self, parent: impl AsRef<Path>) -> Result<BackupReport> {
        let ms = self.inner.options.clock.now_unix_ns() / 1_000_000;
        self.backup_to(parent.as_ref().join(backup_dir_name(ms)))
    }

    /// Deletes the rotated backups under `parent` (directories named `backup-<unix ms>`, as
    /// [`Store::backup_rotated`] makes them) that `retention` does not keep, judged by the
    /// store's clock (the one `backup_rotated` names backups with); returns the deleted
    /// directories, oldest first. Other entries are untouched. A rule that keeps nothing
    /// (`keep_last: Some(0)`, `max_age: Some(Duration::ZERO)`) is [`Error::InvalidArgument`];
    /// with no rule at all nothing is deleted.
    ///
    /// ```
    /// use std::time::Duration;
    /// use walden::{Retention, Store};
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let parent = tempfile::tempdir().unwrap();
    /// let store = Store::open(dir.path())?;
    /// store.backup_rotated(parent.path())?;
    /// // The rule the users we replace had: ten backups, and a week of them.
    /// let rule = Retention { keep_last: Some(10), max_age: Some(Duration::from_secs(7 * 86_400)) };
    /// let deleted = store.prune_backups(parent.path(), rule)?;
    /// assert!(deleted.is_empty());
    /// # Ok::<(), walden::Error>(())
    /// ```
    pub fn prune_backups(
        &self,
        parent: impl AsRef<Path>,
        retention: Retention,
    ) -> Result<Vec<PathBuf>> {
        let now_ms = self.inner.options.clock.now_unix_ns() / 1_000_000;
        prune(&*self.inner.options.io, parent.as_ref(), retention, now_ms)
    }
}

impl Retention {
    /// A rule that would keep nothing is a mistake, not a request to delete every backup.
    fn check(&self) -> Result<()> {
        if self.keep_last == Some(0) {
            return Err(Error::InvalidArgument {
                argument: "Retention::keep_last",
                value: "Some(0)".to_owned(),
                accepted: "None or Some(n) with n >= 1 (Some(0) would keep no backup)".to_owned(),
            });
        }
        if self.max_age == Some(Duration::ZERO) {
            return Err(Error::InvalidArgument {
                argument: "Retention::max_age",
                value: "Some(0s)".to_owned(),
                accepted: "None or a positive duration (zero would keep no backup)".to_owned(),
            });
        }
        Ok(())
    }
}

fn prune(io: &dyn Io, parent: &Path, retention: Retention, now_ms: u64) -> Result<Vec<PathBuf>> {
    retention.check()?;
    if retention.keep_last.is_none() && retention.max_age.is_none() {
        return Ok(Vec::new());
    }
    let mut backups: Vec<(u64, PathBuf)> = Vec::new();
    let fs = Fs(io);
    for name in fs.list_dir(parent)? {
        let Some(ms) = parse_backup_dir_name(&name) else { continue };
        let path = parent.join(&name);
        if io.is_dir(&path) {
            backups.push((ms, path));
        }
    }
    backups.sort();
    let newest_kept = backups.len().saturating_sub(retention.keep_last.unwrap_or(0));
    let mut deleted = Vec::new();
    for (i, (ms, path)) in backups.into_iter().enumerate() {
        let kept_by_count = retention.keep_last.is_some() && i >= newest_kept;
        let kept_by_age =
            retention.max_age.is_some_and(|age| now_ms.saturating_sub(ms) < age.as_millis() as u64);
        if !kept_by_count && !kept_by_age {
            fs.remove_dir_all(&path)?;
            tracing::info!(target: "walden", path = %path.display(), "old backup deleted");
            deleted.push(path);
        }
    }
    if !deleted.is_empty() {
        fs.sync_dir(parent)?;
    }
    Ok(deleted)
}
