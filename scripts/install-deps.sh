#!/usr/bin/env bash
# Installs every Debian package tlstap needs to build, test and benchmark.
# Idempotent; run as root on Debian 12 (bookworm).
#   --build-only: what building the tlstap binary needs, nothing for the tests
#                 (deploy/Dockerfile's build stage).
set -euo pipefail

build_only=false
case "${1:-}" in
  --build-only) build_only=true ;;
  "") ;;
  *) echo "usage: install-deps.sh [--build-only]" >&2; exit 2 ;;
esac

build_packages=(
  cmake ninja-build pkg-config g++ clang-format
  clang-19 llvm-19            # BPF compiler, pinned: older clang output is rejected by the verifier
  libclang-rt-19-dev          # libFuzzer and sanitizer runtimes for the fuzz targets
  bpftool libbpf-dev libelf-dev zlib1g-dev libdw-dev
  libbrotli-dev libzstd-dev   # br and zstd bodies (and their encoders, for the unit tests)
  libcapstone-dev libnghttp2-dev nlohmann-json3-dev libcli11-dev libfmt-dev
  libssl-dev                  # libcrypto (base64 for JSON) and libssl (the benchmark)
  libgtest-dev libgmock-dev libbenchmark-dev
  libgnutls28-dev libnss3-dev  # the benchmark's GnuTLS and NSS ping-pongs
)
test_packages=(
  python3-pytest
  openssl curl python3 nodejs nginx-light iproute2 procps util-linux binutils
  golang-1.19-go golang-google-grpc-dev gnutls-bin libnss3-tools android-libboringssl-dev
  wrk nghttp2-client tshark python3-grpcio python3-websockets golang-github-gorilla-websocket-dev
  containerd runc             # real containers for the container and pod tests (a private containerd)
  python3-yaml                # the DaemonSet test reads deploy/kubernetes/tlstap.yaml
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
if $build_only; then
  apt-get install -y --no-install-recommends "${build_packages[@]}"
  exit 0
fi
apt-get install -y --no-install-recommends "${build_packages[@]}" "${test_packages[@]}"
# gRPC tests' node side: @grpc/grpc-js is not packaged by Debian. npm comes
# with NodeSource's nodejs, and as its own package with Debian's.
command -v npm >/dev/null || apt-get install -y --no-install-recommends npm
if [[ ! -e /opt/tlstap-testdeps/node_modules/@grpc/grpc-js/package.json ]]; then
  npm install --prefix /opt/tlstap-testdeps @grpc/grpc-js@1
fi

# Downloads POOL_PATH (e.g. pool/main/g/...) of Debian's archive to DEST and checks its sha256:
# the pinned artifact, or nothing. Releases move from deb.debian.org to archive.debian.org when
# they retire; the snapshot keeps everything (the hash makes any mirror safe).
fetch_verified() {
  local path=$1 sha256=$2 dest=$3 mirror
  for mirror in http://deb.debian.org/debian http://archive.debian.org/debian \
    http://snapshot.debian.org/archive/debian/20250520T000000Z; do
    if curl -fsSL --retry 3 -o "$dest" "$mirror/$path"; then
      if echo "$sha256  $dest" | sha256sum --check --status; then
        return 0
      fi
      echo "install-deps: $mirror/$path does not have sha256 $sha256; refusing it" >&2
      exit 1
    fi
  done
  echo "install-deps: $path is on none of Debian's mirrors" >&2
  exit 1
}

# --- BoringSSL linked statically, for the bpf tier (tests/bpf/test_boringssl.py) ---
# Debian ships BoringSSL only as shared libraries (android-libboringssl). To test an executable
# with BoringSSL linked in statically, libssl.a and libcrypto.a are built from Debian's own source
# of that package (android-platform-external-boringssl, the same version as the .so) and installed
# with their headers under /opt/tlstap-testdeps/boringssl-static/{lib,include}. The sources are
# compiled from the file lists the tarball ships (android-sources.cmake) together with the
# pre-generated x86_64 assembly it also ships (not OPENSSL_NO_ASM): no Go or Perl step runs.
# Only the two archives are built, no tests or tools: 35-55 s on two cores.
install_static_boringssl() (
  local prefix=/opt/tlstap-testdeps/boringssl-static
  local version=13.0.0+r24
  local tarball=android-platform-external-boringssl_${version}.orig.tar.xz
  local path=pool/main/a/android-platform-external-boringssl/$tarball
  local sha256=583b7aeee1fca68b8244d086cea6fca23bd19d517bd63f0b9de714e048f92a7d
  if [[ -f $prefix/lib/libssl.a && -f $prefix/lib/libcrypto.a && -f $prefix/include/openssl/ssl.h ]]; then
    return 0
  fi
  if [[ $(dpkg --print-architecture) != amd64 ]]; then
    echo "install-deps: static BoringSSL is built for amd64 only; skipped" >&2
    return 0
  fi
  apt-get install -y --no-install-recommends curl ca-certificates xz-utils cmake ninja-build g++
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT  # this function runs in a subshell: its own trap
  fetch_verified "$path" "$sha256" "$work/$tarball"
  mkdir "$work/src"
  tar -xJf "$work/$tarball" -C "$work/src" --strip-components=1
  cat > "$work/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(boringssl_static C CXX ASM)
set(BORINGSSL_ROOT "${CMAKE_SOURCE_DIR}/src/")
include(${BORINGSSL_ROOT}android-sources.cmake)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)  # Debian links executables as PIE
set(CMAKE_C_STANDARD 11)
set(CMAKE_CXX_STANDARD 17)
# Hidden visibility as in BoringSSL's own build: linked into an executable, SSL_write and the
# rest stay in its symbol table, as local symbols (not stripped, not exported).
add_compile_options(-fvisibility=hidden -fno-common -Wa,--noexecstack
                    $<$<COMPILE_LANGUAGE:CXX>:-fno-exceptions> $<$<COMPILE_LANGUAGE:CXX>:-fno-rtti>)
add_compile_definitions(NDEBUG BORINGSSL_IMPLEMENTATION)
include_directories(${BORINGSSL_ROOT}src/include)
add_library(crypto STATIC ${crypto_sources} ${crypto_sources_linux_x86_64})
target_include_directories(crypto PRIVATE ${BORINGSSL_ROOT}src/crypto)
add_library(ssl STATIC ${ssl_sources})
CMAKE
  cmake -S "$work" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$work/build" -j2 --target crypto ssl
  # Staged next to the result and renamed into place: never half installed.
  local staging=$prefix.partial
  rm -rf "$staging"
  install -d "$staging/lib" "$staging/include"
  install -m 0644 "$work/build/libssl.a" "$work/build/libcrypto.a" "$staging/lib/"
  cp -r "$work/src/src/include/openssl" "$staging/include/"
  rm -rf "$prefix"
  mv "$staging" "$prefix"
  echo "install-deps: static BoringSSL $version installed in $prefix"
)
install_static_boringssl

