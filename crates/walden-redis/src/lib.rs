//! walden's documents, rate limiters and circuit breakers kept in Redis: one place of truth
//! for every process and machine of a service.
//!
//! [`RedisBackend`] implements [`walden::api::Backend`], the interface the embedded
//! [`walden::Store`] implements too, so an application switches between them by configuration
//! alone. Everything that changes state is one Lua script, atomic inside Redis:
//!
//! - **Documents** keep exact versions: batches with version preconditions are all-or-nothing;
//!   a key's version never repeats (each collection keeps a version floor, as the embedded
//!   store does); scans run in key order over a sorted-set index kept by the same script.
//!   Names, keys, sizes and validators follow the embedded store's rules — the same code.
//! - **Rate limiters** are GCRA in one round trip, timed by Redis's `TIME`; idle keys expire.
//! - **`update`** from several threads of one backend on one document is group-committed: the
//!   writes queue, each closure runs on the document as the writes before it leave it, and one
//!   script commits them all, each checked against its version (see
//!   [`walden::api::Documents::update_raw`]).
//! - **Circuit breakers** run the embedded breaker's state machine on one hash: a trip seen by
//!   one process is seen by every process at its next call; half-open probes are counted
//!   across all of them.
//!
//! # What a write survives
//! [`RedisBackend::connect`] reads `appendonly`, `appendfsync` and `maxmemory-policy` and
//! refuses a configuration that cannot keep what was asked (see [`RedisConfig::durability`]):
//! with `appendonly yes` and `appendfsync always` Redis fsyncs its log before it replies, so an
//! acknowledged write survives a crash of Redis and a power loss of its machine; `everysec`
//! may lose the last second; an evicting `maxmemory-policy` may silently drop documents and
//! limiter state. [`walden::api::Backend::guarantees`] reports what was found.
//!
//! # Failures
//! Every call is bounded by [`RedisConfig::timeout`]: Redis down, restarting or slow gives
//! [`walden::Error::Unavailable`] or [`walden::Error::Timeout`], never a hang. The next call
//! reconnects. A limiter's answer while Redis is unreachable is chosen at construction
//! ([`LimiterFailure`]).
//!
//! # Redis Cluster
//! Keys carry hash tags (the part in braces), so every script's keys share one slot:
//!
//! | what | key | type |
//! |---|---|---|
//! | a document | `{NS:d:COLLECTION}:k:KEY` | hash: `v` version, `t` write time (ns), `j` JSON |
//! | a collection's key index | `{NS:d:COLLECTION}:i` | sorted set, scores 0, members the keys |
//! | a collection's version floor | `{NS:d:COLLECTION}:f` | string: highest version deleted |
//! | a rate limiter key's TAT | `NS:r:LIMITER:{KEY}` | string (ns), expires when idle |
//! | a circuit breaker | `NS:b:{BREAKER}` | hash |
//!
//! One collection's documents share a slot, so a batch within one collection is atomic on any
//! node; a batch over several collections cannot be, and is refused with
//! [`walden::Error::CrossSlot`] before anything is sent ([`RedisConfig::cluster`], or
//! [`RedisConfig::cluster_slots`] on one node). Each script goes to the node of its keys'
//! slot; the persistence check and `collections()` visit every configured node.
//!
//! ```no_run
//! use std::sync::Arc;
//! use walden::api::{Backend, DocumentsExt};
//! use walden_redis::{RedisBackend, RedisConfig};
//!
//! let backend: Arc<dyn Backend> =
//!     Arc::new(RedisBackend::connect(RedisConfig::new("redis+unix:///run/redis.sock"))?);
//! let v = backend.put("settings", "theme", &"dark")?;
//! assert_eq!(backend.get::<String>("settings", "theme")?.unwrap().version, v);
//! # Ok::<(), walden::Error>(())
//! ```

#![warn(missing_docs)]

