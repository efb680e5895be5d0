//! Group commit for `update` within one process: the threads updating one document queue in a
//! lane, each runs its own closure on the document as the writes queued before it leave it,
//! and the queued writes go to Redis together in one commit script (one round trip, one fsync).
//!
//! Why: on a hot key, N threads that each read, modify and send a conditional write fail each
//! other's attempts, and Redis fsyncs at most one successful write of the key per event-loop
//! turn, so throughput stays at one update per fsync however many threads wait. The embedded
//! store decides under its own lock and group-commits; a lane does the same on the client.
//!
//! Correctness never rests on the lane. Each queued write carries the version its closure saw
//! as its precondition, and the commit script checks a group's preconditions in order, each
//! seeing the writes before it, before it writes anything: a group is all-or-nothing. If
//! another process changed the document, the script refuses the group and returns the document
//! as it is now; every member whose write was queued (in the refused group or built on it)
//! runs its closure again on that document. Each member's write gets its own version, exactly
//! as separate commits would (current + 1, in queue order).
//!
//! Lanes are striped by a hash of collection and key; a lane serves one key at a time (another
//! key waits until it is idle). A thread runs its closure while holding its lane; an update
//! inside that closure takes no lane (it commits on its own), so no thread waits for a lane
//! while holding one.

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use parking_lot::{Condvar, Mutex, MutexGuard};
use serde_json::value::RawValue;
use walden::api::{Attempt, Operation, OperationKind, RawDoc};
use walden::{Batch, Error, Result};

use crate::conn::BACKEND;

/// Lanes per backend: threads updating different keys rarely share one.
const LANES: usize = 64;

/// Most writes in one group (one commit script).
const MAX_GROUP_OPERATIONS: usize = 256;

/// A lane stops taking new members once its queued JSON reaches this many bytes (the last
/// member may take it past).
const MAX_GROUP_JSON_BYTES: usize = 1 << 20;

/// Largest document a lane keeps after it went idle, in bytes of JSON: bounds the memory of
/// idle lanes to `LANES` × this.
const IDLE_DOCUMENT_MAX_JSON_BYTES: usize = 64 * 1024;

thread_local! {
    /// Whether this thread is running an update's closure inside a lane.
    static IN_LANE: Cell<bool> = const { Cell::new(false) };
}

/// A group's outcome in Redis.
pub(crate) enum Commit {
    /// Applied: the per-operation results.
    Applied(Vec<Option<u64>>),
    /// A precondition failed: the document as it is now.
    Refused(Option<RawDoc>),
}

/// What a lane needs of the backend.
pub(crate) trait LaneIo {
    fn read(&self, collection: &str, key: &str) -> Result<Option<RawDoc>>;
    /// Checks a batch as `commit` would (names, limits, validators, durability).
    fn prepare(&self, batch: Batch) -> Result<Vec<Operation>>;
    fn commit(&self, ops: &[Operation]) -> Result<Commit>;
}

/// What a lane knows of its key: where the queued writes leave it.
enum Tail {
    /// Must be read (nothing known, or a queued insert whose version Redis assigns).
    Unknown,
    Known(Option<(u64, Box<RawValue>)>),
}

enum Outcome {
    Done(Vec<Option<u64>>),
    Retry,
    Failed(Error),
}

struct Lane {
    /// The key this lane serves.
    owner: Option<(String, String)>,
    tail: Tail,
    /// Writes waiting for the next group, and per member its ticket and number of writes.
    pending: Vec<Operation>,
    pending_json_bytes: usize,
    members: Vec<(u64, usize)>,
    in_flight: bool,
    outcomes: HashMap<u64, Outcome>,
    next_ticket: u64,
}

impl Lane {
    fn idle(&self) -> bool {
        !self.in_flight && self.pending.is_empty()
    }

    fn serves(&self, collection: &str, key: &str) -> bool {
        self.owner.as_ref().is_some_and(|(c, k)| c == collection && k == key)
    }

    fn full(&self) -> bool {
        self.pending.len() >= MAX_GROUP_OPERATIONS
            || self.pending_json_bytes >= MAX_GROUP_JSON_BYTES
    }
}

/// Every lane of a backend.
pub(crate) struct Lanes {
    lanes: Box<[(Mutex<Lane>, Condvar)]>,
    hasher: std::collections::hash_map::RandomState,
}

/// Marks this thread as inside a lane while it lives.
struct InLane;

impl InLane {
    fn enter() -> InLane {
        IN_LANE.with(|c| c.set(true));
        InLane
    }
}

impl Drop for InLane {
    fn drop(&mut self) {
        IN_LANE.with(|c| c.set(false));
    }
}

/// Whether this thread runs an update's closure in a lane (an update inside it takes none).
pub(crate) fn nested() -> bool {
    IN_LANE.with(Cell::get)
}

/// The same error for another member of a failed group.
fn replicate(e: &Error) -> Error {
    match e {
        Error::Unavailable { backend, message } => {
            Error::Unavailable { backend, message: message.clone() }
        }
        Error::Timeout { backend, timeout } => Error::Timeout { backend, timeout: *timeout },
        other => Error::Backend { backend: BACKEND, message: other.to_string() },
    }
}

