//! The opt-in group-readable mode: directories 0750 and files 0640 instead of 0700 and 0600,
//! so processes of the store's group (a dashboard, an admin command running as another user)
//! can follow the store read-only, while only the owner can write.

use std::fs::{self, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use super::{FileBytes, Io, IoFile, IoMarkFile};

/// Mode of a directory a group-readable store creates.
const GROUP_DIR_MODE: u32 = 0o750;
/// Mode of a file a group-readable store creates.
const GROUP_FILE_MODE: u32 = 0o640;

/// An [`Io`] that gives the directories and files it creates group read access (0750, 0640)
/// and otherwise passes everything to the [`Io`] it wraps. Chosen by
/// [`Options::group_readable`](crate::Options::group_readable). Files an earlier open created
/// keep their mode (`chmod -R g+rX` converts an existing store).
#[derive(Debug)]
pub struct GroupReadableIo(pub Arc<dyn Io>);

fn chmod(path: &Path, mode: u32) -> io::Result<()> {
    fs::set_permissions(path, Permissions::from_mode(mode))
}

impl Io for GroupReadableIo {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.0.create_dir_all(path)?;
        chmod(path, GROUP_DIR_MODE)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.0.list_dir(path)
    }
    fn read(&self, path: &Path) -> io::Result<FileBytes> {
        self.0.read(path)
    }
    fn create_new(&self, path: &Path) -> io::Result<Box<dyn IoFile>> {
        let f = self.0.create_new(path)?;
        chmod(path, GROUP_FILE_MODE)?;
        Ok(f)
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn IoFile>> {
        self.0.open_append(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.0.remove_file(path)
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.0.truncate(path, len)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.0.sync_dir(path)
    }
    fn file_len(&self, path: &Path) -> io::Result<u64> {
        self.0.file_len(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.0.remove_dir_all(path)
    }
    fn is_dir(&self, path: &Path) -> bool {
        self.0.is_dir(path)
    }
    fn read_at(&self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.0.read_at(path, offset, len)
    }
    fn create_mark(
        &self,
        path: &Path,
        tmp: &Path,
        bytes: &[u8],
    ) -> io::Result<Box<dyn IoMarkFile>> {
        let f = self.0.create_mark(path, tmp, bytes)?;
        chmod(path, GROUP_FILE_MODE)?;
        Ok(f)
    }
}
