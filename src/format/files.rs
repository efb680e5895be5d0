//! Every name in a store directory, made and parsed here and nowhere else.
//!
//! ```text
//! <store>/
//!   LOCK                                    held by the opener (never read)
//!   STORE                                   the identity (STORE.tmp while it is created)
//!   DURABLE                                 the writer's durable (epoch, LSN), for followers
//!                                           (DURABLE.tmp while it is created)
//!   snapshot-<lsn, 20 digits>.snap          a snapshot (…snap.tmp while it is written)
//!   wal/<segment no, 20 digits>.wal         a log segment
//!   wal/<segment>.wal.torn-<offset>[.<n>]   bytes cut off a torn tail, kept for forensics
//! <backup parent>/backup-<unix ms, 20 digits>/   a rotated backup (a store directory)
//! ```
//! Numbers are zero-padded to 20 digits, so names sort in numeric order.

/// The lock file, taken by the opener for as long as the store is open.
pub const LOCK_FILE: &str = "LOCK";
/// The identity file (see [`StoreIdentity`](super::StoreIdentity)).
pub const IDENTITY_FILE: &str = "STORE";
/// The identity file while it is being created.
pub const IDENTITY_TMP_FILE: &str = "STORE.tmp";
/// The writer's durable position (see [`DurableMark`](super::DurableMark)), read by followers.
pub const DURABLE_FILE: &str = "DURABLE";
/// The durable-position file while it is created.
pub const DURABLE_TMP_FILE: &str = "DURABLE.tmp";
/// The log directory.
pub const WAL_DIR: &str = "wal";
/// Suffix of a file being written (a snapshot); leftovers from a crash are removed at open.
pub const TMP_SUFFIX: &str = ".tmp";
/// Prefix of a rotated backup directory; the rest is the backup time in ms, 20 digits.
pub const BACKUP_DIR_PREFIX: &str = "backup-";

const SEGMENT_SUFFIX: &str = ".wal";
const SNAPSHOT_PREFIX: &str = "snapshot-";
const SNAPSHOT_SUFFIX: &str = ".snap";
const TORN_INFIX: &str = ".torn-";

/// Digits of every number in a file name.
const NAME_DIGITS: usize = 20;
const _: () = assert!(u64::MAX.ilog10() as usize + 1 == NAME_DIGITS);

/// `20 digits` → the number; `None` for anything else.
fn parse_digits(digits: &str) -> Option<u64> {
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// File name of segment `segment_no`: 20 zero-padded decimal digits and `.wal`, so names sort
/// in segment order.
pub fn segment_file_name(segment_no: u64) -> String {
    format!("{segment_no:020}{SEGMENT_SUFFIX}")
}

/// Parses a segment file name back into its number; `None` for any other file.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    parse_digits(name.strip_suffix(SEGMENT_SUFFIX)?)
}

/// File name of the snapshot at `lsn`: `snapshot-` + 20 zero-padded digits + `.snap`.
pub fn snapshot_file_name(lsn: u64) -> String {
    format!("{SNAPSHOT_PREFIX}{lsn:020}{SNAPSHOT_SUFFIX}")
}

/// Parses a snapshot file name back into its LSN; `None` for any other file.
pub fn parse_snapshot_file_name(name: &str) -> Option<u64> {
    parse_digits(name.strip_prefix(SNAPSHOT_PREFIX)?.strip_suffix(SNAPSHOT_SUFFIX)?)
}

/// The name a snapshot has while it is written.
pub fn snapshot_tmp_file_name(lsn: u64) -> String {
    format!("{}{TMP_SUFFIX}", snapshot_file_name(lsn))
}

/// Whether `name` is a snapshot temp file (a leftover of an interrupted write).
pub fn is_snapshot_tmp_file_name(name: &str) -> bool {
    name.starts_with(SNAPSHOT_PREFIX) && name.ends_with(TMP_SUFFIX)
}

/// Name of the file holding the bytes cut from segment `segment_no` at `offset`; `attempt`
/// 0 is the plain name, later ones add `.<attempt>` so an earlier cut is never overwritten.
pub fn torn_file_name(segment_no: u64, offset: u64, attempt: u32) -> String {
    let base = format!("{}{TORN_INFIX}{offset}", segment_file_name(segment_no));
    if attempt == 0 {
        base
    } else {
        format!("{base}.{attempt}")
    }
}

/// Whether `name` is a file of bytes cut from a torn tail.
pub fn is_torn_file_name(name: &str) -> bool {
    name.contains(&format!("{SEGMENT_SUFFIX}{TORN_INFIX}"))
}

/// Name of a rotated backup directory taken at `unix_ms`.
pub fn backup_dir_name(unix_ms: u64) -> String {
    format!("{BACKUP_DIR_PREFIX}{unix_ms:020}")
}

/// Parses a rotated backup directory name back into its time in ms; `None` for any other.
pub fn parse_backup_dir_name(name: &str) -> Option<u64> {
    parse_digits(name.strip_prefix(BACKUP_DIR_PREFIX)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_and_nothing_else_does() {
        assert_eq!(parse_segment_file_name(&segment_file_name(7)), Some(7));
        assert_eq!(parse_snapshot_file_name(&snapshot_file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_backup_dir_name(&backup_dir_name(12)), Some(12));
        assert_eq!(parse_segment_file_name(&torn_file_name(7, 64, 0)), None);
        assert_eq!(parse_snapshot_file_name(&snapshot_tmp_file_name(3)), None);
        assert!(is_snapshot_tmp_file_name(&snapshot_tmp_file_name(3)));
        assert!(!is_snapshot_tmp_file_name(&snapshot_file_name(3)));
        assert!(is_torn_file_name(&torn_file_name(9, 1, 2)));
        assert_eq!(torn_file_name(9, 64, 2), format!("{}.torn-64.2", segment_file_name(9)));
        assert_eq!(parse_segment_file_name("7.wal"), None);
        assert_eq!(parse_backup_dir_name("backup-1"), None);
    }
}
