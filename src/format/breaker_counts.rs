//! The body of a `BreakerCounts` record: a circuit breaker's counters in its current
//! generation (the failure streak, the failure-rate window, lifetime totals), why it last
//! opened and its last open period. Written at most once per breaker per counts interval.
//!
//! ```text
//! u8  body format version     = 1
//! u64 generation              the breaker generation these counts belong to
//! u64 logged_unix_ns          when the counts were taken
//! u8  reason                  why it last opened: 0 none, 1 consecutive failures,
//!                             2 failure rate, 3 predicate, 4 probe failed,
//!                             5 half-open timeout, 6 probe interrupted
//! u32 reason_a, u32 reason_b  1: (failures, 0); 2: (failures, calls); otherwise (0, 0)
//! u64 last_open_ns            length of the last open period (base of the next backoff)
//! u64 calls, successes, failures, slow_calls, rejected        lifetime totals
//! u32 consecutive_failures, consecutive_successes, window_calls, window_failures
//! u64 window_newest_unix_ns   time of the newest call in the window (0: empty)
//! u16 streak_len, then that many u64: failure times of the streak, oldest first
//! u16 name_len, then that many bytes (UTF-8 breaker name)
//! ```
//! All integers little-endian; nothing may follow the name.

use super::body::{put_str16, BodyReader};
use crate::limits::MAX_LOGGED_TIMES;

/// Body format version of `BreakerCounts` records this build writes and reads.
pub const BREAKER_COUNTS_BODY_VERSION: u8 = 1;

/// One decoded `BreakerCounts` record body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BreakerCountsRecord<'a> {
    /// The generation the counts belong to; replay ignores them once the breaker moved on.
    pub generation: u64,
    /// When the counts were taken, ns since the Unix epoch.
    pub logged_unix_ns: u64,
    /// Why the breaker last opened (0: none; see the module documentation).
    pub reason: u8,
    /// First detail of the reason.
    pub reason_a: u32,
    /// Second detail of the reason.
    pub reason_b: u32,
    /// Length of the last open period, ns (0: none since it last closed).
    pub last_open_ns: u64,
    /// Outcomes counted, lifetime.
    pub calls: u64,
    /// Successful outcomes, lifetime.
    pub successes: u64,
    /// Failed outcomes (slow ones included), lifetime.
    pub failures: u64,
    /// Slow outcomes, lifetime.
    pub slow_calls: u64,
    /// Rejected calls, lifetime.
    pub rejected: u64,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Successes in a row.
    pub consecutive_successes: u32,
    /// Calls in the failure-rate window.
    pub window_calls: u32,
    /// Failed calls in the failure-rate window.
    pub window_failures: u32,
    /// Time of the newest call in the window, ns since the Unix epoch (0: empty).
    pub window_newest_unix_ns: u64,
    /// Failure times of the current streak, oldest first (at most [`MAX_LOGGED_TIMES`]).
    pub streak_unix_ns: Vec<u64>,
    /// Name of the breaker.
    pub name: &'a str,
}

/// Appends a `u16` count and that many little-endian `u64`s.
///
/// # Panics
/// If `times` holds more than [`MAX_LOGGED_TIMES`]: callers bound it first.
pub(crate) fn put_times(out: &mut Vec<u8>, times: &[u64]) {
    assert!(times.len() <= MAX_LOGGED_TIMES, "time list bounded by its caller");
    out.extend_from_slice(&(times.len() as u16).to_le_bytes());
    for t in times {
        out.extend_from_slice(&t.to_le_bytes());
    }
}

