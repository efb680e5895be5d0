//! An async handle on a [`walden`] store for tokio services.
//!
//! A blocking walden write parks its thread until the group's fsync returns; inside an async
//! handler that stalls an executor worker. Here a waiting writer is a future instead: the write
//! is sequenced on the calling task (short in-memory locks only — its version, precondition and
//! LSN are decided there), and the future is woken by the group-commit leader once the fsync
//! that covers it returned. The writes and fsyncs run on `walden-committer`, a thread the store
//! owns, never on an executor worker, so thousands of waiting requests share a few fsyncs.
//!
//! - [`AsyncStore`]: documents (`put`, `insert`, `put_if_version`, `delete`, `update`,
//!   `commit`), `sync` and `close` as futures; reads, which never wait, stay synchronous.
//! - [`AsyncLimiter`]: `check`, `check_n`, and [`until_ready`](AsyncLimiter::until_ready),
//!   which sleeps (with jitter) until a cell is free.
//! - [`AsyncBreaker`]: `acquire` an [`AsyncPermit`], report its outcome; a permit dropped
//!   unreported counts as a failed call with its elapsed time.
//!
//! **Cancellation is safe.** Every future does all of its writing in its first poll, before
//! its first await point, and only waits afterwards: dropping it later never withdraws or
//! half-applies anything — the record is written all the same (or fails with the whole store
//! if the log is poisoned). To learn what became of a write whose future was dropped, start
//! it with [`AsyncStore::submit`], which returns the LSN before anything is awaited, and ask
//! [`walden::Store::commit_status`] or await [`AsyncStore::durable`] later.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> walden::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! use walden_tokio::AsyncStore;
//! let store = AsyncStore::open(dir.path()).await?;
//! let v = store.put("users", "ada", &"Ada Lovelace").await?; // durable when it returns
//! assert_eq!(store.get::<String>("users", "ada")?.unwrap().version, v);
//! let login = store.rate_limiter("login", walden::Quota::per_minute(5)).await?;
//! assert!(login.check("10.0.0.1").await?.allowed);
//! store.close().await?;
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

pub mod api;
mod breaker;
mod limiter;
mod store;

pub use breaker::{AsyncAcquire, AsyncBreaker, AsyncPermit};
pub use limiter::{AsyncLimiter, Jitter};
pub use store::AsyncStore;
