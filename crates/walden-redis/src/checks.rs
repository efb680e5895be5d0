//! Rate-limit checks that arrive together share one script call: a thread that finds no call
//! in flight sends every check queued so far in one `EVALSHA` (one `TIME`, then each key in
//! queue order); checks that arrive meanwhile go in the next call.
//!
//! Why: inside Redis a script call has a fixed cost (the call itself and `TIME`) larger than a
//! whole `INCR`, and on a loaded machine Redis's CPU bounds the rate. Sharing the call among
//! the checks of one moment spreads that cost; each check is still decided atomically, in one
//! round trip, by Redis's clock, exactly as if it had been sent alone at that instant (checks
//! of one key in one call see each other in queue order, as they would in consecutive calls).
//!
//! With Redis Cluster (or `cluster_slots`) limiter keys lie in different slots, so each check
//! is a call of its own.

use std::collections::HashMap;

use parking_lot::{Condvar, Mutex, MutexGuard};
use redis::Value;
use walden::Result;

use crate::documents::{bad_reply, int, number};
use crate::lanes::replicate;
use crate::scripts::GCRA_SCRIPT;
use crate::Shared;

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

#[derive(Default)]
struct Queue {
    pending: Vec<(u64, Check)>,
    in_flight: bool,
    outcomes: HashMap<u64, Result<Answer>>,
    next_ticket: u64,
}

/// The queue of one backend's checks.
#[derive(Default)]
pub(crate) struct Checks {
    queue: Mutex<Queue>,
    done: Condvar,
}

impl Checks {
    /// Decides `check` in Redis, in a call shared with the checks queued beside it.
    pub(crate) fn run(&self, shared: &Shared, check: Check) -> Result<Answer> {
        if shared.config.cluster_slots || !shared.config.cluster_nodes.is_empty() {
            return call(shared, std::slice::from_ref(&check)).map(|mut a| a.remove(0));
        }
        let mut q = self.queue.lock();
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.pending.push((ticket, check));
        loop {
            if let Some(outcome) = q.outcomes.remove(&ticket) {
                return outcome;
            }
            if q.in_flight || q.pending.is_empty() {
                self.done.wait(&mut q);
                continue;
            }
            let take = q.pending.len().min(MAX_CHECKS_PER_CALL);
            let batch: Vec<(u64, Check)> = q.pending.drain(..take).collect();
            q.in_flight = true;
            let result = MutexGuard::unlocked(&mut q, || {
                let checks: Vec<&Check> = batch.iter().map(|(_, c)| c).collect();
                call_refs(shared, &checks)
            });
            q.in_flight = false;
            match result {
                Ok(answers) => {
                    for ((t, _), a) in batch.iter().zip(answers) {
                        q.outcomes.insert(*t, Ok(a));
                    }
                }
                Err(e) => {
                    for (t, _) in &batch {
                        q.outcomes.insert(*t, Err(replicate(&e)));
                    }
                }
            }
            self.done.notify_all();
        }
    }
}

fn call(shared: &Shared, checks: &[Check]) -> Result<Vec<Answer>> {
    call_refs(shared, &checks.iter().collect::<Vec<_>>())
}

/// One script call for `checks`; waits for the replicas if any check consumed cells.
fn call_refs(shared: &Shared, checks: &[&Check]) -> Result<Vec<Answer>> {
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
