//! The seam as walden calls it: every operation of an [`Io`], with a failure that carries the
//! operation and the path, so callers write `?` and never rebuild that context.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::{FileBytes, Io, IoFile, IoOp};

/// A failed file operation: what, on which path, and the OS error.
#[derive(Debug)]
pub(crate) struct IoError {
    pub op: IoOp,
    pub path: PathBuf,
    pub source: io::Error,
}

impl IoError {
    pub(crate) fn new(op: IoOp, path: &Path, source: io::Error) -> IoError {
        IoError { op, path: path.to_path_buf(), source }
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.op, self.path.display(), self.source)
    }
}

type Done<T> = Result<T, IoError>;

/// An [`Io`] whose failures name their operation and path.
#[derive(Clone, Copy)]
pub(crate) struct Fs<'a>(pub &'a dyn Io);

impl Fs<'_> {
    pub fn create_dir_all(self, path: &Path) -> Done<()> {
        self.0.create_dir_all(path).map_err(|e| IoError::new(IoOp::CreateDir, path, e))
    }

    pub fn list_dir(self, path: &Path) -> Done<Vec<String>> {
        self.0.list_dir(path).map_err(|e| IoError::new(IoOp::ListDir, path, e))
    }

    pub fn read(self, path: &Path) -> Done<FileBytes> {
        self.0.read(path).map_err(|e| IoError::new(IoOp::Read, path, e))
    }

    pub fn create_new(self, path: &Path) -> Done<SeamFile> {
        let file = self.0.create_new(path).map_err(|e| IoError::new(IoOp::Open, path, e))?;
        Ok(SeamFile { file, path: path.to_path_buf() })
    }

    /// Renames `from` to `to`; a failure names `to`.
    pub fn rename(self, from: &Path, to: &Path) -> Done<()> {
        self.0.rename(from, to).map_err(|e| IoError::new(IoOp::Rename, to, e))
    }

    pub fn remove_file(self, path: &Path) -> Done<()> {
        self.0.remove_file(path).map_err(|e| IoError::new(IoOp::Remove, path, e))
    }

    pub fn remove_dir_all(self, path: &Path) -> Done<()> {
        self.0.remove_dir_all(path).map_err(|e| IoError::new(IoOp::Remove, path, e))
    }

    pub fn truncate(self, path: &Path, len: u64) -> Done<()> {
        self.0.truncate(path, len).map_err(|e| IoError::new(IoOp::Truncate, path, e))
    }

    pub fn sync_file(self, path: &Path) -> Done<()> {
        self.0.sync_file(path).map_err(|e| IoError::new(IoOp::Sync, path, e))
    }

    pub fn sync_dir(self, path: &Path) -> Done<()> {
        self.0.sync_dir(path).map_err(|e| IoError::new(IoOp::SyncDir, path, e))
    }
}

/// A file created through [`Fs`]; its failures name the operation and the file.
pub(crate) struct SeamFile {
    file: Box<dyn IoFile>,
    path: PathBuf,
}

impl SeamFile {
    pub fn write_all(&mut self, buf: &[u8]) -> Done<()> {
        self.file.write_all(buf).map_err(|e| IoError::new(IoOp::Write, &self.path, e))
    }

    pub fn sync_data(&mut self) -> Done<()> {
        self.file.sync_data().map_err(|e| IoError::new(IoOp::Sync, &self.path, e))
    }
}
