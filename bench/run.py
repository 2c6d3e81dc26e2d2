#!/usr/bin/env python3
"""tlstap's benchmark suite: each workload without and with tlstap, interleaved
(baseline, traced, baseline, traced, ...), printed as one table of ratios with
their spread, what the capture holds against what the programs moved, and what
tlstap itself cost.

    bench/run.py --build BUILD_DIR [--quick] [--only NAME...] [--json FILE]

Run as root. --quick (2 rounds, short durations) takes under 3 minutes.
"""
import argparse
import dataclasses
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from benchlib import (Processes, Spread, Tlstap, capture_volume, linked_library, make_cert, probe_sites, proc_cpu_seconds,
                      proc_status, reassemble, sha256_hex, stop_group, wait_idle)
from nginx_wrk import Nginx, Served, run_wrk

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
GO = "/usr/lib/go-1.19/bin/go"
CURL = "/usr/bin/curl"
GO_BINARY = "tls_pingpong_go"  # also its comm: 15 characters at most
NSS_NICKNAME = "server"
MESSAGE = 1024
CALLS_PER_ROUND_TRIP = 4  # client write, server read, server write, client read
BULK_WRITE = 16384


@dataclass
class Settings:
    rounds: int
    wrk_seconds: int
    round_trips: int
    bulk_bytes: int
    buffer_mib: int  # tlstap's ring buffer for the bulk runs; 0: tlstap's default
    tlstap_args: tuple = ()  # given to every tlstap run, e.g. ("--no-uprobe-sessions",) for an A/B


QUICK = Settings(rounds=2, wrk_seconds=3, round_trips=20000, bulk_bytes=256 << 20, buffer_mib=0)
FULL = Settings(rounds=5, wrk_seconds=10, round_trips=20000, bulk_bytes=256 << 20, buffer_mib=0)


@dataclass
class Completeness:
    """One traced run: what the capture holds against what was really moved."""
    captured: int
    expected: int
    dropped: int  # bytes tlstap's summary counts as lost
    gaps: int  # bytes the JSON's gap_before fields announce
    sha_ok: bool = None  # bulk, all captured: SHA-256 of the reassembled stream equals the source's
    content_ok: bool = None  # bulk: every captured byte equals the source's at its offset

    @property
    def complete(self):
        return self.captured == self.expected and self.sha_ok is not False and self.content_ok is not False

    @property
    def accounted(self):
        """Every missing byte is counted in the summary."""
        return self.expected - self.captured == self.dropped

    def describe(self):
        text = f"captured {self.captured} of {self.expected} bytes"
        if self.sha_ok is not None:
            text += f", sha256 {'equal' if self.sha_ok else 'DIFFERS'}"
        if self.content_ok is not None and self.sha_ok is None:
            text += f", captured bytes {'equal' if self.content_ok else 'DIFFER FROM'} the source at their offsets"
        if self.captured != self.expected:
            text += (f"; missing {self.expected - self.captured}, summary counts {self.dropped} dropped, "
                     f"gap_before sums to {self.gaps}: {'accounted for' if self.accounted else 'NOT ACCOUNTED FOR'}")
        return text


@dataclass
class Trial:
    figure: float
    completeness: Completeness = None
    agent: object = None  # benchlib.AgentStats
    note: str = ""


@dataclass
class Result:
    name: str
    unit: str
    higher_is_better: bool
    baseline: list = field(default_factory=list)  # figures
    traced: list = field(default_factory=list)  # Trials
    per_call: bool = False  # figure is ns per round trip of CALLS_PER_ROUND_TRIP calls
    notes: list = field(default_factory=list)  # lines printed once under the table
    floor_kind: str = ""  # the uprobe_floor figure a per-call result stands on

    def ratios(self):
        pairs = zip(self.baseline, (t.figure for t in self.traced))
        return [t / b if self.higher_is_better else b / t for b, t in pairs]

    def added_ns_per_call(self):
        return [(t.figure - b) / CALLS_PER_ROUND_TRIP for b, t in zip(self.baseline, self.traced)]


