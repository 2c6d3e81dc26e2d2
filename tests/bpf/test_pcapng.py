"""pcapng output (-w) read back by tshark.

pdu mode: Wireshark dissects HTTP/1.1 and HTTP/2 with no option set, even on 443.
tcp mode: follow-TCP-stream gives each direction's exact bytes.
Every packet names its process; `-w -` streams into tshark; a cut file stays readable.

Stopping a tlstap takes 10 to 30 s here (the kernel detaches its uprobes), so
one run per mode captures all the traffic of this module, both at once, and the
tests read the files they wrote.
"""
import json
import os
import re
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import (CURL, TESTPROGS, TLSTAP_BIN, LineReader, ProcessGroup, Tlstap, TlsServer, assert_bytes_equal,
                     NGINX, attached_in, real_exe, start_nginx)

TSHARK = "/usr/bin/tshark"
CAPINFOS = "/usr/bin/capinfos"
TEE = "/usr/bin/tee"
GO = "/usr/lib/go-1.19/bin/go"
NGINX_ADDRESS = ("127.0.0.1", 443)
# Paths no other test uses: tlstap records the whole host's traffic.
H1_PATH, GO_PATH, FOLLOW_PATH = "/pcapng/h1", "/pcapng/go", "/pcapng/follow"
H2_PATHS = ("/pcapng/h2/a", "/pcapng/h2/b", "/pcapng/h2/c")  # one connection each
USER_AGENT = "tlstap-test"
STOP_BOUND = 80  # both tlstaps, detaching in parallel
COMMENT_RE = re.compile(r"^pid=(\d+) tid=(\d+) comm=(.+) exe=(\S*) library=(\S+) function=(\S+) role=(\S+)$")

NGINX_LOCATIONS = """
    location / {
      default_type text/plain;
      return 200 "pcapng test: $uri\\n";
    }"""


def nginx_body(path):
    return f"pcapng test: {path}\n".encode()


