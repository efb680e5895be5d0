//! Crash points: the disks a power cut at one instant can leave, enumerated or sampled.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::disk::{
    DirNode, DirOp, Disk, FileNode, Image, Node, NodeId, NodeImage, PendingWrite, SimIo, ROOT,
    SIM_PAGE_BYTES,
};

/// One independent uncertainty of a power cut.
#[derive(Debug, Clone)]
enum Dim {
    /// A page of a file with unsynced writes: which version reached the medium (0: none of the
    /// unsynced ones; `k`: as after the write `writes[k - 1]`).
    Page { node: NodeId, page: u64, writes: Vec<usize> },
    /// An unsynced directory operation: happened (1) or not (0).
    DirOp { node: NodeId, op: usize },
}

impl Dim {
    fn radix(&self) -> u64 {
        match self {
            Dim::Page { writes, .. } => writes.len() as u64 + 1,
            Dim::DirOp { .. } => 2,
        }
    }
}

/// One possible outcome of a power cut: an index per uncertainty of its [`CrashPoint`].
pub type StateChoice = Vec<u32>;

/// Everything a power cut at one instant could leave: the durable state and what was pending.
/// See [`SimIo`] for the rules.
#[derive(Debug, Clone)]
pub struct CrashPoint {
    op: u64,
    base: PathBuf,
    nodes: Vec<NodeImage>,
    dims: Vec<Dim>,
}

impl CrashPoint {
    pub(super) fn from_image(image: Image) -> CrashPoint {
        let dims = dimensions(&image.nodes);
        CrashPoint { op: image.op, base: image.base, nodes: image.nodes, dims }
    }

    /// The [`SimIo::op_count`] at this point: the operations before it happened, none after.
    pub fn op(&self) -> u64 {
        self.op
    }

    /// How many independent uncertainties (unsynced pages, unsynced directory operations).
    pub fn uncertainties(&self) -> usize {
        self.dims.len()
    }

    /// How many distinct disks a cut here can leave (saturating).
    pub fn space(&self) -> u128 {
        self.dims.iter().fold(1u128, |n, d| n.saturating_mul(u128::from(d.radix())))
    }

    /// The cut that keeps nothing unsynced.
    pub fn choice_none(&self) -> StateChoice {
        vec![0; self.dims.len()]
    }

    /// The cut that keeps everything (what `kill -9` leaves).
    pub fn choice_all(&self) -> StateChoice {
        self.dims.iter().map(|d| (d.radix() - 1) as u32).collect()
    }

