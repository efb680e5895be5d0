//! Read-only followers in one process: what a follower shows (only durable records, a prefix
//! of the log, point-in-time scans), that it follows segment rolls, compactions, restarts and a
//! store with no writer, that it never writes (the I/O seam records every operation), and that
//! torn bytes are "not yet", never an error.

mod common;

use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{dir_digest, store_dir, tmp};
use walden::io::{FileBytes, Io, IoFile, IoMarkFile, RealIo};
use walden::{
    BreakerConfig, CircuitState, Durability, Follower, FollowerOptions, Options, Quota, Store,
};

fn small_segments() -> Options {
    Options { segment_target_bytes: 4096, auto_compact: false, ..Options::default() }
}

fn value(f: &Follower, key: &str) -> Option<u64> {
    f.get::<u64>("c", key).unwrap().map(|v| v.value)
}

#[test]
fn a_follower_sees_what_the_writer_wrote_and_refresh_brings_the_rest() {
    let t = tmp();
    let dir = store_dir(&t);
    let store = Store::open(&dir).unwrap();
    for i in 0..10u64 {
        store.put("c", &format!("k{i}"), &i).unwrap();
    }
    let f = Follower::open(&dir).unwrap();
    assert_eq!(f.count("c"), 10);
    assert_eq!(value(&f, "k3"), Some(3));
    store.put("c", "k3", &33u64).unwrap();
    store.delete("c", "k4").unwrap();
    assert_eq!(value(&f, "k3"), Some(3), "nothing moves before a refresh");
    let lsn = f.refresh().unwrap();
    assert_eq!(lsn, store.stats().durable_lsn);
    assert_eq!(value(&f, "k3"), Some(33));
    assert_eq!(value(&f, "k4"), None);
    let keys: Vec<String> = f.scan::<u64>("c").unwrap().map(|r| r.unwrap().0).collect();
    assert_eq!(keys.len(), 9);
    let (at, scan) =
        f.scan_range_at::<u64>("c", Bound::Included("k0"), Bound::Excluded("k2")).unwrap();
    assert_eq!((at, scan.count()), (lsn, 2));
    assert_eq!(f.collections(), ["c"]);
    let st = f.stats();
    assert_eq!((st.applied_lsn, st.documents), (lsn, 9));
    assert_eq!(st.durable.map(|d| d.1), Some(lsn));
}

#[test]
fn refresh_reads_only_the_bytes_appended_since_the_last_call() {
    let t = tmp();
    let dir = store_dir(&t);
    let store = Store::open(&dir).unwrap();
    for i in 0..200u64 {
        store.put("c", &format!("k{i}"), &"x".repeat(100)).unwrap();
    }
    let f = Follower::open(&dir).unwrap();
    let before = f.stats().bytes_read;
    let wal_before = store.stats().wal_bytes_written;
    store.put("c", "new", &1u64).unwrap();
    f.refresh().unwrap();
    let read = f.stats().bytes_read - before;
    let appended = store.stats().wal_bytes_written - wal_before;
    assert_eq!(read, appended, "read exactly the appended record");
    f.refresh().unwrap();
    assert_eq!(f.stats().bytes_read - before, appended, "an idle refresh reads no segment");
}

#[test]
fn a_buffered_write_is_not_shown_until_it_is_durable() {
    let t = tmp();
    let dir = store_dir(&t);
    let opts = Options {
        durability: Durability::Buffered,
        buffered_flush_interval_ms: 3_600_000,
        ..Options::default()
    };
    let store = Store::open_with(&dir, opts).unwrap();
    store.put("c", "a", &1u64).unwrap();
    let f = Follower::open(&dir).unwrap();
    assert_eq!(value(&f, "a"), None, "written to the OS, not fsynced: not yet");
    let st = store.stats();
    assert!(st.written_lsn > st.durable_lsn);
    store.sync().unwrap();
    f.refresh().unwrap();
    assert_eq!(value(&f, "a"), Some(1));
}