class PipedTlstap(Tlstap):
    """tlstap -w - | tee COPY | tshark -r - ...: pcapng on stdout, JSON into a file."""

    def __init__(self, procs, output, copy, tshark_args):
        self.started_ns = time.time_ns()
        self.output = Path(output)
        self.argv = [TLSTAP_BIN, "--format", "json", "--output", self.output, "-w", "-"]
        self.proc = procs.start(self.argv, stop_signal=signal.SIGINT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.tee = procs.start([TEE, copy], stdin=self.proc.stdout, stdout=subprocess.PIPE)
        self.tshark = procs.start([TSHARK, "-r", "-", *tshark_args], stdin=self.tee.stdout,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.proc.stdout.close()  # the reading ends belong to tee and tshark now
        self.tee.stdout.close()
        # Drained continuously: a full pipe would stall tshark, tee, then tlstap.
        self.tshark_out = LineReader(self.tshark.stdout)
        self.tshark_err = LineReader(self.tshark.stderr)
        self.stderr = LineReader(self.proc.stderr)
        self._wait_ready()


@dataclass
class Run:
    """Everything the module's traffic left behind."""
    pdu_file: Path  # tee's copy of what `-w -` streamed
    tcp_file: Path
    tcp_file_mode_while_capturing: int
    pdu: object  # harness.Capture of the JSON written alongside
    tcp: object
    piped_fields: str  # what tshark printed from the pipe
    piped_tshark_code: int
    tee_code: int
    nginx_pid: int
    curl_pids: dict  # path -> pid
    go_pid: int
    go_exe: str
    go_output: bytes
    server: TlsServer  # tls_server.py, for the byte-exact follow test
    follow_record: object  # what tls_server.py really received and sent
    follow_curl_pid: int


def build_go_client(procs, directory):
    out = directory / "https_get"
    env = {**os.environ, "GO111MODULE": "off", "GOPROXY": "off", "GOFLAGS": "", "CGO_ENABLED": "0",
           "GOCACHE": str(directory / "gocache"), "GOPATH": str(directory / "gopath")}
    procs.run([GO, "build", "-o", out, TESTPROGS / "pcapng" / "https_get.go"], env=env, timeout=120)
    return out


def start_pcapng_nginx(procs, directory, cert):
    return start_nginx(procs, directory, cert, NGINX_ADDRESS, NGINX_LOCATIONS)


def curl(procs, cert, url, *options):
    return procs.run([CURL, "-sS", *options, "--cacert", cert.cert, "-A", USER_AGENT, url])


def stop_all(taps):
    """SIGINT to every tlstap at once, then wait: they detach in parallel."""
    for tap in taps:
        tap.proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_BOUND
    for tap in taps:
        try:
            tap.proc.wait(max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"tlstap did not exit within {STOP_BOUND} s of SIGINT")
    return [tap.stop() for tap in taps]  # exit code, JSON and summary checks


PIPED_FIELDS = ["-T", "fields", "-e", "frame.number", "-e", "exported_pdu.prot_name", "-e", "http.request.uri",
                "-e", "http.response.code", "-e", "frame.comment"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, cert):
    directory = tmp_path_factory.mktemp("pcapng")
    procs = ProcessGroup()
    try:
        go_client = build_go_client(procs, directory)
        nginx = start_pcapng_nginx(procs, directory, cert)
        server = TlsServer(procs, cert, response_padding=40000)  # a response of several TLS records

        pdu_file, tcp_file = directory / "pdu.pcapng", directory / "tcp.pcapng"
        piped = PipedTlstap(procs, directory / "pdu.json", pdu_file, PIPED_FIELDS)
        tcp = Tlstap(procs, directory / "tcp.json", ["-w", tcp_file, "--pcap-mode", "tcp"], umask=0)
        tcp_mode = stat.S_IMODE(tcp_file.stat().st_mode)

        curl_pids = {}
        host = f"https://{NGINX_ADDRESS[0]}"
        done = curl(procs, cert, host + H1_PATH, "--http1.1")
        assert done.stdout == nginx_body(H1_PATH)
        curl_pids[H1_PATH] = done.pid
        for path in H2_PATHS:
            done = curl(procs, cert, host + path, "--http2")
            assert done.stdout == nginx_body(path)
            curl_pids[path] = done.pid

        # The Go client waits on stdin until both tlstaps have attached to it.
        go = procs.start([go_client, cert.cert, host + GO_PATH], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        for tap in (piped, tcp):
            tap.stderr.wait_for(attached_in(go.pid, go_client), 30)
        go_output, _ = go.communicate(b"go\n", timeout=60)
        assert go.returncode == 0, f"https_get exited {go.returncode}"

        follow = curl(procs, cert, server.url(FOLLOW_PATH), "--http1.1")
        record = server.next_connection()

        pdu_capture, tcp_capture = stop_all([piped, tcp])
        piped.tshark.wait(60)
        piped.tee.wait(10)
        piped_fields = "\n".join(piped.tshark_out.finish()) + "\n"
        yield Run(pdu_file=pdu_file, tcp_file=tcp_file, tcp_file_mode_while_capturing=tcp_mode,
                  pdu=pdu_capture, tcp=tcp_capture, piped_fields=piped_fields,
                  piped_tshark_code=piped.tshark.returncode, tee_code=piped.tee.returncode, nginx_pid=nginx.pid,
                  curl_pids=curl_pids, go_pid=go.pid, go_exe=str(go_client), go_output=go_output, server=server,
                  follow_record=record, follow_curl_pid=follow.pid)
    finally:
        procs.cleanup()


# ---------------------------------------------------------------- tshark

def tshark(procs, path, *args, check=True):
    """tshark -r path args...: (stdout text, stderr text, exit code)."""
    done = procs.run([TSHARK, "-r", path, *args], check=check, timeout=60)
    return done.stdout.decode(errors="replace"), done.stderr, done.returncode


def fields(procs, path, names, display_filter=None):
    """One list of field values per packet (multiple occurrences joined with ',')."""
    args = ["-T", "fields", "-E", "separator=/t", "-E", "occurrence=a"]
    if display_filter:
        args += ["-Y", display_filter]
    for name in names:
        args += ["-e", name]
    out, _, _ = tshark(procs, path, *args)
    return [line.split("\t") for line in out.splitlines()]


def json_layers(procs, path, names, display_filter):
    """Every occurrence of each field, per packet, from tshark -T json."""
    args = ["-T", "json", "-Y", display_filter]
    for name in names:
        args += ["-e", name]
    out, _, _ = tshark(procs, path, *args)
    return [{name: packet["_source"]["layers"].get(name, []) for name in names} for packet in json.loads(out)]


def ours(run):
    """Display filter: packets of connections this module made (tlstap sees the whole host)."""
    ports = f"{{{NGINX_ADDRESS[1]}, {run.server.port}}}"
    return f"exported_pdu.src_port in {ports} or exported_pdu.dst_port in {ports}"


def comment_of(event):
    return (f"pid={event['pid']} tid={event['tid']} comm={event['comm']} exe={event['exe']} "
            f"library={event['library']} function={event['function']} role={event['role']}")


def first_event(capture, pids, prefix):
    """The first JSON record of either end whose chunk starts with prefix: the sink wrote that copy."""
    found = [e for e in capture.events if e["pid"] in pids and e["payload"].startswith(prefix)]
    assert found, f"no chunk of {pids} starts with {prefix!r}"
    return found[0]


# ---------------------------------------------------------------- pdu mode

def test_http1_dissected_with_no_option_on_any_port(procs, run):
    # Plain `tshark -r`, its default one-line summary per packet.
    out, _, _ = tshark(procs, run.pdu_file)
    for line in (f"GET {H1_PATH} HTTP/1.1", f"GET {GO_PATH} HTTP/1.1", f"GET {FOLLOW_PATH} HTTP/1.1",
                 "HTTP/1.1 200 OK"):
        assert line in out, out

    rows = fields(procs, run.pdu_file, ["exported_pdu.prot_name", "http.request.uri", "http.response.code",
                                        "exported_pdu.src_port", "exported_pdu.dst_port"],
                  f"http and ({ours(run)})")
    assert {row[0] for row in rows} == {"http"}, rows
    # Each request and response once, though both ends were traced, from the right end.
    follow_port = run.follow_record.peer.rsplit(":", 1)[1]
    server_port = str(run.server.port)
    requests = sorted((uri, dst) for _, uri, _, _, dst in rows if uri)
    assert requests == sorted([(FOLLOW_PATH, server_port), (GO_PATH, "443"), (H1_PATH, "443")]), rows
    assert [src for _, uri, _, src, _ in rows if uri == FOLLOW_PATH] == [follow_port]
    responses = sorted((src, code) for _, _, code, src, _ in rows if code)
    assert responses == sorted([(server_port, "200"), ("443", "200"), ("443", "200")]), rows


def test_http2_dissected_with_no_option(procs, run):
    names = ["http2.header.name", "http2.header.value", "http2.data.data"]
    packets = json_layers(procs, run.pdu_file, names, "exported_pdu.src_port == 443 or exported_pdu.dst_port == 443")
    protocols = fields(procs, run.pdu_file, ["exported_pdu.prot_name"],
                       "exported_pdu.src_port == 443 or exported_pdu.dst_port == 443")
    # HTTP/1.1 to nginx (/h1, /go) is "http"; nothing on 443 may fall back to raw data.
    assert sorted({row[0] for row in protocols}) == ["http", "http2"], protocols

    headers = [list(zip(p["http2.header.name"], p["http2.header.value"])) for p in packets]
    headers = [h for h in headers if h]
    paths = sorted(value for h in headers for name, value in h if name == ":path")
    statuses = [value for h in headers for name, value in h if name == ":status"]
    methods = [value for h in headers for name, value in h if name == ":method"]
    assert paths == sorted(H2_PATHS), headers
    assert methods == ["GET"] * 3, headers
    assert statuses == ["200"] * 3, headers
    bodies = sorted(bytes.fromhex(d.replace(":", "")) for p in packets for d in p["http2.data.data"])
    assert bodies == sorted(nginx_body(path) for path in H2_PATHS), bodies


def test_go_client_captured(run):
    assert run.go_output == b"HTTP/1.1 200 " + nginx_body(GO_PATH)
    # The Go side itself was traced, not only nginx's copy of its bytes.
    go_chunks = [e for e in run.pdu.events if e["pid"] == run.go_pid]
    assert {(e["comm"], e["exe"], e["library"], e["role"]) for e in go_chunks} == {
        ("https_get", run.go_exe, "go", "client")}, go_chunks
    assert any(e["payload"].startswith(f"GET {GO_PATH} HTTP/1.1\r\n".encode()) for e in go_chunks)


def test_packet_comments_name_the_process(procs, run):
    rows = fields(procs, run.pdu_file, ["http.request.uri", "http.response.code", "exported_pdu.src_port",
                                        "exported_pdu.dst_port", "frame.comment", "frame.time_epoch"], ours(run))
    assert rows
    # Who may have produced each packet of our connections.
    processes = {run.nginx_pid: ("nginx", real_exe(NGINX), "openssl", "server"),
                 run.go_pid: ("https_get", run.go_exe, "go", "client"),
                 run.server.pid: ("python3", real_exe("/usr/bin/python3"), "openssl", "server"),
                 run.follow_curl_pid: ("curl", real_exe(CURL), "openssl", "client"),
                 **{pid: ("curl", real_exe(CURL), "openssl", "client") for pid in run.curl_pids.values()}}
    for uri, code, src, dst, comment, _ in rows:
        m = COMMENT_RE.match(comment)
        assert m, f"malformed packet comment {comment!r}"
        pid, _, comm, exe, library, _, role = m.groups()
        assert int(pid) in processes, f"{comment!r}: not one of our processes {processes}"
        assert (comm, exe, library, role) == processes[int(pid)], comment

    # The packet carrying each request is the first copy tlstap saw, word for word.
    by_uri = {row[0]: row for row in rows if row[0]}
    for uri, client_pid, server_pid in ((H1_PATH, run.curl_pids[H1_PATH], run.nginx_pid),
                                        (GO_PATH, run.go_pid, run.nginx_pid),
                                        (FOLLOW_PATH, run.follow_curl_pid, run.server.pid)):
        event = first_event(run.pdu, (client_pid, server_pid), f"GET {uri} HTTP/1.1\r\n".encode())
        _, _, _, _, comment, epoch = by_uri[uri]
        assert comment == comment_of(event)
        seconds, nanos = epoch.split(".")
        assert int(seconds) * 10**9 + int(nanos.ljust(9, "0")) == event["ts"], "packet time is the chunk's"


def test_section_header_names_host_and_version(procs, run):
    version = procs.run([TLSTAP_BIN, "--version"], timeout=30).stdout.decode().strip()
    info = procs.run([CAPINFOS, run.pdu_file], timeout=60).stdout.decode()
    uname = os.uname()
    for line in (f"Capture hardware:    {uname.machine}", f"Capture oper-sys:    {uname.sysname} {uname.release}",
                 f"Capture application: {version}",
                 f"Capture comment:     TLS plaintext captured by tlstap on {uname.nodename}",
                 "File encapsulation:  Wireshark Upper PDU export", "Time precision = nanoseconds (9)"):
        assert line in info, info
    assert re.match(r"tlstap \d+\.\d+\.\d+$", version), version
    info = procs.run([CAPINFOS, run.tcp_file], timeout=60).stdout.decode()
    assert "File encapsulation:  Raw IP" in info, info


def test_stdout_stream_into_tshark(procs, run):
    assert run.tee_code == 0 and run.piped_tshark_code == 0
    # What tshark read from the pipe is what it reads from the same bytes in a file.
    out, _, _ = tshark(procs, run.pdu_file, *PIPED_FIELDS)
    assert run.piped_fields == out
    uris = [line.split("\t")[2] for line in out.splitlines()]
    assert {H1_PATH, GO_PATH, FOLLOW_PATH} <= set(uris), out


def test_file_created_private(run):
    # tlstap ran with umask 0: the mode is its own choice.
    assert run.tcp_file_mode_while_capturing == 0o600
    assert stat.S_IMODE(run.tcp_file.stat().st_mode) == 0o600


def block_offsets(data):
    """Start and length of every pcapng block (little-endian, as tlstap writes)."""
    blocks, at = [], 0
    while at < len(data):
        length = int.from_bytes(data[at + 4:at + 8], "little")
        assert length >= 12 and at + length <= len(data), f"bad block at {at}"
        blocks.append((at, length))
        at += length
    return blocks


def test_truncated_file_readable_to_last_complete_block(procs, run, tmp_path):
    data = run.pdu_file.read_bytes()
    blocks = block_offsets(data)
    packets = len(blocks) - 2  # after the section header and the interface
    assert packets >= 10
    names = ["-T", "fields", "-e", "frame.number", "-e", "frame.comment"]
    full, _, _ = tshark(procs, run.pdu_file, *names)
    full_rows = full.splitlines()
    assert len(full_rows) == packets

    last_start, last_length = blocks[-1]
    for name, cut in (("mid-block", last_start + last_length // 2), ("mid-header", last_start + 6),
                      ("one byte short", last_start + last_length - 1)):
        cut_file = tmp_path / f"{name}.pcapng"
        cut_file.write_bytes(data[:cut])
        out, err, code = tshark(procs, cut_file, *names, check=False)
        assert out.splitlines() == full_rows[:-1], f"{name}: {err}"
        assert code != 0 and "cut short in the middle of a packet" in err, f"{name}: exit {code}: {err}"

    # Cut between blocks (writer killed after a whole block): a clean, shorter file.
    cut_file = tmp_path / "boundary.pcapng"
    cut_file.write_bytes(data[:last_start])
    out, err, _ = tshark(procs, cut_file, *names)
    assert out.splitlines() == full_rows[:-1], err


# ---------------------------------------------------------------- tcp mode

def parse_follow(text):
    """tshark -z follow,tcp,raw: (node 0 address, node 1 address, bytes from node 0, bytes from node 1)."""
    nodes, sent = {}, {0: bytearray(), 1: bytearray()}
    for line in text.splitlines():
        m = re.match(r"^Node ([01]): (\S+)$", line)
        if m:
            nodes[int(m.group(1))] = m.group(2)
        elif re.fullmatch(r"\t?[0-9a-f]+", line):
            sent[1 if line.startswith("\t") else 0] += bytes.fromhex(line.strip())
    assert set(nodes) == {0, 1}, text
    return nodes[0], nodes[1], bytes(sent[0]), bytes(sent[1])


def tcp_stream_of(procs, path, client, server):
    """The tcp.stream index of one connection (the file also holds the host's other traffic)."""
    (client_host, client_port), (server_host, server_port) = (a.rsplit(":", 1) for a in (client, server))
    rows = fields(procs, path, ["tcp.stream"], f"ip.src == {client_host} and tcp.srcport == {client_port} and "
                  f"ip.dst == {server_host} and tcp.dstport == {server_port}")
    streams = {row[0] for row in rows}
    assert len(streams) == 1, f"{client} -> {server}: streams {streams}"
    return streams.pop()


def follow(procs, path, stream):
    out, _, _ = tshark(procs, path, "-q", "-z", f"follow,tcp,raw,{stream}")
    return parse_follow(out)


def test_follow_tcp_stream_gives_exact_bytes(procs, run):
    record = run.follow_record
    stream = tcp_stream_of(procs, run.tcp_file, record.peer, run.server.address)
    node0, node1, from0, from1 = follow(procs, run.tcp_file, stream)
    sent = {node0: from0, node1: from1}
    assert set(sent) == {record.peer, run.server.address}
    assert_bytes_equal(sent[record.peer], record.received, "client -> server in follow,tcp,raw")
    assert_bytes_equal(sent[run.server.address], record.sent, "server -> client in follow,tcp,raw")
    assert len(record.sent) > 40000  # several chunks, several packets

    # nginx: the request bytes are curl's, the response ends with the body.
    client = next(e["local"] for e in run.tcp.of_pid(run.curl_pids[H1_PATH]))
    stream = tcp_stream_of(procs, run.tcp_file, client, "127.0.0.1:443")
    node0, node1, from0, from1 = follow(procs, run.tcp_file, stream)
    sent = {node0: from0, node1: from1}
    assert sent[client] == (f"GET {H1_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {USER_AGENT}\r\n"
                            f"Accept: */*\r\n\r\n").encode()
    response = sent["127.0.0.1:443"]
    assert response.startswith(b"HTTP/1.1 200 OK\r\n") and response.endswith(b"\r\n\r\n" + nginx_body(H1_PATH))


def test_sequence_numbers_are_stream_offsets(procs, run):
    record = run.follow_record
    stream = tcp_stream_of(procs, run.tcp_file, record.peer, run.server.address)
    rows = fields(procs, run.tcp_file, ["tcp.srcport", "tcp.seq_raw", "tcp.ack_raw", "tcp.len", "tcp.flags",
                                        "tcp.analysis.flags"], f"tcp.stream == {stream}")
    client_port = record.peer.rsplit(":", 1)[1]
    offsets = {True: 0, False: 0}  # bytes so far from the client / from the server
    for src, seq, ack, length, flags, analysis in rows:
        from_client = src == client_port
        assert int(seq) == offsets[from_client] + 1, rows
        assert int(ack) == offsets[not from_client] + 1, rows
        assert flags == "0x0018", rows  # PSH, ACK
        assert analysis == "", f"tshark flags a TCP problem: {rows}"
        offsets[from_client] += int(length)
    assert offsets == {True: len(record.received), False: len(record.sent)}
    assert len(rows) >= 4  # the 40 KB response came in several packets
