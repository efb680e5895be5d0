//! Snapshots: the whole live state as of one LSN, in one verified file.
//!
//! Written to `snapshot-<lsn>.snap.tmp`, fsynced, renamed to `snapshot-<lsn>.snap`, directory
//! fsynced; only then may the log segments it covers be deleted. Read back with
//! [`read_snapshot`], which verifies header, footer and every entry and never panics on any
//! bytes. The layout is in `docs/FORMAT.md`.

use std::path::{Path, PathBuf};

use crate::error::{CorruptionKind, Result};
use crate::format::{
    decode_frame_as, encode_frame,
    files::{is_snapshot_tmp_file_name, snapshot_tmp_file_name},
    parse_snapshot_file_name, snapshot_file_name, Frame, FrameFormat, RecordKind, SnapshotFooter,
    SnapshotHeader, SNAPSHOT_FOOTER_LEN, SNAPSHOT_HEADER_LEN, SNAPSHOT_MAGIC,
};
use crate::io::{Fs, Io};
use crate::limits::{MAX_RESYNC_SCAN_BYTES, SNAPSHOT_WRITE_CHUNK_BYTES};
use crate::wal::LenientItem;

/// Suffix of a snapshot being written; leftovers from a crash are removed at open.
pub use crate::format::files::TMP_SUFFIX as SNAPSHOT_TMP_SUFFIX;

/// One verified entry of a snapshot: a record frame (documents are one-put batches).
#[derive(Debug, Clone, Copy)]
pub struct SnapshotEntry<'a> {
    /// Byte offset of the entry in the file.
    pub offset: u64,
    /// The entry: for a document, the LSN and time of the write that produced this version.
    pub frame: Frame<'a>,
}

/// A record body that, replayed, recreates one piece of rate-limit or breaker state; what
/// those kinds contribute to a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotRecord {
    pub lsn: u64,
    pub timestamp_unix_ns: u64,
    pub body: Vec<u8>,
}

/// Why a snapshot was rejected, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotError {
    /// Byte offset of the problem.
    pub offset: u64,
    /// What is wrong.
    pub kind: CorruptionKind,
}

/// Verifies a whole snapshot file and hands every entry to `on_entry` in file order.
///
/// Checks the header, then the footer (so a file cut short is refused before any entry is
/// used), that header, footer and file length agree, every entry's checksum (seeded with this
/// snapshot's salt) and kind, and `expected_store_id` if given.
pub fn read_snapshot<'a>(
    bytes: &'a [u8],
    expected_store_id: Option<[u8; 16]>,
    on_entry: &mut dyn FnMut(&SnapshotEntry<'a>) -> Result<(), CorruptionKind>,
) -> std::result::Result<SnapshotHeader, SnapshotError> {
    let err = |offset: usize, kind| SnapshotError { offset: offset as u64, kind };
    let (header, format) = SnapshotHeader::decode_versioned(bytes).map_err(|k| err(0, k))?;
    if expected_store_id.is_some_and(|id| id != header.store_id) {
        return Err(err(0, CorruptionKind::ForeignStore));
    }
    if bytes.len() < SNAPSHOT_HEADER_LEN + SNAPSHOT_FOOTER_LEN {
        return Err(err(bytes.len(), CorruptionKind::ShortFooter));
    }
    let footer_at = bytes.len() - SNAPSHOT_FOOTER_LEN;
    let footer = SnapshotFooter::decode(&bytes[footer_at..]).map_err(|k| err(footer_at, k))?;
    let entry_bytes = (footer_at - SNAPSHOT_HEADER_LEN) as u64;
    if footer.entry_count != header.entry_count || footer.entry_bytes != entry_bytes {
        return Err(err(
            footer_at,
            CorruptionKind::BadBody(format!(
                "footer says {} entries in {} bytes, header says {} entries, file holds {} bytes",
                footer.entry_count, footer.entry_bytes, header.entry_count, entry_bytes
            )),
        ));
    }
    let salt = header.salt();
    let entries = &bytes[..footer_at];
    let mut offset = SNAPSHOT_HEADER_LEN;
    let mut count = 0u64;
    while offset < footer_at {
        let frame = decode_frame_as(&entries[offset..], salt, format)
            .map_err(|e| err(offset, CorruptionKind::BadRecord(e)))?;
        match RecordKind::from_u8(frame.kind) {
            None => return Err(err(offset, CorruptionKind::UnknownRecordKind(frame.kind))),
            Some(RecordKind::Close) => {
                let why = "a close marker is never a snapshot entry".to_owned();
                return Err(err(offset, CorruptionKind::BadBody(why)));
            }
            Some(_) => {}
        }
        on_entry(&SnapshotEntry { offset: offset as u64, frame }).map_err(|k| err(offset, k))?;
        offset += frame.len;
        count += 1;
    }
    if count != header.entry_count {
        return Err(err(
            footer_at,
            CorruptionKind::BadBody(format!(
                "{count} entries found, header says {}",
                header.entry_count
            )),
        ));
    }
    Ok(header)
}

