#!/usr/bin/env bash
# Installs what building and testing Coracle needs on a fresh Debian machine.
set -euo pipefail
need=()
command -v cc >/dev/null || need+=(build-essential)
command -v kubectl >/dev/null || need+=(kubernetes-client)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]} with apt-get" >&2
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi
command -v cargo >/dev/null || { echo "setup: cargo (Rust toolchain) is required: install it with rustup" >&2; exit 1; }
command -v kubectl >/dev/null || { echo "setup: kubectl is required and could not be installed" >&2; exit 1; }
