"""Pieces the benchmarks share: child processes, certificates, tlstap as the
agent under test (CPU, memory, summary line) and reading its JSON capture back."""
import base64
import hashlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import time
from dataclasses import dataclass, field

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SUMMARY_RE = re.compile(r"tlstap: summary: (\d+) events, (\d+) bytes captured; dropped: (.*)")
DROP_RE = re.compile(r"(\w+) (\d+) events/(\d+) bytes")


class Processes:
    """Every child started through it runs in its own process group and is
    killed with that group on exit, whatever happened."""

    def __init__(self):
        self.procs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for proc in reversed(self.procs):
            stop_group(proc, signal.SIGTERM)

    def start(self, argv, **kwargs):
        proc = subprocess.Popen([str(a) for a in argv], start_new_session=True, **kwargs)
        self.procs.append(proc)
        return proc


def stop_group(proc, sig, timeout=30):
    """Sends sig to the child's process group, then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        os.killpg(proc.pid, sig)
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()
    except ProcessLookupError:
        return proc.wait()


def make_cert(directory):
    """A self-signed P-256 certificate: cheap handshakes, even for 1000 connections."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    return cert, key


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")
            time.sleep(0.05)


@dataclass
class Spread:
    median: float
    low: float
    high: float

    @staticmethod
    def of(values):
        return Spread(statistics.median(values), min(values), max(values))


@dataclass
class AgentStats:
    """tlstap's own cost in one traced run."""
    cpu_seconds: float  # user + system from ready to exit (drain included)
    rss_bytes: int  # VmRSS once the workload finished: steady state
    anon_bytes: int  # RssAnon then: its own memory, without the ring buffers' mappings
    hwm_bytes: int  # VmHWM then: the peak since start
    events: int
    captured_bytes: int
    drops: dict = field(default_factory=dict)  # reason -> (events, bytes)
    summary: str = ""

    @property
    def dropped_bytes(self):
        return sum(b for _, b in self.drops.values())

    @property
    def cpu_per_gb(self):
        return self.cpu_seconds / (self.captured_bytes / 1e9) if self.captured_bytes else float("nan")


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if value.strip().endswith("kB"):
                fields[name] = int(value.split()[0]) * 1024
    return fields


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        after_comm = f.read().rsplit(")", 1)[1].split()
    return (int(after_comm[11]) + int(after_comm[12])) / CLOCK_TICKS  # utime, stime


