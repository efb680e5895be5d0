//! Circuit breakers in Redis: the embedded breaker's state machine in one script, on one hash
//! every instance shares.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;
use walden::api::rules::{check_breaker_config, check_breaker_name};
use walden::api::{Admission, Breaker, CallPermit, PermitBackend};
use walden::{BreakerConfig, BreakerCounts, BreakerHealth, CircuitState, Result};

use crate::documents::{bad_reply, int, number, text};
use crate::scripts::BREAKER_SCRIPT;
use crate::Shared;

/// The embedded breaker's options the Redis script does not implement yet: refused with a typed
/// error rather than silently ignored. (`half_open_timeout` and `counts_log_interval` are
/// accepted: the script keeps its counters in Redis, and a half-open period without a timeout
/// is the behaviour it has always had.)
fn refuse_unsupported(config: &BreakerConfig) -> Result<()> {
    let unsupported = if config.failure_window.is_some() {
        "failure_window is not supported by the Redis backend"
    } else if config.trip_when.is_some() {
        "trip_when is not supported by the Redis backend"
    } else if config.open_backoff.is_some() {
        "open_backoff is not supported by the Redis backend"
    } else if config.shadow {
        "shadow mode is not supported by the Redis backend"
    } else {
        return Ok(());
    };
    Err(walden::Error::InvalidBreakerConfig { reason: unsupported })
}

fn state_code(s: CircuitState) -> u8 {
    match s {
        CircuitState::Closed => 0,
        CircuitState::Open => 1,
        CircuitState::HalfOpen => 2,
        CircuitState::ForcedOpen => 3,
        CircuitState::Disabled => 4,
    }
}

fn state_of(code: i64) -> Option<CircuitState> {
    Some(match code {
        0 => CircuitState::Closed,
        1 => CircuitState::Open,
        2 => CircuitState::HalfOpen,
        3 => CircuitState::ForcedOpen,
        4 => CircuitState::Disabled,
        _ => return None,
    })
}

/// A circuit breaker in Redis: every process that uses the same name sees the same state.
///
/// Its configuration is not stored: each call carries it and the last one wins (as with the
/// embedded breaker); a change restarts the counters. Give every process the same
/// configuration.
#[derive(Clone)]
pub struct RedisBreaker {
    shared: Arc<Shared>,
    name: Arc<str>,
    config: BreakerConfig,
    fingerprint: Arc<str>,
}

impl fmt::Debug for RedisBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBreaker").field("name", &self.name).finish_non_exhaustive()
    }
}

impl RedisBreaker {
    pub(crate) fn new(
        shared: Arc<Shared>,
        name: &str,
        config: BreakerConfig,
    ) -> Result<RedisBreaker> {
        check_breaker_name(name)?;
        check_breaker_config(&config)?;
        refuse_unsupported(&config)?;
        let rate = config.failure_rate;
        let fingerprint = format!(
            "c{:?}r{:?}o{}p{}s{:?}",
            config.consecutive_failures,
            rate.map(|r| (r.threshold_percent, r.window_calls, r.minimum_calls)),
            config.open_duration.as_nanos(),
            config.half_open_probes,
            config.slow_call_threshold.map(|d| d.as_nanos()),
        );
        Ok(RedisBreaker { shared, name: Arc::from(name), config, fingerprint: fingerprint.into() })
    }

    /// Runs one breaker operation with the configuration's arguments and `extra` ones.
    fn call(&self, op: &str, extra: &[String]) -> Result<Value> {
        let c = &self.config;
        let rate = c.failure_rate;
        let open = c.open_duration.as_nanos();
        let key = self.shared.keys.breaker(&self.name);
        let shared = &self.shared;
        shared.pool.run(|con| {
            let mut inv = BREAKER_SCRIPT.key(key);
            inv.arg(op)
                .arg(&*self.fingerprint)
                .arg(c.consecutive_failures.unwrap_or(0))
                .arg(rate.map_or(0, |r| r.threshold_percent))
                .arg(rate.map_or(0, |r| r.window_calls))
                .arg(rate.map_or(0, |r| r.minimum_calls))
                .arg(u64::try_from(open / 1_000_000_000).unwrap_or(u64::MAX))
                .arg(u64::try_from(open % 1_000_000_000).unwrap_or(0))
                .arg(c.half_open_probes);
            for a in extra {
                inv.arg(a);
            }
            let r: Value = inv.invoke(con)?;
            if op != "health" {
                shared.wait_replicas(con)?;
            }
            Ok(r)
        })
    }

    fn set(&self, to: CircuitState) -> Result<()> {
        self.call("set", &[state_code(to).to_string()]).map(|_| ())
    }