#[test]
fn a_follower_crosses_segment_rolls_and_compactions_without_gap_or_repeat() {
    let t = tmp();
    let dir = store_dir(&t);
    let store = Store::open_with(&dir, small_segments()).unwrap();
    let f = Follower::open(&dir).unwrap();
    let mut last_lsn = 0;
    for round in 0..6u64 {
        for i in 0..60u64 {
            store.put("c", &format!("k{i:03}"), &(round * 1000 + i)).unwrap();
            store.put("log", &format!("r{round}-{i:03}"), &i).unwrap();
        }
        if round % 2 == 1 {
            store.compact().unwrap();
        }
        let lsn = f.refresh().unwrap();
        assert!(lsn > last_lsn);
        last_lsn = lsn;
        assert_eq!(lsn, store.stats().durable_lsn);
        assert_eq!(value(&f, "k059"), Some(round * 1000 + 59));
        assert_eq!(f.count("log"), 60 * (round as usize + 1), "no gap, no repeat");
    }
    assert!(store.stats().wal_segments < 20, "compaction removed segments");
    assert!(f.stats().reloads >= 2, "the follower reloaded from a newer snapshot");
}

#[test]
fn a_follower_survives_a_writer_restart_and_a_store_with_no_writer() {
    let t = tmp();
    let dir = store_dir(&t);
    let store = Store::open_with(&dir, small_segments()).unwrap();
    store.put("c", "a", &1u64).unwrap();
    let f = Follower::open(&dir).unwrap();
    let epoch1 = f.durable().unwrap().0;
    store.close().unwrap();
    assert_eq!(f.refresh().unwrap(), 1, "no writer: nothing new, no error");
    let store = Store::open_with(&dir, small_segments()).unwrap();
    store.put("c", "b", &2u64).unwrap();
    f.refresh().unwrap();
    assert_eq!((value(&f, "a"), value(&f, "b")), (Some(1), Some(2)));
    assert!(f.durable().unwrap().0 > epoch1, "a new epoch");
    drop(store);
    let late = Follower::open(&dir).unwrap();
    assert_eq!(late.count("c"), 2);
}

#[test]
fn torn_bytes_are_not_yet_and_the_next_writer_cutting_them_is_followed() {
    let t = tmp();
    let dir = store_dir(&t);
    let store = Store::open(&dir).unwrap();
    store.put("c", "a", &1u64).unwrap();
    store.close().unwrap();
    let seg = common::segments(&dir).pop().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend_from_slice(&[0x5a; 37]);
    std::fs::write(&seg, &bytes).unwrap();
    // A published position beyond the end cannot make the torn bytes a record.
    let f = Follower::open(&dir).unwrap();
    assert_eq!(value(&f, "a"), Some(1));
    assert_eq!(f.refresh().unwrap(), 1);
    // The next writer cuts the torn bytes from under the follower and goes on in a new epoch.
    let store = Store::open(&dir).unwrap();
    assert!(store.stats().recovery.torn_tail.is_some());
    store.put("c", "b", &2u64).unwrap();
    f.refresh().unwrap();
    assert_eq!((value(&f, "a"), value(&f, "b")), (Some(1), Some(2)));
}

#[test]
fn wait_for_returns_once_the_background_follower_applied_the_lsn() {
    let t = tmp();
    let dir = store_dir(&t);
    let store = Store::open(&dir).unwrap();
    let f = Follower::open(&dir).unwrap();
    assert!(!f.wait_for(1, Duration::from_millis(20)).unwrap(), "nothing written yet");
    f.follow().unwrap();
    store.put("c", "a", &7u64).unwrap();
    let lsn = store.stats().durable_lsn;
    assert!(f.wait_for(lsn, Duration::from_secs(10)).unwrap());
    assert_eq!(value(&f, "a"), Some(7));
    f.stop_following();
    store.put("c", "b", &8u64).unwrap();
    assert!(f.wait_for(lsn + 1, Duration::from_secs(10)).unwrap(), "refreshes by itself");
}

#[test]
fn limiter_peek_and_breaker_health_read_the_writers_state() {
    let t = tmp();
    let dir = store_dir(&t);
    let store = Store::open(&dir).unwrap();
    let quota = Quota::per_minute(3);
    let limiter = store.rate_limiter("login", quota).unwrap();
    let _ = limiter.check("ip1").unwrap();
    let _ = limiter.check("ip1").unwrap();
    let breaker = store.breaker("db", BreakerConfig::default()).unwrap();
    breaker.force_open().unwrap();
    let f = Follower::open(&dir).unwrap();
    let d = f.peek("login", "ip1", &quota).unwrap();
    assert!(d.allowed);
    assert_eq!(d.remaining, limiter.peek("ip1").unwrap().remaining);
    assert_eq!(f.peek("login", "other", &quota).unwrap().remaining, 3);
    let h = f.breaker_health("db").unwrap().unwrap();
    assert_eq!(h.state, CircuitState::ForcedOpen);
    assert_eq!(f.breakers().len(), 1);
    assert!(f.breaker_health("nope").unwrap().is_none());
    assert!(f.peek("bad name!", "k", &quota).is_err());
    assert!(f.get::<u64>("c", "").is_err());
}

