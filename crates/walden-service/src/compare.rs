//! The comparison backends for the load run: documents the way services keep them without
//! walden. Both check a precondition and write under one lock, and both take versions from
//! one counter that is stored with the documents, so versions never repeat for a key.
//!
//! - [`JsonFileDocs`]: every document in one JSON file, rewritten per write: temporary file,
//!   fsync, rename over the old one, fsync of the directory.
//! - `SqliteDocs` (feature `bench-backends`): one SQLite table, `journal_mode=WAL`,
//!   `synchronous=FULL`, one transaction per write.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::docs::{holds, Doc, DocError, DocResult, Documents, Precondition, Written};

/// The JSON file's name in the data directory.
pub const JSON_FILE_NAME: &str = "documents.json";

#[derive(Serialize, Deserialize, Default)]
struct JsonFile {
    /// The last version handed out, by any document.
    last_version: u64,
    /// collection → key → document.
    docs: BTreeMap<String, BTreeMap<String, Entry>>,
}

#[derive(Serialize, Deserialize, Clone)]
struct Entry {
    version: u64,
    doc: Box<RawValue>,
}

/// Every document in one JSON file, rewritten atomically per write.
pub struct JsonFileDocs {
    dir: PathBuf,
    state: Mutex<JsonFile>,
}

fn backend_err(what: &str, path: &Path, e: impl std::fmt::Display) -> DocError {
    DocError::Backend(format!("{what} {}: {e}", path.display()))
}

impl JsonFileDocs {
    /// Opens (or creates) `dir/documents.json`.
    pub fn open(dir: &Path) -> DocResult<JsonFileDocs> {
        let path = dir.join(JSON_FILE_NAME);
        let state = match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| backend_err("parse", &path, e))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => JsonFile::default(),
            Err(e) => return Err(backend_err("read", &path, e)),
        };
        Ok(JsonFileDocs { dir: dir.to_owned(), state: Mutex::new(state) })
    }

    /// Writes the whole state: temporary file, fsync, rename, directory fsync.
    fn persist(&self, state: &JsonFile) -> DocResult<()> {
        let path = self.dir.join(JSON_FILE_NAME);
        let tmp = self.dir.join(format!("{JSON_FILE_NAME}.tmp"));
        let bytes = serde_json::to_vec(state).map_err(|e| backend_err("encode", &path, e))?;
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| backend_err("write", &path, e))
    }

    /// Applies `change` to a copy of the collection's entry, persists, then keeps it.
    fn write(
        &self,
        collection: &str,
        key: &str,
        pre: &Precondition,
        new: Option<&RawValue>,
    ) -> DocResult<Written> {
        let mut st = self.state.lock();
        let current = st.docs.get(collection).and_then(|c| c.get(key)).map(|e| e.version);
        if !holds(pre, current) {
            return Ok(Written::PreconditionFailed);
        }
        if new.is_none() && current.is_none() {
            return Ok(Written::NotFound);
        }
        let before = (st.last_version, st.docs.get(collection).and_then(|c| c.get(key)).cloned());
        let col = st.docs.entry(collection.to_owned()).or_default();
        let outcome = match new {
            Some(doc) => {
                let version = before.0 + 1;
                col.insert(key.to_owned(), Entry { version, doc: doc.to_owned() });
                st.last_version = version;
                Written::Stored { version, created: current.is_none() }
            }
            None => {
                col.remove(key);
                Written::Deleted
            }
        };
        if let Err(e) = self.persist(&st) {
            // Nothing was acknowledged: put the old entry back.
            let col = st.docs.entry(collection.to_owned()).or_default();
            match before.1 {
                Some(entry) => col.insert(key.to_owned(), entry),
                None => col.remove(key),
            };
            st.last_version = before.0;
            return Err(e);
        }
        Ok(outcome)
    }
}

impl Documents for JsonFileDocs {
    fn name(&self) -> &'static str {
        "json-file"
    }

    fn get(&self, collection: &str, key: &str) -> DocResult<Option<Doc>> {
        let st = self.state.lock();
        let entry = st.docs.get(collection).and_then(|c| c.get(key));
        Ok(entry.map(|e| Doc { json: e.doc.clone(), version: e.version }))
    }

    fn put(&self, c: &str, k: &str, json: &RawValue, pre: &Precondition) -> DocResult<Written> {
        self.write(c, k, pre, Some(json))
    }

    fn delete(&self, c: &str, k: &str, pre: &Precondition) -> DocResult<Written> {
        self.write(c, k, pre, None)
    }

    fn close(&self) -> DocResult<()> {
        Ok(()) // every write was already durable
    }
}

