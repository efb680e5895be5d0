//! The circuit-breaker layer: 503 while open; every permitted call reports one outcome.
//!
//! A call ends when the inner service returns its response (headers) or error; a streamed body
//! is not timed. A call whose future is dropped first — tower's timeout layer cancels that way,
//! and so does hyper when the client goes away — is reported as a *failed* call with the time
//! it ran, so it is also a slow call if it ran past the threshold (the same rule as a walden
//! permit dropped without an outcome). The report is sent from `Drop` on a spawned task.
//! Put [`DetachLayer`](crate::DetachLayer) outside the breaker so that a client hanging up is
//! not mistaken for a failing dependency.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{HeaderMap, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use crate::backend::{Admission, BoxFuture, BreakerBackend};
use crate::reject::{reject, set_retry_after, Protocol, Reason};

/// Decides whether a call failed, from its response or error.
pub trait Classify<E>: Clone + Send + Sync + 'static {
    /// `true` when the outcome counts as a failure for the breaker.
    fn is_failure<B>(&self, outcome: Result<&Response<B>, &E>) -> bool;
}

/// The default classifier: an error, an HTTP 5xx, or a gRPC status that means the server or a
/// dependency failed (`UNKNOWN` 2, `DEADLINE_EXCEEDED` 4, `INTERNAL` 13, `UNAVAILABLE` 14,
/// `DATA_LOSS` 15, read from a trailers-only response's headers). 4xx and other gRPC
/// statuses are the client's doing and count as successes.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerErrors;

/// gRPC statuses [`ServerErrors`] counts as failures.
const GRPC_FAILURE_CODES: [&str; 5] = ["2", "4", "13", "14", "15"];

impl<E> Classify<E> for ServerErrors {
    fn is_failure<B>(&self, outcome: Result<&Response<B>, &E>) -> bool {
        let Ok(res) = outcome else { return true };
        res.status().is_server_error()
            || res
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|code| GRPC_FAILURE_CODES.contains(&code))
    }
}

/// A classifier from a function of the status and headers (`None`: the service returned an
/// error).
pub struct ClassifyFn<F>(pub Arc<F>);

impl<F> Clone for ClassifyFn<F> {
    fn clone(&self) -> Self {
        ClassifyFn(Arc::clone(&self.0))
    }
}

impl<F> ClassifyFn<F>
where
    F: Fn(Option<(StatusCode, &HeaderMap)>) -> bool + Send + Sync + 'static,
{
    /// Wraps `f`.
    pub fn new(f: F) -> ClassifyFn<F> {
        ClassifyFn(Arc::new(f))
    }
}

impl<F, E> Classify<E> for ClassifyFn<F>
where
    F: Fn(Option<(StatusCode, &HeaderMap)>) -> bool + Send + Sync + 'static,
{
    fn is_failure<B>(&self, outcome: Result<&Response<B>, &E>) -> bool {
        (self.0)(outcome.ok().map(|r| (r.status(), r.headers())))
    }
}

/// Guards calls with a circuit breaker: see the [crate docs](crate).
///
/// | outcome | answer |
/// |---|---|
/// | breaker open | `503` (gRPC: `UNAVAILABLE`) with `Retry-After` when the wait is known |
/// | the store fails (poisoned, closed) | `503` without `Retry-After` |
/// | permitted | the service's response or error, reported to the breaker |
#[derive(Debug, Clone)]
pub struct BreakerLayer<B, C = ServerErrors> {
    backend: B,
    classifier: C,
    slow_call_threshold: Option<Duration>,
    protocol: Protocol,
}

impl<B: BreakerBackend> BreakerLayer<B> {
    /// Guards with `backend` (e.g. a [`walden::CircuitBreaker`]), counting [`ServerErrors`].
    pub fn new(backend: B) -> Self {
        BreakerLayer {
            backend,
            classifier: ServerErrors,
            slow_call_threshold: None,
            protocol: Protocol::Http,
        }
    }
}

impl<B: BreakerBackend, C> BreakerLayer<B, C> {
    /// Counts failures with `classifier` instead.
    pub fn classifier<C2>(self, classifier: C2) -> BreakerLayer<B, C2> {
        BreakerLayer {
            backend: self.backend,
            classifier,
            slow_call_threshold: self.slow_call_threshold,
            protocol: self.protocol,
        }
    }

    /// A call that takes at least `threshold` is a failure even if it succeeded. (The elapsed
    /// time is also passed to the breaker, so walden's `BreakerConfig::slow_call_threshold`
    /// applies as well.)
    pub fn slow_call_threshold(self, threshold: Duration) -> Self {
        BreakerLayer { slow_call_threshold: Some(threshold), ..self }
    }

    /// Answers rejections as gRPC does (for tonic).
    pub fn grpc(self) -> Self {
        BreakerLayer { protocol: Protocol::Grpc, ..self }
    }
}

impl<S, B: Clone, C: Clone> Layer<S> for BreakerLayer<B, C> {
    type Service = Breaker<S, B, C>;

    fn layer(&self, inner: S) -> Self::Service {
        Breaker { inner, layer: BreakerLayer::clone(self) }
    }
}

/// The service [`BreakerLayer`] wraps around another.
#[derive(Debug, Clone)]
pub struct Breaker<S, B, C> {
    inner: S,
    layer: BreakerLayer<B, C>,
}

impl<S, B, C, ReqB, ResB> Service<Request<ReqB>> for Breaker<S, B, C>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: BreakerBackend,
    C: Classify<S::Error>,
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
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let permit = match layer.backend.acquire().await {
                Ok(Admission::Permitted(permit)) => permit,
                Ok(Admission::Rejected { retry_after }) => {
                    let mut res = reject(layer.protocol, Reason::BreakerOpen);
                    set_retry_after(res.headers_mut(), retry_after);
                    return Ok(res);
                }
                Err(e) => {
                    tracing::warn!(breaker = layer.backend.name(), error = %e, "breaker failed");
                    return Ok(reject(layer.protocol, Reason::Unavailable));
                }
            };
            let mut call = Call {
                backend: layer.backend.clone(),
                permit: Some(permit),
                started: Instant::now(),
            };
            let result = inner.call(req).await;
            let elapsed = call.started.elapsed();
            let slow = layer.slow_call_threshold.is_some_and(|t| elapsed >= t);
            let ok = !slow && !layer.classifier.is_failure(result.as_ref());
            if let Some(permit) = call.permit.take() {
                if let Err(e) = layer.backend.finish(permit, ok, elapsed).await {
                    tracing::warn!(breaker = layer.backend.name(), error = %e, "outcome not recorded");
                }
            }
            result
        })
    }
}

/// A permitted call in flight: dropped with its permit still inside, it reports a failure.
struct Call<B: BreakerBackend> {
    backend: B,
    permit: Option<B::Permit>,
    started: Instant,
}

impl<B: BreakerBackend> Drop for Call<B> {
    fn drop(&mut self) {
        let Some(permit) = self.permit.take() else { return };
        let elapsed = self.started.elapsed();
        tracing::debug!(
            breaker = self.backend.name(),
            ?elapsed,
            "call cancelled: counted as failed"
        );
        let report = self.backend.finish(permit, false, elapsed);
        let name = self.backend.name().to_owned();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if let Err(e) = report.await {
                        tracing::warn!(breaker = name, error = %e, "cancelled call not recorded");
                    }
                });
            }
            // No runtime to report from: the permit is dropped inside `report`, and the
            // backend's own rule for an unreported permit applies.
            Err(_) => tracing::warn!(breaker = name, "cancelled call dropped outside a runtime"),
        }
    }
}
