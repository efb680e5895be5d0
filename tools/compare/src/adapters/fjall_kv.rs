//! fjall with `persist(PersistMode::SyncAll)` after each write.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::Mutex;

use anyhow::{anyhow, Result};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use serde_json::Value;

use super::RMW_LOCK_STRIPES;
use crate::kv::Kv;

/// Name of the one keyspace.
const KEYSPACE: &str = "docs";

/// A fjall database with one keyspace. fjall's plain keyspace has no atomic
/// read-modify-write, so the adapter adds striped locks for it.
pub struct Fjall {
    db: Database,
    docs: Keyspace,
    stripes: Vec<Mutex<()>>,
}

impl Fjall {
    /// Opens or creates the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let db = Database::builder(dir).open()?;
        let docs = db.keyspace(KEYSPACE, KeyspaceCreateOptions::default)?;
        let stripes = (0..RMW_LOCK_STRIPES).map(|_| Mutex::new(())).collect();
        Ok(Self { db, docs, stripes })
    }

    fn write(&self, key: &str, doc: &Value) -> Result<()> {
        self.docs.insert(key, serde_json::to_vec(doc)?)?;
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }

    fn stripe(&self, key: &str) -> &Mutex<()> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        let i = usize::try_from(h.finish() % self.stripes.len() as u64).unwrap_or(0);
        &self.stripes[i]
    }
}

impl Kv for Fjall {
    fn put(&self, key: &str, doc: &Value) -> Result<()> {
        self.write(key, doc)
    }

    fn get(&self, key: &str) -> Result<Option<Value>> {
        Ok(self.docs.get(key)?.map(|v| serde_json::from_slice(&v)).transpose()?)
    }

    fn read_modify_write(&self, key: &str, f: &dyn Fn(Option<Value>) -> Value) -> Result<()> {
        let _guard = self.stripe(key).lock().map_err(|_| anyhow!("fjall stripe poisoned"))?;
        let cur = self.get(key)?;
        self.write(key, &f(cur))
    }

    fn load(&self, docs: &mut dyn Iterator<Item = (String, Value)>) -> Result<()> {
        for (k, d) in docs {
            self.docs.insert(k, serde_json::to_vec(&d)?)?;
        }
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }
}
