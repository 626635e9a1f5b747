#!/usr/bin/env bash
# The project's one test command: formatting, lints, then every test of the workspace.
# Needs PostgreSQL, Redis and RabbitMQ on 127.0.0.1 and Terraform (see README, or run .ci/run,
# which sets all of that up first).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
