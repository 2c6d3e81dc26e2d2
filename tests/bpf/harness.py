"""Shared machinery of the bpf tier: processes, tlstap runs, TLS servers, streams.

Every process a test starts goes through ProcessGroup so teardown can end it;
every wait is bounded.
"""
import base64
import fcntl
import functools
import hashlib
import json
import os
import pty
import queue
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import termios
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTPROGS = REPO / "tests" / "testprogs"
TLSTAP_BIN = os.environ.get("TLSTAP_BIN", str(REPO / "build" / "tlstap"))
PYTHON = "/usr/bin/python3"  # Debian's: links the system libssl.so.3 dynamically
CURL = "/usr/bin/curl"
NODE = "/usr/bin/node"  # OpenSSL 3 linked statically, symbols exported
# tlstap attaches to node's own OpenSSL when it sees the exec (~40 ms when idle,
# more under load); a node whose first TLS call comes sooner is missed. Node
# clients started after tlstap is ready wait this long so the tests do not race it.
NODE_ENV = {**os.environ, "DELAY_MS": "1000"}
OPENSSL = "/usr/bin/openssl"
NGINX = "/usr/sbin/nginx"
PY_EGRESS = ("SSL_write_ex",)  # what CPython's ssl module calls
PY_INGRESS = ("SSL_read_ex",)

CHUNK = 16384  # largest payload of one event: bigger calls come as several chunks
READY_TIMEOUT = 30
STOP_TIMEOUT = 30
RUN_TIMEOUT = 60

SUMMARY_RE = re.compile(
    r"^tlstap: summary: (\d+) events, (\d+) bytes captured; dropped: "
    r"ring_buffer_full (\d+) events/(\d+) bytes, unreadable_memory (\d+) events/(\d+) bytes, "
    r"control_event_lost (\d+) events/(\d+) bytes, return_unseen (\d+) events/(\d+) bytes.*; "
    r"(\d+) HTTP exchanges.*; (\d+) connections closed$")
DROP_REASONS = ("ring_buffer_full", "unreadable_memory", "control_event_lost", "return_unseen")


def real_exe(path):
    return os.path.realpath(path)


