#!/usr/bin/env bash
# Runs a libFuzzer target for a bounded time from seeds made here: a small
# ELF library, a Go executable, and its raw .gopclntab and .go.buildinfo.
# Usage: run_fuzzer.sh FUZZER WORK_DIR SECONDS
set -euo pipefail
fuzzer=$1 work=$2 seconds=$3
rm -rf "$work" && mkdir -p "$work/seeds" "$work/corpus"

# seed = selector byte (0: ELF reader, 1: raw table reader) + content
seed() { { printf "\\x$1"; cat "$2"; } > "$work/seeds/$3"; }

printf 'int SSL_write(void){return 1;}\nint SSL_read(void){return 2;}\nconst char v[]="OpenSSL 3.1.4 x";\n' > "$work/lib.c"
cc -shared -fPIC -o "$work/lib.so" "$work/lib.c"
seed 00 "$work/lib.so" elf_c

printf 'package main\nfunc main() { println("seed") }\n' > "$work/main.go"
if (cd "$work" && GOCACHE="$work/gocache" GO111MODULE=off GOFLAGS= /usr/lib/go-1.19/bin/go build -ldflags="-s -w" -o go.bin main.go); then
  seed 00 "$work/go.bin" elf_go
  objcopy --dump-section .gopclntab="$work/pclntab" --dump-section .go.buildinfo="$work/buildinfo" "$work/go.bin" /dev/null
  seed 01 "$work/pclntab" pclntab
  seed 01 "$work/buildinfo" buildinfo
fi

"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
  "$work/corpus" "$work/seeds"