class Bench:
    """Paths, the certificate, settings, and tlstap runs for every benchmark."""

    def __init__(self, build, tmp, procs, settings):
        self.build, self.tmp, self.procs, self.settings = build, tmp, procs, settings
        self.tlstap_binary = os.path.join(build, "tlstap")
        self.cert, self.key = make_cert(tmp)
        self.go_binary = self._nss_db = None
        self._source = self._source_sha = None
        self.runs = 0

    def tlstap(self, *args, verbose=False):
        self.runs += 1
        return Tlstap(self.procs, self.tlstap_binary, os.path.join(self.tmp, f"capture{self.runs}.jsonl"),
                      [*self.settings.tlstap_args, *args], verbose=verbose)

    def interleave(self, result, once):
        """once(traced) runs the workload once, with tlstap if traced."""
        for _ in range(self.settings.rounds):
            result.baseline.append(once(False).figure)
            result.traced.append(once(True))
        return result

    def source(self, size):
        """The bytes every bulk sender sends (C and Go generate the same)."""
        if self._source is None:
            binary = os.path.join(self.build, "bench", "tls_bulk")
            self._source = subprocess.run([binary, "gen", str(size)], check=True, capture_output=True).stdout
        return self._source

    def source_sha(self, size):
        if self._source_sha is None:
            self._source_sha = sha256_hex(self.source(size))
        return self._source_sha

    def go(self):
        """The Go program, built now (GOPATH mode) with its cache in the build dir."""
        if self.go_binary is None:
            out = os.path.join(self.build, "bench", GO_BINARY)
            env = {**os.environ, "GO111MODULE": "off", "GOPROXY": "off", "GOFLAGS": "", "CGO_ENABLED": "0",
                   "GOCACHE": os.path.join(self.build, "bench", "gocache"), "GOPATH": os.path.join(self.tmp, "gopath")}
            subprocess.run([GO, "build", "-o", out, "."], cwd=os.path.join(BENCH_DIR, "go", "pingpong"), env=env,
                           check=True, timeout=600)
            self.go_binary = out
        return self.go_binary

    def nss_db(self):
        """An NSS certificate database ("sql:DIR") holding the certificate and
        its key under the nickname NSS_NICKNAME."""
        if self._nss_db is None:
            p12, directory = os.path.join(self.tmp, "server.p12"), os.path.join(self.tmp, "nssdb")
            os.mkdir(directory)
            db = f"sql:{directory}"
            for argv in (["openssl", "pkcs12", "-export", "-in", self.cert, "-inkey", self.key, "-name", NSS_NICKNAME,
                          "-passout", "pass:bench", "-out", p12],
                         ["certutil", "-N", "-d", db, "--empty-password"],
                         ["pk12util", "-i", p12, "-d", db, "-W", "bench", "-K", ""]):
                subprocess.run(argv, check=True, capture_output=True, timeout=60)
            self._nss_db = db
        return self._nss_db


def traced_run(tap, workload):
    """Runs workload() under tap (None: untraced); tlstap is stopped whatever happens."""
    if tap is None:
        return workload(), None
    try:
        figure = workload()
    except BaseException:
        stop_group(tap.proc, signal.SIGINT)
        raise
    return figure, tap.stop()


def read_banner(proc):
    """The 'port P [sha256 HEX]' line a sender or server prints once listening."""
    words = proc.stdout.readline().split()
    if len(words) < 2 or words[0] != "port":
        raise RuntimeError(f"{proc.args[0]} did not start: exit {proc.wait()}")
    return int(words[1]), (words[3] if len(words) >= 4 else None)


def finish(proc, what):
    out = proc.communicate(timeout=600)[0]
    if proc.returncode != 0:
        raise RuntimeError(f"{what} exited with {proc.returncode}")
    return out


WORKLOAD_CPU = 0  # where the ping-pongs run (and pingpong-c-floor counts the kernel probes' hits)


# --- 1 and 4: nginx under wrk --------------------------------------------------------------------

def nginx_once(bench, tag, threads, connections, probes_only=False):
    """probes_only: tlstap's probes fire (in nginx and wrk) but its filter matches
    no process, so nothing is copied or written: the cost of the traps alone."""
    def load(port):
        wrk = run_wrk(port, threads, connections, bench.settings.wrk_seconds)
        wait_idle(port)
        return wrk

    def once(traced):
        with Nginx(bench.procs, os.path.join(bench.tmp, f"nginx-{tag}"), bench.cert, bench.key) as nginx:
            # By pid, not --comm nginx: other nginx servers may run on this host.
            args = ["--comm", "no-such-comm"] if probes_only else ["--pid", str(nginx.proc.pid)]
            tap = bench.tlstap(*args) if traced else None
            wrk, agent = traced_run(tap, lambda: load(nginx.port))
        served = nginx.served
        note = f"wrk: {wrk.requests} responses; nginx's log: {served.requests} x {served.response_size} B"
        if wrk.errors:
            note += f"; wrk: {wrk.errors}"
        if not tap:
            return Trial(wrk.requests_per_second, note=note)
        expected = Served(0, 0, 0, 0) if probes_only else served  # the filter matches nothing
        return Trial(wrk.requests_per_second, nginx_completeness(tap, agent, expected), agent, note)
    return once


