#!/usr/bin/env bash
# Footprint section of scripts/bench.sh: how long `goterra up` takes to answer its first request
# (hyperfine, first start on an empty data dir and restart on an existing one) and its resident
# memory when idle. Needs GOT_BENCH_BIN_DIR (release binaries). Goals: ready < 100 ms, idle RSS
# < 30 MB.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${GOT_BENCH_BIN_DIR:?set GOT_BENCH_BIN_DIR to the release binaries (scripts/bench.sh does)}"
goterra="$GOT_BENCH_BIN_DIR/goterra"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

# One start: spawn, poll `GET /auth` with bash's own /dev/tcp (no process per attempt) until
# it answers 200, stop the server. What hyperfine times is this whole script.
cat >"$work/up-ready.sh" <<SCRIPT
#!/usr/bin/env bash
GOT_LOG=error GOT_SECRET=bench-secret-0123456789 GOT_ADMIN_APIKEY=bench-admin-key-0123456789 \\
    "$goterra" up --listen 127.0.0.1:$port --data-dir "$work/data" >/dev/null 2>&1 &
server=\$!
until exec 3<>/dev/tcp/127.0.0.1/$port 2>/dev/null \\
    && printf 'GET /auth HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3 \\
    && read -r status <&3 && [[ \$status == *" 200 "* ]]; do
    exec 3>&- 2>/dev/null
done
exec 3>&-
kill \$server
wait \$server 2>/dev/null || true
SCRIPT
chmod +x "$work/up-ready.sh"

echo "## Footprint"
echo
hyperfine -N --warmup 1 --runs 20 --prepare "rm -rf $work/data" --export-json "$work/first.json" \
    --command-name 'goterra up, empty data dir → first 200' "$work/up-ready.sh" >/dev/null 2>&1
hyperfine -N --warmup 2 --runs 20 --export-json "$work/restart.json" \
    --command-name 'goterra up, existing data dir → first 200' "$work/up-ready.sh" >/dev/null 2>&1
echo "| hyperfine, 20 runs | median ms | min ms | max ms | goal |"
echo "|---|---|---|---|---|"
for run in first restart; do
    python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print("| %s | %.1f | %.1f | %.1f | < 100 ms |" % (r["command"], r["median"] * 1e3, r["min"] * 1e3, r["max"] * 1e3))' "$work/$run.json"
done
echo

GOT_LOG=error GOT_SECRET=bench-secret-0123456789 GOT_ADMIN_APIKEY=bench-admin-key-0123456789 \
    "$goterra" up --listen "127.0.0.1:$port" --data-dir "$work/data" >/dev/null 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/auth" >/dev/null 2>&1 && break; sleep 0.05; done
sleep 5
rss_kb="$(awk '/^VmRSS/ { print $2 }' "/proc/$server/status")"
kill "$server"; wait "$server" 2>/dev/null || true
echo "| what | figure | goal |"
echo "|---|---|---|"
echo "| idle RSS of \`goterra up\` (5 s after ready) | $((rss_kb / 1024)) MiB ($rss_kb kB) | < 30 MB |"
echo
echo "Goals: ready < 100 ms; idle RSS < 30 MB. The timed script includes starting bash and polling."
