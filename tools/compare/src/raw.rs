//! The physical limit: appending records of the same size to one file and
//! `fdatasync`ing after each record, or once per group of records (what a
//! perfect group commit of that many writers could reach).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::doc::Rng;
use crate::measure::{self, Latencies};
use crate::workload::per_sec;

/// Name of the append-only file inside the scratch directory.
const FILE_NAME: &str = "raw.log";
/// Seed of the record contents.
const RECORD_SEED: u64 = 0x00FD_A7A5;

/// What one raw append loop measured.
#[derive(Debug, Clone)]
pub struct RawOutcome {
    /// When in the run the loop ran (`start` or `end`).
    pub when: &'static str,
    /// Bytes per record.
    pub record_bytes: usize,
    /// Records per `fdatasync`.
    pub group: usize,
    /// Records appended.
    pub records: u64,
    /// `fdatasync` calls.
    pub syncs: u64,
    /// Length of the loop.
    pub elapsed: Duration,
    /// Per-record latency (a record waits for its group's sync).
    pub latency: Latencies,
}

impl RawOutcome {
    /// Durable records per second.
    pub fn records_per_sec(&self) -> f64 {
        per_sec(self.records, self.elapsed)
    }
}

/// Appends `record_bytes`-byte records to a fresh file in `dir`, syncing after
/// every `group` records (labelled `when`), until `duration` or `max_records` is reached.
pub fn append_loop(
    when: &'static str,
    dir: &Path,
    record_bytes: usize,
    group: usize,
    duration: Duration,
    max_records: u64,
) -> Result<RawOutcome> {
    fs::create_dir_all(dir)?;
    let path = dir.join(FILE_NAME);
    let mut file = OpenOptions::new().create(true).truncate(true).write(true).open(&path)?;
    let mut rng = Rng::new(RECORD_SEED);
    let record: Vec<u8> = (0..record_bytes).map(|_| rng.next_u64() as u8).collect();
    let group = group.max(1);
    let mut latency = measure::new_histogram();
    let (mut records, mut syncs) = (0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < duration && records < max_records {
        let t0 = Instant::now();
        for _ in 0..group {
            file.write_all(&record)?;
        }
        file.sync_data()?;
        let d = t0.elapsed();
        for _ in 0..group {
            measure::record(&mut latency, d);
        }
        records += group as u64;
        syncs += 1;
    }
    let elapsed = start.elapsed();
    drop(file);
    fs::remove_file(&path)?;
    Ok(RawOutcome { when, record_bytes, group, records, syncs, elapsed, latency })
}
