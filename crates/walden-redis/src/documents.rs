//! Documents in Redis: [`walden::api::Documents`] for [`RedisBackend`].

use std::io::{Read, Write};
use std::ops::Bound;

use redis::Value;
use serde_json::value::RawValue;
use walden::api::{
    import_chunk_len, parse_import_object, rules::check_collection, Attempt, CasStep, Documents,
    KeyRange, Operation, OperationKind, Precondition, RawDoc, WriteGuarantee,
};
use walden::{
    Batch, Durability, Error, ImportMode, ImportReport, IoOp, Result, Validator, Versioned,
};

use crate::conn::BACKEND;
use crate::keys::{lex_max, lex_min};
use crate::lanes::{self, Commit, LaneIo};
use crate::scripts::{COMMIT_SCRIPT, SCAN_SCRIPT};
use crate::RedisBackend;

/// Documents read per scan script (one consistent page).
pub const SCAN_PAGE_DOCUMENTS: usize = 1_000;

/// Keys asked for per `SCAN` call when listing collections.
const SCAN_KEYS_PER_CALL: usize = 1_000;

pub(crate) fn bad_reply(what: &str, reply: &Value) -> Error {
    Error::Backend { backend: BACKEND, message: format!("unexpected reply to {what}: {reply:?}") }
}

pub(crate) fn text(v: &Value) -> Option<&str> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

pub(crate) fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => text(other)?.parse().ok(),
    }
}

/// A version, a time in ns, or an empty string (`None`).
pub(crate) fn number(v: &Value) -> Option<Option<u64>> {
    match text(v)? {
        "" => Some(None),
        s => s.parse().ok().map(Some),
    }
}

fn raw_doc(version: &Value, time: &Value, json: &Value) -> Option<RawDoc> {
    let version = number(version)??;
    let written_unix_ns = number(time)??;
    let value = RawValue::from_string(text(json)?.to_owned()).ok()?;
    Some(Versioned { value, version, written_unix_ns })
}

impl RedisBackend {
    fn check_durability(&self, d: Option<Durability>) -> Result<()> {
        let shared = &self.shared;
        if d == Some(Durability::Immediate)
            && shared.guarantees.write != WriteGuarantee::Fsynced
            && !shared.config.allow_weaker_durability
        {
            return Err(Error::DurabilityUnavailable {
                backend: BACKEND,
                reason: format!("batch asks for Immediate; Redis has {}", shared.guarantees.detail),
            });
        }
        Ok(())
    }

    fn check_slots(&self, ops: &[Operation]) -> Result<()> {
        if !self.shared.config.cluster_slots {
            return Ok(());
        }
        if let Some(other) = ops.iter().find(|o| o.collection != ops[0].collection) {
            return Err(Error::CrossSlot {
                first: ops[0].collection.clone(),
                second: other.collection.clone(),
            });
        }
        Ok(())
    }

    /// Applies checked operations in one script.
    fn commit_prepared(&self, ops: &[Operation]) -> Result<Vec<Option<u64>>> {
        Ok(self.apply(ops)?.map_err(|refusal| refusal.error)?.versions)
    }

    /// Applies checked operations in one script: `Ok(Err(_))` when a precondition failed.
    fn apply(&self, ops: &[Operation]) -> Result<Result<Applied, Refusal>> {
        if ops.is_empty() {
            return Ok(Ok(Applied { versions: Vec::new() }));
        }
        self.check_slots(ops)?;
        let keys = &self.shared.keys;
        let mut inv = COMMIT_SCRIPT.prepare_invoke();
        inv.arg(ops.len());
        for op in ops {
            inv.key(keys.doc(&op.collection, &op.key))
                .key(keys.index(&op.collection))
                .key(keys.floor(&op.collection));
            let (kind, json): (&str, &[u8]) = match &op.kind {
                OperationKind::Put { json } => ("P", json),
                OperationKind::Delete => ("D", b""),
                OperationKind::Check => ("C", b""),
            };
            let cond = match op.precondition {
                Precondition::Any => "*".to_owned(),
                Precondition::Absent => "A".to_owned(),
                Precondition::Version(v) => v.to_string(),
                Precondition::NoneExpected => "N".to_owned(),
            };
            inv.arg(kind).arg(cond).arg(op.key.as_str()).arg(json);
        }
        let shared = &self.shared;
        let reply: Value = shared.pool.run(|con| {
            let r = inv.invoke(con)?;
            shared.wait_replicas(con)?;
            Ok(r)
        })?;
        parse_commit(ops, &reply)
    }

