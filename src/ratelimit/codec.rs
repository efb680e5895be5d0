//! Byte helpers shared by the `RateLimit` and `Breaker` record bodies, and the name rule both
//! kinds of object follow.
//!
//! Decoding never panics and never allocates more than the body it reads: every length is
//! checked against the bytes that remain before it is used.

use crate::error::{Error, LimitKind, Result};

/// Longest limiter or breaker name, in bytes. Names are stored with a `u16` length.
pub const MAX_OBJECT_NAME_BYTES: usize = 64;
const _: () = assert!(MAX_OBJECT_NAME_BYTES <= u16::MAX as usize);

/// Checks a limiter or breaker name: 1 to [`MAX_OBJECT_NAME_BYTES`] bytes of `[A-Za-z0-9_.-]`.
pub(crate) fn check_object_name(what: LimitKind, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidName { what, name: String::new(), reason: "must not be empty" });
    }
    if name.len() > MAX_OBJECT_NAME_BYTES {
        return Err(Error::TooLarge { what, size: name.len(), limit: MAX_OBJECT_NAME_BYTES });
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
        return Err(Error::InvalidName {
            what,
            name: name.to_owned(),
            reason: "only A-Z, a-z, 0-9, '_', '.' and '-' are allowed",
        });
    }
    Ok(())
}

/// Appends a `u16` length and the bytes of `s`.
///
/// # Panics
/// If `s` is longer than `u16::MAX`: callers check names and keys first.
pub(crate) fn put_str16(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&u16::try_from(s.len()).expect("length checked").to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A bounds-checked little-endian reader over a record body.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// Reads `buf`, which must start with the body format version `version`.
    pub(crate) fn new(buf: &'a [u8], version: u8) -> std::result::Result<Self, String> {
        let mut r = Reader { buf, at: 0 };
        let found = r.u8("body format version")?;
        if found != version {
            return Err(format!("unknown body format version {found} (expected {version})"));
        }
        Ok(r)
    }

    fn take<const N: usize>(&mut self, what: &str) -> std::result::Result<[u8; N], String> {
        let bytes = self.bytes(N, what)?;
        Ok(bytes.try_into().expect("length is N"))
    }

    /// The next `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize, what: &str) -> std::result::Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| {
            format!("{what} at body offset {} runs past the end of the body", self.at)
        })?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }

    /// One byte.
    pub(crate) fn u8(&mut self, what: &str) -> std::result::Result<u8, String> {
        Ok(self.take::<1>(what)?[0])
    }

    /// A little-endian `u64`.
    pub(crate) fn u64(&mut self, what: &str) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(what)?))
    }

    /// A `u16` length followed by that many bytes of UTF-8.
    pub(crate) fn str16(&mut self, what: &str) -> std::result::Result<&'a str, String> {
        let len = u16::from_le_bytes(self.take(what)?);
        let at = self.at;
        let bytes = self.bytes(usize::from(len), what)?;
        std::str::from_utf8(bytes).map_err(|_| format!("{what} at body offset {at} is not UTF-8"))
    }

    /// Fails if bytes remain after the last field.
    pub(crate) fn finish(self) -> std::result::Result<(), String> {
        if self.at == self.buf.len() {
            Ok(())
        } else {
            Err(format!("{} unexpected bytes after the body", self.buf.len() - self.at))
        }
    }
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
