//! Deterministic fault injection for tests.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{FileBytes, Io, IoFile, RealIo};

/// An operation [`FaultyIo`] counts and can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultOp {
    /// [`IoFile::write`].
    Write,
    /// [`IoFile::sync_data`].
    Sync,
    /// [`Io::sync_dir`].
    SyncDir,
    /// [`Io::create_new`] and [`Io::open_append`].
    Open,
    /// [`Io::read`].
    Read,
    /// [`Io::rename`].
    Rename,
    /// [`Io::remove_file`].
    Remove,
    /// [`Io::truncate`].
    Truncate,
    /// [`Io::create_dir_all`] and [`Io::list_dir`].
    Dir,
}

/// What an injected fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultError {
    /// Fail with `EIO`.
    Eio,
    /// Fail with `ENOSPC` (disk full).
    Enospc,
    /// (Writes only) write just the first `bytes` bytes and report that short count, as `write(2)`
    /// may; not an error, the caller must loop.
    ShortWrite {
        /// Bytes actually written.
        bytes: usize,
    },
    /// (Writes only) write the first `bytes` bytes, then fail with `EIO`: a torn write.
    TornWrite {
        /// Bytes that reach the file before the error.
        bytes: usize,
    },
}

/// One planned fault: the `nth` (1-based) operation of kind `op` fails with `error`, and with
/// `sticky` every later one of that kind fails too (a disk that stays broken).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// Which operation.
    pub op: FaultOp,
    /// Which occurrence of it, counting from 1 since the [`FaultyIo`] was made or reset.
    pub nth: u64,
    /// What happens.
    pub error: FaultError,
    /// Whether every later operation of this kind fails as well.
    pub sticky: bool,
}

#[derive(Debug, Default)]
struct Plan {
    faults: Vec<Fault>,
    counts: HashMap<FaultOp, u64>,
    fired: Vec<Fault>,
}

impl Plan {
    /// Counts one `op` and returns the fault to inject, if any.
    fn next(&mut self, op: FaultOp) -> Option<FaultError> {
        let n = self.counts.entry(op).or_insert(0);
        *n += 1;
        let n = *n;
        let hit = self
            .faults
            .iter()
            .find(|f| f.op == op && (f.nth == n || (f.sticky && n > f.nth)))
            .copied()?;
        self.fired.push(hit);
        Some(hit.error)
    }
}

fn os_error(e: FaultError) -> io::Error {
    const EIO: i32 = 5;
    const ENOSPC: i32 = 28;
    match e {
        FaultError::Enospc => io::Error::from_raw_os_error(ENOSPC),
        _ => io::Error::from_raw_os_error(EIO),
    }
}

/// An [`Io`] over the real file system that fails planned operations.
///
/// ```
/// use walden::io::{Fault, FaultError, FaultOp, FaultyIo};
/// let io = FaultyIo::new();
/// io.inject(Fault { op: FaultOp::Sync, nth: 3, error: FaultError::Eio, sticky: false });
/// assert_eq!(io.count(FaultOp::Sync), 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct FaultyIo {
    plan: Arc<Mutex<Plan>>,
}

impl FaultyIo {
    /// A faulty I/O layer with no faults planned yet.
    pub fn new() -> FaultyIo {
        FaultyIo::default()
    }

    /// Plans one more fault.
    pub fn inject(&self, fault: Fault) {
        self.plan.lock().faults.push(fault);
    }

    /// Removes all planned faults and zeroes the counters.
    pub fn reset(&self) {
        *self.plan.lock() = Plan::default();
    }

    /// How many operations of kind `op` have been attempted so far.
    pub fn count(&self, op: FaultOp) -> u64 {
        self.plan.lock().counts.get(&op).copied().unwrap_or(0)
    }

    /// The faults that have fired so far, in order.
    pub fn fired(&self) -> Vec<Fault> {
        self.plan.lock().fired.clone()
    }

    fn check(&self, op: FaultOp) -> io::Result<()> {
        match self.plan.lock().next(op) {
            Some(e) => Err(os_error(e)),
            None => Ok(()),
        }
    }
}

struct FaultyFile {
    inner: Box<dyn IoFile>,
    plan: Arc<Mutex<Plan>>,
}

impl IoFile for FaultyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let fault = self.plan.lock().next(FaultOp::Write);
        match fault {
            None => self.inner.write(buf),
            Some(FaultError::ShortWrite { bytes }) => {
                let n = bytes.clamp(1, buf.len().max(1)).min(buf.len());
                self.inner.write_all(&buf[..n])?;
                Ok(n)
            }
            Some(FaultError::TornWrite { bytes }) => {
                self.inner.write_all(&buf[..bytes.min(buf.len())])?;
                Err(os_error(FaultError::Eio))
            }
            Some(e) => Err(os_error(e)),
        }
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let fault = self.plan.lock().next(FaultOp::Sync);
        match fault {
            None => self.inner.sync_data(),
            Some(e) => Err(os_error(e)),
        }
    }
}

impl Io for FaultyIo {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.check(FaultOp::Dir)?;
        RealIo.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.check(FaultOp::Dir)?;
        RealIo.list_dir(path)
    }
    fn read(&self, path: &Path) -> io::Result<FileBytes> {
        self.check(FaultOp::Read)?;
        RealIo.read(path)
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn IoFile>> {
        self.check(FaultOp::Open)?;
        Ok(Box::new(FaultyFile { inner: RealIo.create_new(path)?, plan: self.plan.clone() }))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn IoFile>> {
        self.check(FaultOp::Open)?;
        Ok(Box::new(FaultyFile { inner: RealIo.open_append(path)?, plan: self.plan.clone() }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(FaultOp::Rename)?;
        RealIo.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.check(FaultOp::Remove)?;
        RealIo.remove_file(path)
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.check(FaultOp::Truncate)?;
        RealIo.truncate(path, len)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.check(FaultOp::SyncDir)?;
        RealIo.sync_dir(path)
    }
}
