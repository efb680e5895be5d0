//! The same application code against both backends: an embedded store and a private
//! redis-server. Every result and every error must be the same (the error's text included), so
//! an application can move between them by configuration alone.

mod common;

use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use common::RedisServer;
use walden::api::{copy_collection, Admission, Backend, Documents, DocumentsExt, KeyRange};
use walden::{Batch, BreakerConfig, CircuitState, Error, ImportMode, Quota, Store};

/// Runs `f` on an embedded store and on Redis; returns both outcomes.
fn both<T>(f: impl Fn(&dyn Backend) -> T) -> (T, T) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let server = RedisServer::start();
    let redis = server.backend();
    (f(&store), f(&redis))
}

fn errors_text(b: &dyn Backend) -> Vec<String> {
    let long_key = "k".repeat(1025);
    let big_doc = "x".repeat(16 << 20);
    let mut out = Vec::new();
    let mut note = |r: walden::Result<u64>| out.push(format!("{:?}", r.map_err(|e| e.to_string())));
    note(b.put("bad name", "k", &1));
    note(b.put("", "k", &1));
    note(b.put(&"c".repeat(65), "k", &1));
    note(b.put("c", "", &1));
    note(b.put("c", &long_key, &1));
    note(b.put("c", "k", &big_doc));
    note(b.put("c", "k", &f64::NAN)); // whatever the store does with non-finite numbers
    note(b.insert("c", "k2", &1));
    note(b.insert("c", "k2", &2));
    note(b.put_if_version("c", "k2", &3, 7));
    note(b.put_if_version("c", "absent", &3, 1));
    let mut batch = Batch::new();
    batch.put("c", "a", &1).insert("c", "k2", &9);
    note(b.commit(batch).map(|v| v.len() as u64));
    b.set_validator(
        "v",
        Arc::new(
            |v: &serde_json::Value| {
                if v.is_object() {
                    Ok(())
                } else {
                    Err("objects only".into())
                }
            },
        ),
    )
    .unwrap();
    note(b.put("v", "k", &1));
    note(b.count("bad/name"));
    let l = b.rate_limiter("bad name", Quota::per_second(1)).map(|_| 0);
    note(l);
    note(b.rate_limiter("l", Quota::per_second(0)).map(|_| 0));
    let l = b.rate_limiter("l", Quota::per_second(2)).unwrap();
    note(l.check_n("k", 3).map(|_| 0));
    note(l.check("").map(|_| 0));
    note(b.breaker("b", BreakerConfig { half_open_probes: 0, ..Default::default() }).map(|_| 0));
    note(b.import_json("c", &mut &b"[1, 2]"[..], ImportMode::Atomic).map(|r| r.documents));
    note(b.import_json("c", &mut &b"{\"a\": 1,"[..], ImportMode::Atomic).map(|r| r.documents));
    out
}

#[test]
fn bad_input_gets_the_same_errors_on_both_backends() {
    let (embedded, redis) = both(errors_text);
    for (e, r) in embedded.iter().zip(&redis) {
        assert_eq!(e, r);
    }
    assert_eq!(embedded.len(), redis.len());
}

fn documents_story(b: &dyn Backend) -> Vec<String> {
    let mut out = Vec::new();
    let mut note = |s: String| out.push(s);
    note(format!("{:?}", b.put("users", "ada", &serde_json::json!({"name": "Ada"}))));
    note(format!("{:?}", b.put("users", "ada", &serde_json::json!({"name": "Ada L."}))));
    let got = b.get::<serde_json::Value>("users", "ada").unwrap().unwrap();
    note(format!("{} {}", got.value, got.version));
    note(format!("{:?}", b.delete("users", "ada")));
    // Rule 1 of the versions: a re-created key continues above every version it had.
    let v = b.insert("users", "ada", &1).unwrap();
    note(format!("recreated at {}", v > 2 || v == 1));
    let conflict = b.delete_if_version("users", "ada", v + 1);
    note(format!(
        "{}",
        matches!(conflict, Err(Error::Conflict { current: Some(c), .. }) if c == v)
    ));
    let mut batch = Batch::new();
    batch
        .insert("team", "bob", &2)
        .put("team", "cy", &3)
        .put("team", "cy", &4)
        .expect_version("team", "zed", None)
        .delete("team", "nobody");
    note(format!("{:?}", b.commit(batch)));
    note(format!("{:?}", b.commit(Batch::new())));
    for k in ["b1", "b2", "b3", "c1"] {
        b.put("s", k, &k).unwrap();
    }
    let keys = |r: &KeyRange, limit| -> String {
        let page = b.scan_raw("s", r, limit).unwrap();
        page.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(",")
    };
    note(keys(&KeyRange::all(), None));
    note(keys(&KeyRange::prefix("b"), Some(2)));
    note(keys(&KeyRange::prefix("b").after("b1"), None));
    note(keys(
        &KeyRange::between(Bound::Excluded("b1".into()), Bound::Included("c1".into())),
        None,
    ));
    note(format!("{:?} {:?}", b.count("s"), b.collections()));
    let n = b.update::<u64, _>("n", "hits", |n| Some(n.unwrap_or(0) + 1));
    note(format!("{n:?}"));
    let mut out_json = Vec::new();
    b.export_json("s", &mut out_json).unwrap();
    note(String::from_utf8(out_json).unwrap());
    let imported = b.import_json(
        "imp",
        &mut &br#"{"x": {"deep": [1, 2.5, "s"]}, "y": null}"#[..],
        ImportMode::Chunked { documents_per_batch: 1 },
    );
    note(format!("{imported:?}"));
    note(b.get_raw("imp", "x").unwrap().unwrap().value.get().to_owned());
    out
}