    fn scan_page(
        &self,
        collection: &str,
        min: Bound<&str>,
        range: &KeyRange,
        count: usize,
    ) -> Result<Vec<(String, RawDoc)>> {
        let keys = &self.shared.keys;
        let reply: Value = self.shared.pool.run(|con| {
            SCAN_SCRIPT
                .key(keys.index(collection))
                .arg(lex_min(min))
                .arg(lex_max(&range.end, &range.prefix))
                .arg(count)
                .arg(keys.doc_prefix(collection))
                .invoke(con)
        })?;
        let Value::Array(items) = &reply else { return Err(bad_reply("scan", &reply)) };
        let mut out = Vec::with_capacity(items.len() / 4);
        for chunk in items.chunks(4) {
            let [k, v, t, j] = chunk else { return Err(bad_reply("scan", &reply)) };
            let key = text(k).ok_or_else(|| bad_reply("scan", &reply))?.to_owned();
            // A key whose document vanished between the index and the hash cannot happen
            // inside one script; a missing hash is data not written by walden.
            let doc = raw_doc(v, t, j).ok_or_else(|| bad_reply("scan", &reply))?;
            out.push((key, doc));
        }
        Ok(out)
    }
}

/// A batch the script applied: per-operation results.
struct Applied {
    versions: Vec<Option<u64>>,
}

/// A batch refused by a precondition: the error, and the refused operation's stored document
/// (`None`: absent).
struct Refusal {
    error: Error,
    stored: Option<RawDoc>,
}

fn parse_commit(ops: &[Operation], reply: &Value) -> Result<Result<Applied, Refusal>> {
    let bad = || bad_reply("commit", reply);
    let Value::Array(items) = reply else { return Err(bad()) };
    let code = items.first().and_then(int).ok_or_else(bad)?;
    if code == 1 {
        let results = items.get(2..).ok_or_else(bad)?;
        if results.len() != ops.len() {
            return Err(bad());
        }
        let versions = results.iter().map(|r| number(r).ok_or_else(bad)).collect::<Result<_>>()?;
        return Ok(Ok(Applied { versions }));
    }
    let [_, i, current, v, t, j] = items.as_slice() else { return Err(bad()) };
    let op = int(i)
        .and_then(|i| usize::try_from(i - 1).ok())
        .and_then(|i| ops.get(i))
        .ok_or_else(bad)?;
    let current = number(current).ok_or_else(bad)?;
    let stored = match text(v) {
        Some("") => None,
        _ => Some(raw_doc(v, t, j).ok_or_else(bad)?),
    };
    let (collection, key) = (op.collection.clone(), op.key.clone());
    let error = match (code, current) {
        (2, current) => {
            Error::Conflict { collection, key, expected: op.precondition.expected(), current }
        }
        (3, Some(version)) => Error::AlreadyExists { collection, key, version },
        _ => return Err(bad()),
    };
    Ok(Err(Refusal { error, stored }))
}

impl LaneIo for RedisBackend {
    fn read(&self, collection: &str, key: &str) -> Result<Option<RawDoc>> {
        self.get_raw(collection, key)
    }

    fn prepare(&self, batch: Batch) -> Result<Vec<Operation>> {
        let (ops, durability) = self.shared.config.rules.prepare(batch, &self.shared.validators)?;
        self.check_durability(durability)?;
        Ok(ops)
    }

    fn commit(&self, ops: &[Operation]) -> Result<Commit> {
        Ok(match self.apply(ops)? {
            Ok(applied) => Commit::Applied(applied.versions),
            Err(refusal) => Commit::Refused(refusal.stored),
        })
    }
}

fn write_io(e: std::io::Error) -> Error {
    Error::Io { op: IoOp::Write, path: "<export writer>".into(), source: e }
}

impl Documents for RedisBackend {
    fn get_raw(&self, collection: &str, key: &str) -> Result<Option<RawDoc>> {
        self.shared.config.rules.check_target(collection, key)?;
        let doc_key = self.shared.keys.doc(collection, key);
        let reply: Value = self
            .shared
            .pool
            .run(|con| redis::cmd("HMGET").arg(doc_key).arg("v").arg("t").arg("j").query(con))?;
        match &reply {
            Value::Array(f) if f.len() == 3 && f[0] == Value::Nil => Ok(None),
            Value::Array(f) if f.len() == 3 => {
                raw_doc(&f[0], &f[1], &f[2]).map(Some).ok_or_else(|| bad_reply("get", &reply))
            }
            _ => Err(bad_reply("get", &reply)),
        }
    }

    fn commit(&self, batch: Batch) -> Result<Vec<Option<u64>>> {
        let (ops, durability) = self.shared.config.rules.prepare(batch, &self.shared.validators)?;
        self.check_durability(durability)?;
        self.commit_prepared(&ops)
    }

    fn commit_or_read(&self, batch: Batch, collection: &str, key: &str) -> Result<CasStep> {
        let (ops, durability) = self.shared.config.rules.prepare(batch, &self.shared.validators)?;
        self.check_durability(durability)?;
        match self.apply(&ops)? {
            Ok(applied) => Ok(CasStep::Committed(applied.versions)),
            // The script read the refused document in the same instant: no second round trip.
            Err(r) if ops.iter().all(|o| o.collection == collection && o.key == key) => {
                Ok(CasStep::Changed(r.stored))
            }
            Err(_) => Ok(CasStep::Changed(self.get_raw(collection, key)?)),
        }
    }