def format_endpoint(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# ---------------------------------------------------------------- processes

class LineReader:
    """Reads a pipe in a thread, keeping lines and raw bytes, so waits can time out."""

    def __init__(self, stream):
        self.lines = []
        self.data = bytearray()  # everything read so far, raw
        self._queue = queue.Queue()
        self._grew = threading.Condition()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream):
        pending = b""
        while chunk := stream.read1(65536):  # not readline: output may lack a final newline
            *complete, pending = (pending + chunk).split(b"\n")
            with self._grew:
                self.data += chunk
                self._grew.notify_all()
            for raw in complete:
                self._add_line(raw)
        if pending:
            self._add_line(pending)
        self._queue.put(None)

    def _add_line(self, raw):
        line = raw.decode(errors="replace")
        self.lines.append(line)
        self._queue.put(line)

    def next(self, timeout):
        """The next line, or None at end of stream; raises TimeoutError."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no line within {timeout} s") from None

    def wait_for(self, needle, timeout):
        """Waits until the raw output contains needle (bytes, or a compiled regex: returns the match)."""
        def found():
            return needle.search(self.data) if isinstance(needle, re.Pattern) else needle in self.data
        with self._grew:
            match = self._grew.wait_for(found, timeout)
        if not match:
            raise TimeoutError(f"{needle!r:.80} not seen within {timeout} s; got {bytes(self.data[-300:])!r}")
        return match

    def finish(self, timeout=10):
        self._thread.join(timeout)
        return self.lines


@dataclass
class Finished:
    pid: int
    returncode: int
    stdout: bytes
    stderr: str


class ProcessGroup:
    """Owns the processes of one test; teardown ends those still running."""

    def __init__(self):
        self._procs = []

    def start(self, argv, stop_signal=signal.SIGKILL, **kwargs):
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen([str(a) for a in argv], **kwargs)
        self._procs.append((proc, stop_signal))
        return proc

    def run(self, argv, timeout=RUN_TIMEOUT, check=True, input=None, **kwargs):
        """Runs to completion (bounded); returns a Finished."""
        proc = self.start(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)
        out, err = proc.communicate(input, timeout=timeout)
        done = Finished(proc.pid, proc.returncode, out, err.decode(errors="replace"))
        if check:
            assert done.returncode == 0, f"{argv} exited {done.returncode}: {done.stderr}"
        return done

    def cleanup(self):
        for proc, stop_signal in reversed(self._procs):
            if proc.poll() is None:
                proc.send_signal(stop_signal)
                try:
                    proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe:
                    pipe.close()


# ---------------------------------------------------------------- capture

@dataclass
class Stream:
    """One direction of one connection, reassembled by stream_offset."""
    events: list
    data: bytes = b""
    gaps: list = field(default_factory=list)  # (offset, length) of bytes never captured

    def __post_init__(self):
        self.events.sort(key=lambda e: e["stream_offset"])
        data, expected = bytearray(), 0
        for e in self.events:
            offset = e["stream_offset"]
            assert offset >= expected, f"chunks overlap at stream offset {offset}: {summarize(self.events)}"
            if offset > expected:
                self.gaps.append((expected, offset - expected))
                data += bytes(offset - expected)  # keep offsets aligned
            data += e["payload"]
            expected = offset + len(e["payload"])
        self.data = bytes(data)

    @property
    def captured_bytes(self):
        return sum(len(e["payload"]) for e in self.events)


@dataclass
class Connection:
    pid: int
    conn_id: int
    local: str
    remote: str
    events: list

    def __post_init__(self):
        self.egress = Stream([e for e in self.events if e["direction"] == "egress"])
        self.ingress = Stream([e for e in self.events if e["direction"] == "ingress"])

    def field_values(self, name):
        return {e[name] for e in self.events}


def summarize(events, limit=20):
    keys = ("pid", "comm", "function", "direction", "local", "remote", "role", "conn_id", "stream_offset", "len")
    rows = [{k: e.get(k) for k in keys} for e in events[:limit]]
    return "\n".join(map(str, rows)) + (f"\n... {len(events) - limit} more" if len(events) > limit else "")


EVENT_KEYS = {"type", "ts", "pid", "tid", "comm", "exe", "library", "function", "direction", "local",
              "remote", "role", "conn_id", "stream_offset", "call_len", "len", "data"}


def parse_event(event):
    missing = EVENT_KEYS - event.keys()
    assert not missing, f"event lacks {missing}: {str(event)[:300]}"
    assert event["type"] == "data"
    event["payload"] = base64.b64decode(event["data"], validate=True)
    assert event["len"] == len(event["payload"]), f"len {event['len']} != {len(event['payload'])} decoded bytes"
    assert 0 < event["len"] <= CHUNK and event["len"] <= event["call_len"], str(event)[:300]
    sends = any(verb in event["function"].lower() for verb in ("write", "send"))
    assert event["direction"] == ("egress" if sends else "ingress"), str(event)[:300]
    return event


@dataclass
class Capture:
    events: list
    summary: dict
    stderr: list
    exchanges: list = field(default_factory=list)  # the "http" lines
    closes: list = field(default_factory=list)  # the "close" lines
    websocket: list = field(default_factory=list)  # the "websocket" lines

    def exchanges_of(self, pid, path=None):
        return [x for x in self.exchanges if x["pid"] == pid and (path is None or x.get("path") == path)]

    def of_pid(self, pid):
        return [e for e in self.events if e["pid"] == pid]

    def connections(self, pid):
        """Connections of a process, keyed by (conn_id, local, remote): an SSL*
        may be reused for a later connection, which then has another tuple."""
        groups = {}
        for e in self.of_pid(pid):
            groups.setdefault((e["conn_id"], e["local"], e["remote"]), []).append(e)
        return [Connection(pid, *key, events) for key, events in groups.items()]

    def connection(self, pid, local=None, remote=None):
        """The one connection of pid matching the given addresses."""
        found = [c for c in self.connections(pid)
                 if (local is None or c.local == local) and (remote is None or c.remote == remote)]
        assert len(found) == 1, (f"expected one connection of pid {pid} local={local} remote={remote}, "
                                 f"found {len(found)}; events of that pid:\n{summarize(self.of_pid(pid))}")
        return found[0]


def websocket_counts(summary_line):
    """(messages, directions given up); the summary names them only when not both 0."""
    m = re.search(r", (\d+) WebSocket messages \((\d+) directions not followed to the end\)", summary_line)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def parse_summary(lines):
    for line in lines:
        m = SUMMARY_RE.match(line)
        if m:
            n = list(map(int, m.groups()))
            return {"events": n[0], "bytes": n[1],
                    "dropped": {r: (n[2 + 2 * i], n[3 + 2 * i]) for i, r in enumerate(DROP_REASONS)},
                    "exchanges": n[-2], "closed": n[-1], "websocket": websocket_counts(line)}
    raise AssertionError("no summary line on tlstap's stderr:\n" + "\n".join(lines))


class Tlstap:
    """One tlstap run writing JSON to a file; the constructor returns once it is ready.
    launcher: a command that runs the binary (e.g. in a container), which must
    pass SIGINT on to it and exit with its status."""

    def __init__(self, procs, output, args=(), launcher=(), binary=TLSTAP_BIN, **popen_kwargs):
        self.started_ns = time.time_ns()
        self.output = Path(output)
        self.argv = [*launcher, binary, "--format", "json", "--output", self.output, *args]
        self.proc = procs.start(self.argv, stop_signal=signal.SIGINT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **popen_kwargs)
        self.stderr = LineReader(self.proc.stderr)
        self._wait_ready()

    def _wait_ready(self):
        while True:
            try:
                line = self.stderr.next(READY_TIMEOUT)
            except TimeoutError:
                raise AssertionError(f"tlstap not ready within {READY_TIMEOUT} s:\n" + "\n".join(self.stderr.lines))
            if line is None:
                self.proc.wait(10)
                raise AssertionError(f"tlstap exited {self.proc.returncode} before ready:\n"
                                     + "\n".join(self.stderr.lines))
            if line.startswith("tlstap: ready"):
                return

    def stop(self, return_unseen=0):
        """SIGINT, wait for the drain and exit 0, parse the output and the summary.
        return_unseen: how many TLS calls were left without returning (a false
        count would mean calls nested in another taken for abandoned ones)."""
        self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"tlstap did not exit within {STOP_TIMEOUT} s of SIGINT")
        lines = self.stderr.finish()
        assert code == 0, f"tlstap exited {code}:\n" + "\n".join(lines)
        records = [json.loads(line) for line in self.output.read_text().splitlines()]
        assert all(r["type"] in ("data", "http", "close", "websocket") for r in records), "unknown record type"
        events = [parse_event(r) for r in records if r["type"] == "data"]
        exchanges = [r for r in records if r["type"] == "http"]
        closes = [r for r in records if r["type"] == "close"]
        websocket = [r for r in records if r["type"] == "websocket"]
        summary = parse_summary(lines)
        assert summary["events"] == len(events), f"summary counts {summary['events']} events, file has {len(events)}"
        assert summary["bytes"] == sum(e["len"] for e in events), "summary bytes != bytes in the file"
        # ts is wall-clock (unix ns): every event happened while tlstap ran (1 s of slack for clock steps).
        late = [e["ts"] for e in events if not self.started_ns - 10**9 <= e["ts"] <= time.time_ns() + 10**9]
        assert not late, f"{len(late)} events with ts outside the capture's lifetime, e.g. {late[0]}"
        assert summary["exchanges"] == len(exchanges), f"summary counts {summary['exchanges']} exchanges"
        assert summary["dropped"]["return_unseen"] == (return_unseen, 0), summary
        assert summary["closed"] == len(closes) or "--events" in map(str, self.argv), \
            f"summary counts {summary['closed']} closed connections, the file has {len(closes)}"
        assert summary["websocket"][0] == len(websocket), f"summary counts {summary['websocket']} WebSocket messages"
        return Capture(events, summary, lines, exchanges, closes, websocket)


# ---------------------------------------------------------------- servers and clients

@dataclass
class ServerConnection:
    """What tls_server.py really received and sent on one connection."""
    peer: str
    local: str
    received: bytes
    received_len: int
    received_sha256: str
    sent: bytes


class TlsServer:
    """tests/testprogs/tls_server.py: threaded HTTP/1.1 over Python ssl.
    wrap: a command that runs it (e.g. `ip netns exec NAME`), which must exec it."""

    def __init__(self, procs, cert, host="127.0.0.1", response_padding=0, wrap=()):
        self.host = host
        self.proc = procs.start([*wrap, PYTHON, TESTPROGS / "tls_server.py", "--cert", cert.cert, "--key", cert.key,
                                 "--host", host, "--response-padding", response_padding],
                                stdout=subprocess.PIPE)
        self.log = LineReader(self.proc.stdout)
        first = self.log.next(RUN_TIMEOUT)
        assert first, f"tls_server.py exited with {self.proc.wait(10)}"
        self.port = json.loads(first)["port"]
        self.address = format_endpoint(host, self.port)
        self.pid = self.proc.pid

    def url(self, path="/"):
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}{path}"

    def next_connection(self, timeout=RUN_TIMEOUT):
        line = self.log.next(timeout)
        assert line, "tls_server.py ended"
        record = json.loads(line)
        assert "error" not in record, f"server connection failed: {record}"
        return ServerConnection(record["peer"], record["local"],
                                base64.b64decode(record["received"]) if "received" in record else None,
                                record["received_len"], record["received_sha256"],
                                base64.b64decode(record["sent"]))


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{
    listen {host}:{port} ssl http2;
    ssl_certificate {cert};
    ssl_certificate_key {key};
{locations}
  }}
}}
"""


