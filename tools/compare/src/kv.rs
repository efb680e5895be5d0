//! The one small trait every compared system implements, and the list of systems.

use std::path::Path;

use anyhow::Result;
use clap::ValueEnum;
use serde_json::Value;

use crate::adapters;

/// A document store as the workloads see it. Documents are JSON values, as in
/// walden; byte-oriented stores serialize them with `serde_json`, which is the
/// cost their users pay too.
pub trait Kv: Send + Sync {
    /// Inserts or replaces `key`, durably if the system is configured so.
    fn put(&self, key: &str, doc: &Value) -> Result<()>;
    /// Reads `key`.
    fn get(&self, key: &str) -> Result<Option<Value>>;
    /// Atomically replaces the document under `key` by `f(current)`.
    fn read_modify_write(&self, key: &str, f: &dyn Fn(Option<Value>) -> Value) -> Result<()>;
    /// Loads the initial dataset (not measured). Systems override it with
    /// their cheapest bulk path; the default inserts one by one.
    fn load(&self, docs: &mut dyn Iterator<Item = (String, Value)>) -> Result<()> {
        for (k, d) in docs {
            self.put(&k, &d)?;
        }
        Ok(())
    }
    /// `fsync`/`fdatasync` calls the store made since it was opened, for
    /// systems that count them (walden); `None` elsewhere.
    fn fsyncs(&self) -> Option<u64> {
        None
    }
    /// Flushes and closes the store.
    fn close(self: Box<Self>) -> Result<()>;
}

/// Every system the harness can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum System {
    /// walden with `Durability::Immediate` (every acknowledged write is on disk).
    WaldenImmediate,
    /// walden with `Durability::Buffered` (not durable on power loss).
    WaldenBuffered,
    /// One JSON file; each write rewrites it via temp file, fsync, rename, dir fsync.
    JsonFsync,
    /// One JSON file rewritten via temp file and rename, never fsynced (unsafe).
    JsonNosync,
    /// SQLite, WAL mode, `synchronous=FULL`.
    SqliteFull,
    /// SQLite, WAL mode, `synchronous=NORMAL` (not durable on power loss).
    SqliteNormal,
    /// redb, `Durability::Immediate`, one write transaction per operation.
    Redb,
    /// fjall, `persist(SyncAll)` after each write.
    Fjall,
}

impl System {
    /// Every system, in report order.
    pub const ALL: [System; 8] = [
        System::WaldenImmediate,
        System::WaldenBuffered,
        System::JsonFsync,
        System::JsonNosync,
        System::SqliteFull,
        System::SqliteNormal,
        System::Redb,
        System::Fjall,
    ];

    /// The label used in tables and charts.
    pub fn label(self) -> &'static str {
        match self {
            System::WaldenImmediate => "walden (Immediate)",
            System::WaldenBuffered => "walden (Buffered, not durable)",
            System::JsonFsync => "JSON file + fsync",
            System::JsonNosync => "JSON file, no fsync (UNSAFE)",
            System::SqliteFull => "SQLite WAL sync=FULL",
            System::SqliteNormal => "SQLite WAL sync=NORMAL (not durable)",
            System::Redb => "redb (Immediate)",
            System::Fjall => "fjall (SyncAll)",
        }
    }

    /// A short label for table columns; `†` marks systems that are not durable.
    pub fn short(self) -> &'static str {
        match self {
            System::WaldenImmediate => "walden",
            System::WaldenBuffered => "walden buffered†",
            System::JsonFsync => "JSON+fsync",
            System::JsonNosync => "JSON no-fsync†",
            System::SqliteFull => "SQLite FULL",
            System::SqliteNormal => "SQLite NORMAL†",
            System::Redb => "redb",
            System::Fjall => "fjall",
        }
    }

    /// A short name for file names and CLI.
    pub fn slug(self) -> String {
        self.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default()
    }

    /// Whether an acknowledged write survives power loss.
    pub fn durable(self) -> bool {
        matches!(
            self,
            System::WaldenImmediate
                | System::JsonFsync
                | System::SqliteFull
                | System::Redb
                | System::Fjall
        )
    }

    /// Opens (creating if needed) this system's store in `dir`.
    pub fn open(self, dir: &Path) -> Result<Box<dyn Kv>> {
        Ok(match self {
            System::WaldenImmediate | System::WaldenBuffered => {
                adapters::walden_kv::open(dir, self == System::WaldenImmediate)?
            }
            System::JsonFsync => Box::new(adapters::json_file::JsonFile::open(dir, true)?),
            System::JsonNosync => Box::new(adapters::json_file::JsonFile::open(dir, false)?),
            System::SqliteFull => Box::new(adapters::sqlite::Sqlite::open(dir, true)?),
            System::SqliteNormal => Box::new(adapters::sqlite::Sqlite::open(dir, false)?),
            System::Redb => Box::new(adapters::redb_kv::Redb::open(dir)?),
            System::Fjall => Box::new(adapters::fjall_kv::Fjall::open(dir)?),
        })
    }

    /// Whether this build can run the system (walden needs the `walden` feature).
    pub fn available(self) -> bool {
        !matches!(self, System::WaldenImmediate | System::WaldenBuffered)
            || adapters::walden_kv::AVAILABLE
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::doc::bump;

    /// Every adapter stores, reads, read-modify-writes and keeps its data across a reopen.
    #[test]
    fn every_system_round_trips_and_persists() {
        for system in System::ALL.into_iter().filter(|s| s.available()) {
            let dir = tempfile::tempdir().unwrap();
            let kv = system.open(dir.path()).unwrap();
            kv.load(&mut (0..10).map(|i| (format!("k{i}"), json!({"v": i})))).unwrap();
            kv.put("new", &json!({"v": 100})).unwrap();
            kv.read_modify_write("k3", &bump).unwrap();
            kv.read_modify_write("absent", &bump).unwrap();
            assert_eq!(kv.get("k2").unwrap(), Some(json!({"v": 2})), "{system:?}");
            assert_eq!(kv.get("nothing").unwrap(), None, "{system:?}");
            kv.close().unwrap();

            let kv = system.open(dir.path()).unwrap();
            assert_eq!(kv.get("new").unwrap(), Some(json!({"v": 100})), "{system:?}");
            assert_eq!(kv.get("k3").unwrap(), Some(json!({"v": 4})), "{system:?}");
            assert_eq!(kv.get("absent").unwrap(), Some(json!({"v": 1})), "{system:?}");
            assert_eq!(kv.get("k9").unwrap(), Some(json!({"v": 9})), "{system:?}");
            kv.close().unwrap();
        }
    }
}
