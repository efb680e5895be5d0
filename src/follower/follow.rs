//! Following in the background: one thread refreshes every poll interval; [`wait_for`]
//! waits until the view reaches an LSN (refreshing itself when no thread follows).
//!
//! [`wait_for`]: Follower::wait_for

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::{Background, Follower, Shared};
use crate::error::Result;

impl Follower {
    /// Starts a background thread (`walden-follow`) that refreshes every
    /// [`poll_interval`](super::FollowerOptions::poll_interval). It holds only a weak
    /// reference: dropping the last clone stops it. A second call does nothing.
    pub fn follow(&self) -> Result<()> {
        let mut bg = self.shared.background.lock();
        if bg.is_some() {
            return Ok(());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let error = Arc::new(parking_lot::Mutex::new(None));
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        let interval = self.shared.options.poll_interval;
        let (stop2, error2) = (stop.clone(), error.clone());
        let thread = std::thread::Builder::new()
            .name("walden-follow".into())
            .spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    let Some(shared) = weak.upgrade() else { return };
                    if let Err(e) = shared.refresh() {
                        *error2.lock() = Some(e);
                    }
                    drop(shared);
                    std::thread::sleep(interval);
                }
            })
            .map_err(|e| crate::Error::Io {
                op: crate::IoOp::Open,
                path: self.shared.dir.clone(),
                source: e,
            })?;
        *bg = Some(Background { stop, thread, error });
        Ok(())
    }

    /// Stops the background thread started by [`follow`](Self::follow), if any, and waits
    /// for it.
    pub fn stop_following(&self) {
        let bg = self.shared.background.lock().take();
        if let Some(bg) = bg {
            bg.stop.store(true, Ordering::Relaxed);
            let _ = bg.thread.join();
        }
    }

    /// Waits until the view holds every record up to `lsn`, for at most `timeout`. `Ok(true)`:
    /// reached; `Ok(false)`: not within the timeout. Refreshes by itself when no background
    /// thread follows; with one, returns the error its last refresh met, if any.
    pub fn wait_for(&self, lsn: u64, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        let interval = self.shared.options.poll_interval;
        loop {
            let following = {
                let bg = self.shared.background.lock();
                if let Some(e) = bg.as_ref().and_then(|b| b.error.lock().take()) {
                    return Err(e);
                }
                bg.is_some()
            };
            let applied = if following { self.applied_lsn() } else { self.refresh()? };
            if applied >= lsn {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            let wait = interval.min(deadline - now);
            if following {
                let (lock, cv) = &self.shared.moved;
                let mut g = lock.lock();
                if self.applied_lsn() < lsn {
                    cv.wait_for(&mut g, wait);
                }
            } else {
                std::thread::sleep(wait);
            }
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(bg) = self.background.get_mut().take() {
            bg.stop.store(true, Ordering::Relaxed);
            // The thread may be the one dropping us (it held the last strong reference).
            if bg.thread.thread().id() != std::thread::current().id() {
                let _ = bg.thread.join();
            }
        }
    }
}
