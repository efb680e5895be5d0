//! A tour of walden: versioned documents, a rejected conflicting write, a batch, a validator,
//! and a real crash (SIGKILL) in the middle of writing, after which every acknowledged write is
//! still there.
//!
//! Run it with `cargo run --release --example tour [DIR]`. The store stays in DIR (default:
//! `walden-tour` in the system's temporary directory) for you to inspect with walinspect, as the
//! tour's last lines say; run the tour again on the same directory and it carries on from there.
//! Errors are printed with `Display`, as an application would show them.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use walden::{Batch, Error, Store};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Account {
    owner: String,
    balance_cents: i64,
}

/// How long the child writes before the tour kills it.
const CRASH_AFTER: Duration = Duration::from_millis(300);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = if args.get(1).map(String::as_str) == Some("--child-writer") {
        child_writer(Path::new(&args[2]))
    } else {
        let dir =
            args.get(1).map_or_else(|| std::env::temp_dir().join("walden-tour"), PathBuf::from);
        tour(&dir)
    };
    if let Err(e) = result {
        // Display, not Debug: the message is written for the person reading it.
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn tour(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let dir = dir.to_path_buf();
    println!("walden tour — store directory: {}\n", dir.display());

    // 1. Versioned documents.
    let store = Store::open(&dir)?;
    let ada = Account { owner: "Ada".into(), balance_cents: 10_000 };
    let v1 = store.put("accounts", "ada", &ada)?;
    println!("1. put accounts/ada            -> version {v1}");
    let v2 = store.put("accounts", "ada", &Account { balance_cents: 12_500, ..ada.clone() })?;
    println!("   put accounts/ada again      -> version {v2}");
    let got = store.get::<Account>("accounts", "ada")?.expect("just written");
    println!("   get accounts/ada            -> {:?} at version {}", got.value, got.version);

    // 2. A conflicting compare-and-set is rejected and writes nothing.
    let before = store.stats().last_lsn;
    match store.put_if_version("accounts", "ada", &ada, v1) {
        Err(Error::Conflict { expected, current, .. }) => println!(
            "2. put_if_version(expected {expected:?}) rejected: current is {current:?}; log LSN {} -> {}",
            before,
            store.stats().last_lsn
        ),
        Ok(v) => return Err(format!("expected a conflict, wrote version {v}").into()),
        Err(e) => return Err(format!("expected a conflict, got: {e}").into()),
    }

    // 3. A batch: all or nothing. Bob is created on the first run and updated, at the version
    // read here, on later runs on the same directory.
    let bob = Account { owner: "Bob".into(), balance_cents: 5_000 };
    let mut batch = Batch::new();
    batch.put_if_version("accounts", "ada", &Account { balance_cents: 7_500, ..ada.clone() }, v2);
    match store.get::<Account>("accounts", "bob")? {
        None => batch.insert("accounts", "bob", &bob),
        Some(read) => batch.put_if_version("accounts", "bob", &bob, read.version),
    };
    let versions = store.commit(batch)?;
    println!("3. batch transfer ada -> bob   -> versions {versions:?} (one WAL record)");
    let mut failing = Batch::new();
    failing.put("accounts", "carol", &Account { owner: "Carol".into(), balance_cents: 1 }).insert(
        "accounts",
        "bob",
        &Account { owner: "Bob".into(), balance_cents: 0 },
    );
    let err = store.commit(failing).expect_err("bob exists");
    println!(
        "   batch with a failing insert -> {err}; carol present: {}",
        store.get::<Account>("accounts", "carol")?.is_some()
    );

    // 4. A validator runs before anything is logged.
    store.set_validator("accounts", |doc| match doc["balance_cents"].as_i64() {
        Some(b) if b >= 0 => Ok(()),
        _ => Err("balance_cents must be a non-negative integer".into()),
    })?;
    let bad = Account { owner: "Mallory".into(), balance_cents: -1 };
    println!(
        "4. validator                   -> {}",
        store.put("accounts", "mallory", &bad).unwrap_err()
    );
    store.close()?;

    // 5. Crash: a child process writes as fast as it can; we SIGKILL it mid-stream.
    let exe = std::env::current_exe()?;
    let mut child =
        Command::new(exe).arg("--child-writer").arg(&dir).stdout(Stdio::piped()).spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let started = Instant::now();
    let reader = std::thread::spawn(move || {
        let mut acked = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some((n, v)) = line.split_once(' ') {
                acked.push((n.parse::<u64>().unwrap_or(0), v.parse::<u64>().unwrap_or(0)));
            }
        }
        acked
    });
    std::thread::sleep(CRASH_AFTER);
    child.kill()?; // SIGKILL: no destructors, no final fsync.
    child.wait()?;
    let acked = reader.join().expect("reader thread");
    println!(
        "5. child killed with SIGKILL after {:?}: it had acknowledged {} writes",
        started.elapsed(),
        acked.len()
    );

    // 6. Reopen: recovery replays the log and cuts any torn tail.
    let store = Store::open(&dir)?;
    let stats = store.stats();
    println!(
        "6. reopened: {} records replayed in {} µs; torn tail cut: {}",
        stats.recovery.records_replayed,
        stats.recovery.replay_us,
        stats.recovery.torn_tail.as_ref().map_or("none".to_string(), |t| format!(
            "{} bytes at offset {} of {}",
            t.len,
            t.offset,
            t.path.display()
        ))
    );
    let mut missing = 0;
    for (n, version) in &acked {
        match store.get::<u64>("events", &format!("e{n:06}"))? {
            Some(doc) if doc.value == *n && doc.version >= *version => {}
            _ => missing += 1,
        }
    }
    println!("   acknowledged writes missing after the crash: {missing} of {}", acked.len());
    let ada = store.get::<Account>("accounts", "ada")?.expect("ada survives");
    println!("   accounts/ada: {:?} at version {}", ada.value, ada.version);
    let s = store.stats();
    println!(
        "\nstats: {} documents in {:?}; last LSN {}; WAL {} bytes in {} segments",
        s.documents, s.documents_per_collection, s.last_lsn, s.wal_bytes, s.wal_segments
    );
    store.close()?;
    if missing > 0 {
        return Err(format!("{missing} acknowledged writes were lost").into());
    }
    println!("tour complete: nothing acknowledged was lost.");
    println!(
        "\nThe store is still in {0}. Inspect it (read-only, safe while it runs):",
        dir.display()
    );
    println!("  cargo run -p walinspect -- summary {}", dir.display());
    println!("  cargo run -p walinspect -- verify {}", dir.display());
    println!("  cargo run -p walinspect -- history {} accounts ada", dir.display());
    println!("Run the tour again with the same directory to carry on from here.");
    Ok(())
}

/// The child: writes numbered events with several threads and prints `n version` for each
/// acknowledged write.
fn child_writer(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open(dir)?;
    let out = std::sync::Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let store = store.clone();
            let out = out.clone();
            std::thread::spawn(move || {
                for i in 0.. {
                    let n = i * 4 + t;
                    let version = match store.put("events", &format!("e{n:06}"), &n) {
                        Ok(v) => v,
                        Err(e) => {
                            eprintln!("child writer: {e}");
                            std::process::exit(1);
                        }
                    };
                    let mut o = out.lock().expect("stdout");
                    let _ = writeln!(o, "{n} {version}");
                    let _ = o.flush();
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}
