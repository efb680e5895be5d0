//! Connections: a small pool over redis-rs, every call bounded by the configured timeout, and
//! the mapping of redis-rs errors onto [`walden::Error`].
//!
//! A connection that failed with an I/O error or a timeout is never reused (a late reply would
//! answer the next command); when one fails that way every idle connection is dropped too, so
//! after a Redis restart only the calls already in flight see the old sockets. Reconnecting is
//! implicit: the next call opens a new connection.
//!
//! Idle connections are kept in stripes, each thread using its own: many threads that get
//! their replies at once (Redis answers a whole event-loop turn after one fsync) would
//! otherwise all queue for one lock to return a connection and take the next.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use redis::cluster::{ClusterClient, ClusterConnection};
use redis::{Client, Connection, ConnectionLike, ErrorKind, RedisError, ServerErrorKind};
use walden::Error;

/// Backend name carried by errors.
pub(crate) const BACKEND: &str = "redis";

/// Most idle connections kept for reuse.
const MAX_IDLE_CONNECTIONS: usize = 256;

/// Stripes of idle connections; a thread uses the one its number picks.
const IDLE_STRIPES: usize = 32;

/// Most idle connections per stripe.
const MAX_IDLE_PER_STRIPE: usize = MAX_IDLE_CONNECTIONS / IDLE_STRIPES;

static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's stripe of every pool.
    static STRIPE: usize = NEXT_THREAD.fetch_add(1, Ordering::Relaxed) % IDLE_STRIPES;
}

/// Where commands go: one server, or a Redis Cluster (commands routed by their first key).
enum Target {
    Single(Client),
    Cluster(ClusterClient),
}

enum Conn {
    Single(Connection),
    Cluster(Box<ClusterConnection>),
}

impl Conn {
    fn like(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Conn::Single(c) => c,
            Conn::Cluster(c) => &mut **c,
        }
    }
}

/// A pool of synchronous connections to one Redis server or one cluster.
pub(crate) struct Pool {
    target: Target,
    /// Every configured node, for the commands that concern each node rather than a key
    /// (reading the configuration, listing keys).
    nodes: Vec<Client>,
    idle: Box<[Mutex<Vec<Conn>>]>,
    timeout: Duration,
}

fn invalid_url(e: RedisError) -> Error {
    Error::Backend { backend: BACKEND, message: format!("invalid connection URL: {e}") }
}

impl Pool {
    /// A pool for one server (`cluster` false) or for the cluster these nodes belong to.
    pub(crate) fn new(urls: &[String], cluster: bool, timeout: Duration) -> Result<Pool, Error> {
        let nodes = urls.iter().map(|u| Client::open(u.as_str())).collect::<Result<Vec<_>, _>>();
        let nodes = nodes.map_err(invalid_url)?;
        let target = if cluster {
            let client = ClusterClient::builder(urls.iter().map(String::as_str))
                .connection_timeout(timeout)
                .response_timeout(timeout)
                .retries(0)
                .build()
                .map_err(invalid_url)?;
            Target::Cluster(client)
        } else {
            Target::Single(nodes[0].clone())
        };
        let idle = (0..IDLE_STRIPES).map(|_| Mutex::new(Vec::new())).collect();
        Ok(Pool { target, nodes, idle, timeout })
    }

    fn connect(&self) -> Result<Conn, Error> {
        let t = Some(self.timeout);
        let map = |e| map_error(e, self.timeout);
        Ok(match &self.target {
            Target::Single(client) => {
                let con = client.get_connection_with_timeout(self.timeout).map_err(map)?;
                con.set_read_timeout(t).map_err(map)?;
                con.set_write_timeout(t).map_err(map)?;
                Conn::Single(con)
            }
            Target::Cluster(client) => {
                let con = client.get_connection().map_err(map)?;
                con.set_read_timeout(t).map_err(map)?;
                con.set_write_timeout(t).map_err(map)?;
                Conn::Cluster(Box::new(con))
            }
        })
    }

    /// Runs `f` on a connection. A connection-level failure drops the connection (and the
    /// idle ones); a server reply error keeps it.
    pub(crate) fn run<T>(
        &self,
        f: impl FnOnce(&mut dyn ConnectionLike) -> redis::RedisResult<T>,
    ) -> Result<T, Error> {
        let pooled = self.stripe().lock().pop();
        let mut con = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        match f(con.like()) {
            Ok(v) => {
                self.give_back(con);
                Ok(v)
            }
            Err(e) if is_connection_failure(&e) => {
                for stripe in &self.idle {
                    stripe.lock().clear();
                }
                Err(map_error(e, self.timeout))
            }
            Err(e) => {
                self.give_back(con);
                Err(map_error(e, self.timeout))
            }
        }
    }

    /// Runs `f` on a fresh connection to each configured node, in order.
    pub(crate) fn each_node<T>(
        &self,
        mut f: impl FnMut(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<Vec<T>, Error> {
        let map = |e| map_error(e, self.timeout);
        let mut out = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let mut con = node.get_connection_with_timeout(self.timeout).map_err(map)?;
            con.set_read_timeout(Some(self.timeout)).map_err(map)?;
            con.set_write_timeout(Some(self.timeout)).map_err(map)?;
            out.push(f(&mut con).map_err(map)?);
        }
        Ok(out)
    }

    fn stripe(&self) -> &Mutex<Vec<Conn>> {
        &self.idle[STRIPE.with(|s| *s)]
    }

    fn give_back(&self, con: Conn) {
        let mut idle = self.stripe().lock();
        if idle.len() < MAX_IDLE_PER_STRIPE {
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
