//! The body of a `RateLimit` record: one key's theoretical arrival time.
//!
//! ```text
//! u8  body format version   = 1
//! u64 now_unix_ns           the limiter's time when the check ran (raises the high-water mark)
//! u64 tat_unix_ns           the key's theoretical arrival time after the check
//! u16 limiter_len, then that many bytes (UTF-8 limiter name)
//! u16 key_len,     then that many bytes (UTF-8 key)
//! ```
//! All integers little-endian; nothing may follow the key. A `tat_unix_ns` ≤ `now_unix_ns`
//! means the key is idle (equivalent to a fresh key), and replay drops it.

use super::body::{put_str16, BodyReader};

/// Body format version of `RateLimit` records this build writes and reads.
pub const RATELIMIT_BODY_VERSION: u8 = 1;

/// One decoded `RateLimit` record body, borrowed from the bytes it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitRecord<'a> {
    /// The limiter's (monotonic) time when the check ran, ns since the Unix epoch.
    pub now_unix_ns: u64,
    /// The key's theoretical arrival time after the check, ns since the Unix epoch.
    pub tat_unix_ns: u64,
    /// Name of the limiter.
    pub limiter: &'a str,
    /// The limited key.
    pub key: &'a str,
}

impl<'a> RateLimitRecord<'a> {
    /// The body bytes. The caller has checked that the name and key fit a `u16` length.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 8 + 8 + 2 + self.limiter.len() + 2 + self.key.len());
        out.push(RATELIMIT_BODY_VERSION);
        out.extend_from_slice(&self.now_unix_ns.to_le_bytes());
        out.extend_from_slice(&self.tat_unix_ns.to_le_bytes());
        put_str16(&mut out, self.limiter);
        put_str16(&mut out, self.key);
        out
    }

    /// Decodes a body; any malformed input is an `Err` with a description, never a panic.
    pub fn decode(body: &'a [u8]) -> Result<RateLimitRecord<'a>, String> {
        let mut r = BodyReader::with_version(body, RATELIMIT_BODY_VERSION)?;
        let rec = RateLimitRecord {
            now_unix_ns: r.u64("now_unix_ns")?,
            tat_unix_ns: r.u64("tat_unix_ns")?,
            limiter: r.str16("limiter name")?,
            key: r.str16("key")?,
        };
        r.finish()?;
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::body::fuzz_decoder;

    #[test]
    fn body_bytes_are_exactly_as_documented() {
        let rec = RateLimitRecord { now_unix_ns: 1, tat_unix_ns: 2, limiter: "api", key: "k" };
        let b = rec.encode();
        let mut want = vec![1u8];
        want.extend_from_slice(&1u64.to_le_bytes());
        want.extend_from_slice(&2u64.to_le_bytes());
        want.extend_from_slice(&[3, 0, b'a', b'p', b'i', 1, 0, b'k']);
        assert_eq!(b, want);
        assert_eq!(RateLimitRecord::decode(&b), Ok(rec));
    }

    #[test]
    fn garbage_never_panics_and_truncations_are_rejected() {
        let rec = RateLimitRecord { now_unix_ns: 9, tat_unix_ns: 99, limiter: "l", key: "ké" };
        fuzz_decoder(&rec.encode(), |b| RateLimitRecord::decode(b).is_ok());
    }

    #[test]
    fn trailing_bytes_and_unknown_versions_are_rejected() {
        let mut b =
            RateLimitRecord { now_unix_ns: 0, tat_unix_ns: 0, limiter: "l", key: "k" }.encode();
        b.push(0);
        assert!(RateLimitRecord::decode(&b).unwrap_err().contains("trailing bytes"));
        b.pop();
        b[0] = 2;
        assert!(RateLimitRecord::decode(&b).unwrap_err().contains("version 2"));
    }
}
