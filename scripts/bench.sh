#!/usr/bin/env bash
# The one bench command: `scripts/bench.sh` (see docs/performance.md).
#
# Prints the machine, date and load average, builds the release binaries once, measures the
# HTTP ceiling of this stack (goterra-ceiling: one bare axum JSON route) with wrk, then runs
# every section scripts/bench/*.sh in name order and prints a summary of every figure beside
# its reference and goal.
#
# Section contract (scripts/bench/<name>.sh, run with bash, one process per section):
#   In (environment):
#     GOT_BENCH_BIN_DIR        release binaries (goterra, goterra-store, goterra-ceiling, ...)
#     GOT_BENCH_CEILING_RPS    req/s of the ceiling in this run (wrk, same settings)
#     GOT_BENCH_SECONDS        wrk duration of one measurement (default 10)
#     GOT_BENCH_THREADS, GOT_BENCH_CONNECTIONS   wrk -t / -c (default 2 / 32)
#     GOT_BENCH_QUICK          1 for a smoke run: sections shrink their sizes
#     GOT_BENCH_REDIS_URL      Redis for backends and raw figures (redis://127.0.0.1:6379)
#     GOT_BENCH_POSTGRES_URL   a PostgreSQL server (postgres://postgres@127.0.0.1:5432)
#     GOT_BENCH_WORK           a scratch directory of the section's own, removed afterwards
#     GOT_BENCH_RESULTS        where scripts/bench/lib.sh records figures (do not write it
#                              yourself)
#     GOT_BENCH_REPO           the repository root
#   Out: lines on stdout. A section sources scripts/bench/lib.sh and reports each figure with
#     bench_ratio (against a reference: the ceiling, etcd, raw Redis...) or bench_limit
#     (against an absolute bound), or bench_skip with the reason; lib.sh also has wrk and
#     process helpers. A section that cannot run exits non-zero; the others still run.
#
# Settings: GOT_BENCH_SECONDS=3 GOT_BENCH_QUICK=1 for a quick run; GOT_BENCH_ONLY="store auth"
# runs only those sections; GOT_BENCH_CARGO=1 also runs the cargo benches (criterion and load
# benches of each service, see the end of this script). CARGO_TARGET_DIR is honoured; a preset
# GOT_BENCH_BIN_DIR skips the build and uses the binaries there.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

export GOT_BENCH_REPO="$repo"
export GOT_BENCH_SECONDS="${GOT_BENCH_SECONDS:-10}"
export GOT_BENCH_THREADS="${GOT_BENCH_THREADS:-2}"
export GOT_BENCH_CONNECTIONS="${GOT_BENCH_CONNECTIONS:-32}"
export GOT_BENCH_QUICK="${GOT_BENCH_QUICK:-0}"
export GOT_BENCH_REDIS_URL="${GOT_BENCH_REDIS_URL:-redis://127.0.0.1:6379}"
export GOT_BENCH_POSTGRES_URL="${GOT_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
build=1
if [[ -n "${GOT_BENCH_BIN_DIR:-}" ]]; then
    build=0 # binaries built already (e.g. copied aside from a shared target directory)
else
    export GOT_BENCH_BIN_DIR="$target_dir/release"
fi

for tool in wrk curl jq; do
    command -v "$tool" >/dev/null || { echo "bench.sh needs $tool (apt-get install $tool)" >&2; exit 1; }
done

echo "# Goterra bench"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(uname -sr)"
echo "- load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (uncommitted changes)')"
echo "- wrk -t$GOT_BENCH_THREADS -c$GOT_BENCH_CONNECTIONS -d${GOT_BENCH_SECONDS}s, client on the same cores"
echo

if ((build)); then
    echo "Building release binaries in $target_dir ..."
    cargo build --release --workspace --bins --quiet
    echo
fi

export GOT_BENCH_RESULTS
GOT_BENCH_RESULTS="$(mktemp)"
trap 'rm -f "$GOT_BENCH_RESULTS"' EXIT
# shellcheck source=bench/lib.sh
source "$repo/scripts/bench/lib.sh"

bench_section "Ceiling: bare axum JSON route (goterra-ceiling)"
ceiling_port="$(bench_free_port)"
bench_spawn "$GOT_BENCH_BIN_DIR/goterra-ceiling" --listen "127.0.0.1:$ceiling_port"
bench_wait_http "http://127.0.0.1:$ceiling_port/"
bench_wrk "http://127.0.0.1:$ceiling_port/"
export GOT_BENCH_CEILING_RPS="$WRK_RPS"
bench_figure "ceiling: GET /" "$WRK_RPS" "req/s" "p50 ${WRK_P50_MS} ms, p99 ${WRK_P99_MS} ms"
bench_stop_spawned

failed_sections=()
for section in "$repo"/scripts/bench/*.sh; do
    name="$(basename "$section" .sh)"
    [[ "$name" == lib ]] && continue
    if [[ -n "${GOT_BENCH_ONLY:-}" && " $GOT_BENCH_ONLY " != *" $name "* ]]; then
        continue
    fi
    work="$(mktemp -d)"
    if ! GOT_BENCH_WORK="$work" bash "$section"; then
        failed_sections+=("$name")
        echo "!! section $name failed"
    fi
    rm -rf "$work"
    echo
done

if [[ "${GOT_BENCH_CARGO:-0}" == 1 ]]; then
    # The benches next to the code (criterion and load benches; each prints its own report).
    for bench in auth store_load runs events runs_page; do
        bench_section "cargo bench --workspace --bench $bench"
        cargo bench --workspace --bench "$bench" || failed_sections+=("cargo:$bench")
    done
fi

bench_summary
echo "- load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if ((${#failed_sections[@]})); then
    echo "- sections that failed: ${failed_sections[*]}"
    exit 1
fi
