//! Rate limiters in Redis: GCRA in one script, one round trip per check.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::Value;
use walden::api::rules::{check_cost, check_limiter_name, check_quota};
use walden::api::{gcra_decide, Limiter};
use walden::{Decision, Error, Quota, Result};

use crate::documents::{bad_reply, int, number};
use crate::scripts::GCRA_SCRIPT;
use crate::Shared;

const NS_PER_S: u64 = 1_000_000_000;

/// What a limiter answers when Redis cannot be reached or does not answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimiterFailure {
    /// Return the error ([`Error::Unavailable`] / [`Error::Timeout`]): the caller decides.
    Error,
    /// Fail open: allow the request (`remaining` 0), so an outage of Redis does not become an
    /// outage of the service. The limit is not enforced meanwhile.
    Allow,
    /// Fail closed: deny the request with this `retry_after`, so the limit is never exceeded.
    Deny {
        /// The `retry_after` of the denial.
        retry_after: Duration,
    },
}

/// A keyed GCRA rate limiter in Redis, shared by every process that uses the same name.
#[derive(Clone)]
pub struct RedisLimiter {
    shared: Arc<Shared>,
    name: Arc<str>,
    quota: Quota,
    on_failure: LimiterFailure,
}

impl fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("name", &self.name)
            .field("quota", &self.quota)
            .field("on_failure", &self.on_failure)
            .finish()
    }
}

fn split_ns(ns: u128) -> (u64, u64) {
    let ns = u64::try_from(ns).unwrap_or(u64::MAX);
    (ns / NS_PER_S, ns % NS_PER_S)
}

/// The GCRA script's reply: allowed, Redis's `TIME` in ns, the stored TAT in ns (0: none).
fn parse_gcra(reply: &Value) -> Option<(bool, u64, u64)> {
    let Value::Array(a) = reply else { return None };
    let [allowed, secs, micros, stored] = a.as_slice() else { return None };
    let now =
        number(secs)??.checked_mul(NS_PER_S)?.checked_add(number(micros)??.checked_mul(1_000)?)?;
    let tat = match stored {
        Value::Nil => 0,
        other => number(other)??,
    };
    Some((int(allowed)? == 1, now, tat))
}

impl RedisLimiter {
    pub(crate) fn new(
        shared: Arc<Shared>,
        name: &str,
        quota: Quota,
        on_failure: LimiterFailure,
    ) -> Result<RedisLimiter> {
        check_limiter_name(name)?;
        check_quota(&quota)?;
        Ok(RedisLimiter { shared, name: Arc::from(name), quota, on_failure })
    }

    fn decide(&self, key: &str, n: u32, quota: &Quota) -> Result<Decision> {
        let t = quota.interval().as_nanos();
        let (cost_s, cost_ns) = split_ns(t * u128::from(n.max(1)));
        let (win_s, win_ns) = split_ns(t * u128::from(quota.burst()));
        let redis_key = self.shared.keys.limiter(&self.name, key);
        let shared = &self.shared;
        let reply: Value = shared.pool.run(|con| {
            let r: Value = GCRA_SCRIPT
                .key(redis_key)
                .arg(cost_s)
                .arg(cost_ns)
                .arg(win_s)
                .arg(win_ns)
                .arg(u8::from(n > 0))
                .invoke(con)?;
            if n > 0 && matches!(&r, Value::Array(a) if a.first() == Some(&Value::Int(1))) {
                shared.wait_replicas(con)?;
            }
            Ok(r)
        })?;
        let (allowed, now, tat) =
            parse_gcra(&reply).ok_or_else(|| bad_reply("rate-limit check", &reply))?;
        // The script decided atomically; the same arithmetic as the embedded limiter turns
        // its inputs into the decision's fields.
        let (decision, _) = gcra_decide(quota, tat, now, n);
        if decision.allowed != allowed {
            return Err(bad_reply("rate-limit check (decision differs)", &reply));
        }
        Ok(decision)
    }

    /// Decides with the failure policy applied (`n = 0`: a peek).
    fn decide_or_policy(&self, key: &str, n: u32, quota: &Quota) -> Result<Decision> {
        match self.decide(key, n, quota) {
            Err(e @ (Error::Unavailable { .. } | Error::Timeout { .. })) => {
                let limit = quota.burst();
                let decision = |allowed, retry_after| Decision {
                    allowed,
                    limit,
                    remaining: 0,
                    retry_after,
                    reset_after: Duration::ZERO,
                };
                match self.on_failure {
                    LimiterFailure::Error => Err(e),
                    LimiterFailure::Allow => {
                        tracing::warn!(target: "walden_redis", limiter = %self.name, error = %e, "failing open");
                        Ok(decision(true, Duration::ZERO))
                    }
                    LimiterFailure::Deny { retry_after } => {
                        tracing::warn!(target: "walden_redis", limiter = %self.name, error = %e, "failing closed");
                        Ok(decision(false, retry_after))
                    }
                }
            }
            other => other,
        }
    }
}

impl Limiter for RedisLimiter {
    fn name(&self) -> &str {
        &self.name
    }

    fn quota(&self) -> Quota {
        self.quota
    }

    fn check_with(&self, key: &str, n: u32, quota: &Quota) -> Result<Decision> {
        self.shared.config.rules.check_key(key)?;
        check_cost(quota, n)?;
        self.decide_or_policy(key, n, quota)
    }

    fn peek(&self, key: &str) -> Result<Decision> {
        self.shared.config.rules.check_key(key)?;
        self.decide_or_policy(key, 0, &self.quota)
    }

    fn reset(&self, key: &str) -> Result<bool> {
        self.shared.config.rules.check_key(key)?;
        let redis_key = self.shared.keys.limiter(&self.name, key);
        let shared = &self.shared;
        shared.pool.run(|con| {
            // An idle key has expired already: deleting nothing means nothing was spent.
            let deleted: u32 = redis::cmd("DEL").arg(redis_key).query(con)?;
            shared.wait_replicas(con)?;
            Ok(deleted > 0)
        })
    }
}
