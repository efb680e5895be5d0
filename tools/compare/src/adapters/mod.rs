//! One adapter per compared system, each implementing [`crate::kv::Kv`].

pub mod fjall_kv;
pub mod json_file;
pub mod redb_kv;
pub mod sqlite;
pub mod walden_kv;

/// Number of lock stripes used where a store has no atomic read-modify-write
/// of its own (fjall), so unrelated keys do not contend.
pub const RMW_LOCK_STRIPES: usize = 256;
