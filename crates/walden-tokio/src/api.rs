//! The async mirror of [`walden::api`]: the same interface, every call that may wait returning
//! a future, so an async application codes against it once and picks its backend by
//! configuration.
//!
//! - [`AsyncStore`] implements it natively: writers are futures woken by the group leader.
//! - [`OnBlockingPool`] implements it for any blocking [`walden::api::Backend`] (the Redis
//!   backend, for one) by running each call on tokio's blocking pool.
//!
//! The traits are object-safe (methods return boxed futures), so `Arc<dyn Backend>` works;
//! [`DocumentsExt`] adds typed (`serde`) methods for every implementation.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> walden::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! use std::sync::Arc;
//! use walden_tokio::api::{Backend, DocumentsExt};
//! use walden_tokio::AsyncStore;
//!
//! let backend: Arc<dyn Backend> = Arc::new(AsyncStore::open(dir.path()).await?);
//! let v = backend.put("settings", "theme", &"dark").await?;
//! assert_eq!(backend.get::<String>("settings", "theme").await?.unwrap().version, v);
//! let login = backend.rate_limiter("login", walden::Quota::per_minute(3)).await?;
//! assert!(login.check("10.0.0.1").await?.allowed);
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use walden::api::{self as sync_api, CasStep, KeyRange, RawDoc};
use walden::{
    Batch, BreakerConfig, BreakerHealth, CircuitState, Decision, Error, Quota, Result, Versioned,
};

use crate::store::blocking;
use crate::{AsyncAcquire, AsyncBreaker, AsyncLimiter, AsyncPermit, AsyncStore};

/// The future every method of these traits returns.
pub type ApiFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

fn ready<'a, T: Send + 'a>(r: Result<T>) -> ApiFuture<'a, T> {
    Box::pin(std::future::ready(r))
}

/// Documents with exact versions: the async mirror of [`walden::api::Documents`].
pub trait Documents: Send + Sync {
    /// The document under `key`: its JSON text, version and write time, or `None`.
    fn get_raw<'a>(&'a self, collection: &'a str, key: &'a str) -> ApiFuture<'a, Option<RawDoc>>;

    /// Commits a batch all-or-nothing (see [`walden::api::Documents::commit`]); resolves once
    /// it is acknowledged.
    fn commit(&self, batch: Batch) -> ApiFuture<'_, Vec<Option<u64>>>;

    /// One step of an optimistic read-modify-write (see
    /// [`walden::api::Documents::commit_or_read`]).
    fn commit_or_read<'a>(
        &'a self,
        batch: Batch,
        collection: &'a str,
        key: &'a str,
    ) -> ApiFuture<'a, CasStep>;

    /// Documents of `collection` in `range`, in key order, at most `limit`.
    fn scan_raw<'a>(
        &'a self,
        collection: &'a str,
        range: &'a KeyRange,
        limit: Option<usize>,
    ) -> ApiFuture<'a, Vec<(String, RawDoc)>>;

    /// Number of documents in `collection`.
    fn count<'a>(&'a self, collection: &'a str) -> ApiFuture<'a, u64>;
}