mod breaker;
mod conn;
mod documents;
mod durability;
mod keys;
mod lanes;
mod limiter;
mod scripts;

pub use breaker::RedisBreaker;
pub use documents::SCAN_PAGE_DOCUMENTS;
pub use limiter::{LimiterFailure, RedisLimiter};

use std::sync::Arc;
use std::time::Duration;

use walden::api::{Backend, Breaker, Guarantees, Limiter, Rules, Validators};
use walden::{BreakerConfig, Durability, Error, Quota, Result};

use conn::Pool;
use keys::Keys;

/// Default bound on every call to Redis.
pub const DEFAULT_TIMEOUT_MS: u64 = 2_000;

/// How to reach Redis and what to demand of it.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// Where Redis listens: `redis://host:port/db` or `redis+unix:///path/to/socket`.
    pub url: String,
    /// Prefix of every key (`[A-Za-z0-9_.-]`, 1–64 bytes): several applications can share one
    /// Redis under different namespaces.
    pub namespace: String,
    /// What an acknowledged write must survive: [`Durability::Immediate`] requires
    /// `appendonly yes` + `appendfsync always`; [`Durability::Buffered`] accepts `everysec`.
    pub durability: Durability,
    /// Opt-out: connect even if Redis cannot give [`durability`](Self::durability) (the
    /// weaker guarantee is still reported by `guarantees()`).
    pub allow_weaker_durability: bool,
    /// Opt-out: connect even if `maxmemory-policy` is not `noeviction`, although Redis may
    /// then drop documents and limiter state without an error.
    pub allow_eviction: bool,
    /// Bound on every call (connect, send, reply).
    pub timeout: Duration,
    /// Replicas that must acknowledge each write (`WAIT`) before it is acknowledged; 0: none.
    pub replicas: u32,
    /// Refuse batches over several collections (different cluster slots) with
    /// [`Error::CrossSlot`], so an application tested on one node behaves the same on Redis
    /// Cluster. Always on with [`cluster_nodes`](Self::cluster_nodes).
    pub cluster_slots: bool,
    /// Redis Cluster: every primary's URL (`redis://host:port`). Empty: one server at
    /// [`url`](Self::url). Commands go to the node of their key's slot; the persistence check
    /// and `collections()` visit every node listed here, so list them all.
    pub cluster_nodes: Vec<String>,
    /// Largest key and document, as in [`walden::Options`].
    pub rules: Rules,
    /// What a rate limiter answers while Redis is unreachable.
    pub limiter_failure: LimiterFailure,
}

impl RedisConfig {
    /// Defaults for `url`: namespace `walden`, `Durability::Immediate`, no opt-outs,
    /// [`DEFAULT_TIMEOUT_MS`], no replicas, the embedded store's default limits, limiters
    /// return the error.
    pub fn new(url: impl Into<String>) -> RedisConfig {
        RedisConfig {
            url: url.into(),
            namespace: "walden".to_owned(),
            durability: Durability::Immediate,
            allow_weaker_durability: false,
            allow_eviction: false,
            timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
            replicas: 0,
            cluster_slots: false,
            cluster_nodes: Vec::new(),
            rules: Rules::default(),
            limiter_failure: LimiterFailure::Error,
        }
    }

    /// Defaults for a Redis Cluster whose primaries are `nodes` (see [`RedisConfig::new`]),
    /// with [`cluster_slots`](Self::cluster_slots) on.
    pub fn cluster(nodes: impl IntoIterator<Item = impl Into<String>>) -> RedisConfig {
        let nodes: Vec<String> = nodes.into_iter().map(Into::into).collect();
        let mut c = RedisConfig::new(nodes.first().cloned().unwrap_or_default());
        c.cluster_slots = true;
        c.cluster_nodes = nodes;
        c
    }
}

pub(crate) struct Shared {
    pub(crate) pool: Pool,
    pub(crate) keys: Keys,
    pub(crate) config: RedisConfig,
    pub(crate) validators: Validators,
    pub(crate) guarantees: Guarantees,
    pub(crate) lanes: lanes::Lanes,
}