/// Reads a list written by [`put_times`]; the length is checked against the bytes left
/// before anything is allocated.
pub(crate) fn read_times(r: &mut BodyReader<'_>, what: &str) -> Result<Vec<u64>, String> {
    let n = usize::from(r.u16(what)?);
    if n > MAX_LOGGED_TIMES {
        return Err(format!("{what}: {n} times, over the limit of {MAX_LOGGED_TIMES}"));
    }
    let bytes = r.bytes(n * 8, what)?;
    Ok(bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
}

impl<'a> BreakerCountsRecord<'a> {
    /// The body bytes. The caller has checked the name and bounded the streak.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + 8 * self.streak_unix_ns.len() + self.name.len());
        out.push(BREAKER_COUNTS_BODY_VERSION);
        out.extend_from_slice(&self.generation.to_le_bytes());
        out.extend_from_slice(&self.logged_unix_ns.to_le_bytes());
        out.push(self.reason);
        out.extend_from_slice(&self.reason_a.to_le_bytes());
        out.extend_from_slice(&self.reason_b.to_le_bytes());
        for v in [
            self.last_open_ns,
            self.calls,
            self.successes,
            self.failures,
            self.slow_calls,
            self.rejected,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [
            self.consecutive_failures,
            self.consecutive_successes,
            self.window_calls,
            self.window_failures,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.window_newest_unix_ns.to_le_bytes());
        put_times(&mut out, &self.streak_unix_ns);
        put_str16(&mut out, self.name);
        out
    }

    /// Decodes a body; any malformed input is an `Err` with a description, never a panic.
    pub fn decode(body: &'a [u8]) -> Result<BreakerCountsRecord<'a>, String> {
        let mut r = BodyReader::with_version(body, BREAKER_COUNTS_BODY_VERSION)?;
        let rec = BreakerCountsRecord {
            generation: r.u64("generation")?,
            logged_unix_ns: r.u64("logged_unix_ns")?,
            reason: r.u8("reason")?,
            reason_a: r.u32("reason_a")?,
            reason_b: r.u32("reason_b")?,
            last_open_ns: r.u64("last_open_ns")?,
            calls: r.u64("calls")?,
            successes: r.u64("successes")?,
            failures: r.u64("failures")?,
            slow_calls: r.u64("slow_calls")?,
            rejected: r.u64("rejected")?,
            consecutive_failures: r.u32("consecutive_failures")?,
            consecutive_successes: r.u32("consecutive_successes")?,
            window_calls: r.u32("window_calls")?,
            window_failures: r.u32("window_failures")?,
            window_newest_unix_ns: r.u64("window_newest_unix_ns")?,
            streak_unix_ns: read_times(&mut r, "streak")?,
            name: r.str16("breaker name")?,
        };
        r.finish()?;
        if rec.reason > 6 {
            return Err(format!("unknown trip reason {}", rec.reason));
        }
        if rec.window_failures > rec.window_calls {
            return Err("window_failures exceeds window_calls".to_owned());
        }
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::body::fuzz_decoder;

    fn sample() -> BreakerCountsRecord<'static> {
        BreakerCountsRecord {
            generation: 2,
            logged_unix_ns: 3,
            reason: 2,
            reason_a: 5,
            reason_b: 10,
            last_open_ns: 4,
            calls: 10,
            successes: 5,
            failures: 5,
            slow_calls: 1,
            rejected: 7,
            consecutive_failures: 2,
            consecutive_successes: 0,
            window_calls: 10,
            window_failures: 5,
            window_newest_unix_ns: 9,
            streak_unix_ns: vec![8, 9],
            name: "db",
        }
    }

    #[test]
    fn body_bytes_are_exactly_as_documented() {
        let b = sample().encode();
        let mut want = vec![1u8];
        want.extend_from_slice(&2u64.to_le_bytes());
        want.extend_from_slice(&3u64.to_le_bytes());
        want.push(2);
        want.extend_from_slice(&5u32.to_le_bytes());
        want.extend_from_slice(&10u32.to_le_bytes());
        for v in [4u64, 10, 5, 5, 1, 7] {
            want.extend_from_slice(&v.to_le_bytes());
        }
        for v in [2u32, 0, 10, 5] {
            want.extend_from_slice(&v.to_le_bytes());
        }
        want.extend_from_slice(&9u64.to_le_bytes());
        want.extend_from_slice(&[2, 0]);
        want.extend_from_slice(&8u64.to_le_bytes());
        want.extend_from_slice(&9u64.to_le_bytes());
        want.extend_from_slice(&[2, 0, b'd', b'b']);
        assert_eq!(b, want);
        assert_eq!(b.len(), 100 + 2 * 8 + 4);
        assert_eq!(BreakerCountsRecord::decode(&b), Ok(sample()));
    }

    #[test]
    fn garbage_never_panics_and_inconsistent_bodies_are_rejected() {
        fuzz_decoder(&sample().encode(), |b| BreakerCountsRecord::decode(b).is_ok());
        let bad = BreakerCountsRecord { reason: 7, ..sample() };
        assert!(BreakerCountsRecord::decode(&bad.encode()).unwrap_err().contains("reason"));
        let bad = BreakerCountsRecord { window_failures: 11, ..sample() };
        assert!(BreakerCountsRecord::decode(&bad.encode()).is_err());
        let mut long = sample().encode();
        let at = 1 + 8 + 8 + 1 + 4 + 4 + 6 * 8 + 4 * 4 + 8;
        long[at..at + 2].copy_from_slice(&1001u16.to_le_bytes());
        assert!(BreakerCountsRecord::decode(&long).unwrap_err().contains("over the limit"));
    }
}
