//! The store's `LOCK`: one opener at a time, across processes (`File::try_lock`).

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{IoError, IoOp};
use crate::limits::LOCK_POLL_INTERVAL_MS;

/// The held lock; released by [`StoreLock::unlock`] or when dropped.
#[derive(Debug)]
pub(crate) struct StoreLock(File);

impl StoreLock {
    /// Takes the lock file at `path` (created with mode 0600), waiting up to `timeout` while
    /// another opener holds it. `Ok(None)`: still held by another opener when time ran out.
    pub fn acquire(path: &Path, timeout: Option<Duration>) -> Result<Option<StoreLock>, IoError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| IoError::new(IoOp::Lock, path, e))?;
        let started = Instant::now();
        let deadline = timeout.map(|t| started + t);
        let mut waiting = false;
        loop {
            match file.try_lock() {
                Ok(()) => {
                    if waiting {
                        tracing::info!(
                            target: "walden",
                            path = %path.display(),
                            waited_ms = started.elapsed().as_millis() as u64,
                            "store lock taken after waiting"
                        );
                    }
                    return Ok(Some(StoreLock(file)));
                }
                Err(TryLockError::WouldBlock) => match deadline {
                    Some(d) if Instant::now() < d => {
                        if !waiting {
                            waiting = true;
                            tracing::info!(
                                target: "walden",
                                path = %path.display(),
                                timeout_ms = timeout.map_or(0, |t| t.as_millis() as u64),
                                "store is locked by another opener; waiting"
                            );
                        }
                        std::thread::sleep(Duration::from_millis(LOCK_POLL_INTERVAL_MS))
                    }
                    _ => {
                        if waiting {
                            tracing::warn!(
                                target: "walden",
                                path = %path.display(),
                                waited_ms = started.elapsed().as_millis() as u64,
                                "gave up waiting for the store lock"
                            );
                        }
                        return Ok(None);
                    }
                },
                Err(TryLockError::Error(e)) => return Err(IoError::new(IoOp::Lock, path, e)),
            }
        }
    }

    /// Releases the lock now (the store is closed; the next opener may come in).
    pub fn unlock(&self) {
        let _ = self.0.unlock();
    }
}

impl Drop for StoreLock {
    /// Unlocks explicitly instead of relying on `close(2)`: a `flock` belongs to the open file
    /// description, and a child process forked by another thread holds a copy of the
    /// descriptor until its `exec`, so closing ours alone could leave the store locked for a
    /// moment after the last handle was dropped.
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}