def nginx_completeness(tap, agent, served):
    """What tlstap captured of nginx's traffic against nginx's own log; removes the capture."""
    volume = capture_volume(tap.output)
    os.remove(tap.output)
    return Completeness(volume.egress + volume.ingress, served.sent + served.received, agent.dropped_bytes,
                        volume.gaps)


def bench_nginx(bench):
    result = Result("nginx 1 KiB, wrk -t1 -c16", "req/s", True)
    return bench.interleave(result, nginx_once(bench, "16", 1, 16))


def bench_nginx_probes(bench):
    result = Result("nginx, wrk -t1 -c16, probes only (filtered)", "req/s", True)
    return bench.interleave(result, nginx_once(bench, "probes", 1, 16, probes_only=True))


def bench_nginx_1000(bench):
    result = Result("nginx 1 KiB, wrk -t2 -c1000", "req/s", True)
    return bench.interleave(result, nginx_once(bench, "1000", 2, 1000))


def bench_nginx_churn(bench):
    """A new connection per request, tlstap writing pcapng too: the agent's
    memory must stay flat while connections come and go. The note gives its
    anonymous memory halfway and at the end. Each half lasts longer than
    tlstap keeps a closed connection's pcapng flows (2 s)."""
    result = Result("nginx 1 KiB, a connection per request, + pcapng", "req/s", True)
    half = max(5, bench.settings.wrk_seconds)

    def once(traced):
        with Nginx(bench.procs, os.path.join(bench.tmp, "nginx-churn"), bench.cert, bench.key) as nginx:
            tap = None
            if traced:
                tap = bench.tlstap("--pid", str(nginx.proc.pid), "-w", os.path.join(bench.tmp, "churn.pcapng"))
            anon = []

            def load():
                runs = []
                for _ in range(2):
                    runs.append(run_wrk(nginx.port, 1, 16, half, new_connections=True))
                    wait_idle(nginx.port)
                    if tap:
                        anon.append(proc_status(tap.proc.pid)["RssAnon"])
                return runs
            runs, agent = traced_run(tap, load)
        rate = sum(r.requests for r in runs) / sum(r.requests / r.requests_per_second for r in runs)
        note = f"wrk: {sum(r.requests for r in runs)} connections; nginx's log: {nginx.served.requests} requests"
        if not tap:
            return Trial(rate, note=note)
        os.remove(os.path.join(bench.tmp, "churn.pcapng"))
        note += (f"; agent anon memory {anon[0] / 2**20:.1f} MiB after {runs[0].requests} connections, "
                 f"{anon[1] / 2**20:.1f} MiB after {runs[0].requests + runs[1].requests}")
        return Trial(rate, nginx_completeness(tap, agent, nginx.served), agent, note)
    return bench.interleave(result, once)


PACED_RATE = 1000  # requests per second
PACED_SECONDS = 10


def bench_nginx_paced(bench):
    """The agent following 1000 exchanges/s (curl --rate over one keep-alive
    connection): the figure is the rate curl achieved; the note gives tlstap's
    share of a core and its memory."""
    result = Result(f"nginx 1 KiB, curl --rate {PACED_RATE}/s", "req/s", True)
    requests = PACED_RATE * PACED_SECONDS

    def once(traced):
        with Nginx(bench.procs, os.path.join(bench.tmp, "nginx-paced"), bench.cert, bench.key) as nginx:
            config = os.path.join(bench.tmp, "paced.curl")
            with open(config, "w") as f:
                f.write(f'url = "https://127.0.0.1:{nginx.port}/"\noutput = "/dev/null"\n' * requests)
            tap = bench.tlstap("--pid", str(nginx.proc.pid)) if traced else None

            def load():
                started = time.monotonic()
                subprocess.run([CURL, "-sS", "-k", "--rate", f"{PACED_RATE}/s", "-K", config], check=True,
                               timeout=PACED_SECONDS * 10)
                return requests / (time.monotonic() - started)
            rate, agent = traced_run(tap, load)
        if not tap:
            return Trial(rate)
        seconds = requests / rate
        note = (f"{100 * agent.cpu_seconds / seconds:.1f}% of one core over the {seconds:.1f} s run, "
                f"RSS {agent.rss_bytes >> 20} MiB (anon {agent.anon_bytes >> 20} MiB)")
        return Trial(rate, nginx_completeness(tap, agent, nginx.served), agent, note)
    return bench.interleave(result, once)