def start_nginx(procs, directory, cert, address, locations):
    """nginx in the foreground, TLS (HTTP/1.1 and HTTP/2) on address, with these location
    blocks, every file under directory; returns once it listens."""
    conf = directory / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=directory, host=address[0], port=address[1], cert=cert.cert,
                                      key=cert.key, locations=locations))
    proc = procs.start([NGINX, "-c", conf, "-p", directory, "-e", directory / "error.log"],
                       stop_signal=signal.SIGTERM, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"nginx exited {proc.returncode}: {proc.stderr.read().decode(errors='replace')}"
                                 f"{(directory / 'error.log').read_text()}")
        try:
            socket.create_connection(address, timeout=1).close()
            return proc
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nginx not listening on {address} within 10 s")
            time.sleep(0.05)


def http_post(host_header, body, path="/upload"):
    head = (f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body


def pattern(size, seed):
    """Deterministic, seed-specific bytes: a misplaced chunk cannot match."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def start_py_client(procs, host, port, cafile, request, *extra, env=None):
    """tests/testprogs/tls_client.py, connected; returns (proc, its stdout LineReader, its local address)."""
    proc = procs.start([PYTHON, TESTPROGS / "tls_client.py", "--host", host, "--port", port,
                        "--cafile", cafile, "--request", request, *extra],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    out = LineReader(proc.stdout)
    line = out.next(RUN_TIMEOUT)
    assert line, f"tls_client.py exited {proc.wait(10)} before connecting"
    return proc, out, json.loads(line)["local"]


def read_response(out):
    """The response tls_client.py read (it printed it as its last line)."""
    line = out.next(RUN_TIMEOUT)
    assert line, "tls_client.py ended without a response"
    return base64.b64decode(json.loads(line)["response"])


def finish_py_client(proc, out):
    """Waits for tls_client.py to end; returns the response it read."""
    response = read_response(out)
    assert proc.wait(RUN_TIMEOUT) == 0, f"tls_client.py exited {proc.returncode}"
    return response


def go(proc):
    """Releases a client started with --wait-go (or WAIT_GO=1)."""
    proc.stdin.write(b"go\n")
    proc.stdin.flush()


# ---------------------------------------------------------------- assertions

def assert_bytes_equal(actual, expected, what):
    if actual == expected:
        return
    first = next((i for i, (a, b) in enumerate(zip(actual, expected)) if a != b),
                 min(len(actual), len(expected)))
    raise AssertionError(
        f"{what}: {len(actual)} bytes captured, {len(expected)} expected; first difference at offset {first}: "
        f"captured {actual[first:first + 48]!r} expected {expected[first:first + 48]!r}")


def assert_connection(conn, *, comm, exe, local, remote, role, egress, ingress,
                      egress_functions, ingress_functions, library="openssl"):
    """Everything tlstap says about one connection matches the truth."""
    where = f"pid {conn.pid} {conn.local} -> {conn.remote}"
    assert (conn.local, conn.remote) == (local, remote), where
    assert conn.field_values("comm") == {comm}, where
    assert conn.field_values("exe") == {exe}, where
    assert conn.field_values("library") == {library}, where
    assert conn.field_values("role") == {role}, where
    assert {e["function"] for e in conn.egress.events} <= set(egress_functions), where
    assert {e["function"] for e in conn.ingress.events} <= set(ingress_functions), where
    for name, stream, expected in (("egress", conn.egress, egress), ("ingress", conn.ingress, ingress)):
        assert not stream.gaps, f"{where} {name} has gaps {stream.gaps}"
        assert not any("gap_before" in e for e in stream.events), f"{where} {name} reports gap_before"
        assert_bytes_equal(stream.data, expected, f"{where} {name}")


def assert_exchange(capture, server, record, client_pid, *, comm, exe, egress_functions, ingress_functions,
                    sole=True, library="openssl"):
    """Both ends of one connection to tls_server.py carry exactly what was really
    sent, with the right process, addresses and roles. Returns (client, server) sides.
    sole: the client made no other connection; library: the client's TLS library."""
    if sole:
        assert len(capture.connections(client_pid)) == 1, summarize(capture.of_pid(client_pid))
    client = capture.connection(client_pid, local=record.peer)
    assert_connection(client, comm=comm, exe=exe, local=record.peer, remote=server.address, role="client",
                      egress=record.received, ingress=record.sent,
                      egress_functions=egress_functions, ingress_functions=ingress_functions, library=library)
    server_side = capture.connection(server.pid, remote=record.peer)
    assert_connection(server_side, comm="python3", exe=real_exe(PYTHON), local=server.address, remote=record.peer,
                      role="server", egress=record.sent, ingress=record.received,
                      egress_functions=PY_EGRESS, ingress_functions=PY_INGRESS)
    return client, server_side


def http_body(response):
    return response.split(b"\r\n\r\n", 1)[1]


def cgroup_mounts(types=("cgroup", "cgroup2")):
    """Mount points of the cgroup hierarchies of these filesystem types."""
    found = []
    with open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            fields, _, rest = line.partition(" - ")
            if rest.split()[0] in types:
                found.append(fields.split()[4])
    return found


def cgroup2_mount():
    """Where the cgroup v2 hierarchy is mounted (unified and hybrid hosts), or None."""
    return next(iter(cgroup_mounts(("cgroup2",))), None)


def remove_cgroup_tree(top):
    """Removes the cgroup `top` and those below it from every hierarchy (v1 and
    v2) that has it, waiting up to 10 s for processes still leaving them; raises
    after trying them all if any remain."""
    remaining = []
    for mount in cgroup_mounts():
        for directory, _, _ in sorted(os.walk(mount + top), key=lambda entry: -len(entry[0])):
            deadline = time.monotonic() + 10
            while True:
                try:
                    os.rmdir(directory)
                    break
                except FileNotFoundError:
                    break
                except OSError as error:  # EBUSY: a process has not left it yet
                    if time.monotonic() > deadline:
                        remaining.append(f"{directory}: {error}")
                        break
                    time.sleep(0.05)
    assert not remaining, "cgroups left behind: " + "; ".join(remaining)


def in_cgroup(directory, argv):
    """argv run by a shell that first moves itself into the cgroup: same pid, already inside at exec."""
    return ["sh", "-c", f'echo $$ > {directory}/cgroup.procs && exec "$@"', "sh", *argv]


@functools.cache
def kernel_has_uprobe_sessions():
    """Whether the kernel runs one program at a call's entry and return (Linux 6.13+), which
    tlstap then uses for a function's entry and return probes: one probe where there were two."""
    dump = subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux"], check=True,
                          capture_output=True, text=True).stdout
    return "'BPF_TRACE_UPROBE_SESSION'" in dump


