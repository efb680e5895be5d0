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

use common::{open, spawn_self, store_dir, tmp};
use walden::io::{FileBytes, Io, IoFile, RealIo};
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

/// An `Io` whose `sync_data` from the background flusher thread stops at a gate: it reports
/// that it is inside the fsync and waits until the test lets it finish.
#[derive(Debug)]
struct GatedFlushIo {
    entered: std::sync::Mutex<mpsc::Sender<()>>,
    release: Arc<std::sync::Mutex<mpsc::Receiver<()>>>,
}

struct GatedFile {
    inner: Box<dyn IoFile>,
    entered: mpsc::Sender<()>,
    release: Arc<std::sync::Mutex<mpsc::Receiver<()>>>,
}

impl IoFile for GatedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn sync_data(&mut self) -> std::io::Result<()> {
        if std::thread::current().name() == Some("walden-flusher") {
            let _ = self.entered.send(());
            let _ = self.release.lock().unwrap().recv();
        }
        self.inner.sync_data()
    }
}

impl GatedFlushIo {
    fn wrap(&self, f: Box<dyn IoFile>) -> Box<dyn IoFile> {
        let entered = self.entered.lock().unwrap().clone();
        Box::new(GatedFile { inner: f, entered, release: self.release.clone() })
    }
}

impl Io for GatedFlushIo {
    fn create_dir_all(&self, p: &Path) -> std::io::Result<()> {
        RealIo.create_dir_all(p)
    }
    fn list_dir(&self, p: &Path) -> std::io::Result<Vec<String>> {
        RealIo.list_dir(p)
    }
    fn read(&self, p: &Path) -> std::io::Result<FileBytes> {
        RealIo.read(p)
    }
    fn create_new(&self, p: &Path) -> std::io::Result<Box<dyn IoFile>> {
        Ok(self.wrap(RealIo.create_new(p)?))
    }
    fn open_append(&self, p: &Path) -> std::io::Result<Box<dyn IoFile>> {
        Ok(self.wrap(RealIo.open_append(p)?))
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        RealIo.rename(from, to)
    }
    fn remove_file(&self, p: &Path) -> std::io::Result<()> {
        RealIo.remove_file(p)
    }
    fn truncate(&self, p: &Path, len: u64) -> std::io::Result<()> {
        RealIo.truncate(p, len)
    }
    fn sync_dir(&self, p: &Path) -> std::io::Result<()> {
        RealIo.sync_dir(p)
    }
}

/// Dropping the last handle must release the lock before `drop` returns, even while the
/// background flusher is in the middle of an fsync: an immediate reopen must not see `Locked`.
#[test]
fn dropping_the_store_during_a_background_flush_releases_the_lock() {
    let t = tmp();
    let dir = store_dir(&t);
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let io = GatedFlushIo {
        entered: std::sync::Mutex::new(entered_tx),
        release: Arc::new(std::sync::Mutex::new(release_rx)),
    };
    let opts = Options {
        durability: walden::Durability::Buffered,
        buffered_flush_interval_ms: 1,
        io: Arc::new(io),
        ..Options::default()
    };
    let s = Store::open_with(&dir, opts).unwrap();
    s.put("c", "k", &1).unwrap();
    entered_rx.recv().unwrap(); // the flusher is inside its fsync now
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let dropper = std::thread::spawn(move || {
        drop(s);
        dropped_tx.send(()).unwrap();
    });
    // A drop may wait for the flusher's fsync; it must not return with the lock still held.
    // (If it is still waiting after a second, release the flusher and let it finish.)
    if dropped_rx.recv_timeout(Duration::from_secs(1)).is_ok() {
        let reopened = Store::open(&dir);
        release_tx.send(()).unwrap();
        dropper.join().unwrap();
        let s = reopened.unwrap_or_else(|e| panic!("reopen right after drop failed: {e:?}"));
        assert_eq!(s.get::<i32>("c", "k").unwrap().unwrap().value, 1);
    } else {
        release_tx.send(()).unwrap();
        dropper.join().unwrap();
        assert_eq!(open(&dir).get::<i32>("c", "k").unwrap().unwrap().value, 1);
    }
}
