//! Where the service keeps its documents: walden, or (for the load comparison) a JSON file
//! rewritten per write or SQLite. Every backend answers the same conditional operations, and
//! every backend's versions never repeat for a key, so an ETag built from one never matches a
//! different document that later sits at the same key.

use serde_json::value::RawValue;
use std::sync::Arc;

use walden::api::{Backend, DocumentsExt};

/// Why a backend call failed.
#[derive(Debug)]
pub enum DocError {
    /// walden refused or failed.
    Store(walden::Error),
    /// A comparison backend failed (its I/O or SQLite error, as text).
    Backend(String),
}

impl From<walden::Error> for DocError {
    fn from(e: walden::Error) -> Self {
        DocError::Store(e)
    }
}

impl std::fmt::Display for DocError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DocError::Store(e) => e.fmt(f),
            DocError::Backend(e) => f.write_str(e),
        }
    }
}

/// What the backends return.
pub type DocResult<T> = Result<T, DocError>;

/// Whether `pre` holds for a document currently at `current` (for backends that check and
/// write under one lock).
pub fn holds(pre: &Precondition, current: Option<u64>) -> bool {
    match pre {
        Precondition::None => true,
        Precondition::IfMatch(versions) => current.is_some_and(|v| versions.contains(&v)),
        Precondition::IfExists => current.is_some(),
        Precondition::IfAbsent => current.is_none(),
    }
}

/// A stored document: its JSON text and version.
#[derive(Debug, Clone)]
pub struct Doc {
    pub json: Box<RawValue>,
    pub version: u64,
}

/// The precondition of a write, from `If-Match` / `If-None-Match`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// None: write whatever is there.
    None,
    /// `If-Match: "3", "4"`: the document exists at one of these versions.
    IfMatch(Vec<u64>),
    /// `If-Match: *`: the document exists.
    IfExists,
    /// `If-None-Match: *`: the document does not exist (create only).
    IfAbsent,
}

/// How a write went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Stored at this version; `created` when the key was absent (known for create-only).
    Stored { version: u64, created: bool },
    /// Deleted.
    Deleted,
    /// Nothing to delete.
    NotFound,
    /// The precondition did not hold; nothing was written.
    PreconditionFailed,
}

/// A document store the handlers use. Calls block (they wait for fsyncs): run them on the
/// blocking pool.
pub trait Documents: Send + Sync + 'static {
    /// The backend's name, for `/health` and the load report.
    fn name(&self) -> &'static str;
    /// Reads a document.
    fn get(&self, collection: &str, key: &str) -> DocResult<Option<Doc>>;
    /// Writes a document under a precondition.
    fn put(
        &self,
        collection: &str,
        key: &str,
        json: &RawValue,
        pre: &Precondition,
    ) -> DocResult<Written>;
    /// Deletes a document under a precondition.
    fn delete(&self, collection: &str, key: &str, pre: &Precondition) -> DocResult<Written>;
    /// Makes everything durable and releases the backend's files.
    fn close(&self) -> DocResult<()>;
}

/// How often a write with `If-Match: *` retries when the document changed between its read
/// and its compare-and-set (it still exists, so the precondition still holds).
const IF_EXISTS_ATTEMPTS: usize = 8;

/// Documents in walden, through the shared interface (the embedded store here; any
/// `walden::api::Backend` works), in the collections named in the URL.
pub struct WaldenDocs {
    pub backend: Arc<dyn Backend>,
}

impl WaldenDocs {
    fn version(&self, collection: &str, key: &str) -> DocResult<Option<u64>> {
        Ok(self.backend.get::<Box<RawValue>>(collection, key)?.map(|d| d.version))
    }

    /// The version a conditional write must find, or `None` when the precondition fails now.
    fn expected(&self, collection: &str, key: &str, pre: &Precondition) -> DocResult<Option<u64>> {
        Ok(match pre {
            Precondition::IfMatch(versions) if versions.len() == 1 => Some(versions[0]),
            Precondition::IfMatch(versions) => {
                self.version(collection, key)?.filter(|v| versions.contains(v))
            }
            Precondition::IfExists => self.version(collection, key)?,
            Precondition::None | Precondition::IfAbsent => unreachable!("not a version match"),
        })
    }
}

fn conflict<T>(r: walden::Result<T>) -> DocResult<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(walden::Error::Conflict { .. } | walden::Error::AlreadyExists { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl Documents for WaldenDocs {
    fn name(&self) -> &'static str {
        "walden"
    }

    fn get(&self, collection: &str, key: &str) -> DocResult<Option<Doc>> {
        let doc = self.backend.get::<Box<RawValue>>(collection, key)?;
        Ok(doc.map(|d| Doc { json: d.value, version: d.version }))
    }

    fn put(
        &self,
        collection: &str,
        key: &str,
        json: &RawValue,
        pre: &Precondition,
    ) -> DocResult<Written> {
        let stored = |version, created| Written::Stored { version, created };
        match pre {
            Precondition::None => Ok(stored(self.backend.put(collection, key, json)?, false)),
            Precondition::IfAbsent => Ok(conflict(self.backend.insert(collection, key, json))?
                .map_or(Written::PreconditionFailed, |v| stored(v, true))),
            _ => {
                let attempts = if *pre == Precondition::IfExists { IF_EXISTS_ATTEMPTS } else { 1 };
                for _ in 0..attempts {
                    let Some(expected) = self.expected(collection, key, pre)? else { break };
                    let r = self.backend.put_if_version(collection, key, json, expected);
                    if let Some(version) = conflict(r)? {
                        return Ok(stored(version, false));
                    }
                }
                Ok(Written::PreconditionFailed)
            }
        }
    }

    fn delete(&self, collection: &str, key: &str, pre: &Precondition) -> DocResult<Written> {
        match pre {
            Precondition::None => Ok(match self.backend.delete(collection, key)? {
                Some(_) => Written::Deleted,
                None => Written::NotFound,
            }),
            Precondition::IfAbsent => Ok(Written::PreconditionFailed),
            _ => {
                let attempts = if *pre == Precondition::IfExists { IF_EXISTS_ATTEMPTS } else { 1 };
                for _ in 0..attempts {
                    let Some(expected) = self.expected(collection, key, pre)? else { break };
                    let r = self.backend.delete_if_version(collection, key, expected);
                    if conflict(r)?.is_some() {
                        return Ok(Written::Deleted);
                    }
                }
                Ok(Written::PreconditionFailed)
            }
        }
    }

    fn close(&self) -> DocResult<()> {
        Ok(self.backend.sync()?) // the store itself is closed by its opener
    }
}
