//! `stats`: where the log's bytes go.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use serde_json::json;
use walden::format::breaker::BreakerRecord;
use walden::format::breaker_counts::BreakerCountsRecord;
use walden::format::lockout::LockoutRecord;
use walden::format::ratelimit::RateLimitRecord;
use walden::format::violations::ViolationsRecord;
use walden::format::{encode_batch_op, BatchOpKind, RecordKind};
use walden::CircuitState;

use crate::commands::note_verdict;
use crate::current::{current_state, live_json, live_text};
use crate::escape::esc;
use crate::out::{Fail, Out};
use crate::render::{batch_ops, circuit_state_name, kind_name};
use crate::snapshots;
use crate::source::load;

/// How many of the largest live documents to list.
const LARGEST: usize = 10;
/// Upper bounds of the record size buckets (bytes, header included); the last is open.
const SIZE_BUCKETS: [u64; 8] = [64, 256, 1024, 4096, 16_384, 65_536, 1 << 20, u64::MAX];
/// Upper bounds of the batch size buckets (operations per batch record).
const BATCH_BUCKETS: [u64; 6] = [1, 2, 10, 100, 1000, u64::MAX];

#[derive(Default)]
struct Coll {
    puts: u64,
    deletes: u64,
    op_bytes: u64,
}

struct Live {
    op_bytes: u64,
    value_bytes: u64,
    version: u64,
    lsn: u64,
}

fn bucket_json(bounds: &[u64], counts: &[u64], label: &str) -> serde_json::Value {
    bounds
        .iter()
        .zip(counts)
        .map(|(b, n)| json!({ label: if *b == u64::MAX { None } else { Some(*b) }, "count": n }))
        .collect()
}

