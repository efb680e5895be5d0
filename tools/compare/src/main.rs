//! `compare`: walden against the JSON-file pattern, SQLite, redb, fjall and the
//! raw append+fdatasync limit, same workload, same run, same disk (issue 6).
//!
//! See `tools/compare/README.md` for what it measures and how to run it.

mod adapters;
mod charts;
mod doc;
mod kv;
mod machine;
mod measure;
mod raw;
mod report;
mod workload;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;

use crate::kv::System;
use crate::report::Run;
use crate::workload::{Cell, Limits, Outcome, Workload};

/// Default seconds per cell in full mode.
const FULL_SECONDS: f64 = 2.0;
/// Default operation cap per cell in full mode.
const FULL_MAX_OPS: u64 = 2_000_000;
/// Dataset sizes of full mode.
const FULL_RECORDS: [u64; 3] = [100, 10_000, 100_000];
/// Document sizes of full mode (about 200 B and 4 KiB serialized).
const FULL_DOC_BYTES: [usize; 2] = [200, 4096];
/// Thread counts of full mode.
const FULL_THREADS: [usize; 4] = [1, 4, 16, 64];
/// Seconds per cell in quick mode.
const QUICK_SECONDS: f64 = 0.1;
/// Operation cap per cell in quick mode.
const QUICK_MAX_OPS: u64 = 5_000;
/// Dataset sizes of quick mode.
const QUICK_RECORDS: [u64; 2] = [100, 1_000];
/// Document sizes of quick mode.
const QUICK_DOC_BYTES: [usize; 1] = [200];
/// Thread counts of quick mode.
const QUICK_THREADS: [usize; 2] = [1, 4];
/// The JSON-file systems skip datasets larger than this (records × doc size):
/// one operation would rewrite hundreds of MiB, and a cell's time bound
/// cannot interrupt an operation already started.
const JSON_MAX_COLLECTION_BYTES: u64 = 64 << 20;

/// Command line.
#[derive(Debug, Parser)]
#[command(name = "compare", about = "walden vs JSON files, SQLite, redb, fjall and raw fdatasync")]
struct Args {
    /// CI mode: tiny datasets, 1 and 4 threads, a fraction of a second per cell.
    #[arg(long)]
    quick: bool,
    /// Where the stores live during the run (a scratch subdirectory is created and removed).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/target/compare-data"))]
    dir: PathBuf,
    /// Where report.md, results.json and the SVG charts are written.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/bench"))]
    out: PathBuf,
    /// Wall-clock seconds of each cell's measured phase (default 2, quick 0.1).
    #[arg(long)]
    seconds: Option<f64>,
    /// Cap on operations per cell (default 2M, quick 5000).
    #[arg(long)]
    ops: Option<u64>,
    /// Systems to run (default: all this build has).
    #[arg(long, value_enum, value_delimiter = ',')]
    systems: Vec<System>,
    /// Workloads to run (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    workloads: Vec<Workload>,
    /// Dataset sizes in documents (default 100,10000,100000).
    #[arg(long, value_delimiter = ',')]
    records: Vec<u64>,
    /// Document sizes in bytes (default 200,4096).
    #[arg(long, value_delimiter = ',')]
    doc_bytes: Vec<usize>,
    /// Client thread counts (default 1,4,16,64).
    #[arg(long, value_delimiter = ',')]
    threads: Vec<usize>,
    /// Rounds over the whole matrix; each cell reports its median round (use 3
    /// or more on a disk shared with other work).
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// The system the headline ratios are about.
    #[arg(long, value_enum, default_value = "walden-immediate")]
    subject: System,
}

/// `given`, or `default` when nothing was given.
fn or_default<T: Clone>(given: &[T], default: &[T]) -> Vec<T> {
    if given.is_empty() {
        default.to_vec()
    } else {
        given.to_vec()
    }
}

/// Runs the raw append+fdatasync loop for every document size and group
/// (one group per thread count), recording it as measured at `when`.
fn measure_raw(
    run: &mut Run,
    when: &'static str,
    scratch: &Path,
    docs: &[usize],
    threads: &[usize],
    limits: Limits,
) -> Result<()> {
    for &doc in docs {
        for &t in threads {
            let r = raw::append_loop(when, scratch, doc, t, limits.duration, limits.max_ops)?;
            eprintln!(
                "raw append+fdatasync ({when}) {doc} B, group {t}: {:.0} records/s",
                r.records_per_sec()
            );
            run.raw.push(r);
        }
    }
    Ok(())
}

/// Runs `cell` between two raw append+fdatasync loops of its record size and
/// group (= threads), keeping the faster loop in the outcome, so a momentarily
/// slow disk cannot flatter the cell. Fails only if a raw loop fails.
fn run_paired(scratch: &Path, cell: Cell, limits: Limits) -> Result<Result<Outcome>> {
    let raw_loop = || {
        raw::append_loop(
            "paired",
            scratch,
            cell.doc_bytes,
            cell.threads,
            limits.duration,
            limits.max_ops,
        )
    };
    let before = raw_loop()?;
    let result = workload::run_cell(&scratch.join(cell.system.slug()), cell, limits);
    let after = raw_loop()?;
    let best = if after.records_per_sec() > before.records_per_sec() { after } else { before };
    Ok(result.map(|o| Outcome { paired_raw: Some(best), ..o }))
}

