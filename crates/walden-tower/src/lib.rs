//! tower layers over walden: durable rate limits and circuit breakers for axum and tonic.
//!
//! - [`RateLimitLayer`] spends one cell of a walden rate limiter per request, keyed by a
//!   [`KeyExtractor`] (client IP, a header, an API key, the authenticated user). A denied
//!   request gets `429 Too Many Requests` with `RateLimit-Limit`, `RateLimit-Remaining`,
//!   `RateLimit-Reset` and `Retry-After`; an allowed one passes with the three `RateLimit-*`
//!   headers added to its response.
//! - [`BreakerLayer`] asks a walden circuit breaker before each request. While the breaker is
//!   open the request gets `503 Service Unavailable` with `Retry-After`; otherwise the request
//!   runs and a [`Classify`] decides whether its response or error is a failure. A call slower
//!   than the layer's slow-call threshold is a failure. A call whose future is dropped before
//!   it finished (a timeout layer outside this one, a client that went away) is reported as a
//!   failed call with its elapsed time.
//! - [`DetachLayer`] runs calls to completion on their own task, so a client that hangs up
//!   (hyper drops its request's future) is not counted as a failure of the dependency;
//!   put it outside the breaker and outside the breaker's timeout.
//!
//! With [`Protocol::Grpc`] both answer as gRPC does (HTTP 200, `grpc-status` 8
//! `RESOURCE_EXHAUSTED` or 14 `UNAVAILABLE`, the same headers as metadata), so the layers sit
//! in a tonic server's stack as well as on an axum router.
//!
//! walden's handles block (they wait for an fsync), so the layers reach them through the small
//! async traits [`RateLimitBackend`] and [`BreakerBackend`], implemented here for
//! [`walden::RateLimiter`] and [`walden::CircuitBreaker`], and for the shared interface's
//! `Arc<dyn walden::api::Limiter>` and `Arc<dyn walden::api::Breaker>` (the embedded store or
//! Redis, chosen by configuration), on tokio's blocking pool: an executor worker never waits
//! for a disk or a network round trip. A permit dropped without an outcome is dropped there too
//! ([`BlockingDrop`]), since recording it as a failed call may wait for an fsync.
//!
//! ```no_run
//! use std::time::Duration;
//! use axum::{routing::get, Router};
//! use walden::{BreakerConfig, Quota, Store};
//! use walden_tower::{BreakerLayer, ClientIp, DetachLayer, RateLimitLayer};
//!
//! # fn build() -> walden::Result<Router> {
//! let store = Store::open("./state")?;
//! let limiter = store.rate_limiter("api", Quota::per_minute(600).with_burst(50))?;
//! let breaker = store.breaker("backend", BreakerConfig::default())?;
//! let app = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(BreakerLayer::new(breaker).slow_call_threshold(Duration::from_secs(2)))
//!     .layer(DetachLayer)
//!     .layer(RateLimitLayer::new(limiter, ClientIp::new()));
//! # Ok(app)
//! # }
//! ```

#![warn(missing_docs)]

mod backend;
mod breaker;
mod detach;
mod key;
mod ratelimit;
mod reject;

pub use backend::{Admission, BlockingDrop, BoxFuture, BreakerBackend, RateLimitBackend};
pub use breaker::{Breaker, BreakerLayer, Classify, ClassifyFn, ServerErrors};
pub use detach::{Detach, DetachLayer};
pub use key::{
    ApiKey, AuthenticatedUser, ClientIp, Header, KeyExtractor, KeyFn, UserId, ANONYMOUS_KEY,
    DEFAULT_IPV6_PREFIX_BITS,
};
pub use ratelimit::{RateLimit, RateLimitLayer};
pub use reject::{
    Protocol, GRPC_RESOURCE_EXHAUSTED, GRPC_UNAVAILABLE, RATELIMIT_LIMIT, RATELIMIT_REMAINING,
    RATELIMIT_RESET,
};
