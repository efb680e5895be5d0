//! Process I/O counters, on-disk sizes and latency histograms.

use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use hdrhistogram::Histogram;

/// Bytes per block as reported by `st_blocks`.
const STAT_BLOCK_BYTES: u64 = 512;
/// Lowest latency the histograms track, in nanoseconds.
const HIST_LOW_NS: u64 = 1;
/// Highest latency the histograms track, in nanoseconds (10 minutes).
const HIST_HIGH_NS: u64 = 600_000_000_000;
/// Significant decimal digits kept by the histograms.
const HIST_SIGFIGS: u8 = 3;

/// A latency histogram in nanoseconds.
pub type Latencies = Histogram<u64>;

/// A new, empty latency histogram.
pub fn new_histogram() -> Latencies {
    Histogram::new_with_bounds(HIST_LOW_NS, HIST_HIGH_NS, HIST_SIGFIGS)
        .expect("constant histogram bounds are valid")
}

/// Records `d` (saturating at the histogram's upper bound).
pub fn record(h: &mut Latencies, d: Duration) {
    let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    h.saturating_record(ns.clamp(HIST_LOW_NS, HIST_HIGH_NS));
}

/// Bytes this process caused to be sent to storage so far (`write_bytes` of
/// `/proc/self/io`), if the kernel exposes it.
pub fn process_write_bytes() -> Option<u64> {
    let io = fs::read_to_string("/proc/self/io").ok()?;
    io.lines().find_map(|l| l.strip_prefix("write_bytes:")).and_then(|v| v.trim().parse().ok())
}

/// Space allocated on disk for everything under `dir` (sum of `st_blocks`).
pub fn disk_usage(dir: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    if !dir.exists() {
        return Ok(0);
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            disk_usage(&entry.path())?
        } else {
            meta.blocks() * STAT_BLOCK_BYTES
        };
    }
    Ok(total)
}
