"""Go test programs for the bpf tier: built at test time with Debian's Go
toolchain (standard library only, nothing fetched), started gated on stdin so
their first TLS call comes after tlstap attached, and an HTTP/2 frame reader."""
import json
import os
import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness import RUN_TIMEOUT, TESTPROGS, LineReader, format_endpoint

GO = "/usr/lib/go-1.19/bin/go"
# Go 1.15: arguments on the stack (ABI0), g in thread-local storage. Debian 11's
# toolchain, unpacked by scripts/install-deps.sh.
GO_ABI0 = "/opt/tlstap-testdeps/go1.15/usr/lib/go-1.15/bin/go"
GO_SOURCES = TESTPROGS / "go"
GO_WRITE = "crypto/tls.(*Conn).Write"
GO_READ = "crypto/tls.(*Conn).Read"
COMM_LEN = 15  # TASK_COMM_LEN - 1: the kernel truncates an executable's name to this
BUILD_TIMEOUT = 300


def go_env(cache, goarch=None):
    """GOPATH mode, no proxy, no cgo (static binaries, like most Go services
    shipped in containers), caches under `cache`: nothing fetched, nothing in $HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO")}
    env.update(GO111MODULE="off", GOPROXY="off", GOFLAGS="", CGO_ENABLED="0",
               GOCACHE=str(cache / "gocache"), GOPATH=str(cache / "gopath"))
    if goarch:
        env["GOARCH"] = goarch
    return env


@dataclass(frozen=True)
class GoBinary:
    program: str  # directory under tests/testprogs/go
    path: Path
    stripped: bool

    @property
    def exe(self):
        return os.path.realpath(self.path)

    @property
    def comm(self):
        return self.path.name[:COMM_LEN]


def build_go_program(program, out_dir, cache, stripped, go=GO):
    """`go build` of tests/testprogs/go/<program>; stripped: -ldflags="-s -w".
    Stripped binaries get a name longer than a comm, so truncation is checked too."""
    if not os.path.exists(go):
        raise AssertionError(f"no Go toolchain at {go} (scripts/install-deps.sh)")
    suffix = "" if go == GO else "-abi0"  # its own file: tlstap attaches to each executable once
    path = Path(out_dir) / (f"{program}-stripped{suffix}" if stripped else f"{program}{suffix}")
    argv = [go, "build", "-o", str(path)] + (["-ldflags=-s -w"] if stripped else []) + [f"./{program}"]
    cache = Path(cache) / ("default" if go == GO else "abi0")  # one build cache per toolchain
    done = subprocess.run(argv, cwd=GO_SOURCES, env=go_env(cache), capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT)
    assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stderr}"
    return GoBinary(program, path, stripped)


def go_version(binary):
    """The Go version `go version` reads from the binary, e.g. go1.19.8."""
    out = subprocess.run([GO, "version", binary.path], capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.split(": ", 1)[1].strip()


@dataclass
class AttachLog:
    probes: int
    version: str
    layout_source: str  # where tls.Conn -> fd offsets came from
    emulated: int
    instruction_probes: int


def wait_attached(tap, binary, timeout=RUN_TIMEOUT):
    """Waits for tlstap's line saying it attached to this executable (logged once
    per file per run, whether found at start-up or when it was executed)."""
    line = re.compile(rb"attached (\d+) probes to \S*" + re.escape(binary.exe.encode()) +
                      rb" \((\S+) crypto/tls, fd offsets from ([^;]+); (\d+) of (\d+) instruction probes on emulated "
                      rb"instructions\)")
    m = tap.stderr.wait_for(line, timeout)
    return AttachLog(int(m.group(1)), m.group(2).decode(), m.group(3).decode(), int(m.group(4)), int(m.group(5)))


class GoProcess:
    """A Go test program that prints JSON lines; `first` is its first line."""

    def __init__(self, procs, binary, args, env=None):
        self.binary = binary
        self.proc = procs.start([binary.path, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                env={**os.environ, **(env or {})})
        self.pid = self.proc.pid
        self.out = LineReader(self.proc.stdout)
        self.first = self.next()

    def next(self):
        line = self.out.next(RUN_TIMEOUT)
        assert line, f"{self.binary.path.name} exited {self.proc.wait(10)} without output"
        return json.loads(line)

    def release(self, tap):
        """Lets a program started with -wait go on once tlstap attached to it."""
        wait_attached(tap, self.binary)
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def finish(self):
        """Its last line, once it exited 0."""
        record = self.next()
        assert self.proc.wait(RUN_TIMEOUT) == 0, f"{self.binary.path.name} exited {self.proc.returncode}"
        return record


class GoServer(GoProcess):
    """tests/testprogs/go/httpsserver, on 127.0.0.1."""

    def __init__(self, procs, binary, cert):
        super().__init__(procs, binary, ["-cert", cert.cert, "-key", cert.key])
        self.address = format_endpoint("127.0.0.1", self.first["port"])

    def served(self, peer):
        """The record of the one request from peer, once the server saw the connection
        close (then it has read all the peer sent)."""
        record = self.next()
        assert record.get("peer") == peer and "error" not in record, record
        assert self.next() == {"closed": peer}
        return record


# ---------------------------------------------------------------- HTTP/2

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_DATA, H2_HEADERS = 0, 1


@dataclass
class H2Frame:
    type: int
    flags: int
    stream: int
    payload: bytes


def h2_frames(data, client):
    """The frames of one direction of an HTTP/2 connection, which must be whole:
    a lost, repeated or misplaced chunk breaks the framing."""
    if client:
        assert data.startswith(H2_PREFACE), f"no HTTP/2 client preface: {data[:32]!r}"
        data = data[len(H2_PREFACE):]
    frames, offset = [], 0
    while offset < len(data):
        assert offset + 9 <= len(data), f"truncated frame header at {offset} of {len(data)}"
        high, low, frame_type, flags, stream = struct.unpack_from(">BHBBI", data, offset)
        length = high << 16 | low
        assert offset + 9 + length <= len(data), f"frame at {offset} runs past the end ({length} bytes)"
        frames.append(H2Frame(frame_type, flags, stream & 0x7fffffff, data[offset + 9:offset + 9 + length]))
        offset += 9 + length
    return frames


def h2_data(frames, stream):
    """The DATA payload of a stream (no padding flag in Go's frames: asserted)."""
    data = [f for f in frames if f.type == H2_DATA and f.stream == stream]
    assert all(not f.flags & 0x8 for f in data), "padded DATA frame"
    return b"".join(f.payload for f in data)
