#!/usr/bin/env bash
# Auth section of scripts/bench.sh: token encode/verify (criterion) and the authenticated HTTP
# paths under `wrk -t2 -c32 -d10s`, each beside the axum ceiling of the same run.
#
# Needs GOT_BENCH_BIN_DIR (release binaries, `goterra` among them) and GOT_BENCH_CEILING_RPS
# (set by scripts/bench.sh; set them by hand to run this section alone). GOT_BENCH_DURATION
# overrides wrk's 10 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${GOT_BENCH_BIN_DIR:?set GOT_BENCH_BIN_DIR to the release binaries (scripts/bench.sh does)}"
: "${GOT_BENCH_CEILING_RPS:?set GOT_BENCH_CEILING_RPS to the axum ceiling (scripts/bench.sh does)}"
DURATION="${GOT_BENCH_DURATION:-10s}"

ratio() { awk -v a="$1" -v b="$GOT_BENCH_CEILING_RPS" 'BEGIN { printf "%.2f", a / b }'; }

echo "## Auth"
echo
echo "| what | figure | against | goal |"
echo "|---|---|---|---|"

# Criterion prints `time:   [low median high]`; the median is the figure.
criterion_median() {
    awk -v name="$1" 'index($0, name) == 1 { found = 1 }
        found && /time:/ { gsub(/[\[\]]/, ""); for (i = 1; i <= NF; i++) if ($i == "time:") { print $(i + 3), $(i + 4); exit } }'
}
bench_log="$(mktemp)"
cargo bench --workspace --bench tokens -- --noplot >"$bench_log" 2>&1 || { cat "$bench_log" >&2; exit 1; }
for what in encode verify; do
    echo "| token $what (criterion median) | $(criterion_median "token $what " <"$bench_log") | $(criterion_median "token $what, fernet crate" <"$bench_log") with the \`fernet\` crate | < 1.5 µs |"
done
rm -f "$bench_log"

data_dir="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
admin_key="bench-admin-key-$(date +%s%N)"
GOT_LOG=warn GOT_ADMIN_APIKEY="$admin_key" GOT_SECRET="bench-secret-0123456789" \
    "$GOT_BENCH_BIN_DIR/goterra" up --listen "127.0.0.1:$port" --data-dir "$data_dir" >"$data_dir/log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data_dir"' EXIT
for _ in $(seq 1 300); do
    curl -fsS "$base/auth" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "$base/auth" >/dev/null || { echo "goterra up did not answer within 30 s:" >&2; cat "$data_dir/log" >&2; exit 1; }

json() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }
alice_key="$(curl -fsS -X POST "$base/auth/register" -H "X-API-Key: $admin_key" -H 'Content-Type: application/json' \
    -d '{"uid": "alice", "password": "alice-password-1", "email": "alice@example.org"}' | json '["apikey"]')"
alice="$(curl -fsS "$base/auth/api" -H "X-API-Key: $alice_key" | json '["token"]')"
deployment="$(curl -fsS -X POST "$base/store" -H "Authorization: Bearer $alice" | json '["id"]')"
curl -fsS -X PUT "$base/store/$deployment" -H "Authorization: Bearer $alice" -H 'Content-Type: application/json' \
    -d '{"key": "cluster_token", "value": "0123456789"}' >/dev/null

# `wrk` against one URL with one header: requests/s, and a note when any answer was not 2xx.
load() {
    local label="$1" url="$2" header="$3" goal="$4" out rps errors
    out="$(wrk -t2 -c32 -d"$DURATION" --latency -H "$header" "$url")"
    rps="$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")"
    errors="$(awk '/Non-2xx/ { print $NF }' <<<"$out")"
    local p99
    p99="$(awk '$1 == "99%" { print $2 }' <<<"$out")"
    echo "| $label | $rps req/s, p99 $p99${errors:+, $errors non-2xx} | $(ratio "$rps") × ceiling | $goal |"
}
load '`GET /auth/me`, user token' "$base/auth/me" "Authorization: Bearer $alice" "≥ 0.5 × ceiling"
load 'store GET, user token' "$base/store/$deployment/cluster_token" "Authorization: Bearer $alice" "≥ 0.5 × ceiling"
load '`GET /auth/api`, `X-API-Key`' "$base/auth/api" "X-API-Key: $alice_key" "≥ 0.3 × ceiling"
echo
echo "Ceiling: $GOT_BENCH_CEILING_RPS req/s (bare axum JSON route, same run); server: \`goterra up\` (SQLite, embedded store)."