#[test]
fn documents_behave_the_same_on_both_backends() {
    let (embedded, redis) = both(documents_story);
    for (e, r) in embedded.iter().zip(&redis) {
        assert_eq!(e, r);
    }
    assert_eq!(embedded.len(), redis.len());
}

#[test]
fn limiters_and_breakers_behave_the_same_on_both_backends() {
    let story = |b: &dyn Backend| -> Vec<String> {
        let l = b.rate_limiter("login", Quota::per_minute(3)).unwrap();
        let mut out = Vec::new();
        for _ in 0..4 {
            let d = l.check("ip").unwrap();
            // Times differ by a few microseconds between the runs: round to seconds.
            out.push(format!(
                "{} {} {}",
                d.allowed,
                d.remaining,
                d.retry_after.as_secs_f64().round()
            ));
        }
        out.push(format!("{:?}", l.peek("other").unwrap().remaining));
        out.push(format!("reset {:?} {:?}", l.reset("ip"), l.reset("never-used")));
        out.push(format!("{:?}", l.peek("ip").unwrap().remaining));
        let br = b.breaker("db", BreakerConfig::default()).unwrap();
        for _ in 0..3 {
            if let Admission::Permitted(p) = br.try_acquire().unwrap() {
                out.push(format!("{:?}", p.failure()));
            }
        }
        out.push(format!("{:?}", br.state()));
        out.push(match br.try_acquire().unwrap() {
            Admission::Rejected { retry_after } => {
                format!("rejected {}", retry_after.unwrap().as_secs_f64().round())
            }
            Admission::Permitted(_) => "permitted".into(),
        });
        br.force_open().unwrap();
        out.push(format!("{:?}", br.health().unwrap().state));
        br.reset().unwrap();
        let h = br.health().unwrap();
        out.push(format!("{:?} {}", h.state, h.generation));
        out
    };
    let (embedded, redis) = both(story);
    assert_eq!(embedded, redis);
}

#[test]
fn half_open_admits_the_configured_probes_and_closes_after_they_succeed() {
    let server = RedisServer::start();
    let b = server.backend();
    let config = BreakerConfig {
        consecutive_failures: Some(1),
        open_duration: Duration::from_millis(200),
        half_open_probes: 2,
        ..Default::default()
    };
    let br = b.breaker("probe", config).unwrap();
    let Admission::Permitted(p) = br.try_acquire().unwrap() else { panic!() };
    p.failure().unwrap();
    assert_eq!(br.state().unwrap(), CircuitState::Open);
    std::thread::sleep(Duration::from_millis(250));
    let Admission::Permitted(p1) = br.try_acquire().unwrap() else { panic!("first probe") };
    let Admission::Permitted(p2) = br.try_acquire().unwrap() else { panic!("second probe") };
    assert!(matches!(br.try_acquire().unwrap(), Admission::Rejected { retry_after: None }));
    assert_eq!(br.state().unwrap(), CircuitState::HalfOpen);
    assert!(p1.success().unwrap());
    assert!(p2.success().unwrap());
    assert_eq!(br.state().unwrap(), CircuitState::Closed);
    // A permit dropped without an outcome is a failed call.
    let Admission::Permitted(p) = br.try_acquire().unwrap() else { panic!() };
    drop(p);
    assert_eq!(br.state().unwrap(), CircuitState::Open);
}

