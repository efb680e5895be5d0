//! `RedisConfig::replicas`: each write waits (`WAIT`) for that many replicas. A primary with one
//! replica, both private servers (the primary needs a TCP port for its replica: a free port on
//! the loopback interface, never 6379); the replica killed, a write times out with the typed
//! error instead of being acknowledged as replicated.

mod common;

use std::time::{Duration, Instant};

use common::RedisServer;
use walden::api::{Backend, DocumentsExt};
use walden::Error;
use walden_redis::RedisBackend;

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    assert_ne!(port, 6379);
    port
}

fn wait_for_replica(primary: &RedisServer) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut con = redis::Client::open(primary.url()).unwrap().get_connection().unwrap();
    loop {
        let info: String = redis::cmd("INFO").arg("replication").query(&mut con).unwrap();
        if info.contains("connected_slaves:1") && info.contains("state=online") {
            return;
        }
        assert!(Instant::now() < deadline, "the replica did not come online: {info}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn writes_wait_for_the_configured_replicas_and_time_out_without_them() {
    let port = free_port();
    let port_arg = port.to_string();
    let primary = RedisServer::start_with(&["--port", &port_arg, "--bind", "127.0.0.1"]);
    let mut replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port_arg]);
    wait_for_replica(&primary);

    let mut config = primary.config();
    config.replicas = 1;
    config.timeout = Duration::from_millis(500);
    let backend = RedisBackend::connect(config).unwrap();
    assert_eq!(backend.guarantees().replicas, 1);
    assert_eq!(backend.put("c", "k", &1).unwrap(), 1);
    let limiter = backend.rate_limiter("l", walden::Quota::per_second(10)).unwrap();
    assert!(limiter.check("x").unwrap().allowed);
    // The replica has the write.
    let mut con = redis::Client::open(replica.url()).unwrap().get_connection().unwrap();
    let v: Option<String> =
        redis::cmd("HGET").arg("{walden:d:c}:k:k").arg("v").query(&mut con).unwrap();
    assert_eq!(v.as_deref(), Some("1"));

    replica.kill9();
    let err = backend.put("c", "k", &2).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}
