//! Many threads on one store: no lost updates, and group commit.
//!
//! 16 threads increment one counter with `update` while 16 more increment the same counter with
//! their own `get` + `put_if_version` compare-and-set loops; the final value and version must be
//! exact. Then 32 threads write with `Durability::Immediate` at once and the store's own
//! counters must show that acknowledged writes shared fsyncs: fewer than 0.5 fsyncs per
//! acknowledged write (a count, not a timing). Finally the grouping itself, deterministically:
//! one writer's fsync is held at a gate (`common::GatedIo`) until 31 writers have queued behind
//! it (seen through `common::ChannelClock`), and those 31 must then share one write and fsync.

mod common;

use std::sync::Barrier;

use common::{gated_store, open, queue_behind_gated_fsync, store_dir, tmp};
use walden::Error;

#[test]
fn update_and_cas_increments_from_32_threads_are_exact() {
    const UPDATERS: usize = 16;
    const CASERS: usize = 16;
    const EACH: u64 = 25;
    let t = tmp();
    let dir = store_dir(&t);
    let s = open(&dir);
    s.insert("counters", "n", &0u64).unwrap();
    let barrier = Barrier::new(UPDATERS + CASERS);
    let conflicts: u64 = std::thread::scope(|sc| {
        let mut handles = Vec::new();
        for _ in 0..UPDATERS {
            let (s, barrier) = (&s, &barrier);
            handles.push(sc.spawn(move || {
                barrier.wait();
                for _ in 0..EACH {
                    let v = s.update::<u64, _>("counters", "n", |n| Some(n.unwrap() + 1)).unwrap();
                    assert!(v.is_some());
                }
                0
            }));
        }
        for _ in 0..CASERS {
            let (s, barrier) = (&s, &barrier);
            handles.push(sc.spawn(move || {
                barrier.wait();
                let mut conflicts = 0;
                for _ in 0..EACH {
                    loop {
                        let cur = s.get::<u64>("counters", "n").unwrap().unwrap();
                        match s.put_if_version("counters", "n", &(cur.value + 1), cur.version) {
                            Ok(v) => {
                                assert_eq!(v, cur.version + 1);
                                break;
                            }
                            Err(Error::Conflict { .. }) => {
                                conflicts += 1;
                                std::thread::yield_now(); // let the winner's commit finish
                            }
                            Err(e) => panic!("CAS failed: {e:?}"),
                        }
                    }
                }
                conflicts
            }));
        }
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let total = (UPDATERS + CASERS) as u64 * EACH;
    let n = s.get::<u64>("counters", "n").unwrap().unwrap();
    assert_eq!((n.value, n.version), (total, total + 1), "lost or doubled increments");
    assert_eq!(s.stats().last_lsn, total + 1, "a conflict wrote a record");
    eprintln!("{conflicts} CAS conflicts retried");
    drop(s);
    let n = open(&dir).get::<u64>("counters", "n").unwrap().unwrap();
    assert_eq!((n.value, n.version), (total, total + 1), "replay differs");
}

#[test]
fn group_commit_shares_fsyncs_among_32_writers() {
    const WRITERS: usize = 32;
    const EACH: usize = 20;
    let t = tmp();
    let s = open(&store_dir(&t));
    let start = s.stats();
    let barrier = Barrier::new(WRITERS);
    std::thread::scope(|sc| {
        for w in 0..WRITERS {
            let (s, barrier) = (&s, &barrier);
            sc.spawn(move || {
                barrier.wait();
                for i in 0..EACH {
                    s.put("g", &format!("w{w}-{i}"), &i).unwrap();
                }
            });
        }
    });
    let st = s.stats();
    let acked = (st.commits - start.commits) as f64;
    let fsyncs = (st.fsyncs - start.fsyncs) as f64;
    assert_eq!(acked as usize, WRITERS * EACH);
    assert_eq!(st.durable_lsn, st.last_lsn, "an Immediate write returned before its fsync");
    let ratio = fsyncs / acked;
    eprintln!(
        "{acked} writes, {fsyncs} fsyncs ({ratio:.3} per write), mean group {:.1}, max {}",
        st.avg_group_size, st.max_group_size
    );
    assert!(ratio < 0.5, "{fsyncs} fsyncs for {acked} acknowledged writes: no group commit");
    assert!(st.max_group_size > 1);
    assert_eq!(s.count("g").unwrap(), WRITERS * EACH);
}

/// One writer's fsync is held at a gate while 31 more writers queue behind it: when it
/// finishes, the next leader commits all 31 with one write and one fsync.
#[test]
fn writers_queued_behind_an_fsync_commit_as_one_group() {
    const QUEUED: usize = 31;
    let t = tmp();
    let (s, gate, readings) = gated_store(&store_dir(&t));
    let start = s.stats();
    let (first, others) = queue_behind_gated_fsync(&s, &gate, &readings, QUEUED, false);
    assert_eq!(first.unwrap(), 1);
    for r in others {
        assert_eq!(r.unwrap(), 1);
    }
    let st = s.stats();
    assert_eq!(st.commits - start.commits, QUEUED as u64 + 1);
    assert_eq!(st.fsyncs - start.fsyncs, 2, "one fsync for the first, one for the queued group");
    assert_eq!(st.max_group_size, QUEUED as u64);
    assert_eq!(s.count("g").unwrap(), QUEUED + 1);
}

#[test]
fn a_commit_delay_keeps_counts_exact_and_groups_writes() {
    const THREADS: usize = 16;
    const EACH: u64 = 20;
    let t = tmp();
    let dir = store_dir(&t);
    let opts = walden::Options {
        max_commit_delay: Some(std::time::Duration::from_micros(200)),
        ..walden::Options::default()
    };
    let s = walden::Store::open_with(&dir, opts).unwrap();
    s.insert("counters", "n", &0u64).unwrap();
    std::thread::scope(|sc| {
        for _ in 0..THREADS {
            let s = &s;
            sc.spawn(move || {
                for _ in 0..EACH {
                    s.update::<u64, _>("counters", "n", |n| Some(n.unwrap() + 1)).unwrap();
                }
            });
        }
    });
    let total = THREADS as u64 * EACH;
    let doc = s.get::<u64>("counters", "n").unwrap().unwrap();
    assert_eq!((doc.value, doc.version), (total, total + 1));
    let st = s.stats();
    assert!(st.fsyncs < st.commits, "{} fsyncs for {} commits", st.fsyncs, st.commits);
    drop(s);
    let s = open(&dir);
    assert_eq!(s.get::<u64>("counters", "n").unwrap().unwrap().value, total);
}
