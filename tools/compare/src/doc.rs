//! Deterministic document and key generation shared by every system.
//!
//! Every system stores the same JSON documents under the same keys, so the
//! only difference between rows of the report is the storage engine.

use serde_json::{json, Value};

/// Size of the precomputed pool of incompressible filler characters.
const FILLER_POOL_BYTES: usize = 64 * 1024;
/// Alphabet of the filler: printable, JSON-safe, and not trivially compressible.
const FILLER_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// Bytes of a serialized document taken by everything except the filler
/// (`{"id":…,"v":…,"body":"…"}` with 12-digit numbers), used to hit the target size.
const DOC_OVERHEAD_BYTES: usize = 48;
/// Seed of the filler pool, fixed so every run writes the same bytes.
const FILLER_SEED: u64 = 0x005E_ED0F_F111;

/// A small, fast, deterministic PRNG (SplitMix64); statistical quality is
/// ample for choosing keys and operations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A uniform value in `0..100`, for operation mixes given in percent.
    pub fn percent(&mut self) -> u32 {
        // The modulus is 100, so the value always fits.
        u32::try_from(self.below(100)).unwrap_or(0)
    }
}

/// Makes documents of a fixed serialized size.
#[derive(Debug, Clone)]
pub struct DocMaker {
    filler: String,
    body_len: usize,
}

impl DocMaker {
    /// A maker of documents of about `doc_bytes` bytes when serialized.
    pub fn new(doc_bytes: usize) -> Self {
        let mut rng = Rng::new(FILLER_SEED);
        let filler = (0..FILLER_POOL_BYTES)
            .map(|_| {
                let i = usize::try_from(rng.below(FILLER_ALPHABET.len() as u64)).unwrap_or(0);
                char::from(FILLER_ALPHABET[i])
            })
            .collect();
        let body_len = doc_bytes.saturating_sub(DOC_OVERHEAD_BYTES).clamp(1, FILLER_POOL_BYTES / 2);
        Self { filler, body_len }
    }

    /// Document number `id` at version `v`; the body differs per id and version.
    pub fn doc(&self, id: u64, v: u64) -> Value {
        let span = (FILLER_POOL_BYTES - self.body_len) as u64;
        let start =
            usize::try_from(id.wrapping_mul(7919).wrapping_add(v.wrapping_mul(104_729)) % span)
                .unwrap_or(0);
        json!({"id": id, "v": v, "body": &self.filler[start..start + self.body_len]})
    }
}

/// The key of document number `id` (YCSB-style, fixed width so keys sort by id).
pub fn key(id: u64) -> String {
    format!("user{id:012}")
}

/// The read-modify-write step of workload F: bump the document's version
/// counter (creating the counter if the document is missing).
pub fn bump(doc: Option<Value>) -> Value {
    let mut doc = doc.unwrap_or_else(|| json!({"v": 0}));
    let v = doc.get("v").and_then(Value::as_u64).unwrap_or(0);
    doc["v"] = json!(v + 1);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_have_the_requested_size() {
        for size in [200, 4096] {
            let maker = DocMaker::new(size);
            let len = serde_json::to_vec(&maker.doc(123_456, 7)).unwrap().len();
            assert!(len.abs_diff(size) < size / 10, "{size} -> {len}");
        }
    }

    #[test]
    fn bump_increments() {
        let d = bump(Some(json!({"v": 4, "x": 1})));
        assert_eq!(d["v"], 5);
        assert_eq!(d["x"], 1);
        assert_eq!(bump(None)["v"], 1);
    }
}
