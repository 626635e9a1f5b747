#!/usr/bin/env bash
# Runs section of scripts/bench.sh.
# 1. Throughput: 1 000 runs queued at once with a no-op script standing in for Terraform (only the
#    platform is measured), SQLite + embedded queue and PostgreSQL + RabbitMQ, four agents.
# 2. With real Terraform (when installed; GOT_BENCH_RUNS_OVERHEAD=0 skips it): the agent's
#    overhead beside bare Terraform and the enqueue-to-claim latency, 5 rounds
#    (`GOT_BENCH_ROUNDS` overrides).
# Both are `cargo bench --workspace --bench runs` (services/deploy/benches/runs.rs).
set -euo pipefail
cd "$(dirname "$0")/../.."

echo "## Runs"
echo
noop_dir="$(mktemp -d)"
trap 'rm -rf "$noop_dir"' EXIT
cat >"$noop_dir/terraform" <<'SCRIPT'
#!/bin/sh
# A no-op Terraform: every command succeeds at once; `output -json` prints no outputs.
case "$1" in
output) echo '{}' ;;
version) echo 'Terraform v0.0.0 (no-op stand-in)' ;;
esac
exit 0
SCRIPT
chmod +x "$noop_dir/terraform"
GOT_BENCH_RUNS_SCENARIO=throughput GOT_TERRAFORM_BIN="$noop_dir/terraform" \
    cargo bench --workspace --bench runs 2>/dev/null
echo
echo "Goals: ≥ 100 runs/s on SQLite + embedded queue, ≥ 50 runs/s on PostgreSQL + RabbitMQ with four agents; 201 → claim p50 < 50 ms."
echo

if [ "${GOT_BENCH_RUNS_OVERHEAD:-1}" != 0 ] && [ -x "${GOT_TERRAFORM_BIN:-$HOME/.cache/goterra/tools/bin/terraform}" ]; then
    GOT_BENCH_ROUNDS="${GOT_BENCH_ROUNDS:-5}" cargo bench --workspace --bench runs 2>/dev/null
    echo "Goal: destroy overhead against a bare \`terraform destroy\` ≤ +30 ms."
else
    echo "(real-Terraform overhead skipped: no Terraform at GOT_TERRAFORM_BIN or ~/.cache/goterra/tools/bin/terraform)"
fi