    /// Every possible cut if there are at most `budget`; otherwise `budget` of them: nothing
    /// kept, everything kept, and the rest drawn with a generator seeded by `seed` (the same
    /// seed gives the same cuts).
    pub fn choices(&self, budget: usize, seed: u64) -> Vec<StateChoice> {
        let space = self.space();
        if space <= budget as u128 {
            let mut all = Vec::with_capacity(space as usize);
            let mut c = self.choice_none();
            loop {
                all.push(c.clone());
                // Mixed-radix increment.
                let mut i = 0;
                loop {
                    if i == c.len() {
                        return all;
                    }
                    c[i] += 1;
                    if u64::from(c[i]) < self.dims[i].radix() {
                        break;
                    }
                    c[i] = 0;
                    i += 1;
                }
            }
        }
        let mut rng = SplitMix(seed ^ self.op.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut out = vec![self.choice_none(), self.choice_all()];
        while out.len() < budget {
            out.push(self.dims.iter().map(|d| rng.below(d.radix()) as u32).collect());
        }
        out.truncate(budget.max(1));
        out
    }

    /// The disk left by `choice`, as a fresh simulated machine with nothing pending.
    ///
    /// # Panics
    /// If `choice` was not made for this crash point (wrong length or an index out of range).
    pub fn disk(&self, choice: &[u32]) -> SimIo {
        assert_eq!(choice.len(), self.dims.len(), "a choice for another crash point");
        let mut page_choice: BTreeMap<(NodeId, u64), usize> = BTreeMap::new();
        let mut op_kept: BTreeMap<(NodeId, usize), bool> = BTreeMap::new();
        for (dim, &c) in self.dims.iter().zip(choice) {
            assert!(u64::from(c) < dim.radix(), "choice out of range");
            match dim {
                Dim::Page { node, page, writes } if c > 0 => {
                    page_choice.insert((*node, *page), writes[c as usize - 1]);
                }
                Dim::Page { .. } => {}
                Dim::DirOp { node, op } => {
                    op_kept.insert((*node, *op), c == 1);
                }
            }
        }
        let nodes = self
            .nodes
            .iter()
            .enumerate()
            .map(|(id, image)| match image {
                NodeImage::File { durable, pending } => {
                    let bytes =
                        file_image(durable, pending, |page| page_choice.get(&(id, page)).copied());
                    Node::File(FileNode {
                        live: bytes.clone(),
                        durable: Arc::new(bytes),
                        pending: Vec::new(),
                    })
                }
                NodeImage::Dir { durable, pending } => {
                    let mut entries = durable.clone();
                    for (i, op) in pending.iter().enumerate() {
                        if op_kept.get(&(id, i)).copied().unwrap_or(false) {
                            apply_dir_op(&mut entries, op);
                        }
                    }
                    Node::Dir(DirNode {
                        live: entries.clone(),
                        durable: entries,
                        pending: Vec::new(),
                    })
                }
            })
            .collect();
        SimIo::from_disk(Disk::new(self.base.clone(), nodes))
    }
}

fn apply_dir_op(entries: &mut BTreeMap<String, NodeId>, op: &DirOp) {
    match op {
        DirOp::Link(name, id) => {
            entries.insert(name.clone(), *id);
        }
        DirOp::Unlink(name) => {
            entries.remove(name);
        }
        DirOp::Rename(from, to) => {
            if let Some(id) = entries.remove(from) {
                entries.insert(to.clone(), id);
            }
        }
    }
}

/// Nodes reachable from the root through durable entries or pending links.
fn reachable(nodes: &[NodeImage]) -> Vec<bool> {
    let mut seen = vec![false; nodes.len()];
    let mut stack = vec![ROOT];
    while let Some(id) = stack.pop() {
        if std::mem::replace(&mut seen[id], true) {
            continue;
        }
        if let NodeImage::Dir { durable, pending } = &nodes[id] {
            stack.extend(durable.values().copied());
            stack.extend(pending.iter().filter_map(|op| match op {
                DirOp::Link(_, child) => Some(*child),
                _ => None,
            }));
        }
    }
    seen
}

fn dimensions(nodes: &[NodeImage]) -> Vec<Dim> {
    let live = reachable(nodes);
    let mut dims = Vec::new();
    for (id, image) in nodes.iter().enumerate().filter(|(id, _)| live[*id]) {
        match image {
            NodeImage::File { pending, .. } => {
                let mut pages: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
                for (i, w) in pending.iter().enumerate() {
                    if w.data.is_empty() {
                        continue;
                    }
                    let first = w.offset / SIM_PAGE_BYTES;
                    let last = (w.offset + w.data.len() as u64 - 1) / SIM_PAGE_BYTES;
                    for page in first..=last {
                        pages.entry(page).or_default().push(i);
                    }
                }
                dims.extend(pages.into_iter().map(|(page, writes)| Dim::Page {
                    node: id,
                    page,
                    writes,
                }));
            }
            NodeImage::Dir { pending, .. } => {
                dims.extend((0..pending.len()).map(|op| Dim::DirOp { node: id, op }));
            }
        }
    }
    dims
}

/// A file's bytes after a cut: the durable bytes, and each dirty page as it was after the
/// write `version(page)` names (or untouched). Bytes of pages that did not reach the medium but
/// lie below the end of one that did read as zeros.
fn file_image(
    durable: &[u8],
    pending: &[PendingWrite],
    version: impl Fn(u64) -> Option<usize>,
) -> Vec<u8> {
    let mut buf = durable.to_vec();
    let mut len = durable.len() as u64;
    let mut pages: Vec<u64> = pending
        .iter()
        .filter(|w| !w.data.is_empty())
        .flat_map(|w| {
            (w.offset / SIM_PAGE_BYTES)..=((w.offset + w.data.len() as u64 - 1) / SIM_PAGE_BYTES)
        })
        .collect();
    pages.sort_unstable();
    pages.dedup();
    for page in pages {
        let Some(last) = version(page) else { continue };
        let (start, end) = (page * SIM_PAGE_BYTES, (page + 1) * SIM_PAGE_BYTES);
        for w in &pending[..=last] {
            let (ws, we) = (w.offset, w.offset + w.data.len() as u64);
            let (s, e) = (ws.max(start), we.min(end));
            if s >= e {
                continue;
            }
            if buf.len() < e as usize {
                buf.resize(e as usize, 0);
            }
            buf[s as usize..e as usize]
                .copy_from_slice(&w.data[(s - ws) as usize..(e - ws) as usize]);
            len = len.max(e);
        }
    }
    buf.truncate(len as usize);
    buf
}

/// A small seeded generator (SplitMix64): reproducible sampling without a dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{Io, SimSync};
    use std::path::Path;

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    fn synced_dir(io: &SimIo) {
        io.create_dir_all(p("/b/d")).unwrap();
        io.sync_dir(p("/b")).unwrap();
        io.sync_dir(p("/b/d")).unwrap();
    }

    #[test]
    fn synced_data_and_names_survive_every_cut() {
        let io = SimIo::new("/b");
        synced_dir(&io);
        let mut f = io.create_new(p("/b/d/x")).unwrap();
        f.write_all(&[7; 5000]).unwrap();
        f.sync_data().unwrap();
        io.sync_dir(p("/b/d")).unwrap();
        let point = io.crash_point();
        assert_eq!(point.space(), 1);
        assert_eq!(&*point.disk(&point.choice_none()).read(p("/b/d/x")).unwrap(), &[7; 5000][..]);
    }

