//! The body of a `Lockout` record: one lockout key's whole state after a change.
//!
//! ```text
//! u8  body format version    = 1
//! u64 now_unix_ns            when the change happened
//! u64 locked_until_unix_ns   end of the key's lock (0 or past: not locked)
//! u64 expires_unix_ns        when the key is idle (lock over, newest failure out of the
//!                            window); ≤ now_unix_ns: idle now, replay removes the key
//! u16 failures_len, then that many u64: failure times in the window, oldest first
//! u16 name_len, then that many bytes (UTF-8 lockout name)
//! u16 key_len,  then that many bytes (UTF-8 key)
//! ```
//! All integers little-endian; nothing may follow the key.

use super::body::{put_str16, BodyReader};
use super::breaker_counts::{put_times, read_times};

/// Body format version of `Lockout` records this build writes and reads.
pub const LOCKOUT_BODY_VERSION: u8 = 1;

/// One decoded `Lockout` record body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockoutRecord<'a> {
    /// When the change happened, ns since the Unix epoch.
    pub now_unix_ns: u64,
    /// End of the key's lock, ns since the Unix epoch.
    pub locked_until_unix_ns: u64,
    /// When the key becomes idle, ns since the Unix epoch.
    pub expires_unix_ns: u64,
    /// Failure times counted towards the next lock, oldest first.
    pub failures_unix_ns: Vec<u64>,
    /// Name of the lockout.
    pub name: &'a str,
    /// The key.
    pub key: &'a str,
}

impl<'a> LockoutRecord<'a> {
    /// The body bytes. The caller has checked the name and key and bounded the failures.
    pub fn encode(&self) -> Vec<u8> {
        let len = 1 + 3 * 8 + 2 + 8 * self.failures_unix_ns.len() + 4 + self.name.len();
        let mut out = Vec::with_capacity(len + self.key.len());
        out.push(LOCKOUT_BODY_VERSION);
        out.extend_from_slice(&self.now_unix_ns.to_le_bytes());
        out.extend_from_slice(&self.locked_until_unix_ns.to_le_bytes());
        out.extend_from_slice(&self.expires_unix_ns.to_le_bytes());
        put_times(&mut out, &self.failures_unix_ns);
        put_str16(&mut out, self.name);
        put_str16(&mut out, self.key);
        out
    }

    /// Decodes a body; any malformed input is an `Err` with a description, never a panic.
    pub fn decode(body: &'a [u8]) -> Result<LockoutRecord<'a>, String> {
        let mut r = BodyReader::with_version(body, LOCKOUT_BODY_VERSION)?;
        let rec = LockoutRecord {
            now_unix_ns: r.u64("now_unix_ns")?,
            locked_until_unix_ns: r.u64("locked_until_unix_ns")?,
            expires_unix_ns: r.u64("expires_unix_ns")?,
            failures_unix_ns: read_times(&mut r, "failures")?,
            name: r.str16("lockout name")?,
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

    fn sample() -> LockoutRecord<'static> {
        LockoutRecord {
            now_unix_ns: 1,
            locked_until_unix_ns: 2,
            expires_unix_ns: 3,
            failures_unix_ns: vec![4],
            name: "login",
            key: "ké",
        }
    }

    #[test]
    fn body_bytes_are_exactly_as_documented() {
        let b = sample().encode();
        let mut want = vec![1u8];
        for v in [1u64, 2, 3] {
            want.extend_from_slice(&v.to_le_bytes());
        }
        want.extend_from_slice(&[1, 0]);
        want.extend_from_slice(&4u64.to_le_bytes());
        want.extend_from_slice(&[5, 0, b'l', b'o', b'g', b'i', b'n', 3, 0, b'k', 0xc3, 0xa9]);
        assert_eq!(b, want);
        assert_eq!(LockoutRecord::decode(&b), Ok(sample()));
    }

    #[test]
    fn garbage_never_panics_and_truncations_are_rejected() {
        fuzz_decoder(&sample().encode(), |b| LockoutRecord::decode(b).is_ok());
    }
}
