//! The power-loss harness: run a workload on a [`SimIo`], remember what was acknowledged and
//! when, then open every disk a power cut could have left and judge it.
//!
//! A verdict is one of: opened with every acknowledged write (at its version or a later one)
//! and no value that was never written, and opening again gives the same documents; refused;
//! lost an acknowledged write; showed a value never written; or gave different documents on the
//! second open.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use walden::io::{CrashPoint, Io, SimIo};
use walden::{Batch, Durability, Options, Store};

/// The one collection the workloads write.
pub const COLLECTION: &str = "c";

/// Total states per workload in the default run; `WALDEN_POWERLOSS_STATES` overrides it.
const DEFAULT_STATES_PER_WORKLOAD: usize = 1500;
/// Seed of the sampling; `WALDEN_POWERLOSS_SEED` overrides it (the same seed gives the same
/// states for a deterministic workload).
const DEFAULT_SEED: u64 = 0x5eed_0f10;

/// States per workload for this run.
pub fn states_budget() -> usize {
    std::env::var("WALDEN_POWERLOSS_STATES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_STATES_PER_WORKLOAD)
}

/// Sampling seed for this run.
pub fn seed() -> u64 {
    std::env::var("WALDEN_POWERLOSS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_SEED)
}

/// A document value no other write repeats: key, sequence number and some padding so records
/// span pages.
pub fn value(key: &str, n: u64, pad: usize) -> Value {
    json!({ "k": key, "n": n, "pad": "x".repeat(pad) })
}

/// What the workload did: every value ever attempted per key, and what was acknowledged as
/// durable, at which operation count.
#[derive(Debug, Default)]
pub struct History {
    attempted: HashMap<String, Vec<Value>>,
    /// (key, version, value, op count when acknowledged durable).
    acked: Vec<(String, u64, Value, u64)>,
    /// Acknowledged deletes (the workloads never write a deleted key again).
    deleted: Vec<(String, u64)>,
    /// Keys a delete was attempted on (their absence is no loss).
    delete_attempted: Vec<String>,
    /// Acknowledged `Buffered` puts waiting for a `sync`.
    unsynced: Vec<(String, u64, Value)>,
}

impl History {
    /// Records a value before it is written.
    pub fn attempt(&mut self, key: &str, v: &Value) {
        self.attempted.entry(key.to_owned()).or_default().push(v.clone());
    }

    /// An `Immediate` put acknowledged at op count `at`.
    pub fn acked(&mut self, key: &str, version: u64, v: Value, at: u64) {
        self.acked.push((key.to_owned(), version, v, at));
    }

    /// A `Buffered` put acknowledged (durable only after the next `sync`).
    pub fn buffered(&mut self, key: &str, version: u64, v: Value) {
        self.unsynced.push((key.to_owned(), version, v));
    }

    /// A `sync` returned at op count `at`: every buffered put so far is durable.
    pub fn synced(&mut self, at: u64) {
        for (k, version, v) in std::mem::take(&mut self.unsynced) {
            self.acked.push((k, version, v, at));
        }
    }

    /// Records a delete before it is made.
    pub fn attempt_delete(&mut self, key: &str) {
        self.delete_attempted.push(key.to_owned());
    }

    /// A delete acknowledged at op count `at`.
    pub fn deleted(&mut self, key: &str, at: u64) {
        self.deleted.push((key.to_owned(), at));
    }

    /// Number of acknowledged durable writes.
    pub fn acked_count(&self) -> usize {
        self.acked.len()
    }
}

/// Puts `key` with a fresh value, durably or buffered, and records it.
pub fn put(s: &Store, io: &SimIo, h: &mut History, key: &str, n: u64, pad: usize, d: Durability) {
    let v = value(key, n, pad);
    h.attempt(key, &v);
    let mut b = Batch::new();
    b.durability(d).put(COLLECTION, key, &v);
    let version = s.commit(b).expect("commit")[0].expect("a put has a version");
    match d {
        Durability::Immediate => h.acked(key, version, v, io.op_count()),
        Durability::Buffered => h.buffered(key, version, v),
    }
}

/// Options for a store on `io`: no background compaction or flushing, so a single-threaded
/// workload is deterministic; small segments so the log rolls.
pub fn options(io: &SimIo, segment_target_bytes: u64) -> Options {
    Options {
        io: Arc::new(io.clone()),
        auto_compact: false,
        buffered_flush_interval_ms: 3_600_000,
        segment_target_bytes,
        ..Options::default()
    }
}

/// A simulated machine: its base directory (real, for the store's `LOCK` file, which is taken
/// outside the I/O seam) and the store path below it.
pub struct Machine {
    _tmp: tempfile::TempDir,
    /// The base directory (durable by assumption).
    pub base: PathBuf,
    /// The store's directory.
    pub dir: PathBuf,
}

impl Machine {
    /// A machine whose store directory is `rel` below the base (created on the real file
    /// system only, for the lock).
    pub fn new(rel: &str) -> Machine {
        let tmp = tempfile::tempdir().expect("temporary directory");
        let base = tmp.path().to_path_buf();
        let dir = base.join(rel);
        std::fs::create_dir_all(&dir).expect("create the lock directory");
        Machine { _tmp: tmp, base, dir }
    }

    /// A fresh simulated disk on which the store's directory already exists, durably (the
    /// operator's `mkdir -p` and `sync`).
    pub fn disk_with_dir(&self) -> SimIo {
        let io = SimIo::new(&self.base);
        io.create_dir_all(&self.dir).expect("create the store directory");
        let mut p = self.dir.clone();
        while p != self.base {
            let up = p.parent().expect("below the base").to_path_buf();
            io.sync_dir(&up).expect("sync");
            p = up;
        }
        io
    }

    /// A fresh simulated disk holding nothing but the base directory.
    pub fn empty_disk(&self) -> SimIo {
        SimIo::new(&self.base)
    }
}

/// How a disk fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Opened, every acknowledged write present, nothing invented, stable on reopen.
    Good,
    /// Open failed.
    Refused(String),
    /// An acknowledged write is missing (or older).
    Lost(String),
    /// A value that was never written.
    Phantom(String),
    /// The second open saw other documents than the first.
    Unstable(String),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// The documents of a store: key → (version, value).
pub type Docs = BTreeMap<String, (u64, Value)>;

fn dump(s: &Store) -> Docs {
    let mut out = Docs::new();
    for c in s.collections().expect("collections") {
        for item in s.scan::<Value>(&c).expect("scan") {
            let (k, v) = item.expect("decode");
            out.insert(format!("{c}/{k}"), (v.version, v.value));
        }
    }
    out
}

/// Judges documents found after a cut at op count `at` against the history.
pub fn judge(docs: &Docs, h: &History, at: u64) -> Verdict {
    let mut want: HashMap<&str, (u64, &Value)> = HashMap::new();
    for (k, version, v, when) in &h.acked {
        if *when <= at && want.get(k.as_str()).is_none_or(|(w, _)| *w < *version) {
            want.insert(k, (*version, v));
        }
    }
    for (k, (version, v)) in &want {
        match docs.get(&format!("{COLLECTION}/{k}")) {
            None if h.delete_attempted.iter().any(|d| d == k) => {}
            None => return Verdict::Lost(format!("{k} v{version} absent")),
            Some((found, _)) if found < version => {
                return Verdict::Lost(format!("{k} v{version} acknowledged, v{found} found"))
            }
            Some((found, got)) if found == version && got != *v => {
                return Verdict::Lost(format!("{k} v{version} holds another value"))
            }
            _ => {}
        }
    }
    for (k, when) in &h.deleted {
        if *when <= at && docs.contains_key(&format!("{COLLECTION}/{k}")) {
            return Verdict::Lost(format!("{k} deleted, still present"));
        }
    }
    for (path, (version, v)) in docs {
        let key = path.strip_prefix(&format!("{COLLECTION}/")).unwrap_or(path);
        if !h.attempted.get(key).is_some_and(|vs| vs.contains(v)) {
            return Verdict::Phantom(format!("{path} v{version}"));
        }
    }
    Verdict::Good
}

/// Opens the store on `io` and judges it; on success closes and opens once more and compares.
/// Returns the verdict and the documents of the first open.
pub fn open_and_judge(io: &SimIo, dir: &Path, h: &History, at: u64) -> (Verdict, Option<Docs>) {
    let s = match Store::open_with(dir, options(io, u64::MAX)) {
        Ok(s) => s,
        Err(e) => return (Verdict::Refused(e.to_string()), None),
    };
    let docs = dump(&s);
    drop(s);
    let verdict = judge(&docs, h, at);
    if verdict != Verdict::Good {
        return (verdict, Some(docs));
    }
    let again = match Store::open_with(dir, options(io, u64::MAX)) {
        Ok(s) => dump(&s),
        Err(e) => return (Verdict::Refused(format!("second open: {e}")), Some(docs)),
    };
    if again != docs {
        return (Verdict::Unstable(format!("{} docs, then {}", docs.len(), again.len())), None);
    }
    (Verdict::Good, Some(docs))
}

/// Counts of verdicts over many states, with the first few failures for the message.
#[derive(Debug, Default)]
pub struct Tally {
    /// States opened.
    pub states: usize,
    /// Good verdicts.
    pub good: usize,
    /// Refusals.
    pub refused: usize,
    /// Lost acknowledged writes.
    pub lost: usize,
    /// Values never written.
    pub phantom: usize,
    /// Different documents on the second open.
    pub unstable: usize,
    /// The first failures: (crash point op, verdict).
    pub examples: Vec<(u64, Verdict)>,
}

impl Tally {
    /// Adds one verdict for a cut at `op`.
    pub fn add(&mut self, op: u64, v: Verdict) {
        self.states += 1;
        match &v {
            Verdict::Good => self.good += 1,
            Verdict::Refused(_) => self.refused += 1,
            Verdict::Lost(_) => self.lost += 1,
            Verdict::Phantom(_) => self.phantom += 1,
            Verdict::Unstable(_) => self.unstable += 1,
        }
        if v != Verdict::Good && self.examples.len() < 5 {
            self.examples.push((op, v));
        }
    }

    /// Panics unless every state was good.
    pub fn assert_all_good(&self, what: &str) {
        eprintln!("{what}: {self}");
        assert!(self.states > 0, "{what}: no states examined");
        assert_eq!(self.good, self.states, "{what}: {self}");
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} states: {} good, {} refused, {} lost, {} phantom, {} unstable; first: {:?}",
            self.states,
            self.good,
            self.refused,
            self.lost,
            self.phantom,
            self.unstable,
            self.examples
        )
    }
}