PT_INTERP = 3


def interp_segment(image):
    """Where an x86-64/arm64 ELF image's PT_INTERP string lies: (offset, size)."""
    phoff, = struct.unpack_from("<Q", image, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", image, 0x36)
    for i in range(phnum):
        entry = phoff + i * phentsize
        if struct.unpack_from("<I", image, entry)[0] == PT_INTERP:
            return struct.unpack_from("<Q", image, entry + 8)[0], struct.unpack_from("<Q", image, entry + 32)[0]
    raise AssertionError("no PT_INTERP")


def interpreter_of(program):
    """The dynamic loader the kernel starts the ELF `program` with."""
    image = Path(program).read_bytes()
    offset, size = interp_segment(image)
    return os.fsdecode(image[offset:offset + size].rstrip(b"\0"))


def copy_with_interpreter(program, copy, interpreter):
    """Copies the ELF `program` to `copy`, its PT_INTERP naming `interpreter`
    instead: NUL-padded in place, so no longer than the original."""
    image = bytearray(Path(program).read_bytes())
    offset, size = interp_segment(image)
    path = os.fsencode(interpreter)
    assert len(path) < size, f"{interpreter} is longer than {program}'s loader path"
    image[offset:offset + size] = path.ljust(size, b"\0")
    Path(copy).write_bytes(image)
    shutil.copymode(program, copy)


def system_libssl():
    """The libssl.so.3 Python's ssl module loads, from its own memory map."""
    maps = subprocess.run([PYTHON, "-c", "import ssl; print(open('/proc/self/maps').read())"],
                          check=True, capture_output=True, text=True).stdout
    paths = {line.split()[-1] for line in maps.splitlines() if line.endswith("/libssl.so.3")}
    assert len(paths) == 1, paths
    return paths.pop()


def attached_in(pid, path):
    """tlstap's log line saying it attached the file at `path` as process `pid` maps it."""
    return re.compile(rf"tlstap: attached \d+ probes to /proc/{pid}/root{re.escape(str(path))} ".encode())


class PrivateLibsslClient:
    """tls_client.py with a copy of libssl that nothing else uses
    (LD_LIBRARY_PATH): it connects, then waits to be let go. tlstap sees its
    exchange only if it attached that copy, which it does only for processes
    it has looked at."""

    def __init__(self, tmp_path, server, cert, body):
        self.library = tmp_path / "lib" / "libssl.so.3"
        self.library.parent.mkdir()
        shutil.copy2(system_libssl(), self.library)
        request = tmp_path / "request"
        request.write_bytes(http_post(server.address, body))
        self.argv = [PYTHON, TESTPROGS / "tls_client.py", "--host", server.host, "--port", server.port,
                     "--cafile", cert.cert, "--request", request, "--wait-go"]
        self.proc = None

    def start(self, procs, wrap=lambda argv: argv):
        self.spawn(procs, wrap)
        self.wait_connected()

    def spawn(self, procs, wrap=lambda argv: argv):
        self.proc = procs.start(wrap(self.argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                env={**os.environ, "LD_LIBRARY_PATH": str(self.library.parent)})
        self.out = LineReader(self.proc.stdout)

    def wait_connected(self):
        assert self.out.next(RUN_TIMEOUT), "tls_client.py did not connect"

    def attached(self):
        """tlstap's log line saying it attached the private copy in this process."""
        return attached_in(self.proc.pid, self.library)

    def finish(self):
        """Lets it send its request; returns the response it read."""
        go(self.proc)
        return finish_py_client(self.proc, self.out)

    def kill(self):
        """Ends it if still running: out of its cgroup before the cgroup is removed."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(RUN_TIMEOUT)


# ---------------------------------------------------------------- tlstap top in a pty

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def read_screen(fd, until, timeout):
    """What the pty showed, escape codes removed, once `until` matches it."""
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
        text = ANSI.sub(b"", seen).decode(errors="replace")
        if re.search(until, text):
            return text
    raise AssertionError(f"not on screen within {timeout} s: {until!r}\n{ANSI.sub(b'', seen)[-3000:]!r}")


def start_top(procs, *args, rows=40, columns=160):
    """`tlstap top` (with args) on a new pty of that size, once its first screen
    shows; returns its Popen and the pty's master fd, which the caller closes."""
    master, slave = pty.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        top = procs.start([TLSTAP_BIN, *args, "top"], stdin=slave, stdout=slave, stderr=slave,
                          stop_signal=signal.SIGINT, env={**os.environ, "TERM": "xterm"})
        read_screen(master, r"tlstap top - \d+ exchanges", 60)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return top, master
