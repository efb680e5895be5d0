//! What both bench binaries share: the ~200 B test document and the bench directory.

use serde::Serialize;

/// A ~200 byte JSON document (211 bytes for an 8-digit id).
#[derive(Serialize, Clone)]
pub struct Doc {
    id: u64,
    name: String,
    email: String,
    active: bool,
    score: f64,
    tags: Vec<String>,
    note: String,
}

/// Document number `i`.
pub fn doc(i: u64) -> Doc {
    Doc {
        id: i,
        name: format!("user-{i:08}"),
        email: format!("user{i:08}@example.com"),
        active: i.is_multiple_of(2),
        score: i as f64 * 0.5,
        tags: vec!["alpha".into(), "beta".into(), "gamma".into()],
        note: "x".repeat(64),
    }
}

/// Key number `i`.
pub fn key(i: u64) -> String {
    format!("k{i:010}")
}

/// A fresh directory under `WALDEN_BENCH_DIR` if set (to choose the disk), else the system
/// temp directory.
pub fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("WALDEN_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).expect("temp dir"),
        None => tempfile::tempdir().expect("temp dir"),
    }
}