# --- 2: per-call cost, 1 KiB ping-pong on one core -----------------------------------------------

def pingpong_completeness(tap, agent, expected):
    volume = capture_volume(tap.output)
    os.remove(tap.output)
    return Completeness(volume.egress + volume.ingress, expected, agent.dropped_bytes, volume.gaps)


def pingpong_c(bench, name, program, library, comm=None, credentials=None):
    """The C ping-pong `program` (in BUILD/bench; its name is its comm) over
    the shared library named library...; credentials: its arguments before the
    round trips (default: the PEM certificate and key). comm: tlstap's --comm
    filter instead of the program's, which then lets nothing through: the probes
    fire and the kernel side drops the calls before copying anything. tlstap
    runs verbose: the notes give the instruction each probe on that library
    landed on, from the first traced run's start-up log."""
    binary = os.path.join(bench.build, "bench", program)
    if not os.path.exists(binary):
        raise RuntimeError(f"{binary} was not built (its library is missing: see bench/CMakeLists.txt)")
    trips = bench.settings.round_trips
    expected = CALLS_PER_ROUND_TRIP * MESSAGE * trips if comm is None else 0
    credentials = credentials or [bench.cert, bench.key]
    result = Result(name, "ns/round trip", False, per_call=True, floor_kind="entry_and_return_push")

    def once(traced):
        tap = bench.tlstap("--comm", comm or program, verbose=True) if traced else None
        out, agent = traced_run(tap, lambda: subprocess.run(
            ["taskset", "-c", str(WORKLOAD_CPU), binary, *credentials, str(trips)],
            check=True, capture_output=True, text=True, timeout=600).stdout)
        if tap and not result.notes:
            shared = linked_library(binary, library)
            result.notes = probe_sites(tap.stderr(), shared) or [f"tlstap's log names no probe on {shared}"]
        return Trial(float(out), pingpong_completeness(tap, agent, expected) if tap else None, agent)

    return bench.interleave(result, once)


def bench_pingpong_c(bench):
    return pingpong_c(bench, "ping-pong 1 KiB, libssl (C)", "tls_pingpong", "libssl.so")


def bench_pingpong_c_probes(bench):
    return pingpong_c(bench, "ping-pong, libssl, probes only (filtered)", "tls_pingpong", "libssl.so",
                      comm="no-such-comm")


SITE_RE = re.compile(r"^\S+( uretprobe| uprobe session)? at file offset (0x[0-9a-f]+): ")


def counting_sites(notes):
    """(file offset, is_return) of each probe the notes name: a session is an
    entry probe and, for a traced call, a return probe."""
    sites = []
    for m in filter(None, map(SITE_RE.match, notes)):
        offset = int(m[2], 16)
        if m[1] != " uretprobe":
            sites.append((offset, False))
        if m[1]:
            sites.append((offset, True))
    return sites


class KernelProbes:
    """The kernel's own counting uprobes (uretprobes for tlstap's return sites)
    at the sites tlstap chose, held by bench/uprobe_floor while the workload
    runs: no BPF program runs and nothing is recorded, each hit is counted.
    What is left of tlstap's cost is its own. Removed on exit."""

    def __init__(self, procs, build, library, sites):
        argv = [os.path.join(build, "bench", "uprobe_floor"), "hold", str(WORKLOAD_CPU), library]
        argv += [f"{offset:x}{'r' if is_return else ''}" for offset, is_return in sites]
        self.proc = procs.start(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.hits = None

    def __enter__(self):
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"uprobe_floor hold did not start: exit {self.proc.wait()}")
        return self

    def __exit__(self, *_):
        out, _ = self.proc.communicate(timeout=60)
        self.hits = int(out.split()[1]) if out.startswith("hits ") else None