/// An [`Io`] that records every operation that could change the file system.
#[derive(Debug, Default)]
struct RecordingIo {
    changes: AtomicU64,
    reads: AtomicU64,
}

impl RecordingIo {
    fn change(&self) -> std::io::Result<()> {
        self.changes.fetch_add(1, Ordering::SeqCst);
        Err(std::io::Error::other("a follower must not change anything"))
    }
}

impl Io for RecordingIo {
    fn create_dir_all(&self, _: &Path) -> std::io::Result<()> {
        self.change()
    }
    fn list_dir(&self, path: &Path) -> std::io::Result<Vec<String>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        RealIo.list_dir(path)
    }
    fn read(&self, path: &Path) -> std::io::Result<FileBytes> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        RealIo.read(path)
    }
    fn create_new(&self, _: &Path) -> std::io::Result<Box<dyn IoFile>> {
        self.change().map(|()| unreachable!())
    }
    fn open_append(&self, _: &Path) -> std::io::Result<Box<dyn IoFile>> {
        self.change().map(|()| unreachable!())
    }
    fn rename(&self, _: &Path, _: &Path) -> std::io::Result<()> {
        self.change()
    }
    fn remove_file(&self, _: &Path) -> std::io::Result<()> {
        self.change()
    }
    fn truncate(&self, _: &Path, _: u64) -> std::io::Result<()> {
        self.change()
    }
    fn sync_dir(&self, _: &Path) -> std::io::Result<()> {
        self.change()
    }
    fn remove_dir_all(&self, _: &Path) -> std::io::Result<()> {
        self.change()
    }
    fn file_len(&self, path: &Path) -> std::io::Result<u64> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        RealIo.file_len(path)
    }
    fn is_dir(&self, path: &Path) -> bool {
        RealIo.is_dir(path)
    }
    fn read_at(&self, path: &Path, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        RealIo.read_at(path, offset, len)
    }
    fn create_mark(&self, _: &Path, _: &Path, _: &[u8]) -> std::io::Result<Box<dyn IoMarkFile>> {
        self.change().map(|()| unreachable!())
    }
}

#[test]
fn a_follower_makes_no_write_operation_and_changes_no_byte() {
    let t = tmp();
    let dir = store_dir(&t);
    let store = Store::open_with(&dir, small_segments()).unwrap();
    for i in 0..200u64 {
        store.put("c", &format!("k{i}"), &i).unwrap();
    }
    store.compact().unwrap();
    let io = Arc::new(RecordingIo::default());
    let opts = FollowerOptions { io: io.clone(), ..FollowerOptions::default() };
    let f = Follower::open_with(&dir, opts.clone()).unwrap();
    for i in 0..200u64 {
        store.put("c", &format!("k{i}"), &(i + 1)).unwrap();
        if i % 50 == 0 {
            store.compact().unwrap();
            f.refresh().unwrap();
        }
    }
    f.refresh().unwrap();
    assert_eq!(value(&f, "k199"), Some(200));
    store.close().unwrap();
    // With no writer, every byte stays as it was.
    let before = dir_digest(&dir);
    let g = Follower::open_with(&dir, opts).unwrap();
    g.follow().unwrap();
    assert!(g.wait_for(f.applied_lsn(), Duration::from_secs(10)).unwrap());
    g.refresh().unwrap();
    drop(g);
    assert_eq!(dir_digest(&dir), before);
    assert_eq!(io.changes.load(Ordering::SeqCst), 0);
    assert!(io.reads.load(Ordering::SeqCst) > 0, "the follower read through the seam");
}

