//! walden-service: documents over HTTP on walden, behind durable rate limits and breakers.
//!
//! ```text
//! cargo run -p walden-service -- --dir ./service-data
//! ```
//!
//! prints `listening on http://ADDR` once the socket is bound, serves until SIGTERM or Ctrl-C,
//! then stops accepting, finishes the requests in flight, closes the store and prints
//! `store closed`. See `--help` for the limits, breakers and the upstream route.

mod app;
mod compare;
mod docs;
mod http;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use walden::Store;

use crate::docs::{Documents, WaldenDocs};

/// The directory under `--dir` that holds the walden store.
pub const STORE_DIR_NAME: &str = "store";

/// Documents over HTTP with ETags, durable rate limits (429) and circuit breakers (503).
#[derive(Debug, Parser)]
#[command(version)]
pub struct Args {
    /// Data directory (the walden store is `DIR/store`; comparison backends keep their files
    /// beside it).
    #[arg(long, default_value = "./walden-service-data")]
    pub dir: PathBuf,
    /// Address to listen on; port 0 picks a free one (the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where documents live.
    #[arg(long, value_enum, default_value_t = Backend::Walden)]
    pub backend: Backend,
    /// Requests per minute per rate-limit key (0: no rate limit).
    #[arg(long, default_value_t = 600)]
    pub rate_per_minute: u32,
    /// Most requests at once per key (default: the per-minute rate).
    #[arg(long)]
    pub burst: Option<u32>,
    /// What a rate-limit key is: `ip` (the client's address), `api-key` (the `x-api-key`
    /// header) or `header:NAME`.
    #[arg(long, default_value = "ip")]
    pub limit_key: String,
    /// Failures in a row that open a breaker.
    #[arg(long, default_value_t = 3)]
    pub breaker_failures: u32,
    /// Seconds an open breaker rejects calls before it lets a probe through.
    #[arg(long, default_value_t = 60)]
    pub breaker_open_secs: u64,
    /// A call slower than this many milliseconds counts as a failure.
    #[arg(long, default_value_t = 2_000)]
    pub slow_call_ms: u64,
    /// Base URL that `GET /upstream/{path}` forwards to, behind the `upstream` breaker.
    #[arg(long)]
    pub upstream: Option<String>,
    /// Milliseconds before an upstream call is cancelled (504; counted as a failed call).
    #[arg(long, default_value_t = 1_000)]
    pub upstream_timeout_ms: u64,
}

/// Document backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The walden store.
    Walden,
    /// One JSON file rewritten atomically per write (for the load comparison).
    JsonFile,
    /// SQLite, WAL, synchronous=FULL (for the load comparison; feature `bench-backends`).
    Sqlite,
}

fn open_documents(
    args: &Args,
    state: &Arc<dyn walden::api::Backend>,
) -> Result<Arc<dyn Documents>, String> {
    Ok(match args.backend {
        Backend::Walden => Arc::new(WaldenDocs { backend: Arc::clone(state) }),
        Backend::JsonFile => {
            Arc::new(compare::JsonFileDocs::open(&args.dir).map_err(|e| e.to_string())?)
        }
        #[cfg(feature = "bench-backends")]
        Backend::Sqlite => {
            Arc::new(compare::SqliteDocs::open(&args.dir).map_err(|e| e.to_string())?)
        }
        #[cfg(not(feature = "bench-backends"))]
        Backend::Sqlite => return Err("built without the bench-backends feature".into()),
    })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn run(args: Args) -> Result<(), String> {
    std::fs::create_dir_all(&args.dir).map_err(|e| format!("{}: {e}", args.dir.display()))?;
    let store_dir = args.dir.join(STORE_DIR_NAME);
    let store = tokio::task::spawn_blocking(move || Store::open(store_dir))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    // Limits, breakers and documents go through the shared interface; the store is kept for
    // its health (poisoned?) and to close it at the end.
    let state: Arc<dyn walden::api::Backend> = Arc::new(store.clone());
    let docs = open_documents(&args, &state)?;
    let router = app::router(&args, &state, &store, docs.clone())?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("bind {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on http://{addr}");
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, service).with_graceful_shutdown(shutdown_signal()).await;
    let closed = tokio::task::spawn_blocking(move || {
        docs.close().map_err(|e| e.to_string())?;
        store.close().map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?;
    served.map_err(|e| e.to_string())?;
    closed?;
    println!("store closed");
    Ok(())
}

/// How long the runtime waits for blocking tasks at exit (they are fsyncs in flight).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("walden-service: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(run(args));
    rt.shutdown_timeout(SHUTDOWN_GRACE);
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("walden-service: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
