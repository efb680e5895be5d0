//! The rules every backend applies before it writes anything: names, keys, sizes, batch
//! limits, validators. One copy of each rule, so the embedded store and a remote backend
//! refuse the same input with the same [`Error`].
//!
//! A remote backend turns a [`Batch`] into checked [`Operation`]s with [`Rules::prepare`],
//! then applies them atomically on its side.
//!
//! ```
//! use walden::api::{Rules, Validators};
//! use walden::{Batch, Error, LimitKind};
//! let rules = Rules::default();
//! let mut batch = Batch::new();
//! batch.put("bad name!", "k", &1);
//! let err = rules.prepare(batch, &Validators::default()).unwrap_err();
//! assert!(matches!(err, Error::InvalidName { what: LimitKind::CollectionName, .. }));
//! ```

use std::collections::HashMap;
use std::fmt;

use parking_lot::RwLock;

use crate::error::{Error, LimitKind, Result};
use crate::format::{batch_op_encoded_len, BATCH_COUNT_BYTES};
use crate::limits::{
    DEFAULT_MAX_DOCUMENT_BYTES, DEFAULT_MAX_KEY_BYTES, MAX_BATCH_OPS, MAX_COLLECTION_NAME_BYTES,
    MAX_RECORD_BODY_BYTES,
};
use crate::store::batch::{Cond, Op};
use crate::store::document::check_document;
use crate::store::names::{check_key, check_name, check_object_name};
use crate::{Batch, BreakerConfig, Decision, Durability, Options, Quota, Validator};

/// A version precondition of one [`Operation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// None: applies whatever the document's version.
    Any,
    /// The document must be absent (`insert`, or `expect_version(None)`).
    Absent,
    /// The document must exist at exactly this version.
    Version(u64),
    /// The caller read nothing (`put_expecting(.., None)`): the document must be absent, and
    /// finding one is a `Conflict` (not `AlreadyExists`), the shape every other mismatch has.
    NoneExpected,
}

impl Precondition {
    /// The version a failed precondition reports as expected (`None`: absent or any).
    pub fn expected(self) -> Option<u64> {
        match self {
            Precondition::Version(v) => Some(v),
            _ => None,
        }
    }
}

impl From<Cond> for Precondition {
    fn from(c: Cond) -> Precondition {
        match c {
            Cond::Any => Precondition::Any,
            Cond::Absent => Precondition::Absent,
            Cond::Version(v) | Cond::Expect(Some(v)) => Precondition::Version(v),
            Cond::Expect(None) => Precondition::NoneExpected,
        }
    }
}

/// What one checked operation does.
#[derive(Clone, PartialEq, Eq)]
pub enum OperationKind {
    /// Store this JSON text (already checked against size and validator).
    Put {
        /// The document's JSON encoding.
        json: Vec<u8>,
    },
    /// Delete the document if it exists.
    Delete,
    /// Write nothing; only the precondition matters.
    Check,
}

impl fmt::Debug for OperationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OperationKind::Put { json } => write!(f, "Put({} bytes)", json.len()),
            OperationKind::Delete => f.write_str("Delete"),
            OperationKind::Check => f.write_str("Check"),
        }
    }
}

/// One operation of a [`Batch`] after every rule held: what a backend applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Its collection (a valid name).
    pub collection: String,
    /// Its key (a valid key).
    pub key: String,
    /// What it does.
    pub kind: OperationKind,
    /// What must hold first.
    pub precondition: Precondition,
}

/// Validators by collection, for backends that keep them beside their connection.
/// A validator runs in the writing process, before anything is sent.
#[derive(Default)]
pub struct Validators {
    by_collection: RwLock<HashMap<String, Validator>>,
}

impl fmt::Debug for Validators {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.by_collection.read().keys()).finish()
    }
}

impl Validators {
    /// Installs (or replaces) the validator of `collection`.
    pub fn set(&self, collection: &str, validator: Validator) -> Result<()> {
        check_collection(collection)?;
        self.by_collection.write().insert(collection.to_owned(), validator);
        Ok(())
    }

