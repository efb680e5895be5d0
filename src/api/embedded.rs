//! The embedded store, its limiters and its breakers behind the shared traits.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;

use super::documents::{CasStep, Documents, KeyRange, RawDoc};
use super::handles::{Admission, Breaker, CallPermit, Limiter, PermitBackend};
use super::rules::check_collection;
use super::{Backend, Guarantees, WriteGuarantee};
use crate::error::{Error, Result};
use crate::{
    Acquire, Batch, BreakerConfig, BreakerHealth, CircuitBreaker, CircuitState, Decision,
    Durability, ImportMode, ImportReport, Permit, Quota, RateLimiter, Store, Validator,
};

impl Documents for Store {
    fn get_raw(&self, collection: &str, key: &str) -> Result<Option<RawDoc>> {
        Store::get::<Box<RawValue>>(self, collection, key)
    }

    fn commit(&self, batch: Batch) -> Result<Vec<Option<u64>>> {
        Store::commit(self, batch)
    }

    fn scan_raw(
        &self,
        collection: &str,
        range: &KeyRange,
        limit: Option<usize>,
    ) -> Result<Vec<(String, RawDoc)>> {
        let end = match &range.end {
            std::ops::Bound::Included(e) => std::ops::Bound::Included(e.as_str()),
            std::ops::Bound::Excluded(e) => std::ops::Bound::Excluded(e.as_str()),
            std::ops::Bound::Unbounded => std::ops::Bound::Unbounded,
        };
        let scan = self.scan_range::<Box<RawValue>>(collection, range.effective_start(), end)?;
        // Keys arrive in order from the prefix on, so the first key without it ends the range.
        scan.take_while(|item| item.as_ref().map_or(true, |(k, _)| k.starts_with(&range.prefix)))
            .take(limit.unwrap_or(usize::MAX))
            .collect()
    }

    fn commit_or_read(&self, batch: Batch, collection: &str, key: &str) -> Result<CasStep> {
        match Store::commit(self, batch) {
            Ok(versions) => Ok(CasStep::Committed(versions)),
            // The conflict was with the newest sequenced state, which readers see only once
            // its group is written: retry against that state, not the older one.
            Err(Error::Conflict { .. }) | Err(Error::AlreadyExists { .. }) => {
                Ok(CasStep::Changed(self.latest_versioned::<Box<RawValue>>(collection, key)?))
            }
            Err(e) => Err(e),
        }
    }

    fn count(&self, collection: &str) -> Result<u64> {
        check_collection(collection)?;
        Store::count(self, collection).map(|n| n as u64)
    }

    fn collections(&self) -> Result<Vec<String>> {
        Store::collections(self)
    }

    fn set_validator(&self, collection: &str, validator: Validator) -> Result<()> {
        Store::set_validator(self, collection, move |v| validator(v))
    }

    fn clear_validator(&self, collection: &str) -> Result<()> {
        Store::clear_validator(self, collection)
    }

    fn export_json(&self, collection: &str, out: &mut dyn Write) -> Result<u64> {
        Store::export_json(self, collection, out)
    }

    fn import_json(
        &self,
        collection: &str,
        input: &mut dyn Read,
        mode: ImportMode,
    ) -> Result<ImportReport> {
        Store::import_json(self, collection, input, mode)
    }
}

impl Backend for Store {
    fn rate_limiter(&self, name: &str, quota: Quota) -> Result<Arc<dyn Limiter>> {
        Ok(Arc::new(Store::rate_limiter(self, name, quota)?))
    }

    fn breaker(&self, name: &str, config: BreakerConfig) -> Result<Arc<dyn Breaker>> {
        Ok(Arc::new(Store::breaker(self, name, config)?))
    }

    fn guarantees(&self) -> Guarantees {
        let options = &self.inner.options;
        let (write, detail) = match options.durability {
            Durability::Immediate => {
                (WriteGuarantee::Fsynced, "Durability::Immediate: fsync before acknowledging")
            }
            Durability::Buffered => (
                WriteGuarantee::FsyncedWithin {
                    interval: Duration::from_millis(options.buffered_flush_interval_ms),
                },
                "Durability::Buffered: fsynced by the background flusher",
            ),
        };
        Guarantees { backend: "embedded", write, replicas: 0, detail: detail.to_owned() }
    }

    fn sync(&self) -> Result<()> {
        Store::sync(self)
    }
}

impl Limiter for RateLimiter {
    fn name(&self) -> &str {
        RateLimiter::name(self)
    }

    fn quota(&self) -> Quota {
        RateLimiter::quota(self)
    }

    fn check_with(&self, key: &str, n: u32, quota: &Quota) -> Result<Decision> {
        RateLimiter::check_with(self, key, n, quota)
    }

    fn peek(&self, key: &str) -> Result<Decision> {
        RateLimiter::peek(self, key)
    }

    fn reset(&self, key: &str) -> Result<bool> {
        self.forget_key(key)
    }
}

impl Breaker for CircuitBreaker {
    fn name(&self) -> &str {
        CircuitBreaker::name(self)
    }

    fn try_acquire(&self) -> Result<Admission> {
        Ok(match CircuitBreaker::try_acquire(self)? {
            Acquire::Permitted(p) => Admission::Permitted(CallPermit::new(Box::new(p))),
            Acquire::Rejected { retry_after } => Admission::Rejected { retry_after },
        })
    }

    fn state(&self) -> Result<CircuitState> {
        Ok(CircuitBreaker::state(self))
    }

    fn health(&self) -> Result<BreakerHealth> {
        Ok(CircuitBreaker::health(self))
    }

    fn reset(&self) -> Result<()> {
        CircuitBreaker::reset(self)
    }

    fn force_open(&self) -> Result<()> {
        CircuitBreaker::force_open(self)
    }

    fn disable(&self) -> Result<()> {
        CircuitBreaker::disable(self)
    }
}

impl PermitBackend for Permit {
    fn generation(&self) -> u64 {
        Permit::generation(self)
    }

    fn finish(self: Box<Self>, ok: bool, duration: Option<Duration>) -> Result<bool> {
        match (duration, ok) {
            (Some(d), _) => Permit::finish(*self, ok, d),
            (None, true) => Permit::success(*self),
            (None, false) => Permit::failure(*self),
        }
    }
}
