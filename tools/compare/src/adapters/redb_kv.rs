//! redb with `Durability::Immediate` (its default), one write transaction per operation.

use std::path::Path;

use anyhow::Result;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::Value;

use crate::kv::Kv;

/// Database file name inside the store directory.
const FILE_NAME: &str = "db.redb";
/// The one table, key -> serialized JSON document.
const DOCS: TableDefinition<&str, &[u8]> = TableDefinition::new("docs");

/// A redb database.
pub struct Redb {
    db: Database,
}

impl Redb {
    /// Opens or creates the database file in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let db = Database::create(dir.join(FILE_NAME))?;
        let tx = db.begin_write()?;
        tx.open_table(DOCS)?;
        tx.commit()?;
        Ok(Self { db })
    }
}

impl Kv for Redb {
    fn put(&self, key: &str, doc: &Value) -> Result<()> {
        let bytes = serde_json::to_vec(doc)?;
        let tx = self.db.begin_write()?;
        tx.open_table(DOCS)?.insert(key, bytes.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    fn get(&self, key: &str) -> Result<Option<Value>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(DOCS)?;
        let got = table.get(key)?;
        Ok(got.map(|v| serde_json::from_slice(v.value())).transpose()?)
    }

    fn read_modify_write(&self, key: &str, f: &dyn Fn(Option<Value>) -> Value) -> Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(DOCS)?;
            let cur = table.get(key)?.map(|v| serde_json::from_slice(v.value())).transpose()?;
            let new = serde_json::to_vec(&f(cur))?;
            table.insert(key, new.as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    fn load(&self, docs: &mut dyn Iterator<Item = (String, Value)>) -> Result<()> {
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(DOCS)?;
            for (k, d) in docs {
                table.insert(k.as_str(), serde_json::to_vec(&d)?.as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<()> {
        drop(self.db);
        Ok(())
    }
}
