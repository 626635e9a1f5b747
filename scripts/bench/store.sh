#!/usr/bin/env bash
# Store section of scripts/bench.sh (contract in bench.sh's header): etcd's JSON gateway and raw
# Redis as references, the store with each backend (wrk, 100-byte values over 1 000 keys, every
# request with a deployment token), then many requests waiting for one key.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

bin="$GOT_BENCH_BIN_DIR"
ceiling="$GOT_BENCH_CEILING_RPS"
value="$(printf 'v%.0s' $(seq 100))"
waiters="${GOT_BENCH_WAITERS:-$([[ "$GOT_BENCH_QUICK" == 1 ]] && echo 2000 || echo 100000)}"
redis_host="$(echo "$GOT_BENCH_REDIS_URL" | sed -E 's#^redis://([^:/]+).*#\1#')"
redis_port="$(echo "$GOT_BENCH_REDIS_URL" | sed -E 's#^redis://[^:/]+:?([0-9]*).*#\1#')"
redis_port="${redis_port:-6379}"

# Starts goterra-store alone in anonymous mode (deployments are created with a bare X-API-Key)
# with the backend $1 (embedded or redis); sets STORE_URL and STORE_PID.
start_store() {
    local backend="$1" port dir
    port="$(bench_free_port)"
    dir="$GOT_BENCH_WORK/store-$backend-$port"
    mkdir -p "$dir"
    local env=(PATH="$PATH" GOT_LISTEN="127.0.0.1:$port" GOT_URL="http://127.0.0.1:$port"
        GOT_SECRET=bench-secret-0123456789abcdef GOT_DATA_DIR="$dir"
        GOT_DATABASE_URL="sqlite://$dir/store.db?mode=rwc" GOT_FEAT_ANONYMOUS=1 GOT_LOG=warn
        GOT_HTTP_MAX_CONNECTIONS=1000000)
    if [[ "$backend" == redis ]]; then
        env+=(GOT_REDIS_URL="$GOT_BENCH_REDIS_URL" GOT_REDIS_PREFIX="gotbench-$port-$RANDOM")
    fi
    bench_spawn env -i "${env[@]}" "$bin/goterra-store"
    STORE_PID="$BENCH_PID"
    STORE_URL="http://127.0.0.1:$port"
    bench_wait_http "$STORE_URL/store"
}

# PUT then GET on one deployment; sets PUT_* and GET_* figures.
measure_store() {
    local created id token
    created="$(curl -sf -X POST -H 'X-API-Key: bench' "$STORE_URL/store")"
    id="$(jq -r .id <<<"$created")"
    token="$(jq -r .token <<<"$created")"
    bench_lua_requests "$GOT_BENCH_WORK/put.lua" PUT "/store/$id" \
        "{\"key\":\"{key}\",\"value\":\"$value\"}" "Authorization: Bearer $token"
    bench_wrk "$STORE_URL" "$GOT_BENCH_WORK/put.lua"
    PUT_RPS="$WRK_RPS" PUT_P99="$WRK_P99_MS" PUT_ERRORS="$WRK_ERRORS"
    bench_lua_requests "$GOT_BENCH_WORK/get.lua" GET "/store/$id/{key}" "" "Authorization: Bearer $token"
    bench_wrk "$STORE_URL" "$GOT_BENCH_WORK/get.lua"
    GET_RPS="$WRK_RPS" GET_P99="$WRK_P99_MS" GET_ERRORS="$WRK_ERRORS"
    curl -sf -o /dev/null -X DELETE -H "Authorization: Bearer $token" "$STORE_URL/store/$id" || true
}

bench_section "Store: references"
etcd_put=""
if command -v etcd >/dev/null; then
    client_port="$(bench_free_port)"
    peer_port="$(bench_free_port)"
    bench_spawn etcd --name bench --data-dir "$GOT_BENCH_WORK/etcd" \
        --listen-client-urls "http://127.0.0.1:$client_port" --advertise-client-urls "http://127.0.0.1:$client_port" \
        --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
        --initial-cluster "bench=http://127.0.0.1:$peer_port" --log-level error
    etcd_pid="$BENCH_PID"
    bench_wait_http "http://127.0.0.1:$client_port/version"
    value64="$(printf '%s' "$value" | base64 -w0)"
    bench_lua_requests "$GOT_BENCH_WORK/etcd-put.lua" POST /v3/kv/put "{\"key\":\"{key64}\",\"value\":\"$value64\"}"
    bench_wrk "http://127.0.0.1:$client_port" "$GOT_BENCH_WORK/etcd-put.lua"
    etcd_put="$WRK_RPS"
    bench_figure "etcd $(etcd --version | awk '/etcd Version/ {print $3}') JSON gateway: put" "$WRK_RPS" req/s "p99 $WRK_P99_MS ms"
    bench_lua_requests "$GOT_BENCH_WORK/etcd-range.lua" POST /v3/kv/range "{\"key\":\"{key64}\"}"
    bench_wrk "http://127.0.0.1:$client_port" "$GOT_BENCH_WORK/etcd-range.lua"
    bench_figure "etcd JSON gateway: range" "$WRK_RPS" req/s "p99 $WRK_P99_MS ms"
    bench_stop "$etcd_pid"
