//! Read-only followers: other processes on the same machine read a live store.
//!
//! A [`Follower`] takes no lock and never writes, creates or removes anything. It loads the
//! newest snapshot and the log after it with the library's one reader, then keeps up with
//! [`Follower::refresh`], which reads only what the writer appended since the last call, or in
//! the background ([`Follower::follow`], [`Follower::wait_for`]). It applies only records the
//! writer has made durable: the writer publishes its durable `(epoch, LSN)` in the small
//! `DURABLE` file after every fsync, and anything beyond it, and any bytes that do not verify,
//! are "not yet". Its memory is one copy of the state (two for a moment while it reloads after a
//! compaction removed the segments it was reading, as the writer's compaction holds two).
//! The decisions are in [`tail`]'s table.

mod follow;
mod log_tail;
mod reads;
mod tail;

pub use log_tail::{LogTail, TailPoll};
pub use reads::FollowerStats;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::format::files::IDENTITY_FILE;
use crate::format::StoreIdentity;
use crate::io::{Fs, Io, IoOp, RealIo};
use crate::limits::DEFAULT_FOLLOW_POLL_INTERVAL_US;
use crate::state::State;
use tail::{Stop, Tail};

/// How a [`Follower`] reads.
#[derive(Debug, Clone)]
pub struct FollowerOptions {
    /// The file-system seam (a follower only lists, reads and `pread`s through it).
    pub io: Arc<dyn Io>,
    /// The wall clock, for limiter [`peek`](Follower::peek)s.
    pub clock: Arc<dyn Clock>,
    /// How often [`follow`](Follower::follow) and [`wait_for`](Follower::wait_for) look for
    /// newly durable records (each look is one 48-byte `pread`; zero: no pause between looks,
    /// a busy loop).
    pub poll_interval: Duration,
}

impl Default for FollowerOptions {
    fn default() -> FollowerOptions {
        FollowerOptions {
            io: Arc::new(RealIo),
            clock: Arc::new(SystemClock),
            poll_interval: Duration::from_micros(DEFAULT_FOLLOW_POLL_INTERVAL_US),
        }
    }
}

/// The background thread of [`Follower::follow`] and its stop flag.
pub(crate) struct Background {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
    /// The last refresh error the thread saw, reported by the next `wait_for`.
    error: Arc<Mutex<Option<Error>>>,
}

/// What readers see: the state as of `state.applied_lsn`.
pub(crate) struct View {
    pub state: State,
}

pub(crate) struct Shared {
    dir: PathBuf,
    options: FollowerOptions,
    view: RwLock<View>,
    tail: Mutex<Tail>,
    /// Notified whenever the view moves on.
    moved: (Mutex<()>, Condvar),
    background: Mutex<Option<Background>>,
}

/// A read-only view of a store that another process may be writing: documents, scans,
/// counts, limiter peeks, breaker health. Cheap to clone; `Send + Sync`.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use walden::{Follower, Store};
/// let store = Store::open(dir.path())?;
/// store.put("users", "ada", &"Ada")?;
/// let follower = Follower::open(dir.path())?; // no lock: the writer keeps running
/// assert_eq!(follower.get::<String>("users", "ada")?.unwrap().value, "Ada");
/// let v = store.put("users", "bob", &"Bob")?;
/// follower.refresh()?; // reads only what was appended since
/// assert_eq!(follower.get::<String>("users", "bob")?.unwrap().version, v);
/// # Ok::<(), walden::Error>(())
/// ```
#[derive(Clone)]
pub struct Follower {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower").field("dir", &self.shared.dir).finish_non_exhaustive()
    }
}

impl Follower {
    /// Opens the store in `path` read-only with default [`FollowerOptions`].
    pub fn open(path: impl AsRef<Path>) -> Result<Follower> {
        Follower::open_with(path, FollowerOptions::default())
    }

    /// Opens the store in `path` read-only: the newest snapshot plus the durable part of the
    /// log. Fails with [`Error::Io`] if the directory cannot be read (absent, or no
    /// permission), and with [`Error::Corruption`] if `STORE` does not verify or a verified
    /// record's body does not decode.
    pub fn open_with(path: impl AsRef<Path>, options: FollowerOptions) -> Result<Follower> {
        let dir = path.as_ref().to_path_buf();
        let store_id = read_identity(&*options.io, &dir)?;
        let mut tail = Tail::new(options.io.clone(), &dir, store_id);
        let limit = tail.durable_limit()?;
        let state = tail.load(limit)?.ok_or_else(|| changing(&dir))?;
        let shared = Arc::new(Shared {
            dir,
            options,
            view: RwLock::new(View { state }),
            tail: Mutex::new(tail),
            moved: (Mutex::new(()), Condvar::new()),
            background: Mutex::new(None),
        });
        Ok(Follower { shared })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.shared.dir
    }

    /// Applies what the writer made durable since the last call (reading only the bytes
    /// appended since), and returns the LSN the view is at. Reloads from the newest snapshot
    /// when a compaction removed the segments it was reading, without a gap or a repeat.
    pub fn refresh(&self) -> Result<u64> {
        self.shared.refresh()
    }

    /// LSN of the last record the view holds (0: none).
    pub fn applied_lsn(&self) -> u64 {
        self.shared.view.read().state.applied_lsn
    }

    /// The writer's durable position last read, as `(epoch, lsn)`; `None` if the store
    /// has no `DURABLE` file.
    pub fn durable(&self) -> Option<(u64, u64)> {
        self.shared.tail.lock().mark.map(|m| (m.epoch, m.lsn))
    }
}

impl Shared {
    fn refresh(&self) -> Result<u64> {
        let mut tail = self.tail.lock();
        let before = self.view.read().state.applied_lsn;
        let limit = tail.durable_limit()?;
        let stop = tail.advance(limit, &mut |batch| {
            let mut view = self.view.write();
            for r in batch {
                view.state.apply_frame(&r.frame).map_err(|k| (r.offset, k))?;
            }
            Ok(())
        })?;
        if stop == Stop::Reload {
            match tail.load(limit)? {
                // Never go back: a reload that could not reach the view's position waits.
                Some(state) if state.applied_lsn >= before => self.view.write().state = state,
                _ => tail.restart_at(before + 1),
            }
        }
        drop(tail);
        let after = self.view.read().state.applied_lsn;
        if after != before {
            let _guard = self.moved.0.lock();
            self.moved.1.notify_all();
        }
        Ok(after)
    }
}

fn read_identity(io: &dyn Io, dir: &Path) -> Result<[u8; 16]> {
    let path = dir.join(IDENTITY_FILE);
    let bytes = Fs(io).read(&path)?;
    StoreIdentity::decode(&bytes).map(|i| i.store_id).map_err(|kind| Error::Corruption {
        file: path,
        offset: 0,
        last_good_lsn: None,
        kind,
    })
}

/// Compaction removed files faster than an open could read them.
fn changing(dir: &Path) -> Error {
    Error::Io {
        op: IoOp::Read,
        path: dir.to_path_buf(),
        source: std::io::Error::other("the store's files kept changing during the load; try again"),
    }
}
