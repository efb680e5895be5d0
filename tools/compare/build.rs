//! Records the locked versions of the peer crates so the report can name them.

use std::fs;

/// Crates whose locked versions appear in the report.
const PEERS: [&str; 5] = ["rusqlite", "libsqlite3-sys", "redb", "fjall", "serde_json"];

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    let lock = fs::read_to_string("Cargo.lock").unwrap_or_default();
    let mut found = Vec::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_owned());
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take()) {
            if PEERS.contains(&n.as_str()) {
                found.push(format!("{n} {}", v.trim_matches('"')));
            }
        }
    }
    println!("cargo:rustc-env=COMPARE_PEER_VERSIONS={}", found.join(", "));
}
