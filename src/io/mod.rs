//! The I/O seam: every file operation walden performs goes through [`Io`].
//!
//! [`RealIo`] is the operating system. [`FaultyIo`] wraps it and fails chosen operations
//! deterministically (EIO, ENOSPC, short and torn writes, failing fsyncs) so tests can walk a
//! failure through every step of a protocol. Pass one in [`Options::io`](crate::Options::io).

mod fault;
mod group;
mod lock;
mod mark;
mod real;
mod seam;
mod sim;

pub use fault::{Fault, FaultError, FaultOp, FaultyIo};
pub use group::GroupReadableIo;
pub use lock::LockHolder;
pub(crate) use lock::StoreLock;
pub use mark::IoMarkFile;
pub use real::RealIo;
pub(crate) use seam::{Fs, IoError, SeamFile};
pub use sim::{CrashPoint, SimIo, SimSync, StateChoice, SIM_PAGE_BYTES};

use std::fmt;
use std::io;
use std::ops::Deref;
use std::path::Path;

/// The file operation that failed, carried by [`Error::Io`](crate::Error::Io) and
/// [`PoisonCause`](crate::PoisonCause).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IoOp {
    /// Creating a directory.
    CreateDir,
    /// Listing a directory.
    ListDir,
    /// Opening or creating a file.
    Open,
    /// Reading or mapping a file.
    Read,
    /// Writing to a file.
    Write,
    /// `fdatasync` of a file.
    Sync,
    /// `fsync` of a directory.
    SyncDir,
    /// Renaming a file.
    Rename,
    /// Removing a file.
    Remove,
    /// Truncating a file.
    Truncate,
    /// Taking the store's lock.
    Lock,
}

impl fmt::Display for IoOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoOp::CreateDir => "create directory",
            IoOp::ListDir => "list directory",
            IoOp::Open => "open",
            IoOp::Read => "read",
            IoOp::Write => "write",
            IoOp::Sync => "fsync",
            IoOp::SyncDir => "fsync directory",
            IoOp::Rename => "rename",
            IoOp::Remove => "remove",
            IoOp::Truncate => "truncate",
            IoOp::Lock => "lock",
        })
    }
}

/// The bytes of a whole file, memory-mapped or read into memory.
pub enum FileBytes {
    /// A read-only memory map.
    Mapped(memmap2::Mmap),
    /// Bytes read into memory (empty files, and fault-injected reads).
    Owned(Vec<u8>),
}

impl Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m,
            FileBytes::Owned(v) => v,
        }
    }
}

impl fmt::Debug for FileBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileBytes({} bytes)", self.len())
    }
}

/// A file opened for appending.
pub trait IoFile: Send {
    /// Writes some of `buf` at the end of the file, returning how much (like `write(2)`).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// `fdatasync`: makes the written bytes durable.
    fn sync_data(&mut self) -> io::Result<()>;
    /// Writes all of `buf`, looping over short writes. A zero-length write is an error.
    fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write(buf) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "wrote zero bytes")),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Every file-system operation walden performs.
pub trait Io: Send + Sync + fmt::Debug {
    /// Creates a directory and its parents (mode 0700 for the ones created).
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Names of the entries of a directory.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// The whole content of a file.
    fn read(&self, path: &Path) -> io::Result<FileBytes>;
    /// Creates a new file (mode 0600) for writing; fails if it exists.
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn IoFile>>;
    /// Opens an existing file for appending.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn IoFile>>;
    /// Atomically renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Cuts a file to `len` bytes and fsyncs it.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// fsyncs a directory, making creations, renames and removals in it durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// `fdatasync` of an existing file without writing to it: recovery makes durable what it
    /// replayed. The default opens it for appending and syncs that handle.
    fn sync_file(&self, path: &Path) -> io::Result<()> {
        self.open_append(path)?.sync_data()
    }
    /// The length of a file, in bytes. The default asks the operating system.
    fn file_len(&self, path: &Path) -> io::Result<u64> {
        std::fs::metadata(path).map(|m| m.len())
    }
    /// Removes a directory and everything in it. The default asks the operating system.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }
    /// Whether `path` is a directory (`false` if it does not exist). The default asks the
    /// operating system.
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
    /// Up to `len` bytes of `path` from `offset` (`pread`; fewer at the end of the file). A
    /// reader of a file another process appends to, truncates or removes uses this rather than
    /// a memory map, which would raise `SIGBUS` on a truncated page. The default asks the
    /// operating system.
    fn read_at(&self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        mark::read_at(path, offset, len)
    }
    /// Writes `bytes` to `tmp` (mode 0600), renames it to `path` and returns `path` open for
    /// in-place rewrites, with no fsync at any step: for advisory files that recovery never
    /// reads. The default asks the operating system, so fault injection counts none of it.
    fn create_mark(
        &self,
        path: &Path,
        tmp: &Path,
        bytes: &[u8],
    ) -> io::Result<Box<dyn IoMarkFile>> {
        mark::create_mark(path, tmp, bytes)
    }
}
