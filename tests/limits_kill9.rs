//! Crash tests with real processes for the state added beside the limiter TATs and breaker
//! transitions: each test re-executes this test binary as a child (selected with `--exact`,
//! told where the store is through `WALDEN_KILL9_CHILD_DIR`), lets it work, waits for its
//! `READY` line, kills it with SIGKILL and reopens the store.
//!
//! - closed-state breaker counts add up across processes that each make one failing call and
//!   are killed: the third one trips a 3-failure breaker, and why is remembered;
//! - a lockout's lock and a key's counted failures survive, with the exact `retry_after`;
//! - a limiter's violation history survives, including denials first held back by the
//!   once-per-second rule and written by the flusher's tick;
//! - a limiter `reset(key)` survives.
//!
//! Both processes use a `ManualClock` set from the same constants, so times are exact.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use walden::{
    BreakerConfig, CallError, CircuitState, LockoutConfig, ManualClock, Options, Quota, Store,
    TripReason,
};

const S: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * S;
const CHILD_ENV: &str = "WALDEN_KILL9_CHILD_DIR";
const ROUND_ENV: &str = "WALDEN_KILL9_ROUND";
const READY: &str = "WALDEN-CHILD-READY";

fn open(dir: &Path, clock: &ManualClock) -> Store {
    let options = Options { clock: Arc::new(clock.clone()), ..Options::default() };
    Store::open_with(dir, options).unwrap()
}

/// In the child: the store directory to work in. `None` in the parent.
fn child_dir() -> Option<PathBuf> {
    std::env::var_os(CHILD_ENV).map(PathBuf::from)
}

/// In the child: which run of the child this is (0 if only one).
fn round() -> u64 {
    std::env::var(ROUND_ENV).ok().and_then(|r| r.parse().ok()).unwrap_or(0)
}

/// In the child: reports that its work is acknowledged, then waits to be killed.
fn park() -> ! {
    let mut out = std::io::stdout();
    // The harness may have printed `test <name> ... ` on this line already.
    writeln!(out, "\n{READY}").unwrap();
    out.flush().unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// In the parent: runs test `name` as a child on `dir`, waits for `READY`, sends SIGKILL.
fn run_child_and_kill(name: &str, dir: &Path, round: u64) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, dir)
        .env(ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(stdout.lines().map_while(|l| l.ok()).any(|l| l.contains(READY)));
    });
    // A child that hangs must fail the test, not stall it.
    let ready = rx.recv_timeout(Duration::from_secs(30)).unwrap_or(false);
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(ready, "child did not report READY within 30 s: {status:?}");
    assert_eq!(status.signal(), Some(9), "child was not killed by SIGKILL: {status:?}");
}

#[test]
fn failures_add_up_across_processes_killed_after_one_call_each() {
    if let Some(dir) = child_dir() {
        // One failing call per process, a minute apart.
        let store = open(&dir, &ManualClock::new(T0 + round() * 60 * S));
        let b = store.breaker("upstream", BreakerConfig::default()).unwrap();
        let r: Result<(), CallError<&str>> = b.call(|| Err("connection refused"));
        assert!(matches!(r, Err(CallError::Failed(_))));
        park();
    }
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        run_child_and_kill(
            "failures_add_up_across_processes_killed_after_one_call_each",
            dir.path(),
            round,
        );
        let store = open(dir.path(), &ManualClock::new(T0 + round * 60 * S + S));
        // A breaker that never changed state is listed from its counts record alone.
        let listed = store.breakers();
        assert_eq!((listed.len(), listed[0].name.as_str()), (1, "upstream"));
        assert!(!listed[0].registered);
        let h = store.breaker("upstream", BreakerConfig::default()).unwrap().health();
        if round < 2 {
            assert_eq!(h.state, CircuitState::Closed);
            assert_eq!(h.counts.consecutive_failures, round as u32 + 1, "after {round}");
        } else {
            assert_eq!(h.state, CircuitState::Open, "the third failing process trips it");
            assert_eq!(h.reason, Some(TripReason::ConsecutiveFailures { failures: 3 }));
            assert_eq!(h.open_until_unix_ns, Some(T0 + 180 * S));
            assert_eq!((h.counts.calls, h.counts.failures), (3, 3));
        }
    }
}

