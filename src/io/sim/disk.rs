//! The simulated machine: nodes, directories, the page cache and the medium.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

/// Size of the unit in which unsynced file data reaches the medium, in bytes.
pub const SIM_PAGE_BYTES: u64 = 4096;

/// A sync that [`SimIo::skip_sync`] can remove (for negative controls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimSync {
    /// `fdatasync` of a log segment after records were written to it (group commit, roll).
    Group,
    /// `fsync` of a directory in which a log segment (`*.wal`) was created.
    SegmentDir,
    /// `fsync` of a directory in which a file was renamed (identity, snapshot).
    RenameDir,
    /// `fdatasync` of an existing log segment opened without writing to it (recovery making
    /// durable what it replayed).
    Replay,
}

pub(super) const EIO: i32 = 5;
pub(super) const EXDEV: i32 = 18;

pub(super) fn dead() -> io::Error {
    io::Error::from_raw_os_error(EIO)
}

pub(super) fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file", path.display()))
}

/// A node of the simulated file system: index into [`Disk::nodes`].
pub(super) type NodeId = usize;
/// The base directory: durable by assumption, every simulated path lies below it.
pub(super) const ROOT: NodeId = 0;

/// One `write` not yet covered by an `fdatasync`.
#[derive(Debug, Clone)]
pub(super) struct PendingWrite {
    pub(super) offset: u64,
    pub(super) data: Arc<[u8]>,
}

#[derive(Debug, Clone, Default)]
pub(super) struct FileNode {
    /// What the process reads (the page cache).
    pub(super) live: Vec<u8>,
    /// What survives a power cut for certain.
    pub(super) durable: Arc<Vec<u8>>,
    /// Writes since the last sync, in order.
    pub(super) pending: Vec<PendingWrite>,
}

/// A directory-entry change not yet covered by an `fsync` of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DirOp {
    Link(String, NodeId),
    Unlink(String),
    Rename(String, String),
}

#[derive(Debug, Clone, Default)]
pub(super) struct DirNode {
    pub(super) live: BTreeMap<String, NodeId>,
    pub(super) durable: BTreeMap<String, NodeId>,
    pub(super) pending: Vec<DirOp>,
}

#[derive(Debug, Clone)]
pub(super) enum Node {
    File(FileNode),
    Dir(DirNode),
}

/// The simulated medium and page cache, shared by every handle of one simulated machine.
#[derive(Debug, Default)]
pub(super) struct Disk {
    pub(super) base: PathBuf,
    pub(super) nodes: Vec<Node>,
    /// Bumped by a kill: handles of an older generation fail.
    pub(super) generation: u64,
    pub(super) ops: u64,
    pub(super) recording: bool,
    /// What the disk held before each mutating operation, while recording.
    pub(super) points: Vec<Image>,
    pub(super) skips: HashMap<SimSync, u64>,
}

impl Disk {
    pub(super) fn new(base: PathBuf, nodes: Vec<Node>) -> Disk {
        Disk { base, nodes, ..Disk::default() }
    }

    /// Path components below the base, or `None` for a path outside it.
    pub(super) fn components<'p>(&self, path: &'p Path) -> Option<Vec<&'p str>> {
        let rel = path.strip_prefix(&self.base).ok()?;
        rel.components()
            .map(|c| match c {
                Component::Normal(s) => s.to_str(),
                _ => None,
            })
            .collect()
    }

    pub(super) fn dir(&self, id: NodeId) -> Option<&DirNode> {
        match &self.nodes[id] {
            Node::Dir(d) => Some(d),
            Node::File(_) => None,
        }
    }

    pub(super) fn dir_mut(&mut self, id: NodeId) -> &mut DirNode {
        match &mut self.nodes[id] {
            Node::Dir(d) => d,
            Node::File(_) => unreachable!("checked to be a directory"),
        }
    }

    pub(super) fn file_mut(&mut self, id: NodeId) -> &mut FileNode {
        match &mut self.nodes[id] {
            Node::File(f) => f,
            Node::Dir(_) => unreachable!("checked to be a file"),
        }
    }

    pub(super) fn lookup(&self, path: &Path) -> io::Result<NodeId> {
        let parts = self.components(path).ok_or_else(|| not_found(path))?;
        let mut at = ROOT;
        for part in parts {
            at = *self.dir(at).and_then(|d| d.live.get(part)).ok_or_else(|| not_found(path))?;
        }
        Ok(at)
    }

    /// The directory holding `path`, and the last component.
    pub(super) fn parent<'p>(&self, path: &'p Path) -> io::Result<(NodeId, &'p str)> {
        let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| not_found(path))?;
        let parent = path.parent().ok_or_else(|| not_found(path))?;
        let id = self.lookup(parent)?;
        self.dir(id).ok_or_else(|| not_found(parent))?;
        Ok((id, name))
    }

    pub(super) fn is_file(&self, id: NodeId) -> bool {
        matches!(self.nodes[id], Node::File(_))
    }

    /// Counts one mutating operation, capturing the crash point before it when recording.
    pub(super) fn mutate(&mut self, generation: u64) -> io::Result<()> {
        if generation != self.generation {
            return Err(dead());
        }
        if self.recording {
            let image = Image::capture(self);
            self.points.push(image);
        }
        self.ops += 1;
        Ok(())
    }

    pub(super) fn skipped(&mut self, kind: Option<SimSync>) -> bool {
        match kind.and_then(|k| self.skips.get_mut(&k)) {
            Some(n) => {
                *n += 1;
                true
            }
            None => false,
        }
    }

    pub(super) fn link(&mut self, dir: NodeId, name: &str, node: Node) -> NodeId {
        let id = self.nodes.len();
        self.nodes.push(node);
        let d = self.dir_mut(dir);
        d.live.insert(name.to_owned(), id);
        d.pending.push(DirOp::Link(name.to_owned(), id));
        id
    }
}

