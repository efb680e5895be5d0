//! The layers in a tonic server's stack, over real gRPC (HTTP/2 on 127.0.0.1:0): the standard
//! health service (`tonic-health`, so no protobuf compiler is needed) behind a rate limit keyed
//! by an API key in the request metadata and a circuit breaker. Denials arrive as
//! `RESOURCE_EXHAUSTED` with the rate-limit metadata, an open breaker as `UNAVAILABLE` with
//! `retry-after`, and gRPC error statuses open the breaker through a classifier.

use std::time::Duration;

use tonic::transport::{Channel, Server};
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use walden::{BreakerConfig, Quota, Store};
use walden_tower::{ApiKey, BreakerLayer, ClassifyFn, RateLimitLayer};

async fn serve(store: &Store) -> Channel {
    let limiter = store.rate_limiter("grpc", Quota::per_minute(2)).unwrap();
    let breaker = store.breaker("grpc-backend", BreakerConfig::default()).unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(async move {
        Server::builder()
            .layer(RateLimitLayer::new(limiter, ApiKey::default()).grpc())
            .layer(BreakerLayer::new(breaker).grpc())
            .add_service(health)
            .serve_with_incoming(incoming)
            .await
            .unwrap()
    });
    Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap()
}

fn check(key: &str) -> tonic::Request<HealthCheckRequest> {
    let mut req = tonic::Request::new(HealthCheckRequest { service: String::new() });
    req.metadata_mut().insert("x-api-key", key.parse().unwrap());
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_get_resource_exhausted_and_unavailable_with_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut client = HealthClient::new(serve(&store).await);

    let ok = client.check(check("k1")).await.unwrap();
    assert_eq!(ok.metadata().get("ratelimit-remaining").unwrap(), "1");
    client.check(check("k1")).await.unwrap();
    let denied = client.check(check("k1")).await.unwrap_err();
    assert_eq!(denied.code(), Code::ResourceExhausted);
    assert_eq!(denied.metadata().get("ratelimit-limit").unwrap(), "2");
    assert_eq!(denied.metadata().get("ratelimit-remaining").unwrap(), "0");
    assert_eq!(denied.metadata().get("retry-after").unwrap(), "30");
    client.check(check("k2")).await.expect("another key has its own quota");

    store.breaker("grpc-backend", BreakerConfig::default()).unwrap().force_open().unwrap();
    let open = client.check(check("k3")).await.unwrap_err();
    assert_eq!(open.code(), Code::Unavailable);
    assert!(open.metadata().get("retry-after").is_none(), "forced open: no known end");

    let breaker = store.breaker(
        "grpc-backend",
        BreakerConfig { open_duration: Duration::from_secs(90), ..BreakerConfig::default() },
    );
    breaker.unwrap().reset().unwrap();
    client.check(check("k4")).await.expect("reset breaker lets calls through");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_error_statuses_open_the_breaker_through_a_classifier() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let breaker = store.breaker("health", BreakerConfig::default()).unwrap();
    // For this test, NOT_FOUND (an unknown service name) counts as a failure.
    let not_found_fails =
        ClassifyFn::new(|outcome: Option<(http::StatusCode, &http::HeaderMap)>| {
            outcome.is_none_or(|(_, headers)| headers.get("grpc-status").is_some_and(|s| s == "5"))
        });
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let layer = BreakerLayer::new(breaker.clone()).classifier(not_found_fails).grpc();
    tokio::spawn(async move {
        Server::builder().layer(layer).add_service(health).serve_with_incoming(incoming).await
    });
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let mut client = HealthClient::new(channel);
    let unknown = || tonic::Request::new(HealthCheckRequest { service: "nope".into() });
    for _ in 0..3 {
        assert_eq!(client.check(unknown()).await.unwrap_err().code(), Code::NotFound);
    }
    assert_eq!(breaker.state(), walden::CircuitState::Open);
    let open = client.check(check("any")).await.unwrap_err();
    assert_eq!(open.code(), Code::Unavailable);
    let retry: u64 = open.metadata().get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((59..=60).contains(&retry), "retry-after {retry}");
}