    #[test]
    fn each_unsynced_page_is_independent_and_holes_read_as_zeros() {
        let io = SimIo::new("/b");
        synced_dir(&io);
        let mut f = io.create_new(p("/b/d/x")).unwrap();
        f.sync_data().unwrap();
        io.sync_dir(p("/b/d")).unwrap();
        f.write_all(&[1; 4096]).unwrap();
        f.write_all(&[2; 4096]).unwrap();
        let point = io.crash_point();
        assert_eq!(point.space(), 4);
        let mut seen: Vec<Vec<u8>> = point
            .choices(10, 0)
            .iter()
            .map(|c| point.disk(c).read(p("/b/d/x")).unwrap().to_vec())
            .collect();
        seen.sort();
        let mut want = vec![vec![], vec![1; 4096], [vec![0; 4096], vec![2; 4096]].concat()];
        want.push([vec![1; 4096], vec![2; 4096]].concat());
        want.sort();
        assert_eq!(seen, want);
    }

    #[test]
    fn a_page_keeps_any_one_of_its_versions() {
        let io = SimIo::new("/b");
        synced_dir(&io);
        let mut f = io.create_new(p("/b/d/x")).unwrap();
        f.sync_data().unwrap();
        io.sync_dir(p("/b/d")).unwrap();
        f.write_all(b"ab").unwrap();
        f.write_all(b"cd").unwrap();
        let point = io.crash_point();
        let mut seen: Vec<Vec<u8>> = point
            .choices(10, 0)
            .iter()
            .map(|c| point.disk(c).read(p("/b/d/x")).unwrap().to_vec())
            .collect();
        seen.sort();
        assert_eq!(seen, [b"".to_vec(), b"ab".to_vec(), b"abcd".to_vec()]);
    }

    #[test]
    fn unsynced_renames_and_unlinks_may_or_may_not_happen() {
        let io = SimIo::new("/b");
        synced_dir(&io);
        for name in ["a", "b"] {
            let mut f = io.create_new(&Path::new("/b/d").join(name)).unwrap();
            f.sync_data().unwrap();
        }
        io.sync_dir(p("/b/d")).unwrap();
        io.rename(p("/b/d/a"), p("/b/d/c")).unwrap();
        io.remove_file(p("/b/d/b")).unwrap();
        let point = io.crash_point();
        let mut seen: Vec<Vec<String>> = point
            .choices(10, 0)
            .iter()
            .map(|c| point.disk(c).list_dir(p("/b/d")).unwrap())
            .collect();
        seen.sort();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(seen, [s(&["a"]), s(&["a", "b"]), s(&["b", "c"]), s(&["c"])]);
    }

    #[test]
    fn a_directory_whose_entry_is_lost_takes_its_files_along() {
        let io = SimIo::new("/b");
        io.create_dir_all(p("/b/d")).unwrap();
        let mut f = io.create_new(p("/b/d/x")).unwrap();
        f.write_all(b"x").unwrap();
        f.sync_data().unwrap();
        io.sync_dir(p("/b/d")).unwrap();
        let point = io.crash_point();
        let cut = point.disk(&point.choice_none());
        assert!(cut.list_dir(p("/b/d")).is_err());
    }

    #[test]
    fn kill_keeps_the_page_cache_and_stops_the_old_handles() {
        let io = SimIo::new("/b");
        synced_dir(&io);
        let mut f = io.create_new(p("/b/d/x")).unwrap();
        f.write_all(b"x").unwrap();
        let next = io.kill();
        assert!(f.write_all(b"y").is_err());
        assert!(io.list_dir(p("/b/d")).is_err());
        assert_eq!(&*next.read(p("/b/d/x")).unwrap(), b"x");
        assert_eq!(next.crash_point().uncertainties(), 2);
    }

    #[test]
    fn skipped_syncs_report_success_and_keep_nothing() {
        let io = SimIo::new("/b");
        synced_dir(&io);
        io.skip_sync(SimSync::SegmentDir);
        let mut f = io.create_new(p("/b/d/1.wal")).unwrap();
        f.write_all(b"header").unwrap();
        f.sync_data().unwrap();
        io.sync_dir(p("/b/d")).unwrap();
        assert_eq!(io.skipped(SimSync::SegmentDir), 1);
        let point = io.crash_point();
        assert!(point.disk(&point.choice_none()).list_dir(p("/b/d")).unwrap().is_empty());
    }

    #[test]
    fn sampling_is_reproducible() {
        let io = SimIo::new("/b");
        synced_dir(&io);
        let mut f = io.create_new(p("/b/d/x")).unwrap();
        for i in 0..40u8 {
            f.write_all(&[i; 1000]).unwrap();
        }
        let point = io.crash_point();
        assert!(point.space() > 100);
        assert_eq!(point.choices(50, 9), point.choices(50, 9));
        assert_ne!(point.choices(50, 9), point.choices(50, 10));
        assert_eq!(point.choices(50, 9).len(), 50);
    }
}