    fn update_raw(
        &self,
        collection: &str,
        key: &str,
        attempt: &mut Attempt<'_>,
    ) -> Result<Vec<Option<u64>>> {
        self.shared.config.rules.check_target(collection, key)?;
        if !lanes::nested() {
            // See `lanes`: the threads of this process that update this document share
            // one commit per round trip.
            return self.shared.lanes.update(self, collection, key, attempt);
        }
        let mut current = self.get_raw(collection, key)?;
        loop {
            let batch = attempt(current.as_ref().map(|d| (d.version, &*d.value)))?;
            match self.commit_or_read(batch, collection, key)? {
                CasStep::Committed(versions) => return Ok(versions),
                CasStep::Changed(now) => current = now,
            }
        }
    }

    fn scan_raw(
        &self,
        collection: &str,
        range: &KeyRange,
        limit: Option<usize>,
    ) -> Result<Vec<(String, RawDoc)>> {
        check_collection(collection)?;
        let limit = limit.unwrap_or(usize::MAX);
        let mut out: Vec<(String, RawDoc)> = Vec::new();
        let mut page_range = range.clone();
        while out.len() < limit {
            let want = (limit - out.len()).min(SCAN_PAGE_DOCUMENTS);
            let page = self.scan_page(collection, page_range.effective_start(), range, want)?;
            let full = page.len() == want;
            let before = out.len();
            out.extend(page.into_iter().take_while(|(k, _)| range.contains(k)));
            if !full || out.len() - before < want {
                break;
            }
            let last = &out.last().expect("a full page is not empty").0;
            page_range = page_range.after(last);
        }
        Ok(out)
    }

    fn count(&self, collection: &str) -> Result<u64> {
        check_collection(collection)?;
        let index = self.shared.keys.index(collection);
        self.shared.pool.run(|con| redis::cmd("ZCARD").arg(index).query(con))
    }

    fn collections(&self) -> Result<Vec<String>> {
        let keys = &self.shared.keys;
        let pattern = keys.index_pattern();
        // Every node: in a cluster each holds the collections of its slots.
        let per_node = self.shared.pool.each_node(|con| {
            let mut found = Vec::new();
            let mut cursor: u64 = 0;
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(SCAN_KEYS_PER_CALL)
                    .query(con)?;
                found.extend(batch);
                if next == 0 {
                    return Ok(found);
                }
                cursor = next;
            }
        })?;
        let mut names: Vec<String> = per_node
            .iter()
            .flatten()
            .filter_map(|k| keys.collection_of_index(k))
            .map(String::from)
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn set_validator(&self, collection: &str, validator: Validator) -> Result<()> {
        self.shared.validators.set(collection, validator)
    }

    fn clear_validator(&self, collection: &str) -> Result<()> {
        check_collection(collection)?;
        self.shared.validators.clear(collection);
        Ok(())
    }

    fn export_json(&self, collection: &str, out: &mut dyn Write) -> Result<u64> {
        check_collection(collection)?;
        let mut range = KeyRange::all();
        let mut n = 0u64;
        out.write_all(b"{").map_err(write_io)?;
        loop {
            let page = self.scan_raw(collection, &range, Some(SCAN_PAGE_DOCUMENTS))?;
            for (key, doc) in &page {
                if n > 0 {
                    out.write_all(b",").map_err(write_io)?;
                }
                serde_json::to_writer(&mut *out, key).map_err(|e| write_io(e.into()))?;
                out.write_all(b":").map_err(write_io)?;
                out.write_all(doc.value.get().as_bytes()).map_err(write_io)?;
                n += 1;
            }
            match page.last() {
                Some((last, _)) if page.len() == SCAN_PAGE_DOCUMENTS => range = range.after(last),
                _ => break,
            }
        }
        out.write_all(b"}\n").map_err(write_io)?;
        Ok(n)
    }

    fn import_json(
        &self,
        collection: &str,
        input: &mut dyn Read,
        mode: ImportMode,
    ) -> Result<ImportReport> {
        let pairs = parse_import_object(input)?;
        let per_batch = import_chunk_len(mode, pairs.len())?;
        // Check every document before writing any.
        let mut chunks = Vec::new();
        for chunk in pairs.chunks(per_batch) {
            let mut b = Batch::new();
            for (k, v) in chunk {
                b.put(collection, k, v);
            }
            chunks.push(self.shared.config.rules.prepare(b, &self.shared.validators)?.0);
        }
        let mut report = ImportReport { documents: 0, batches: 0 };
        for ops in chunks {
            self.commit_prepared(&ops)?;
            report.documents += ops.len() as u64;
            report.batches += 1;
        }
        Ok(report)
    }
}
