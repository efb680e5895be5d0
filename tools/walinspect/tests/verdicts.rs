//! `verify` on generated stores damaged by byte edits: verdict, exit code, offsets, NDJSON.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

fn verify(path: &Path) -> (i32, Value) {
    let r = run(&["verify".as_ref(), path.as_os_str(), "--json".as_ref()]);
    let lines = r.ndjson();
    assert_eq!(lines.len(), 1, "verify prints one object: {}", r.stdout);
    assert_eq!(lines[0]["exit_code"], r.code, "exit_code field matches the exit code");
    let text = run(&["verify".as_ref(), path.as_os_str()]);
    assert_eq!(text.code, r.code, "text and JSON agree");
    (r.code, lines[0].clone())
}

#[test]
fn clean_store_verifies_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path(), 3, 4);
    let (code, v) = verify(dir.path());
    assert_eq!(code, 0);
    assert_eq!(v["verdict"], "clean");
    assert_eq!(v["records"], 12);
    assert_eq!((v["first_lsn"].as_u64(), v["last_lsn"].as_u64()), (Some(1), Some(12)));
    assert_eq!(v["segments"], 3);
}

#[test]
fn torn_tail_is_exit_1_at_the_start_of_the_cut_record() {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path(), 2, 5);
    let recs = records(dir.path());
    let last = recs.last().unwrap();
    // The clean close ended the segment with a close marker; cut into the last record itself.
    let marker = walden::format::RECORD_HEADER_LEN;
    let full = cut_file(&seg(dir.path(), 2), |n| n - marker - 10);
    let (code, v) = verify(dir.path());
    assert_eq!(code, 1);
    assert_eq!(v["verdict"], "torn_tail");
    assert_eq!(v["offset"], last["offset"]);
    assert_eq!(v["last_good_lsn"], 9);
    assert_eq!(v["error_kind"], "truncated");
    let cut_len = full as u64 - marker as u64 - 10 - last["offset"].as_u64().unwrap();
    assert_eq!(v["len"].as_u64(), Some(cut_len));
    assert!(v["file"].as_str().unwrap().ends_with("00000000000000000002.wal"));
    assert!(!v["hex_window"].as_str().unwrap().is_empty());
    // The listing stops where the log does.
    assert_eq!(records(dir.path()).len(), 9);
}

#[test]
fn flipped_bit_mid_log_is_exit_2_with_crcs_and_resync() {
    for segment in [1u64, 2] {
        let dir = tempfile::tempdir().unwrap();
        build_store(dir.path(), 2, 6);
        let recs: Vec<Value> =
            records(dir.path()).into_iter().filter(|r| r["segment"] == segment).collect();
        let (bad, next) = (&recs[2], &recs[3]);
        flip_bit(&seg(dir.path(), segment), bad["offset"].as_u64().unwrap() + 40, 3);
        let (code, v) = verify(dir.path());
        assert_eq!(code, 2, "segment {segment}: {v}");
        assert_eq!(v["verdict"], "corrupt");
        assert_eq!(v["error_kind"], "durable_record_damaged");
        assert_eq!(v["offset"], bad["offset"]);
        // The proof: the next record was written after the damaged one was durable.
        assert_eq!(v["proof"]["kind"], "later_record", "{v}");
        assert_eq!(v["proof"]["offset"], next["offset"]);
        assert!(v["proof"]["durable_lsn"].as_u64() >= bad["lsn"].as_u64());
        assert!(v["error"].as_str().unwrap().contains("was written after"), "{v}");
        assert_eq!(v["last_good_lsn"].as_u64(), Some(bad["lsn"].as_u64().unwrap() - 1));
        assert_eq!(v["resync_offset"], next["offset"]);
        let (stored, computed) =
            (v["stored_crc"].as_str().unwrap(), v["computed_crc"].as_str().unwrap());
        assert!(stored.starts_with("0x") && stored != computed);
        // The window holds the damaged offset.
        let start = v["hex_window_start"].as_u64().unwrap();
        let len = v["hex_window"].as_str().unwrap().len() as u64 / 2;
        let off = bad["offset"].as_u64().unwrap();
        assert!(start <= off && off < start + len);
        let text = run(&["verify".as_ref(), dir.path().as_os_str()]);
        assert!(
            text.stdout.contains("CORRUPT")
                && text.stdout.contains(&format!("resume at byte offset {}", next["offset"])),
            "{}",
            text.stdout
        );
    }
}