def bench_pingpong_c_floor(bench):
    """pingpong-c with the kernel's own counting uprobes on the sites tlstap
    picks (learnt from a verbose tlstap's start-up log) instead of tlstap."""
    binary = os.path.join(bench.build, "bench", "tls_pingpong")
    library = linked_library(binary, "libssl.so")
    tap = bench.tlstap("--comm", "tls_pingpong", verbose=True)
    tap.stop()
    os.remove(tap.output)
    notes = probe_sites(tap.stderr(), library)
    sites = counting_sites(notes)
    if not sites:
        raise RuntimeError(f"tlstap's log names no probe site on {library}")
    result = Result("ping-pong, libssl, kernel uprobes on the same sites", "ns/round trip", False, per_call=True,
                    notes=[f"{len(sites)} counting uprobes on {library}: the sites of the pingpong-c notes"])
    trips = bench.settings.round_trips

    def run():
        return subprocess.run(["taskset", "-c", str(WORKLOAD_CPU), binary, bench.cert, bench.key, str(trips)],
                              check=True, capture_output=True, text=True, timeout=600).stdout

    def once(traced):
        if not traced:
            return Trial(float(run()))
        with KernelProbes(bench.procs, bench.build, library, sites) as probes:
            out = run()
        # entry and return of each of the round trips' SSL calls, and a handshake's few more
        if probes.hits is None or probes.hits < 2 * CALLS_PER_ROUND_TRIP * trips:
            raise RuntimeError(f"the kernel probes fired {probes.hits} times for {trips} round trips")
        return Trial(float(out), Completeness(0, 0, 0, 0))
    return bench.interleave(result, once)


def bench_pingpong_boringssl(bench):
    """tls_pingpong.c built against Debian's BoringSSL (android-libboringssl-dev)."""
    return pingpong_c(bench, "ping-pong 1 KiB, BoringSSL (C)", "tls_pp_boring", "libssl.so")


def bench_pingpong_gnutls(bench):
    return pingpong_c(bench, "ping-pong 1 KiB, GnuTLS (C)", "tls_pp_gnutls", "libgnutls.so")


def bench_pingpong_nss(bench):
    return pingpong_c(bench, "ping-pong 1 KiB, NSS (C)", "tls_pp_nss", "libssl3.so",
                      credentials=[bench.nss_db(), NSS_NICKNAME])


def bench_pingpong_go(bench):
    binary = bench.go()
    trips = bench.settings.round_trips

    def once(traced):
        # The server runs before tlstap starts, so tlstap attaches to the
        # executable while scanning processes, not in a race with the client.
        server = bench.procs.start(
            ["taskset", "-c", str(WORKLOAD_CPU), binary, "pingpong-serve", bench.cert, bench.key],
            stdout=subprocess.PIPE, text=True)
        try:
            port, _ = read_banner(server)
            tap = bench.tlstap("--comm", GO_BINARY) if traced else None
            out, agent = traced_run(tap, lambda: subprocess.run(
                ["taskset", "-c", str(WORKLOAD_CPU), binary, "pingpong-client", str(port), str(trips)],
                check=True, capture_output=True, text=True, timeout=600).stdout)
            finish(server, "Go ping-pong server")
        finally:
            stop_group(server, signal.SIGKILL)
        expected = CALLS_PER_ROUND_TRIP * MESSAGE * trips
        return Trial(float(out), pingpong_completeness(tap, agent, expected) if tap else None, agent)

    return bench.interleave(Result("ping-pong 1 KiB, Go crypto/tls", "ns/round trip", False, per_call=True), once)


# --- 3: bulk, 256 MiB through one connection ------------------------------------------------------

def bulk_once(bench, send_argv, recv_argv):
    size = bench.settings.bulk_bytes

    def once(traced):
        sender = bench.procs.start(send_argv(size), stdout=subprocess.PIPE, text=True)
        try:
            port, sha = read_banner(sender)  # printed once the data and its digest are ready
            if sha != bench.source_sha(size):
                raise RuntimeError(f"the sender's data is not tls_bulk's: sha256 {sha}")
            extra = ["--buffer-size", str(bench.settings.buffer_mib)] if bench.settings.buffer_mib else []
            tap = bench.tlstap("--pid", str(sender.pid), *extra) if traced else None
            out, agent = traced_run(tap, lambda: subprocess.run(
                recv_argv(port, size), check=True, capture_output=True, text=True, timeout=600).stdout)
            finish(sender, "bulk sender")
        finally:
            stop_group(sender, signal.SIGKILL)
        megabytes_per_second = size / float(out) * 1e3
        if not tap:
            return Trial(megabytes_per_second)
        return Trial(megabytes_per_second, bulk_completeness(bench, tap, agent, sender.pid), agent)
    return once


