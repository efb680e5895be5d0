//! `kill -9` of redis-server in the middle of a load, then a restart on the same data: every
//! write and every limiter decision acknowledged before the kill is still there; while Redis is
//! down every call fails with a typed error within the timeout (no hang); the same backend
//! handle reconnects on its own.
//!
//! A process kill keeps the page cache, so this shows crash safety of `appendfsync always`
//! (Redis replies only after its log write), not power-loss durability.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::RedisServer;
use walden::api::{Backend, DocumentsExt, Limiter};
use walden::{Error, Quota};
use walden_redis::{LimiterFailure, RedisBackend};

const WRITERS: usize = 8;
const TIMEOUT: Duration = Duration::from_secs(1);

fn is_down_error(e: &Error) -> bool {
    matches!(e, Error::Unavailable { .. } | Error::Timeout { .. })
}

#[test]
fn acknowledged_writes_and_decisions_survive_kill_9_and_calls_fail_fast_while_down() {
    let mut server = RedisServer::start();
    let mut config = server.config();
    config.timeout = TIMEOUT;
    let backend = RedisBackend::connect(config).unwrap();
    // One cell back per hour: what was spent stays spent for the length of the test.
    let quota = Quota::per_hour(1).with_burst(1_000_000);
    let limiter = backend.rate_limiter("durable", quota).unwrap();
    let open_for = walden::BreakerConfig {
        open_duration: Duration::from_secs(600),
        ..walden::BreakerConfig::default()
    };
    let breaker = backend.breaker("tripped", open_for.clone()).unwrap();
    for _ in 0..3 {
        let walden::api::Admission::Permitted(p) = breaker.try_acquire().unwrap() else {
            panic!("closed")
        };
        p.failure().unwrap();
    }
    let stop = AtomicBool::new(false);
    let acked: Vec<Mutex<(u64, u64)>> = (0..WRITERS).map(|_| Mutex::new((0, 0))).collect();
    let allowed = AtomicU64::new(0);
    let down_errors = AtomicU64::new(0);
    let slowest_failure = Mutex::new(Duration::ZERO);
    let note_failure = |e: Error, took: Duration| {
        assert!(is_down_error(&e), "while down: {e:?}");
        down_errors.fetch_add(1, Ordering::Relaxed);
        let mut s = slowest_failure.lock().unwrap();
        *s = (*s).max(took);
    };
    std::thread::scope(|s| {
        for (t, slot) in acked.iter().enumerate() {
            let (backend, stop, note_failure) = (&backend, &stop, &note_failure);
            s.spawn(move || {
                let key = format!("w{t}");
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let began = Instant::now();
                    match backend.put("acked", &key, &i) {
                        Ok(v) => *slot.lock().unwrap() = (i, v),
                        Err(e) => note_failure(e, began.elapsed()),
                    }
                }
            });
        }
        for _ in 0..4 {
            let (limiter, stop, allowed, note_failure) = (&limiter, &stop, &allowed, &note_failure);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    match limiter.check("k") {
                        Ok(d) => {
                            assert!(d.allowed);
                            allowed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => note_failure(e, began.elapsed()),
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_millis(700));
        server.kill9();
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
    });
    let failures = down_errors.load(Ordering::Relaxed);
    assert!(failures > 0, "no call failed while Redis was down");
    let slowest = *slowest_failure.lock().unwrap();
    assert!(slowest <= TIMEOUT + Duration::from_millis(500), "a failing call took {slowest:?}");
    // Down: fast typed errors from a fresh call too.
    assert!(is_down_error(&backend.get::<u64>("acked", "w0").unwrap_err()));

    server.spawn();
    // The same handle reconnects.
    for (t, slot) in acked.iter().enumerate() {
        let (i, v) = *slot.lock().unwrap();
        assert!(i > 0, "writer {t} never got an acknowledgement");
        let doc = backend.get::<u64>("acked", &format!("w{t}")).unwrap().unwrap();
        // The last write sent may have applied without its reply arriving: never less.
        assert!(doc.value >= i && doc.version >= v, "w{t}: acked ({i}, v{v}), found {doc:?}");
        assert_eq!(doc.value - i, doc.version - v, "w{t}: one version per write");
    }
    let h = backend.breaker("tripped", open_for).unwrap().health().unwrap();
    assert_eq!((h.state, h.generation), (walden::CircuitState::Open, 1), "{h:?}");
    let allowed = allowed.load(Ordering::Relaxed);
    let remaining = limiter.peek("k").unwrap().remaining;
    assert!(
        u64::from(remaining) <= u64::from(quota.burst()) - allowed,
        "{allowed} acknowledged cells spent, yet {remaining} remain"
    );
    eprintln!(
        "acknowledged cells {allowed}, failed calls while down {failures}, slowest {slowest:?}"
    );
}

#[test]
fn a_stalled_redis_gives_a_timeout_within_the_bound_and_service_resumes() {
    let server = RedisServer::start();
    let mut config = server.config();
    config.timeout = Duration::from_millis(300);
    let backend = RedisBackend::connect(config).unwrap();
    backend.put("c", "k", &1).unwrap();
    server.signal("STOP");
    let began = Instant::now();
    let err = backend.get::<u64>("c", "k").unwrap_err();
    let took = began.elapsed();
    server.signal("CONT");
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(backend.get::<u64>("c", "k").unwrap().unwrap().value, 1);
}

#[test]
fn limiters_answer_by_their_failure_policy_while_redis_is_down() {
    let mut server = RedisServer::start();
    let mut config = server.config();
    config.timeout = TIMEOUT;
    let backend = RedisBackend::connect(config).unwrap();
    let quota = Quota::per_second(5);
    let strict = backend.rate_limiter("strict", quota).unwrap();
    let open = backend.rate_limiter_with("open", quota, LimiterFailure::Allow).unwrap();
    let retry_after = Duration::from_secs(7);
    let closed =
        backend.rate_limiter_with("closed", quota, LimiterFailure::Deny { retry_after }).unwrap();
    let breaker = backend.breaker("b", walden::BreakerConfig::default()).unwrap();
    assert!(strict.check("k").unwrap().allowed);
    server.kill9();
    assert!(is_down_error(&strict.check("k").unwrap_err()));
    assert!(open.check("k").unwrap().allowed);
    let d = closed.check("k").unwrap();
    assert_eq!((d.allowed, d.retry_after), (false, retry_after));
    assert!(is_down_error(&breaker.try_acquire().unwrap_err()));
    // Bad input is still refused first, whatever the policy.
    assert!(matches!(open.check(""), Err(Error::InvalidName { .. })));
}

#[test]
fn a_flushed_script_cache_is_reloaded_on_noscript() {
    let server = RedisServer::start();
    let backend = server.backend();
    let limiter = backend.rate_limiter("l", Quota::per_second(10)).unwrap();
    let breaker = backend.breaker("b", walden::BreakerConfig::default()).unwrap();
    backend.put("c", "k", &1).unwrap();
    assert!(limiter.check("x").unwrap().allowed);
    assert_eq!(breaker.state().unwrap(), walden::CircuitState::Closed);
    let mut con = redis::Client::open(server.url()).unwrap().get_connection().unwrap();
    redis::cmd("SCRIPT").arg("FLUSH").query::<()>(&mut con).unwrap();
    assert_eq!(backend.put("c", "k", &2).unwrap(), 2);
    assert!(limiter.check("x").unwrap().allowed);
    assert_eq!(breaker.state().unwrap(), walden::CircuitState::Closed);
    assert_eq!(backend.scan::<u64>("c", &walden::api::KeyRange::all()).unwrap().len(), 1);
}