/// Walks the entries of a snapshot without stopping at damage: salvage and forensics only. An
/// open takes a snapshot whole or not at all ([`read_snapshot`]).
///
/// `salt` and `max_lsn` come from the header when it verifies, otherwise from what the caller
/// knows (the store id in `STORE` and the LSN in the file name, see
/// [`snapshot_salt`](crate::format::snapshot_salt)). Entries are read from the end of the header
/// up to the footer, or up to the end of the file when the last bytes are not a valid footer. A
/// bad entry is reported as [`LenientItem::Damaged`]; the walk resumes at the next offset where
/// an entry verifies with `salt` and carries an LSN of at most `max_lsn` (entries of one
/// snapshot are in key order, so their LSNs are not consecutive), looking at most
/// [`MAX_RESYNC_SCAN_BYTES`] ahead. Checks no order and decodes no bodies.
pub fn walk_snapshot_lenient<'a>(
    bytes: &'a [u8],
    salt: u32,
    max_lsn: u64,
    on_item: &mut dyn FnMut(LenientItem<'a>),
) {
    let footer_ok = bytes.len() >= SNAPSHOT_HEADER_LEN + SNAPSHOT_FOOTER_LEN
        && SnapshotFooter::decode(&bytes[bytes.len() - SNAPSHOT_FOOTER_LEN..]).is_ok();
    let end = if footer_ok { bytes.len() - SNAPSHOT_FOOTER_LEN } else { bytes.len() };
    let entries = &bytes[..end];
    let format = lenient_frame_format(bytes);
    let mut offset = SNAPSHOT_HEADER_LEN;
    while offset < end {
        match decode_frame_as(&entries[offset..], salt, format) {
            Ok(frame) => {
                on_item(LenientItem::Record { offset: offset as u64, frame });
                offset += frame.len;
            }
            Err(error) => {
                let scan_end = end.min(offset.saturating_add(1 + MAX_RESYNC_SCAN_BYTES));
                let next = (offset + 1..scan_end)
                    .find(|&o| {
                        decode_frame_as(&entries[o..], salt, format).is_ok_and(|f| f.lsn <= max_lsn)
                    })
                    .unwrap_or(end);
                let len = (next - offset) as u64;
                on_item(LenientItem::Damaged { offset: offset as u64, len, error });
                offset = next;
            }
        }
    }
}

/// The frame layout of a possibly damaged snapshot: its header's, or the one its version field
/// names when the header does not verify, or the current one.
fn lenient_frame_format(bytes: &[u8]) -> FrameFormat {
    if let Ok((_, format)) = SnapshotHeader::decode_versioned(bytes) {
        return format;
    }
    let version = bytes.get(SNAPSHOT_MAGIC.len()..SNAPSHOT_MAGIC.len() + 2);
    version
        .and_then(|v| FrameFormat::of_version(u16::from_le_bytes([v[0], v[1]])))
        .unwrap_or(FrameFormat::V2)
}

/// A snapshot on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotInfo {
    pub lsn: u64,
    pub path: PathBuf,
    pub bytes: u64,
}

/// Receives one snapshot entry as `(kind, lsn, timestamp_unix_ns, body)`.
pub(crate) type EntrySink<'a> = dyn FnMut(RecordKind, u64, u64, &[u8]) -> Result<()> + 'a;

