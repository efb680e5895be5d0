//! Crashes during compaction.
//!
//! 1. Through the I/O seam: for every kind of file operation compaction performs, fail its 1st,
//!    2nd, … occurrence inside `compact()` until a compaction runs clean. A failed operation
//!    stops compaction at exactly that step, leaving the files as a crash there would (a
//!    process crash keeps the page cache, as here). After each, the store must reopen with
//!    every acknowledged write, equal to a model.
//! 2. With real processes: a child writes with a tiny compaction threshold, so snapshots are
//!    written and segments deleted all the time, and reports each acknowledged write; the parent
//!    kills it with SIGKILL at seeded random moments and checks every acknowledged write after
//!    reopening. `WALDEN_COMPACTION_CRASH_ROUNDS` sets the number of rounds (default 8).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use walden::io::{Fault, FaultError, FaultOp, FaultyIo};
use walden::{Options, Store};

const CHILD_ENV: &str = "WALDEN_COMPACTION_CRASH_CHILD";

fn check_model(store: &Store, model: &BTreeMap<String, u64>) {
    assert_eq!(store.count("c").unwrap(), model.len());
    for (k, v) in model {
        let doc = store.get::<u64>("c", k).unwrap().unwrap_or_else(|| panic!("{k} lost"));
        assert_eq!(doc.value, *v, "{k}");
    }
}

#[test]
fn a_failure_at_any_step_of_compaction_loses_nothing() {
    let ops = [
        FaultOp::Read,
        FaultOp::Open,
        FaultOp::Write,
        FaultOp::Sync,
        FaultOp::Rename,
        FaultOp::SyncDir,
        FaultOp::Remove,
        FaultOp::Dir,
    ];
    let mut steps_tried = 0;
    for op in ops {
        for nth in 1.. {
            let dir = tempfile::tempdir().unwrap();
            let io = FaultyIo::new();
            let opts =
                Options { io: Arc::new(io.clone()), auto_compact: false, ..Options::default() };
            let mut model = BTreeMap::new();
            {
                let store = Store::open_with(dir.path(), opts.clone()).unwrap();
                // Two compactions' worth of history, so the second one has an older snapshot
                // and older segments to fold and delete.
                for i in 0..30u64 {
                    store.put("c", &format!("k{}", i % 12), &i).unwrap();
                    model.insert(format!("k{}", i % 12), i);
                }
                store.compact().unwrap();
                for i in 30..60u64 {
                    store.put("c", &format!("k{}", i % 15), &i).unwrap();
                    model.insert(format!("k{}", i % 15), i);
                }
                store.delete("c", "k0").unwrap();
                model.remove("k0");
                io.inject(Fault {
                    op,
                    nth: io.count(op) + nth,
                    error: FaultError::Eio,
                    sticky: false,
                });
                let result = store.compact();
                if io.fired().is_empty() {
                    assert!(result.is_ok());
                    break; // every occurrence of this op has been failed once
                }
                assert!(result.is_err(), "{op:?} #{nth} failed but compact() said Ok");
                steps_tried += 1;
                // Reads keep working after any failure.
                check_model(&store, &model);
                // Unless the log itself failed (then the store is poisoned), the same process
                // can compact again, from whatever step the failure left the files at.
                if store.stats().poisoned.is_none() {
                    store.compact().unwrap_or_else(|e| panic!("{op:?} #{nth}: retry failed: {e}"));
                    check_model(&store, &model);
                }
            }
            // Reopen on the real file system: everything acknowledged is there.
            let store =
                Store::open_with(dir.path(), Options { auto_compact: false, ..Options::default() })
                    .unwrap_or_else(|e| panic!("{op:?} #{nth}: reopen failed: {e}"));
            check_model(&store, &model);
            // And the store can compact again.
            store.put("c", "after", &1u64).unwrap();
            store.compact().unwrap().unwrap();
            drop(store);
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.get::<u64>("c", "after").unwrap().unwrap().value, 1);
        }
    }
    assert!(steps_tried >= 10, "only {steps_tried} failure points exercised");
}

/// The child: writes until killed, compacting constantly in the background.
fn child(dir: &str) {
    let opts = Options {
        compaction_min_wal_bytes: 4 * 1024,
        compaction_wal_to_snapshot_ratio: 0.5,
        compaction_check_interval_ms: 2,
        ..Options::default()
    };
    let store = Store::open_with(dir, opts).unwrap();
    let out = std::io::stdout();
    println!("READY");
    for i in 0u64.. {
        let key = format!("k{}", i % 64);
        let v = store.put("c", &key, &i).unwrap();
        let mut o = out.lock();
        writeln!(o, "{key} {v} {i}").unwrap();
        o.flush().unwrap();
    }
}

#[test]
fn kill_9_while_compacting_loses_no_acknowledged_write() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir);
        return;
    }
    let rounds: u64 = std::env::var("WALDEN_COMPACTION_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let mut acked: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut snapshots_seen = 0;
    for round in 0..rounds {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "kill_9_while_compacting_loses_no_acknowledged_write",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Wait for READY, then let it run for a seeded 30–230 ms.
        for line in lines.by_ref() {
            if line.unwrap().contains("READY") {
                break;
            }
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let run = Duration::from_millis(30 + seed % 200);
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for line in lines.map_while(Result::ok) {
                let parts: Vec<&str> = line.split(' ').collect();
                if parts.len() == 3 {
                    if let (Ok(v), Ok(i)) = (parts[1].parse::<u64>(), parts[2].parse::<u64>()) {
                        seen.push((parts[0].to_string(), v, i));
                    }
                }
            }
            seen
        });
        std::thread::sleep(run);
        child.kill().unwrap();
        child.wait().unwrap();
        for (k, v, i) in reader.join().unwrap() {
            acked.insert(k, (v, i));
        }
        let store = Store::open_with(&path, Options { auto_compact: false, ..Options::default() })
            .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        for (k, (v, i)) in &acked {
            let doc = store
                .get::<u64>("c", k)
                .unwrap()
                .unwrap_or_else(|| panic!("round {round}: {k} lost"));
            assert!(
                doc.version >= *v,
                "round {round}: {k} at v{} < acknowledged v{v}",
                doc.version
            );
            if doc.version == *v {
                assert_eq!(doc.value, *i, "round {round}: {k}");
            }
        }
        if store.stats().recovery.snapshot_lsn.is_some() {
            snapshots_seen += 1;
        }
    }
    assert!(snapshots_seen > 0, "the child never got to compact; the test proved nothing");
}
