//! Helpers shared by the integration tests: temporary stores, directory copies and digests,
//! segment and record positions on disk, a seeded RNG, and re-executing the test binary as a
//! child process. Each test file uses only some of them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use walden::format::{
    decode_frame_as, parse_segment_file_name, RecordKind, SegmentHeader, SEGMENT_HEADER_LEN,
};
use walden::io::{FaultyIo, FileBytes, Io, IoFile, RealIo};
use walden::{Clock, Options, Store};

/// A fresh temporary directory; the store lives in its `store` subdirectory.
pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("create a temporary directory")
}

/// The store directory inside a temporary directory.
pub fn store_dir(t: &tempfile::TempDir) -> PathBuf {
    t.path().join("store")
}

/// Options whose file system is `io`.
pub fn faulty_options(io: &FaultyIo) -> Options {
    Options { io: Arc::new(io.clone()), ..Options::default() }
}

/// Opens a store with default options, panicking with the error if it does not open.
pub fn open(dir: &Path) -> Store {
    Store::open(dir).unwrap_or_else(|e| panic!("open {}: {e:?}", dir.display()))
}

/// Recursively copies a directory.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Cuts the file at `path` to `len` bytes.
pub fn truncate_file(path: &Path, len: u64) {
    fs::OpenOptions::new().write(true).open(path).unwrap().set_len(len).unwrap();
}

/// Every file under `dir` (relative path) with its content: equal digests mean nothing changed.
/// `LOCK` counts by name only: every opener writes who it is into it, which is not data.
pub fn dir_digest(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                let bytes =
                    if rel == Path::new("LOCK") { Vec::new() } else { fs::read(&path).unwrap() };
                out.insert(rel, bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The WAL segment files of a store, in segment order.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<(u64, PathBuf)> = fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter_map(|e| {
            parse_segment_file_name(&e.file_name().to_string_lossy()).map(|no| (no, e.path()))
        })
        .collect();
    segs.sort();
    segs.into_iter().map(|(_, p)| p).collect()
}

/// Files in `<dir>/wal` whose name contains `.torn-`.
pub fn torn_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(".torn-"))
        .collect();
    v.sort();
    v
}

/// One record found in a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordPos {
    /// Byte offset of its header.
    pub offset: u64,
    /// Header plus body.
    pub len: u64,
    /// Its LSN.
    pub lsn: u64,
}

/// The valid records of one segment file, in order (stops at the first that does not verify).
/// A close marker (which ends a cleanly closed segment, consumes no LSN and holds no data) is
/// not listed.
pub fn records(segment: &Path) -> Vec<RecordPos> {
    let bytes = fs::read(segment).unwrap();
    let (header, format) =
        SegmentHeader::decode_versioned(&bytes).expect("segment header verifies");
    let salt = header.salt();
    let mut at = SEGMENT_HEADER_LEN;
    let mut out = Vec::new();
    while at < bytes.len() {
        let Ok(frame) = decode_frame_as(&bytes[at..], salt, format) else { break };
        if RecordKind::from_u8(frame.kind) != Some(RecordKind::Close) {
            out.push(RecordPos { offset: at as u64, len: frame.len as u64, lsn: frame.lsn });
        }
        at += frame.len;
    }
    out
}

/// A small deterministic xorshift RNG, so every random choice in a test is replayable.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value; zero is remapped).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }
}

/// Starts this test binary again as a child process that runs only the test `test_name`, with
/// the environment variables `envs` set (the child test does its work only when it sees them).
/// Its stdin and stdout are pipes; stderr is inherited so a child's panic shows in the output.
pub fn spawn_self(test_name: &str, envs: &[(&str, &str)]) -> Child {
    Command::new(std::env::current_exe().expect("path of the test binary"))
        .args([test_name, "--exact", "--nocapture", "--test-threads=1", "-q"])
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the test binary as a child")
}

/// The test's side of a [`GatedIo`].
pub struct Gate {
    armed: Arc<AtomicBool>,
    entered: mpsc::Receiver<()>,
    release: mpsc::Sender<bool>,
}

impl Gate {
    /// Makes the next matching `sync_data` stop at the gate (once).
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }
    /// Waits until an fsync is stopped at the gate.
    pub fn entered(&self) {
        self.entered.recv().expect("an fsync reached the gate");
    }
    /// Lets the stopped fsync go on: run it, or fail it with EIO.
    pub fn release(&self, fail: bool) {
        self.release.send(fail).expect("the gated fsync is waiting");
    }
}

/// Real files, but the next `sync_data` after [`Gate::arm`] (only on the thread named
/// `thread`, if given) announces itself and waits for [`Gate::release`]: a way to hold an
/// fsync in progress, deterministically, while the test arranges what happens meanwhile.
#[derive(Debug, Clone)]
pub struct GatedIo {
    armed: Arc<AtomicBool>,
    thread: Option<&'static str>,
    entered: Arc<Mutex<mpsc::Sender<()>>>,
    release: Arc<Mutex<mpsc::Receiver<bool>>>,
}