else
    bench_skip "etcd JSON gateway: put / range" "etcd is not installed (apt-get install etcd-server)"
fi

if command -v redis-benchmark >/dev/null; then
    requests=$([[ "$GOT_BENCH_QUICK" == 1 ]] && echo 20000 || echo 200000)
    raw="$(redis-benchmark -h "$redis_host" -p "$redis_port" -c "$GOT_BENCH_CONNECTIONS" -n "$requests" -d 100 -t set,get -q | tr '\r' '\n')"
    for command in SET GET; do
        rps="$(awk -v c="$command:" '$1 == c && /requests per second/ {printf "%.0f\n", $2}' <<<"$raw" | tail -1)"
        bench_figure "raw Redis, redis-benchmark -c $GOT_BENCH_CONNECTIONS -d 100: $command" "$rps" req/s
    done
else
    bench_skip "raw Redis (redis-benchmark)" "redis-benchmark is not installed (apt-get install redis-tools)"
fi
echo

for backend in embedded redis; do
    if [[ "$backend" == embedded ]]; then title="store, embedded (SQLite)"; else title="store, Redis backend"; fi
    bench_section "Store: $title"
    start_store "$backend"
    measure_store
    bench_stop "$STORE_PID"
    if [[ "$backend" == embedded ]]; then
        if [[ -n "$etcd_put" ]]; then
            bench_ratio "$title: PUT" "$PUT_RPS" req/s "etcd put" "$etcd_put" 2
        else
            bench_figure "$title: PUT" "$PUT_RPS" req/s "(no etcd to compare with)"
        fi
        bench_ratio "$title: GET" "$GET_RPS" req/s ceiling "$ceiling" 0.5
        bench_limit "$title: PUT p99" "$PUT_P99" ms "<" 5
        bench_limit "$title: GET p99" "$GET_P99" ms "<" 5
    else
        bench_ratio "$title: PUT" "$PUT_RPS" req/s ceiling "$ceiling" 0.4
        bench_ratio "$title: GET" "$GET_RPS" req/s ceiling "$ceiling" 0.6
        bench_figure "$title: PUT / GET p99" "$PUT_P99 / $GET_P99" ms
    fi
    if ((PUT_ERRORS + GET_ERRORS > 0)); then
        echo "!! $title: $PUT_ERRORS PUT and $GET_ERRORS GET errors" >&2
        exit 1
    fi
    echo
done

# Every waiter holds a connection in the store and one in the client (two processes): raise the
# file limit of this shell, which both inherit. Beyond the hard limit this needs root with
# CAP_SYS_RESOURCE; without it the section measures as many waiters as the limit allows.
wanted="$waiters"
ulimit -Hn $((waiters + 2000)) 2>/dev/null || true
if (($(ulimit -Hn) < waiters + 2000)); then
    waiters=$(($(ulimit -Hn) - 2000))
    echo "  the file limit is $(ulimit -Hn) and cannot be raised here: $waiters waiters instead of $wanted"
fi
ulimit -n "$(ulimit -Hn)"
for backend in embedded redis; do
    if [[ "$backend" == embedded ]]; then title="waiters, embedded"; else title="waiters, Redis"; fi
    bench_section "Store: $waiters requests waiting for one key ($backend)"
    start_store "$backend"
    report="$("$bin/goterra-waiters" --server "${STORE_URL#http://}" --pid "$STORE_PID" --waiters "$waiters")"
    bench_stop "$STORE_PID"
    get() { sed -n "s/^$1=//p" <<<"$report"; }
    bench_limit "$title: waiters" "$waiters" "" ">=" "$wanted"
    bench_limit "$title: answered 200" "$(get answered)" "" ">=" "$waiters"
    bench_limit "$title: answered before the PUT" "$(get early)" "" "<=" 0
    if [[ "$(get early)" != 0 ]]; then echo "  statuses answered before the PUT: $(get early_statuses)"; fi
    bench_limit "$title: memory per waiter" "$(get kib_per_waiter)" KiB "<" 12
    bench_limit "$title: PUT → last answer" "$(get put_to_last_ms)" ms "<" 2000
    bench_limit "$title: CPU while idle" "$(get idle_cpu_percent)" "% core" "<" 1
    echo
done
