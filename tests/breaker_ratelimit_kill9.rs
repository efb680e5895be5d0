//! Crash tests with a real process: each test re-executes this test binary as a child (selected
//! with `--exact` and told where the store is through `WALDEN_KILL9_CHILD_DIR`), lets it do
//! durable work, waits for its `READY` line, kills it with SIGKILL and reopens the store.
//!
//! - a rate-limit key whose burst the child spent is still denied, with the exact
//!   `retry_after` (restart bypass must fail), under `Immediate` and under `Buffered`;
//! - a breaker the child opened is still open, until its wall-clock `open_until`;
//! - a half-open probe in flight at the kill counts as failed: the breaker reopens.
//!
//! Both processes use a `ManualClock` set from the same constants, so times are exact.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use walden::{
    Acquire, BreakerConfig, CircuitState, Durability, ManualClock, Options, Quota, Store,
};

const S: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * S;
const CHILD_ENV: &str = "WALDEN_KILL9_CHILD_DIR";
const READY: &str = "WALDEN-CHILD-READY";

fn open(dir: &Path, clock: &ManualClock) -> Store {
    let options = Options { clock: Arc::new(clock.clone()), ..Options::default() };
    Store::open_with(dir, options).unwrap()
}

/// In the child: the store directory to work in. `None` in the parent.
fn child_dir() -> Option<PathBuf> {
    std::env::var_os(CHILD_ENV).map(PathBuf::from)
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
fn run_child_and_kill(name: &str, dir: &Path) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env(CHILD_ENV, dir)
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
fn spent_burst_is_still_spent_after_kill_9() {
    let quota = Quota::per_minute(5); // T = 12 s, burst 5
    if let Some(dir) = child_dir() {
        let store = open(&dir, &ManualClock::new(T0));
        let l = store.rate_limiter("login", quota).unwrap();
        for _ in 0..5 {
            assert!(l.check("mallory").unwrap().allowed);
        }
        assert!(!l.check("mallory").unwrap().allowed);
        // Buffered: acknowledged once written to the OS, which survives a process kill.
        let buffered = l.clone().with_durability(Durability::Buffered);
        for _ in 0..5 {
            assert!(buffered.check("trudy").unwrap().allowed);
        }
        park();
    }
    let dir = tempfile::tempdir().unwrap();
    run_child_and_kill("spent_burst_is_still_spent_after_kill_9", dir.path());
    let store = open(dir.path(), &ManualClock::new(T0 + S));
    let l = store.rate_limiter("login", quota).unwrap();
    let d = l.check("mallory").unwrap();
    assert!(!d.allowed, "restart bypass: the killed process's burst came back");
    assert_eq!(d.retry_after, Duration::from_secs(11));
    assert_eq!(d.reset_after, Duration::from_secs(59));
    assert!(!l.check("trudy").unwrap().allowed, "a Buffered check was lost to a process kill");
    assert!(l.check("someone-else").unwrap().allowed);
}

#[test]
fn open_breaker_is_still_open_after_kill_9() {
    if let Some(dir) = child_dir() {
        let store = open(&dir, &ManualClock::new(T0));
        let b = store.breaker("upstream", BreakerConfig::default()).unwrap();
        for _ in 0..3 {
            let Acquire::Permitted(p) = b.try_acquire().unwrap() else { panic!("rejected") };
            p.failure().unwrap();
        }
        assert_eq!(b.state(), CircuitState::Open);
        park();
    }
    let dir = tempfile::tempdir().unwrap();
    run_child_and_kill("open_breaker_is_still_open_after_kill_9", dir.path());
    let clock = ManualClock::new(T0 + 10 * S);
    let store = open(dir.path(), &clock);
    let b = store.breaker("upstream", BreakerConfig::default()).unwrap();
    assert_eq!(b.state(), CircuitState::Open);
    match b.try_acquire().unwrap() {
        Acquire::Rejected { retry_after } => assert_eq!(retry_after, Some(Duration::from_secs(50))),
        Acquire::Permitted(_) => panic!("a restarted process hammers the open dependency"),
    }
    clock.set_ns(T0 + 60 * S);
    let Acquire::Permitted(probe) = b.try_acquire().unwrap() else { panic!("no probe") };
    assert!(probe.success().unwrap());
    assert_eq!(b.state(), CircuitState::Closed);
}

#[test]
fn probe_in_flight_at_kill_9_counts_as_failed() {
    if let Some(dir) = child_dir() {
        let clock = ManualClock::new(T0);
        let store = open(&dir, &clock);
        let b = store.breaker("upstream", BreakerConfig::default()).unwrap();
        b.force_open().unwrap();
        b.reset().unwrap(); // generation 2, Closed
        for _ in 0..3 {
            let Acquire::Permitted(p) = b.try_acquire().unwrap() else { panic!("rejected") };
            p.failure().unwrap();
        }
        clock.advance_ns(60 * S);
        let Acquire::Permitted(_probe) = b.try_acquire().unwrap() else { panic!("no probe") };
        assert_eq!(b.state(), CircuitState::HalfOpen);
        park();
    }
    let dir = tempfile::tempdir().unwrap();
    run_child_and_kill("probe_in_flight_at_kill_9_counts_as_failed", dir.path());
    let store = open(dir.path(), &ManualClock::new(T0 + 70 * S));
    let h = &store.breakers()[0];
    assert_eq!(h.logged_state, CircuitState::HalfOpen, "as logged");
    assert_eq!((h.state, h.open_until_unix_ns), (CircuitState::Open, None), "effective");
    let b = store.breaker("upstream", BreakerConfig::default()).unwrap();
    let h = b.health();
    assert_eq!((h.state, h.generation), (CircuitState::Open, 5));
    assert_eq!(h.open_until_unix_ns, Some(T0 + 130 * S));
    drop((store, b));
    // The reopening was itself logged.
    let store = open(dir.path(), &ManualClock::new(T0 + 71 * S));
    assert_eq!(store.breakers()[0].state, CircuitState::Open);
}
