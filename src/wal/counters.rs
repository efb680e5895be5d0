//! Counters the log keeps for `Store::stats`: fixed memory, lock-free.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Counters for `Store::stats`.
#[derive(Debug, Default)]
pub(crate) struct WalCounters {
    pub fsyncs: AtomicU64,
    pub groups: AtomicU64,
    pub records: AtomicU64,
    pub max_group_records: AtomicU64,
    pub bytes_written: AtomicU64,
    pub segments_created: AtomicU64,
    /// Number of the segment being appended to (kept here so stats never wait on the I/O).
    pub active_segment_no: AtomicU64,
    /// Bytes of all segment files on disk (kept current by writes, rolls and compaction).
    pub wal_bytes_on_disk: AtomicU64,
    pub latency: LatencyHistogram,
}

/// Commit latencies in power-of-two microsecond buckets: fixed memory, lock-free.
#[derive(Debug)]
pub(crate) struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BUCKETS],
    total_us: AtomicU64,
    max_us: AtomicU64,
    count: AtomicU64,
}

/// Buckets of [`LatencyHistogram`]: bucket `i` holds latencies below `2^i` µs.
const LATENCY_BUCKETS: usize = 40;

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            total_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl LatencyHistogram {
    pub(crate) fn record(&self, us: u64) {
        let bucket = (64 - us.leading_zeros() as usize).min(LATENCY_BUCKETS - 1);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.total_us.fetch_add(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Upper bound of quantile `q` (0..=1), in microseconds: the largest value of the bucket
    /// that holds it, or the slowest latency seen if that is lower. Not interpolated.
    pub fn quantile_upper_bound_us(&self, q: f64) -> u64 {
        let count = self.count.load(Ordering::Relaxed);
        if count == 0 {
            return 0;
        }
        let rank = ((count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= rank {
                let bound = if i == 0 { 0 } else { (1u64 << i) - 1 };
                return bound.min(self.max_us.load(Ordering::Relaxed));
            }
        }
        self.max_us.load(Ordering::Relaxed)
    }

    pub fn mean_us(&self) -> u64 {
        let count = self.count.load(Ordering::Relaxed);
        self.total_us.load(Ordering::Relaxed).checked_div(count).unwrap_or(0)
    }

    pub fn max_us(&self) -> u64 {
        self.max_us.load(Ordering::Relaxed)
    }
}

/// Microseconds since `start`, saturating at `u64::MAX` (about 584,000 years).
pub(crate) fn elapsed_us(start: Instant) -> u64 {
    start.elapsed().as_micros().min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_bucket_upper_bounds_capped_by_the_slowest_commit() {
        let h = LatencyHistogram::default();
        for us in [40_000, 40_000, 100] {
            h.record(us);
        }
        // 40,000 µs falls in [32,768, 65,535], but no commit took more than 40,000 µs.
        assert_eq!(h.quantile_upper_bound_us(0.5), 40_000, "capped by the slowest commit");
        h.record(70_000);
        assert_eq!(h.quantile_upper_bound_us(0.5), 65_535, "the bucket's top, not the max");
        assert_eq!(h.quantile_upper_bound_us(0.0), 127, "100 µs is in [64, 127]");
    }
}
