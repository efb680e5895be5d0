//! The body of a `RateLimitViolations` record: one rate-limit key's violation history
//! (denied checks), written at most once per key per second.
//!
//! ```text
//! u8  body format version    = 1
//! u64 now_unix_ns            when the history was logged
//! u64 denials                denied checks in this history
//! u64 first_denied_unix_ns   first denial of this history
//! u64 last_denied_unix_ns    last denial
//! u64 expires_unix_ns        when the history is forgotten; ≤ now_unix_ns: replay removes it
//! u16 limiter_len, then that many bytes (UTF-8 limiter name)
//! u16 key_len,     then that many bytes (UTF-8 key)
//! ```
//! All integers little-endian; nothing may follow the key.

use super::body::{put_str16, BodyReader};

/// Body format version of `RateLimitViolations` records this build writes and reads.
pub const VIOLATIONS_BODY_VERSION: u8 = 1;

/// One decoded `RateLimitViolations` record body, borrowed from the bytes it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViolationsRecord<'a> {
    /// When the history was logged, ns since the Unix epoch.
    pub now_unix_ns: u64,
    /// Denied checks in this history.
    pub denials: u64,
    /// First denial of this history, ns since the Unix epoch.
    pub first_denied_unix_ns: u64,
    /// Last denial, ns since the Unix epoch.
    pub last_denied_unix_ns: u64,
    /// When the history is forgotten, ns since the Unix epoch.
    pub expires_unix_ns: u64,
    /// Name of the limiter.
    pub limiter: &'a str,
    /// The limited key.
    pub key: &'a str,
}

impl<'a> ViolationsRecord<'a> {
    /// The body bytes. The caller has checked that the name and key fit a `u16` length.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 5 * 8 + 4 + self.limiter.len() + self.key.len());
        out.push(VIOLATIONS_BODY_VERSION);
        for v in [
            self.now_unix_ns,
            self.denials,
            self.first_denied_unix_ns,
            self.last_denied_unix_ns,
            self.expires_unix_ns,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        put_str16(&mut out, self.limiter);
        put_str16(&mut out, self.key);
        out
    }

    /// Decodes a body; any malformed input is an `Err` with a description, never a panic.
    pub fn decode(body: &'a [u8]) -> Result<ViolationsRecord<'a>, String> {
        let mut r = BodyReader::with_version(body, VIOLATIONS_BODY_VERSION)?;
        let rec = ViolationsRecord {
            now_unix_ns: r.u64("now_unix_ns")?,
            denials: r.u64("denials")?,
            first_denied_unix_ns: r.u64("first_denied_unix_ns")?,
            last_denied_unix_ns: r.u64("last_denied_unix_ns")?,
            expires_unix_ns: r.u64("expires_unix_ns")?,
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

    fn sample() -> ViolationsRecord<'static> {
        ViolationsRecord {
            now_unix_ns: 1,
            denials: 2,
            first_denied_unix_ns: 3,
            last_denied_unix_ns: 4,
            expires_unix_ns: 5,
            limiter: "api",
            key: "k",
        }
    }

    #[test]
    fn body_bytes_are_exactly_as_documented() {
        let b = sample().encode();
        let mut want = vec![1u8];
        for v in [1u64, 2, 3, 4, 5] {
            want.extend_from_slice(&v.to_le_bytes());
        }
        want.extend_from_slice(&[3, 0, b'a', b'p', b'i', 1, 0, b'k']);
        assert_eq!(b, want);
        assert_eq!(ViolationsRecord::decode(&b), Ok(sample()));
    }

    #[test]
    fn garbage_never_panics_and_truncations_are_rejected() {
        fuzz_decoder(&sample().encode(), |b| ViolationsRecord::decode(b).is_ok());
    }
}
