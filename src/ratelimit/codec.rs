//! Byte helpers shared by the `RateLimit` and `Breaker` record bodies, and the name rule both
//! kinds of object follow.
//!
//! Decoding never panics and never allocates more than the body it reads: every length is
//! checked against the bytes that remain before it is used.

use crate::error::{LimitKind, Result};

/// Longest limiter or breaker name, in bytes. Names are stored with a `u16` length.
pub const MAX_OBJECT_NAME_BYTES: usize = 64;
const _: () = assert!(MAX_OBJECT_NAME_BYTES <= u16::MAX as usize);

/// Checks a limiter or breaker name: 1 to [`MAX_OBJECT_NAME_BYTES`] bytes of `[A-Za-z0-9_.-]`,
/// the rule collection names follow too.
pub(crate) fn check_object_name(what: LimitKind, name: &str) -> Result<()> {
    crate::store::check_name(what, name, MAX_OBJECT_NAME_BYTES)
}

pub(crate) use crate::format::body::BodyReader as Reader;

/// Appends a `u16` length and the bytes of `s`.
///
/// # Panics
/// If `s` is longer than `u16::MAX`: callers check names and keys first.
pub(crate) fn put_str16(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&u16::try_from(s.len()).expect("length checked").to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Test helper: a deterministic stream of garbage, bit flips and truncations of `valid`, fed
/// to `decode`, which must return (either way) without panicking.
#[cfg(test)]
pub(crate) fn fuzz_decoder(valid: &[u8], decode: impl Fn(&[u8]) -> bool) {
    assert!(decode(valid), "the valid body must decode");
    for len in 0..valid.len() {
        assert!(!decode(&valid[..len]), "truncation to {len} bytes accepted");
    }
    for bit in 0..valid.len() * 8 {
        let mut b = valid.to_vec();
        b[bit / 8] ^= 1 << (bit % 8);
        let _ = decode(&b);
    }
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 96) as usize;
        let mut b: Vec<u8> = (0..len).map(|i| (x >> (i % 8 * 8)) as u8 ^ i as u8).collect();
        if let Some(first) = b.first_mut() {
            *first = (x >> 60) as u8 % 3; // hit the valid version byte often
        }
        let _ = decode(&b);
    }
}