def bulk_completeness(bench, tap, agent, pid):
    size = bench.settings.bulk_bytes
    streams = reassemble(tap.output, "egress", size)
    os.remove(tap.output)
    if len(streams) > 1 or any(p != pid for p, _ in streams):
        raise RuntimeError(f"expected one stream from pid {pid}, got {list(streams)}")
    stream = next(iter(streams.values()), None)
    if stream is None:
        return Completeness(0, size, agent.dropped_bytes, 0)
    completeness = Completeness(stream.covered, size, agent.dropped_bytes, stream.gaps)
    if stream.covered == size:
        completeness.sha_ok = completeness.content_ok = sha256_hex(stream.data) == bench.source_sha(size)
    else:
        completeness.content_ok = stream.matches(bench.source(size))
    return completeness


def bench_bulk_c(bench, staged=False):
    binary = os.path.join(bench.build, "bench", "tls_bulk")
    once = bulk_once(bench, lambda size: [binary, "send", bench.cert, bench.key, size, BULK_WRITE,
                                          *(["staged"] if staged else [])],
                     lambda port, size: [binary, "recv", str(port), str(size)])
    name = f"bulk {bench.settings.bulk_bytes >> 20} MiB, libssl (C)" + (", one staging buffer" if staged else "")
    return bench.interleave(Result(name, "MB/s", True), once)


def bench_bulk_c_staged(bench):
    """The same bytes, each chunk copied first into the one buffer SSL_write sends from: the kernel's
    reads of the probe meet pages they have met before, where the plain run's are each a first."""
    return bench_bulk_c(bench, staged=True)


def bench_bulk_go(bench):
    binary = bench.go()
    once = bulk_once(bench, lambda size: [binary, "bulk-send", bench.cert, bench.key, size, BULK_WRITE],
                     lambda port, size: [binary, "bulk-recv", str(port), str(size)])
    return bench.interleave(Result(f"bulk {bench.settings.bulk_bytes >> 20} MiB, Go crypto/tls", "MB/s", True), once)


# --- 5: process starts ------------------------------------------------------------------------------

PROCESS_STARTS = 500


def bench_process_starts(bench):
    """A shell starting a dynamic program after another (/bin/true), as on a
    build host or a node running exec probes. Each start costs the program
    the dynamic loader probe's traps, and tlstap a look at the new process
    (its identity, its mapped files); the note gives tlstap's CPU per start."""
    script = f"i=0; while [ $i -lt {PROCESS_STARTS} ]; do /bin/true; i=$((i+1)); done"

    def once(traced):
        tap = bench.tlstap() if traced else None
        agent_cpu = []

        def starts():
            started = time.monotonic()
            subprocess.run(["sh", "-c", script], check=True, timeout=600)
            rate = PROCESS_STARTS / (time.monotonic() - started)
            if tap:
                time.sleep(0.5)  # the last starts' events read
                agent_cpu.append(proc_cpu_seconds(tap.proc.pid) - tap.cpu_at_ready)
            return rate

        figure, agent = traced_run(tap, starts)
        if not tap:
            return Trial(figure)
        return Trial(figure, Completeness(0, 0, agent.dropped_bytes, 0), agent,
                     note=f"{agent_cpu[0] / PROCESS_STARTS * 1e6:.0f} us of tlstap CPU per start")
    return bench.interleave(Result(f"{PROCESS_STARTS} process starts (/bin/true)", "starts/s", True), once)


LIBRARY_LOADS = 3000


