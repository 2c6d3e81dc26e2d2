#!/usr/bin/env python3
"""Per-call cost of tlstap on a 1 KiB TLS ping-pong (libssl, dynamic).

Runs the ping-pong without and with tlstap, interleaved, several times, pinned
to one core (as in DESIGN.md) and prints the added time per SSL call with its
spread, plus whether tlstap captured every byte. Run as root from the build
dir's parent: bench/pingpong.py [--build build] [--rounds 5] [--round-trips 20000]
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

CALLS_PER_ROUND_TRIP = 4  # client write, server read, server write, client read
MESSAGE = 1024


def make_cert(directory):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    return cert, key


def pingpong(binary, cert, key, round_trips):
    out = subprocess.run(["taskset", "-c", "0", binary, cert, key, str(round_trips)],
                         check=True, capture_output=True, text=True, timeout=600)
    return float(out.stdout)


class Tlstap:
    """tlstap capturing only the benchmark's processes, JSON into a file."""

    def __init__(self, binary, output):
        self.output = output
        self.proc = subprocess.Popen([binary, "--comm", "tls_pingpong", "-f", "json", "-o", output, "-q"],
                                     stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        for line in self.proc.stderr:
            if line.startswith("tlstap: ready"):
                return
            if time.time() > deadline:
                break
        self.stop()
        raise RuntimeError("tlstap did not become ready")

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        rest = self.proc.communicate(timeout=120)[1]
        return [l for l in rest.splitlines() if l.startswith("tlstap: summary")]

    def captured_bytes(self):
        with open(self.output) as f:
            return sum(json.loads(line)["len"] for line in f)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--round-trips", type=int, default=20000)
    args = parser.parse_args()
    tlstap = os.path.join(args.build, "tlstap")
    binary = os.path.join(args.build, "bench", "tls_pingpong")

    with tempfile.TemporaryDirectory() as tmp:
        cert, key = make_cert(tmp)
        base, traced, complete = [], [], True
        for _ in range(args.rounds):
            base.append(pingpong(binary, cert, key, args.round_trips))
            tap = Tlstap(tlstap, os.path.join(tmp, "capture.jsonl"))
            try:
                traced.append(pingpong(binary, cert, key, args.round_trips))
            finally:
                summary = tap.stop()
            expected = CALLS_PER_ROUND_TRIP * MESSAGE * args.round_trips
            got = tap.captured_bytes()
            complete &= got == expected
            if got != expected:
                print(f"incomplete capture: {got} of {expected} bytes; {summary}", file=sys.stderr)

    added = [(t - b) / CALLS_PER_ROUND_TRIP for b, t in zip(base, traced)]
    print(f"{'1 KiB TLS ping-pong, one core':<34} {'median':>10} {'min':>10} {'max':>10}")
    print(f"{'round trip without tlstap (ns)':<34} {statistics.median(base):>10.0f} {min(base):>10.0f} {max(base):>10.0f}")
    print(f"{'round trip with tlstap (ns)':<34} {statistics.median(traced):>10.0f} {min(traced):>10.0f} {max(traced):>10.0f}")
    print(f"{'added per SSL call (ns)':<34} {statistics.median(added):>10.0f} {min(added):>10.0f} {max(added):>10.0f}")
    ratios = [b / t for b, t in zip(base, traced)]
    print(f"{'throughput ratio (with/without)':<34} {statistics.median(ratios):>10.3f} {min(ratios):>10.3f} {max(ratios):>10.3f}")
    print(f"every byte captured: {'yes' if complete else 'NO'}")
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