/// The axes of the matrix this invocation runs.
struct Matrix {
    systems: Vec<System>,
    workloads: Vec<Workload>,
    records: Vec<u64>,
    docs: Vec<usize>,
    threads: Vec<usize>,
}

impl Matrix {
    /// The axes from the command line, defaulting per mode.
    fn from_args(args: &Args) -> Matrix {
        let available: Vec<System> = System::ALL.into_iter().filter(|s| s.available()).collect();
        let (records, docs, threads): (&[u64], &[usize], &[usize]) = if args.quick {
            (&QUICK_RECORDS, &QUICK_DOC_BYTES, &QUICK_THREADS)
        } else {
            (&FULL_RECORDS, &FULL_DOC_BYTES, &FULL_THREADS)
        };
        Matrix {
            systems: or_default(&args.systems, &available),
            workloads: or_default(&args.workloads, &Workload::ALL),
            records: or_default(&args.records, records),
            docs: or_default(&args.doc_bytes, docs),
            threads: or_default(&args.threads, threads),
        }
    }

    /// Every cell, in run order; JSON-file cells above the size bound go to
    /// `skipped` instead.
    fn cells(&self, skipped: &mut Vec<(Cell, String)>) -> Vec<Cell> {
        let mut cells = Vec::new();
        for &system in self.systems.iter().filter(|s| s.available()) {
            for &workload in &self.workloads {
                for &doc_bytes in &self.docs {
                    for &records in &self.records {
                        cells.extend(self.threads.iter().map(|&threads| Cell {
                            system,
                            workload,
                            records,
                            doc_bytes,
                            threads,
                        }));
                    }
                }
            }
        }
        cells.retain(|cell| {
            let too_big = matches!(cell.system, System::JsonFsync | System::JsonNosync)
                && cell.records.saturating_mul(cell.doc_bytes as u64) > JSON_MAX_COLLECTION_BYTES;
            if too_big {
                let why = format!(
                    "collection above {} MiB; each write would rewrite all of it",
                    JSON_MAX_COLLECTION_BYTES >> 20
                );
                skipped.push((*cell, why));
            }
            !too_big
        });
        cells
    }
}

/// Runs every cell `run.repeat` times (round-robin, so disk drift spreads over
/// all systems) and keeps each cell's median round in `run.outcomes`.
fn run_rounds(
    run: &mut Run,
    cells: &[Cell],
    subject: System,
    scratch: &Path,
    limits: Limits,
) -> Result<()> {
    let repeat = run.repeat;
    let mut all = Vec::new();
    for round in 1..=repeat {
        for &cell in cells {
            let result = if cell.system == subject {
                run_paired(scratch, cell, limits)?
            } else {
                workload::run_cell(&scratch.join(cell.system.slug()), cell, limits)
            };
            match result {
                Ok(o) => {
                    eprintln!(
                        "[{round}/{repeat}] {:<40} {:<6} {:>7} docs {:>5} B {:>3} thr: {:>10.0} ops/s",
                        cell.system.label(),
                        cell.workload.slug(),
                        cell.records,
                        cell.doc_bytes,
                        cell.threads,
                        o.ops_per_sec()
                    );
                    all.push(o);
                }
                Err(e) => {
                    eprintln!("FAILED {cell:?}: {e:#}");
                    run.failed.push((cell, format!("{e:#}")));
                }
            }
        }
    }
    run.outcomes = workload::medians(all);
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let (seconds, max_ops) =
        if args.quick { (QUICK_SECONDS, QUICK_MAX_OPS) } else { (FULL_SECONDS, FULL_MAX_OPS) };
    let limits = Limits {
        duration: Duration::from_secs_f64(args.seconds.unwrap_or(seconds)),
        max_ops: args.ops.unwrap_or(max_ops),
    };
    let matrix = Matrix::from_args(&args);
    for system in matrix.systems.iter().filter(|s| !s.available()) {
        eprintln!("{}: not in this build (enable the `walden` feature)", system.label());
    }

    std::fs::create_dir_all(&args.dir).with_context(|| format!("create {}", args.dir.display()))?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("create {}", args.out.display()))?;
    let scratch = args.dir.join(format!("run-{}", std::process::id()));
    let mut run = Run {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: machine::describe(&args.dir),
        quick: args.quick,
        outcomes: Vec::new(),
        raw: Vec::new(),
        skipped: Vec::new(),
        failed: Vec::new(),
        repeat: args.repeat.max(1),
        total: Duration::ZERO,
    };

    let cells = matrix.cells(&mut run.skipped);
    measure_raw(&mut run, "start", &scratch, &matrix.docs, &matrix.threads, limits)?;
    run_rounds(&mut run, &cells, args.subject, &scratch, limits)?;
    measure_raw(&mut run, "end", &scratch, &matrix.docs, &matrix.threads, limits)?;
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)?;
    }

    run.total = started.elapsed();
    let md = report::markdown(&run, args.subject);
    std::fs::write(args.out.join("report.md"), md)?;
    std::fs::write(args.out.join("results.json"), report::json(&run)?)?;
    let charts = charts::write_all(&run, &args.out)?;
    if !run.failed.is_empty() {
        anyhow::bail!("{} cells failed (listed in report.md)", run.failed.len());
    }
    eprintln!(
        "wrote report.md, results.json and {} charts to {} in {:.1} s",
        charts.len(),
        args.out.display(),
        run.total.as_secs_f64()
    );
    Ok(())
}
