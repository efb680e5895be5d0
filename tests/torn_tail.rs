//! Torn tails: the end of the last segment cut at every byte offset, or followed by zeros or
//! garbage, must open with exactly the records before the damage.
//!
//! A template store gets two segments of records (two opens). For every byte offset inside the
//! first and the last three records of the last segment (and inside its header), the test copies
//! the template, truncates the segment there and opens it. It asserts: the documents are exactly
//! those of the complete records before the cut; `stats().recovery.torn_tail` names the segment
//! and the offset of the record that was cut (or nothing when the cut fell on a record
//! boundary); the `.torn-*` file holds exactly the cut bytes; the segment was truncated to that
//! offset; and opening once more is clean with the same data.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{copy_dir, open, records, segments, store_dir, tmp, Rng};
use walden::format::{FrameError, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};

const FIRST: usize = 5;
const SECOND: usize = 7;

fn key(i: usize) -> String {
    format!("k{i:02}")
}

/// A store whose first segment holds records 0..FIRST and second FIRST..FIRST+SECOND, each a put
/// of a distinct key with a value of a different length.
fn template(dir: &Path) {
    for (from, to) in [(0, FIRST), (FIRST, FIRST + SECOND)] {
        let s = open(dir);
        for i in from..to {
            s.put("c", &key(i), &"v".repeat(i * 3)).unwrap();
        }
        s.close().unwrap();
    }
    assert_eq!(segments(dir).len(), 2);
}

/// Asserts the store in `dir` holds exactly the first `n` documents.
fn assert_first_n(dir: &Path, n: usize, ctx: &str) -> walden::Stats {
    let s = open(dir);
    for i in 0..FIRST + SECOND {
        let got = s.get::<String>("c", &key(i)).unwrap();
        if i < n {
            let got = got.unwrap_or_else(|| panic!("{ctx}: record {i} lost"));
            assert_eq!(got.value, "v".repeat(i * 3), "{ctx}: record {i} damaged");
        } else {
            assert!(got.is_none(), "{ctx}: record {i} survived the cut");
        }
    }
    let st = s.stats();
    assert_eq!(st.last_lsn, n as u64, "{ctx}");
    st
}

/// Opens `dir` whose last segment was damaged from `offset` on (original bytes `cut`), and
/// checks the torn-tail report, the saved bytes and the truncation.
fn assert_torn(dir: &Path, seg: &Path, offset: u64, cut: &[u8], n: usize, ctx: &str) {
    let st = assert_first_n(dir, n, ctx);
    let torn = st.recovery.torn_tail.clone().unwrap_or_else(|| panic!("{ctx}: no torn tail"));
    assert_eq!((torn.path.as_path(), torn.segment_no, torn.offset), (seg, 2, offset), "{ctx}");
    assert_eq!(torn.len, cut.len() as u64, "{ctx}");
    let saved: PathBuf = st.recovery.torn_saved_to.clone().expect("torn bytes saved");
    assert!(saved.file_name().unwrap().to_string_lossy().contains(".torn-"), "{ctx}");
    assert_eq!(fs::read(&saved).unwrap(), cut, "{ctx}: .torn file content");
    assert_eq!(common::torn_files(dir), vec![saved], "{ctx}");
    if offset > SEGMENT_HEADER_LEN as u64 {
        // (A cut at the first record leaves no record: the segment is removed and the next open
        // creates it anew.)
        assert_eq!(fs::metadata(seg).unwrap().len(), offset, "{ctx}: segment not truncated");
    }
    // A second open finds nothing to cut and the same data.
    let st = assert_first_n(dir, n, &format!("{ctx} (second open)"));
    assert!(st.recovery.torn_tail.is_none(), "{ctx}: second open cut again");
}

