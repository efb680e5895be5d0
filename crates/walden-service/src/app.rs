//! The router: routes, the layers on them, `/health` and the upstream route.
//!
//! ```text
//! /docs/{collection}/{key}   rate limit ─▶ detach ─▶ breaker "documents" ─▶ walden (or a comparison backend)
//! /upstream/{*path}          rate limit ─▶ detach ─▶ timeout ─▶ breaker "upstream" ─▶ GET --upstream
//! /health                    breaker states, no layers
//! ```
//!
//! The timeout sits outside the upstream breaker on purpose: it cancels a slow call by
//! dropping the breaker's future, and the breaker layer reports that as a failed call. The
//! detach layer sits outside both: a client that hangs up does not cancel the call, so it
//! cannot open a breaker by disconnecting; the call runs to its end and counts as it went.

use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;
use tower::ServiceBuilder;

use walden::api::{self, Breaker};
use walden::{BreakerConfig, CircuitState, Quota, Store};
use walden_tower::{
    ApiKey, BreakerLayer, ClientIp, DetachLayer, Header, KeyExtractor, RateLimitLayer,
};

use crate::http::{delete_doc, get_doc, put_doc, Docs};
use crate::Args;

/// The breaker around the document backend (5xx from the store open it).
pub const DOCUMENTS_BREAKER: &str = "documents";
/// The breaker around the upstream route.
pub const UPSTREAM_BREAKER: &str = "upstream";
/// The rate limiter of every limited route.
pub const LIMITER_NAME: &str = "requests";

/// The rate-limit key chosen with `--limit-key`.
#[derive(Debug, Clone)]
pub enum LimitKey {
    Ip(ClientIp),
    ApiKey(ApiKey),
    Header(Header),
}

impl LimitKey {
    fn parse(s: &str) -> Result<LimitKey, String> {
        Ok(match s {
            "ip" => LimitKey::Ip(ClientIp::new()),
            "api-key" => LimitKey::ApiKey(ApiKey::default()),
            _ => {
                let name = s.strip_prefix("header:").ok_or(format!("unknown --limit-key {s}"))?;
                let name = name.parse::<HeaderName>().map_err(|e| format!("{name}: {e}"))?;
                LimitKey::Header(Header::new(name))
            }
        })
    }
}

impl KeyExtractor for LimitKey {
    fn extract<B>(&self, req: &axum::http::Request<B>) -> Option<String> {
        match self {
            LimitKey::Ip(k) => k.extract(req),
            LimitKey::ApiKey(k) => k.extract(req),
            LimitKey::Header(k) => k.extract(req),
        }
    }
}

/// Builds the router from the command line.
pub fn router(
    args: &Args,
    state: &Arc<dyn api::Backend>,
    store: &Store,
    docs: Docs,
) -> Result<Router, String> {
    let config = BreakerConfig {
        consecutive_failures: Some(args.breaker_failures),
        open_duration: Duration::from_secs(args.breaker_open_secs),
        ..BreakerConfig::default()
    };
    let slow = Duration::from_millis(args.slow_call_ms);
    let mut breakers: Vec<Arc<dyn Breaker>> = Vec::new();
    let mut breaker = |name| -> Result<_, String> {
        let b = state.breaker(name, config.clone()).map_err(|e| e.to_string())?;
        breakers.push(Arc::clone(&b));
        Ok(BreakerLayer::new(b).slow_call_threshold(slow))
    };
    let mut docs_routes = Router::new()
        .route("/docs/{collection}/{key}", get(get_doc).put(put_doc).delete(delete_doc))
        .layer(DefaultBodyLimit::max(walden::limits::DEFAULT_MAX_DOCUMENT_BYTES))
        .layer(ServiceBuilder::new().layer(DetachLayer).layer(breaker(DOCUMENTS_BREAKER)?))
        .with_state(docs.clone());
    let mut upstream_routes: Router = match &args.upstream {
        None => Router::new(),
        Some(base) => Router::new()
            .route("/upstream/{*path}", get(forward))
            .layer(
                ServiceBuilder::new()
                    .layer(DetachLayer)
                    .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                        StatusCode::GATEWAY_TIMEOUT
                    }))
                    .timeout(Duration::from_millis(args.upstream_timeout_ms))
                    .layer(breaker(UPSTREAM_BREAKER)?),
            )
            .with_state((reqwest::Client::new(), base.trim_end_matches('/').to_owned())),
    };
    if args.rate_per_minute > 0 {
        let quota = Quota::per_minute(args.rate_per_minute)
            .with_burst(args.burst.unwrap_or(args.rate_per_minute));
        let limiter = state.rate_limiter(LIMITER_NAME, quota).map_err(|e| e.to_string())?;
        let limit = RateLimitLayer::new(limiter, LimitKey::parse(&args.limit_key)?);
        docs_routes = docs_routes.layer(limit.clone());
        upstream_routes = upstream_routes.layer(limit);
    }
    let health_routes = Router::new().route("/health", get(health)).with_state(Health {
        breakers,
        store: store.clone(),
        backend: docs.name(),
    });
    Ok(Router::new().merge(docs_routes).merge(upstream_routes).merge(health_routes))
}

/// `GET /upstream/{*path}`: forwards a GET; an upstream 5xx or an unreachable upstream is a
/// `502` (a failure for the breaker).
async fn forward(
    State((client, base)): State<(reqwest::Client, String)>,
    Path(path): Path<String>,
) -> Response {
    match client.get(format!("{base}/{path}")).send().await {
        Ok(res) if res.status().is_server_error() => StatusCode::BAD_GATEWAY.into_response(),
        Ok(res) => {
            let status = StatusCode::from_u16(res.status().as_u16()).unwrap_or(StatusCode::OK);
            match res.bytes().await {
                Ok(body) => (status, body).into_response(),
                Err(_) => StatusCode::BAD_GATEWAY.into_response(),
            }
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

fn state_name(state: CircuitState) -> &'static str {
    match state {
        CircuitState::Closed => "closed",
        CircuitState::Open => "open",
        CircuitState::HalfOpen => "half-open",
        CircuitState::ForcedOpen => "forced-open",
        CircuitState::Disabled => "disabled",
    }
}

/// What `/health` reports on.
#[derive(Clone)]
struct Health {
    breakers: Vec<Arc<dyn Breaker>>,
    store: Store,
    backend: &'static str,
}

/// `GET /health`: `200` with every breaker's state; `503` once the store is poisoned.
async fn health(State(h): State<Health>) -> Response {
    // A breaker's health may be a round trip to its backend: not on an executor worker.
    match tokio::task::spawn_blocking(move || health_report(h)).await {
        Ok(res) => res,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn health_report(h: Health) -> Response {
    let Health { breakers, store, backend } = h;
    let breakers: Vec<_> = breakers
        .iter()
        .map(|b| match b.health() {
            Err(e) => json!({ "name": b.name(), "error": e.to_string() }),
            Ok(b) => json!({
                "name": b.name,
                "state": state_name(b.state),
                "generation": b.generation,
                "consecutive_failures": b.consecutive_failures,
                "open_until_unix_ns": b.open_until_unix_ns,
            }),
        })
        .collect();
    let poisoned = store.stats().poisoned.is_some();
    let status = if poisoned { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let body = json!({
        "status": if poisoned { "poisoned" } else { "ok" },
        "backend": backend,
        "breakers": breakers,
    });
    (status, Json(body)).into_response()
}
