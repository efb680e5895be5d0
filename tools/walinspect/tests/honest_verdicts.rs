//! `verify` never calls a directory that is not a store CLEAN.

mod common;

use common::*;

#[test]
fn a_directory_with_an_empty_wal_folder_and_no_store_file_is_not_clean() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("wal")).unwrap();
    let r = run(&["verify".as_ref(), dir.path().as_os_str(), "--json".as_ref()]);
    assert_eq!(r.code, 4, "{}", r.stdout);
    let v = &r.ndjson()[0];
    assert_eq!(v["verdict"], "unreadable");
    assert!(v["error"].as_str().unwrap().contains("not a walden store"), "{v}");
    let text = run(&["verify".as_ref(), dir.path().as_os_str()]);
    assert_eq!(text.code, 4);
    assert!(!text.stdout.contains("CLEAN"), "{}", text.stdout);
    // The empty wal/ folder given directly is not a store either.
    let wal = dir.path().join("wal");
    assert_eq!(run(&["verify".as_ref(), wal.as_os_str()]).code, 4);
    // Neither is `summary` fooled (it exits 0 but prints the verdict).
    let s = run(&["summary".as_ref(), dir.path().as_os_str(), "--json".as_ref()]);
    assert_eq!(s.of_type("verdict")[0]["verdict"], "unreadable");
}
