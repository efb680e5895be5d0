//! `history` of a missing document, `history --diff` on arrays, and names with control
//! characters in text output.

mod common;

use common::*;
use serde_json::json;

#[test]
fn history_of_a_missing_key_says_not_found_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path(), 1, 3);
    let args = |extra: &[&str]| -> Vec<std::ffi::OsString> {
        let mut v: Vec<std::ffi::OsString> =
            vec!["history".into(), dir.path().into(), "docs".into(), "nobody".into()];
        v.extend(extra.iter().map(Into::into));
        v
    };
    let r = run(&args(&[]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(r.stderr.contains("docs/nobody: not found"), "{}", r.stderr);
    let r = run(&args(&["--json"]));
    assert_eq!(r.code, 1);
    let nf = r.of_type("not_found");
    assert_eq!(
        (nf[0]["collection"].as_str(), nf[0]["key"].as_str()),
        (Some("docs"), Some("nobody"))
    );
    // A key that exists still exits 0.
    let ok = run(&["history".as_ref(), dir.path().as_os_str(), "docs".as_ref(), key(1).as_ref()]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
}

#[test]
fn history_diff_shows_an_array_append_as_one_added_element() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_store(dir.path());
    let mut items: Vec<u64> = Vec::new();
    for n in 0..20 {
        items.push(n);
        s.put("logs", "a", &json!({ "items": items })).unwrap();
    }
    s.close().unwrap();
    let r = run(&[
        "history".as_ref(),
        dir.path().as_os_str(),
        "logs".as_ref(),
        "a".as_ref(),
        "--diff".as_ref(),
        "--json".as_ref(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let versions = r.of_type("version");
    assert_eq!(versions.len(), 20);
    for (n, v) in versions.iter().enumerate().skip(1) {
        assert_eq!(
            v["diff"],
            json!([{ "path": format!("/items/{n}"), "old": null, "new": n }]),
            "version {n}"
        );
    }
    let text = run(&[
        "history".as_ref(),
        dir.path().as_os_str(),
        "logs".as_ref(),
        "a".as_ref(),
        "--diff".as_ref(),
    ]);
    assert!(text.stdout.contains("\n  + /items/19: 19"), "{}", text.stdout);
    assert!(!text.stdout.contains("~ /items:"), "{}", text.stdout);
}

#[test]
fn text_output_escapes_control_characters_in_names() {
    let dir = tempfile::tempdir().unwrap();
    let evil = "evil\n\u{1b}[2Jkey";
    let s = open_store(dir.path());
    s.put("docs", evil, &json!({"x": 1})).unwrap();
    s.close().unwrap();
    for cmd in ["dump", "stats"] {
        let r = run(&[cmd.as_ref(), dir.path().as_os_str()]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(!r.stdout.contains('\u{1b}'), "{cmd} printed a raw escape: {:?}", r.stdout);
        assert!(r.stdout.contains("docs/evil\\n\\u{1b}[2Jkey"), "{cmd}: {}", r.stdout);
    }
    // NDJSON keeps the exact key (JSON escapes it).
    let recs = records(dir.path());
    assert_eq!(recs[0]["ops"][0]["key"], evil);
}
