#!/usr/bin/env bash
# Runs a libFuzzer target for a bounded time. SEEDS is a directory of seed
# files, or a script that writes seeds into the directory it is given.
# Usage: run_fuzzer.sh FUZZER WORK_DIR SECONDS SEEDS
set -euo pipefail
fuzzer=$1 work=$2 seconds=$3 seeds=$4
rm -rf "$work" && mkdir -p "$work/seeds" "$work/corpus"
if [[ -d $seeds ]]; then
  cp -r "$seeds/." "$work/seeds/"
else
  "$seeds" "$work/seeds"
fi

"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
  "$work/corpus" "$work/seeds"
