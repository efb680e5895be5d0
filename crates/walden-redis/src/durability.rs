//! What Redis promises for an acknowledged write, read from its configuration at connect.

use std::time::Duration;

use walden::api::{Guarantees, WriteGuarantee};
use walden::{Durability, Error, Result};

use crate::conn::{Pool, BACKEND};
use crate::RedisConfig;

fn config_get(pool: &Pool, name: &str) -> Result<String> {
    let pair: Vec<String> = pool.run(|con| redis::cmd("CONFIG").arg("GET").arg(name).query(con))?;
    pair.get(1).cloned().ok_or_else(|| Error::DurabilityUnavailable {
        backend: BACKEND,
        reason: format!("CONFIG GET {name} returned nothing; cannot tell what a write survives"),
    })
}

/// Reads `appendonly`, `appendfsync` and `maxmemory-policy`; refuses what `config` does not
/// allow; returns what an acknowledged write survives.
pub(crate) fn check(pool: &Pool, config: &RedisConfig) -> Result<Guarantees> {
    let appendonly = config_get(pool, "appendonly")?;
    let appendfsync = config_get(pool, "appendfsync")?;
    let policy = config_get(pool, "maxmemory-policy")?;
    let write = match (appendonly.as_str(), appendfsync.as_str()) {
        ("yes", "always") => WriteGuarantee::Fsynced,
        ("yes", "everysec") => WriteGuarantee::FsyncedWithin { interval: Duration::from_secs(1) },
        ("yes", _) => WriteGuarantee::OsBuffered,
        _ => WriteGuarantee::Memory,
    };
    let detail = format!(
        "appendonly {appendonly}, appendfsync {appendfsync}, maxmemory-policy {policy}, WAIT for {} replicas",
        config.replicas
    );
    let enough = match config.durability {
        Durability::Immediate => write == WriteGuarantee::Fsynced,
        Durability::Buffered => {
            matches!(write, WriteGuarantee::Fsynced | WriteGuarantee::FsyncedWithin { .. })
        }
    };
    if !enough && !config.allow_weaker_durability {
        return Err(Error::DurabilityUnavailable {
            backend: BACKEND,
            reason: format!(
                "{:?} needs appendonly yes and appendfsync {}; found {detail} \
                 (set allow_weaker_durability to accept it)",
                config.durability,
                if config.durability == Durability::Immediate {
                    "always"
                } else {
                    "always or everysec"
                }
            ),
        });
    }
    if policy != "noeviction" && !config.allow_eviction {
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
