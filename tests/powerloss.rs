//! Power cuts, simulated: every disk a power failure could leave must open with every
//! acknowledged write, invent nothing, and open the same way twice.
//!
//! Each workload runs on a [`SimIo`] that captures a crash point before every mutating file
//! operation. For each crash point the harness opens the disks a cut there allows (all of them
//! when few enough, otherwise a seeded sample; `WALDEN_POWERLOSS_STATES` sets the number of
//! states per workload, `WALDEN_POWERLOSS_SEED` the seed) and judges them against what the
//! workload saw acknowledged before that point. The rules for what a cut keeps are in
//! `walden::io::SimIo`'s documentation: synced data stays, each unsynced 4 KiB page is kept in
//! any of its versions independently, each create, rename or unlink not covered by a directory
//! fsync may or may not have happened.
//!
//! Negative controls remove one sync at a time from the seam and show that the simulator then
//! finds lost writes or refusals: the checks have teeth.

#[path = "powerloss/harness.rs"]
mod harness;

use harness::{examine, options, put, states_budget, History, Machine, Tally};
use walden::io::{CrashPoint, SimIo, SimSync};
use walden::{Durability, Store};

const PAD: usize = 700;
const SMALL_SEGMENT_BYTES: u64 = 12 * 1024;

fn key(i: u64) -> String {
    format!("k{}", i % 9)
}

/// Immediate puts over a few segments, closed cleanly.
fn immediate_writes(s: &Store, io: &SimIo, h: &mut History) {
    for n in 0..30 {
        put(s, io, h, &key(n), n, PAD, Durability::Immediate);
    }
}

/// Buffered puts made durable in groups by `sync`, with immediate puts between: many
/// records per unsynced page, so later pages can reach the disk without earlier ones.
fn buffered_groups(s: &Store, io: &SimIo, h: &mut History) {
    let mut n = 0;
    for round in 0..6 {
        // Records of different sizes, several to a page and some across pages.
        for i in 0..8 {
            put(s, io, h, &key(n), n, PAD / 4 + (round * 8 + i) * 37 % PAD, Durability::Buffered);
            n += 1;
        }
        s.sync().expect("sync");
        h.synced(io.op_count());
        put(s, io, h, &key(n), n, PAD, Durability::Immediate);
        n += 1;
    }
}

/// Writes, compactions (which delete covered segments) and deletes.
fn compactions(s: &Store, io: &SimIo, h: &mut History) {
    let mut n = 0;
    for _round in 0..3 {
        // About two segments per round, so a compaction deletes several.
        for _ in 0..20 {
            put(s, io, h, &key(n), n, PAD, Durability::Immediate);
            n += 1;
        }
        s.compact().expect("compact");
    }
    for k in ["k1", "k2"] {
        h.attempt_delete(k);
        s.delete(harness::COLLECTION, k).expect("delete");
        h.deleted(k, io.op_count());
    }
    put(s, io, h, "k3", n, PAD, Durability::Immediate);
}

/// Writer threads committing at once: groups of several records share one write and one
/// fdatasync. The interleaving differs from run to run; the judgement does not depend on it.
fn threads(s: &Store, io: &SimIo, h: &mut History) {
    const THREADS: u64 = 8;
    const PUTS: u64 = 8;
    let shared = std::sync::Mutex::new(std::mem::take(h));
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let shared = &shared;
            scope.spawn(move || {
                for i in 0..PUTS {
                    let k = format!("t{t}-{}", i % 3);
                    let v = harness::value(&k, i, PAD / 2);
                    shared.lock().unwrap().attempt(&k, &v);
                    let version = s.put(harness::COLLECTION, &k, &v).expect("put");
                    shared.lock().unwrap().acked(&k, version, v, io.op_count());
                }
            });
        }
    });
    *h = shared.into_inner().unwrap();
}

/// Runs `workload` on a fresh store at `rel` below the base, recording every crash point
/// from before the store is created to after it is closed.
fn record(
    rel: &str,
    fresh_dirs: bool,
    skip: Option<SimSync>,
    workload: impl FnOnce(&Store, &SimIo, &mut History),
) -> (Machine, Vec<CrashPoint>, History) {
    let m = Machine::new(rel);
    let io = if fresh_dirs { m.empty_disk() } else { m.disk_with_dir() };
    if let Some(kind) = skip {
        io.skip_sync(kind);
    }
    io.record(true);
    let mut h = History::default();
    let s = Store::open_with(&m.dir, options(&io, SMALL_SEGMENT_BYTES)).expect("open");
    workload(&s, &io, &mut h);
    s.close().expect("close");
    let mut points = io.take_crash_points();
    points.push(io.crash_point());
    if let Some(kind) = skip {
        assert!(io.skipped(kind) > 0, "the workload made no {kind:?} sync to skip");
    }
    (m, points, h)
}

fn run(rel: &str, fresh_dirs: bool, workload: impl FnOnce(&Store, &SimIo, &mut History)) -> Tally {
    let (m, points, h) = record(rel, fresh_dirs, None, workload);
    assert!(h.acked_count() > 0);
    examine(&points, &m.dir, &h, states_budget(), None, |_, _, _| {})
}

#[test]
fn immediate_writes_survive_every_cut() {
    run("store", false, immediate_writes).assert_all_good("immediate writes");
}

#[test]
fn concurrent_group_commits_survive_every_cut() {
    run("store", false, threads).assert_all_good("threads");
}

#[test]
fn buffered_groups_survive_every_cut() {
    run("store", false, buffered_groups).assert_all_good("buffered groups");
}

