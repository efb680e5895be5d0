//! The layers on an axum router, over real HTTP (a TCP listener on 127.0.0.1:0 and reqwest):
//! 429 with the RateLimit headers and Retry-After, 503 with Retry-After once the breaker has
//! opened, the classifier and the slow-call threshold, and calls cancelled by a timeout layer
//! counted as failures. The store uses the real clock; quotas are per minute and breakers stay
//! open for a minute, so nothing depends on how fast the machine is.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tower::ServiceBuilder;
use walden::api::Backend;
use walden::{BreakerConfig, CircuitState, FailureRate, Quota, Store};
use walden_tower::{BreakerLayer, ClassifyFn, ClientIp, DetachLayer, Header, RateLimitLayer};

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers().get(name).unwrap_or_else(|| panic!("no {name}")).to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_quota_answers_429_with_ratelimit_headers_and_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let limiter = store.rate_limiter("api", Quota::per_minute(3)).unwrap();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(RateLimitLayer::new(limiter.clone(), ClientIp::new()));
    let base = serve(app).await;
    let client = reqwest::Client::new();
    for remaining in ["2", "1", "0"] {
        let res = client.get(&base).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "ratelimit-limit"), "3");
        assert_eq!(header(&res, "ratelimit-remaining"), remaining);
    }
    let res = client.get(&base).send().await.unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(header(&res, "ratelimit-limit"), "3");
    assert_eq!(header(&res, "ratelimit-remaining"), "0");
    assert_eq!(header(&res, "retry-after"), "20", "one cell per 20 s");
    let reset: u64 = header(&res, "ratelimit-reset").parse().unwrap();
    assert!((59..=60).contains(&reset), "full burst back in a minute, got {reset}");
    // The bucket is the client's address, as stored.
    assert!(!limiter.peek("ip:127.0.0.1").unwrap().allowed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_key_share_one_bucket_and_keys_have_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let limiter = store.rate_limiter("api", Quota::per_minute(1)).unwrap();
    let key = Header::new("x-tenant".parse().unwrap());
    let app =
        Router::new().route("/", get(|| async { "ok" })).layer(RateLimitLayer::new(limiter, key));
    let base = serve(app).await;
    let c = reqwest::Client::new();
    assert_eq!(c.get(&base).send().await.unwrap().status(), 200);
    assert_eq!(c.get(&base).send().await.unwrap().status(), 429, "the anonymous bucket is spent");
    let tenant = |t: &'static str| c.get(&base).header("x-tenant", t);
    assert_eq!(tenant("a").send().await.unwrap().status(), 200);
    assert_eq!(tenant("b").send().await.unwrap().status(), 200);
    assert_eq!(tenant("a").send().await.unwrap().status(), 429);
    let long = "x".repeat(2_000);
    let res = c.get(&base).header("x-tenant", long).send().await.unwrap();
    assert_eq!(res.status(), 400, "a key the store refuses is a bad request, not a 500");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_open_the_breaker_and_it_answers_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let breaker = store.breaker("upstream", BreakerConfig::default()).unwrap();
    let app = Router::new()
        .route("/fail", get(|| async { StatusCode::BAD_GATEWAY }))
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .layer(BreakerLayer::new(breaker.clone()));
    let base = serve(app).await;
    let c = reqwest::Client::new();
    for _ in 0..5 {
        let res = c.get(format!("{base}/missing")).send().await.unwrap();
        assert_eq!(res.status(), 404, "4xx are the client's doing");
    }
    assert_eq!(breaker.state(), CircuitState::Closed);
    for _ in 0..3 {
        assert_eq!(c.get(format!("{base}/fail")).send().await.unwrap().status(), 502);
    }
    assert_eq!(breaker.state(), CircuitState::Open);
    let res = c.get(format!("{base}/missing")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let retry: u64 = header(&res, "retry-after").parse().unwrap();
    assert!((59..=60).contains(&retry), "open for 60 s, got {retry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_classifier_and_the_slow_call_threshold_decide_what_fails() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let config = BreakerConfig { consecutive_failures: Some(100), ..BreakerConfig::default() };
    let breaker = store.breaker("b", config).unwrap();
    let not_found_fails =
        ClassifyFn::new(|outcome: Option<(StatusCode, &axum::http::HeaderMap)>| {
            outcome.is_none_or(|(status, _)| status == StatusCode::NOT_FOUND)
        });
    let app = Router::new()
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route("/error", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "late"
            }),
        )
        .layer(
            BreakerLayer::new(breaker.clone())
                .classifier(not_found_fails)
                .slow_call_threshold(Duration::from_millis(200)),
        );
    let base = serve(app).await;
    let c = reqwest::Client::new();
    c.get(format!("{base}/error")).send().await.unwrap();
    assert_eq!(breaker.health().consecutive_failures, 0, "500 is fine for this classifier");
    c.get(format!("{base}/missing")).send().await.unwrap();
    assert_eq!(breaker.health().consecutive_failures, 1);
    let res = c.get(format!("{base}/slow")).send().await.unwrap();
    assert_eq!(res.status(), 200, "a slow call still returns its response");
    assert_eq!(breaker.health().consecutive_failures, 2, "and counts as a failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_cancelled_by_a_timeout_layer_count_as_failures_and_open_the_breaker() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let breaker = store.breaker("slow-upstream", BreakerConfig::default()).unwrap();
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "never"
            }),
        )
        // The timeout is outside the breaker: it cancels by dropping the breaker's future.
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                    StatusCode::GATEWAY_TIMEOUT
                }))
                .timeout(Duration::from_millis(100))
                .layer(BreakerLayer::new(breaker.clone())),
        );
    let base = serve(app).await;
    let c = reqwest::Client::new();
    for _ in 0..3 {
        assert_eq!(c.get(&base).send().await.unwrap().status(), 504);
    }
    // The report of a cancelled call runs on a spawned task; give it a moment.
    for _ in 0..500 {
        if breaker.state() == CircuitState::Open {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(breaker.state(), CircuitState::Open, "three cancelled calls are three failures");
    assert_eq!(c.get(&base).send().await.unwrap().status(), 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_counts_as_a_failure_unless_the_call_is_detached() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // A failure-rate window counts finished calls, so the test can wait for each to finish.
    let config = BreakerConfig {
        failure_rate: Some(FailureRate {
            threshold_percent: 100,
            window_calls: 10,
            minimum_calls: 10,
        }),
        ..BreakerConfig::default()
    };
    let attached = store.breaker("attached", config.clone()).unwrap();
    let detached = store.breaker("detached", config).unwrap();
    let slow = || async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        "done"
    };
    let app = Router::new()
        .route("/attached", get(slow).layer(BreakerLayer::new(attached.clone())))
        .route(
            "/detached",
            get(slow).layer(
                ServiceBuilder::new().layer(DetachLayer).layer(BreakerLayer::new(detached.clone())),
            ),
        );
    let base = serve(app).await;
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(50)).build().unwrap();
    for path in ["attached", "detached"] {
        assert!(impatient.get(format!("{base}/{path}")).send().await.is_err(), "client gave up");
    }
    for _ in 0..500 {
        if attached.health().window_calls == 1 && detached.health().window_calls == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(attached.health().consecutive_failures, 1, "hyper dropped the call");
    assert_eq!(detached.health().consecutive_failures, 0, "the call ran to its success");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layers_run_on_the_shared_interface_handles_too() {
    let dir = tempfile::tempdir().unwrap();
    let backend: Arc<dyn Backend> = Arc::new(Store::open(dir.path()).unwrap());
    let limiter = backend.rate_limiter("api", Quota::per_minute(2)).unwrap();
    let breaker = backend.breaker("upstream", BreakerConfig::default()).unwrap();
    let app = Router::new()
        .route(
            "/hang",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "never"
            }),
        )
        .layer(
            ServiceBuilder::new()
                .layer(RateLimitLayer::new(limiter, Header::new("x-client".parse().unwrap())))
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                    StatusCode::GATEWAY_TIMEOUT
                }))
                .timeout(Duration::from_millis(100))
                .layer(BreakerLayer::new(breaker.clone())),
        );
    let base = serve(app).await;
    let c = reqwest::Client::new();
    for client in ["a", "a", "b"] {
        let res = c.get(format!("{base}/hang")).header("x-client", client).send().await.unwrap();
        assert_eq!(res.status(), 504);
    }
    for _ in 0..500 {
        if breaker.state().unwrap() == CircuitState::Open {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(breaker.state().unwrap(), CircuitState::Open, "three timeouts: three failures");
    let res = c.get(format!("{base}/hang")).header("x-client", "a").send().await.unwrap();
    assert_eq!(res.status(), 429, "the rate limit is outside the breaker");
    assert_eq!(header(&res, "retry-after"), "30");
    let res = c.get(format!("{base}/hang")).header("x-client", "c").send().await.unwrap();
    assert_eq!(res.status(), 503);
}
