//! Finding and reading the input: a store directory, its `wal/` directory, or one segment file.
//!
//! Everything here is read-only: files are read whole with `std::fs::read` (no mmap, so a store
//! appending meanwhile cannot change bytes under us), the store's `LOCK` is never taken.

use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use walden::format::breaker::BreakerRecord;
use walden::format::files::is_torn_file_name;
use walden::format::floor::VersionFloorRecord;
use walden::format::ratelimit::RateLimitRecord;
use walden::format::{
    decode_batch, parse_segment_file_name, parse_snapshot_file_name, CorruptionKind, Frame,
    RecordKind, SegmentHeader, StoreIdentity, SEGMENT_MAGIC, SNAPSHOT_MAGIC,
};
use walden::wal::{list_segment_files, scan_log, LogScan, RecordRef, SegmentInput, WAL_DIR};

/// Name of the identity file inside a store directory.
pub use walden::format::files::IDENTITY_FILE;

/// The input cannot be read or is not a walden store (exit code 4).
#[derive(Debug)]
pub struct InputError {
    /// The path concerned.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

fn input_err(path: &Path, reason: impl Into<String>) -> InputError {
    InputError { path: path.to_path_buf(), reason: reason.into() }
}

/// What the user pointed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A store directory (holds `STORE` and/or `wal/`).
    StoreDir,
    /// A `wal/` directory on its own.
    WalDir,
    /// A single segment file.
    SegmentFile,
    /// A single snapshot file.
    SnapshotFile,
}

/// One segment file, read whole.
#[derive(Debug)]
pub struct LoadedSegment {
    /// Segment number (from the file name, else from the header).
    pub segment_no: u64,
    /// Path of the file.
    pub path: PathBuf,
    /// Its bytes at the time of reading.
    pub bytes: Vec<u8>,
}

/// One snapshot file, read whole.
#[derive(Debug)]
pub struct LoadedSnapshot {
    /// The LSN in its file name (`None` if the name is not a snapshot name).
    pub name_lsn: Option<u64>,
    /// Path of the file.
    pub path: PathBuf,
    /// Its bytes at the time of reading.
    pub bytes: Vec<u8>,
}

/// Everything read from the input.
#[derive(Debug)]
pub struct Source {
    /// The path given.
    pub root: PathBuf,
    /// What it is.
    pub kind: SourceKind,
    /// The `wal/` directory, unless a single file was given.
    pub wal_dir: Option<PathBuf>,
    /// The decoded `STORE` identity, if present and valid.
    pub identity: Option<StoreIdentity>,
    /// Why there is no identity, when one was expected (missing or damaged `STORE`).
    pub identity_problem: Option<String>,
    /// Segment files in number order.
    pub segments: Vec<LoadedSegment>,
    /// Snapshot files, oldest first.
    pub snapshots: Vec<LoadedSnapshot>,
    /// Torn tails cut by earlier opens (`*.wal.torn-*`), with their sizes.
    pub torn_files: Vec<(PathBuf, u64)>,
}

fn read(path: &Path) -> Result<Vec<u8>, InputError> {
    std::fs::read(path).map_err(|e| input_err(path, format!("cannot read: {e}")))
}

/// Reads the input at `path`. Shows progress on stderr when it is a terminal.
pub fn load(path: &Path) -> Result<Source, InputError> {
    let meta =
        std::fs::metadata(path).map_err(|e| input_err(path, format!("cannot access: {e}")))?;
    if meta.is_file() {
        return load_file(path);
    }
    let (kind, wal_dir, store_dir) =
        if path.join(WAL_DIR).is_dir() || path.join(IDENTITY_FILE).exists() {
            (SourceKind::StoreDir, path.join(WAL_DIR), Some(path.to_path_buf()))
        } else {
            let segs = list_segment_files(path)
                .map_err(|e| input_err(path, format!("cannot list: {e}")))?;
            if segs.is_empty() {
                return Err(input_err(
                    path,
                    "not a walden store: no STORE file, no wal/ directory, no segment files",
                ));
            }
            let parent =
                path.parent().filter(|p| p.join(IDENTITY_FILE).exists()).map(Path::to_path_buf);
            (SourceKind::WalDir, path.to_path_buf(), parent)
        };
    let (identity, identity_problem) = match &store_dir {
        Some(dir) => read_identity(&dir.join(IDENTITY_FILE))?,
        None => (None, Some("no STORE identity file next to this wal directory".to_owned())),
    };
    let listed = if wal_dir.is_dir() {
        list_segment_files(&wal_dir)
            .map_err(|e| input_err(&wal_dir, format!("cannot list: {e}")))?
    } else {
        Vec::new()
    };
    let total = listed.len();
    let progress = std::io::stderr().is_terminal() && total > 1;
    let mut segments = Vec::with_capacity(listed.len());
    for (i, (segment_no, seg_path)) in listed.into_iter().enumerate() {
        if progress {
            eprint!("\rwalinspect: reading segment {}/{}", i + 1, total);
        }
        let bytes = match std::fs::read(&seg_path) {
            Ok(b) => b,
            // Removed between listing and reading: a live store dropped an empty segment.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(input_err(&seg_path, format!("cannot read: {e}"))),
        };
        segments.push(LoadedSegment { segment_no, path: seg_path, bytes });
    }
    if progress {
        eprint!("\r\x1b[K");
        let _ = std::io::stderr().flush();
    }
    let snapshots = match &store_dir {
        Some(dir) if kind == SourceKind::StoreDir => snapshot_files(dir)?,
        _ => Vec::new(),
    };
    Ok(Source {
        root: path.to_path_buf(),
        kind,
        snapshots,
        torn_files: torn_files(&wal_dir),
        wal_dir: Some(wal_dir),
        identity,
        identity_problem,
        segments,
    })
}