#[test]
fn a_lockout_and_counted_failures_survive_kill_9() {
    let min15 = Duration::from_secs(15 * 60);
    let config = LockoutConfig::new(5, min15, min15);
    if let Some(dir) = child_dir() {
        let clock = ManualClock::new(T0);
        let store = open(&dir, &clock);
        let logins = store.lockout("login", config).unwrap();
        for _ in 0..5 {
            logins.failure("alice").unwrap();
            clock.advance_ns(S);
        }
        assert!(logins.check("alice").unwrap().locked);
        for _ in 0..3 {
            logins.failure("bob").unwrap();
        }
        park();
    }
    let dir = tempfile::tempdir().unwrap();
    run_child_and_kill("a_lockout_and_counted_failures_survive_kill_9", dir.path(), 0);
    let store = open(dir.path(), &ManualClock::new(T0 + 65 * S));
    let logins = store.lockout("login", config).unwrap();
    let alice = logins.check("alice").unwrap();
    assert!(alice.locked, "a restart lifted the lock");
    assert_eq!(alice.retry_after, Duration::from_secs(15 * 60 - 61));
    let bob = logins.check("bob").unwrap();
    assert_eq!((bob.locked, bob.failures, bob.remaining_attempts), (false, 3, 2));
    assert_eq!(store.lockout_stats().resident_keys, 2);
}

#[test]
fn violation_history_survives_kill_9() {
    if let Some(dir) = child_dir() {
        let clock = ManualClock::new(T0);
        let store = open(&dir, &clock);
        let l = store.rate_limiter("api", Quota::per_hour(1)).unwrap();
        assert!(l.check("mallory").unwrap().allowed);
        for _ in 0..5 {
            assert!(!l.check("mallory").unwrap().allowed);
            clock.advance_ns(2 * S); // each denial past the once-per-second rule: logged
        }
        // One allowed, then 99 denials in the same instant: the first denial is logged at
        // once, the other 98 are held back by the once-per-second rule, and the flusher's
        // tick writes them once the second has passed.
        for _ in 0..100 {
            let _ = l.check("trudy").unwrap();
        }
        clock.advance_ns(2 * S);
        std::thread::sleep(Duration::from_millis(500));
        park();
    }
    let dir = tempfile::tempdir().unwrap();
    run_child_and_kill("violation_history_survives_kill_9", dir.path(), 0);
    let store = open(dir.path(), &ManualClock::new(T0 + 20 * S));
    let l = store.rate_limiter("api", Quota::per_hour(1)).unwrap();
    let h = l.violations("mallory").expect("mallory's history was lost");
    assert_eq!((h.denials, h.first_denied_unix_ns), (5, T0));
    assert_eq!(h.last_denied_unix_ns, T0 + 8 * S);
    assert_eq!(l.violations("trudy").expect("trudy's history was lost").denials, 99);
}

#[test]
fn a_limiter_reset_survives_kill_9() {
    if let Some(dir) = child_dir() {
        let store = open(&dir, &ManualClock::new(T0));
        let l = store.rate_limiter("login", Quota::per_hour(3)).unwrap();
        for _ in 0..3 {
            assert!(l.check("alice").unwrap().allowed);
            assert!(l.check("bob").unwrap().allowed);
        }
        assert!(l.reset("alice").unwrap());
        park();
    }
    let dir = tempfile::tempdir().unwrap();
    run_child_and_kill("a_limiter_reset_survives_kill_9", dir.path(), 0);
    let store = open(dir.path(), &ManualClock::new(T0 + S));
    let l = store.rate_limiter("login", Quota::per_hour(3)).unwrap();
    assert_eq!(l.peek("alice").unwrap().remaining, 3, "the reset was lost");
    assert!(!l.check("bob").unwrap().allowed);
}
