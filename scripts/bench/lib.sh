# Helpers for the sections of scripts/bench.sh (see its header for the contract). Source it:
#   source "$(dirname "$0")/lib.sh"
# Reporting (each prints one line and records it for bench.sh's summary):
#   bench_figure LABEL VALUE UNIT [NOTE]                a figure without a goal (a reference)
#   bench_ratio  LABEL VALUE UNIT REF_LABEL REF_VALUE [GOAL]
#                                                       VALUE / REF_VALUE; met when >= GOAL
#   bench_limit  LABEL VALUE UNIT OP LIMIT              met when VALUE OP LIMIT (OP: < <= > >=)
#   bench_skip   LABEL REASON
# Measuring:
#   bench_wrk URL [LUA_SCRIPT]   wrk with the run's settings; sets WRK_RPS, WRK_P50_MS,
#                                WRK_P99_MS, WRK_ERRORS (socket errors + non-2xx answers)
#   bench_lua_requests FILE METHOD PATH BODY [HEADER...]   writes a wrk script whose requests
#                                cycle through 1 000 keys: "{key}" in PATH and BODY becomes
#                                k0..k999, "{key64}" the key in base64
# Processes: bench_spawn CMD... (sets BENCH_PID; killed when the section exits),
#   bench_stop PID, bench_stop_spawned, bench_free_port, bench_wait_http URL [SECONDS]

: "${GOT_BENCH_SECONDS:=10}" "${GOT_BENCH_THREADS:=2}" "${GOT_BENCH_CONNECTIONS:=32}"
: "${GOT_BENCH_WORK:=$(mktemp -d)}" "${GOT_BENCH_RESULTS:=/dev/null}"

BENCH_PIDS=()
trap 'bench_stop_spawned' EXIT

bench_section() {
    echo "## $1"
}

# A port nobody listens on, below the ephemeral range (so no client connection takes it).
bench_free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 10000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}

bench_spawn() {
    local log="$GOT_BENCH_WORK/$(basename "$1").$RANDOM.log"
    "$@" >"$log" 2>&1 &
    BENCH_PID=$!
    BENCH_PIDS+=("$BENCH_PID")
}

bench_stop() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

bench_stop_spawned() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        bench_stop "$pid"
    done
    BENCH_PIDS=()
}

bench_wait_http() {
    local url="$1" deadline=$((SECONDS + ${2:-30}))
    until curl -sf -o /dev/null "$url"; do
        if ((SECONDS > deadline)); then
            echo "!! $url did not come up" >&2
            return 1
        fi
        sleep 0.1
    done
}

# wrk's latency ("375.00us", "2.10ms", "1.02s") in milliseconds.
_bench_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000
        printf "%.2f", n }'
}

bench_wrk() {
    local url="$1" script="${2:-}" out="$GOT_BENCH_WORK/wrk.$RANDOM.txt"
    local args=(-t"$GOT_BENCH_THREADS" -c"$GOT_BENCH_CONNECTIONS" -d"${GOT_BENCH_SECONDS}s" --latency)
    [[ -n "$script" ]] && args+=(-s "$script")
    wrk "${args[@]}" "$url" >"$out" 2>&1 || { cat "$out" >&2; return 1; }
    WRK_RPS="$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")"
    WRK_P50_MS="$(_bench_ms "$(awk '$1 == "50%" {print $2}' "$out")")"
    WRK_P99_MS="$(_bench_ms "$(awk '$1 == "99%" {print $2}' "$out")")"
    WRK_ERRORS="$(awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors:/ {
        for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i } END {print n + 0}' "$out")"
    if ((WRK_ERRORS > 0)); then
        echo "   (wrk: $WRK_ERRORS errors or non-2xx answers; see below)"
        sed 's/^/   | /' "$out"
    fi
}

