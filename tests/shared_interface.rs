//! The shared interface on the embedded store: everything an application does through
//! `Arc<dyn Backend>` behaves as the store's own methods do.

use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use walden::api::{copy_collection, Admission, Backend, DocumentsExt, KeyRange, WriteGuarantee};
use walden::{Batch, BreakerConfig, CircuitState, Error, ImportMode, LimitKind, Quota, Store};

fn backend(dir: &std::path::Path) -> Arc<dyn Backend> {
    Arc::new(Store::open(dir).unwrap())
}

#[test]
fn documents_through_the_trait_keep_versions_and_preconditions() {
    let dir = tempfile::tempdir().unwrap();
    let b = backend(dir.path());
    assert_eq!(b.put("c", "k", &1).unwrap(), 1);
    assert_eq!(b.put_if_version("c", "k", &2, 1).unwrap(), 2);
    assert!(matches!(
        b.put_if_version("c", "k", &3, 1),
        Err(Error::Conflict { expected: Some(1), current: Some(2), .. })
    ));
    assert!(matches!(b.insert("c", "k", &3), Err(Error::AlreadyExists { version: 2, .. })));
    assert_eq!(b.get::<i32>("c", "k").unwrap().unwrap().value, 2);
    assert!(matches!(b.delete_if_version("c", "k", 1), Err(Error::Conflict { .. })));
    assert_eq!(b.delete("c", "k").unwrap(), Some(2));
    assert_eq!(b.delete("c", "k").unwrap(), None);
    assert!(b.get_raw("c", "k").unwrap().is_none());

    let mut batch = Batch::new();
    batch.insert("c", "a", &"x").put("d", "b", &[1, 2]).expect_version("c", "zz", None);
    // "c" saw a delete at version 2 (its floor): a key created there starts at 3.
    assert_eq!(b.commit(batch).unwrap(), vec![Some(3), Some(1), None]);
    assert_eq!(b.collections().unwrap(), ["c", "d"]);
    assert_eq!((b.count("c").unwrap(), b.count("none").unwrap()), (1, 0));
    assert_eq!(b.update::<u64, _>("n", "hits", |n| Some(n.unwrap_or(0) + 5)).unwrap(), Some(1));
    assert_eq!(b.update::<u64, _>("n", "hits", |_| None).unwrap(), None);
    assert!(b.get_raw("n", "hits").unwrap().is_none());
}

#[test]
fn scans_follow_ranges_prefixes_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let b = backend(dir.path());
    for k in ["a", "b1", "b2", "b3", "c"] {
        b.put("s", k, &k).unwrap();
    }
    let keys = |r: &KeyRange, limit| -> Vec<String> {
        b.scan_raw("s", r, limit).unwrap().into_iter().map(|(k, _)| k).collect()
    };
    assert_eq!(keys(&KeyRange::all(), None), ["a", "b1", "b2", "b3", "c"]);
    assert_eq!(keys(&KeyRange::prefix("b"), None), ["b1", "b2", "b3"]);
    assert_eq!(keys(&KeyRange::prefix("b"), Some(2)), ["b1", "b2"]);
    assert_eq!(keys(&KeyRange::prefix("b").after("b2"), None), ["b3"]);
    let r = KeyRange::between(Bound::Excluded("a".into()), Bound::Included("b2".into()));
    assert_eq!(keys(&r, None), ["b1", "b2"]);
    let typed = b.scan::<String>("s", &KeyRange::prefix("c")).unwrap();
    assert_eq!(typed[0].1.value, "c");
}

#[test]
fn bad_input_through_the_trait_gets_the_stores_errors() {
    let dir = tempfile::tempdir().unwrap();
    let b = backend(dir.path());
    assert!(matches!(
        b.put("bad name", "k", &1),
        Err(Error::InvalidName { what: LimitKind::CollectionName, .. })
    ));
    assert!(matches!(b.put("c", "", &1), Err(Error::InvalidName { what: LimitKind::Key, .. })));
    assert!(matches!(b.count("bad/name"), Err(Error::InvalidName { .. })));
    b.set_validator(
        "v",
        Arc::new(
            |v: &serde_json::Value| {
                if v.is_number() {
                    Ok(())
                } else {
                    Err("numbers only".into())
                }
            },
        ),
    )
    .unwrap();
    assert!(matches!(b.put("v", "k", &"text"), Err(Error::Invalid { .. })));
    b.clear_validator("v").unwrap();
    b.put("v", "k", &"text").unwrap();
}

#[test]
fn export_import_and_copy_between_backends() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (from, to) = (backend(d1.path()), backend(d2.path()));
    from.import_json("u", &mut &br#"{"ada": {"n": 1}, "bob": [2]}"#[..], ImportMode::Atomic)
        .unwrap();
    let mut out = Vec::new();
    assert_eq!(from.export_json("u", &mut out).unwrap(), 2);
    assert_eq!(String::from_utf8(out).unwrap(), "{\"ada\":{\"n\":1},\"bob\":[2]}\n");
    assert_eq!(copy_collection(&*from, &*to, "u").unwrap(), 2);
    assert_eq!(to.get::<Vec<u8>>("u", "bob").unwrap().unwrap().value, [2]);
}

#[test]
fn limiters_and_breakers_through_the_trait() {
    let dir = tempfile::tempdir().unwrap();
    let b = backend(dir.path());
    let l = b.rate_limiter("api", Quota::per_minute(2)).unwrap();
    assert!(l.check("k").unwrap().allowed);
    assert!(l.check_n("k", 1).unwrap().allowed);
    assert!(!l.check("k").unwrap().allowed);
    assert!(matches!(l.check_n("k", 3), Err(Error::InvalidQuota { .. })));
    l.reset("k").unwrap();
    assert_eq!(l.peek("k").unwrap().remaining, 2);

    let config = BreakerConfig { open_duration: Duration::from_secs(60), ..Default::default() };
    let br = b.breaker("db", config).unwrap();
    // Two permits dropped unreported and one failure: three failed calls open the breaker.
    for _ in 0..2 {
        let Admission::Permitted(p) = br.try_acquire().unwrap() else { panic!("closed") };
        drop(p);
    }
    let Admission::Permitted(p) = br.try_acquire().unwrap() else { panic!("closed") };
    assert!(p.failure().unwrap());
    assert_eq!(br.state().unwrap(), CircuitState::Open);
    assert!(matches!(br.try_acquire().unwrap(), Admission::Rejected { retry_after: Some(_) }));
    br.reset().unwrap();
    assert_eq!(br.health().unwrap().state, CircuitState::Closed);
    assert_eq!(b.guarantees().write, WriteGuarantee::Fsynced);
}

#[test]
fn update_through_the_trait_is_exact_under_contention() {
    let dir = tempfile::tempdir().unwrap();
    let b = backend(dir.path());
    std::thread::scope(|s| {
        for _ in 0..16 {
            let b = &b;
            s.spawn(move || {
                for _ in 0..50 {
                    b.update::<u64, _>("n", "hot", |n| Some(n.unwrap_or(0) + 1)).unwrap();
                }
            });
        }
    });
    let doc = b.get::<u64>("n", "hot").unwrap().unwrap();
    assert_eq!((doc.value, doc.version), (800, 800));
}
