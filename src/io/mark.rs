//! Reading at an offset and the small in-place file of the durable position: the default
//! implementations of [`Io::read_at`](super::Io::read_at) and
//! [`Io::create_mark`](super::Io::create_mark) on the operating system.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// A small file rewritten in place, never fsynced: the durable position the writer publishes
/// for followers (see [`Io::create_mark`](super::Io::create_mark)).
pub trait IoMarkFile: Send {
    /// Writes all of `buf` at `offset` (`pwrite`).
    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()>;
}

/// `pread` of up to `len` bytes of `path` from `offset`, looping over short reads; fewer bytes
/// only at the end of the file.
pub(super) fn read_at(path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

struct RealMark(File);

impl IoMarkFile for RealMark {
    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
}

/// See [`Io::create_mark`].
pub(super) fn create_mark(
    path: &Path,
    tmp: &Path,
    bytes: &[u8],
) -> io::Result<Box<dyn IoMarkFile>> {
    match fs::remove_file(tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(tmp)?;
    f.write_all(bytes)?;
    fs::rename(tmp, path)?;
    Ok(Box::new(RealMark(f)))
}
