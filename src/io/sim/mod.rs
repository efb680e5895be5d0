//! A power-loss simulator: an in-memory [`Io`] that knows what a power cut would keep.
//!
//! In the spirit of SQLite's crash-test VFS and of ALICE (Pillai et al., OSDI'14), [`SimIo`]
//! keeps two pictures of every file and directory: what the running process sees (the page
//! cache) and what is durable on the medium. The rules are the ones `docs/FORMAT.md` assumes of
//! the media, taken at their weakest:
//!
//! - bytes a `write` put into a file are durable once an `fdatasync` of that file returned;
//!   before that, each 4 KiB page they touched may be on the medium in any version it had since
//!   the last sync (never written, or as it was after any one of the writes that touched it),
//!   independently of every other page — a later page may survive where an earlier one did not;
//! - a create, rename or unlink is durable once an `fsync` of its directory returned; before
//!   that, each one may or may not have happened, independently of the others (a rename is
//!   atomic: the old name or the new one, never both or neither);
//! - a directory whose own entry was lost takes everything below it along.
//!
//! Every mutating operation is counted ([`SimIo::op_count`]); with recording on
//! ([`SimIo::record`]) the simulator captures, before each one, a [`CrashPoint`]: the durable
//! state plus everything pending at that instant. A crash point enumerates or samples the disks a
//! power cut there can leave ([`CrashPoint::space`], [`CrashPoint::disk`]), each of which opens
//! as a fresh [`SimIo`]. [`SimIo::kill`] is `kill -9`: the process's handles die, the page
//! cache (and so everything pending) stays.
//!
//! For negative controls, [`SimIo::skip_sync`] turns chosen syncs into no-ops that report
//! success ([`SimSync`]); the test suite shows the simulator catching each one.
//!
//! Not modelled: the store's `LOCK` (taken outside this seam), sector tearing inside a page,
//! bit rot (tests inject that themselves), and cross-directory renames (walden makes none; the
//! simulator refuses them with `EXDEV`). The directories above the base are durable by
//! assumption: syncing them succeeds and changes nothing.

mod crash;
mod disk;

pub use crash::{CrashPoint, StateChoice};
pub use disk::{SimIo, SimSync, SIM_PAGE_BYTES};

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{FileBytes, Io, IoFile};
use disk::{
    dead, not_found, DirNode, DirOp, Disk, FileNode, Image, Node, NodeId, PendingWrite, EXDEV, ROOT,
};

impl SimIo {
    /// An empty simulated machine whose only (durable) directory is `base`; every path used
    /// must lie below it.
    pub fn new(base: impl Into<PathBuf>) -> SimIo {
        let disk = Disk::new(base.into(), vec![Node::Dir(DirNode::default())]);
        SimIo { disk: Arc::new(Mutex::new(disk)), generation: 0 }
    }

    /// Mutating operations performed so far (writes, syncs, creates, renames, removals,
    /// truncations, directory creations), by every generation.
    pub fn op_count(&self) -> u64 {
        self.disk.lock().ops
    }

    /// Starts or stops capturing a [`CrashPoint`] before every mutating operation.
    pub fn record(&self, on: bool) {
        self.disk.lock().recording = on;
    }

    /// Takes the crash points captured so far (the `n`-th was captured when
    /// [`SimIo::op_count`] was its `op`).
    pub fn take_crash_points(&self) -> Vec<CrashPoint> {
        let images = std::mem::take(&mut self.disk.lock().points);
        images.into_iter().map(CrashPoint::from_image).collect()
    }

    /// The crash point of this instant: what a power cut now could leave.
    pub fn crash_point(&self) -> CrashPoint {
        CrashPoint::from_image(Image::capture(&self.disk.lock()))
    }

    /// `kill -9`: every handle of this generation (this `SimIo`, its clones and open files)
    /// fails from now on and changes nothing; the returned `SimIo` sees the same page cache,
    /// with everything still pending, as the next process would.
    pub fn kill(&self) -> SimIo {
        let mut d = self.disk.lock();
        d.generation += 1;
        SimIo { disk: self.disk.clone(), generation: d.generation }
    }

    /// Turns every later sync of `kind` into a no-op that reports success (negative controls).
    pub fn skip_sync(&self, kind: SimSync) {
        self.disk.lock().skips.entry(kind).or_insert(0);
    }

    /// How many syncs of `kind` were skipped so far.
    pub fn skipped(&self, kind: SimSync) -> u64 {
        self.disk.lock().skips.get(&kind).copied().unwrap_or(0)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Disk) -> io::Result<T>) -> io::Result<T> {
        let mut d = self.disk.lock();
        if d.generation != self.generation {
            return Err(dead());
        }
        f(&mut d)
    }
}

/// How a handle was obtained: the sync classification depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opened {
    Created,
    Existing,
}

struct SimFile {
    disk: Arc<Mutex<Disk>>,
    generation: u64,
    node: NodeId,
    is_segment: bool,
    opened: Opened,
    syncs: u64,
    written: u64,
}

fn is_segment_name(name: &str) -> bool {
    name.ends_with(".wal")
}

impl IoFile for SimFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut d = self.disk.lock();
        d.mutate(self.generation)?;
        let f = d.file_mut(self.node);
        let offset = f.live.len() as u64;
        f.live.extend_from_slice(buf);
        f.pending.push(PendingWrite { offset, data: Arc::from(buf) });
        self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let kind = match (self.is_segment, self.opened) {
            (false, _) => None,
            // The first sync of a new segment makes its header durable.
            (true, Opened::Created) if self.syncs == 0 => None,
            (true, Opened::Existing) if self.written == 0 => Some(SimSync::Replay),
            (true, _) => Some(SimSync::Group),
        };
        self.syncs += 1;
        let mut d = self.disk.lock();
        d.mutate(self.generation)?;
        if d.skipped(kind) {
            return Ok(());
        }
        let f = d.file_mut(self.node);
        f.durable = Arc::new(f.live.clone());
        f.pending.clear();
        Ok(())
    }
}

