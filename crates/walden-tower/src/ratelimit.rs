//! The rate-limit layer: one cell per request, 429 with the RateLimit headers when none is left.

use std::task::{Context, Poll};

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::backend::{BoxFuture, RateLimitBackend};
use crate::key::{KeyExtractor, ANONYMOUS_KEY};
use crate::reject::{reject, set_ratelimit_headers, set_retry_after, Protocol, Reason};

/// Rate-limits requests per key: see the [crate docs](crate).
///
/// | outcome | answer |
/// |---|---|
/// | allowed | the service's response, plus `RateLimit-Limit/-Remaining/-Reset` |
/// | denied | `429` (gRPC: `RESOURCE_EXHAUSTED`) with those headers and `Retry-After` |
/// | the store refuses the key (too long, invalid) | `400` (gRPC: `INVALID_ARGUMENT`) |
/// | the store fails (poisoned, closed) | `503` (gRPC: `UNAVAILABLE`), or the request passes after [`fail_open`](Self::fail_open) |
///
/// The cell is spent (and, with walden's default durability, fsynced) before the service runs,
/// so a request the client abandons still counts.
#[derive(Debug, Clone)]
pub struct RateLimitLayer<L, K> {
    backend: L,
    key: K,
    protocol: Protocol,
    fail_open: bool,
}

impl<L: RateLimitBackend, K: KeyExtractor> RateLimitLayer<L, K> {
    /// Limits by `key` with `backend` (e.g. a [`walden::RateLimiter`]), answering in HTTP.
    pub fn new(backend: L, key: K) -> Self {
        RateLimitLayer { backend, key, protocol: Protocol::Http, fail_open: false }
    }

    /// Answers rejections as gRPC does (for tonic).
    pub fn grpc(self) -> Self {
        RateLimitLayer { protocol: Protocol::Grpc, ..self }
    }

    /// Lets requests through unlimited when the limiter's store fails, instead of `503`.
    pub fn fail_open(self) -> Self {
        RateLimitLayer { fail_open: true, ..self }
    }
}

impl<S, L: Clone, K: Clone> Layer<S> for RateLimitLayer<L, K> {
    type Service = RateLimit<S, L, K>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit { inner, layer: RateLimitLayer::clone(self) }
    }
}

/// The service [`RateLimitLayer`] wraps around another.
#[derive(Debug, Clone)]
pub struct RateLimit<S, L, K> {
    inner: S,
    layer: RateLimitLayer<L, K>,
}

impl<S, L, K, ReqB, ResB> Service<Request<ReqB>> for RateLimit<S, L, K>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    L: RateLimitBackend,
    K: KeyExtractor,
    ReqB: Send + 'static,
    ResB: Default + Send + 'static,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<ResB>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        // The clone that was polled ready serves this request; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let key = self.layer.key.extract(&req).unwrap_or_else(|| ANONYMOUS_KEY.to_owned());
        let check = self.layer.backend.check(key);
        let (protocol, fail_open) = (self.layer.protocol, self.layer.fail_open);
        Box::pin(async move {
            let decision = match check.await {
                Ok(d) => d,
                Err(e @ (walden::Error::TooLarge { .. } | walden::Error::InvalidName { .. })) => {
                    tracing::debug!(error = %e, "rate-limit key refused");
                    return Ok(reject(protocol, Reason::BadKey));
                }
                Err(e) if fail_open => {
                    tracing::warn!(error = %e, "rate limiter failed; request let through");
                    return inner.call(req).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "rate limiter failed; request refused");
                    return Ok(reject(protocol, Reason::Unavailable));
                }
            };
            if !decision.allowed {
                let mut res = reject(protocol, Reason::RateLimited);
                set_ratelimit_headers(res.headers_mut(), &decision);
                set_retry_after(res.headers_mut(), Some(decision.retry_after));
                return Ok(res);
            }
            let mut res = inner.call(req).await?;
            set_ratelimit_headers(res.headers_mut(), &decision);
            Ok(res)
        })
    }
}
