#!/usr/bin/env bash
# Smoke test of the comparison harness: builds it and runs quick mode
# into a temporary directory, then checks the report, results and charts exist.
set -euo pipefail
cd "$(dirname "$0")"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cargo build --release --locked
./target/release/compare --quick --out "$out"
for f in report.md results.json throughput_vs_threads_a.svg throughput_vs_records_a.svg latency_cdf_a.svg; do
    test -s "$out/$f" || { echo "compare: missing $f" >&2; exit 1; }
done
grep -q "Headline: ratios" "$out/report.md" || { echo "compare: no headline in report" >&2; exit 1; }
cargo test --release --locked
