//! Connections: a small pool over redis-rs, every call bounded by the configured timeout, and
//! the mapping of redis-rs errors onto [`walden::Error`].
//!
//! A connection that failed with an I/O error or a timeout is never reused (a late reply would
//! answer the next command); when one fails that way every idle connection is dropped too, so
//! after a Redis restart only the calls already in flight see the old sockets. Reconnecting is
//! implicit: the next call opens a new connection.

use std::time::Duration;

use parking_lot::Mutex;
use redis::{Client, Connection, ErrorKind, RedisError, ServerErrorKind};
use walden::Error;

/// Backend name carried by errors.
pub(crate) const BACKEND: &str = "redis";

/// Most idle connections kept for reuse.
const MAX_IDLE_CONNECTIONS: usize = 256;

/// A pool of synchronous connections to one Redis server.
pub(crate) struct Pool {
    client: Client,
    idle: Mutex<Vec<Connection>>,
    timeout: Duration,
}

impl Pool {
    pub(crate) fn new(url: &str, timeout: Duration) -> Result<Pool, Error> {
        let client = Client::open(url).map_err(|e| Error::Backend {
            backend: BACKEND,
            message: format!("invalid connection URL: {e}"),
        })?;
        Ok(Pool { client, idle: Mutex::new(Vec::new()), timeout })
    }

    fn connect(&self) -> Result<Connection, Error> {
        let con = self
            .client
            .get_connection_with_timeout(self.timeout)
            .map_err(|e| map_error(e, self.timeout))?;
        con.set_read_timeout(Some(self.timeout)).map_err(|e| map_error(e, self.timeout))?;
        con.set_write_timeout(Some(self.timeout)).map_err(|e| map_error(e, self.timeout))?;
        Ok(con)
    }

    /// Runs `f` on a connection. A connection-level failure drops the connection (and the
    /// idle ones); a server reply error keeps it.
    pub(crate) fn run<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, Error> {
        let pooled = self.idle.lock().pop();
        let mut con = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        match f(&mut con) {
            Ok(v) => {
                self.give_back(con);
                Ok(v)
            }
            Err(e) if is_connection_failure(&e) => {
                self.idle.lock().clear();
                Err(map_error(e, self.timeout))
            }
            Err(e) => {
                self.give_back(con);
                Err(map_error(e, self.timeout))
            }
        }
    }

    fn give_back(&self, con: Connection) {
        let mut idle = self.idle.lock();
        if idle.len() < MAX_IDLE_CONNECTIONS {
            idle.push(con);
        }
    }
}

fn is_connection_failure(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
}

/// Maps a redis-rs error onto walden's: unreachable, timed out, loading → the typed
/// `Unavailable`/`Timeout`; a cross-slot reply → `Backend` naming it; anything else
/// `Backend` with the server's words.
pub(crate) fn map_error(e: RedisError, timeout: Duration) -> Error {
    if e.is_timeout() {
        return Error::Timeout { backend: BACKEND, timeout };
    }
    if is_connection_failure(&e)
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::TryAgain
            )
        )
    {
        return Error::Unavailable { backend: BACKEND, message: e.to_string() };
    }
    Error::Backend { backend: BACKEND, message: e.to_string() }
}
