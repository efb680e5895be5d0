//! The operator hears: walden reports poisoning, compactions, backups, snapshot fallbacks and
//! lock waits as `tracing` events (target `walden`) and never installs a subscriber itself.
//! Each test installs a small recording subscriber for its own thread only
//! (`tracing::subscriber::with_default`), so tests running in parallel do not see each other's
//! events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use walden::io::{Fault, FaultError, FaultOp, FaultyIo};
use walden::{Options, Store};

/// One recorded event: level, target and every field as text (`message` included).
#[derive(Debug, Clone)]
struct Seen {
    level: Level,
    target: String,
    fields: Vec<(String, String)>,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
    fn message(&self) -> &str {
        self.field("message").unwrap_or("")
    }
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Vec::new();
        event.record(&mut Fields(&mut fields));
        let meta = event.metadata();
        self.0.lock().unwrap().push(Seen {
            level: *meta.level(),
            target: meta.target().to_owned(),
            fields,
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Runs `f` with a recorder installed on this thread; returns walden's events.
fn record(f: impl FnOnce()) -> Vec<Seen> {
    let recorder = Recorder::default();
    tracing::subscriber::with_default(recorder.clone(), f);
    let seen = recorder.0.lock().unwrap().clone();
    seen.into_iter().filter(|s| s.target == "walden").collect()
}

#[test]
fn a_failed_fsync_that_poisons_the_store_is_an_error_event() {
    let dir = tempfile::tempdir().unwrap();
    let io = FaultyIo::new();
    let store =
        Store::open_with(dir.path(), Options { io: Arc::new(io.clone()), ..Options::default() })
            .unwrap();
    store.put("c", "ok", &1).unwrap();
    let events = record(|| {
        let nth = io.count(FaultOp::Sync) + 1;
        io.inject(Fault { op: FaultOp::Sync, nth, error: FaultError::Eio, sticky: false });
        assert!(store.put("c", "lost", &2).is_err());
    });
    let poisoned: Vec<&Seen> =
        events.iter().filter(|e| e.message().starts_with("store poisoned")).collect();
    assert_eq!(poisoned.len(), 1, "{events:?}");
    let e = poisoned[0];
    assert_eq!(e.level, Level::ERROR);
    assert!(e.field("path").is_some_and(|p| p.contains("wal")), "{e:?}");
    assert!(e.field("op").is_some(), "{e:?}");
    assert!(e.field("error").is_some(), "{e:?}");
}

#[test]
fn a_compaction_is_an_info_event_with_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for i in 0..20 {
        store.put("c", "k", &i).unwrap();
    }
    let mut report = None;
    let events = record(|| report = store.compact().unwrap());
    let report = report.unwrap();
    let compacted: Vec<&Seen> = events.iter().filter(|e| e.message() == "compacted").collect();
    assert_eq!(compacted.len(), 1, "{events:?}");
    let e = compacted[0];
    assert_eq!(e.level, Level::INFO);
    assert_eq!(e.field("snapshot_lsn"), Some(report.snapshot_lsn.to_string().as_str()));
    assert_eq!(e.field("segments_deleted"), Some(report.segments_deleted.to_string().as_str()));
}

#[test]
fn a_backup_and_a_pruned_backup_are_info_events() {
    let dir = tempfile::tempdir().unwrap();
    let parent = tempfile::tempdir().unwrap();
    let clock = walden::ManualClock::new(1_000_000_000_000_000_000);
    let options = Options { clock: Arc::new(clock.clone()), ..Options::default() };
    let store = Store::open_with(dir.path(), options).unwrap();
    store.put("c", "k", &1).unwrap();
    let events = record(|| {
        store.backup_rotated(parent.path()).unwrap();
        clock.advance_ns(2_000_000_000);
        store.backup_rotated(parent.path()).unwrap();
        let keep = walden::Retention { keep_last: Some(1), max_age: None };
        assert_eq!(store.prune_backups(parent.path(), keep).unwrap().len(), 1);
    });
    let messages: Vec<&str> = events.iter().map(Seen::message).collect();
    assert_eq!(messages.iter().filter(|m| **m == "backup written").count(), 2, "{messages:?}");
    assert!(messages.contains(&"old backup deleted"), "{messages:?}");
}

#[test]
fn a_rejected_snapshot_is_a_warning_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store.put("c", "a", &1).unwrap();
        store.compact().unwrap();
        store.put("c", "b", &2).unwrap();
        // A second snapshot, newer; the older one stays until this one is durable, and then
        // goes: copy it aside to put it back.
        let first: Vec<_> = snapshots(dir.path());
        let saved: Vec<(std::path::PathBuf, Vec<u8>)> =
            first.iter().map(|p| (p.clone(), std::fs::read(p).unwrap())).collect();
        store.compact().unwrap();
        store.close().unwrap();
        for (p, bytes) in saved {
            std::fs::write(p, bytes).unwrap();
        }
    }
    // Damage the newest snapshot; the older one plus the log still cover everything.
    let newest = snapshots(dir.path()).into_iter().max().unwrap();
    let mut bytes = std::fs::read(&newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&newest, bytes).unwrap();
    let mut opened = None;
    let events = record(|| opened = Some(Store::open(dir.path())));
    let warned: Vec<&Seen> = events
        .iter()
        .filter(|e| e.message().starts_with("snapshot rejected; falling back"))
        .collect();
    assert_eq!(warned.len(), 1, "{events:?}");
    assert_eq!(warned[0].level, Level::WARN);
    let name = newest.file_name().unwrap().to_string_lossy().into_owned();
    assert!(warned[0].field("error").is_some_and(|e| e.contains(&name)), "{warned:?}");
    // Whether the open then succeeds is recovery's decision; the warning came first.
    drop(opened);
}

#[test]
fn waiting_for_the_lock_is_an_info_event() {
    let dir = tempfile::tempdir().unwrap();
    let holder = Store::open(dir.path()).unwrap();
    let path = dir.path().to_path_buf();
    let events = record(|| {
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            holder.close().unwrap();
        });
        let options = Options { lock_timeout: Some(Duration::from_secs(30)), ..Options::default() };
        Store::open_with(&path, options).unwrap();
        releaser.join().unwrap();
    });
    let messages: Vec<&str> = events.iter().map(Seen::message).collect();
    assert!(messages.contains(&"store is locked by another opener; waiting"), "{messages:?}");
    assert!(messages.contains(&"store lock taken after waiting"), "{messages:?}");
}

fn snapshots(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "snap"))
        .collect()
}
