//! What a name may be: collections, rate limiters and breakers follow one rule.

use crate::error::{Error, LimitKind, Result};
use crate::limits::{MAX_COLLECTION_NAME_BYTES, MAX_KEY_BYTES_LIMIT, MAX_OBJECT_NAME_BYTES};

/// Checks a name (collection, limiter, breaker): 1 to `max_bytes` bytes of `[A-Za-z0-9_.-]`,
/// other than `.` and `..`. Every path that takes a name (reads, writes, counts, validators,
/// handles) goes through here, so every path refuses the same names with the same error.
pub(crate) fn check_name(what: LimitKind, name: &str, max_bytes: usize) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidName { what, name: String::new(), reason: "must not be empty" });
    }
    if name.len() > max_bytes {
        return Err(Error::TooLarge { what, size: name.len(), limit: max_bytes });
    }
    if name == "." || name == ".." {
        // Names become path components in tools and exports; these two would walk the tree.
        return Err(Error::InvalidName {
            what,
            name: name.to_owned(),
            reason: "'.' and '..' are not names",
        });
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
        return Err(Error::InvalidName {
            what,
            name: name.to_owned(),
            reason: "only A-Z, a-z, 0-9, '_', '.' and '-' are allowed",
        });
    }
    Ok(())
}

pub(crate) fn check_collection(name: &str) -> Result<()> {
    check_name(LimitKind::CollectionName, name, MAX_COLLECTION_NAME_BYTES)
}

/// Checks a limiter or breaker name: 1 to [`MAX_OBJECT_NAME_BYTES`] bytes of `[A-Za-z0-9_.-]`,
/// the rule collection names follow too.
pub(crate) fn check_object_name(what: LimitKind, name: &str) -> Result<()> {
    check_name(what, name, MAX_OBJECT_NAME_BYTES)
}

/// Checks a key: non-empty, at most `max_key_bytes` (capped at [`MAX_KEY_BYTES_LIMIT`]).
pub(crate) fn check_key(key: &str, max_key_bytes: usize) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidName {
            what: LimitKind::Key,
            name: String::new(),
            reason: "must not be empty",
        });
    }
    let limit = max_key_bytes.min(MAX_KEY_BYTES_LIMIT);
    if key.len() > limit {
        return Err(Error::TooLarge { what: LimitKind::Key, size: key.len(), limit });
    }
    Ok(())
}
