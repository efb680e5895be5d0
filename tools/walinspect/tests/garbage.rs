//! walinspect never panics on any file content: a seeded loop of random and mutated inputs.

mod common;

use common::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Damages `b` in one of several ways.
fn mutate(rng: &mut Rng, mut b: Vec<u8>) -> Vec<u8> {
    match rng.below(6) {
        0 => {
            let n = rng.below(b.len() as u64 + 1) as usize;
            b.truncate(n);
        }
        1 => {
            for _ in 0..=rng.below(8) {
                if !b.is_empty() {
                    let i = rng.below(b.len() as u64) as usize;
                    b[i] ^= 1 << rng.below(8);
                }
            }
        }
        2 => {
            let at = rng.below(b.len() as u64 + 1) as usize;
            let n = rng.below(200) as usize;
            let junk = rng.bytes(n);
            b.splice(at..at, junk);
        }
        3 => {
            let at = rng.below(b.len() as u64 + 1) as usize;
            let end = (at + rng.below(600) as usize).min(b.len());
            b[at..end].fill(0);
        }
        4 => {
            // A huge length field at a random place.
            if b.len() >= 4 {
                let at = rng.below(b.len() as u64 - 3) as usize;
                b[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
            }
        }
        _ => {
            let n = rng.below(4096) as usize;
            b = rng.bytes(n);
        }
    }
    b
}

#[test]
fn random_and_mutated_inputs_never_panic() {
    let base = tempfile::tempdir().unwrap();
    build_store(base.path(), 2, 6);
    let seg1 = std::fs::read(seg(base.path(), 1)).unwrap();
    let seg2 = std::fs::read(seg(base.path(), 2)).unwrap();
    let identity = std::fs::read(base.path().join("STORE")).unwrap();
    // A snapshot of the same store (written from a copy, so the base keeps its segments).
    let compacted = tempfile::tempdir().unwrap();
    copy_dir(base.path(), compacted.path());
    let s = open_store(compacted.path());
    s.compact().unwrap().unwrap();
    s.close().unwrap();
    let snap_path = snapshot_files(compacted.path()).remove(0);
    let snap_name = snap_path.file_name().unwrap().to_owned();
    let snapshot = std::fs::read(&snap_path).unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut codes = [0u32; 5];
    for i in 0..300 {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s");
        std::fs::create_dir_all(store.join("wal")).unwrap();
        let id =
            if rng.below(10) == 0 { mutate(&mut rng, identity.clone()) } else { identity.clone() };
        std::fs::write(store.join("STORE"), id).unwrap();
        let s1 = if rng.below(3) == 0 { mutate(&mut rng, seg1.clone()) } else { seg1.clone() };
        let s2 = mutate(&mut rng, seg2.clone());
        std::fs::write(seg(&store, 1), &s1).unwrap();
        std::fs::write(seg(&store, 2), &s2).unwrap();
        if rng.below(3) == 0 {
            std::fs::write(store.join(&snap_name), mutate(&mut rng, snapshot.clone())).unwrap();
            let r = run(&["verify".as_ref(), store.join(&snap_name).as_os_str()]);
            assert!((0..=4).contains(&r.code), "input {i} (snapshot): exit {}", r.code);
        }
        let r = run(&["verify".as_ref(), store.as_os_str(), "--json".as_ref()]);
        assert!((0..=4).contains(&r.code), "input {i}: exit {} {}", r.code, r.stderr);
        assert_eq!(r.ndjson().len(), 1, "input {i}");
        codes[r.code as usize] += 1;
        // The single file on its own.
        let r = run(&["verify".as_ref(), seg(&store, 2).as_os_str()]);
        assert!((0..=4).contains(&r.code), "input {i} (file): exit {}", r.code);
        if i % 10 == 0 {
            let r = run(&[
                "history".as_ref(),
                store.as_os_str(),
                "docs".as_ref(),
                "k001".as_ref(),
                "--diff".as_ref(),
            ]);
            assert!(r.code <= 1 || r.code == 4, "input {i} history: exit {} {}", r.code, r.stderr);
            for cmd in ["summary", "dump", "stats"] {
                let r = run(&[cmd.as_ref(), store.as_os_str(), "--json".as_ref()]);
                assert!(
                    r.code == 0 || r.code == 4,
                    "input {i} {cmd}: exit {} {}",
                    r.code,
                    r.stderr
                );
                r.ndjson();
            }
            let out = dir.path().join("out");
            let r =
                run(&["salvage".as_ref(), store.as_os_str(), "--out".as_ref(), out.as_os_str()]);
            assert!(r.code <= 1 || r.code == 4, "input {i} salvage: exit {} {}", r.code, r.stderr);
        }
    }
    // The mutations reach more than one verdict (the loop is not testing one path only).
    assert!(codes.iter().filter(|&&n| n > 0).count() >= 3, "verdict spread {codes:?}");
}
