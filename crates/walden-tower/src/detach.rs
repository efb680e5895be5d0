//! Running a call to completion when the client goes away.
//!
//! hyper drops a request's future when its connection closes, so a breaker layer sees a client
//! that hung up exactly as it sees a call its timeout cancelled: a failed call. That is the
//! right answer for a timeout (the dependency was too slow), and a wrong one for a client that
//! left: a few clients that open requests and close their connections would open the breaker
//! for everyone. Put [`DetachLayer`] outside the breaker (and outside its timeout, if any): the
//! call then runs to its end on its own task, the breaker counts its real outcome, and a
//! timeout inside still cancels.

use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use crate::backend::BoxFuture;

/// Runs each call of the inner service on its own tokio task, so dropping the response future
/// does not cancel the call. The answer of a call nobody waits for is dropped when it arrives.
#[derive(Debug, Clone, Copy, Default)]
pub struct DetachLayer;

impl<S> Layer<S> for DetachLayer {
    type Service = Detach<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Detach { inner }
    }
}

/// The service [`DetachLayer`] wraps around another.
#[derive(Debug, Clone)]
pub struct Detach<S> {
    inner: S,
}

impl<S, Req> Service<Req> for Detach<S>
where
    S: Service<Req> + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let task = tokio::spawn(self.inner.call(req));
        Box::pin(async move {
            match task.await {
                Ok(result) => result,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Only a runtime shutting down cancels the task; nothing polls this future
                // after that, and there is no answer to give.
                Err(_) => std::future::pending().await,
            }
        })
    }
}