impl Shared {
    /// After a write on `con`: waits for the configured replicas.
    pub(crate) fn wait_replicas(
        &self,
        con: &mut dyn redis::ConnectionLike,
    ) -> redis::RedisResult<()> {
        if self.config.replicas == 0 {
            return Ok(());
        }
        let timeout_ms = u64::try_from(self.config.timeout.as_millis()).unwrap_or(u64::MAX);
        let acked: u32 = redis::cmd("WAIT").arg(self.config.replicas).arg(timeout_ms).query(con)?;
        if acked < self.config.replicas {
            return Err(redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("WAIT: {acked} of {} replicas acknowledged", self.config.replicas),
            )));
        }
        Ok(())
    }
}

/// Documents, rate limiters and circuit breakers in one Redis. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct RedisBackend {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("url", &self.shared.config.url)
            .field("namespace", &self.shared.config.namespace)
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// Connects, reads Redis's persistence and eviction settings, and refuses (with
    /// [`Error::DurabilityUnavailable`]) a Redis that cannot keep what `config` asks for,
    /// unless the matching opt-out is set. Fails with [`Error::Unavailable`] or
    /// [`Error::Timeout`] if Redis cannot be reached within the timeout.
    pub fn connect(mut config: RedisConfig) -> Result<RedisBackend> {
        check_namespace(&config.namespace)?;
        let cluster = !config.cluster_nodes.is_empty();
        if cluster && config.replicas > 0 {
            // WAIT answers for the node it is sent to; routed by no key, it cannot follow
            // the write's slot.
            return Err(Error::Backend {
                backend: conn::BACKEND,
                message: "replicas (WAIT) is not supported with cluster_nodes".to_owned(),
            });
        }
        config.cluster_slots |= cluster;
        let urls = if cluster { config.cluster_nodes.clone() } else { vec![config.url.clone()] };
        let pool = Pool::new(&urls, cluster, config.timeout)?;
        let guarantees = durability::check(&pool, &config)?;
        let shared = Shared {
            pool,
            keys: Keys::new(&config.namespace),
            config,
            validators: Validators::default(),
            guarantees,
            lanes: lanes::Lanes::new(),
        };
        Ok(RedisBackend { shared: Arc::new(shared) })
    }

    /// A rate limiter with an explicit failure policy (instead of the configuration's).
    pub fn rate_limiter_with(
        &self,
        name: &str,
        quota: Quota,
        on_failure: LimiterFailure,
    ) -> Result<RedisLimiter> {
        RedisLimiter::new(self.shared.clone(), name, quota, on_failure)
    }
}

fn check_namespace(ns: &str) -> Result<()> {
    let ok = !ns.is_empty()
        && ns.len() <= walden::MAX_OBJECT_NAME_BYTES
        && ns.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Backend {
            backend: conn::BACKEND,
            message: format!(
                "invalid namespace {ns:?}: 1-64 bytes of A-Z, a-z, 0-9, '_', '.', '-'"
            ),
        })
    }
}

impl Backend for RedisBackend {
    fn rate_limiter(&self, name: &str, quota: Quota) -> Result<Arc<dyn Limiter>> {
        let policy = self.shared.config.limiter_failure;
        Ok(Arc::new(RedisLimiter::new(self.shared.clone(), name, quota, policy)?))
    }

    fn breaker(&self, name: &str, config: BreakerConfig) -> Result<Arc<dyn Breaker>> {
        Ok(Arc::new(RedisBreaker::new(self.shared.clone(), name, config)?))
    }

    fn guarantees(&self) -> Guarantees {
        self.shared.guarantees.clone()
    }

    fn sync(&self) -> Result<()> {
        self.shared.pool.run(|con| redis::cmd("PING").query::<()>(con))
    }
}