impl GatedIo {
    /// A gated file system and its gate (disarmed).
    pub fn new(thread: Option<&'static str>) -> (GatedIo, Gate) {
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel();
        let armed = Arc::new(AtomicBool::new(false));
        let io = GatedIo {
            armed: armed.clone(),
            thread,
            entered: Arc::new(Mutex::new(entered_tx)),
            release: Arc::new(Mutex::new(release_rx)),
        };
        (io, Gate { armed, entered: entered_rx, release: release_tx })
    }

    fn wrap(&self, inner: Box<dyn IoFile>) -> Box<dyn IoFile> {
        Box::new(GatedFile { inner, io: self.clone() })
    }
}

struct GatedFile {
    inner: Box<dyn IoFile>,
    io: GatedIo,
}

impl IoFile for GatedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn sync_data(&mut self) -> std::io::Result<()> {
        let on_thread = self.io.thread.is_none_or(|t| std::thread::current().name() == Some(t));
        if on_thread && self.io.armed.swap(false, Ordering::SeqCst) {
            let _ = self.io.entered.lock().unwrap().send(());
            let fail = self.io.release.lock().unwrap().recv().unwrap_or(false);
            if fail {
                return Err(std::io::Error::from_raw_os_error(5));
            }
        }
        self.inner.sync_data()
    }
}

impl Io for GatedIo {
    fn create_dir_all(&self, p: &Path) -> std::io::Result<()> {
        RealIo.create_dir_all(p)
    }
    fn list_dir(&self, p: &Path) -> std::io::Result<Vec<String>> {
        RealIo.list_dir(p)
    }
    fn read(&self, p: &Path) -> std::io::Result<FileBytes> {
        RealIo.read(p)
    }
    fn create_new(&self, p: &Path) -> std::io::Result<Box<dyn IoFile>> {
        Ok(self.wrap(RealIo.create_new(p)?))
    }
    fn open_append(&self, p: &Path) -> std::io::Result<Box<dyn IoFile>> {
        Ok(self.wrap(RealIo.open_append(p)?))
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        RealIo.rename(from, to)
    }
    fn remove_file(&self, p: &Path) -> std::io::Result<()> {
        RealIo.remove_file(p)
    }
    fn truncate(&self, p: &Path, len: u64) -> std::io::Result<()> {
        RealIo.truncate(p, len)
    }
    fn sync_dir(&self, p: &Path) -> std::io::Result<()> {
        RealIo.sync_dir(p)
    }
}

/// A clock that reports every reading on a channel. A commit reads the clock under the log's
/// queue lock right before it enqueues its record, so N readings mean N commits reached the
/// queue.
#[derive(Debug)]
pub struct ChannelClock(Mutex<mpsc::Sender<()>>);

impl ChannelClock {
    /// The clock and the receiver of its readings.
    pub fn new() -> (ChannelClock, mpsc::Receiver<()>) {
        let (tx, rx) = mpsc::channel();
        (ChannelClock(Mutex::new(tx)), rx)
    }
}

impl Clock for ChannelClock {
    fn now_unix_ns(&self) -> u64 {
        let _ = self.0.lock().unwrap().send(());
        1_000_000
    }
}

/// A store in `dir` on a [`GatedIo`] with a [`ChannelClock`], and the gate and clock readings.
pub fn gated_store(dir: &Path) -> (Store, Gate, mpsc::Receiver<()>) {
    let (io, gate) = GatedIo::new(None);
    let (clock, readings) = ChannelClock::new();
    let opts = Options { io: Arc::new(io), clock: Arc::new(clock), ..Options::default() };
    let store = Store::open_with(dir, opts).unwrap();
    while readings.try_recv().is_ok() {}
    (store, gate, readings)
}

/// Holds one writer's fsync at the gate until `queued` more writers have enqueued behind it,
/// then lets the fsync succeed or fail. Returns the first writer's result and the others'.
pub fn queue_behind_gated_fsync(
    store: &Store,
    gate: &Gate,
    readings: &mpsc::Receiver<()>,
    queued: usize,
    fail: bool,
) -> (walden::Result<u64>, Vec<walden::Result<u64>>) {
    gate.arm();
    std::thread::scope(|sc| {
        let first = sc.spawn(|| store.put("g", "first", &0));
        gate.entered();
        readings.recv().unwrap();
        let others: Vec<_> =
            (0..queued).map(|i| sc.spawn(move || store.put("g", &format!("q{i}"), &i))).collect();
        for _ in 0..queued {
            readings.recv().unwrap();
        }
        gate.release(fail);
        let first = first.join().unwrap();
        (first, others.into_iter().map(|h| h.join().unwrap()).collect())
    })
}
