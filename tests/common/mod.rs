//! Helpers shared by the integration tests: temporary stores, directory copies and digests,
//! segment and record positions on disk, a seeded RNG, and re-executing the test binary as a
//! child process. Each test file uses only some of them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use walden::format::{decode_frame, parse_segment_file_name, SegmentHeader, SEGMENT_HEADER_LEN};
use walden::io::FaultyIo;
use walden::{Options, Store};

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
pub fn dir_digest(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(
                    path.strip_prefix(root).unwrap().to_path_buf(),
                    fs::read(&path).unwrap(),
                );
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
pub fn records(segment: &Path) -> Vec<RecordPos> {
    let bytes = fs::read(segment).unwrap();
    let header = SegmentHeader::decode(&bytes).expect("segment header verifies");
    let salt = header.salt();
    let mut at = SEGMENT_HEADER_LEN;
    let mut out = Vec::new();
    while at < bytes.len() {
        let Ok(frame) = decode_frame(&bytes[at..], salt) else { break };
        out.push(RecordPos { offset: at as u64, len: frame.len as u64, lsn: frame.lsn });
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
