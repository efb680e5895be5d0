//! An HTTP-style handler guarded by walden's durable limiters: a rate limiter per client IP
//! (answering with `RateLimit-*` and `Retry-After` headers) and a circuit breaker around a
//! flaky upstream. No web framework: requests and responses are plain structs, and a
//! `ManualClock` lets the simulation skip a minute without waiting.
//!
//! Run with `cargo run --example http_handler`.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use walden::{
    Acquire, BreakerConfig, CircuitBreaker, ManualClock, Options, Quota, RateLimiter, Store,
};

struct Request {
    client_ip: &'static str,
    path: &'static str,
}

struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

struct App {
    per_client: RateLimiter,
    upstream: CircuitBreaker,
    /// Whether the simulated upstream answers.
    upstream_up: Cell<bool>,
}

/// Whole seconds, rounded up, as HTTP headers want them.
fn secs(d: Duration) -> String {
    d.as_nanos().div_ceil(1_000_000_000).to_string()
}

fn call_upstream(app: &App, path: &str) -> Result<String, String> {
    if app.upstream_up.get() {
        Ok(format!("contents of {path}"))
    } else {
        Err("connection refused".to_owned())
    }
}

fn handle(app: &App, req: &Request) -> walden::Result<Response> {
    let d = app.per_client.check(req.client_ip)?;
    let mut headers = vec![
        ("RateLimit-Limit", d.limit.to_string()),
        ("RateLimit-Remaining", d.remaining.to_string()),
        ("RateLimit-Reset", secs(d.reset_after)),
    ];
    if !d.allowed {
        headers.push(("Retry-After", secs(d.retry_after)));
        return Ok(Response { status: 429, headers, body: "too many requests".into() });
    }
    let permit = match app.upstream.try_acquire()? {
        Acquire::Permitted(permit) => permit,
        Acquire::Rejected { retry_after } => {
            if let Some(r) = retry_after {
                headers.push(("Retry-After", secs(r)));
            }
            return Ok(Response { status: 503, headers, body: "upstream unavailable".into() });
        }
    };
    match call_upstream(app, req.path) {
        Ok(body) => {
            permit.success()?;
            Ok(Response { status: 200, headers, body })
        }
        Err(e) => {
            permit.failure()?;
            Ok(Response { status: 502, headers, body: e })
        }
    }
}

fn main() {
    if let Err(e) = run() {
        // Display, not Debug: what an operator reads.
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> walden::Result<()> {
    let dir = std::env::temp_dir().join(format!("walden-http-example-{}", std::process::id()));
    let clock = ManualClock::new(1_700_000_000_000_000_000);
    let options = Options { clock: Arc::new(clock.clone()), ..Options::default() };
    let store = Store::open_with(&dir, options)?;
    let app = App {
        per_client: store.rate_limiter("per-client", Quota::per_minute(30).with_burst(3))?,
        upstream: store.breaker("upstream", BreakerConfig::default())?,
        upstream_up: Cell::new(true),
    };
    let serve = |label: &str, req: Request| -> walden::Result<()> {
        let r = handle(&app, &req)?;
        let headers: Vec<String> = r.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        println!(
            "{label:<28} {} {:<8} -> {} [{}] {}",
            req.client_ip,
            req.path,
            r.status,
            headers.join(", "),
            r.body
        );
        Ok(())
    };

    for _ in 0..4 {
        serve("burst from one client", Request { client_ip: "10.0.0.1", path: "/a" })?;
    }
    serve("another client", Request { client_ip: "10.0.0.2", path: "/a" })?;

    app.upstream_up.set(false);
    for ip in ["10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"] {
        serve("upstream down", Request { client_ip: ip, path: "/b" })?;
    }
    clock.advance_ns(61_000_000_000);
    app.upstream_up.set(true);
    serve("61 s later: probe", Request { client_ip: "10.0.0.7", path: "/b" })?;
    serve("breaker closed again", Request { client_ip: "10.0.0.8", path: "/b" })?;

    for h in store.breakers() {
        println!("breaker {}: {:?}, generation {}", h.name, h.state, h.generation);
    }
    println!("idle rate-limit keys swept: {}", store.sweep_rate_limits());
    println!("rate-limit state: {:?}", store.rate_limit_stats());
    drop(app);
    store.close()?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