    /// Removes the validator of `collection`, if any.
    pub fn clear(&self, collection: &str) {
        self.by_collection.write().remove(collection);
    }

    fn get(&self, collection: &str) -> Option<Validator> {
        self.by_collection.read().get(collection).cloned()
    }
}

/// Checks a collection name: 1 to [`MAX_COLLECTION_NAME_BYTES`] bytes of `[A-Za-z0-9_.-]`.
pub fn check_collection(name: &str) -> Result<()> {
    check_name(LimitKind::CollectionName, name, MAX_COLLECTION_NAME_BYTES)
}

/// Checks a rate limiter's name (the collection-name rule, up to
/// [`MAX_OBJECT_NAME_BYTES`](crate::MAX_OBJECT_NAME_BYTES)).
pub fn check_limiter_name(name: &str) -> Result<()> {
    check_object_name(LimitKind::LimiterName, name)
}

/// Checks a circuit breaker's name (the collection-name rule, up to
/// [`MAX_OBJECT_NAME_BYTES`](crate::MAX_OBJECT_NAME_BYTES)).
pub fn check_breaker_name(name: &str) -> Result<()> {
    check_object_name(LimitKind::BreakerName, name)
}

/// Checks a circuit breaker's configuration, as [`Store::breaker`](crate::Store::breaker)
/// does.
pub fn check_breaker_config(config: &BreakerConfig) -> Result<()> {
    config.validate()
}

/// Checks a quota: it can admit anything at all and its window fits the arithmetic.
pub fn check_quota(quota: &Quota) -> Result<()> {
    quota.validate()
}

/// Checks a quota and the cost `n` of one check against it, as the embedded limiter does
/// before a check (a cost the quota can never allow is refused).
pub fn check_cost(quota: &Quota, n: u32) -> Result<()> {
    quota.validate_cost(n)
}

/// The GCRA decision for a check of cost `n` (0: a peek) on a key whose stored theoretical
/// arrival time is `tat_unix_ns` (0: none), at `now_unix_ns`: the decision and, if cells were
/// consumed, the new TAT. The same arithmetic as the embedded limiter, so a remote backend that
/// keeps the TAT and decides atomically on its side reports the same [`Decision`] fields.
/// Requires a valid quota and `n ≤ burst` ([`check_cost`]).
pub fn gcra_decide(
    quota: &Quota,
    tat_unix_ns: u64,
    now_unix_ns: u64,
    n: u32,
) -> (Decision, Option<u64>) {
    crate::ratelimit::gcra::decide(quota, tat_unix_ns, now_unix_ns, n)
}

/// The size limits of one backend: the two that [`Options`] can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Largest key, in bytes (capped at [`MAX_KEY_BYTES_LIMIT`](crate::limits::MAX_KEY_BYTES_LIMIT)).
    pub max_key_bytes: usize,
    /// Largest document's JSON, in bytes (capped at [`MAX_RECORD_BODY_BYTES`]).
    pub max_document_bytes: usize,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            max_key_bytes: DEFAULT_MAX_KEY_BYTES,
            max_document_bytes: DEFAULT_MAX_DOCUMENT_BYTES,
        }
    }
}

impl Rules {
    /// The rules of a store opened with `options`.
    pub fn from_options(options: &Options) -> Rules {
        Rules {
            max_key_bytes: options.max_key_bytes,
            max_document_bytes: options.max_document_bytes,
        }
    }

    /// Checks a key: non-empty, at most `max_key_bytes`.
    pub fn check_key(&self, key: &str) -> Result<()> {
        check_key(key, self.max_key_bytes)
    }

    /// Checks a collection name and a key, in that order.
    pub fn check_target(&self, collection: &str, key: &str) -> Result<()> {
        check_collection(collection)?;
        self.check_key(key)
    }