#[test]
fn the_writer_publishes_its_epoch_and_durable_lsn_after_each_fsync() {
    let t = tmp();
    let dir = store_dir(&t);
    let store = Store::open(&dir).unwrap();
    let read = || {
        let bytes = std::fs::read(dir.join(walden::format::files::DURABLE_FILE)).unwrap();
        walden::format::DurableMark::decode(&bytes).unwrap()
    };
    assert_eq!(read().lsn, 0);
    store.put("c", "a", &1u64).unwrap();
    store.put("c", "b", &2u64).unwrap();
    let st = store.stats();
    assert_eq!((read().epoch, read().lsn), (st.epoch, st.durable_lsn));
    store.close().unwrap();
    let store = Store::open(&dir).unwrap();
    assert_eq!((read().epoch, read().lsn), (st.epoch + 1, st.durable_lsn), "a new epoch at open");
    drop(store);
}

#[test]
fn without_a_durable_file_only_segments_followed_by_another_count() {
    let t = tmp();
    let dir = store_dir(&t);
    let store = Store::open_with(&dir, small_segments()).unwrap();
    for i in 0..100u64 {
        store.put("c", &format!("k{i:03}"), &i).unwrap();
    }
    store.close().unwrap();
    std::fs::remove_file(dir.join(walden::format::files::DURABLE_FILE)).unwrap();
    let last = common::segments(&dir).pop().unwrap();
    let bytes = std::fs::read(&last).unwrap();
    let first_lsn = walden::format::SegmentHeader::decode(&bytes).unwrap().first_lsn;
    let f = Follower::open(&dir).unwrap();
    assert_eq!(f.applied_lsn(), first_lsn - 1);
    assert_eq!(f.durable(), None);
}

#[test]
fn a_log_tail_hands_out_each_durable_record_once_and_says_what_compaction_took() {
    let t = tmp();
    let dir = store_dir(&t);
    let store = Store::open_with(&dir, small_segments()).unwrap();
    let put = |n: u64| {
        for i in 0..n {
            store.put("c", &format!("k{i}"), &i).unwrap();
        }
    };
    put(10);
    let id = walden::format::StoreIdentity::decode(&std::fs::read(dir.join("STORE")).unwrap())
        .unwrap()
        .store_id;
    let mut tail = walden::LogTail::new(Arc::new(RealIo), &dir, id, 1);
    let mut lsns = Vec::new();
    let poll = |tail: &mut walden::LogTail, lsns: &mut Vec<u64>| {
        tail.poll(&mut |r| lsns.push(r.frame.lsn)).unwrap()
    };
    assert_eq!(poll(&mut tail, &mut lsns), walden::TailPoll::CaughtUp);
    assert_eq!(lsns, (1..=10).collect::<Vec<_>>());
    put(5);
    poll(&mut tail, &mut lsns);
    assert_eq!(lsns, (1..=15).collect::<Vec<_>>(), "each record once, in order");
    put(60);
    store.compact().unwrap();
    let next = store.stats().durable_lsn + 1;
    let skipped = poll(&mut tail, &mut lsns);
    assert_eq!(skipped, walden::TailPoll::Skipped { from_lsn: 16, to_lsn: next });
    store.put("c", "after", &1u64).unwrap();
    poll(&mut tail, &mut lsns);
    assert_eq!(lsns[15..], [next]);
}

#[test]
fn under_concurrent_buffered_writes_a_follower_shows_exactly_what_each_sync_made_durable() {
    let t = tmp();
    let dir = store_dir(&t);
    // Only this test's `sync` calls fsync: no flusher tick, no segment roll, no compaction.
    let opts = Options {
        durability: Durability::Buffered,
        buffered_flush_interval_ms: 3_600_000,
        auto_compact: false,
        ..Options::default()
    };
    let store = Store::open_with(&dir, opts).unwrap();
    let f = Follower::open(&dir).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    store.put("c", &format!("w{w}-{}", i % 50), &i).unwrap();
                    i += 1;
                }
            })
        })
        .collect();
    let (mut durable, mut ahead) = (0, 0);
    for step in 0..200 {
        if step % 10 == 0 {
            store.sync().unwrap();
            durable = store.stats().durable_lsn;
            assert_eq!(f.refresh().unwrap(), durable, "everything the sync made durable");
        }
        let shown = f.refresh().unwrap();
        assert_eq!(shown, durable, "written since the sync, not durable: not shown");
        ahead += u64::from(store.stats().written_lsn > durable);
        std::thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, Ordering::Relaxed);
    writers.into_iter().for_each(|w| w.join().unwrap());
    assert!(ahead > 0, "some steps had written but not yet durable records");
}