fn read_identity(path: &Path) -> Result<(Option<StoreIdentity>, Option<String>), InputError> {
    if !path.exists() {
        return Ok((None, Some("STORE identity file is missing".to_owned())));
    }
    let bytes = read(path)?;
    Ok(match StoreIdentity::decode(&bytes) {
        Ok(id) => (Some(id), None),
        Err(CorruptionKind::BadMagic) => {
            return Err(input_err(path, "not a walden store: STORE has the wrong magic bytes"))
        }
        Err(kind) => (None, Some(format!("STORE identity file is damaged: {kind}"))),
    })
}

fn torn_files(wal_dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out: Vec<(PathBuf, u64)> = std::fs::read_dir(wal_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| is_torn_file_name(&e.file_name().to_string_lossy()))
        .map(|e| (e.path(), e.metadata().map_or(0, |m| m.len())))
        .collect();
    out.sort();
    out
}

fn snapshot_files(dir: &Path) -> Result<Vec<LoadedSnapshot>, InputError> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| input_err(dir, format!("cannot list: {e}")))?
        .flatten()
        .filter_map(|e| {
            let lsn = e.file_name().to_str().and_then(parse_snapshot_file_name)?;
            Some((lsn, e.path()))
        })
        .collect();
    found.sort();
    let mut out = Vec::with_capacity(found.len());
    for (lsn, path) in found {
        match std::fs::read(&path) {
            Ok(bytes) => out.push(LoadedSnapshot { name_lsn: Some(lsn), path, bytes }),
            // Deleted meanwhile by a compaction of a live store.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(input_err(&path, format!("cannot read: {e}"))),
        }
    }
    Ok(out)
}

fn load_file(path: &Path) -> Result<Source, InputError> {
    let bytes = read(path)?;
    if bytes.starts_with(&SNAPSHOT_MAGIC) {
        let name_lsn = path.file_name().and_then(|n| n.to_str()).and_then(parse_snapshot_file_name);
        return Ok(Source {
            root: path.to_path_buf(),
            kind: SourceKind::SnapshotFile,
            wal_dir: None,
            identity: None,
            identity_problem: None,
            segments: Vec::new(),
            snapshots: vec![LoadedSnapshot { name_lsn, path: path.to_path_buf(), bytes }],
            torn_files: Vec::new(),
        });
    }
    let header = SegmentHeader::decode(&bytes);
    // An empty or all-zero file is a segment whose header never completed; anything else must
    // start with the magic (or as much of it as the file holds).
    let magic_prefix = bytes.iter().zip(SEGMENT_MAGIC.iter()).all(|(a, b)| a == b);
    if !magic_prefix && bytes.iter().any(|&b| b != 0) {
        return Err(input_err(path, "not a walden segment: wrong magic bytes"));
    }
    let by_name = path.file_name().and_then(|n| n.to_str()).and_then(parse_segment_file_name);
    let segment_no = by_name.or(header.as_ref().ok().map(|h| h.segment_no)).unwrap_or(0);
    Ok(Source {
        root: path.to_path_buf(),
        kind: SourceKind::SegmentFile,
        wal_dir: None,
        identity: None,
        identity_problem: None,
        segments: vec![LoadedSegment { segment_no, path: path.to_path_buf(), bytes }],
        snapshots: Vec::new(),
        torn_files: Vec::new(),
    })
}

/// Checks a record's body the way an open would: batch, rate-limit and breaker bodies must
/// decode (with the library's decoders).
pub fn check_frame_body(frame: &Frame<'_>) -> Result<(), CorruptionKind> {
    let r = match RecordKind::from_u8(frame.kind) {
        Some(RecordKind::Batch) => decode_batch(frame.body).map(|_| ()),
        Some(RecordKind::RateLimit) => RateLimitRecord::decode(frame.body).map(|_| ()),
        Some(RecordKind::Breaker) => BreakerRecord::decode(frame.body).map(|_| ()),
        Some(RecordKind::VersionFloor) => VersionFloorRecord::decode(frame.body).map(|_| ()),
        Some(RecordKind::Close) | None => Ok(()),
    };
    r.map_err(CorruptionKind::BadBody)
}

impl Source {
    /// The segments as the library's reader takes them.
    pub fn inputs(&self) -> Vec<SegmentInput<'_>> {
        self.segments
            .iter()
            .map(|s| SegmentInput { segment_no: s.segment_no, path: &s.path, bytes: &s.bytes })
            .collect()
    }

    /// Walks the log with the library's reader, handing every valid record to `on_record`.
    pub fn scan<'a>(&'a self, on_record: &mut dyn FnMut(&RecordRef<'a>)) -> LogScan {
        let inputs = self.inputs();
        scan_log(&inputs, self.identity.map(|i| i.store_id), &mut |r| {
            check_frame_body(&r.frame)?;
            on_record(r);
            Ok(())
        })
    }

    /// Walks the log and returns every valid record (up to the first damage) with the scan.
    pub fn records(&self) -> (Vec<RecordRef<'_>>, LogScan) {
        let mut recs = Vec::new();
        let scan = self.scan(&mut |r| recs.push(*r));
        (recs, scan)
    }

    /// The bytes of the file at `path`, if it is one of the loaded segments.
    pub fn bytes_of(&self, path: &Path) -> Option<&[u8]> {
        let seg = self.segments.iter().find(|s| s.path == path).map(|s| &s.bytes[..]);
        seg.or_else(|| self.snapshots.iter().find(|s| s.path == path).map(|s| &s.bytes[..]))
    }
}

/// A store id as 32 lowercase hex digits.
pub fn hex_id(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}
