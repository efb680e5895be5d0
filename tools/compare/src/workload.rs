//! Workloads and the runner of one cell (system x workload x dataset x threads).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use clap::ValueEnum;

use crate::doc::{bump, key, DocMaker, Rng};
use crate::kv::{Kv, System};
use crate::measure::{self, Latencies};
use crate::raw::RawOutcome;

/// Seed mixed into every thread's key/operation generator.
const RUN_SEED: u64 = 0xC0FF_EE00;

/// The workload mixes (YCSB-style, uniform key choice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum Workload {
    /// Insert-only: every operation writes a new key.
    Insert,
    /// YCSB A: 50% reads, 50% updates (overwrite of an existing document).
    A,
    /// YCSB B: 95% reads, 5% updates.
    B,
    /// YCSB F: 50% reads, 50% read-modify-write.
    F,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 4] = [Workload::Insert, Workload::A, Workload::B, Workload::F];

    /// Percentage of operations that are reads.
    fn read_percent(self) -> u32 {
        match self {
            Workload::Insert => 0,
            Workload::A | Workload::F => 50,
            Workload::B => 95,
        }
    }

    /// The label used in tables and charts.
    pub fn label(self) -> &'static str {
        match self {
            Workload::Insert => "insert-only",
            Workload::A => "A (50/50 read/update)",
            Workload::B => "B (95/5 read/update)",
            Workload::F => "F (50/50 read/read-modify-write)",
        }
    }

    /// A short name for file names.
    pub fn slug(self) -> &'static str {
        match self {
            Workload::Insert => "insert",
            Workload::A => "a",
            Workload::B => "b",
            Workload::F => "f",
        }
    }
}

/// One cell of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    /// The system under test.
    pub system: System,
    /// The operation mix.
    pub workload: Workload,
    /// Documents loaded before the measured phase.
    pub records: u64,
    /// Approximate serialized size of each document.
    pub doc_bytes: usize,
    /// Client threads issuing operations concurrently.
    pub threads: usize,
}

/// Bounds of one measured phase.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock budget of the measured phase.
    pub duration: Duration,
    /// Cap on operations in the measured phase.
    pub max_ops: u64,
}

/// What one cell measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The cell.
    pub cell: Cell,
    /// Operations completed in the measured phase.
    pub ops: u64,
    /// Of which writes (put or read-modify-write).
    pub writes: u64,
    /// Length of the measured phase.
    pub elapsed: Duration,
    /// Per-operation latency.
    pub latency: Latencies,
    /// `write_bytes` of `/proc/self/io` during the measured phase, if exposed.
    pub io_write_bytes: Option<u64>,
    /// Disk usage of the store directory before the measured phase.
    pub disk_before: u64,
    /// Disk usage of the store directory after close.
    pub disk_after: u64,
    /// fsyncs the store counted during the measured phase, if it counts them.
    pub fsyncs: Option<u64>,
    /// The raw append+fdatasync loop run around this cell (subject only).
    pub paired_raw: Option<RawOutcome>,
    /// Time to open the freshly loaded store (before the measured phase).
    pub open_time: Duration,
    /// Time to reopen (recover) the store after the measured phase.
    pub reopen_time: Duration,
}

impl Outcome {
    /// Operations per second.
    pub fn ops_per_sec(&self) -> f64 {
        per_sec(self.ops, self.elapsed)
    }

    /// Write operations per second.
    pub fn writes_per_sec(&self) -> f64 {
        per_sec(self.writes, self.elapsed)
    }

    /// Bytes sent to storage per operation, if measured.
    pub fn io_bytes_per_op(&self) -> Option<f64> {
        self.io_write_bytes.map(|b| b as f64 / self.ops.max(1) as f64)
    }
}

/// One outcome per cell: the round with the median throughput (the upper
/// median for an even count), in the order the cells first appear.
pub fn medians(all: Vec<Outcome>) -> Vec<Outcome> {
    let mut groups: Vec<Vec<Outcome>> = Vec::new();
    for o in all {
        match groups.iter_mut().find(|g| g[0].cell == o.cell) {
            Some(g) => g.push(o),
            None => groups.push(vec![o]),
        }
    }
    groups
        .into_iter()
        .filter_map(|mut g| {
            g.sort_by(|a, b| a.ops_per_sec().total_cmp(&b.ops_per_sec()));
            let mid = g.len() / 2;
            g.into_iter().nth(mid)
        })
        .collect()
}

