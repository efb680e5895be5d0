//! The README's first command, `cargo run --example tour`, leaves its store in a directory it
//! names for walinspect, and runs again on the same directory, carrying on from there.
//!
//! Runs the example through cargo (it is built with the same profile as the tests, so this
//! only links it), twice, on one directory, and checks both runs and what the directory holds.

use std::path::Path;
use std::process::Command;

fn run_tour(dir: &Path) -> String {
    let out = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--example", "tour", "--"])
        .arg(dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tour failed:\n{stdout}\n{stderr}");
    assert!(
        !stderr.contains("Error {") && !stderr.contains("Conflict {"),
        "Debug output: {stderr}"
    );
    stdout
}

#[test]
fn the_tour_runs_twice_on_one_directory_and_leaves_it_for_walinspect() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("tour");
    let first = run_tour(&dir);
    assert!(first.contains("tour complete: nothing acknowledged was lost."), "{first}");
    assert!(first.contains(&format!("walinspect -- verify {}", dir.display())), "{first}");
    assert!(dir.join("STORE").is_file(), "the store is left in place");
    let second = run_tour(&dir);
    assert!(second.contains("tour complete: nothing acknowledged was lost."), "{second}");
    // The second run carried on: ada's versions continue from the first run's.
    assert!(second.contains("put accounts/ada            -> version 4"), "{second}");
    let store = walden::Store::open(&dir).unwrap();
    assert!(store.get::<serde_json::Value>("accounts", "bob").unwrap().unwrap().version >= 2);
}
