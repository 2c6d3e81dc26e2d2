#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine and runs every test tier: unit (no
# privileges) and bpf (root, real TLS programs). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
# BPF tests attach tracepoints: tracefs must be mounted.
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing

cmake -S . -B build -G Ninja
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure --timeout 900
