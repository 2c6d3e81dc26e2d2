#!/usr/bin/env bash
# Installs every Debian package tlstap needs to build, test and benchmark.
# Idempotent; run as root on Debian 12 (bookworm).
set -euo pipefail

build_packages=(
  cmake ninja-build pkg-config g++ clang-format
  clang-19 llvm-19            # BPF compiler, pinned: older clang output is rejected by the verifier
  libclang-rt-19-dev          # libFuzzer and sanitizer runtimes for the fuzz targets
  bpftool libbpf-dev libelf-dev zlib1g-dev libdw-dev
  libcapstone-dev libnghttp2-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
)
test_packages=(
  python3-pytest
  openssl libssl-dev curl python3 nodejs nginx-light iproute2 procps util-linux binutils
  golang-1.19-go golang-google-grpc-dev gnutls-bin libnss3-tools android-libboringssl-dev
  wrk nghttp2-client tshark python3-grpcio
)

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: must run as root (apt-get)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Packages like nginx must not start services on this machine: tests start their own.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update
apt-get install -y --no-install-recommends "${build_packages[@]}" "${test_packages[@]}"
# gRPC tests' node side: @grpc/grpc-js is not packaged by Debian. npm comes
# with NodeSource's nodejs, and as its own package with Debian's.
command -v npm >/dev/null || apt-get install -y --no-install-recommends npm
if [[ ! -e /opt/tlstap-testdeps/node_modules/@grpc/grpc-js/package.json ]]; then
  npm install --prefix /opt/tlstap-testdeps @grpc/grpc-js@1
fi
