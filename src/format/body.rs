//! A bounds-checked little-endian reader over a record body: every decoder in the house reads
//! through it, so none can index past the end or allocate from a garbage length.

/// Reads fields front to back; every error names the field and its body offset.
pub(crate) struct BodyReader<'a> {
    buf: &'a [u8],
    at: usize,
}

type Decoded<T> = Result<T, String>;

impl<'a> BodyReader<'a> {
    /// Reads `buf` from its start.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        BodyReader { buf, at: 0 }
    }

    /// Reads `buf`, which must start with the body format version byte `version`.
    pub(crate) fn with_version(buf: &'a [u8], version: u8) -> Decoded<Self> {
        let mut r = BodyReader::new(buf);
        let found = r.u8("body format version")?;
        if found != version {
            return Err(format!("unknown body format version {found} (expected {version})"));
        }
        Ok(r)
    }

    /// Current offset in the body.
    pub(crate) fn offset(&self) -> usize {
        self.at
    }

    /// The next `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize, what: &str) -> Decoded<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| {
            format!("{what} at body offset {} runs past the end of the body", self.at)
        })?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn take<const N: usize>(&mut self, what: &str) -> Decoded<[u8; N]> {
        Ok(self.bytes(N, what)?.try_into().expect("length is N"))
    }

    /// One byte.
    pub(crate) fn u8(&mut self, what: &str) -> Decoded<u8> {
        Ok(self.take::<1>(what)?[0])
    }

    /// A little-endian `u16`.
    pub(crate) fn u16(&mut self, what: &str) -> Decoded<u16> {
        Ok(u16::from_le_bytes(self.take(what)?))
    }

    /// A little-endian `u32`.
    pub(crate) fn u32(&mut self, what: &str) -> Decoded<u32> {
        Ok(u32::from_le_bytes(self.take(what)?))
    }

    /// A little-endian `u64`.
    pub(crate) fn u64(&mut self, what: &str) -> Decoded<u64> {
        Ok(u64::from_le_bytes(self.take(what)?))
    }

    /// `len` bytes of UTF-8.
    pub(crate) fn str(&mut self, len: usize, what: &str) -> Decoded<&'a str> {
        let at = self.at;
        std::str::from_utf8(self.bytes(len, what)?)
            .map_err(|_| format!("{what} at body offset {at} is not UTF-8"))
    }

    /// A `u16` length followed by that many bytes of UTF-8.
    pub(crate) fn str16(&mut self, what: &str) -> Decoded<&'a str> {
        let len = self.u16(what)?;
        self.str(usize::from(len), what)
    }

    /// Fails if bytes remain after the last field.
    pub(crate) fn finish(self) -> Decoded<()> {
        self.at_end()
    }

    /// Fails if bytes remain after the last field (without consuming the reader).
    pub(crate) fn at_end(&self) -> Decoded<()> {
        if self.at == self.buf.len() {
            Ok(())
        } else {
            Err(format!("{} trailing bytes after the last field", self.buf.len() - self.at))
        }
    }
}

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
