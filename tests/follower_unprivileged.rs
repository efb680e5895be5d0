//! A follower running as another, unprivileged user reads a live store opened with
//! `Options::group_readable`, and can change nothing (root could write anywhere, so only a real
//! other user proves a follower needs no write permission).
//!
//! The parent (which must be root, to switch users; the test says so and passes otherwise)
//! opens a group-readable store in a directory of group root, writes, and re-executes this test
//! binary with `setpriv` as uid `nobody`, gid root, no other groups. The child
//! (`unprivileged_child`) follows the store, waits for a write the parent makes after it
//! started, and checks that it may not create a file there nor open the store as a writer.
//! A store opened without `group_readable` stays closed to it (`Error::Io`, permission denied).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::tmp;
use walden::{Error, Follower, Options, Store};

const CHILD_ENV: &str = "WALDEN_UNPRIVILEGED_STORE";
const CLOSED_ENV: &str = "WALDEN_UNPRIVILEGED_CLOSED_STORE";
const NOBODY_UID: &str = "65534";

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

#[test]
fn unprivileged_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let closed = std::env::var(CLOSED_ENV).unwrap();
    assert!(!is_root(), "the child must not run as root");
    let f = Follower::open(&dir).unwrap();
    assert_eq!(f.count("c"), 10);
    println!("READY");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    let lsn: u64 = line.trim().parse().unwrap();
    assert!(f.wait_for(lsn, Duration::from_secs(30)).unwrap());
    assert_eq!(f.get::<String>("c", "late").unwrap().unwrap().value, "after the follower");
    let denied = std::fs::write(Path::new(&dir).join("intruder"), b"x").unwrap_err();
    assert_eq!(denied.kind(), std::io::ErrorKind::PermissionDenied);
    assert!(matches!(Store::open(&dir), Err(Error::Io { .. })), "no writer as another user");
    match Follower::open(&closed) {
        Err(Error::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied)
        }
        other => panic!("a 0700 store opened for another user: {other:?}"),
    }
    println!("OK");
}

#[test]
fn a_follower_as_another_user_reads_a_group_readable_store_and_writes_nothing() {
    if !is_root() || !Path::new("/usr/bin/setpriv").exists() {
        eprintln!("skipped: needs root and setpriv to run a follower as another user");
        return;
    }
    let t = tmp();
    // Group root may enter the test's directory; others may not.
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o750)).unwrap();
    let dir = t.path().join("store");
    let store =
        Store::open_with(&dir, Options { group_readable: true, ..Options::default() }).unwrap();
    for i in 0..10 {
        store.put("c", &format!("k{i}"), &i).unwrap();
    }
    let closed = t.path().join("closed");
    Store::open(&closed).unwrap().close().unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let e = entry.unwrap();
        let mode = e.metadata().unwrap().permissions().mode() & 0o777;
        let name = e.file_name().into_string().unwrap();
        let want = if e.file_type().unwrap().is_dir() { 0o750 } else { 0o640 };
        if name != "LOCK" {
            assert_eq!(mode, want, "{name}");
        }
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new("setpriv")
        .args(["--reuid", NOBODY_UID, "--regid", "0", "--clear-groups", "--"])
        .arg(exe)
        .args(["unprivileged_child", "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(CHILD_ENV, &dir)
        .env(CLOSED_ENV, &closed)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(out.any(|l| l.unwrap() == "READY"), "the child followed the store");
    store.put("c", "late", &"after the follower").unwrap();
    let lsn = store.stats().durable_lsn;
    writeln!(child.stdin.as_mut().unwrap(), "{lsn}").unwrap();
    assert!(out.any(|l| l.unwrap() == "OK"), "the child saw the late write");
    assert!(child.wait().unwrap().success());
    assert!(!dir.join("intruder").exists());
}
