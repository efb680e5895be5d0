//! Crash safety with a real process and a real SIGKILL.
//!
//! The test binary re-executes itself as a child (only the test `crash_child` runs, and it
//! does work only when `WALDEN_CRASH_CHILD` names a store directory). The child opens the store
//! with small segments (so segment rolls happen under fire) and two threads write in a loop:
//! puts, two-key batches and updates of keys each thread owns. Before each write it prints an
//! `I` (intent) line and after each acknowledged write an `A` line, `key version value`, one
//! flushed line each. Every value is `<key>@<version>#<round>.<counter>`, so a stored value
//! names the key and version it was written as and is unique across the whole run.
//!
//! The parent waits for the child's `READY`, lets it write for a seeded random 5–80 ms, kills it
//! with SIGKILL (`Child::kill`), reopens the store and asserts: every acknowledged write is
//! there (version ≥ the acknowledged one, and the acknowledged value when equal), and every
//! stored document is one the child announced, under its own key and version (no value that
//! was never written). Rounds accumulate in one store, so each round also recovers what the
//! previous crash left. Every fourth round the kill comes 0–30 ms after the spawn instead,
//! usually while the child is still recovering the store, so a crash during recovery (cutting a
//! torn tail, removing an empty segment, creating the new one) is exercised too.
//!
//! 20 rounds by default; set `WALDEN_CRASH_ROUNDS` for more and `WALDEN_CRASH_SEED` to vary
//! the kill timings (the seed is printed in every failure message).

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use common::{spawn_self, store_dir, tmp, Rng};
use walden::{Batch, Durability, Options, Store};

const CHILD_ENV: &str = "WALDEN_CRASH_CHILD";
const COLLECTION: &str = "crash";
const THREADS: usize = 2;
const KEYS_PER_THREAD: usize = 3;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn keys_of(thread: usize) -> Vec<String> {
    (0..KEYS_PER_THREAD).map(|i| format!("t{thread}k{i}")).collect()
}

fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes()).unwrap();
    out.write_all(b"\n").unwrap();
    out.flush().unwrap();
}

/// The version a stored value claims, and the key.
fn parse_value(value: &str) -> Option<(&str, u64)> {
    let (key, rest) = value.split_once('@')?;
    let (version, _) = rest.split_once('#')?;
    Some((key, version.parse().ok()?))
}

/// One writer thread of the child: owns its keys, so it knows every next version.
fn child_writer(store: &Store, thread: usize, round: u64) {
    let keys = keys_of(thread);
    let mut versions: Vec<u64> = keys
        .iter()
        .map(|k| store.get::<String>(COLLECTION, k).unwrap().map_or(0, |d| d.version))
        .collect();
    let value = |key: &str, v: u64, n: u64| format!("{key}@{v}#{round}.{n}");
    for n in 0u64.. {
        let i = (n as usize) % KEYS_PER_THREAD;
        let key = &keys[i];
        let v = versions[i] + 1;
        match n % 4 {
            0 | 1 => {
                let val = value(key, v, n);
                report(&format!("I {key} {v} {val}"));
                assert_eq!(store.put(COLLECTION, key, &val).unwrap(), v);
                report(&format!("A {key} {v} {val}"));
                versions[i] = v;
            }
            2 => {
                let j = (i + 1) % KEYS_PER_THREAD;
                let (key2, v2) = (&keys[j], versions[j] + 1);
                let (val, val2) = (value(key, v, n), value(key2, v2, n));
                report(&format!("I {key} {v} {val}"));
                report(&format!("I {key2} {v2} {val2}"));
                let mut b = Batch::new();
                if versions[i] == 0 {
                    b.insert(COLLECTION, key, &val);
                } else {
                    b.put_if_version(COLLECTION, key, &val, versions[i]);
                }
                b.put(COLLECTION, key2, &val2);
                if thread == 1 {
                    // Buffered: acknowledged once written to the OS, which survives SIGKILL.
                    b.durability(Durability::Buffered);
                }
                assert_eq!(store.commit(b).unwrap(), vec![Some(v), Some(v2)]);
                report(&format!("A {key} {v} {val}"));
                report(&format!("A {key2} {v2} {val2}"));
                versions[i] = v;
                versions[j] = v2;
            }
            _ => {
                let val = value(key, v, n);
                report(&format!("I {key} {v} {val}"));
                let prev = versions[i];
                let got = store
                    .update::<String, _>(COLLECTION, key, |old| {
                        let old_v = old.as_deref().and_then(parse_value).map_or(0, |(_, v)| v);
                        assert_eq!(old_v, prev, "update saw an unexpected document");
                        Some(val.clone())
                    })
                    .unwrap();
                assert_eq!(got, Some(v));
                report(&format!("A {key} {v} {val}"));
                versions[i] = v;
            }
        }
    }
}