class Tlstap:
    """tlstap writing JSON to a file, its stderr into another (a pipe left
    unread would block it on its live drop warnings)."""

    def __init__(self, procs, binary, output, args, timeout=60, verbose=False):
        """verbose: -v instead of -q, for the probe sites in the start-up log."""
        self.output = output
        self.log = output + ".stderr"
        with open(self.log, "w") as log:
            self.proc = procs.start([binary, "-v" if verbose else "-q", "-f", "json", "-o", output, *args],
                                    stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + timeout
        while "tlstap: ready" not in self.stderr():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                stop_group(self.proc, signal.SIGINT)
                raise RuntimeError(f"tlstap did not become ready: {self.stderr()}")
            time.sleep(0.02)
        self.cpu_at_ready = proc_cpu_seconds(self.proc.pid)

    def stderr(self):
        with open(self.log) as f:
            return f.read()

    def stop(self):
        """SIGINT (detach, drain, summary), then its statistics."""
        status = proc_status(self.proc.pid)
        os.kill(self.proc.pid, signal.SIGINT)
        _, code, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(code)
        if self.proc.returncode != 0:
            raise RuntimeError(f"tlstap exited with {self.proc.returncode}: {self.stderr()}")
        summary = SUMMARY_RE.search(self.stderr())
        if not summary:
            raise RuntimeError(f"no summary from tlstap: {self.stderr()}")
        drops = {m[1]: (int(m[2]), int(m[3])) for m in DROP_RE.finditer(summary[3])}
        return AgentStats(cpu_seconds=usage.ru_utime + usage.ru_stime - self.cpu_at_ready,
                          rss_bytes=status["VmRSS"], anon_bytes=status["RssAnon"], hwm_bytes=status["VmHWM"], events=int(summary[1]),
                          captured_bytes=int(summary[2]), drops=drops, summary=summary[0])


ATTACHED_RE = re.compile(r"tlstap: attached \d+ probes to (\S+) ")
SITE_PREFIX = "tlstap:   "  # a verbose tlstap's probe site lines, before their file's "attached" line


def linked_library(binary, prefix):
    """The file of the shared library, named prefix..., that binary loads (ldd)."""
    for line in subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout.splitlines():
        name, _, rest = line.strip().partition(" => ")
        if name.startswith(prefix) and rest.startswith("/"):
            return os.path.realpath(rest.split()[0])
    raise RuntimeError(f"{binary} does not load {prefix}*")


def same_file(path, st):
    try:
        other = os.stat(path)
    except OSError:
        return False
    return (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino)


def probe_sites(log, library):
    """From a verbose tlstap's stderr: the "attached" line of the file
    `library` (whatever path tlstap reached it by), then the lines before it
    that describe its probes: each site's instruction, emulated or
    single-stepped, and the plan's remarks. [] when there is none."""
    wanted = os.stat(library)
    block = []
    for line in log.splitlines():
        attached = ATTACHED_RE.match(line)
        if not attached:
            block.append(line)
            continue
        path = attached[1]
        if same_file(path, wanted):
            return [line.removeprefix("tlstap: ")] + [
                b.removeprefix("tlstap: ").strip() for b in block if b.startswith(SITE_PREFIX) or path + ":" in b]
        block = []
    return []


@dataclass
class Volume:
    """What a JSON capture holds, per direction, without decoding the payloads."""
    events: int = 0
    egress: int = 0
    ingress: int = 0
    gaps: int = 0  # sum of gap_before: bytes tlstap knows it lost


def json_int(line, key):
    at = line.find(key)
    if at < 0:
        return 0
    at += len(key)
    end = at
    while line[end:end + 1].isdigit():
        end += 1
    return int(line[at:end])


def capture_volume(path):
    """Sums lengths by direction. Scans bytes instead of parsing each line: an
    nginx capture holds millions of lines."""
    volume = Volume()
    with open(path, "rb") as f:
        for line in f:
            if not line.startswith(b'{"type":"data"'):
                continue
            volume.events += 1
            length = json_int(line, b'"len":')
            if b'"direction":"egress"' in line:
                volume.egress += length
            else:
                volume.ingress += length
            volume.gaps += json_int(line, b'"gap_before":')
    return volume


@dataclass
class Stream:
    data: bytearray
    covered: int = 0  # bytes placed (chunks never overlap)
    gaps: int = 0
    chunks: list = field(default_factory=list)  # (offset, length) placed

    def matches(self, source):
        """Every captured byte equals the source's byte at its offset."""
        return all(self.data[o:o + n] == source[o:o + n] for o, n in self.chunks)


def reassemble(path, direction, size):
    """The streams of one direction, rebuilt by stream_offset into buffers of
    `size` bytes (the bytes sent), keyed by (pid, conn_id)."""
    streams = {}
    with open(path, "rb") as f:
        for line in f:
            event = json.loads(line)
            if event.get("type") != "data" or event["direction"] != direction:
                continue
            key = (event["pid"], event["conn_id"])
            if key not in streams:
                streams[key] = Stream(bytearray(size))
            stream = streams[key]
            chunk = base64.b64decode(event["data"])
            offset = event["stream_offset"]
            if offset + len(chunk) > size:
                raise RuntimeError(f"chunk past the end of the stream: offset {offset}, {len(chunk)} bytes")
            stream.data[offset:offset + len(chunk)] = chunk
            stream.covered += len(chunk)
            stream.chunks.append((offset, len(chunk)))
            stream.gaps += event.get("gap_before", 0)
    return streams


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def tcp_sockets(port):
    """Local TCP sockets on 127.0.0.1:port other than the listener and TIME_WAIT."""
    count = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            local, state = line.split()[1], line.split()[3]
            if int(local.split(":")[1], 16) == port and state not in ("0A", "06"):
                count += 1
    return count


def wait_idle(port, timeout=30):
    """Waits until the server on port has closed every connection: requests
    still queued when the client stopped are served before tlstap detaches."""
    deadline = time.monotonic() + timeout
    while tcp_sockets(port) and time.monotonic() < deadline:
        time.sleep(0.05)
