//! Rate-limit checks that arrive together share one script call: a thread that finds fewer
//! than `MAX_CALLS_IN_FLIGHT` calls in flight sends every check queued so far in one `EVALSHA`
//! (one `TIME`, then each key in queue order); checks that arrive meanwhile go in a later
//! call. Several calls may be in flight, so a thread never waits for other threads to wake
//! before its check is sent.
//!
//! Why: inside Redis a script call has a fixed cost (the call itself and `TIME`) larger than a
//! whole `INCR`, and on a loaded machine Redis's CPU bounds the rate. Sharing the call among
//! the checks of one moment spreads that cost; each check is still decided atomically, in one
//! round trip, by Redis's clock, exactly as if it had been sent alone at that instant (checks
//! of one key in one call see each other in queue order, as they would in consecutive calls).
//!
//! With Redis Cluster (or `cluster_slots`) limiter keys lie in different slots, so each check
//! is a call of its own.

use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use redis::Value;
use walden::Result;

use crate::documents::{bad_reply, int, number};
use crate::lanes::replicate;
use crate::scripts::GCRA_SCRIPT;
use crate::Shared;

/// Most script calls of one backend in flight at once.
const MAX_CALLS_IN_FLIGHT: usize = 4;

/// Most checks in one script call.
const MAX_CHECKS_PER_CALL: usize = 128;

const NS_PER_S: u64 = 1_000_000_000;

/// One check: the key and the script's five arguments (cost s/ns, window s/ns, consume).
pub(crate) struct Check {
    pub(crate) key: String,
    pub(crate) args: [u64; 5],
}

/// What Redis answered for one check: allowed, its `TIME` in ns, the stored TAT (0: none).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Answer {
    pub(crate) allowed: bool,
    pub(crate) now_unix_ns: u64,
    pub(crate) stored_tat_unix_ns: u64,
}

/// Where one queued check waits: for its answer, or to be told to send the queue.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    wake: Condvar,
}

#[derive(Default)]
struct SlotState {
    /// A call slot was handed to this thread: it must send what is queued (or free the
    /// slot). Kept apart from the answer, which another call may bring first.
    send: bool,
    answer: Option<Result<Answer>>,
}

impl Slot {
    fn update(&self, f: impl FnOnce(&mut SlotState)) {
        f(&mut self.state.lock());
        self.wake.notify_one();
    }
}

#[derive(Default)]
struct Queue {
    pending: Vec<(Check, Arc<Slot>)>,
    in_flight: usize,
}

/// The queue of one backend's checks. Each waiting thread is woken once for its answer (and
/// at most once more to send), never by every other thread's answer.
#[derive(Default)]
pub(crate) struct Checks {
    queue: Mutex<Queue>,
}

impl Checks {
    /// Decides `check` in Redis, in a call shared with the checks queued beside it.
    pub(crate) fn run(&self, shared: &Shared, check: Check) -> Result<Answer> {
        if shared.config.cluster_slots || !shared.config.cluster_nodes.is_empty() {
            return call(shared, &[&check]).map(|mut a| a.remove(0));
        }
        let slot = Arc::new(Slot::default());
        let mut batch = {
            let mut q = self.queue.lock();
            q.pending.push((check, slot.clone()));
            if q.in_flight < MAX_CALLS_IN_FLIGHT {
                q.in_flight += 1;
                Some(take_batch(&mut q))
            } else {
                None
            }
        };
        loop {
            if let Some(b) = batch.take() {
                self.send(shared, b);
            }
            let mut state = slot.state.lock();
            while !state.send && state.answer.is_none() {
                slot.wake.wait(&mut state);
            }
            if std::mem::take(&mut state.send) {
                drop(state);
                // Handed a free call slot (the queue may have been emptied meanwhile).
                batch = Some(take_batch(&mut self.queue.lock()));
                continue;
            }
            return state.answer.take().expect("woken with an answer");
        }
    }

    /// Sends one batch, answers its checks, and hands the call slot on to a queued check (or
    /// frees it).
    fn send(&self, shared: &Shared, batch: Vec<(Check, Arc<Slot>)>) {
        let checks: Vec<&Check> = batch.iter().map(|(c, _)| c).collect();
        let answers = if checks.is_empty() { Ok(Vec::new()) } else { call(shared, &checks) };
        match answers {
            Ok(answers) => {
                for ((_, slot), a) in batch.iter().zip(answers) {
                    slot.update(|s| s.answer = Some(Ok(a)));
                }
            }
            Err(e) => {
                for (_, slot) in &batch {
                    slot.update(|s| s.answer = Some(Err(replicate(&e))));
                }
            }
        }
        let mut q = self.queue.lock();
        match q.pending.first() {
            Some((_, next)) => next.update(|s| s.send = true),
            None => q.in_flight -= 1,
        }
    }
}

fn take_batch(q: &mut Queue) -> Vec<(Check, Arc<Slot>)> {
    let take = q.pending.len().min(MAX_CHECKS_PER_CALL);
    q.pending.drain(..take).collect()
}

/// One script call for `checks`; waits for the replicas if any check consumed cells.
fn call(shared: &Shared, checks: &[&Check]) -> Result<Vec<Answer>> {
    let mut inv = GCRA_SCRIPT.prepare_invoke();
    for c in checks {
        inv.key(c.key.as_str());
        for a in c.args {
            inv.arg(a);
        }
    }
    let reply: Value = shared.pool.run(|con| {
        let r: Value = inv.invoke(con)?;
        let consumed = match &r {
            Value::Array(a) => a
                .iter()
                .skip(2)
                .step_by(2)
                .zip(checks)
                .any(|(v, c)| v == &Value::Int(1) && c.args[4] == 1),
            _ => false,
        };
        if consumed {
            shared.wait_replicas(con)?;
        }
        Ok(r)
    })?;
    parse(&reply, checks.len()).ok_or_else(|| bad_reply("rate-limit check", &reply))
}

/// The script's reply: `TIME` seconds and microseconds, then allowed and stored TAT per check.
fn parse(reply: &Value, n: usize) -> Option<Vec<Answer>> {
    let Value::Array(a) = reply else { return None };
    if a.len() != 2 + 2 * n {
        return None;
    }
    let now =
        number(&a[0])??.checked_mul(NS_PER_S)?.checked_add(number(&a[1])??.checked_mul(1_000)?)?;
    a[2..]
        .chunks(2)
        .map(|pair| {
            let stored = match &pair[1] {
                Value::Nil => 0,
                other => number(other)??,
            };
            Some(Answer {
                allowed: int(&pair[0])? == 1,
                now_unix_ns: now,
                stored_tat_unix_ns: stored,
            })
        })
        .collect()
}
