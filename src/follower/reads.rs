//! What a follower answers: documents, point-in-time scans, counts, limiter peeks, breaker
//! health and its own stats. Every answer comes from the view under one read lock.

use std::collections::BTreeMap;
use std::ops::Bound;

use serde::de::DeserializeOwned;

use super::Follower;
use crate::breaker::{health, BreakerHealth};
use crate::error::{LimitKind, Result};
use crate::limits::MAX_KEY_BYTES_LIMIT;
use crate::ratelimit::gcra::{decide, Decision, Quota};
use crate::store::names::{self, check_collection, check_object_name};
use crate::store::{decode_doc, Scan, Versioned};

/// Counters and positions of a [`Follower`], from [`Follower::stats`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FollowerStats {
    /// LSN of the last record the view holds (0: none).
    pub applied_lsn: u64,
    /// The writer's durable position last read, `(epoch, lsn)`; `None` without a `DURABLE` file.
    pub durable: Option<(u64, u64)>,
    /// Segment the follower reads next (0: none chosen yet).
    pub segment_no: u64,
    /// Documents per collection.
    pub documents_per_collection: BTreeMap<String, u64>,
    /// Documents in all collections.
    pub documents: u64,
    /// Records applied from the log since open (snapshot entries not counted).
    pub records_applied: u64,
    /// Bytes read from log segments since open.
    pub bytes_read: u64,
    /// Loads of a snapshot, the one at open included (compactions removed what it was reading).
    pub reloads: u64,
}

/// A follower knows no writer's `max_key_bytes`: any key a store can hold may be asked for.
fn check_key(key: &str) -> Result<()> {
    names::check_key(key, MAX_KEY_BYTES_LIMIT)
}

impl Follower {
    /// Reads a document as of the view's LSN, or `None` if absent.
    pub fn get<T: DeserializeOwned>(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<Option<Versioned<T>>> {
        check_collection(collection)?;
        check_key(key)?;
        let doc =
            self.shared.view.read().state.docs.get(collection).and_then(|c| c.get(key)).cloned();
        doc.map(|d| decode_doc(collection, key, &d)).transpose()
    }

    /// Documents of `collection` in key order, as of one LSN.
    pub fn scan<T: DeserializeOwned>(&self, collection: &str) -> Result<Scan<T>> {
        self.scan_range(collection, Bound::Unbounded, Bound::Unbounded)
    }

    /// Documents of `collection` whose keys start with `prefix`, in key order, as of one LSN.
    pub fn scan_prefix<T: DeserializeOwned>(
        &self,
        collection: &str,
        prefix: &str,
    ) -> Result<Scan<T>> {
        check_collection(collection)?;
        let view = self.shared.view.read();
        let items = view.state.docs.get(collection).map_or_else(Vec::new, |c| {
            c.range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, d)| (k.clone(), d.clone()))
                .collect()
        });
        Ok(Scan::from_items(collection, items))
    }

    /// Documents of `collection` with keys in `(start, end)`, in key order, as of one LSN.
    pub fn scan_range<T: DeserializeOwned>(
        &self,
        collection: &str,
        start: Bound<&str>,
        end: Bound<&str>,
    ) -> Result<Scan<T>> {
        self.scan_range_at(collection, start, end).map(|(_, scan)| scan)
    }

    /// [`scan_range`](Self::scan_range), with the LSN the scan is a view of: it holds every
    /// durable write up to that LSN and nothing after it.
    pub fn scan_range_at<T: DeserializeOwned>(
        &self,
        collection: &str,
        start: Bound<&str>,
        end: Bound<&str>,
    ) -> Result<(u64, Scan<T>)> {
        check_collection(collection)?;
        let view = self.shared.view.read();
        let items = view.state.docs.get(collection).map_or_else(Vec::new, |c| {
            c.range::<str, _>((start, end)).map(|(k, d)| (k.clone(), d.clone())).collect()
        });
        Ok((view.state.applied_lsn, Scan::from_items(collection, items)))
    }

    /// Names of the collections that hold documents, sorted.
    pub fn collections(&self) -> Vec<String> {
        self.shared.view.read().state.docs.keys().cloned().collect()
    }

    /// Number of documents in `collection`.
    pub fn count(&self, collection: &str) -> usize {
        self.shared.view.read().state.docs.get(collection).map_or(0, |c| c.len())
    }

    /// What a check of one cell of `key` on the limiter `limiter` would answer now under
    /// `quota`, consuming nothing (like [`RateLimiter::peek`](crate::RateLimiter::peek)). Time
    /// is this process's clock, never below the newest time the log holds.
    pub fn peek(&self, limiter: &str, key: &str, quota: &Quota) -> Result<Decision> {
        check_object_name(LimitKind::LimiterName, limiter)?;
        check_key(key)?;
        quota.validate()?;
        let clock_ns = self.shared.options.clock.now_unix_ns();
        let view = self.shared.view.read();
        let limits = &view.state.ratelimits;
        let now = clock_ns.max(limits.high_water_unix_ns);
        Ok(decide(quota, limits.tat(limiter, key), now, 0).0)
    }

    /// The health of the breaker `name` as of the view's LSN; `None` if the log holds no
    /// transition of it. Counters inside Closed live only in the writer's memory and read 0.
    pub fn breaker_health(&self, name: &str) -> Result<Option<BreakerHealth>> {
        check_object_name(LimitKind::BreakerName, name)?;
        let view = self.shared.view.read();
        Ok(view.state.breakers.entries.get(name).map(|e| health(name, e)))
    }

    /// Every breaker the log knows, by name.
    pub fn breakers(&self) -> Vec<BreakerHealth> {
        let view = self.shared.view.read();
        view.state.breakers.entries.iter().map(|(n, e)| health(n, e)).collect()
    }

    /// Counters and positions: see [`FollowerStats`].
    pub fn stats(&self) -> FollowerStats {
        let tail = self.shared.tail.lock();
        let (durable, (_, segment_no), c) =
            (tail.mark.map(|m| (m.epoch, m.lsn)), tail.position(), tail.counters);
        drop(tail);
        let view = self.shared.view.read();
        let documents_per_collection: BTreeMap<String, u64> =
            view.state.docs.iter().map(|(c, m)| (c.clone(), m.len() as u64)).collect();
        FollowerStats {
            applied_lsn: view.state.applied_lsn,
            durable,
            segment_no,
            documents: documents_per_collection.values().sum(),
            documents_per_collection,
            records_applied: c.records_applied,
            bytes_read: c.bytes_read,
            reloads: c.reloads,
        }
    }
}
