//! walden, with `Durability::Immediate` or `Durability::Buffered`.

use std::path::Path;

use anyhow::Result;

use crate::kv::Kv;

/// Collection the documents live in.
#[cfg(feature = "walden")]
const COLLECTION: &str = "docs";

/// Documents per batch in the (unmeasured) load phase.
#[cfg(feature = "walden")]
const LOAD_BATCH_DOCS: usize = 1_000;

/// Whether this build includes the walden adapter.
pub const AVAILABLE: bool = cfg!(feature = "walden");

/// Opens walden in `dir`, durable per write when `immediate`.
#[cfg(feature = "walden")]
pub fn open(dir: &Path, immediate: bool) -> Result<Box<dyn Kv>> {
    use walden::{Durability, Options, Store};
    let opts = Options {
        durability: if immediate { Durability::Immediate } else { Durability::Buffered },
        ..Options::default()
    };
    Ok(Box::new(Walden(Store::open_with(dir, opts)?)))
}

/// Always fails: this build has no walden adapter (enable the `walden` feature).
#[cfg(not(feature = "walden"))]
pub fn open(_dir: &Path, _immediate: bool) -> Result<Box<dyn Kv>> {
    anyhow::bail!("built without the `walden` feature")
}

/// A walden store.
#[cfg(feature = "walden")]
struct Walden(walden::Store);

#[cfg(feature = "walden")]
impl Kv for Walden {
    fn put(&self, key: &str, doc: &serde_json::Value) -> Result<()> {
        self.0.put(COLLECTION, key, doc)?;
        Ok(())
    }

    fn get(&self, key: &str) -> Result<Option<serde_json::Value>> {
        Ok(self.0.get::<serde_json::Value>(COLLECTION, key)?.map(|v| v.value))
    }

    fn read_modify_write(
        &self,
        key: &str,
        f: &dyn Fn(Option<serde_json::Value>) -> serde_json::Value,
    ) -> Result<()> {
        self.0.update::<serde_json::Value, _>(COLLECTION, key, |cur| Some(f(cur)))?;
        Ok(())
    }

    fn load(&self, docs: &mut dyn Iterator<Item = (String, serde_json::Value)>) -> Result<()> {
        let mut docs = docs.peekable();
        while docs.peek().is_some() {
            let mut batch = walden::Batch::new();
            for (k, d) in docs.by_ref().take(LOAD_BATCH_DOCS) {
                batch.put(COLLECTION, &k, &d);
            }
            self.0.commit(batch)?;
        }
        Ok(())
    }

    fn fsyncs(&self) -> Option<u64> {
        Some(self.0.stats().fsyncs)
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.0.close()?;
        Ok(())
    }
}