impl Io for SimIo {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.with(|d| {
            let parts = d.components(path).ok_or_else(|| not_found(path))?;
            let mut at = ROOT;
            for part in parts {
                let dir = d.dir(at).ok_or_else(|| not_found(path))?;
                at = match dir.live.get(part) {
                    Some(&id) => id,
                    None => {
                        d.mutate(self.generation)?;
                        d.link(at, part, Node::Dir(DirNode::default()))
                    }
                };
            }
            d.dir(at).map(drop).ok_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists))
        })
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.with(|d| {
            let id = d.lookup(path)?;
            let dir = d.dir(id).ok_or_else(|| not_found(path))?;
            Ok(dir.live.keys().cloned().collect())
        })
    }

    fn read(&self, path: &Path) -> io::Result<FileBytes> {
        self.with(|d| match &d.nodes[d.lookup(path)?] {
            Node::File(f) => Ok(FileBytes::Owned(f.live.clone())),
            Node::Dir(_) => Err(io::Error::from(io::ErrorKind::IsADirectory)),
        })
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn IoFile>> {
        let node = self.with(|d| {
            let (dir, name) = d.parent(path)?;
            if d.dir(dir).is_some_and(|x| x.live.contains_key(name)) {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            d.mutate(self.generation)?;
            Ok(d.link(dir, name, Node::File(FileNode::default())))
        })?;
        Ok(Box::new(self.handle(node, path, Opened::Created)))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn IoFile>> {
        let node = self.with(|d| {
            let id = d.lookup(path)?;
            if d.is_file(id) {
                Ok(id)
            } else {
                Err(io::Error::from(io::ErrorKind::IsADirectory))
            }
        })?;
        Ok(Box::new(self.handle(node, path, Opened::Existing)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.with(|d| {
            let (dir, a) = d.parent(from)?;
            let (to_dir, b) = d.parent(to)?;
            if dir != to_dir {
                return Err(io::Error::from_raw_os_error(EXDEV));
            }
            let id = *d.dir(dir).and_then(|x| x.live.get(a)).ok_or_else(|| not_found(from))?;
            d.mutate(self.generation)?;
            let x = d.dir_mut(dir);
            x.live.remove(a);
            x.live.insert(b.to_owned(), id);
            x.pending.push(DirOp::Rename(a.to_owned(), b.to_owned()));
            Ok(())
        })
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.with(|d| {
            let (dir, name) = d.parent(path)?;
            let id = *d.dir(dir).and_then(|x| x.live.get(name)).ok_or_else(|| not_found(path))?;
            if !d.is_file(id) {
                return Err(io::Error::from(io::ErrorKind::IsADirectory));
            }
            d.mutate(self.generation)?;
            let x = d.dir_mut(dir);
            x.live.remove(name);
            x.pending.push(DirOp::Unlink(name.to_owned()));
            Ok(())
        })
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        self.with(|d| {
            let id = d.lookup(path)?;
            if !d.is_file(id) {
                return Err(io::Error::from(io::ErrorKind::IsADirectory));
            }
            d.mutate(self.generation)?;
            // Like the real seam: set the length, then fsync the whole file.
            let f = d.file_mut(id);
            f.live.resize(len as usize, 0);
            f.durable = Arc::new(f.live.clone());
            f.pending.clear();
            Ok(())
        })
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        self.with(|d| match &d.nodes[d.lookup(path)?] {
            Node::File(f) => Ok(f.live.len() as u64),
            Node::Dir(_) => Err(io::Error::from(io::ErrorKind::IsADirectory)),
        })
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.with(|d| {
            let above = d.base.starts_with(path);
            Ok(above || d.lookup(path).is_ok_and(|id| d.dir(id).is_some()))
        })
        .unwrap_or(false)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.with(|d| {
            let (dir, name) = d.parent(path)?;
            let id = *d.dir(dir).and_then(|x| x.live.get(name)).ok_or_else(|| not_found(path))?;
            if d.is_file(id) {
                return Err(io::Error::from(io::ErrorKind::NotADirectory));
            }
            d.mutate(self.generation)?;
            let x = d.dir_mut(dir);
            x.live.remove(name);
            x.pending.push(DirOp::Unlink(name.to_owned()));
            Ok(())
        })
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.with(|d| {
            if d.base.starts_with(path) && d.base != path {
                // Above the simulated machine: durable by assumption.
                return Ok(());
            }
            let id = d.lookup(path)?;
            let dir = d.dir(id).ok_or_else(|| not_found(path))?;
            let kind = if dir.pending.iter().any(|op| matches!(op, DirOp::Rename(..))) {
                Some(SimSync::RenameDir)
            } else if dir
                .pending
                .iter()
                .any(|op| matches!(op, DirOp::Link(n, _) if is_segment_name(n)))
            {
                Some(SimSync::SegmentDir)
            } else {
                None
            };
            d.mutate(self.generation)?;
            if d.skipped(kind) {
                return Ok(());
            }
            let x = d.dir_mut(id);
            x.durable = x.live.clone();
            x.pending.clear();
            Ok(())
        })
    }
}

impl SimIo {
    fn handle(&self, node: NodeId, path: &Path, opened: Opened) -> SimFile {
        let is_segment = path.file_name().and_then(|n| n.to_str()).is_some_and(is_segment_name);
        SimFile {
            disk: self.disk.clone(),
            generation: self.generation,
            node,
            is_segment,
            opened,
            syncs: 0,
            written: 0,
        }
    }
}
