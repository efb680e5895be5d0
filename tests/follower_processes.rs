//! Followers in their own processes track a writer under load that is killed and restarted.
//!
//! The test binary re-executes itself in two roles. The writer child (`writer_child`, active
//! when `WALDEN_FOLLOW_WRITER` names a store) opens the store with small segments, runs
//! [`THREADS`] threads that each insert `tNN-<n>` = `{"t", "n", "pad"}` for n = 0, 1, 2, … (one
//! key after the other, each acknowledged before the next, each acknowledgement printed as
//! `A t n`), compacts every [`COMPACT_EVERY`], takes one backup, and on a `stop` line on stdin
//! closes the store and prints `COUNT t k` for every thread. The follower child
//! (`follower_child`, active when `WALDEN_FOLLOW_READER` names a store) refreshes in a loop
//! (`refresh()`, or the background `follow()`), and at every step checks a point-in-time scan:
//! every value names its own key (never torn, never another write's value), each thread's keys
//! are exactly 0..k (a prefix, no gap), k never shrinks (no repeat, no loss across reloads) and
//! the LSN never goes back. Any error ends it with a failure. On `final <lsn>` it waits for
//! that LSN and prints its counts.
//!
//! The parent starts the writer, then three followers; after a while it kills the writer with
//! SIGKILL, restarts it (a new epoch), lets it run, stops it, and checks: every follower exited
//! cleanly and ends with exactly the store's final counts, and every acknowledged key is in
//! them.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Child;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{spawn_self, store_dir, tmp};
use serde_json::{json, Value};
use walden::{Follower, Options, Store};

const WRITER_ENV: &str = "WALDEN_FOLLOW_WRITER";
const READER_ENV: &str = "WALDEN_FOLLOW_READER";
const MODE_ENV: &str = "WALDEN_FOLLOW_MODE";
const THREADS: usize = 8;
const COMPACT_EVERY: Duration = Duration::from_millis(1500);
const RUN: Duration = Duration::from_secs(4);
const COLLECTION: &str = "log";

fn key(t: usize, n: u64) -> String {
    format!("t{t:02}-{n:08}")
}

fn parse_key(k: &str) -> (usize, u64) {
    let (t, n) = k.strip_prefix('t').and_then(|r| r.split_once('-')).expect("a tNN-n key");
    (t.parse().unwrap(), n.parse().unwrap())
}

/// Per thread, how many keys the state holds; asserts every value names its own key.
fn counts(items: impl Iterator<Item = (String, Value)>) -> Vec<u64> {
    let mut per: Vec<Vec<u64>> = vec![Vec::new(); THREADS];
    for (k, v) in items {
        let (t, n) = parse_key(&k);
        assert_eq!((v["t"].as_u64(), v["n"].as_u64()), (Some(t as u64), Some(n)), "value of {k}");
        per[t].push(n);
    }
    per.iter()
        .enumerate()
        .map(|(t, ns)| {
            let expect: Vec<u64> = (0..ns.len() as u64).collect();
            assert_eq!(*ns, expect, "thread {t}'s keys are not a prefix");
            ns.len() as u64
        })
        .collect()
}

#[test]
fn writer_child() {
    let Ok(dir) = std::env::var(WRITER_ENV) else { return };
    let dir = Path::new(&dir);
    let opts =
        Options { segment_target_bytes: 64 << 10, auto_compact: false, ..Options::default() };
    let store = Store::open_with(dir, opts).unwrap();
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let say = |line: String| {
        let mut o = out.lock().unwrap();
        writeln!(o, "{line}").unwrap();
        o.flush().unwrap();
    };
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut threads = Vec::new();
    for t in 0..THREADS {
        let (store, stop, out) = (store.clone(), stop.clone(), out.clone());
        threads.push(std::thread::spawn(move || {
            let mut n =
                store.scan_prefix::<Value>(COLLECTION, &format!("t{t:02}-")).unwrap().count()
                    as u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let v = json!({"t": t, "n": n, "pad": "p".repeat(64 + (n % 200) as usize)});
                store.put(COLLECTION, &key(t, n), &v).unwrap();
                let mut o = out.lock().unwrap();
                writeln!(o, "A {t} {n}").unwrap();
                o.flush().unwrap();
                n += 1;
            }
        }));
    }
    let compactor = {
        let (store, stop) = (store.clone(), stop.clone());
        let backups = dir.parent().unwrap().join("backups");
        std::thread::spawn(move || {
            let mut backed_up = false;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(COMPACT_EVERY);
                store.compact().unwrap();
                if !backed_up {
                    std::fs::create_dir_all(&backups).unwrap();
                    store.backup_rotated(&backups).unwrap();
                    backed_up = true;
                }
            }
        })
    };
    say("READY".into());
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in threads {
        h.join().unwrap();
    }
    compactor.join().unwrap();
    store.sync().unwrap();
    let lsn = store.stats().durable_lsn;
    let items = store.scan::<Value>(COLLECTION).unwrap().map(|r| r.unwrap());
    let c = counts(items.map(|(k, v)| (k, v.value)));
    store.close().unwrap();
    for (t, k) in c.iter().enumerate() {
        say(format!("COUNT {t} {k}"));
    }
    say(format!("CLOSED {lsn}"));
}