#[cfg(feature = "bench-backends")]
pub use sqlite::SqliteDocs;

#[cfg(feature = "bench-backends")]
mod sqlite {
    use super::*;
    use rusqlite::{params, Connection, OptionalExtension};

    /// The SQLite database's name in the data directory.
    pub const SQLITE_FILE_NAME: &str = "documents.sqlite";

    /// Documents in one SQLite table (WAL, synchronous=FULL), one transaction per write.
    pub struct SqliteDocs {
        conn: Mutex<Connection>,
    }

    fn sql_err(e: rusqlite::Error) -> DocError {
        DocError::Backend(format!("sqlite: {e}"))
    }

    impl SqliteDocs {
        /// Opens (or creates) `dir/documents.sqlite`.
        pub fn open(dir: &Path) -> DocResult<SqliteDocs> {
            let conn = Connection::open(dir.join(SQLITE_FILE_NAME)).map_err(sql_err)?;
            conn.execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
                 CREATE TABLE IF NOT EXISTS docs (collection TEXT NOT NULL, key TEXT NOT NULL,
                   version INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (collection, key));
                 CREATE TABLE IF NOT EXISTS last_version (id INTEGER PRIMARY KEY CHECK (id = 0),
                   version INTEGER NOT NULL);
                 INSERT OR IGNORE INTO last_version VALUES (0, 0);",
            )
            .map_err(sql_err)?;
            Ok(SqliteDocs { conn: Mutex::new(conn) })
        }

        fn write(
            &self,
            c: &str,
            k: &str,
            pre: &Precondition,
            new: Option<&RawValue>,
        ) -> DocResult<Written> {
            let mut conn = self.conn.lock();
            let tx = conn.transaction().map_err(sql_err)?;
            let current: Option<u64> = tx
                .query_row(
                    "SELECT version FROM docs WHERE collection=?1 AND key=?2",
                    params![c, k],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql_err)?;
            if !holds(pre, current) {
                return Ok(Written::PreconditionFailed);
            }
            let outcome = match new {
                None if current.is_none() => return Ok(Written::NotFound),
                None => {
                    tx.execute("DELETE FROM docs WHERE collection=?1 AND key=?2", params![c, k])
                        .map_err(sql_err)?;
                    Written::Deleted
                }
                Some(doc) => {
                    let version: u64 = tx
                        .query_row(
                            "UPDATE last_version SET version = version + 1 RETURNING version",
                            [],
                            |r| r.get(0),
                        )
                        .map_err(sql_err)?;
                    tx.execute(
                        "INSERT INTO docs VALUES (?1, ?2, ?3, ?4) ON CONFLICT (collection, key)
                         DO UPDATE SET version = excluded.version, doc = excluded.doc",
                        params![c, k, version, doc.get()],
                    )
                    .map_err(sql_err)?;
                    Written::Stored { version, created: current.is_none() }
                }
            };
            tx.commit().map_err(sql_err)?;
            Ok(outcome)
        }
    }

    impl Documents for SqliteDocs {
        fn name(&self) -> &'static str {
            "sqlite"
        }

        fn get(&self, c: &str, k: &str) -> DocResult<Option<Doc>> {
            let conn = self.conn.lock();
            let row: Option<(u64, String)> = conn
                .query_row(
                    "SELECT version, doc FROM docs WHERE collection=?1 AND key=?2",
                    params![c, k],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(sql_err)?;
            row.map(|(version, doc)| {
                let json =
                    RawValue::from_string(doc).map_err(|e| DocError::Backend(e.to_string()))?;
                Ok(Doc { json, version })
            })
            .transpose()
        }

        fn put(&self, c: &str, k: &str, json: &RawValue, pre: &Precondition) -> DocResult<Written> {
            self.write(c, k, pre, Some(json))
        }

        fn delete(&self, c: &str, k: &str, pre: &Precondition) -> DocResult<Written> {
            self.write(c, k, pre, None)
        }

        fn close(&self) -> DocResult<()> {
            Ok(()) // every transaction was committed with synchronous=FULL
        }
    }
}