    /// Checks every operation of `batch` in order (operation count, then per operation: name,
    /// key, JSON encoding, size, validator), then the size of the whole batch, exactly as the
    /// embedded store does before it logs anything. Returns the checked operations and the
    /// batch's own durability, if it set one.
    pub fn prepare(
        &self,
        batch: Batch,
        validators: &Validators,
    ) -> Result<(Vec<Operation>, Option<Durability>)> {
        if batch.ops.len() > MAX_BATCH_OPS {
            return Err(Error::TooLarge {
                what: LimitKind::BatchOps,
                size: batch.ops.len(),
                limit: MAX_BATCH_OPS,
            });
        }
        let max_doc = self.max_document_bytes.min(MAX_RECORD_BODY_BYTES);
        let mut out = Vec::with_capacity(batch.ops.len());
        let mut body_bytes = BATCH_COUNT_BYTES;
        for op in batch.ops {
            {
                let (collection, key) = op.target();
                self.check_target(collection, key)?;
            }
            let operation = match op {
                Op::Put { collection, key, json, cond } => {
                    let validator = validators.get(&collection);
                    let json =
                        check_document(&collection, &key, json, max_doc, validator.as_deref())?;
                    body_bytes += batch_op_encoded_len(&collection, &key, Some(&json));
                    let kind = OperationKind::Put { json };
                    Operation { collection, key, kind, precondition: cond.into() }
                }
                Op::Delete { collection, key, cond } => {
                    body_bytes += batch_op_encoded_len(&collection, &key, None);
                    let kind = OperationKind::Delete;
                    Operation { collection, key, kind, precondition: cond.into() }
                }
                Op::Check { collection, key, cond } => {
                    let kind = OperationKind::Check;
                    Operation { collection, key, kind, precondition: cond.into() }
                }
            };
            out.push(operation);
        }
        if body_bytes > MAX_RECORD_BODY_BYTES {
            return Err(Error::TooLarge {
                what: LimitKind::Record,
                size: body_bytes,
                limit: MAX_RECORD_BODY_BYTES,
            });
        }
        Ok((out, batch.durability))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_keeps_order_preconditions_and_json() {
        let mut b = Batch::new();
        b.put("c", "a", &1).insert("c", "b", &2).delete_if_version("c", "a", 7);
        b.expect_version("d", "x", None);
        let (ops, durability) = Rules::default().prepare(b, &Validators::default()).unwrap();
        assert_eq!(durability, None);
        let summary: Vec<_> =
            ops.iter().map(|o| (o.collection.as_str(), o.key.as_str(), o.precondition)).collect();
        assert_eq!(
            summary,
            [
                ("c", "a", Precondition::Any),
                ("c", "b", Precondition::Absent),
                ("c", "a", Precondition::Version(7)),
                ("d", "x", Precondition::Absent)
            ]
        );
        assert_eq!(ops[1].kind, OperationKind::Put { json: b"2".to_vec() });
    }

    #[test]
    fn prepare_refuses_what_the_store_refuses() {
        let rules = Rules { max_key_bytes: 4, max_document_bytes: 8 };
        let validators = Validators::default();
        validators.set("v", std::sync::Arc::new(|_: &serde_json::Value| Err("no".into()))).unwrap();
        let run = |f: &dyn Fn(&mut Batch)| {
            let mut b = Batch::new();
            f(&mut b);
            rules.prepare(b, &validators).unwrap_err()
        };
        assert!(matches!(
            run(&|b| {
                b.put("c", "", &1);
            }),
            Error::InvalidName { .. }
        ));
        assert!(matches!(
            run(&|b| {
                b.put("c", "kkkkk", &1);
            }),
            Error::TooLarge { .. }
        ));
        assert!(matches!(
            run(&|b| {
                b.put("c", "k", &"0123456789");
            }),
            Error::TooLarge { .. }
        ));
        assert!(matches!(
            run(&|b| {
                b.put("v", "k", &1);
            }),
            Error::Invalid { .. }
        ));
    }
}
