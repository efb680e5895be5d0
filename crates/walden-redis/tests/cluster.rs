//! Redis Cluster: three private `redis-server --cluster-enabled yes` primaries (loopback TCP on
//! free ports, never 6379) joined with `redis-cli --cluster create`. Documents in many
//! collections land on every node; a batch within one collection is atomic, one over two is
//! refused with `CrossSlot`; limiters and breakers work on keys of any slot; `collections()`
//! sees every node. Set `WALDEN_REDIS_SKIP_CLUSTER=1` to skip (it starts three servers).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::RedisServer;
use walden::api::{Admission, Backend, Documents, DocumentsExt, KeyRange};
use walden::{Batch, BreakerConfig, CircuitState, Error, Quota};
use walden_redis::{RedisBackend, RedisConfig};

const NODES: usize = 3;

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn start_cluster() -> (Vec<RedisServer>, Vec<String>) {
    let ports: Vec<String> = (0..NODES).map(|_| free_port().to_string()).collect();
    assert!(!ports.iter().any(|p| p == "6379"));
    let servers: Vec<RedisServer> = ports
        .iter()
        .map(|p| {
            RedisServer::start_with(&[
                "--port",
                p,
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ])
        })
        .collect();
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let status = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("redis-cli");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    for s in &servers {
        let mut con = redis::Client::open(s.url()).unwrap().get_connection().unwrap();
        loop {
            let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut con).unwrap();
            if info.contains("cluster_state:ok") {
                break;
            }
            assert!(Instant::now() < deadline, "cluster did not come up: {info}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    (servers, addrs.iter().map(|a| format!("redis://{a}")).collect())
}

#[test]
fn documents_limiters_and_breakers_work_across_a_cluster() {
    if std::env::var_os("WALDEN_REDIS_SKIP_CLUSTER").is_some() {
        return;
    }
    let (servers, urls) = start_cluster();
    let mut config = RedisConfig::cluster(urls);
    config.timeout = Duration::from_secs(5);
    let b = RedisBackend::connect(config).unwrap();

    let names: Vec<String> = (0..24).map(|i| format!("col{i}")).collect();
    for name in &names {
        let mut batch = Batch::new();
        batch.insert(name, "a", &1).insert(name, "b", &2);
        assert_eq!(b.commit(batch).unwrap(), [Some(1), Some(1)]);
    }
    // The collections live on every node.
    let per_node: Vec<usize> = servers
        .iter()
        .map(|s| {
            let mut con = redis::Client::open(s.url()).unwrap().get_connection().unwrap();
            redis::cmd("DBSIZE").query(&mut con).unwrap()
        })
        .collect();
    assert!(per_node.iter().all(|&n| n > 0), "keys per node {per_node:?}");
    assert_eq!(b.collections().unwrap().len(), names.len());
    for name in &names {
        assert_eq!(Documents::count(&b, name).unwrap(), 2);
        let keys: Vec<String> =
            b.scan_raw(name, &KeyRange::all(), None).unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b"]);
    }
    let mut batch = Batch::new();
    batch.put("col0", "x", &1).put("col1", "x", &1);
    assert!(matches!(b.commit(batch), Err(Error::CrossSlot { .. })));
    assert!(b.get_raw("col0", "x").unwrap().is_none());

    std::thread::scope(|s| {
        for t in 0..8 {
            let b = &b;
            s.spawn(move || {
                for _ in 0..25 {
                    b.update::<u64, _>(&format!("col{}", t % 2), "n", |n| Some(n.unwrap_or(0) + 1))
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(b.get::<u64>("col0", "n").unwrap().unwrap().value, 100);
    assert_eq!(b.get::<u64>("col1", "n").unwrap().unwrap().value, 100);

    let limiter = b.rate_limiter("api", Quota::per_minute(2)).unwrap();
    for k in 0..20 {
        let key = format!("client-{k}");
        assert!(limiter.check(&key).unwrap().allowed);
        assert!(limiter.check(&key).unwrap().allowed);
        assert!(!limiter.check(&key).unwrap().allowed);
    }
    let breaker = b.breaker("db", BreakerConfig::default()).unwrap();
    for _ in 0..3 {
        let Admission::Permitted(p) = breaker.try_acquire().unwrap() else { panic!("closed") };
        p.failure().unwrap();
    }
    assert_eq!(breaker.state().unwrap(), CircuitState::Open);
}