/// Typed methods for every [`Documents`], `dyn Documents` included.
pub trait DocumentsExt: Documents {
    /// The document under `key`, decoded.
    fn get<'a, T: DeserializeOwned + Send + 'a>(
        &'a self,
        collection: &'a str,
        key: &'a str,
    ) -> ApiFuture<'a, Option<Versioned<T>>> {
        Box::pin(async move {
            match self.get_raw(collection, key).await? {
                None => Ok(None),
                Some(d) => {
                    let value = serde_json::from_str(d.value.get()).map_err(|source| {
                        Error::Json { collection: collection.into(), key: key.into(), source }
                    })?;
                    Ok(Some(Versioned {
                        value,
                        version: d.version,
                        written_unix_ns: d.written_unix_ns,
                    }))
                }
            }
        })
    }

    /// Stores `value` under `key`; resolves to its new version.
    fn put<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        key: &str,
        value: &T,
    ) -> ApiFuture<'_, u64> {
        let mut b = Batch::new();
        b.put(collection, key, value);
        first_version(self.commit(b))
    }

    /// Stores `value` only if `key` is absent (else [`Error::AlreadyExists`]).
    fn insert<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        key: &str,
        value: &T,
    ) -> ApiFuture<'_, u64> {
        let mut b = Batch::new();
        b.insert(collection, key, value);
        first_version(self.commit(b))
    }

    /// Compare-and-set (else [`Error::Conflict`]).
    fn put_if_version<T: Serialize + ?Sized>(
        &self,
        collection: &str,
        key: &str,
        value: &T,
        expected_version: u64,
    ) -> ApiFuture<'_, u64> {
        let mut b = Batch::new();
        b.put_if_version(collection, key, value, expected_version);
        first_version(self.commit(b))
    }

    /// Deletes a document; resolves to the version it had.
    fn delete(&self, collection: &str, key: &str) -> ApiFuture<'_, Option<u64>> {
        let mut b = Batch::new();
        b.delete(collection, key);
        let f = self.commit(b);
        Box::pin(async move { Ok(f.await?.pop().flatten()) })
    }

    /// Atomic read-modify-write through [`Documents::commit_or_read`], retried on a
    /// concurrent change: `f` may run more than once and must not have side effects.
    fn update<'a, T, F>(
        &'a self,
        collection: &'a str,
        key: &'a str,
        mut f: F,
    ) -> ApiFuture<'a, Option<u64>>
    where
        T: Serialize + DeserializeOwned + Send + 'a,
        F: FnMut(Option<T>) -> Option<T> + Send + 'a,
    {
        Box::pin(async move {
            let mut current = self.get::<T>(collection, key).await?;
            loop {
                let version = current.as_ref().map(|d| d.version);
                let new = f(current.map(|d| d.value));
                let is_put = new.is_some();
                let mut b = Batch::new();
                match (new, version) {
                    (Some(new), Some(v)) => b.put_if_version(collection, key, &new, v),
                    (Some(new), None) => b.insert(collection, key, &new),
                    (None, Some(v)) => b.delete_if_version(collection, key, v),
                    (None, None) => b.expect_version(collection, key, None),
                };
                match self.commit_or_read(b, collection, key).await? {
                    CasStep::Committed(v) => return Ok(if is_put { v[0] } else { None }),
                    CasStep::Changed(doc) => {
                        current = match doc {
                            None => None,
                            Some(d) => Some(Versioned {
                                value: serde_json::from_str(d.value.get()).map_err(|source| {
                                    Error::Json {
                                        collection: collection.into(),
                                        key: key.into(),
                                        source,
                                    }
                                })?,
                                version: d.version,
                                written_unix_ns: d.written_unix_ns,
                            }),
                        }
                    }
                }
            }
        })
    }
}

impl<D: Documents + ?Sized> DocumentsExt for D {}

fn first_version(f: ApiFuture<'_, Vec<Option<u64>>>) -> ApiFuture<'_, u64> {
    Box::pin(async move {
        f.await?.first().copied().flatten().ok_or_else(|| Error::Backend {
            backend: "walden",
            message: "a put returned no version".into(),
        })
    })
}

/// A keyed GCRA rate limiter: the async mirror of [`walden::api::Limiter`].
pub trait Limiter: Send + Sync {
    /// The limiter's name.
    fn name(&self) -> &str;
    /// Its default quota.
    fn quota(&self) -> Quota;
    /// Spends `n` cells of `key` under `quota`, all or nothing.
    fn check_with<'a>(&'a self, key: &'a str, n: u32, quota: Quota) -> ApiFuture<'a, Decision>;
    /// Forgets `key`'s state; resolves to whether it had spent cells.
    fn reset<'a>(&'a self, key: &'a str) -> ApiFuture<'a, bool>;
    /// Spends one cell of `key`.
    fn check<'a>(&'a self, key: &'a str) -> ApiFuture<'a, Decision> {
        self.check_with(key, 1, self.quota())
    }
    /// Spends `n` cells of `key` at once.
    fn check_n<'a>(&'a self, key: &'a str, n: u32) -> ApiFuture<'a, Decision> {
        self.check_with(key, n, self.quota())
    }
}

/// A circuit breaker: the async mirror of [`walden::api::Breaker`].
pub trait Breaker: Send + Sync {
    /// The breaker's name.
    fn name(&self) -> &str;
    /// Asks to make one call.
    fn acquire(&self) -> ApiFuture<'_, Admission>;
    /// The breaker's state.
    fn state(&self) -> ApiFuture<'_, CircuitState>;
    /// The breaker's state and counters.
    fn health(&self) -> ApiFuture<'_, BreakerHealth>;
    /// Closes the breaker with fresh counters.
    fn reset(&self) -> ApiFuture<'_, ()>;
    /// Opens the breaker until reset.
    fn force_open(&self) -> ApiFuture<'_, ()>;
    /// Lets every call through until reset.
    fn disable(&self) -> ApiFuture<'_, ()>;
}

/// The answer of [`Breaker::acquire`].
#[derive(Debug)]
#[must_use = "a permit must be finished with success() or failure()"]
pub enum Admission {
    /// The call may proceed; report its outcome through the permit.
    Permitted(CallPermit),
    /// The call must not be made.
    Rejected {
        /// `Some`: the breaker is open for this much longer.
        retry_after: Option<Duration>,
    },
}

/// Permission for one call, on any backend. A permit dropped without an outcome counts as a
/// **failed** call with its elapsed time, without blocking the dropping thread.
#[derive(Debug)]
#[must_use = "report the call's outcome with success() or failure()"]
pub struct CallPermit {
    inner: PermitInner,
}

#[derive(Debug)]
enum PermitInner {
    Embedded(AsyncPermit),
    Blocking(BlockingPermit),
}

/// A blocking backend's permit; its outcome (and its drop) run on the blocking pool.
#[derive(Debug)]
struct BlockingPermit(Option<sync_api::CallPermit>);

impl Drop for BlockingPermit {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            // Its drop reports a failure over the backend: never on an executor thread.
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => drop(rt.spawn_blocking(move || drop(p))),
                Err(_) => drop(p),
            }
        }
    }
}