/// `n` events over `d` as a rate.
pub fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// Loads the dataset of `cell` into `dir`, runs the workload and reopens the
/// store, measuring each step.
pub fn run_cell(dir: &Path, cell: Cell, limits: Limits) -> Result<Outcome> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let maker = DocMaker::new(cell.doc_bytes);

    let kv = cell.system.open(dir)?;
    kv.load(&mut (0..cell.records).map(|i| (key(i), maker.doc(i, 0))))?;
    kv.close()?;

    let disk_before = measure::disk_usage(dir)?;
    let t = Instant::now();
    let kv = cell.system.open(dir)?;
    let open_time = t.elapsed();

    let io_before = measure::process_write_bytes();
    let fsyncs_before = kv.fsyncs();
    let (ops, writes, elapsed, latency) = drive(kv.as_ref(), &maker, cell, limits)?;
    let fsyncs = kv.fsyncs().zip(fsyncs_before).map(|(a, b)| a.saturating_sub(b));
    kv.close()?;
    let io_after = measure::process_write_bytes();
    let disk_after = measure::disk_usage(dir)?;

    let t = Instant::now();
    let kv = cell.system.open(dir)?;
    let reopen_time = t.elapsed();
    kv.close()?;
    std::fs::remove_dir_all(dir)?;

    Ok(Outcome {
        cell,
        ops,
        writes,
        elapsed,
        latency,
        io_write_bytes: io_before.zip(io_after).map(|(b, a)| a.saturating_sub(b)),
        disk_before,
        disk_after,
        fsyncs,
        paired_raw: None,
        open_time,
        reopen_time,
    })
}

/// Runs the measured phase on `cell.threads` threads.
fn drive(
    kv: &dyn Kv,
    maker: &DocMaker,
    cell: Cell,
    limits: Limits,
) -> Result<(u64, u64, Duration, Latencies)> {
    let issued = AtomicU64::new(0);
    let next_insert = AtomicU64::new(cell.records);
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let deadline = start + limits.duration;
    let per_thread = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cell.threads)
            .map(|t| {
                let (issued, next_insert, stop) = (&issued, &next_insert, &stop);
                s.spawn(move || -> Result<(u64, Latencies)> {
                    let mut rng = Rng::new(RUN_SEED ^ (t as u64 + 1).wrapping_mul(0x9E37_79B9));
                    let mut hist = measure::new_histogram();
                    let mut writes = 0;
                    while !stop.load(Ordering::Relaxed)
                        && Instant::now() < deadline
                        && issued.fetch_add(1, Ordering::Relaxed) < limits.max_ops
                    {
                        let t0 = Instant::now();
                        let wrote = one_op(kv, maker, cell, &mut rng, next_insert);
                        measure::record(&mut hist, t0.elapsed());
                        match wrote {
                            Ok(w) => writes += u64::from(w),
                            Err(e) => {
                                stop.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    }
                    Ok((writes, hist))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow!("worker panicked"))?)
            .collect::<Result<Vec<_>>>()
    })?;
    let elapsed = start.elapsed();
    let mut latency = measure::new_histogram();
    let mut writes = 0;
    for (w, h) in per_thread {
        writes += w;
        latency.add(h)?;
    }
    Ok((latency.len(), writes, elapsed, latency))
}

/// Performs one operation of the mix; returns whether it wrote.
fn one_op(
    kv: &dyn Kv,
    maker: &DocMaker,
    cell: Cell,
    rng: &mut Rng,
    next_insert: &AtomicU64,
) -> Result<bool> {
    if cell.workload == Workload::Insert {
        let id = next_insert.fetch_add(1, Ordering::Relaxed);
        kv.put(&key(id), &maker.doc(id, 0))?;
        return Ok(true);
    }
    let id = rng.below(cell.records.max(1));
    let k = key(id);
    if rng.percent() < cell.workload.read_percent() {
        kv.get(&k)?;
        return Ok(false);
    }
    if cell.workload == Workload::F {
        kv.read_modify_write(&k, &bump)?;
    } else {
        kv.put(&k, &maker.doc(id, rng.next_u64()))?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cell stops at its operation cap, counts its writes and leaves nothing behind.
    #[test]
    fn a_cell_respects_its_operation_cap() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("cell");
        let cell = Cell {
            system: System::JsonNosync,
            workload: Workload::Insert,
            records: 10,
            doc_bytes: 200,
            threads: 2,
        };
        let limits = Limits { duration: Duration::from_secs(30), max_ops: 40 };
        let o = run_cell(&dir, cell, limits).unwrap();
        assert_eq!(o.ops, 40);
        assert_eq!(o.writes, 40);
        assert!(o.disk_after > 0);
        assert!(!dir.exists());
    }
}
