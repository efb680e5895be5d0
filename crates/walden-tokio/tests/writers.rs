//! Many async writers on a 2-worker runtime share fsyncs and are all acknowledged; a failed
//! fsync fails exactly the futures waiting on it, with the poisoning's cause, and a cancelled
//! caller learns the same from `commit_status`.

use std::sync::Arc;

use walden::io::{Fault, FaultError, FaultOp, FaultyIo};
use walden::{CommitStatus, Error, IoOp, Options};
use walden_tokio::AsyncStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_async_writers_share_fsyncs_and_all_land() {
    const WRITERS: u64 = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let store = AsyncStore::open(dir.path()).await.unwrap();
    let fsyncs_before = store.store().stats().fsyncs;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.put("c", &format!("k{i}"), &i).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 1);
    }
    let stats = store.store().stats();
    assert_eq!(stats.durable_lsn, stats.last_lsn, "every acknowledged put is durable");
    assert!(stats.fsyncs - fsyncs_before < WRITERS, "fsyncs were shared: {}", stats.fsyncs);
    let mut updates: Vec<_> = (0..200)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store.update::<u64, _>("c", "n", |n| Some(n.unwrap_or(0) + 1)).await
            })
        })
        .collect();
    for t in updates.drain(..) {
        t.await.unwrap().unwrap();
    }
    assert_eq!(store.get::<u64>("c", "n").unwrap().unwrap().value, 200, "no lost update");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_fails_the_waiting_futures_and_the_status_of_a_dropped_one() {
    let dir = tempfile::tempdir().unwrap();
    let io = FaultyIo::new();
    let options = Options { io: Arc::new(io.clone()), ..Options::default() };
    let store = AsyncStore::open_with(dir.path(), options).await.unwrap();
    store.put("c", "before", &0).await.unwrap();
    let nth = io.count(FaultOp::Sync) + 1;
    io.inject(Fault { op: FaultOp::Sync, nth, error: FaultError::Eio, sticky: false });
    let dropped = store.submit(|s| s.put("c", "dropped", &1)).unwrap();
    let lsn = dropped.lsn().unwrap();
    drop(dropped);
    let waiting = store.put("c", "waiting", &2).await;
    let cause = match waiting {
        Err(Error::Poisoned { cause }) => cause,
        other => panic!("expected Poisoned, got {other:?}"),
    };
    assert_eq!(cause.op, IoOp::Sync);
    assert_eq!(store.store().commit_status(lsn), CommitStatus::Failed(cause.clone()));
    assert!(matches!(store.put("c", "after", &3).await, Err(Error::Poisoned { .. })));
    assert!(matches!(store.sync().await, Err(Error::Poisoned { .. })));
    assert!(store.get::<u64>("c", "dropped").unwrap().is_none());
    assert_eq!(store.get::<u64>("c", "before").unwrap().unwrap().value, 0);
}

/// Futures that register while a blocking thread leads are handed to the committer when that
/// leader is done: none is left waiting for a leader that never comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_and_blocking_writers_mixed_all_complete() {
    let dir = tempfile::tempdir().unwrap();
    let store = AsyncStore::open(dir.path()).await.unwrap();
    let blocking: Vec<_> = (0..8)
        .map(|t| {
            let s = store.store().clone();
            std::thread::spawn(move || {
                for i in 0..50u64 {
                    s.put("blocking", &format!("t{t}-{i}"), &i).unwrap();
                }
            })
        })
        .collect();
    let tasks: Vec<_> = (0..400u64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.put("async", &format!("k{i}"), &i).await })
        })
        .collect();
    let all = async {
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), all)
        .await
        .expect("every async writer completed");
    for b in blocking {
        b.join().unwrap();
    }
    assert_eq!(store.store().count("async").unwrap(), 400);
    assert_eq!(store.store().count("blocking").unwrap(), 400);
}