impl CallPermit {
    /// The breaker generation this call started in.
    pub fn generation(&self) -> u64 {
        match &self.inner {
            PermitInner::Embedded(p) => p.generation(),
            PermitInner::Blocking(p) => p.0.as_ref().map_or(0, |p| p.generation()),
        }
    }

    /// The call succeeded; resolves to whether the outcome counted.
    pub async fn success(self) -> Result<bool> {
        self.report(true, None).await
    }

    /// The call failed; resolves to whether the outcome counted.
    pub async fn failure(self) -> Result<bool> {
        self.report(false, None).await
    }

    /// Reports the outcome with an explicit duration.
    pub async fn finish(self, ok: bool, duration: Duration) -> Result<bool> {
        self.report(ok, Some(duration)).await
    }

    async fn report(self, ok: bool, duration: Option<Duration>) -> Result<bool> {
        match self.inner {
            PermitInner::Embedded(p) => match (duration, ok) {
                (Some(d), _) => p.finish(ok, d).await,
                (None, true) => p.success().await,
                (None, false) => p.failure().await,
            },
            PermitInner::Blocking(mut p) => {
                let p = p.0.take().expect("a permit is finished once, by value");
                blocking(move || match (duration, ok) {
                    (Some(d), _) => p.finish(ok, d),
                    (None, true) => p.success(),
                    (None, false) => p.failure(),
                })
                .await
            }
        }
    }
}

/// Documents, rate limiters and circuit breakers from one place: the async mirror of
/// [`walden::api::Backend`].
pub trait Backend: Documents {
    /// The rate limiter `name` with default `quota`.
    fn rate_limiter<'a>(&'a self, name: &'a str, quota: Quota) -> ApiFuture<'a, Arc<dyn Limiter>>;
    /// The circuit breaker `name` with `config`.
    fn breaker<'a>(
        &'a self,
        name: &'a str,
        config: BreakerConfig,
    ) -> ApiFuture<'a, Arc<dyn Breaker>>;
    /// What an acknowledged write survives with this backend.
    fn guarantees(&self) -> sync_api::Guarantees;
    /// Makes every acknowledged write as durable as the backend can.
    fn sync(&self) -> ApiFuture<'_, ()>;
    /// The blocking interface underneath, for what has no async mirror (validators, JSON
    /// export and import, collections); call it from a blocking context.
    fn blocking_api(&self) -> Arc<dyn sync_api::Backend>;
}

// ---- The embedded store: native futures. ----

impl Documents for AsyncStore {
    fn get_raw<'a>(&'a self, collection: &'a str, key: &'a str) -> ApiFuture<'a, Option<RawDoc>> {
        ready(sync_api::Documents::get_raw(self.store(), collection, key))
    }

    fn commit(&self, batch: Batch) -> ApiFuture<'_, Vec<Option<u64>>> {
        Box::pin(AsyncStore::commit(self, batch))
    }

    fn commit_or_read<'a>(
        &'a self,
        batch: Batch,
        collection: &'a str,
        key: &'a str,
    ) -> ApiFuture<'a, CasStep> {
        let submitted =
            self.submit(|s| sync_api::Documents::commit_or_read(s, batch, collection, key));
        Box::pin(async move { submitted?.await })
    }

    fn scan_raw<'a>(
        &'a self,
        collection: &'a str,
        range: &'a KeyRange,
        limit: Option<usize>,
    ) -> ApiFuture<'a, Vec<(String, RawDoc)>> {
        ready(sync_api::Documents::scan_raw(self.store(), collection, range, limit))
    }

    fn count<'a>(&'a self, collection: &'a str) -> ApiFuture<'a, u64> {
        ready(sync_api::Documents::count(self.store(), collection))
    }
}