#[test]
fn copy_moves_a_collection_from_a_local_store_to_redis_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let local = Store::open(dir.path()).unwrap();
    let mut fill = Batch::new();
    for i in 0..2_500u32 {
        fill.put("items", &format!("k{i:05}"), &serde_json::json!({"i": i}));
    }
    local.commit(fill).unwrap();
    let server = RedisServer::start();
    let redis = server.backend();
    assert_eq!(copy_collection(&local, &redis, "items").unwrap(), 2_500);
    assert_eq!(Documents::count(&redis, "items").unwrap(), 2_500);
    let back_dir = tempfile::tempdir().unwrap();
    let back = Store::open(back_dir.path()).unwrap();
    assert_eq!(copy_collection(&redis, &back, "items").unwrap(), 2_500);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    local.export_json("items", &mut a).unwrap();
    back.export_json("items", &mut b).unwrap();
    assert_eq!(a, b);
    // Everything at once: every collection, both ways.
    local.put("other", "x", &true).unwrap();
    let all_dir = tempfile::tempdir().unwrap();
    let all = Store::open(all_dir.path()).unwrap();
    let server2 = RedisServer::start();
    let redis2 = server2.backend();
    assert_eq!(walden::api::copy_all(&local, &redis2).unwrap(), 2_501);
    assert_eq!(walden::api::copy_all(&redis2, &all).unwrap(), 2_501);
    assert_eq!(all.collections().unwrap(), ["items", "other"]);
}

#[test]
fn durability_settings_are_checked_at_connect() {
    let server = RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let err = walden_redis::RedisBackend::connect(server.config()).unwrap_err();
    assert!(matches!(err, Error::DurabilityUnavailable { .. }), "{err}");
    let mut c = server.config();
    c.allow_eviction = true;
    walden_redis::RedisBackend::connect(c).unwrap();

    let server = RedisServer::start_with(&["--appendfsync", "everysec"]);
    let err = walden_redis::RedisBackend::connect(server.config()).unwrap_err();
    assert!(err.to_string().contains("appendfsync everysec"), "{err}");
    let mut c = server.config();
    c.durability = walden::Durability::Buffered;
    let b = walden_redis::RedisBackend::connect(c).unwrap();
    assert_eq!(
        b.guarantees().write,
        walden::api::WriteGuarantee::FsyncedWithin { interval: Duration::from_secs(1) }
    );
    // A batch asking for more than the connection gives is refused.
    let mut batch = Batch::new();
    batch.put("c", "k", &1).durability(walden::Durability::Immediate);
    assert!(matches!(b.commit(batch), Err(Error::DurabilityUnavailable { .. })));
}

#[test]
fn versions_never_repeat_for_a_key_after_deletes() {
    let server = RedisServer::start();
    let b = server.backend();
    assert_eq!(b.put("c", "k", &1).unwrap(), 1);
    assert_eq!(b.put("c", "k", &2).unwrap(), 2);
    assert_eq!(b.delete("c", "k").unwrap(), Some(2));
    // The collection's floor is 2: a created key starts above it.
    assert_eq!(b.insert("c", "k", &3).unwrap(), 3);
    assert_eq!(b.put("c", "other", &3).unwrap(), 3);
    assert!(matches!(b.put_if_version("c", "k", &4, 2), Err(Error::Conflict { .. })));
    let mut batch = Batch::new();
    batch.delete("c", "k").insert("c", "k", &5);
    assert_eq!(b.commit(batch).unwrap(), [Some(3), Some(4)]);
    // Floors are per collection.
    assert_eq!(b.put("fresh", "k", &1).unwrap(), 1);
}

fn put_expecting_story(b: &dyn Backend) -> Vec<String> {
    let mut out = Vec::new();
    let mut note = |r: walden::Result<Vec<Option<u64>>>| {
        out.push(format!("{:?}", r.map_err(|e| e.to_string())))
    };
    let expecting = |expected: Option<u64>, value: f64| {
        let mut batch = Batch::new();
        batch.put_expecting("c", "k", &value, expected);
        batch
    };
    note(b.commit(expecting(None, 1.0)));
    note(b.commit(expecting(None, 2.0))); // read nothing, but it exists: a Conflict
    note(b.commit(expecting(Some(7), 2.0)));
    note(b.commit(expecting(Some(1), 2.0)));
    note(b.commit(expecting(Some(2), f64::NAN))); // refused before anything is sent
    out
}

#[test]
fn put_expecting_and_non_finite_refusals_are_the_same_on_both_backends() {
    let (embedded, redis) = both(put_expecting_story);
    assert_eq!(embedded, redis);
    assert!(embedded[1].contains("version conflict") && embedded[1].contains("expected None"));
    assert!(embedded[4].contains("non-finite"), "{}", embedded[4]);
}