/// The document after `op`, from the one before (`Unknown`: Redis assigns the version).
fn after(tail: Tail, op: &Operation, version: Option<u64>) -> Tail {
    match (&op.kind, tail) {
        (OperationKind::Check, tail) => tail,
        (OperationKind::Delete, _) => Tail::Known(None),
        (OperationKind::Put { json }, tail) => {
            let version = match (version, tail) {
                (Some(v), _) => v,
                (None, Tail::Known(Some((v, _)))) => v + 1,
                _ => return Tail::Unknown,
            };
            let json =
                String::from_utf8(json.clone()).ok().and_then(|j| RawValue::from_string(j).ok());
            json.map_or(Tail::Unknown, |j| Tail::Known(Some((version, j))))
        }
    }
}

impl Lanes {
    pub(crate) fn new() -> Lanes {
        let lanes = (0..LANES).map(|_| {
            let lane = Lane {
                owner: None,
                tail: Tail::Unknown,
                pending: Vec::new(),
                pending_json_bytes: 0,
                members: Vec::new(),
                in_flight: false,
                outcomes: HashMap::new(),
                next_ticket: 0,
            };
            (Mutex::new(lane), Condvar::new())
        });
        Lanes { lanes: lanes.collect(), hasher: Default::default() }
    }

    /// Runs `attempt` until its batch commits (see the module docs); returns its results.
    pub(crate) fn update(
        &self,
        io: &dyn LaneIo,
        collection: &str,
        key: &str,
        attempt: &mut Attempt<'_>,
    ) -> Result<Vec<Option<u64>>> {
        let i = (self.hasher.hash_one((collection, key)) % LANES as u64) as usize;
        let (lane, cv) = &self.lanes[i];
        let mut g = lane.lock();
        loop {
            // Wait until the lane serves this key, has room, and knows the document (or is
            // idle, so that it can read it).
            loop {
                if g.idle() && !g.serves(collection, key) {
                    g.owner = Some((collection.to_owned(), key.to_owned()));
                    g.tail = Tail::Unknown;
                }
                let known = matches!(g.tail, Tail::Known(_));
                if g.serves(collection, key) && !g.full() && (known || g.idle()) {
                    break;
                }
                cv.wait(&mut g);
            }
            if matches!(g.tail, Tail::Unknown) {
                let doc = io.read(collection, key)?;
                g.tail = Tail::Known(doc.map(|d| (d.version, d.value)));
            }
            let ops = {
                let Tail::Known(doc) = &g.tail else { unreachable!("the tail was just read") };
                let current = doc.as_ref().map(|(v, j)| (*v, &**j));
                let _inside = InLane::enter();
                io.prepare(attempt(current)?)?
            };
            let groupable =
                !ops.is_empty() && ops.iter().all(|o| o.collection == collection && o.key == key);
            if !groupable {
                // Not a write of this document alone: it commits by itself.
                match MutexGuard::unlocked(&mut g, || io.commit(&ops))? {
                    Commit::Applied(versions) => {
                        if g.idle() {
                            g.tail = Tail::Unknown;
                        }
                        return Ok(versions);
                    }
                    Commit::Refused(_) if g.idle() => g.tail = Tail::Unknown,
                    Commit::Refused(_) => {}
                }
                continue;
            }
            let ticket = self.join(&mut g, ops);
            match self.await_outcome(io, &mut g, cv, ticket) {
                Outcome::Done(versions) => return Ok(versions),
                Outcome::Failed(e) => return Err(e),
                Outcome::Retry => {}
            }
        }
    }

    /// Queues a member's writes behind the others; returns its ticket.
    fn join(&self, g: &mut Lane, ops: Vec<Operation>) -> u64 {
        let ticket = g.next_ticket;
        g.next_ticket += 1;
        let mut tail = std::mem::replace(&mut g.tail, Tail::Unknown);
        for op in &ops {
            tail = after(tail, op, None);
            if let OperationKind::Put { json } = &op.kind {
                g.pending_json_bytes += json.len();
            }
        }
        g.tail = tail;
        g.members.push((ticket, ops.len()));
        g.pending.extend(ops);
        ticket
    }

    /// Waits for the member's outcome, sending the queued group whenever none is in flight.
    fn await_outcome(
        &self,
        io: &dyn LaneIo,
        g: &mut MutexGuard<'_, Lane>,
        cv: &Condvar,
        ticket: u64,
    ) -> Outcome {
        loop {
            if let Some(outcome) = g.outcomes.remove(&ticket) {
                return outcome;
            }
            if g.in_flight || g.pending.is_empty() {
                cv.wait(g);
                continue;
            }
            let ops = std::mem::take(&mut g.pending);
            let members = std::mem::take(&mut g.members);
            g.pending_json_bytes = 0;
            g.in_flight = true;
            // A panic inside the commit must not leave the lane in flight for ever (every
            // later update of its keys would wait): the members get an error, then the
            // panic goes on.
            let result =
                MutexGuard::unlocked(g, || catch_unwind(AssertUnwindSafe(|| io.commit(&ops))));
            g.in_flight = false;
            let (result, panic) = match result {
                Ok(r) => (r, None),
                Err(p) => {
                    let message = "the commit script call panicked".to_owned();
                    (Err(Error::Backend { backend: BACKEND, message }), Some(p))
                }
            };
            self.settle(g, &ops, &members, result);
            cv.notify_all();
            if let Some(p) = panic {
                resume_unwind(p);
            }
        }
    }

