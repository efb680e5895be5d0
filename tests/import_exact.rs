//! Imports change nothing silently: each document is stored exactly as written (big integers,
//! long decimals, key order), or the import is refused with its place and writes nothing;
//! an atomic import over the batch limit names its unit and the way out.

use serde_json::value::RawValue;
use walden::limits::MAX_BATCH_OPS;
use walden::{Error, ImportMode, LimitKind, Store};

fn raw(store: &Store, key: &str) -> String {
    store.get::<Box<RawValue>>("c", key).unwrap().unwrap().value.get().to_owned()
}

#[test]
fn import_json_keeps_big_integers_long_decimals_and_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let doc = r#"{"zeta":123456789012345678901234567890,"alpha":0.10000000000000000000000001}"#;
    let input = format!(r#"{{"k2":{doc},"k1":-98765432109876543210}}"#);
    store.import_json("c", input.as_bytes(), ImportMode::Atomic).unwrap();
    assert_eq!(raw(&store, "k2"), doc);
    assert_eq!(raw(&store, "k1"), "-98765432109876543210");
    let mut out = Vec::new();
    store.export_json("c", &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains(doc), "export gives back the text: {out}");

    let lines = format!("{{\"key\":\"l\",\"value\":{doc}}}\n");
    store.import_json_lines("c", lines.as_bytes(), ImportMode::Atomic).unwrap();
    assert_eq!(raw(&store, "l"), doc);
}

#[test]
fn bad_imports_write_nothing_and_say_where_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let cases: &[(&str, bool, &str)] = &[
        ("{\"a\":1,\n\"a\":2}", false, "duplicate key \"a\" in the top-level object"),
        ("{\"a\":{\"x\":1,\"x\":2}}", false, "duplicate key \"x\""),
        ("{\"a\": NaN}", false, "Python's json.dump"),
        ("{\"a\": -Infinity}", false, "Python's json.dump"),
        ("\u{feff}{\"a\":1}", false, "byte order mark"),
        ("{\"key\":\"a\",\"value\":1}\n{\"key\":\"a\",\"value\":2}\n", true, "also on line 1"),
        ("{\n  \"a\": 1\n}\n", true, "this is a JSON object: use import_json"),
        ("{\"key\":\"a\",\"value\":Infinity}\n", true, "Python's json.dump"),
    ];
    for (input, lines, expect) in cases {
        let r = if *lines {
            store.import_json_lines("c", input.as_bytes(), ImportMode::Atomic)
        } else {
            store.import_json("c", input.as_bytes(), ImportMode::Atomic)
        };
        match r {
            Err(e @ Error::InvalidJson { .. }) => {
                let shown = e.to_string();
                assert!(shown.contains(expect), "{input:?}: {shown}");
                assert_eq!(shown.matches("at line").count(), 1, "one position: {shown}");
                assert_eq!(shown.matches("column").count(), 1, "one position: {shown}");
            }
            other => panic!("{input:?}: expected InvalidJson, got {other:?}"),
        }
    }
    assert_eq!(store.stats().last_lsn, 0, "nothing was written");
}

#[test]
fn an_atomic_import_over_the_batch_limit_names_operations_and_chunked() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let n = MAX_BATCH_OPS + 1;
    let mut input = String::from("{");
    for i in 0..n {
        if i > 0 {
            input.push(',');
        }
        input.push_str(&format!("\"k{i}\":{i}"));
    }
    input.push('}');
    let e = store.import_json("c", input.as_bytes(), ImportMode::Atomic).unwrap_err();
    match &e {
        Error::AtomicImportTooLarge { documents, what: LimitKind::BatchOps, size, limit } => {
            assert_eq!((*documents, *size, *limit), (n, n, MAX_BATCH_OPS));
        }
        other => panic!("expected AtomicImportTooLarge, got {other:?}"),
    }
    let shown = e.to_string();
    assert!(shown.contains("100001 operations"), "{shown}");
    assert!(!shown.contains("bytes"), "{shown}");
    assert!(shown.contains("ImportMode::Chunked"), "{shown}");
    assert_eq!(store.stats().last_lsn, 0);
    let r = store
        .import_json("c", input.as_bytes(), ImportMode::Chunked { documents_per_batch: 50_000 })
        .unwrap();
    assert_eq!((r.documents, r.batches), (n as u64, 3));
}

#[test]
fn a_batch_over_its_operation_limit_says_operations_not_bytes() {
    let e = Error::TooLarge { what: LimitKind::BatchOps, size: 150_000, limit: MAX_BATCH_OPS };
    assert_eq!(
        e.to_string(),
        "batch operation count is 150000 operations, over the limit of 100000 operations"
    );
}

#[test]
fn chunks_of_zero_or_over_the_limit_are_refused_not_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for n in [0, MAX_BATCH_OPS + 1] {
        let mode = ImportMode::Chunked { documents_per_batch: n };
        match store.import_json("c", "{\"a\":1}".as_bytes(), mode) {
            Err(Error::InvalidArgument { argument, value, .. }) => {
                assert_eq!(argument, "ImportMode::Chunked::documents_per_batch");
                assert_eq!(value, n.to_string());
            }
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }
    assert_eq!(store.stats().last_lsn, 0);
}

#[test]
fn a_chunk_over_the_record_limit_is_refused_before_the_first_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // Five small documents, then five of 14 MiB: the second batch of five would be 70 MiB,
    // over the 64 MiB record limit.
    let big = format!("\"{}\"", "x".repeat(14 << 20));
    let mut input = String::from("{");
    for i in 0..10 {
        if i > 0 {
            input.push(',');
        }
        let doc = if i < 5 { "1" } else { big.as_str() };
        input.push_str(&format!("\"k{i}\":{doc}"));
    }
    input.push('}');
    let mode = ImportMode::Chunked { documents_per_batch: 5 };
    match store.import_json("c", input.as_bytes(), mode) {
        Err(e @ Error::InvalidArgument { .. }) => {
            assert!(e.to_string().contains("batch 2 would be"), "{e}");
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    assert_eq!(store.stats().last_lsn, 0, "the first batch was not written either");
    // The same input as one atomic batch is over the record limit: named in bytes, with the
    // way out.
    match store.import_json("c", input.as_bytes(), ImportMode::Atomic) {
        Err(e @ Error::AtomicImportTooLarge { what: LimitKind::Record, .. }) => {
            let shown = e.to_string();
            assert!(shown.contains("bytes, over the limit of 67108864 bytes"), "{shown}");
            assert!(shown.contains("ImportMode::Chunked"), "{shown}");
        }
        other => panic!("expected AtomicImportTooLarge, got {other:?}"),
    }
    assert_eq!(store.stats().last_lsn, 0);
}
