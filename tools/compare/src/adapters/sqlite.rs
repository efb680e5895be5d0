//! SQLite through rusqlite (bundled), WAL mode, one connection per thread
//! taken from a small pool.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, Result};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::Value;

use crate::kv::Kv;

/// Database file name inside the store directory.
const FILE_NAME: &str = "db.sqlite";
/// How long a writer waits for the write lock before SQLite reports BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);
/// Rows inserted per transaction during the (unmeasured) load phase.
const LOAD_BATCH_ROWS: usize = 10_000;

/// A SQLite database holding one `docs(k TEXT PRIMARY KEY, v BLOB)` table.
pub struct Sqlite {
    path: PathBuf,
    full_sync: bool,
    pool: Mutex<Vec<Connection>>,
}

impl Sqlite {
    /// Opens or creates the database; `full_sync` picks `synchronous=FULL`
    /// over `NORMAL`.
    pub fn open(dir: &Path, full_sync: bool) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let s = Self { path: dir.join(FILE_NAME), full_sync, pool: Mutex::new(Vec::new()) };
        let c = s.connect()?;
        c.execute_batch(
            "CREATE TABLE IF NOT EXISTS docs (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;",
        )?;
        s.give_back(c)?;
        Ok(s)
    }

    fn connect(&self) -> Result<Connection> {
        let c = Connection::open(&self.path)?;
        c.busy_timeout(BUSY_TIMEOUT)?;
        c.pragma_update(None, "journal_mode", "WAL")?;
        let sync = if self.full_sync { "FULL" } else { "NORMAL" };
        c.pragma_update(None, "synchronous", sync)?;
        Ok(c)
    }

    /// Runs `f` on a pooled connection (opening one if the pool is empty).
    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let pooled = self.pool.lock().map_err(|_| anyhow!("sqlite pool poisoned"))?.pop();
        let mut c = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        let out = f(&mut c);
        self.give_back(c)?;
        out
    }

    fn give_back(&self, c: Connection) -> Result<()> {
        self.pool.lock().map_err(|_| anyhow!("sqlite pool poisoned"))?.push(c);
        Ok(())
    }
}

impl Kv for Sqlite {
    fn put(&self, key: &str, doc: &Value) -> Result<()> {
        let bytes = serde_json::to_vec(doc)?;
        self.with_conn(|c| {
            c.prepare_cached("INSERT OR REPLACE INTO docs (k, v) VALUES (?1, ?2)")?
                .execute(params![key, bytes])?;
            Ok(())
        })
    }

    fn get(&self, key: &str) -> Result<Option<Value>> {
        let bytes: Option<Vec<u8>> = self.with_conn(|c| {
            Ok(c.prepare_cached("SELECT v FROM docs WHERE k = ?1")?
                .query_row(params![key], |r| r.get(0))
                .optional()?)
        })?;
        Ok(bytes.map(|b| serde_json::from_slice(&b)).transpose()?)
    }

    fn read_modify_write(&self, key: &str, f: &dyn Fn(Option<Value>) -> Value) -> Result<()> {
        self.with_conn(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let cur: Option<Vec<u8>> = tx
                .prepare_cached("SELECT v FROM docs WHERE k = ?1")?
                .query_row(params![key], |r| r.get(0))
                .optional()?;
            let cur = cur.map(|b| serde_json::from_slice(&b)).transpose()?;
            let new = serde_json::to_vec(&f(cur))?;
            tx.prepare_cached("INSERT OR REPLACE INTO docs (k, v) VALUES (?1, ?2)")?
                .execute(params![key, new])?;
            tx.commit()?;
            Ok(())
        })
    }

    fn load(&self, docs: &mut dyn Iterator<Item = (String, Value)>) -> Result<()> {
        self.with_conn(|c| {
            let mut docs = docs.peekable();
            while docs.peek().is_some() {
                let tx = c.transaction()?;
                {
                    let mut st =
                        tx.prepare_cached("INSERT OR REPLACE INTO docs (k, v) VALUES (?1, ?2)")?;
                    for (k, d) in docs.by_ref().take(LOAD_BATCH_ROWS) {
                        st.execute(params![k, serde_json::to_vec(&d)?])?;
                    }
                }
                tx.commit()?;
            }
            Ok(())
        })
    }

    fn close(self: Box<Self>) -> Result<()> {
        let conns =
            std::mem::take(&mut *self.pool.lock().map_err(|_| anyhow!("sqlite pool poisoned"))?);
        for c in conns {
            c.close().map_err(|(_, e)| e)?;
        }
        Ok(())
    }
}