/// The entries a snapshot is written from: the snapshot knows record kinds and bytes, never
/// the state they describe.
pub(crate) trait SnapshotSource {
    /// How many entries [`SnapshotSource::for_each_entry`] hands over.
    fn entry_count(&self) -> u64;
    /// Hands every entry to `sink` as `(kind, lsn, timestamp_unix_ns, body)`.
    fn for_each_entry(&self, sink: &mut EntrySink<'_>) -> Result<()>;
}

/// Writes the entries of `source` as the snapshot at `lsn`: temp file, fsync, rename, fsync
/// directory.
pub(crate) fn write_snapshot(
    io: &dyn Io,
    dir: &Path,
    store_id: [u8; 16],
    epoch: u64,
    lsn: u64,
    source: &dyn SnapshotSource,
) -> Result<SnapshotInfo> {
    let name = snapshot_file_name(lsn);
    let path = dir.join(&name);
    let tmp_name = snapshot_tmp_file_name(lsn);
    let tmp = dir.join(&tmp_name);
    let header = SnapshotHeader { store_id, epoch, lsn, entry_count: source.entry_count() };
    let salt = header.salt();

    if Fs(io).list_dir(dir)?.contains(&tmp_name) {
        Fs(io).remove_file(&tmp)?;
    }
    let mut file = Fs(io).create_new(&tmp)?;
    let mut buf = Vec::with_capacity(SNAPSHOT_WRITE_CHUNK_BYTES + 4096);
    buf.extend_from_slice(&header.encode());
    let mut written = 0u64;
    let mut flush = |buf: &mut Vec<u8>, force: bool| -> Result<()> {
        if force || buf.len() >= SNAPSHOT_WRITE_CHUNK_BYTES {
            file.write_all(buf)?;
            written += buf.len() as u64;
            buf.clear();
        }
        Ok(())
    };
    let mut entry_bytes = 0u64;
    source.for_each_entry(&mut |kind, lsn, timestamp_unix_ns, body| {
        let before = buf.len();
        encode_frame(&mut buf, salt, lsn, timestamp_unix_ns, kind, body);
        entry_bytes += (buf.len() - before) as u64;
        flush(&mut buf, false)
    })?;
    buf.extend_from_slice(
        &SnapshotFooter { entry_count: header.entry_count, entry_bytes }.encode(),
    );
    flush(&mut buf, true)?;
    file.sync_data()?;
    drop(file);
    Fs(io).rename(&tmp, &path)?;
    Fs(io).sync_dir(dir)?;
    Ok(SnapshotInfo { lsn, path, bytes: written })
}

/// Removes, in name order, the snapshots of `dir` (whose entries are `names`) whose LSN
/// `doomed` picks and the temp files of interrupted snapshot writes, then fsyncs `dir` if
/// anything went. Returns the bytes of the removed snapshots (temp files not counted).
pub(crate) fn remove_snapshots(
    io: &dyn Io,
    dir: &Path,
    names: &[String],
    doomed: impl Fn(u64) -> bool,
) -> Result<u64> {
    let mut removed_bytes = 0;
    let mut removed = false;
    for name in names {
        let old = parse_snapshot_file_name(name).is_some_and(&doomed);
        if old || is_snapshot_tmp_file_name(name) {
            let path = dir.join(name);
            if old {
                removed_bytes += io.file_len(&path).unwrap_or(0);
            }
            Fs(io).remove_file(&path)?;
            removed = true;
        }
    }
    if removed {
        Fs(io).sync_dir(dir)?;
    }
    Ok(removed_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot of `lsns.len()` one-byte entries, and the offset of each entry.
    fn snapshot(lsns: &[u64]) -> (Vec<u8>, u32, Vec<usize>) {
        let header = SnapshotHeader {
            store_id: [7; 16],
            epoch: 1,
            lsn: 100,
            entry_count: lsns.len() as u64,
        };
        let salt = header.salt();
        let mut bytes = header.encode().to_vec();
        let mut offsets = Vec::new();
        for &lsn in lsns {
            offsets.push(bytes.len());
            encode_frame(&mut bytes, salt, lsn, 5, RecordKind::Batch, b"entry-body");
        }
        let entry_bytes = (bytes.len() - SNAPSHOT_HEADER_LEN) as u64;
        bytes.extend_from_slice(
            &SnapshotFooter { entry_count: lsns.len() as u64, entry_bytes }.encode(),
        );
        (bytes, salt, offsets)
    }

    fn walk(bytes: &[u8], salt: u32) -> (Vec<u64>, Vec<(u64, u64)>) {
        let (mut lsns, mut damaged) = (Vec::new(), Vec::new());
        walk_snapshot_lenient(bytes, salt, 100, &mut |item| match item {
            LenientItem::Record { frame, .. } => lsns.push(frame.lsn),
            LenientItem::Damaged { offset, len, .. } => damaged.push((offset, len)),
        });
        (lsns, damaged)
    }

    #[test]
    fn lenient_snapshot_walk_skips_one_damaged_entry_and_keeps_the_others() {
        // Entries in key order carry unordered LSNs: the resync must not expect a sequence.
        let (mut bytes, salt, offsets) = snapshot(&[40, 7, 93, 12]);
        assert_eq!(walk(&bytes, salt), (vec![40, 7, 93, 12], vec![]));
        bytes[offsets[1] + crate::format::RECORD_HEADER_LEN + 2] ^= 0x01;
        assert!(read_snapshot(&bytes, None, &mut |_| Ok(())).is_err());
        let (lsns, damaged) = walk(&bytes, salt);
        assert_eq!(lsns, [40, 93, 12]);
        assert_eq!(damaged, [(offsets[1] as u64, (offsets[2] - offsets[1]) as u64)]);
    }

    #[test]
    fn lenient_snapshot_walk_reads_entries_when_header_and_footer_are_damaged() {
        let (mut bytes, salt, offsets) = snapshot(&[3, 4]);
        bytes[10] ^= 0x01;
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        let (lsns, damaged) = walk(&bytes, salt);
        assert_eq!(lsns, [3, 4]);
        // The footer that does not verify is reported as damage up to the end of the file.
        let footer_at = (bytes.len() - SNAPSHOT_FOOTER_LEN) as u64;
        assert_eq!(damaged, [(footer_at, SNAPSHOT_FOOTER_LEN as u64)]);
        assert!(offsets[1] < footer_at as usize);
    }
}
