#!/usr/bin/env bash
# Runs every test: unit tests of each crate and the kubectl integration tests
# against real `coracle server` processes.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --workspace --locked
cargo test --workspace --locked -- --test-threads=2