#[allow(dead_code)]
#[path = "../examples/any_backend.rs"]
mod example;

#[test]
fn the_example_runs_unchanged_on_both_backends() {
    let (embedded, redis) = both(|b| example::tour(b).map_err(|e| e.to_string()));
    assert_eq!(embedded, Ok(()));
    assert_eq!(redis, Ok(()));
}

#[test]
fn with_cluster_slots_a_batch_over_two_collections_is_refused_before_anything_is_sent() {
    let server = RedisServer::start();
    let mut config = server.config();
    config.cluster_slots = true;
    let b = walden_redis::RedisBackend::connect(config).unwrap();
    let mut batch = Batch::new();
    batch.put("a", "k", &1).put("b", "k", &2);
    let err = b.commit(batch).unwrap_err();
    assert!(matches!(&err, Error::CrossSlot { first, second } if first == "a" && second == "b"));
    assert_eq!(b.collections().unwrap(), Vec::<String>::new());
    let mut batch = Batch::new();
    batch.put("a", "k", &1).put("a", "j", &2);
    assert_eq!(b.commit(batch).unwrap(), [Some(1), Some(1)]);
}

#[test]
fn failure_rate_and_slow_calls_trip_breakers_alike_on_both_backends() {
    let story = |b: &dyn Backend| -> Vec<String> {
        let rate = walden::FailureRate { threshold_percent: 50, window_calls: 4, minimum_calls: 4 };
        let config = BreakerConfig {
            consecutive_failures: None,
            failure_rate: Some(rate),
            slow_call_threshold: Some(Duration::from_secs(2)),
            ..Default::default()
        };
        let br = b.breaker("rate", config).unwrap();
        let mut out = Vec::new();
        // fail, ok, slow ok (a failure), ok: 2 of 4 failed but the last call succeeded.
        for (ok, secs) in [(false, 0), (true, 0), (true, 3), (true, 0), (false, 0)] {
            let Admission::Permitted(p) = br.try_acquire().unwrap() else { panic!("closed") };
            out.push(format!("{:?}", p.finish(ok, Duration::from_secs(secs))));
            let h = br.health().unwrap();
            out.push(format!(
                "{:?} {} {} {} {}",
                h.state,
                h.generation,
                h.counts.consecutive_failures,
                h.counts.window_calls,
                h.counts.window_failures
            ));
        }
        out
    };
    let (embedded, redis) = both(story);
    assert_eq!(embedded, redis);
    assert!(embedded.last().unwrap().starts_with("Open"), "{embedded:?}");
}

/// Imports on one backend: each document's stored text, or the error's text.
fn import_story(b: &dyn Backend) -> Vec<String> {
    let doc = r#"{"zeta":123456789012345678901234567890,"alpha":0.10000000000000000000000001}"#;
    let good = format!(r#"{{"k2":{doc},"k1":-98765432109876543210}}"#);
    let inputs = [
        (good.as_str(), ImportMode::Atomic),
        ("{\"a\":1,\n\"a\":2}", ImportMode::Atomic),
        ("{\"a\":{\"x\":1,\"x\":2}}", ImportMode::Atomic),
        ("{\"a\": NaN}", ImportMode::Atomic),
        ("{\"a\": -Infinity}", ImportMode::Atomic),
        ("\u{feff}{\"a\":1}", ImportMode::Atomic),
        ("{\"a\":1}", ImportMode::Chunked { documents_per_batch: 0 }),
        (
            "{\"a\":1}",
            ImportMode::Chunked { documents_per_batch: walden::limits::MAX_BATCH_OPS + 1 },
        ),
    ];
    let mut out = Vec::new();
    for (input, mode) in inputs {
        let r = b.import_json("imp", &mut input.as_bytes(), mode);
        out.push(format!("{:?}", r.map(|r| r.documents).map_err(|e| e.to_string())));
    }
    for key in ["k1", "k2", "a"] {
        let raw = b.get_raw("imp", key).unwrap().map(|d| d.value.get().to_owned());
        out.push(format!("{key}: {raw:?}"));
    }
    out
}

#[test]
fn imports_keep_exact_text_and_refuse_the_same_input_alike_on_both_backends() {
    let (embedded, redis) = both(import_story);
    assert_eq!(embedded, redis);
    assert!(redis[0].starts_with("Ok(2)"), "{redis:?}");
    assert!(redis.iter().any(|l| l.contains("123456789012345678901234567890")), "{redis:?}");
}