/// One step of a follower: refresh (or read the background's position) and check a scan.
fn follower_step(f: &Follower, follow: bool, last: &mut (u64, Vec<u64>)) {
    let lsn = if follow { f.applied_lsn() } else { f.refresh().unwrap() };
    assert!(lsn >= last.0, "the view went back from LSN {} to {lsn}", last.0);
    let (at, scan) = f
        .scan_range_at::<Value>(COLLECTION, std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
        .unwrap();
    let c = counts(scan.map(|r| r.map(|(k, v)| (k, v.value)).unwrap()));
    for (t, (now, before)) in c.iter().zip(&last.1).enumerate() {
        assert!(now >= before, "thread {t}: {now} keys after {before} (at LSN {at})");
    }
    *last = (lsn, c);
}

#[test]
fn follower_child() {
    let Ok(dir) = std::env::var(READER_ENV) else { return };
    let follow = std::env::var(MODE_ENV).as_deref() == Ok("follow");
    let f = Follower::open(&dir).unwrap();
    if follow {
        f.follow().unwrap();
    }
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let mut last = (0, vec![0; THREADS]);
    let mut steps = 0u64;
    let final_lsn = loop {
        follower_step(&f, follow, &mut last);
        steps += 1;
        if let Ok(line) = rx.try_recv() {
            break line.strip_prefix("final ").unwrap().parse::<u64>().unwrap();
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    assert!(f.wait_for(final_lsn, Duration::from_secs(60)).unwrap(), "never reached {final_lsn}");
    follower_step(&f, follow, &mut last);
    let st = f.stats();
    let mut o = std::io::stdout();
    writeln!(o, "STEPS {steps} RELOADS {} APPLIED {}", st.reloads, st.applied_lsn).unwrap();
    for (t, k) in last.1.iter().enumerate() {
        writeln!(o, "COUNT {t} {k}").unwrap();
    }
    o.flush().unwrap();
}

/// A child's stdout lines, as they come.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    rx
}

fn wait_line(rx: &mpsc::Receiver<String>, prefix: &str, acked: &mut Vec<(usize, u64)>) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let line = rx.recv_timeout(deadline - Instant::now()).expect("the child answers");
        if let Some(rest) = line.strip_prefix("A ") {
            let (t, n) = rest.split_once(' ').unwrap();
            acked.push((t.parse().unwrap(), n.parse().unwrap()));
        } else if line.starts_with(prefix) {
            return line;
        }
    }
}

/// Collects `A` lines for `d`.
fn run_for(rx: &mpsc::Receiver<String>, d: Duration, acked: &mut Vec<(usize, u64)>) {
    let end = Instant::now() + d;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if let Ok(line) = rx.recv_timeout(left) {
            if let Some(rest) = line.strip_prefix("A ") {
                let (t, n) = rest.split_once(' ').unwrap();
                acked.push((t.parse().unwrap(), n.parse().unwrap()));
            }
        }
    }
}

#[test]
fn three_follower_processes_track_a_writer_killed_and_restarted() {
    let t = tmp();
    let dir = store_dir(&t);
    let d = dir.to_str().unwrap();
    let mut acked = Vec::new();
    let mut writer = spawn_self("writer_child", &[(WRITER_ENV, d)]);
    let wrx = lines(&mut writer);
    wait_line(&wrx, "READY", &mut acked);
    let modes = ["refresh", "follow", "refresh"];
    let mut followers: Vec<Child> = modes
        .iter()
        .map(|m| spawn_self("follower_child", &[(READER_ENV, d), (MODE_ENV, m)]))
        .collect();
    run_for(&wrx, RUN, &mut acked);
    writer.kill().unwrap();
    writer.wait().unwrap();
    run_for(&wrx, Duration::from_millis(300), &mut acked);
    let first_run = acked.len();

    let mut writer = spawn_self("writer_child", &[(WRITER_ENV, d)]);
    let wrx = lines(&mut writer);
    wait_line(&wrx, "READY", &mut acked);
    run_for(&wrx, RUN, &mut acked);
    writeln!(writer.stdin.as_mut().unwrap(), "stop").unwrap();
    let mut expected = vec![0u64; THREADS];
    let closed = loop {
        let line = wait_line(&wrx, "", &mut acked);
        if let Some(rest) = line.strip_prefix("COUNT ") {
            let (t, k) = rest.split_once(' ').unwrap();
            expected[t.parse::<usize>().unwrap()] = k.parse().unwrap();
        } else if let Some(lsn) = line.strip_prefix("CLOSED ") {
            break lsn.parse::<u64>().unwrap();
        }
    };
    assert!(writer.wait().unwrap().success());
    assert!(first_run > 0 && acked.len() > first_run, "both writer runs acknowledged writes");
    eprintln!("acknowledged: {first_run} before the kill, {} after", acked.len() - first_run);
    for (t, n) in &acked {
        assert!(*n < expected[*t], "acknowledged {} is missing from the store", key(*t, *n));
    }

    for (i, mut f) in followers.drain(..).enumerate() {
        writeln!(f.stdin.as_mut().unwrap(), "final {closed}").unwrap();
        let frx = lines(&mut f);
        let mut got = BTreeMap::new();
        while let Ok(line) = frx.recv_timeout(Duration::from_secs(120)) {
            if line.starts_with("STEPS") {
                eprintln!("follower {i} ({}): {line}", modes[i]);
            }
            if let Some(rest) = line.strip_prefix("COUNT ") {
                let (t, k) = rest.split_once(' ').unwrap();
                got.insert(t.parse::<usize>().unwrap(), k.parse::<u64>().unwrap());
            }
            if got.len() == THREADS {
                break;
            }
        }
        assert!(f.wait().unwrap().success(), "follower {i} ({}) failed", modes[i]);
        let got: Vec<u64> = got.into_values().collect();
        assert_eq!(got, expected, "follower {i} ({}) ends on the store's counts", modes[i]);
    }
}
