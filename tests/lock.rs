//! One opener at a time: the store's `LOCK`.
//!
//! A second open in the same process, and an open from another process (the test binary
//! re-executed as a child that holds the store open until its stdin closes), both fail at once
//! with `Error::Locked` naming the directory. With `Options::lock_timeout` an opener waits: it
//! still fails if the holder keeps the lock past the timeout, and succeeds once the holder lets
//! go within it.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{open, spawn_self, store_dir, tmp, GatedIo};
use walden::{Error, Options, Store};

const CHILD_ENV: &str = "WALDEN_LOCK_CHILD";

fn assert_locked(r: walden::Result<Store>, dir: &Path) {
    match r {
        Err(Error::Locked { path, .. }) => assert_eq!(path, dir),
        other => panic!("expected Locked, got {other:?}"),
    }
}

fn with_timeout(t: Duration) -> Options {
    Options { lock_timeout: Some(t), ..Options::default() }
}

/// Starts a thread that opens `dir` with a long lock timeout; returns once it is about to.
fn spawn_waiting_opener(dir: &Path) -> JoinHandle<walden::Result<Store>> {
    let (tx, rx) = mpsc::channel();
    let dir = dir.to_path_buf();
    let waiter = std::thread::spawn(move || {
        tx.send(()).unwrap();
        Store::open_with(&dir, with_timeout(Duration::from_secs(60)))
    });
    rx.recv().unwrap();
    waiter
}

#[test]
fn second_open_in_the_same_process_is_locked() {
    let t = tmp();
    let dir = store_dir(&t);
    let s = open(&dir);
    s.put("c", "k", &1).unwrap();
    assert_locked(Store::open(&dir), &dir);
    let clone = s.clone();
    drop(s);
    assert_locked(Store::open(&dir), &dir); // a clone still holds the store
    drop(clone);
    assert_eq!(open(&dir).get::<i32>("c", "k").unwrap().unwrap().value, 1);
}

#[test]
fn lock_timeout_waits_for_the_holder_in_the_same_process() {
    let t = tmp();
    let dir = store_dir(&t);
    let s = open(&dir);
    let started = Instant::now();
    assert_locked(Store::open_with(&dir, with_timeout(Duration::from_millis(200))), &dir);
    assert!(started.elapsed() >= Duration::from_millis(200), "did not wait for the timeout");

    let waiter = spawn_waiting_opener(&dir);
    s.put("c", "k", &"from the first holder").unwrap();
    drop(s);
    let s = waiter.join().unwrap().expect("the waiting opener gets the store");
    assert_eq!(s.get::<String>("c", "k").unwrap().unwrap().value, "from the first holder");
}

/// The holder process: opens the store, writes, says HOLDING, and keeps the store open until
/// its stdin is closed. A no-op in a normal test run.
#[test]
fn lock_holder_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let s = Store::open(&dir).expect("child opens the store");
    s.put("c", "holder", &std::process::id()).unwrap();
    println!("HOLDING");
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink).unwrap();
    s.close().unwrap();
}

#[test]
fn open_from_another_process_is_locked_until_it_lets_go() {
    let t = tmp();
    let dir = store_dir(&t);
    let mut child = spawn_self("lock_holder_child", &[(CHILD_ENV, dir.to_str().unwrap())]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "child exited before holding the lock");
        if line.trim() == "HOLDING" {
            break;
        }
    }
    assert_locked(Store::open(&dir), &dir);
    let started = Instant::now();
    assert_locked(Store::open_with(&dir, with_timeout(Duration::from_millis(200))), &dir);
    assert!(started.elapsed() >= Duration::from_millis(200));

    let waiter = spawn_waiting_opener(&dir);
    drop(child.stdin.take()); // the holder closes the store and exits
    let s = waiter.join().unwrap().expect("the waiting opener gets the store");
    assert!(child.wait().unwrap().success());
    assert_eq!(s.get::<u32>("c", "holder").unwrap().unwrap().value, child.id());
}

/// Dropping the last handle must release the lock before `drop` returns, even while the
/// background flusher is in the middle of an fsync: an immediate reopen must not see `Locked`.
#[test]
fn dropping_the_store_during_a_background_flush_releases_the_lock() {
    let t = tmp();
    let dir = store_dir(&t);
    let (io, gate) = GatedIo::new(Some("walden-flusher"));
    gate.arm();
    let opts = Options {
        durability: walden::Durability::Buffered,
        buffered_flush_interval_ms: 1,
        io: Arc::new(io),
        ..Options::default()
    };
    let s = Store::open_with(&dir, opts).unwrap();
    s.put("c", "k", &1).unwrap();
    gate.entered(); // the flusher is inside its fsync now
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let dropper = std::thread::spawn(move || {
        drop(s);
        dropped_tx.send(()).unwrap();
    });
    // A drop may wait for the flusher's fsync; it must not return with the lock still held.
    // (If it is still waiting after a second, release the flusher and let it finish.)
    if dropped_rx.recv_timeout(Duration::from_secs(1)).is_ok() {
        let reopened = Store::open(&dir);
        gate.release(false);
        dropper.join().unwrap();
        let s = reopened.unwrap_or_else(|e| panic!("reopen right after drop failed: {e:?}"));
        assert_eq!(s.get::<i32>("c", "k").unwrap().unwrap().value, 1);
    } else {
        gate.release(false);
        dropper.join().unwrap();
        assert_eq!(open(&dir).get::<i32>("c", "k").unwrap().unwrap().value, 1);
    }
}
