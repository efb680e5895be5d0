//! What the breaker layer reports to its backend, seen through a recording backend (no store,
//! no HTTP): one outcome per permitted call, with its elapsed time; a cancelled call reported
//! as failed with the time it ran; gRPC statuses classified as the default classifier says.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use tower::{service_fn, Layer, ServiceExt};
use walden_tower::{Admission, BoxFuture, BreakerBackend, BreakerLayer};

/// Admits every call and records each reported `(ok, elapsed)`.
#[derive(Clone, Default)]
struct Recorder {
    outcomes: Arc<Mutex<Vec<(bool, Duration)>>>,
}

impl BreakerBackend for Recorder {
    type Permit = ();

    fn name(&self) -> &str {
        "recorder"
    }

    fn acquire(&self) -> BoxFuture<walden::Result<Admission<()>>> {
        Box::pin(async { Ok(Admission::Permitted(())) })
    }

    fn finish(&self, _: (), ok: bool, elapsed: Duration) -> BoxFuture<walden::Result<bool>> {
        self.outcomes.lock().unwrap().push((ok, elapsed));
        Box::pin(async { Ok(true) })
    }
}

/// Response headers of a test case.
type Headers = &'static [(&'static str, &'static str)];

/// A service that answers `headers` after `delay`.
fn answering(
    delay: Duration,
    headers: Headers,
    status: u16,
) -> impl tower::Service<
    Request<()>,
    Response = Response<String>,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    service_fn(move |_req: Request<()>| async move {
        tokio::time::sleep(delay).await;
        let mut res = Response::builder().status(status);
        for (k, v) in headers {
            res = res.header(*k, *v);
        }
        Ok(res.body(String::new()).unwrap())
    })
}

#[tokio::test]
async fn a_cancelled_call_is_reported_as_failed_with_the_time_it_ran() {
    let rec = Recorder::default();
    let svc = BreakerLayer::new(rec.clone()).layer(answering(Duration::from_secs(10), &[], 200));
    let call = svc.oneshot(Request::new(()));
    assert!(tokio::time::timeout(Duration::from_millis(100), call).await.is_err());
    tokio::task::yield_now().await; // the report runs on a spawned task
    tokio::time::sleep(Duration::from_millis(10)).await;
    let outcomes = rec.outcomes.lock().unwrap().clone();
    assert_eq!(outcomes.len(), 1, "one outcome for one call");
    let (ok, elapsed) = outcomes[0];
    assert!(!ok, "cancelled = failed");
    assert!(elapsed >= Duration::from_millis(100), "elapsed {elapsed:?}");
}

#[tokio::test]
async fn finished_calls_report_once_with_their_classification_and_slowness() {
    let rec = Recorder::default();
    let layer = BreakerLayer::new(rec.clone()).slow_call_threshold(Duration::from_millis(50));
    let cases: [(u64, Headers, u16, bool); 6] = [
        (0, &[], 200, true),
        (0, &[], 404, true),
        (0, &[], 503, false),
        (0, &[("grpc-status", "14")], 200, false),
        (0, &[("grpc-status", "5")], 200, true), // NOT_FOUND is the caller's business
        (80, &[], 200, false),                   // slow
    ];
    for (delay_ms, headers, status, _) in cases {
        let svc = layer.layer(answering(Duration::from_millis(delay_ms), headers, status));
        svc.oneshot(Request::new(())).await.unwrap();
    }
    let outcomes = rec.outcomes.lock().unwrap().clone();
    let oks: Vec<bool> = outcomes.iter().map(|(ok, _)| *ok).collect();
    assert_eq!(oks, cases.map(|c| c.3).to_vec());
    assert!(outcomes[5].1 >= Duration::from_millis(80), "the elapsed time is passed on");
}
