//! The pattern users have today: the whole collection as one JSON object in
//! one file, rewritten on every mutation.
//!
//! The durable variant writes the whole map to a temp file, fsyncs it, renames
//! it over the old file and fsyncs the directory; the unsafe variant does the
//! same without any fsync. A mutex serializes everything, as in the typical
//! application that wraps its state in `Mutex<HashMap>`.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{anyhow, Context, Result};
use serde_json::{Map, Value};

use crate::kv::Kv;

/// Name of the collection file inside the store directory.
const FILE_NAME: &str = "collection.json";
/// Name of the temp file the new version is written to before the rename.
const TMP_NAME: &str = "collection.json.tmp";
/// Write buffer for serializing the collection.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// One JSON file holding every document.
pub struct JsonFile {
    dir: PathBuf,
    fsync: bool,
    map: Mutex<Map<String, Value>>,
}

impl JsonFile {
    /// Opens `dir/collection.json`, reading the whole collection into memory.
    pub fn open(dir: &Path, fsync: bool) -> Result<Self> {
        fs::create_dir_all(dir)?;
        let path = dir.join(FILE_NAME);
        let map = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).context("parse collection")?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(e.into()),
        };
        Ok(Self { dir: dir.to_owned(), fsync, map: Mutex::new(map) })
    }

    /// Rewrites the whole file from `map` (the caller holds the lock).
    fn persist(&self, map: &Map<String, Value>) -> Result<()> {
        let tmp = self.dir.join(TMP_NAME);
        let file = File::create(&tmp)?;
        let mut w = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
        serde_json::to_writer(&mut w, map)?;
        w.flush()?;
        let file = w.into_inner().map_err(|e| anyhow!("flush: {e}"))?;
        if self.fsync {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(&tmp, self.dir.join(FILE_NAME))?;
        if self.fsync {
            File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Map<String, Value>>> {
        self.map.lock().map_err(|_| anyhow!("json map lock poisoned"))
    }
}

impl Kv for JsonFile {
    fn put(&self, key: &str, doc: &Value) -> Result<()> {
        let mut map = self.lock()?;
        map.insert(key.to_owned(), doc.clone());
        self.persist(&map)
    }

    fn get(&self, key: &str) -> Result<Option<Value>> {
        Ok(self.lock()?.get(key).cloned())
    }

    fn read_modify_write(&self, key: &str, f: &dyn Fn(Option<Value>) -> Value) -> Result<()> {
        let mut map = self.lock()?;
        let new = f(map.get(key).cloned());
        map.insert(key.to_owned(), new);
        self.persist(&map)
    }

    fn load(&self, docs: &mut dyn Iterator<Item = (String, Value)>) -> Result<()> {
        let mut map = self.lock()?;
        map.extend(docs);
        self.persist(&map)
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}