# --- Go 1.15, for Go's stack-based ABI0 (tests/bpf/test_go.py, tests/unit/go_binary_test.cpp) ---
# Go before 1.17 (amd64) and 1.18 (arm64) passes arguments on the stack and, on amd64, keeps g in
# thread-local storage. Debian 12 packages only Go 1.19, so Debian 11's golang-1.15 packages (the
# toolchain and its standard library's source) are unpacked, not installed, under
# /opt/tlstap-testdeps/go1.15: the go command is $prefix/usr/lib/go-1.15/bin/go.
install_go_abi0() (
  local prefix=/opt/tlstap-testdeps/go1.15
  local pool=pool/main/g/golang-1.15
  local version=1.15.15-1~deb11u4
  if [[ -x $prefix/usr/lib/go-1.15/bin/go && -d $prefix/usr/share/go-1.15/src/crypto/tls ]]; then
    return 0
  fi
  if [[ $(dpkg --print-architecture) != amd64 ]]; then
    echo "install-deps: Go 1.15 is fetched for amd64 only; skipped" >&2
    return 0
  fi
  apt-get install -y --no-install-recommends curl ca-certificates
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT  # this function runs in a subshell: its own trap
  fetch_verified "$pool/golang-1.15-go_${version}_amd64.deb" \
    33f6680406698b60370322aa5710be199006b3d66fbb0974b44da012de3aa82a "$work/go.deb"
  fetch_verified "$pool/golang-1.15-src_${version}_amd64.deb" \
    e580f570f706d801191f9a17e55156736fc5979a6a878bab9304ca007ae29941 "$work/src.deb"
  local staging=$prefix.partial
  rm -rf "$staging"
  mkdir -p "$staging"
  dpkg-deb -x "$work/go.deb" "$staging"
  dpkg-deb -x "$work/src.deb" "$staging"
  rm -rf "$prefix"
  mv "$staging" "$prefix"
  echo "install-deps: Go $version unpacked in $prefix"
)
install_go_abi0