fn bucket_text(bounds: &[u64], counts: &[u64], unit: &str) -> String {
    bounds
        .iter()
        .zip(counts)
        .filter(|(_, n)| **n > 0)
        .map(|(b, n)| {
            if *b == u64::MAX {
                format!("  larger: {n}")
            } else {
                format!("  <= {b} {unit}: {n}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `stats`: per-collection counts, live vs dead bytes, reclaimable space, largest documents,
/// record size distribution, batch sizes, rate-limiter key counts and breaker states (as of the
/// last breaker record in the log).
pub fn stats(out: &mut Out, path: &Path) -> Result<i32, Fail> {
    let src = load(path)?;
    let (recs, scan) = src.records();
    let mut colls: BTreeMap<&str, Coll> = BTreeMap::new();
    let mut live: HashMap<(&str, &str), Live> = HashMap::new();
    let mut sizes = [0u64; SIZE_BUCKETS.len()];
    let mut batches = [0u64; BATCH_BUCKETS.len()];
    let (mut batch_records, mut batch_ops_total, mut batch_max) = (0u64, 0u64, 0u64);
    let mut other: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut limiter_keys: BTreeMap<&str, HashSet<&str>> = BTreeMap::new();
    let mut breakers: BTreeMap<&str, (CircuitState, u64, u64)> = BTreeMap::new();
    let mut held = HeldStates::default();
    let mut record_bytes = 0u64;
    let mut scratch = Vec::new();
    for r in &recs {
        let len = r.frame.len as u64;
        record_bytes += len;
        sizes[SIZE_BUCKETS.iter().position(|b| len <= *b).unwrap_or(SIZE_BUCKETS.len() - 1)] += 1;
        if r.kind() != Some(RecordKind::Batch) {
            let e = other.entry(kind_name(r.frame.kind)).or_default();
            e.0 += 1;
            e.1 += len;
            match r.kind() {
                Some(RecordKind::RateLimit) => {
                    if let Ok(rl) = RateLimitRecord::decode(r.frame.body) {
                        limiter_keys.entry(rl.limiter).or_default().insert(rl.key);
                    }
                }
                Some(RecordKind::Breaker) => {
                    if let Ok(b) = BreakerRecord::decode(r.frame.body) {
                        breakers.insert(b.name, (b.state, b.generation, r.frame.lsn));
                    }
                }
                Some(kind) => held.note(kind, r.frame.body),
                None => {}
            }
            continue;
        }
        let ops = batch_ops(r);
        let n = ops.len() as u64;
        batch_records += 1;
        batch_ops_total += n;
        batch_max = batch_max.max(n);
        batches[BATCH_BUCKETS.iter().position(|b| n <= *b).unwrap_or(BATCH_BUCKETS.len() - 1)] += 1;
        for op in ops {
            scratch.clear();
            encode_batch_op(&mut scratch, &op);
            let c = colls.entry(op.collection).or_default();
            c.op_bytes += scratch.len() as u64;
            match op.kind {
                BatchOpKind::Put => {
                    c.puts += 1;
                    live.insert(
                        (op.collection, op.key),
                        Live {
                            op_bytes: scratch.len() as u64,
                            value_bytes: op.value.len() as u64,
                            version: op.version,
                            lsn: r.frame.lsn,
                        },
                    );
                }
                BatchOpKind::Delete => {
                    c.deletes += 1;
                    live.remove(&(op.collection, op.key));
                }
            }
        }
    }
    // (live documents, live bytes) per collection.
    let mut live_by_coll: HashMap<&str, (u64, u64)> = HashMap::new();
    for ((c, _), l) in &live {
        let e = live_by_coll.entry(c).or_default();
        e.0 += 1;
        e.1 += l.op_bytes;
    }
    let mut total_live = 0u64;
    let mut total_dead = 0u64;
    // The current state (snapshot + log): on a compacted store most documents live in the
    // snapshot, which the log-only counts above cannot see.
    let checks = snapshots::check_all(&src);
    let state = current_state(&recs, &checks);
    let names: BTreeSet<&str> =
        colls.keys().copied().chain(state.docs.keys().map(|(c, _)| *c)).collect();
    let none = Coll::default();
    for name in names {
        let c = colls.get(name).unwrap_or(&none);
        let (live_docs, live_bytes) = live_by_coll.get(name).copied().unwrap_or_default();
        let dead = c.op_bytes - live_bytes;
        total_live += live_bytes;
        total_dead += dead;
        let (in_snapshot, in_log) = state.counts(Some(name));
        let v = json!({
            "type": "collection", "collection": name, "puts": c.puts, "deletes": c.deletes,
            "live_documents": live_docs, "live_bytes": live_bytes, "dead_bytes": dead,
            "documents": in_snapshot + in_log, "in_snapshot": in_snapshot,
        });
        out.emit(&v, || format!(
            "collection {}: {} puts, {} deletes, {} live documents, {live_bytes} live bytes, {dead} dead bytes in the log; {} documents now ({in_snapshot} held by the snapshot)",
            esc(name), c.puts, c.deletes, live_docs, in_snapshot + in_log
        ))?;
    }
    let mut largest: Vec<(&(&str, &str), &Live)> = live.iter().collect();
    largest.sort_by(|a, b| b.1.value_bytes.cmp(&a.1.value_bytes).then(a.0.cmp(b.0)));
    for ((c, k), l) in largest.into_iter().take(LARGEST) {
        let v = json!({ "type": "largest_document", "collection": c, "key": k, "bytes": l.value_bytes, "version": l.version, "lsn": l.lsn });
        out.emit(&v, || {
            format!(
                "large document {}/{}: {} bytes (v{}, lsn {})",
                esc(c),
                esc(k),
                l.value_bytes,
                l.version,
                l.lsn
            )
        })?;
    }
    let v = json!({ "type": "record_sizes", "buckets": bucket_json(&SIZE_BUCKETS, &sizes, "max_bytes") });
    out.emit(&v, || {
        format!("record sizes (header included):\n{}", bucket_text(&SIZE_BUCKETS, &sizes, "bytes"))
    })?;
    let mean = if batch_records == 0 { 0.0 } else { batch_ops_total as f64 / batch_records as f64 };
    let v = json!({ "type": "batch_sizes", "records": batch_records, "ops": batch_ops_total, "max_ops": batch_max,
        "mean_ops": mean, "buckets": bucket_json(&BATCH_BUCKETS, &batches, "max_ops") });
    out.emit(&v, || format!(
        "batches: {batch_records} records, {batch_ops_total} ops, max {batch_max}, mean {mean:.2}\n{}",
        bucket_text(&BATCH_BUCKETS, &batches, "ops")
    ))?;
    for (kind, (n, bytes)) in &other {
        let v = json!({ "type": "other_records", "kind": kind, "records": n, "bytes": bytes });
        out.emit(&v, || format!("{kind} records: {n} ({bytes} bytes)"))?;
    }
    for (limiter, keys) in &limiter_keys {
        let v = json!({ "type": "ratelimit", "limiter": limiter, "keys": keys.len() });
        out.emit(&v, || format!("rate limiter {}: {} keys in the log", esc(limiter), keys.len()))?;
    }
    for (name, (state, generation, lsn)) in &breakers {
        let state = circuit_state_name(*state);
        let v = json!({ "type": "breaker", "breaker": name, "state": state,
            "generation": generation, "lsn": lsn });
        out.emit(&v, || {
            format!("breaker {}: {state} (generation {generation}, lsn {lsn})", esc(name))
        })?;
    }
    held.emit(out)?;
    out.emit(&live_json(&state), || live_text(&state))?;
    let reclaimable = record_bytes.saturating_sub(total_live);
    let v = json!({
        "type": "stats", "records": recs.len(), "record_bytes": record_bytes,
        "live_bytes": total_live, "dead_bytes": total_dead, "reclaimable_bytes": reclaimable,
    });
    out.emit(&v, || format!(
        "{} records, {record_bytes} record bytes; live {total_live}, dead {total_dead}, reclaimable about {reclaimable}",
        recs.len()
    ))?;
    note_verdict(out, &src, &scan)?;
    Ok(0)
}

/// The last breaker-counts, lockout and violation record of each breaker or key, for `stats`.
#[derive(Default)]
struct HeldStates {
    /// Breaker → (generation, consecutive failures, failures, calls, rejected).
    counts: BTreeMap<String, (u64, u32, u64, u64, u64)>,
    /// Lockout → key → (locked at its last record, failures in its window).
    lockouts: BTreeMap<String, HashMap<String, (bool, usize)>>,
    /// Limiter → key → denials.
    violations: BTreeMap<String, HashMap<String, u64>>,
}

impl HeldStates {
    fn note(&mut self, kind: RecordKind, body: &[u8]) {
        match kind {
            RecordKind::BreakerCounts => {
                if let Ok(c) = BreakerCountsRecord::decode(body) {
                    let v = (c.generation, c.consecutive_failures, c.failures, c.calls, c.rejected);
                    self.counts.insert(c.name.to_owned(), v);
                }
            }
            RecordKind::Lockout => {
                if let Ok(l) = LockoutRecord::decode(body) {
                    let locked = l.locked_until_unix_ns > l.now_unix_ns;
                    let keys = self.lockouts.entry(l.name.to_owned()).or_default();
                    keys.insert(l.key.to_owned(), (locked, l.failures_unix_ns.len()));
                }
            }
            RecordKind::RateLimitViolations => {
                if let Ok(v) = ViolationsRecord::decode(body) {
                    let keys = self.violations.entry(v.limiter.to_owned()).or_default();
                    keys.insert(v.key.to_owned(), v.denials);
                }
            }
            _ => {}
        }
    }

    fn emit(&self, out: &mut Out) -> Result<(), Fail> {
        for (name, (generation, streak, failures, calls, rejected)) in &self.counts {
            let v = json!({ "type": "breaker_counts", "breaker": name, "generation": generation,
                "consecutive_failures": streak, "failures": failures, "calls": calls,
                "rejected": rejected });
            out.emit(&v, || format!(
                "breaker {name} counts: {streak} failures in a row, {failures} of {calls} calls failed, {rejected} rejected (generation {generation})"
            ))?;
        }
        for (name, keys) in &self.lockouts {
            let locked = keys.values().filter(|(l, _)| *l).count();
            let v =
                json!({ "type": "lockout", "lockout": name, "keys": keys.len(), "locked": locked });
            out.emit(&v, || {
                format!(
                    "lockout {name}: {} keys in the log, {locked} locked at their last record",
                    keys.len()
                )
            })?;
        }
        for (limiter, keys) in &self.violations {
            let denials: u64 = keys.values().sum();
            let v = json!({ "type": "violations", "limiter": limiter, "keys": keys.len(), "denials": denials });
            out.emit(&v, || {
                format!("rate limiter {limiter}: {denials} denials over {} keys", keys.len())
            })?;
        }
        Ok(())
    }
}
