//! `update` on Redis queues the threads of one backend that update the same document and
//! commits their writes together (the crate's `lanes` module). These tests check that this
//! never changes a result: totals and versions stay exact with threads of one backend and of
//! several (separate backends stand for separate processes), a document the lane knows but
//! another backend changed is seen and nothing is lost, the results and versions are the
//! embedded store's, and an update inside an update's closure does not wait for itself.

mod common;

use common::RedisServer;
use walden::api::{Documents, DocumentsExt};
use walden::Store;

#[test]
fn updates_from_threads_of_one_backend_and_of_others_end_at_exact_totals() {
    const BACKENDS: usize = 3;
    const THREADS: usize = 6;
    const UPDATES: u64 = 40;
    let server = RedisServer::start();
    let backends: Vec<_> = (0..BACKENDS).map(|_| server.backend()).collect();
    std::thread::scope(|s| {
        for b in &backends {
            for _ in 0..THREADS {
                s.spawn(move || {
                    for _ in 0..UPDATES {
                        b.update::<u64, _>("n", "hot", |n| Some(n.unwrap_or(0) + 1)).unwrap();
                    }
                });
            }
        }
    });
    let total = (BACKENDS * THREADS) as u64 * UPDATES;
    let doc = backends[0].get::<u64>("n", "hot").unwrap().unwrap();
    assert_eq!(doc.value, total);
    // One version per update: none skipped, none repeated.
    assert_eq!(doc.version, total);
}

/// The same steps on two handles: `a` updates, `b` writes behind `a`'s back, `a` updates again.
fn story_behind_a_back(a: &dyn Documents, b: &dyn Documents) -> Vec<String> {
    let mut out = Vec::new();
    let mut note = |what: &str, r: walden::Result<Option<u64>>| out.push(format!("{what} {r:?}"));
    let bump = |n: Option<u64>| Some(n.unwrap_or(0) + 1);
    note("a creates", a.update::<u64, _>("s", "k", bump));
    note("b puts", b.put("s", "k", &100u64).map(Some));
    note("a bumps", a.update::<u64, _>("s", "k", bump));
    note("b deletes", b.delete("s", "k"));
    note("a bumps absent", a.update::<u64, _>("s", "k", bump));
    note("a deletes by update", a.update::<u64, _>("s", "k", |_| None));
    note("b inserts", b.insert("s", "k", &7u64).map(Some));
    note("a bumps", a.update::<u64, _>("s", "k", bump));
    let last = a.get::<u64>("s", "k").map(|d| d.map(|d| d.value));
    out.push(format!("value {last:?}"));
    out
}

#[test]
fn a_document_changed_by_another_backend_is_seen_and_nothing_is_lost() {
    let server = RedisServer::start();
    let (a, b) = (server.backend(), server.backend());
    // Versions follow the one rule (a re-created key starts above the collection's floor).
    let expected = [
        "a creates Ok(Some(1))",
        "b puts Ok(Some(2))",
        "a bumps Ok(Some(3))",
        "b deletes Ok(Some(3))",
        "a bumps absent Ok(Some(4))",
        "a deletes by update Ok(None)",
        "b inserts Ok(Some(5))",
        "a bumps Ok(Some(6))",
        "value Ok(Some(8))",
    ];
    assert_eq!(story_behind_a_back(&a, &b), expected);
    // The embedded store, one handle standing for both, gives the same results and versions.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(story_behind_a_back(&store, &store), expected);
}

#[test]
fn an_update_inside_an_update_does_not_wait_for_its_own_lane() {
    let server = RedisServer::start();
    let backend = server.backend();
    let mut inner_done = false;
    backend
        .update::<u64, _>("n", "outer", |n| {
            if !inner_done {
                // Enough other keys that some share the outer key's lane.
                for i in 0..100 {
                    backend
                        .update::<u64, _>("n", &format!("inner-{i}"), |n| Some(n.unwrap_or(0) + 1))
                        .unwrap();
                }
                inner_done = true;
            }
            Some(n.unwrap_or(0) + 1)
        })
        .unwrap();
    assert_eq!(backend.get::<u64>("n", "outer").unwrap().unwrap().value, 1);
    assert_eq!(backend.count("n").unwrap(), 101);
}
