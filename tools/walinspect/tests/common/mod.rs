//! Fixtures built with the walden API, then damaged by byte edits; and a runner for the binary.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use walden::Store;

/// The result of one walinspect run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Every stdout line parsed as JSON (fails the test on a line that is not).
    pub fn ndjson(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
            .collect()
    }

    /// The NDJSON objects of one `type`.
    pub fn of_type(&self, t: &str) -> Vec<Value> {
        self.ndjson().into_iter().filter(|v| v["type"] == t).collect()
    }
}

/// Runs walinspect with `args`.
pub fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let out: Output =
        Command::new(env!("CARGO_BIN_EXE_walinspect")).args(args).output().expect("run walinspect");
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!r.stderr.contains("panicked"), "walinspect panicked: {}", r.stderr);
    r
}

/// Path of segment `no` in a store.
pub fn seg(dir: &Path, no: u64) -> PathBuf {
    dir.join("wal").join(walden::format::segment_file_name(no))
}

/// Opens a store, waiting for the lock: `Store::close` returns while the background flusher may
/// still hold the store for a moment, so an immediate reopen can otherwise fail with `Locked`.
pub fn open_store(dir: &Path) -> Store {
    let options = walden::Options {
        lock_timeout: Some(std::time::Duration::from_secs(10)),
        ..Default::default()
    };
    Store::open_with(dir, options).expect("open")
}

/// The key of document `i`.
pub fn key(i: usize) -> String {
    format!("k{i:03}")
}

/// The value of document `i` in round `round`.
pub fn value(i: usize, round: usize) -> Value {
    json!({ "i": i, "round": round, "pad": "x".repeat(40 + i % 7) })
}

/// A store with `segments` segments (one open per segment), each holding `per_segment`
/// single-put records on keys of collection `docs`. Returns the expected final state.
pub fn build_store(dir: &Path, segments: usize, per_segment: usize) -> BTreeMap<String, Value> {
    let mut expect = BTreeMap::new();
    for round in 0..segments {
        let store = open_store(dir);
        for i in 0..per_segment {
            let n = round * per_segment + i;
            store.put("docs", &key(n), &value(n, round)).expect("put");
            expect.insert(key(n), value(n, round));
        }
        store.close().expect("close");
    }
    expect
}

/// The `record` objects of `walinspect dump --json` on `path`.
pub fn records(path: &Path) -> Vec<Value> {
    let r = run(&["dump".as_ref(), path.as_os_str(), "--json".as_ref()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.of_type("record")
}

/// Every file under `dir` with a checksum of its bytes.
pub fn checksums(dir: &Path) -> BTreeMap<PathBuf, (u64, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if d.is_file() {
            let b = std::fs::read(&d).unwrap();
            out.insert(d, (b.len() as u64, crc32(&b)));
            continue;
        }
        for e in std::fs::read_dir(&d).unwrap() {
            stack.push(e.unwrap().path());
        }
    }
    out
}

/// A plain CRC-32 (IEEE), so the tests do not depend on the library for their checks.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Flips one bit of a file.
pub fn flip_bit(path: &Path, offset: u64, bit: u8) {
    let mut b = std::fs::read(path).unwrap();
    b[offset as usize] ^= 1 << bit;
    std::fs::write(path, b).unwrap();
}

/// Cuts a file to its first `len` bytes; returns its old length.
pub fn cut_file(path: &Path, len: impl FnOnce(usize) -> usize) -> usize {
    let b = std::fs::read(path).unwrap();
    std::fs::write(path, &b[..len(b.len())]).unwrap();
    b.len()
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// The snapshot files of a store.
pub fn snapshot_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "snap"))
        .collect();
    v.sort();
    v
}
