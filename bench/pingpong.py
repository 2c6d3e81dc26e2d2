#!/usr/bin/env python3
"""Per-call cost of tlstap on a 1 KiB TLS ping-pong (libssl, dynamic), pinned to
one core: run.py's `pingpong-c` benchmark on its own, with its own round counts.
Prints the added time per SSL call with its spread and whether tlstap captured
every byte. Run as root: bench/pingpong.py [--build build] [--rounds 5] [--round-trips 20000]
"""
import argparse
import dataclasses
import os
import sys
import tempfile

import run
from benchlib import Processes


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--round-trips", type=int, default=20000)
    args = parser.parse_args()
    settings = dataclasses.replace(run.FULL, rounds=args.rounds, round_trips=args.round_trips)
    with Processes() as procs, tempfile.TemporaryDirectory(prefix="tlstap-bench-") as tmp:
        result = run.bench_pingpong_c(run.Bench(os.path.abspath(args.build), tmp, procs, settings))
    run.print_table([result])
    return 0 if all(t.completeness.complete for t in result.traced) else 1


if __name__ == "__main__":
    sys.exit(main())