#[test]
fn truncation_at_every_offset_of_the_last_records_keeps_exactly_the_complete_ones() {
    let t = tmp();
    let tpl = t.path().join("template");
    template(&tpl);
    let seg_name = segments(&tpl)[1].file_name().unwrap().to_owned();
    let bytes = fs::read(segments(&tpl)[1].clone()).unwrap();
    let recs = records(&segments(&tpl)[1]);
    assert_eq!(recs.len(), SECOND);
    let end = (recs[SECOND - 1].offset + recs[SECOND - 1].len) as usize;
    // The clean close ended the segment with a close marker: no data, no LSN; cutting into it
    // is an unsynced tail of nothing.
    assert_eq!(end + RECORD_HEADER_LEN, bytes.len());
    // The first record (cutting it leaves a segment without records, which is then removed)
    // and the last three.
    let first = recs[0].offset as usize..(recs[0].offset + recs[0].len) as usize;
    let last_three = recs[SECOND - 3].offset as usize..bytes.len();
    for cut in first.chain(last_three) {
        let ctx = format!("cut at {cut} of {}", bytes.len());
        let dir = t.path().join(format!("cut-{cut}"));
        copy_dir(&tpl, &dir);
        let seg = dir.join("wal").join(&seg_name);
        common::truncate_file(&seg, cut as u64);
        let complete = recs.iter().filter(|r| (r.offset + r.len) as usize <= cut).count();
        let n = FIRST + complete;
        match recs.iter().find(|r| r.offset as usize == cut).or(recs.last().filter(|_| cut == end))
        {
            Some(_) => {
                // A cut on a record boundary is a clean log that ends earlier.
                let st = assert_first_n(&dir, n, &ctx);
                assert!(st.recovery.torn_tail.is_none(), "{ctx}: boundary cut reported torn");
                assert!(common::torn_files(&dir).is_empty(), "{ctx}");
            }
            None => {
                let from = recs
                    .iter()
                    .find(|r| (r.offset + r.len) as usize > cut)
                    .map_or(end, |r| r.offset as usize);
                assert_torn(&dir, &seg, from as u64, &bytes[from..cut], n, &ctx);
            }
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn torn_tail_reports_a_truncated_record() {
    let t = tmp();
    let dir = store_dir(&t);
    template(&dir);
    let seg = segments(&dir)[1].clone();
    let last = *records(&seg).last().unwrap();
    common::truncate_file(&seg, last.offset + 10);
    let st = open(&dir).stats();
    let torn = st.recovery.torn_tail.unwrap();
    assert_eq!(
        torn.error,
        Some(FrameError::Truncated { needed: RECORD_HEADER_LEN, available: 10 })
    );
}

#[test]
fn truncation_inside_the_last_segment_header_drops_only_that_segment() {
    let t = tmp();
    let tpl = t.path().join("template");
    template(&tpl);
    let seg_name = segments(&tpl)[1].file_name().unwrap().to_owned();
    let bytes = fs::read(segments(&tpl)[1].clone()).unwrap();
    for cut in 0..SEGMENT_HEADER_LEN {
        let ctx = format!("header cut at {cut}");
        let dir = t.path().join(format!("cut-{cut}"));
        copy_dir(&tpl, &dir);
        let seg = dir.join("wal").join(&seg_name);
        common::truncate_file(&seg, cut as u64);
        assert_torn(&dir, &seg, 0, &bytes[..cut], FIRST, &ctx);
        fs::remove_dir_all(&dir).unwrap();
    }
}

fn append(path: &Path, extra: &[u8]) {
    use std::io::Write;
    fs::OpenOptions::new().append(true).open(path).unwrap().write_all(extra).unwrap();
}

#[test]
fn zero_filled_tail_is_cut() {
    let t = tmp();
    let dir = store_dir(&t);
    template(&dir);
    let seg = segments(&dir)[1].clone();
    let len = fs::metadata(&seg).unwrap().len();
    let zeros = vec![0u8; 4096];
    append(&seg, &zeros);
    assert_torn(&dir, &seg, len, &zeros, FIRST + SECOND, "zero tail");
}

#[test]
fn garbage_tail_is_cut() {
    let mut rng = Rng::new(7);
    for (i, size) in [1usize, 27, 28, 29, 300, 5000].into_iter().enumerate() {
        let t = tmp();
        let dir = store_dir(&t);
        template(&dir);
        let seg = segments(&dir)[1].clone();
        let len = fs::metadata(&seg).unwrap().len();
        let mut garbage: Vec<u8> = (0..size).map(|_| rng.next_u64() as u8).collect();
        if i % 2 == 0 && size >= 4 {
            // A length field claiming far more than the limit must not be believed either.
            garbage[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        }
        append(&seg, &garbage);
        assert_torn(&dir, &seg, len, &garbage, FIRST + SECOND, &format!("garbage tail {size}"));
    }
}

#[test]
fn store_written_after_a_torn_tail_recovers_cleanly() {
    let t = tmp();
    let dir = store_dir(&t);
    template(&dir);
    let seg = segments(&dir)[1].clone();
    let last = *records(&seg).last().unwrap();
    common::truncate_file(&seg, last.offset + 3);
    let s = open(&dir);
    assert!(s.stats().recovery.torn_tail.is_some());
    // The lost record's key gets version 1 again; later writes continue the LSN chain.
    let last_key = key(FIRST + SECOND - 1);
    assert_eq!(s.put("c", &last_key, &"rewritten").unwrap(), 1);
    s.put("c", "after", &1).unwrap();
    s.close().unwrap();
    let s = open(&dir);
    let st = s.stats();
    assert!(st.recovery.torn_tail.is_none());
    assert_eq!(st.last_lsn, (FIRST + SECOND + 1) as u64);
    assert_eq!(s.get::<String>("c", &last_key).unwrap().unwrap().value, "rewritten");
}

#[test]
fn a_second_torn_tail_at_the_same_place_keeps_both_cut_files() {
    let t = tmp();
    let dir = store_dir(&t);
    template(&dir);
    let seg = segments(&dir)[1].clone();
    let first_cut = fs::read(&seg).unwrap()[..10].to_vec();
    common::truncate_file(&seg, 10);
    open(&dir).close().unwrap(); // cuts segment 2 (saved as .torn-0); a new segment 2 follows
                                 // The new segment 2 (header only) is cut short again.
    assert_eq!(segments(&dir)[1], seg);
    let second_cut = fs::read(&seg).unwrap()[..5].to_vec();
    common::truncate_file(&seg, 5);
    let st = assert_first_n(&dir, FIRST, "second cut");
    let saved = st.recovery.torn_saved_to.expect("second cut saved");
    let torn = common::torn_files(&dir);
    assert_eq!(torn.len(), 2, "{torn:?}");
    assert!(torn.contains(&saved));
    let contents: Vec<Vec<u8>> = torn.iter().map(|p| fs::read(p).unwrap()).collect();
    assert!(contents.contains(&first_cut) && contents.contains(&second_cut));
    assert_eq!(fs::read(&saved).unwrap(), second_cut);
}
