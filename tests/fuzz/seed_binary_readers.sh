#!/usr/bin/env bash
# Seeds for binary_readers_fuzzer: small ELF libraries (one with DWARF), a Go executable, and
# its raw .gopclntab and .go.buildinfo. Each seed is a selector byte (0: ELF
# reader, 1: raw table reader) followed by the content.
# Usage: seed_binary_readers.sh SEED_DIR
set -euo pipefail
seeds=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

seed() { { printf "\\x$1"; cat "$2"; } > "$seeds/$3"; }

printf 'int SSL_write(void){return 1;}\nint SSL_read(void){return 2;}\nconst char v[]="OpenSSL 3.1.4 x";\n' > "$work/lib.c"
cc -shared -fPIC -o "$work/lib.so" "$work/lib.c"
seed 00 "$work/lib.so" elf_c
# OpenSSL 3's shape without symbols: functions raising errors under their names, for the locator.
cat > "$work/located.c" <<'EOF2'
void ERR_set_debug(const char *file, int line, const char *func);
__attribute__((noinline)) int ssl_read_internal(void *s, void *b, unsigned long n, unsigned long *r)
{ if (!s) { ERR_set_debug("ssl/ssl_lib.c", 1, __func__); return -1; } *r = n + (unsigned long)b; return 1; }
int SSL_read(void *s, void *b, int n)
{ unsigned long r; if (n < 0) { ERR_set_debug("ssl/ssl_lib.c", 2, __func__); return -1; }
  return ssl_read_internal(s, b, (unsigned long)n, &r) > 0 ? (int)r : -1; }
int SSL_read_ex(void *s, void *b, unsigned long n, unsigned long *r) { return ssl_read_internal(s, b, n, r); }
EOF2
cc -O1 -fPIC -shared -fvisibility=hidden -o "$work/located.so" "$work/located.c"
strip --strip-all "$work/located.so"
seed 00 "$work/located.so" elf_c_stripped_openssl
# With DWARF: a structure whose members the layout reader walks.
printf 'struct conn { int fd; long sysfd; } c;\nint SSL_write(struct conn *p){return p->fd;}\n' > "$work/dwarf.c"
cc -g -shared -fPIC -o "$work/dwarf.so" "$work/dwarf.c"
seed 00 "$work/dwarf.so" elf_c_dwarf

printf 'package main\nfunc main() { println("seed") }\n' > "$work/main.go"
if (cd "$work" && GOCACHE="$work/gocache" GO111MODULE=off GOFLAGS= /usr/lib/go-1.19/bin/go build -ldflags="-s -w" -o go.bin main.go); then
  seed 00 "$work/go.bin" elf_go
  objcopy --dump-section .gopclntab="$work/pclntab" --dump-section .go.buildinfo="$work/buildinfo" "$work/go.bin" /dev/null
  seed 01 "$work/pclntab" pclntab
  seed 01 "$work/buildinfo" buildinfo
fi
