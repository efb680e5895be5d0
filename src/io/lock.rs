//! The store's `LOCK`: one opener at a time, across processes (`File::try_lock`), and who that
//! opener is.
//!
//! The lock is the advisory lock on the file; its content only names the holder, so that an
//! opener turned away can say who has the store: one line of text,
//! `walden-lock pid=<pid> host=<host> since_unix_ns=<ns>`, rewritten by every opener as soon as it
//! holds the lock. It is never fsynced (after a crash the lock is free whatever the file says).

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use super::{IoError, IoOp};
use crate::limits::LOCK_POLL_INTERVAL_MS;

/// Who holds a store's `LOCK`, as the holder wrote it there (carried by
/// [`Error::Locked`](crate::Error::Locked)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// Process id of the holder.
    pub pid: u32,
    /// Host name of the machine it runs on.
    pub host: String,
    /// When it took the lock, ns since the Unix epoch (by its clock).
    pub since_unix_ns: u64,
}

const LOCK_TAG: &str = "walden-lock";
/// Longest `LOCK` content read back; anything longer is not ours.
const MAX_LOCK_CONTENT_BYTES: u64 = 512;

impl LockHolder {
    /// This process, taking the lock at `now_unix_ns`.
    pub(crate) fn this_process(now_unix_ns: u64) -> LockHolder {
        let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .map(|h| h.trim().replace(|c: char| c.is_whitespace() || c == '=', "_"))
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".to_owned());
        LockHolder { pid: std::process::id(), host, since_unix_ns: now_unix_ns }
    }

    fn encode(&self) -> String {
        format!(
            "{LOCK_TAG} pid={} host={} since_unix_ns={}\n",
            self.pid, self.host, self.since_unix_ns
        )
    }

    /// Parses what [`LockHolder::encode`] wrote; `None` for anything else (an empty `LOCK`
    /// of an older build, or of an opener that has not written it yet).
    fn parse(s: &str) -> Option<LockHolder> {
        let mut words = s.trim_end_matches('\n').split(' ');
        if words.next()? != LOCK_TAG {
            return None;
        }
        let mut field = |name: &str| words.next()?.strip_prefix(name)?.strip_prefix('=');
        let pid = field("pid")?.parse().ok()?;
        let host = field("host")?.to_owned();
        let since_unix_ns = field("since_unix_ns")?.parse().ok()?;
        Some(LockHolder { pid, host, since_unix_ns })
    }
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "process {} on host {}, since {} ns after the Unix epoch",
            self.pid, self.host, self.since_unix_ns
        )
    }
}

/// The held lock; released by [`StoreLock::unlock`] or when dropped.
#[derive(Debug)]
pub(crate) struct StoreLock(File);

impl StoreLock {
    /// Takes the lock file at `path` (created with mode 0600), waiting up to `timeout` while
    /// another opener holds it, and writes `holder` into it. `Ok(Err(holder))`: still held by
    /// another opener when time ran out, with who that is if it says.
    pub fn acquire(
        path: &Path,
        timeout: Option<Duration>,
        holder: &LockHolder,
    ) -> Result<Result<StoreLock, Option<LockHolder>>, IoError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| IoError::new(IoOp::Lock, path, e))?;
        // A timeout too long to add to now (`Duration::MAX`) has no deadline: wait forever.
        let started = Instant::now();
        let deadline = timeout.map(|t| started.checked_add(t));
        let mut waiting = false;
        loop {
            match file.try_lock() {
                Ok(()) => {
                    if waiting {
                        trace_taken(path, started);
                    }
                    // Only a label for openers turned away: a failure to write it is no
                    // reason to refuse the store, and the lock itself is held.
                    let _ = file
                        .set_len(0)
                        .and_then(|()| file.write_all_at(holder.encode().as_bytes(), 0));
                    return Ok(Ok(StoreLock(file)));
                }
                Err(TryLockError::WouldBlock) => match deadline {
                    Some(d) if d.is_none_or(|d| Instant::now() < d) => {
                        if !waiting {
                            waiting = true;
                            trace_waiting(path, timeout);
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
                        return Ok(Err(read_holder(&file)));
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

fn trace_taken(path: &Path, started: Instant) {
    tracing::info!(
        target: "walden",
        path = %path.display(),
        waited_ms = started.elapsed().as_millis() as u64,
        "store lock taken after waiting"
    );
}

fn trace_waiting(path: &Path, timeout: Option<Duration>) {
    tracing::info!(
        target: "walden",
        path = %path.display(),
        timeout_ms = timeout.map_or(0, |t| t.as_millis() as u64),
        "store is locked by another opener; waiting"
    );
}

fn read_holder(file: &File) -> Option<LockHolder> {
    let mut s = String::new();
    file.take(MAX_LOCK_CONTENT_BYTES).read_to_string(&mut s).ok()?;
    LockHolder::parse(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_round_trips_and_anything_else_is_unknown() {
        let h = LockHolder { pid: 42, host: "db-1".into(), since_unix_ns: 7 };
        assert_eq!(LockHolder::parse(&h.encode()), Some(h));
        for bad in ["", "\n", "walden-lock pid=x host=a since_unix_ns=1", "pid=1", "walden-lock"] {
            assert_eq!(LockHolder::parse(bad), None, "{bad:?}");
        }
        let me = LockHolder::this_process(1);
        assert_eq!(LockHolder::parse(&me.encode()), Some(me));
    }
}
