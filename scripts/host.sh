#!/usr/bin/env bash
# Host mode, like k3s: build `coracle` and run it on this host as a one-node
# cluster (control plane + node with its own containerd), then print how to
# use kubectl against it.
# Ctrl-C stops it and everything it started (coracle killall).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release --locked -p coracle
data_dir="${CORACLE_DATA_DIR:-$PWD/out/server}"
port="${CORACLE_PORT:-6443}"
mkdir -p "$data_dir/images"
# A busybox image for a first pod, pre-loaded (no registry needed).
if [ ! -f "$data_dir/images/busybox.tar" ]; then
  tmp=$(mktemp -d)
  mkdir -p "$tmp/bin" "$tmp/tmp" "$tmp/etc"
  cp /bin/busybox "$tmp/bin/"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$tmp/bin/$a"; done
  ./target/release/coracle image pack --dir "$tmp" --name coracle.local/busybox:1 --out "$data_dir/images/busybox.tar" -- sh
  rm -rf "$tmp"
fi
echo "run: starting coracle server (data dir $data_dir, port $port); Ctrl-C stops it" >&2
./target/release/coracle server --data-dir "$data_dir" --https-listen-port "$port" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; ./target/release/coracle killall --data-dir "$data_dir"' EXIT INT TERM
export KUBECONFIG="$data_dir/kubeconfig.yaml"
for _ in $(seq 1 300); do
  [ -f "$KUBECONFIG" ] && kubectl wait --for=condition=Ready node --all --timeout=1s >/dev/null 2>&1 && break
  sleep 0.2
done
kubectl get nodes -o wide
cat <<MSG

Coracle is running: API server and a node on this host. Use it with:
  export KUBECONFIG=$KUBECONFIG
  kubectl run hello --image=coracle.local/busybox:1 --image-pull-policy=Never --restart=Never -- echo hello
  kubectl logs hello
MSG
wait $pid