#[test]
fn compactions_survive_every_cut() {
    run("store", false, compactions).assert_all_good("compactions");
}

#[test]
fn creating_a_store_in_new_directories_survives_every_cut() {
    run("a/b/store", true, immediate_writes).assert_all_good("new directories");
}

/// A cut during recovery: for a sample of the cut disks that opened well, cut again at every
/// operation of that open (and of the reopen after it) and open what is left.
#[test]
fn a_cut_during_recovery_is_survived() {
    let (m, points, h) = record("store", false, None, buffered_groups);
    let budget = states_budget();
    let mut inner = Tally::default();
    let mut opened = 0usize;
    let outer = examine(&points, &m.dir, &h, budget / 4, None, |point, io, _| {
        opened += 1;
        if !opened.is_multiple_of(8) {
            return;
        }
        let during = io.take_crash_points();
        let per = (budget / 40).max(1);
        let t = examine(&during, &m.dir, &h, per, Some(point.op()), |_, _, _| {});
        inner.states += t.states;
        inner.good += t.good;
        inner.refused += t.refused;
        inner.lost += t.lost;
        inner.phantom += t.phantom;
        inner.unstable += t.unstable;
        inner.examples.extend(t.examples.into_iter().take(5 - inner.examples.len().min(5)));
    });
    outer.assert_all_good("first cut");
    inner.assert_all_good("cut during recovery");
}

/// `kill -9`, reopen (which replays what the page cache still holds), write more, then a power
/// cut at any point of the second process.
#[test]
fn kill_reopen_write_then_power_cut() {
    let (tally, _) = kill_then_cut(None);
    tally.assert_all_good("kill -9, reopen, write, cut");
}

fn kill_then_cut(skip: Option<SimSync>) -> (Tally, u64) {
    let m = Machine::new("store");
    let first = m.disk_with_dir();
    let mut h = History::default();
    {
        let s = Store::open_with(&m.dir, options(&first, SMALL_SEGMENT_BYTES)).expect("open");
        let mut n = 0;
        for _ in 0..3 {
            put(&s, &first, &mut h, &key(n), n, PAD, Durability::Immediate);
            n += 1;
        }
        for _ in 0..8 {
            put(&s, &first, &mut h, &key(n), n, PAD / 2, Durability::Buffered);
            n += 1;
        }
        // kill -9: nothing more reaches the page cache; the dropped store's syncs fail.
        let _ = first.kill();
    }
    let second = first.kill();
    if let Some(kind) = skip {
        second.skip_sync(kind);
    }
    second.record(true);
    let s = Store::open_with(&m.dir, options(&second, SMALL_SEGMENT_BYTES)).expect("reopen");
    for n in 100..110 {
        put(&s, &second, &mut h, &key(n), n, PAD, Durability::Immediate);
    }
    drop(s);
    let mut points = second.take_crash_points();
    points.push(second.crash_point());
    let skipped = skip.map_or(0, |k| second.skipped(k));
    (examine(&points, &m.dir, &h, states_budget(), None, |_, _, _| {}), skipped)
}

/// Damage in synced data is never taken for a power cut: in every cut state of a workload that
/// holds a record a later record proves durable, that record is damaged and the open must refuse.
#[test]
fn damage_in_synced_data_is_refused_in_every_cut_state() {
    let (m, points, _) = record("store", false, None, immediate_writes);
    let (mut damaged, mut refused) = (0, 0);
    let per_point = states_budget().div_ceil(points.len()).max(1);
    for point in &points {
        for choice in point.choices(per_point, harness::seed()) {
            let io = point.disk(&choice);
            if !harness::damage_synced_record(&io, &m.dir) {
                continue;
            }
            damaged += 1;
            match Store::open_with(&m.dir, options(&io, u64::MAX)) {
                Err(walden::Error::Corruption { .. }) => refused += 1,
                other => panic!("cut at {}: damage in synced data gave {other:?}", point.op()),
            }
        }
    }
    eprintln!("damage in synced data: {damaged} states damaged, {refused} refused");
    assert!(damaged > 50, "only {damaged} states had a record to damage");
}

/// Asserts that the simulator found harm (lost writes or refusals) with `kind` removed.
fn assert_caught(kind: SimSync, tally: &Tally) {
    eprintln!("without the {kind:?} sync: {tally}");
    assert!(tally.lost + tally.refused > 0, "removing the {kind:?} sync went unnoticed: {tally}");
}

#[test]
fn negative_control_without_the_group_fdatasync_writes_are_lost() {
    let (m, points, h) = record("store", false, Some(SimSync::Group), immediate_writes);
    let tally = examine(&points, &m.dir, &h, states_budget() / 4, None, |_, _, _| {});
    assert_caught(SimSync::Group, &tally);
}

#[test]
fn negative_control_without_the_segment_directory_fsync_writes_are_lost() {
    let (m, points, h) = record("store", false, Some(SimSync::SegmentDir), immediate_writes);
    let tally = examine(&points, &m.dir, &h, states_budget() / 4, None, |_, _, _| {});
    assert_caught(SimSync::SegmentDir, &tally);
}

#[test]
fn negative_control_without_the_rename_directory_fsync_the_store_is_harmed() {
    let (m, points, h) = record("store", false, Some(SimSync::RenameDir), compactions);
    let tally = examine(&points, &m.dir, &h, states_budget() / 4, None, |_, _, _| {});
    assert_caught(SimSync::RenameDir, &tally);
}

#[test]
fn negative_control_without_the_replay_fdatasync_writes_are_lost() {
    let (tally, _) = kill_then_cut(Some(SimSync::Replay));
    assert_caught(SimSync::Replay, &tally);
}
