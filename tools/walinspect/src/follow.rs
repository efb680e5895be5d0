//! `follow`: print records as a live store makes them durable.
//!
//! The records already in the log come from the same load as every other command; after them,
//! the library's `LogTail` — the reading engine of `walden::Follower` — hands out each record
//! once the writer has published it durable: it follows segment rolls, a writer restarted in a
//! new epoch, torn bytes the next open cuts, and says on stderr when compaction removed records
//! before they were read. Reads only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use walden::io::RealIo;
use walden::{LogTail, TailPoll};

use crate::commands::{print_record, select};
use crate::out::{Fail, Out};
use crate::source::{load, InputError, SourceKind};
use crate::FollowArgs;

/// `follow`.
pub fn follow(out: &mut Out, a: &FollowArgs) -> Result<i32, Fail> {
    let src = load(&a.path)?;
    let not_a_store = || InputError {
        path: a.path.clone(),
        reason: "follow needs a store or wal directory".into(),
    };
    let wal_dir = src.wal_dir.clone().filter(|_| src.kind != SourceKind::SegmentFile);
    let dir = wal_dir.as_deref().and_then(|w| w.parent()).ok_or_else(not_a_store)?.to_path_buf();
    let (recs, scan) = src.records();
    let store_id = src.identity.map(|i| i.store_id).or(scan.store_id).ok_or_else(not_a_store)?;
    let mut printed = 0u64;
    let limit_hit =
        |n: u64| a.max_records.is_some_and(|m| n >= m) || a.filters.limit.is_some_and(|m| n >= m);
    if a.from_start {
        for r in &recs {
            if limit_hit(printed) {
                return Ok(0);
            }
            if let Some(ops) = select(r, &a.filters) {
                print_record(out, r, &ops)?;
                printed += 1;
            }
        }
    }
    out.flush()?;
    let next_lsn = scan.next_lsn.unwrap_or(1);
    drop(recs);
    let mut tail = LogTail::new(Arc::new(RealIo), &dir, store_id, next_lsn);
    let poll = Duration::from_millis(a.poll_ms.max(1));
    let mut idle_since = Instant::now();
    loop {
        if limit_hit(printed) {
            return Ok(0);
        }
        let (mut seen, mut failed) = (0u64, None);
        let polled = tail.poll(&mut |r| {
            seen += 1;
            if failed.is_some() || limit_hit(printed) {
                return;
            }
            if let Some(ops) = select(r, &a.filters) {
                match print_record(out, r, &ops).and_then(|()| out.flush()) {
                    Ok(()) => printed += 1,
                    Err(e) => failed = Some(e),
                }
            }
        });
        if let Some(e) = failed {
            return Err(e.into());
        }
        match polled {
            Ok(TailPoll::Skipped { from_lsn, to_lsn }) => {
                eprintln!(
                    "walinspect: records {from_lsn}..{to_lsn} were compacted away before follow \
                     read them (the newest snapshot holds their effect); going on at {to_lsn}"
                );
                seen += 1;
            }
            Ok(TailPoll::CaughtUp) => {}
            Err(e) => {
                return Err(InputError { path: dir.clone(), reason: e.to_string() }.into());
            }
        }
        if seen > 0 {
            idle_since = Instant::now();
            continue;
        }
        if a.exit_after_idle_ms.is_some_and(|ms| idle_since.elapsed() >= Duration::from_millis(ms))
        {
            return Ok(0);
        }
        std::thread::sleep(poll);
    }
}
