#!/usr/bin/env bash
# Runs every test: unit tests of each crate, the kubectl integration tests
# against real `coracle server` processes, and the QEMU tests (qemu-tests/:
# built images booted under QEMU; the first run fills the package cache,
# cache/ or $CORACLE_CACHE, with apt-get download).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --workspace --locked
# The aarch64 QEMU test (qemu-tests/tests/aarch64.rs) boots an image with
# a cross-built debug `coracle`; it skips, saying why, without the board,
# the Rust target or the linker.
if [ -f boards/qemu-aarch64/board.toml ] && command -v aarch64-linux-gnu-gcc >/dev/null \
  && rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    cargo build --locked -p coracle --target aarch64-unknown-linux-gnu
fi
cargo test --workspace --locked -- --test-threads=2