/// Examines up to `budget` states spread over `points` (every state of a point when few enough).
/// A cut at a point is judged against what was acknowledged before it, or before `acked_at`
/// when given (cuts of a later recovery, whose own operation count starts again at zero).
/// `also` runs on each cut disk that opened well, for further checks (a cut during recovery).
pub fn examine(
    points: &[CrashPoint],
    dir: &Path,
    h: &History,
    budget: usize,
    acked_at: Option<u64>,
    mut also: impl FnMut(&CrashPoint, &SimIo, &mut Tally),
) -> Tally {
    let mut tally = Tally::default();
    let per_point = budget.div_ceil(points.len().max(1)).max(1);
    for point in points {
        for choice in point.choices(per_point, seed()) {
            let io = point.disk(&choice);
            io.record(true);
            let at = acked_at.unwrap_or(point.op());
            let (verdict, _) = open_and_judge(&io, dir, h, at);
            let good = verdict == Verdict::Good;
            tally.add(at, verdict);
            if good {
                also(point, &io, &mut tally);
            }
        }
    }
    tally
}

/// Puts damage into synced data of the store at `dir` on `io`: flips a body byte of the first
/// record of the first segment whose last valid record names it durable (so a later record
/// proves it was synced). Returns whether such a record was found.
pub fn damage_synced_record(io: &SimIo, dir: &Path) -> bool {
    use walden::format::{decode_frame, SegmentHeader, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
    let wal = dir.join("wal");
    let Ok(names) = io.list_dir(&wal) else { return false };
    for name in names.iter().filter(|n| walden::format::parse_segment_file_name(n).is_some()) {
        let path = wal.join(name);
        let Ok(bytes) = io.read(&path) else { continue };
        let Ok(header) = SegmentHeader::decode(&bytes) else { continue };
        let (mut at, mut frames) = (SEGMENT_HEADER_LEN, Vec::new());
        while let Ok(f) = decode_frame(&bytes[at..], header.salt()) {
            frames.push((at, f.lsn, f.watermark.lsn, f.len));
            at += f.len;
        }
        let (Some(&(first_at, first_lsn, _, len)), Some(&(_, _, last_durable, _))) =
            (frames.first(), frames.last())
        else {
            continue;
        };
        if frames.len() < 2 || last_durable < first_lsn || len <= RECORD_HEADER_LEN {
            continue;
        }
        let mut damaged = bytes.to_vec();
        damaged[first_at + RECORD_HEADER_LEN] ^= 0x01;
        io.truncate(&path, 0).expect("truncate");
        let mut f = io.open_append(&path).expect("open");
        f.write_all(&damaged).expect("write");
        f.sync_data().expect("sync");
        return true;
    }
    false
}