def bench_library_loads(bench):
    """A program loading and unloading a library (dlopen, dlclose of libz), as
    plugins and language runtimes do: four calls of the loader's debugger hook
    per turn, where tlstap's loader probes sit, and a report of each unload."""
    binary = os.path.join(bench.build, "bench", "library_loads")
    library = "libz.so.1"  # zlib1g: in every Debian

    def once(traced):
        tap = bench.tlstap() if traced else None

        def turns():
            done = subprocess.run([binary, library, str(LIBRARY_LOADS)], check=True, timeout=600,
                                  stdout=subprocess.PIPE, text=True)
            return float(done.stdout)

        figure, agent = traced_run(tap, turns)
        if not tap:
            return Trial(figure)
        return Trial(figure, Completeness(0, 0, agent.dropped_bytes, 0), agent)
    return bench.interleave(Result(f"{LIBRARY_LOADS} library loads and unloads (libz)", "turns/s", True), once)


BENCHMARKS = {
    "nginx": bench_nginx,
    "pingpong-c": bench_pingpong_c,
    "pingpong-c-probes": bench_pingpong_c_probes,
    "pingpong-c-floor": bench_pingpong_c_floor,
    "pingpong-go": bench_pingpong_go,
    "pingpong-boringssl": bench_pingpong_boringssl,
    "pingpong-gnutls": bench_pingpong_gnutls,
    "pingpong-nss": bench_pingpong_nss,
    "bulk-c": bench_bulk_c,
    "bulk-c-staged": bench_bulk_c_staged,
    "bulk-go": bench_bulk_go,
    "nginx-probes": bench_nginx_probes,
    "nginx-1000": bench_nginx_1000,
    "nginx-paced": bench_nginx_paced,
    "nginx-churn": bench_nginx_churn,
    "process-starts": bench_process_starts,
    "library-loads": bench_library_loads,
}


# --- the table ------------------------------------------------------------------------------------

def figure_text(value, unit):
    if unit == "ns/round trip":
        return f"{value / 1000:.1f} us/rt"
    if unit == "req/s":
        return f"{value / 1000:.1f}k req/s"
    return f"{value:.0f} {unit}"


def spread_text(spread, digits):
    return f"{spread.median:.{digits}f} [{spread.low:.{digits}f}..{spread.high:.{digits}f}]"


def completeness_text(trials):
    fractions = [t.completeness.captured / max(t.completeness.expected, 1) for t in trials]
    if all(t.completeness.complete for t in trials):
        if all(t.completeness.expected == 0 for t in trials):
            return "none, as expected"
        return f"100% ({len(trials)}/{len(trials)} runs)"
    accounted = "all counted" if all(t.completeness.accounted for t in trials) else "NOT all counted"
    return f"{min(fractions) * 100:.1f}% min, {accounted}"


def agent_cpu_text(agents):
    if not agents[0] or not agents[0].captured_bytes:
        return "-"  # no tlstap (kernel probes alone), or nothing captured
    return f"{Spread.of([a.cpu_per_gb for a in agents]).median:.1f}"


def agent_memory_text(agents):
    if not agents[0]:
        return "-"
    return " / ".join(f"{value / 2**20:.0f}" for value in (Spread.of([a.rss_bytes for a in agents]).median,
                                                          Spread.of([a.anon_bytes for a in agents]).median,
                                                          max(a.hwm_bytes for a in agents)))


def table_rows(results):
    header = ["benchmark", "baseline", "traced", "ratio [min..max]", "added/call ns", "complete", "agent CPU s/GB",
              "agent RSS/anon/peak MiB"]
    rows = [header]
    for r in results:
        base, traced = Spread.of(r.baseline), Spread.of([t.figure for t in r.traced])
        agents = [t.agent for t in r.traced]
        rows.append([
            r.name, figure_text(base.median, r.unit), figure_text(traced.median, r.unit),
            spread_text(Spread.of(r.ratios()), 2),
            spread_text(Spread.of(r.added_ns_per_call()), 0) if r.per_call else "-",
            completeness_text(r.traced),
            agent_cpu_text(agents),
            agent_memory_text(agents),
        ])
    return rows


def print_table(results, out=sys.stdout):
    rows = table_rows(results)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |", file=out)
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=out)
    print(file=out)
    for r in results:
        for i, trial in enumerate(r.traced, 1):
            agent = trial.agent
            if not agent:
                continue  # no tlstap in this benchmark
            print(f"{r.name}, traced run {i}: {trial.completeness.describe()}; tlstap {agent.cpu_seconds:.2f} s CPU "
                  f"for {agent.captured_bytes / 1e6:.1f} MB in {agent.events} events"
                  + (f"; {trial.note}" if trial.note else ""), file=out)
    for r in results:
        if r.notes:
            print(f"\n{r.name}, probe sites: {r.notes[0]}", file=out)
            for line in r.notes[1:]:
                print(f"    {line}", file=out)


