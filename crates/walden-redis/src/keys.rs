//! Every Redis key walden uses, made here and nowhere else.
//!
//! | what | key | type |
//! |---|---|---|
//! | a document | `{NS:d:COLLECTION}:k:KEY` | hash `v` version, `t` write time (ns), `j` JSON |
//! | a collection's key index | `{NS:d:COLLECTION}:i` | sorted set, every score 0, members the keys |
//! | a collection's version floor | `{NS:d:COLLECTION}:f` | string: highest version ever deleted |
//! | a rate limiter key's TAT | `NS:r:LIMITER:{KEY}` | string (ns), expires when idle |
//! | a circuit breaker | `NS:b:{BREAKER}` | hash |
//!
//! The part in braces is the Redis Cluster hash tag: a collection's documents, index and floor
//! share one slot, so one script can change them together; limiter keys spread over the slots;
//! a breaker is one key. Namespaces, collection, limiter and breaker names are `[A-Za-z0-9_.-]`,
//! so they never contain a brace or a colon.

use std::ops::Bound;

/// Key builder for one namespace.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    ns: String,
}

impl Keys {
    pub(crate) fn new(ns: &str) -> Keys {
        Keys { ns: ns.to_owned() }
    }

    fn collection_tag(&self, collection: &str) -> String {
        format!("{{{}:d:{collection}}}", self.ns)
    }

    /// Prefix of every document key of `collection` (the key follows).
    pub(crate) fn doc_prefix(&self, collection: &str) -> String {
        format!("{}:k:", self.collection_tag(collection))
    }

    pub(crate) fn doc(&self, collection: &str, key: &str) -> String {
        format!("{}{key}", self.doc_prefix(collection))
    }

    pub(crate) fn index(&self, collection: &str) -> String {
        format!("{}:i", self.collection_tag(collection))
    }

    pub(crate) fn floor(&self, collection: &str) -> String {
        format!("{}:f", self.collection_tag(collection))
    }

    /// `SCAN` pattern matching every collection index.
    pub(crate) fn index_pattern(&self) -> String {
        format!("{{{}:d:*}}:i", self.ns)
    }

    /// The collection an index key belongs to, if `key` is one.
    pub(crate) fn collection_of_index<'a>(&self, key: &'a str) -> Option<&'a str> {
        let name = key.strip_prefix('{')?.strip_prefix(self.ns.as_str())?.strip_prefix(":d:")?;
        let name = name.strip_suffix("}:i")?;
        name.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            .then_some(name)
    }

    pub(crate) fn limiter(&self, limiter: &str, key: &str) -> String {
        format!("{}:r:{limiter}:{{{key}}}", self.ns)
    }

    pub(crate) fn breaker(&self, name: &str) -> String {
        format!("{}:b:{{{name}}}", self.ns)
    }
}

/// A lower bound as a `ZRANGEBYLEX` argument.
pub(crate) fn lex_min(b: Bound<&str>) -> Vec<u8> {
    match b {
        Bound::Included(s) => [b"[", s.as_bytes()].concat(),
        Bound::Excluded(s) => [b"(", s.as_bytes()].concat(),
        Bound::Unbounded => b"-".to_vec(),
    }
}

/// An upper bound as a `ZRANGEBYLEX` argument; with a prefix and no end, the end of the prefix
/// (0xFF never occurs in UTF-8, so every key with the prefix sorts below prefix + 0xFF).
pub(crate) fn lex_max(end: &Bound<String>, prefix: &str) -> Vec<u8> {
    match end {
        Bound::Included(s) => [b"[", s.as_bytes()].concat(),
        Bound::Excluded(s) => [b"(", s.as_bytes()].concat(),
        Bound::Unbounded if prefix.is_empty() => b"+".to_vec(),
        Bound::Unbounded => [b"(", prefix.as_bytes(), b"\xff"].concat(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_keys_share_one_hash_tag_and_parse_back() {
        let k = Keys::new("app");
        assert_eq!(k.doc("users", "ada"), "{app:d:users}:k:ada");
        assert_eq!(k.index("users"), "{app:d:users}:i");
        assert_eq!(k.floor("users"), "{app:d:users}:f");
        assert_eq!(k.collection_of_index("{app:d:users}:i"), Some("users"));
        // A document key that happens to end like an index is not one.
        assert_eq!(k.collection_of_index("{app:d:users}:k:x}:i"), None);
        assert_eq!(k.limiter("login", "ip:1"), "app:r:login:{ip:1}");
        assert_eq!(k.breaker("db"), "app:b:{db}");
    }
}
