//! What machine and disk the run happened on.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde::Serialize;

/// Facts about the machine, printed at the top of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs available to the process.
    pub nproc: usize,
    /// CPU model from `/proc/cpuinfo`.
    pub cpu: String,
    /// Kernel release.
    pub kernel: String,
    /// Total memory from `/proc/meminfo`.
    pub memory: String,
    /// `df -T` line of the data directory (device, filesystem type, sizes).
    pub filesystem: String,
    /// Locked versions of the peer crates.
    pub peers: String,
}

/// First line of `path` whose key (before `:`) is `key`, value trimmed.
fn proc_field(path: &str, key: &str) -> Option<String> {
    fs::read_to_string(path).ok()?.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_owned())
    })
}

/// Gathers the machine facts; `dir` is the directory the stores live in.
pub fn describe(dir: &Path) -> Machine {
    const UNKNOWN: &str = "unknown";
    let filesystem = Command::new("df")
        .arg("-T")
        .arg(dir)
        .output()
        .ok()
        .and_then(|o| {
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            out.lines().nth(1).map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| UNKNOWN.to_owned());
    Machine {
        nproc: std::thread::available_parallelism().map_or(1, usize::from),
        cpu: proc_field("/proc/cpuinfo", "model name").unwrap_or_else(|| UNKNOWN.to_owned()),
        kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| UNKNOWN.to_owned()),
        memory: proc_field("/proc/meminfo", "MemTotal").unwrap_or_else(|| UNKNOWN.to_owned()),
        filesystem,
        peers: env!("COMPARE_PEER_VERSIONS").to_owned(),
    }
}