impl Backend for AsyncStore {
    fn rate_limiter<'a>(&'a self, name: &'a str, quota: Quota) -> ApiFuture<'a, Arc<dyn Limiter>> {
        Box::pin(async move {
            Ok(Arc::new(AsyncStore::rate_limiter(self, name, quota).await?) as Arc<dyn Limiter>)
        })
    }

    fn breaker<'a>(
        &'a self,
        name: &'a str,
        config: BreakerConfig,
    ) -> ApiFuture<'a, Arc<dyn Breaker>> {
        Box::pin(async move {
            Ok(Arc::new(AsyncStore::breaker(self, name, config).await?) as Arc<dyn Breaker>)
        })
    }

    fn guarantees(&self) -> sync_api::Guarantees {
        sync_api::Backend::guarantees(self.store())
    }

    fn sync(&self) -> ApiFuture<'_, ()> {
        Box::pin(AsyncStore::sync(self))
    }

    fn blocking_api(&self) -> Arc<dyn sync_api::Backend> {
        Arc::new(self.store().clone())
    }
}

impl Limiter for AsyncLimiter {
    fn name(&self) -> &str {
        AsyncLimiter::name(self)
    }

    fn quota(&self) -> Quota {
        AsyncLimiter::quota(self)
    }

    fn check_with<'a>(&'a self, key: &'a str, n: u32, quota: Quota) -> ApiFuture<'a, Decision> {
        Box::pin(self.check_with(key, n, quota))
    }

    fn reset<'a>(&'a self, key: &'a str) -> ApiFuture<'a, bool> {
        Box::pin(self.reset(key))
    }
}

impl Breaker for AsyncBreaker {
    fn name(&self) -> &str {
        self.breaker().name()
    }

    fn acquire(&self) -> ApiFuture<'_, Admission> {
        Box::pin(async move {
            Ok(match AsyncBreaker::acquire(self).await? {
                AsyncAcquire::Permitted(p) => {
                    Admission::Permitted(CallPermit { inner: PermitInner::Embedded(p) })
                }
                AsyncAcquire::Rejected { retry_after } => Admission::Rejected { retry_after },
            })
        })
    }

    fn state(&self) -> ApiFuture<'_, CircuitState> {
        ready(Ok(AsyncBreaker::state(self)))
    }

    fn health(&self) -> ApiFuture<'_, BreakerHealth> {
        ready(Ok(AsyncBreaker::health(self)))
    }

    fn reset(&self) -> ApiFuture<'_, ()> {
        Box::pin(AsyncBreaker::reset(self))
    }

    fn force_open(&self) -> ApiFuture<'_, ()> {
        Box::pin(AsyncBreaker::force_open(self))
    }

    fn disable(&self) -> ApiFuture<'_, ()> {
        Box::pin(AsyncBreaker::disable(self))
    }
}

// ---- Any blocking backend: each call on the blocking pool. ----

/// Any blocking [`walden::api::Backend`] (e.g. `walden_redis::RedisBackend`) behind the async
/// interface: each call runs on tokio's blocking pool, so a slow backend never stalls an
/// executor worker. (The embedded store needs no pool: use [`AsyncStore`].)
#[derive(Clone)]
pub struct OnBlockingPool {
    backend: Arc<dyn sync_api::Backend>,
}

impl OnBlockingPool {
    /// Wraps `backend`.
    pub fn new(backend: Arc<dyn sync_api::Backend>) -> OnBlockingPool {
        OnBlockingPool { backend }
    }
}

impl std::fmt::Debug for OnBlockingPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnBlockingPool")
            .field("backend", &self.backend.guarantees().backend)
            .finish()
    }
}

/// Runs `f` on the blocking pool with an owned handle.
fn pooled<'a, S: ?Sized + Send + Sync + 'static, T: Send + 'static>(
    s: &Arc<S>,
    f: impl FnOnce(&S) -> Result<T> + Send + 'static,
) -> ApiFuture<'a, T> {
    let s = s.clone();
    Box::pin(blocking(move || f(&s)))
}