    /// `{code, generation, state}` replies.
    fn triple(reply: &Value, what: &str) -> Result<(i64, String, i64)> {
        match reply {
            Value::Array(a) if a.len() == 3 => match (int(&a[0]), text(&a[1]), int(&a[2])) {
                (Some(c), Some(g), Some(s)) => Ok((c, g.to_owned(), s)),
                _ => Err(bad_reply(what, reply)),
            },
            _ => Err(bad_reply(what, reply)),
        }
    }
}

struct RedisPermit {
    breaker: RedisBreaker,
    generation: String,
    started: Instant,
}

impl PermitBackend for RedisPermit {
    fn generation(&self) -> u64 {
        self.generation.parse().unwrap_or(0)
    }

    fn finish(self: Box<Self>, ok: bool, duration: Option<Duration>) -> Result<bool> {
        let elapsed = duration.unwrap_or_else(|| self.started.elapsed());
        let slow = self.breaker.config.slow_call_threshold.is_some_and(|t| elapsed >= t);
        let failed = !ok || slow;
        let reply = self
            .breaker
            .call("outcome", &[self.generation.clone(), u8::from(failed).to_string()])?;
        let (counted, _, _) = RedisBreaker::triple(&reply, "breaker outcome")?;
        Ok(counted == 1)
    }
}

impl Breaker for RedisBreaker {
    fn name(&self) -> &str {
        &self.name
    }

    fn try_acquire(&self) -> Result<Admission> {
        let started = Instant::now();
        let reply = self.call("acquire", &[])?;
        let bad = || bad_reply("breaker acquire", &reply);
        let Value::Array(a) = &reply else { return Err(bad()) };
        match (a.first().and_then(int), a.get(1)) {
            (Some(1), Some(g)) => {
                let generation = text(g).ok_or_else(bad)?.to_owned();
                let permit = RedisPermit { breaker: self.clone(), generation, started };
                Ok(Admission::Permitted(CallPermit::new(Box::new(permit))))
            }
            (Some(0), Some(r)) => {
                let retry_after = number(r).ok_or_else(bad)?.map(Duration::from_nanos);
                Ok(Admission::Rejected { retry_after })
            }
            _ => Err(bad()),
        }
    }

    fn state(&self) -> Result<CircuitState> {
        self.health().map(|h| h.state)
    }

    fn health(&self) -> Result<BreakerHealth> {
        let reply = self.call("health", &[])?;
        let bad = || bad_reply("breaker health", &reply);
        let Value::Array(a) = &reply else { return Err(bad()) };
        if a.len() != 7 {
            return Err(bad());
        }
        let state = int(&a[0]).and_then(state_of).ok_or_else(bad)?;
        let generation = number(&a[1]).flatten().ok_or_else(bad)?;
        let open_until = number(&a[2]).flatten().ok_or_else(bad)?;
        let last_transition = number(&a[3]).flatten().ok_or_else(bad)?;
        let small = |v: &Value| int(v).and_then(|i| u32::try_from(i).ok()).ok_or_else(bad);
        let counts = BreakerCounts {
            consecutive_failures: small(&a[4])?,
            window_calls: small(&a[5])?,
            window_failures: small(&a[6])?,
            ..BreakerCounts::default()
        };
        // The Redis breaker keeps the streak and the window only: no totals, no trip reason.
        let failure_rate_percent = (counts.window_calls > 0).then(|| {
            (u64::from(counts.window_failures) * 100 / u64::from(counts.window_calls)) as u8
        });
        Ok(BreakerHealth {
            name: self.name.to_string(),
            state,
            logged_state: state,
            generation,
            reason: None,
            counts,
            failure_rate_percent,
            open_until_unix_ns: (state == CircuitState::Open).then_some(open_until),
            half_open: None,
            last_transition_unix_ns: last_transition,
            shadow: false,
            registered: true,
        })
    }

    fn reset(&self) -> Result<()> {
        self.set(CircuitState::Closed)
    }

    fn force_open(&self) -> Result<()> {
        self.set(CircuitState::ForcedOpen)
    }

    fn disable(&self) -> Result<()> {
        self.set(CircuitState::Disabled)
    }
}

#[cfg(test)]
mod unsupported_tests {
    use super::*;

    #[test]
    fn options_the_script_lacks_are_refused_not_ignored() {
        assert!(refuse_unsupported(&BreakerConfig::default()).is_ok());
        let shadow = BreakerConfig { shadow: true, ..BreakerConfig::default() };
        let window =
            BreakerConfig { failure_window: Some(Duration::from_secs(60)), ..Default::default() };
        for config in [shadow, window] {
            assert!(matches!(
                refuse_unsupported(&config),
                Err(walden::Error::InvalidBreakerConfig { .. })
            ));
        }
    }
}