/// An in-memory [`Io`](crate::io::Io) that records what is durable and can produce every disk a
/// power cut allows.
///
/// The rules, at their weakest: bytes a `write` put into a file are durable once an
/// `fdatasync` of that file returned; before that, each 4 KiB page ([`SIM_PAGE_BYTES`]) may be
/// on the medium in any version it had since the last sync, independently of every other page.
/// A create, rename or unlink is durable once an `fsync` of its directory returned; before that
/// each may or may not have happened, independently (a rename is atomic). A directory whose own
/// entry was lost takes everything below it along. Every mutating operation is counted
/// ([`SimIo::op_count`]); with [`SimIo::record`] on, a [`CrashPoint`](crate::io::CrashPoint) is
/// captured before each one. [`SimIo::kill`] is `kill -9`; [`SimIo::skip_sync`] removes chosen
/// syncs for negative controls.
///
/// ```
/// use std::sync::Arc;
/// use walden::io::{Io, SimIo};
/// let io = SimIo::new("/sim");
/// io.create_dir_all("/sim/d".as_ref())?;
/// let mut f = io.create_new("/sim/d/a".as_ref())?;
/// f.write_all(b"hello")?;
/// f.sync_data()?; // the bytes are durable, but not yet the name
/// let point = io.crash_point();
/// let cut = point.disk(&point.choice_none());
/// assert!(cut.read("/sim/d/a".as_ref()).is_err());
/// io.sync_dir("/sim/d".as_ref())?; // the entry of `d` itself is still pending in `/sim`
/// io.sync_dir("/sim".as_ref())?;
/// let point = io.crash_point();
/// assert_eq!(&*point.disk(&point.choice_none()).read("/sim/d/a".as_ref())?, b"hello");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct SimIo {
    pub(super) disk: Arc<Mutex<Disk>>,
    pub(super) generation: u64,
}

impl fmt::Debug for SimIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.disk.lock();
        f.debug_struct("SimIo").field("base", &d.base).field("ops", &d.ops).finish_non_exhaustive()
    }
}

impl SimIo {
    /// A simulated machine whose disk is `disk` (a crash point's outcome).
    pub(super) fn from_disk(disk: Disk) -> SimIo {
        SimIo { disk: Arc::new(Mutex::new(disk)), generation: 0 }
    }
}

/// What the medium held and what was pending at one instant: the raw material of a crash point.
#[derive(Debug, Clone)]
pub(super) struct Image {
    pub(super) op: u64,
    pub(super) base: PathBuf,
    pub(super) nodes: Vec<NodeImage>,
}

impl Image {
    pub(super) fn capture(d: &Disk) -> Image {
        let nodes = d
            .nodes
            .iter()
            .map(|n| match n {
                Node::File(f) => {
                    NodeImage::File { durable: f.durable.clone(), pending: f.pending.clone() }
                }
                Node::Dir(x) => {
                    NodeImage::Dir { durable: x.durable.clone(), pending: x.pending.clone() }
                }
            })
            .collect();
        Image { op: d.ops, base: d.base.clone(), nodes }
    }
}

/// What one node looked like on the medium and in the page cache at a crash point.
#[derive(Debug, Clone)]
pub(super) enum NodeImage {
    File { durable: Arc<Vec<u8>>, pending: Vec<PendingWrite> },
    Dir { durable: BTreeMap<String, NodeId>, pending: Vec<DirOp> },
}
