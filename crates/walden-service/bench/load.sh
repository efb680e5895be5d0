#!/usr/bin/env bash
# Load run: walden-service under wrk, documents in walden, in a JSON file rewritten
# atomically per write, and in SQLite (WAL, synchronous=FULL), one after another in one run.
# For each backend: a fresh data directory, a preload of KEYS documents, then PUT and GET for
# DURATION each at CONNECTIONS connections; prints a Markdown table (req/s, p99).
#
#   crates/walden-service/bench/load.sh            # needs wrk (apt-get install -y wrk)
#   DURATION=30s CONNECTIONS=64 KEYS=1000 crates/walden-service/bench/load.sh
#
# Rate limits are off for the backend comparison (each allowed check is an fsynced record of
# its own); the last row is walden with the rate limit on, keyed by client IP. The slow-call
# threshold is raised to 10 min: a backend whose writes queue for seconds would otherwise open
# the documents breaker and the rest of its run would measure 503s.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
export KEYS="${KEYS:-1000}"

command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 2; }
cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p walden-service --features bench-backends
bin="$root/target/release/walden-service"
work="$(mktemp -d)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

# Prints "<req/s> <p99>" of one wrk run; fails on socket errors or non-2xx answers.
measure() {
  local out
  out="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$here/$1.lua" "$2")"
  if grep -qE "Non-2xx|Socket errors" <<<"$out"; then
    echo "$out" >&2
    echo "wrk saw errors: $1 against $2" >&2
    exit 1
  fi
  local rps p99
  rps="$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")"
  p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
  echo "$rps $p99"
}

run() { # name, backend, extra args...
  local name="$1" backend="$2"
  shift 2
  local dir="$work/$name"
  mkdir -p "$dir"
  "$bin" --dir "$dir" --listen 127.0.0.1:0 --backend "$backend" --slow-call-ms 600000 "$@" >"$dir.out" 2>"$dir.err" &
  pid=$!
  for _ in $(seq 100); do grep -q "^listening on" "$dir.out" 2>/dev/null && break; sleep 0.1; done
  local url
  url="$(sed -n 's/^listening on //p' "$dir.out")"
  for k in $(seq 0 $((KEYS - 1))); do
    printf '{"id":%d}' "$k" | curl -sf -o /dev/null -X PUT --data-binary @- "$url/docs/bench/user-$k"
  done
  read -r put_rps put_p99 < <(measure put "$url")
  sleep 1 # let the writes wrk abandoned at its end finish (they run to completion)
  read -r get_rps get_p99 < <(measure get "$url")
  kill -TERM "$pid"
  wait "$pid"
  printf '| %s | %s | %s | %s | %s |\n' "$name" "$put_rps" "$put_p99" "$get_rps" "$get_p99"
}

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $KEYS documents, $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| documents in | PUT req/s | PUT p99 | GET req/s | GET p99 |"
echo "|---|---:|---:|---:|---:|"
run walden walden --rate-per-minute 0
run json-file json-file --rate-per-minute 0
run sqlite sqlite --rate-per-minute 0
run "walden + rate limit" walden --rate-per-minute 100000000 --burst 100000000