impl Documents for OnBlockingPool {
    fn get_raw<'a>(&'a self, collection: &'a str, key: &'a str) -> ApiFuture<'a, Option<RawDoc>> {
        let (c, k) = (collection.to_owned(), key.to_owned());
        pooled(&self.backend, move |b| b.get_raw(&c, &k))
    }

    fn commit(&self, batch: Batch) -> ApiFuture<'_, Vec<Option<u64>>> {
        pooled(&self.backend, move |b| b.commit(batch))
    }

    fn commit_or_read<'a>(
        &'a self,
        batch: Batch,
        collection: &'a str,
        key: &'a str,
    ) -> ApiFuture<'a, CasStep> {
        let (c, k) = (collection.to_owned(), key.to_owned());
        pooled(&self.backend, move |b| b.commit_or_read(batch, &c, &k))
    }

    fn scan_raw<'a>(
        &'a self,
        collection: &'a str,
        range: &'a KeyRange,
        limit: Option<usize>,
    ) -> ApiFuture<'a, Vec<(String, RawDoc)>> {
        let (c, r) = (collection.to_owned(), range.clone());
        pooled(&self.backend, move |b| b.scan_raw(&c, &r, limit))
    }

    fn count<'a>(&'a self, collection: &'a str) -> ApiFuture<'a, u64> {
        let c = collection.to_owned();
        pooled(&self.backend, move |b| b.count(&c))
    }
}

impl Backend for OnBlockingPool {
    fn rate_limiter<'a>(&'a self, name: &'a str, quota: Quota) -> ApiFuture<'a, Arc<dyn Limiter>> {
        let name = name.to_owned();
        let f = pooled(&self.backend, move |b| b.rate_limiter(&name, quota));
        Box::pin(async move { Ok(Arc::new(PooledLimiter(f.await?)) as Arc<dyn Limiter>) })
    }

    fn breaker<'a>(
        &'a self,
        name: &'a str,
        config: BreakerConfig,
    ) -> ApiFuture<'a, Arc<dyn Breaker>> {
        let name = name.to_owned();
        let f = pooled(&self.backend, move |b| b.breaker(&name, config));
        Box::pin(async move { Ok(Arc::new(PooledBreaker(f.await?)) as Arc<dyn Breaker>) })
    }

    fn guarantees(&self) -> sync_api::Guarantees {
        self.backend.guarantees()
    }

    fn sync(&self) -> ApiFuture<'_, ()> {
        pooled(&self.backend, |b| b.sync())
    }

    fn blocking_api(&self) -> Arc<dyn sync_api::Backend> {
        self.backend.clone()
    }
}

struct PooledLimiter(Arc<dyn sync_api::Limiter>);

impl Limiter for PooledLimiter {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn quota(&self) -> Quota {
        self.0.quota()
    }

    fn check_with<'a>(&'a self, key: &'a str, n: u32, quota: Quota) -> ApiFuture<'a, Decision> {
        let key = key.to_owned();
        pooled(&self.0, move |l| l.check_with(&key, n, &quota))
    }

    fn reset<'a>(&'a self, key: &'a str) -> ApiFuture<'a, bool> {
        let key = key.to_owned();
        pooled(&self.0, move |l| l.reset(&key))
    }
}

struct PooledBreaker(Arc<dyn sync_api::Breaker>);

impl Breaker for PooledBreaker {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn acquire(&self) -> ApiFuture<'_, Admission> {
        pooled(&self.0, |b| {
            Ok(match b.try_acquire()? {
                sync_api::Admission::Permitted(p) => Admission::Permitted(CallPermit {
                    inner: PermitInner::Blocking(BlockingPermit(Some(p))),
                }),
                sync_api::Admission::Rejected { retry_after } => {
                    Admission::Rejected { retry_after }
                }
            })
        })
    }

    fn state(&self) -> ApiFuture<'_, CircuitState> {
        pooled(&self.0, |b| b.state())
    }

    fn health(&self) -> ApiFuture<'_, BreakerHealth> {
        pooled(&self.0, |b| b.health())
    }

    fn reset(&self) -> ApiFuture<'_, ()> {
        pooled(&self.0, |b| b.reset())
    }

    fn force_open(&self) -> ApiFuture<'_, ()> {
        pooled(&self.0, |b| b.force_open())
    }

    fn disable(&self) -> ApiFuture<'_, ()> {
        pooled(&self.0, |b| b.disable())
    }
}
