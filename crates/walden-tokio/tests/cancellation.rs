//! Cancellation at every await point: a future dropped after any number of polls either wrote
//! nothing (dropped before its first poll) or its write commits whole, and the caller can learn
//! which from the LSN it was given before the first await.
//!
//! Each case polls a future once with a no-op waker (running it to its first await point, or
//! to completion if nothing had to wait), drops it, syncs, and checks the state.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use walden::{BreakerConfig, CommitStatus, Quota};
use walden_tokio::{AsyncAcquire, AsyncStore, Jitter};

/// Polls `fut` once and drops it; returns whether it had finished.
fn poll_once_then_drop<F: Future>(fut: F) -> bool {
    let mut fut = pin!(fut);
    matches!(fut.as_mut().poll(&mut Context::from_waker(Waker::noop())), Poll::Ready(_))
}

async fn open() -> (tempfile::TempDir, AsyncStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = AsyncStore::open(dir.path()).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn a_write_future_dropped_before_its_first_poll_writes_nothing() {
    let (_dir, store) = open().await;
    let last = store.store().stats().last_lsn;
    drop(store.put("c", "k", &1));
    drop(store.insert("c", "k", &1));
    drop(store.delete("c", "k"));
    drop(store.update::<u64, _>("c", "k", |_| Some(1)));
    store.sync().await.unwrap();
    assert_eq!(store.store().stats().last_lsn, last);
    assert!(store.get::<u64>("c", "k").unwrap().is_none());
}

#[tokio::test]
async fn every_document_write_dropped_at_its_await_point_commits_whole() {
    let (_dir, store) = open().await;
    let mut batch = walden::Batch::new();
    batch.put("c", "b1", &1).put("c", "b2", &2);
    poll_once_then_drop(store.put("c", "put", &1));
    poll_once_then_drop(store.insert("c", "insert", &1));
    poll_once_then_drop(store.commit(batch));
    store.sync().await.unwrap();
    poll_once_then_drop(store.put_if_version("c", "put", &2, 1));
    poll_once_then_drop(store.update::<u64, _>("c", "insert", |n| n.map(|n| n + 10)));
    poll_once_then_drop(store.delete("c", "b1"));
    store.sync().await.unwrap();
    let get = |k: &str| store.get::<u64>("c", k).unwrap().map(|d| (d.value, d.version));
    assert_eq!(get("put"), Some((2, 2)));
    assert_eq!(get("insert"), Some((11, 2)));
    assert_eq!(get("b1"), None);
    assert_eq!(get("b2"), Some((2, 1)));
    // And they survive a reopen: they were written, not merely applied in memory.
    let dir = store.store().path().to_path_buf();
    store.close().await.unwrap();
    let store = AsyncStore::open(&dir).await.unwrap();
    assert_eq!(store.get::<u64>("c", "insert").unwrap().unwrap().value, 11);
}

#[tokio::test]
async fn a_cancelled_caller_learns_the_fate_of_its_write_from_the_lsn() {
    let (_dir, store) = open().await;
    let pending = store.submit(|s| s.put("c", "k", &"v")).unwrap();
    let lsn = pending.lsn().unwrap();
    assert!(matches!(
        store.store().commit_status(lsn),
        CommitStatus::Queued | CommitStatus::Written | CommitStatus::Durable
    ));
    drop(pending);
    store.durable(lsn).unwrap().await.unwrap();
    assert_eq!(store.store().commit_status(lsn), CommitStatus::Durable);
    assert!(store.durable(lsn + 1).is_none());
    assert_eq!(store.store().commit_status(lsn + 1), CommitStatus::Unknown);
}

#[tokio::test]
async fn a_limiter_check_dropped_at_its_await_point_spends_its_cell_durably() {
    let (_dir, store) = open().await;
    let limiter = store.rate_limiter("api", Quota::per_minute(3)).await.unwrap();
    drop(limiter.check("k")); // never polled: nothing spent
    assert_eq!(limiter.peek("k").unwrap().remaining, 3);
    poll_once_then_drop(limiter.check("k"));
    poll_once_then_drop(limiter.check_n("k", 2));
    store.sync().await.unwrap();
    assert!(!limiter.peek("k").unwrap().allowed);
    let dir = store.store().path().to_path_buf();
    drop(limiter);
    store.close().await.unwrap();
    let store = AsyncStore::open(&dir).await.unwrap();
    let limiter = store.rate_limiter("api", Quota::per_minute(3)).await.unwrap();
    assert!(!limiter.peek("k").unwrap().allowed, "the spent cells were durable");
}

#[tokio::test]
async fn until_ready_dropped_while_sleeping_spends_nothing() {
    let (_dir, store) = open().await;
    let limiter = store.rate_limiter("slow", Quota::per_minute(1)).await.unwrap();
    assert!(limiter.check("k").await.unwrap().allowed);
    let last = store.store().stats().last_lsn;
    // Its first check is denied, then it sleeps ~60 s: cancel it there.
    let r = tokio::time::timeout(Duration::from_millis(50), limiter.until_ready("k")).await;
    assert!(r.is_err(), "still waiting for a cell");
    assert_eq!(store.store().stats().last_lsn, last, "denials write nothing");
}

#[tokio::test]
async fn until_ready_waits_for_a_cell_and_spends_it() {
    let (_dir, store) = open().await;
    let quota = Quota::per_second(20).with_burst(1);
    let limiter = store.rate_limiter("fast", quota).await.unwrap();
    assert!(limiter.check("k").await.unwrap().allowed);
    assert!(!limiter.peek("k").unwrap().allowed, "the next cell is not free yet");
    let d = limiter.until_ready_with_jitter("k", Jitter::up_to(Duration::from_millis(5))).await;
    assert!(d.unwrap().allowed);
    assert!(!limiter.peek("k").unwrap().allowed, "and it spent the cell it waited for");
}

fn tripping_config() -> BreakerConfig {
    BreakerConfig { consecutive_failures: Some(2), ..BreakerConfig::default() }
}

#[tokio::test]
async fn a_permit_dropped_without_an_outcome_counts_as_a_failure() {
    let (_dir, store) = open().await;
    let db = store.breaker("db", tripping_config()).await.unwrap();
    for _ in 0..2 {
        match db.acquire().await.unwrap() {
            AsyncAcquire::Permitted(permit) => drop(permit),
            AsyncAcquire::Rejected { .. } => panic!("closed breaker rejected"),
        }
    }
    store.sync().await.unwrap();
    assert_eq!(db.state(), walden::CircuitState::Open);
}

#[tokio::test]
async fn an_acquire_dropped_at_its_await_point_counts_its_permit_as_failed() {
    let (_dir, store) = open().await;
    let db = store.breaker("db", tripping_config()).await.unwrap();
    poll_once_then_drop(db.acquire());
    poll_once_then_drop(db.acquire());
    store.sync().await.unwrap();
    assert_eq!(db.state(), walden::CircuitState::Open);
}

#[tokio::test]
async fn an_outcome_dropped_at_its_await_point_is_recorded() {
    let (_dir, store) = open().await;
    let db = store.breaker("db", tripping_config()).await.unwrap();
    for _ in 0..2 {
        let AsyncAcquire::Permitted(permit) = db.acquire().await.unwrap() else {
            panic!("closed breaker rejected");
        };
        poll_once_then_drop(permit.failure());
    }
    store.sync().await.unwrap();
    assert_eq!(db.state(), walden::CircuitState::Open);
    // The trip was logged: a reopened store sees it.
    let dir = store.store().path().to_path_buf();
    drop(db);
    store.close().await.unwrap();
    let store = AsyncStore::open(&dir).await.unwrap();
    let db = store.breaker("db", tripping_config()).await.unwrap();
    assert_eq!(db.state(), walden::CircuitState::Open);
    poll_once_then_drop(db.reset());
    store.sync().await.unwrap();
    assert_eq!(db.state(), walden::CircuitState::Closed);
}

#[tokio::test]
async fn a_sync_dropped_at_its_await_point_leaves_a_usable_store() {
    let (_dir, store) = open().await;
    poll_once_then_drop(store.put("c", "k", &1));
    poll_once_then_drop(store.sync());
    store.sync().await.unwrap();
    assert_eq!(store.get::<u64>("c", "k").unwrap().unwrap().value, 1);
    store.put("c", "k", &2).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_dropped_at_either_await_point_closes_whole_or_not_at_all() {
    for _ in 0..5 {
        let (dir, store) = open().await;
        poll_once_then_drop(store.put("c", "k", &1));
        poll_once_then_drop(store.clone().close());
        // A close that reached the blocking pool finishes there; give it the time.
        tokio::time::sleep(Duration::from_millis(100)).await;
        match store.put("c", "k", &2).await {
            Ok(v) => assert_eq!(v, 2),
            Err(walden::Error::Closed) => {
                drop(store);
                // Closed whole: the lock is free and the first write is there.
                let reopened = AsyncStore::open(dir.path()).await.unwrap();
                assert_eq!(reopened.get::<u64>("c", "k").unwrap().unwrap().value, 1);
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
}