    /// Hands a finished group's outcome to its members and fixes what the lane knows.
    fn settle(
        &self,
        g: &mut Lane,
        ops: &[Operation],
        members: &[(u64, usize)],
        result: Result<Commit>,
    ) {
        let retry_queued = |g: &mut Lane| {
            g.pending.clear();
            g.pending_json_bytes = 0;
            for (t, _) in std::mem::take(&mut g.members) {
                g.outcomes.insert(t, Outcome::Retry);
            }
        };
        match result {
            Ok(Commit::Applied(versions)) => {
                let mut rest = versions.as_slice();
                for &(t, n) in members {
                    let (mine, more) = rest.split_at(n.min(rest.len()));
                    g.outcomes.insert(t, Outcome::Done(mine.to_vec()));
                    rest = more;
                }
                if g.pending.is_empty() {
                    // Nothing was built on the prediction: take what Redis assigned.
                    let mut tail = std::mem::replace(&mut g.tail, Tail::Unknown);
                    for (op, v) in ops.iter().zip(&versions) {
                        tail = after(tail, op, *v);
                    }
                    let small = match &tail {
                        Tail::Known(Some((_, j))) => j.get().len() <= IDLE_DOCUMENT_MAX_JSON_BYTES,
                        _ => true,
                    };
                    g.tail = if small { tail } else { Tail::Unknown };
                }
            }
            Ok(Commit::Refused(now)) => {
                for &(t, _) in members {
                    g.outcomes.insert(t, Outcome::Retry);
                }
                retry_queued(g);
                g.tail = Tail::Known(now.map(|d| (d.version, d.value)));
            }
            Err(e) => {
                for &(t, _) in members {
                    g.outcomes.insert(t, Outcome::Failed(replicate(&e)));
                }
                retry_queued(g);
                g.tail = Tail::Unknown;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(json: &str) -> Operation {
        Operation {
            collection: "c".into(),
            key: "k".into(),
            kind: OperationKind::Put { json: json.as_bytes().to_vec() },
            precondition: walden::api::Precondition::Any,
        }
    }

    #[test]
    fn a_put_on_a_known_document_predicts_the_next_version_and_an_insert_does_not() {
        let known = Tail::Known(Some((4, RawValue::from_string("1".into()).unwrap())));
        let Tail::Known(Some((v, j))) = after(known, &put("2"), None) else { panic!() };
        assert_eq!((v, j.get()), (5, "2"));
        assert!(matches!(after(Tail::Known(None), &put("2"), None), Tail::Unknown));
        let Tail::Known(Some((v, _))) = after(Tail::Known(None), &put("2"), Some(9)) else {
            panic!()
        };
        assert_eq!(v, 9, "once Redis assigned it, the version is known");
    }

    /// A backend whose first commit panics.
    struct PanicsOnce(std::sync::atomic::AtomicBool);

    impl LaneIo for PanicsOnce {
        fn read(&self, _: &str, _: &str) -> Result<Option<RawDoc>> {
            Ok(None)
        }
        fn prepare(&self, _: Batch) -> Result<Vec<Operation>> {
            Ok(vec![put("1")])
        }
        fn commit(&self, _: &[Operation]) -> Result<Commit> {
            if !self.0.swap(true, std::sync::atomic::Ordering::SeqCst) {
                panic!("first commit");
            }
            Ok(Commit::Applied(vec![Some(1)]))
        }
    }

    #[test]
    fn a_commit_that_panics_leaves_the_lane_usable() {
        let lanes = Lanes::new();
        let io = PanicsOnce(Default::default());
        let mut attempt = |_: Option<(u64, &RawValue)>| Ok(Batch::new());
        let first = std::panic::catch_unwind(AssertUnwindSafe(|| {
            lanes.update(&io, "c", "k", &mut attempt)
        }));
        assert!(first.is_err(), "the panic goes on to the caller");
        // Not left in flight: the next update of the same key commits instead of waiting.
        assert_eq!(lanes.update(&io, "c", "k", &mut attempt).unwrap(), vec![Some(1)]);
    }

    #[test]
    fn another_members_copy_of_an_error_keeps_its_kind() {
        let e = Error::Unavailable { backend: BACKEND, message: "down".into() };
        assert!(matches!(replicate(&e), Error::Unavailable { .. }));
        let t = Error::Timeout { backend: BACKEND, timeout: std::time::Duration::from_secs(1) };
        assert!(matches!(replicate(&t), Error::Timeout { .. }));
    }
}