#[test]
fn zeroed_sector_is_exit_2_at_the_record_holding_it() {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path(), 1, 40);
    let recs = records(dir.path());
    let path = seg(dir.path(), 1);
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 2048);
    bytes[512..1024].fill(0);
    std::fs::write(&path, bytes).unwrap();
    let hit = recs
        .iter()
        .find(|r| {
            let (o, l) = (r["offset"].as_u64().unwrap(), r["len"].as_u64().unwrap());
            o <= 512 && 512 < o + l
        })
        .unwrap();
    let resume = recs.iter().find(|r| r["offset"].as_u64().unwrap() >= 1024).unwrap();
    let (code, v) = verify(dir.path());
    assert_eq!(code, 2, "{v}");
    assert_eq!(v["offset"], hit["offset"]);
    assert_eq!(v["resync_offset"], resume["offset"]);
}

#[test]
fn segment_from_another_store_is_exit_3() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    build_store(a.path(), 3, 3);
    build_store(b.path(), 3, 3);
    std::fs::copy(seg(b.path(), 2), seg(a.path(), 2)).unwrap();
    let (code, v) = verify(a.path());
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["verdict"], "inconsistent");
    assert_eq!(v["error_kind"], "foreign_store");
    assert_eq!(v["offset"], 0);
    assert_eq!(v["last_good_lsn"], 3);
    assert!(v["file"].as_str().unwrap().ends_with("00000000000000000002.wal"));
}

#[test]
fn missing_segment_is_exit_3_and_named() {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path(), 3, 3);
    std::fs::remove_file(seg(dir.path(), 2)).unwrap();
    let (code, v) = verify(dir.path());
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["error_kind"], "missing_segment");
    assert_eq!(v["missing_segment"], 2);
    assert_eq!(v["last_good_lsn"], 3);
}

#[test]
fn lsn_gap_between_segments_is_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path(), 2, 4);
    let recs = records(dir.path());
    // Cut the last record of segment 1 cleanly: segment 1 still verifies, segment 2 then starts
    // at an LSN that does not follow.
    cut_file(&seg(dir.path(), 1), |_| recs[3]["offset"].as_u64().unwrap() as usize);
    let (code, v) = verify(dir.path());
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["error_kind"], "lsn_gap");
    assert_eq!(v["last_good_lsn"], 3);
    assert!(v["file"].as_str().unwrap().ends_with("00000000000000000002.wal"));
}

#[test]
fn unreadable_or_foreign_inputs_are_exit_4() {
    let empty = tempfile::tempdir().unwrap();
    let (code, v) = verify(empty.path());
    assert_eq!((code, v["type"].as_str()), (4, Some("error")));
    let (code, _) = verify(&empty.path().join("nope"));
    assert_eq!(code, 4);
    let junk = empty.path().join("junk.wal");
    std::fs::write(&junk, b"definitely not a walden segment, just text").unwrap();
    assert_eq!(verify(&junk).0, 4);
    // A store whose identity file is damaged.
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path(), 1, 2);
    flip_bit(&dir.path().join("STORE"), 20, 0);
    let (code, v) = verify(dir.path());
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["verdict"], "unreadable");
}

#[test]
fn a_single_segment_file_and_a_wal_dir_can_be_verified() {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path(), 2, 4);
    let (code, v) = verify(&seg(dir.path(), 2));
    assert_eq!((code, v["records"].as_u64()), (0, Some(4)));
    assert_eq!(records(&seg(dir.path(), 2)).first().unwrap()["lsn"], 5);
    let (code, v) = verify(&dir.path().join("wal"));
    assert_eq!((code, v["records"].as_u64()), (0, Some(8)));
}

#[test]
fn a_live_store_is_read_without_its_lock_and_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path(), 1, 3);
    let store = open_store(dir.path());
    store.put("live", "a", &1).unwrap();
    let before = checksums(dir.path());
    let (code, v) = verify(dir.path());
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["records"], 4);
    assert_eq!(checksums(dir.path()), before);
    // A record half written at the tail of the live segment reads as a torn tail.
    let live_seg = seg(dir.path(), 2);
    let mut bytes = std::fs::read(&live_seg).unwrap();
    let len = bytes.len();
    bytes.extend_from_within(64..64 + 20);
    std::fs::write(&live_seg, &bytes).unwrap();
    let (code, v) = verify(dir.path());
    assert_eq!((code, v["offset"].as_u64()), (1, Some(len as u64)), "{v}");
    drop(store);
}
