#!/usr/bin/env bash
# The main job: build `coracle` and the qemu-x86_64 disk image (Debian
# packages fetched once into cache/), boot it under QEMU, and write a
# kubeconfig for the node inside (the API is forwarded to 127.0.0.1:6443).
# The serial console shows on this terminal; Ctrl-C stops the VM (or power
# it off cleanly from another terminal, see README).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
board="${CORACLE_BOARD:-qemu-x86_64}"
out="${CORACLE_OUT:-$PWD/out/$board}"
echo "run: building coracle (release; several minutes the first time)" >&2
cargo build --release --locked -p coracle
cargo build --locked -p coracle-build
mkdir -p "$out"
# A busybox image for a first pod, pre-loaded into the image (no registry needed).
[ -f "$out/busybox.tar" ] || ./target/release/coracle image busybox --out "$out/busybox.tar"
cat <<MSG >&2
run: once the node is Ready, from another terminal:
  export KUBECONFIG=$out/kubeconfig
  kubectl get nodes -o wide
  kubectl run hello --image=coracle.local/busybox:1 --image-pull-policy=Never --restart=Never -- echo hello
  kubectl logs hello
MSG
exec ./target/debug/coracle-build run --board "$board" --out "$out" --coracle-bin target/release/coracle --preload "$out/busybox.tar" "$@"