bench_lua_requests() {
    local file="$1" method="$2" path="$3" body="$4"
    shift 4
    {
        echo "local n = 0"
        echo "local headers = {}"
        local header
        for header in "$@"; do
            printf 'headers["%s"] = "%s"\n' "${header%%:*}" "$(echo "${header#*:}" | sed 's/^ *//')"
        done
        [[ -n "$body" ]] && echo 'headers["Content-Type"] = "application/json"'
        printf 'local path = [[%s]]\n' "$path"
        printf 'local body = [[%s]]\n' "$body"
        cat <<'LUA'
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(text)
    return ((text:gsub(".", function(c)
        local bits, byte = "", c:byte()
        for i = 8, 1, -1 do bits = bits .. (byte % 2 ^ i - byte % 2 ^ (i - 1) > 0 and "1" or "0") end
        return bits
    end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(bits)
        if #bits < 6 then return "" end
        local n = 0
        for i = 1, 6 do n = n + (bits:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
        return alphabet:sub(n + 1, n + 1)
    end) .. ({ "", "==", "=" })[#text % 3 + 1])
end
local function fill(template, key)
    return (template:gsub("{key64}", base64(key)):gsub("{key}", key))
end
request = function()
    n = n + 1
    local key = "k" .. (n % 1000)
    local b = nil
    if body ~= "" then b = fill(body, key) end
LUA
        printf '    return wrk.format("%s", fill(path, key), headers, b)\nend\n' "$method"
    } >"$file"
}

_bench_record() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$GOT_BENCH_RESULTS"
}

# Thousands separated by a thin space, as docs/performance.md writes them.
_bench_num() {
    awk -v v="$1" 'BEGIN {
        if (v !~ /^[0-9]+$/) { print v; exit }
        s = ""; while (length(v) > 3) { s = " " substr(v, length(v) - 2) s; v = substr(v, 1, length(v) - 3) }
        print v s }'
}

bench_figure() {
    local label="$1" value="$2" unit="$3" note="${4:-}"
    printf '  %-44s %12s %-6s %s\n' "$label" "$(_bench_num "$value")" "$unit" "$note"
    _bench_record "$label" "$(_bench_num "$value") $unit" "${note:-—}" "" "" ""
}

bench_ratio() {
    local label="$1" value="$2" unit="$3" ref_label="$4" ref="$5" goal="${6:-}"
    local ratio verdict=""
    ratio="$(awk -v v="$value" -v r="$ref" 'BEGIN { if (r + 0 > 0) printf "%.2f", v / r; else print "n/a" }')"
    if [[ -n "$goal" ]]; then
        verdict="$(awk -v x="$ratio" -v g="$goal" 'BEGIN { print (x != "n/a" && x + 0 >= g + 0) ? "met" : "NOT MET" }')"
    fi
    printf '  %-44s %12s %-6s %6s × %s (%s)%s\n' "$label" "$(_bench_num "$value")" "$unit" "$ratio" \
        "$ref_label" "$(_bench_num "$ref")" "${goal:+   goal ≥ $goal: $verdict}"
    _bench_record "$label" "$(_bench_num "$value") $unit" "$ref_label $(_bench_num "$ref")" "$ratio ×" \
        "${goal:+≥ $goal ×}" "$verdict"
}

bench_limit() {
    local label="$1" value="$2" unit="$3" op="$4" limit="$5" verdict
    verdict="$(awk -v v="$value" -v l="$limit" -v op="$op" 'BEGIN {
        ok = (op == "<" && v < l) || (op == "<=" && v <= l) || (op == ">" && v > l) || (op == ">=" && v >= l)
        print ok ? "met" : "NOT MET" }')"
    printf '  %-44s %12s %-6s goal %s %s %s: %s\n' "$label" "$(_bench_num "$value")" "$unit" "$op" "$limit" "$unit" "$verdict"
    _bench_record "$label" "$(_bench_num "$value") $unit" "—" "" "$op $limit $unit" "$verdict"
}

bench_skip() {
    printf '  %-44s skipped: %s\n' "$1" "$2"
    _bench_record "$1" "skipped" "$2" "" "" ""
}

bench_summary() {
    echo
    echo "## Summary"
    echo
    echo "| what | figure | reference | ratio | goal | |"
    echo "|---|---|---|---|---|---|"
    awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6 }' "$GOT_BENCH_RESULTS"
    echo
    local met missed
    met="$(awk -F'\t' '$6 == "met"' "$GOT_BENCH_RESULTS" | wc -l)"
    missed="$(awk -F'\t' '$6 == "NOT MET"' "$GOT_BENCH_RESULTS" | wc -l)"
    echo "- goals met: $met of $((met + missed))"
}
