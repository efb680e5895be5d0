//! `dump` and `stats` decode the breaker-counts, lockout and violation-history records.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

fn a(args: &[&str], path: &Path) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = vec![args[0].into(), path.into()];
    v.extend(args[1..].iter().map(Into::into));
    v
}

#[test]
fn counts_lockout_and_violation_records_are_decoded() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open_store(dir.path());
        let b = s.breaker("db", walden::BreakerConfig::default()).unwrap();
        for _ in 0..3 {
            let _ = b.call(|| Err::<(), _>("down"));
        }
        let min = Duration::from_secs(60);
        let l = s.lockout("login", walden::LockoutConfig::new(2, min, min)).unwrap();
        for _ in 0..2 {
            l.failure("alice").unwrap();
        }
        l.failure("bob").unwrap();
        let rl = s.rate_limiter("api", walden::Quota::per_hour(1)).unwrap();
        for _ in 0..4 {
            let _ = rl.check("mallory").unwrap();
        }
        s.close().unwrap();
    }
    assert_eq!(run(&a(&["verify"], dir.path())).code, 0);
    let c = run(&a(&["dump", "--json", "--kind", "breaker-counts"], dir.path())).of_type("record");
    let last = c.last().expect("a counts record");
    assert_eq!((last["breaker"].as_str(), last["failures"].as_u64()), (Some("db"), Some(3)));
    assert_eq!(last["reason"], 1, "opened on consecutive failures");
    let l = run(&a(&["dump", "--json", "--kind", "lockout"], dir.path())).of_type("record");
    assert_eq!(l.len(), 3, "one record per failure");
    assert!(l[1]["locked_until_unix_ns"].as_u64().unwrap() > 0, "alice's second failure locks");
    let v = run(&a(&["dump", "--json", "--kind", "violations"], dir.path())).of_type("record");
    assert_eq!(v.last().unwrap()["denials"], 3, "the history written at close");
    let st = run(&a(&["stats", "--json"], dir.path()));
    assert_eq!(st.of_type("breaker_counts")[0]["failures"], 3);
    let lockout = &st.of_type("lockout")[0];
    assert_eq!((lockout["keys"].as_u64(), lockout["locked"].as_u64()), (Some(2), Some(1)));
    assert_eq!(st.of_type("violations")[0]["denials"], 3);
}