/// The child's body; a no-op in a normal test run.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let round = env_u64("WALDEN_CRASH_ROUND", 0);
    let opts = Options { segment_target_bytes: 2048, ..Options::default() };
    let store = Store::open_with(&dir, opts).expect("child opens the store");
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = &store;
                s.spawn(move || child_writer(store, t, round))
            })
            .collect();
        report("READY");
        for h in handles {
            h.join().unwrap();
        }
    });
}

/// What the parent has learned from all children so far.
#[derive(Default)]
struct Ledger {
    /// Every value any child announced it was about to write.
    intents: HashSet<String>,
    /// Per key, the newest acknowledged (version, value).
    acked: HashMap<String, (u64, String)>,
    acks: usize,
}

impl Ledger {
    fn absorb(&mut self, line: &str) {
        let mut parts = line.splitn(4, ' ');
        let (Some(tag), Some(key), Some(v), Some(val)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return; // libtest's own output
        };
        let Ok(v) = v.parse::<u64>() else { return };
        match tag {
            "I" => {
                self.intents.insert(val.to_owned());
            }
            "A" => {
                assert!(self.intents.contains(val), "ack without intent: {line}");
                self.acks += 1;
                let e = self.acked.entry(key.to_owned()).or_insert((0, String::new()));
                if v >= e.0 {
                    *e = (v, val.to_owned());
                }
            }
            _ => {}
        }
    }

    fn verify(&self, dir: &Path, ctx: &str) {
        let store = Store::open(dir).unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e:?}"));
        for (key, (v, val)) in &self.acked {
            let doc = store
                .get::<String>(COLLECTION, key)
                .unwrap()
                .unwrap_or_else(|| panic!("{ctx}: acknowledged {key} v{v} is missing"));
            assert!(doc.version >= *v, "{ctx}: {key} at v{} < acknowledged v{v}", doc.version);
            if doc.version == *v {
                assert_eq!(&doc.value, val, "{ctx}: {key} v{v} holds another value");
            }
        }
        for item in store.scan::<String>(COLLECTION).unwrap() {
            let (key, doc) = item.unwrap();
            assert!(self.intents.contains(&doc.value), "{ctx}: never-written value {doc:?}");
            assert_eq!(
                parse_value(&doc.value),
                Some((key.as_str(), doc.version)),
                "{ctx}: {key} holds a value written as another key or version"
            );
        }
        assert_eq!(store.collections().unwrap().len(), usize::from(!self.intents.is_empty()));
        store.close().unwrap();
    }
}

/// Runs one child until the kill; returns its output lines.
/// With `wait_ready` the kill comes `delay` after the child's READY; without, `delay` after
/// the spawn, usually while the child is still opening (recovering) the store.
fn crash_round(
    dir: &Path,
    round: u64,
    wait_ready: bool,
    delay: Duration,
    ctx: &str,
) -> Vec<String> {
    let round = round.to_string();
    let mut child = spawn_self(
        "crash_child",
        &[(CHILD_ENV, dir.to_str().unwrap()), ("WALDEN_CRASH_ROUND", &round)],
    );
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    if wait_ready {
        loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line == "READY" => break,
                Ok(line) => lines.push(line),
                Err(e) => {
                    let _ = child.kill();
                    panic!("{ctx}: child never became ready ({e}); status {:?}", child.wait());
                }
            }
        }
    }
    std::thread::sleep(delay); // the crash point: how long the child gets to write
    child.kill().unwrap();
    let status = child.wait().unwrap();
    // The child never ends on its own: an exit means it failed (e.g. its open was refused).
    assert_eq!(status.signal(), Some(9), "{ctx}: child ended on its own: {status:?}");
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    lines
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let rounds = env_u64("WALDEN_CRASH_ROUNDS", 20);
    let seed = env_u64("WALDEN_CRASH_SEED", 0x5eed_c0de);
    let t = tmp();
    let dir = store_dir(&t);
    let mut rng = Rng::new(seed);
    let mut ledger = Ledger::default();
    for round in 0..rounds {
        // Every fourth round kills the child soon after the spawn, during its open.
        let wait_ready = round % 4 != 3;
        let delay =
            Duration::from_millis(if wait_ready { rng.range(5, 81) } else { rng.range(0, 30) });
        let ctx = format!("seed {seed} round {round} delay {delay:?} after ready {wait_ready}");
        for line in crash_round(&dir, round, wait_ready, delay, &ctx) {
            ledger.absorb(&line);
        }
        ledger.verify(&dir, &ctx);
    }
    assert!(ledger.acks > 0, "no write was ever acknowledged: the test proved nothing");
    eprintln!(
        "crash test: {rounds} rounds, {} acknowledged writes, {} intents",
        ledger.acks,
        ledger.intents.len()
    );
}
