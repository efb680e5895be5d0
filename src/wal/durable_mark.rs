//! Publishing the durable position for followers: the `DURABLE` file.
//!
//! After every fsync of the log the segment writer (only the commit leader touches it, so
//! publications are ordered) rewrites the file's 48 bytes in place with one `pwrite`: its
//! epoch and the last LSN the fsync covered. No fsync of its own and no lock shared with any
//! reader: a follower reads the file with one `pread` per refresh and keeps its previous
//! position when the checksum fails. A failure to create or rewrite it never fails a commit
//! (the log is intact; only followers lag): the publisher stops and followers see no newer
//! position until the next open.
//!
//! The position a new epoch publishes at open is the end of what its recovery replayed, which
//! recovery makes durable before the epoch writes on (`docs/FORMAT.md`, "Recovery makes
//! durable what it replays").

use std::path::Path;

use crate::format::files::{DURABLE_FILE, DURABLE_TMP_FILE};
use crate::format::DurableMark;
use crate::io::{Io, IoMarkFile};

/// The writer's handle on the `DURABLE` file.
pub(crate) struct MarkPublisher {
    file: Option<Box<dyn IoMarkFile>>,
    store_id: [u8; 16],
    epoch: u64,
    published_lsn: u64,
}

impl MarkPublisher {
    /// Creates (or replaces) `<dir>/DURABLE` for the writer of `epoch`, whose next record
    /// will carry `next_lsn`: everything before it (what recovery replayed and made durable)
    /// is published durable. A failure leaves a publisher that publishes nothing.
    pub fn create(
        io: &dyn Io,
        dir: &Path,
        store_id: [u8; 16],
        (epoch, next_lsn): (u64, u64),
    ) -> Self {
        let lsn = next_lsn - 1;
        let bytes = DurableMark { store_id, epoch, lsn }.encode();
        let file =
            io.create_mark(&dir.join(DURABLE_FILE), &dir.join(DURABLE_TMP_FILE), &bytes).ok();
        MarkPublisher { file, store_id, epoch, published_lsn: lsn }
    }

    /// Publishes that every record up to `lsn` is durable (called after an fsync returned).
    pub fn publish(&mut self, lsn: u64) {
        if lsn <= self.published_lsn {
            return;
        }
        let Some(file) = self.file.as_mut() else { return };
        let bytes = DurableMark { store_id: self.store_id, epoch: self.epoch, lsn }.encode();
        match file.write_at(&bytes, 0) {
            Ok(()) => self.published_lsn = lsn,
            Err(_) => self.file = None,
        }
    }
}
