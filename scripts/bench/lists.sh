#!/usr/bin/env bash
# Lists section of scripts/bench.sh: every list route's first page with 100 000 runs and 10 000
# catalogue objects, SQLite and PostgreSQL (`cargo bench --workspace --bench lists`,
# services/deploy/benches/lists.rs; GOT_BENCH_RUNS, GOT_BENCH_CATALOGUE, GOT_BENCH_REQUESTS
# override the counts). Goal: p99 < 20 ms on every line.
set -euo pipefail
cd "$(dirname "$0")/../.."
echo "## Lists"
echo
cargo bench --workspace --bench lists 2>/dev/null
echo
echo "Goal: every first page < 20 ms p99 on both engines (client-side, one request at a time, loopback)."
