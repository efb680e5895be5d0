//! What Redis promises for an acknowledged write, read from its configuration at connect.

use std::time::Duration;

use walden::api::{Guarantees, WriteGuarantee};
use walden::{Durability, Error, Result};

use crate::conn::{Pool, BACKEND};
use crate::RedisConfig;

/// A node's `appendonly`, `appendfsync` and `maxmemory-policy`.
fn settings(con: &mut redis::Connection) -> redis::RedisResult<[String; 3]> {
    let mut get = |name: &str| -> redis::RedisResult<String> {
        let pair: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(con)?;
        Ok(pair.get(1).cloned().unwrap_or_default())
    };
    Ok([get("appendonly")?, get("appendfsync")?, get("maxmemory-policy")?])
}

fn guarantee_of(appendonly: &str, appendfsync: &str) -> WriteGuarantee {
    match (appendonly, appendfsync) {
        ("yes", "always") => WriteGuarantee::Fsynced,
        ("yes", "everysec") => WriteGuarantee::FsyncedWithin { interval: Duration::from_secs(1) },
        ("yes", _) => WriteGuarantee::OsBuffered,
        _ => WriteGuarantee::Memory,
    }
}

/// Strength of a guarantee, for taking the weakest of several nodes.
fn rank(w: WriteGuarantee) -> u8 {
    match w {
        WriteGuarantee::Fsynced => 3,
        WriteGuarantee::FsyncedWithin { .. } => 2,
        WriteGuarantee::OsBuffered => 1,
        _ => 0,
    }
}

/// Reads `appendonly`, `appendfsync` and `maxmemory-policy` of every node; refuses what
/// `config` does not allow; returns what an acknowledged write survives (on the weakest node).
pub(crate) fn check(pool: &Pool, config: &RedisConfig) -> Result<Guarantees> {
    let nodes = pool.each_node(settings)?;
    let mut write = WriteGuarantee::Fsynced;
    let mut details = Vec::with_capacity(nodes.len());
    let mut evicting = None;
    for [appendonly, appendfsync, policy] in &nodes {
        let w = guarantee_of(appendonly, appendfsync);
        if rank(w) < rank(write) {
            write = w;
        }
        if policy != "noeviction" {
            evicting = Some(policy.clone());
        }
        details.push(format!(
            "appendonly {appendonly}, appendfsync {appendfsync}, maxmemory-policy {policy}"
        ));
    }
    details.dedup();
    let detail = format!("{}, WAIT for {} replicas", details.join("; "), config.replicas);
    let enough = match config.durability {
        Durability::Immediate => write == WriteGuarantee::Fsynced,
        Durability::Buffered => rank(write) >= 2,
    };
    if !enough && !config.allow_weaker_durability {
        let needed = match config.durability {
            Durability::Immediate => "always",
            Durability::Buffered => "always or everysec",
        };
        return Err(Error::DurabilityUnavailable {
            backend: BACKEND,
            reason: format!(
                "{:?} needs appendonly yes and appendfsync {needed}; found {detail} \
                 (set allow_weaker_durability to accept it)",
                config.durability
            ),
        });
    }
    if let (Some(policy), false) = (evicting, config.allow_eviction) {
        return Err(Error::DurabilityUnavailable {
            backend: BACKEND,
            reason: format!(
                "maxmemory-policy {policy} lets Redis drop keys without an error; \
                 use noeviction (or set allow_eviction to accept it)"
            ),
        });
    }
    tracing::info!(target: "walden_redis", %detail, ?write, "connected");
    Ok(Guarantees { backend: BACKEND, write, replicas: config.replicas, detail })
}
