//! Online backup and retention of rotated backups.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Store;
use crate::error::{Error, Result};
use crate::format::files::{backup_dir_name, parse_backup_dir_name, IDENTITY_FILE, WAL_DIR};
use crate::io::{Fs, Io, RealIo};
use crate::wal::recovery::list_segments;

/// Prefix of the directories [`Store::backup_rotated`] creates; the rest of the name is the
/// backup time in milliseconds since the Unix epoch, 20 digits.
pub use crate::format::files::BACKUP_DIR_PREFIX;

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The backup directory.
    pub path: PathBuf,
    /// The backup holds every record up to this LSN.
    pub lsn: u64,
    /// Files copied.
    pub files: u64,
    /// Bytes copied.
    pub bytes: u64,
}

/// Which rotated backups [`prune_backups`] keeps. A backup is deleted only when no rule
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
    /// Writes a consistent copy of the store, as of one LSN, into `dest` while writers continue;
    /// the copy is fsynced and opens with [`Store::open`]. `dest` must not exist or be empty
    /// ([`Error::DestinationNotEmpty`] otherwise).
    ///
    /// The log is sealed (the active segment fsynced and a new one started); the newest
    /// snapshot and the sealed segments are immutable from then on and are copied while
    /// compaction waits. Writers only wait for the seal, not for the copy.
    pub fn backup_to(&self, dest: impl AsRef<Path>) -> Result<BackupReport> {
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
        if let Some(snap) = current.as_ref() {
            let name = snap.path.file_name().expect("snapshot has a name");
            bytes += copy_file(io, &snap.path, &dest.join(name))?;
            files += 1;
        }
        for (no, path) in list_segments(io, &self.inner.dir.join(WAL_DIR))? {
            if no < active {
                let name = path.file_name().expect("segment has a name");
                bytes += copy_file(io, &path, &dest_wal.join(name))?;
                files += 1;
            }
        }
        drop(serial);
        Fs(io).sync_dir(&dest_wal)?;
        Fs(io).sync_dir(dest)?;
        if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            Fs(io).sync_dir(parent)?;
        }
        Ok(BackupReport { path: dest.to_path_buf(), lsn: sealed_lsn, files, bytes })
    }

    /// Backs up into a new directory `parent/backup-<unix ms>` (see [`prune_backups`]).
    pub fn backup_rotated(&self, parent: impl AsRef<Path>) -> Result<BackupReport> {
        let ms = self.inner.options.clock.now_unix_ns() / 1_000_000;
        self.backup_to(parent.as_ref().join(backup_dir_name(ms)))
    }
}

/// Deletes the rotated backups under `parent` (directories named `backup-<unix ms>`, as
/// [`Store::backup_rotated`] makes them) that `retention` does not keep, judged at
/// `now_unix_ns`; returns the deleted directories, oldest first. Other entries are untouched.
///
/// ```
/// use std::time::Duration;
/// use walden::{prune_backups, Retention};
/// # let parent = tempfile::tempdir().unwrap();
/// // The rule the users we replace had: ten backups, and a week of them.
/// let rule = Retention { keep_last: Some(10), max_age: Some(Duration::from_secs(7 * 86_400)) };
/// let deleted = prune_backups(parent.path(), rule, 0)?;
/// assert!(deleted.is_empty());
/// # Ok::<(), walden::Error>(())
/// ```
pub fn prune_backups(
    parent: &Path,
    retention: Retention,
    now_unix_ns: u64,
) -> Result<Vec<PathBuf>> {
    if retention.keep_last.is_none() && retention.max_age.is_none() {
        return Ok(Vec::new());
    }
    let mut backups: Vec<(u64, PathBuf)> = Vec::new();
    let fs = Fs(&RealIo);
    for name in fs.list_dir(parent)? {
        let Some(ms) = parse_backup_dir_name(&name) else { continue };
        let path = parent.join(&name);
        if RealIo.is_dir(&path) {
            backups.push((ms, path));
        }
    }
    backups.sort();
    let now_ms = now_unix_ns / 1_000_000;
    let newest_kept = backups.len().saturating_sub(retention.keep_last.unwrap_or(0));
    let mut deleted = Vec::new();
    for (i, (ms, path)) in backups.into_iter().enumerate() {
        let kept_by_count = retention.keep_last.is_some() && i >= newest_kept;
        let kept_by_age =
            retention.max_age.is_some_and(|age| now_ms.saturating_sub(ms) < age.as_millis() as u64);
        if !kept_by_count && !kept_by_age {
            fs.remove_dir_all(&path)?;
            deleted.push(path);
        }
    }
    if !deleted.is_empty() {
        fs.sync_dir(parent)?;
    }
    Ok(deleted)
}
