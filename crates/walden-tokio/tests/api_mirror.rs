//! The async mirror of `walden::api`, written once against `Arc<dyn Backend>` and run on the
//! embedded store's native futures and on a blocking backend through the blocking pool: the
//! same answers, exact counts under concurrency, and a dropped permit counted as a failure.

use std::sync::Arc;

use walden::{BreakerConfig, CircuitState, Quota, Store};
use walden_tokio::api::{Admission, Backend, DocumentsExt, OnBlockingPool};
use walden_tokio::AsyncStore;

async fn exercise(backend: Arc<dyn Backend>) {
    let v = backend.put("c", "k", &"one").await.unwrap();
    assert_eq!(backend.get::<String>("c", "k").await.unwrap().unwrap().version, v);
    assert!(matches!(
        backend.insert("c", "k", &"two").await,
        Err(walden::Error::AlreadyExists { .. })
    ));
    assert_eq!(backend.put_if_version("c", "k", &"two", v).await.unwrap(), v + 1);
    assert_eq!(backend.delete("c", "k").await.unwrap(), Some(v + 1));

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let b = backend.clone();
            tokio::spawn(async move {
                b.update::<u64, _>("c", "n", |n| Some(n.unwrap_or(0) + 1)).await.unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(backend.get::<u64>("c", "n").await.unwrap().unwrap().value, 50);
    assert_eq!(backend.count("c").await.unwrap(), 1);

    let limiter = backend.rate_limiter("api", Quota::per_minute(2)).await.unwrap();
    assert!(limiter.check("ip").await.unwrap().allowed);
    assert!(limiter.check("ip").await.unwrap().allowed);
    assert!(!limiter.check("ip").await.unwrap().allowed);
    assert!(limiter.reset("ip").await.unwrap());
    assert!(limiter.check_n("ip", 2).await.unwrap().allowed);

    let config = BreakerConfig { consecutive_failures: Some(2), ..BreakerConfig::default() };
    let breaker = backend.breaker("db", config).await.unwrap();
    for _ in 0..2 {
        match breaker.acquire().await.unwrap() {
            Admission::Permitted(p) => drop(p), // unreported: a failure
            Admission::Rejected { .. } => panic!("a closed breaker rejected"),
        }
    }
    // The blocking backend reports the dropped permit's failure on the pool: wait for it.
    for _ in 0..500 {
        if breaker.state().await.unwrap() == CircuitState::Open {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(breaker.state().await.unwrap(), CircuitState::Open);
    assert!(matches!(breaker.acquire().await.unwrap(), Admission::Rejected { .. }));
    breaker.reset().await.unwrap();
    let Admission::Permitted(p) = breaker.acquire().await.unwrap() else { panic!("rejected") };
    assert!(p.success().await.unwrap());
    backend.sync().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_serves_the_async_interface_natively() {
    let dir = tempfile::tempdir().unwrap();
    let store = AsyncStore::open(dir.path()).await.unwrap();
    assert_eq!(Backend::guarantees(&store).backend, "embedded");
    exercise(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_backend_serves_it_through_the_blocking_pool() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    exercise(Arc::new(OnBlockingPool::new(Arc::new(store)))).await;
}
