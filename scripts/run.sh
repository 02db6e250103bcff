#!/usr/bin/env bash
# The main job (for now): build `coracle` and run its control plane on this
# host, then print how to use kubectl against it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release --locked -p coracle
data_dir="${CORACLE_DATA_DIR:-$PWD/out/server}"
port="${CORACLE_PORT:-6443}"
mkdir -p "$data_dir"
echo "run: starting coracle server (data dir $data_dir, port $port); Ctrl-C stops it" >&2
./target/release/coracle server --disable-agent --data-dir "$data_dir" --https-listen-port "$port" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT INT TERM
for _ in $(seq 1 100); do
  [ -f "$data_dir/kubeconfig.yaml" ] && kubectl --kubeconfig "$data_dir/kubeconfig.yaml" get --raw /readyz >/dev/null 2>&1 && break
  sleep 0.2
done
kubectl --kubeconfig "$data_dir/kubeconfig.yaml" get namespaces
cat <<MSG

Coracle API server is running. Use it with:
  export KUBECONFIG=$data_dir/kubeconfig.yaml
  kubectl get all -A
MSG
wait $pid
