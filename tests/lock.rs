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
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{open, spawn_self, store_dir, tmp};
use walden::{Error, Options, Store};

const CHILD_ENV: &str = "WALDEN_LOCK_CHILD";

fn assert_locked(r: walden::Result<Store>, dir: &Path) {
    match r {
        Err(Error::Locked { path }) => assert_eq!(path, dir),
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