def result_json(result):
    summary = {"ratios": result.ratios()}
    if result.per_call:
        summary["added_ns_per_call"] = result.added_ns_per_call()
    return {**dataclasses.asdict(result), **summary}


FLOOR_KINDS = {  # uprobe_floor's lines, in the order printed
    "syscall": "a system call",
    "uprobe_push": "uprobe on push (emulated)",
    "uprobe_nop5": "on a 5-byte nop",
    "uprobe_sub_rsp": "on sub rsp (single-stepped)",
    "uretprobe_push": "uretprobe",
    "entry_and_return_push": "entry uprobe + uretprobe (a C call's floor)",
}


def machine_floor(build):
    """What this machine charges per kernel entry and per uprobe hit, without
    tlstap (bench/uprobe_floor.c): the scale every figure of the table stands
    on. Returns its description and the figures (ns) by kind."""
    binary = os.path.join(build, "bench", "uprobe_floor")
    if not os.path.exists(binary):
        return "not measured (bench/uprobe_floor is built on x86-64 only)", {}
    run = subprocess.run([binary, "5000"], capture_output=True, text=True, timeout=120)
    figures = {kind: int(ns) for kind, ns in (line.split() for line in run.stdout.splitlines())}
    text = ", ".join(f"{label} {figures[k] / 1000:.2f} us" for k, label in FLOOR_KINDS.items() if k in figures)
    return text + (f" ({run.stderr.strip()})" if run.returncode else ""), figures


def print_above_floor(results, floor_figures, out=sys.stdout):
    """tlstap's own share of each C library's per-call figure: what it adds
    beyond the kernel's entry uprobe + uretprobe on an emulated instruction."""
    for r in results:
        floor_ns = floor_figures.get(r.floor_kind)
        if floor_ns and r.traced[0].agent:
            added = Spread.of(r.added_ns_per_call()).median
            print(f"{r.name}: {added / 1000:.2f} us per call, {(added - floor_ns) / 1000:+.2f} us against the "
                  f"floor of {floor_ns / 1000:.2f} us", file=out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", required=True, help="build directory holding tlstap and bench/")
    parser.add_argument("--quick", action="store_true", help="2 rounds, short durations (under 3 minutes)")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these benchmarks")
    parser.add_argument("--rounds", type=int, help="baseline/traced pairs per benchmark")
    parser.add_argument("--buffer-size", type=int, default=0, help="tlstap --buffer-size (MiB) for the bulk runs")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--tlstap-arg", action="append", default=[], metavar="ARG",
                        help="one more argument for every tlstap run (repeatable), e.g. --tlstap-arg=--no-uprobe-sessions")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run.py: tlstap needs root")
    # SIGTERM unwinds like ^C: every child is stopped, the temp dir removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("run.py: terminated"))
    settings = dataclasses.replace(QUICK if args.quick else FULL, buffer_mib=args.buffer_size,
                                   tlstap_args=tuple(args.tlstap_arg))
    if args.rounds:
        settings.rounds = args.rounds
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))  # wrk -c1000, inherited
    build = os.path.abspath(args.build)

    started = time.monotonic()
    load_before = os.getloadavg()[0]
    floor, floor_figures = machine_floor(build)
    results = []
    with Processes() as procs, tempfile.TemporaryDirectory(prefix="tlstap-bench-") as tmp:
        bench = Bench(build, tmp, procs, settings)
        for name in args.only or BENCHMARKS:
            print(f"[{time.monotonic() - started:5.0f} s] {name}...", file=sys.stderr, flush=True)
            results.append(BENCHMARKS[name](bench))
    print(f"[{time.monotonic() - started:5.0f} s] done: {settings}", file=sys.stderr)
    machine = (f"{os.uname().sysname} {os.uname().release}, {os.cpu_count()} CPUs, "
               f"load average {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end")
    print(f"machine: {machine}")
    print(f"per event on this machine: {floor}\n")
    print_table(results)
    print_above_floor(results, floor_figures)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "floor": floor, "settings": dataclasses.asdict(settings),
                       "results": [result_json(r) for r in results]}, f, indent=1)
    complete = all(t.completeness.complete for r in results for t in r.traced)
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
