"""WebSocket over TLS, both ends traced: Python's websockets (system libssl)
client and echo server in separate processes, with permessage-deflate (context
kept, and reset per message) and without; and a Go client (gorilla/websocket
over crypto/tls) against the same server. Each side's "websocket" lines carry
every message of both directions, unmasked, defragmented and inflated, tied to
the process and connection that sent or received it, and the pcapng written
alongside hands the frames to Wireshark's websocket dissector.

One tlstap run captures the four conversations of the module (stopping one
takes 10 to 30 s here).
"""
import base64
import os
import re
import subprocess
from dataclasses import dataclass

import pytest

from go_programs import GO, GoBinary, wait_attached
from harness import (PYTHON, TESTPROGS, LineReader, ProcessGroup, Tlstap, format_endpoint, read_screen, real_exe,
                     start_top)

PROGS = TESTPROGS / "websocket"
MAX_BODY = 4096  # tlstap's default --max-body
TEXT = "hello over tls"
BINARY = bytes(range(256)) * 4
FRAGMENTS = ["frag-one ", "frag-two ", "frag-three"]
LONG = "".join(chr(ord("a") + i % 26) for i in range(5000))
PING = "are-you-there"
MODES = {"deflate": (9451, "deflate"), "nocontext": (9452, "deflate"), "plain": (9453, "plain")}
GO_PORT = 9454
TOP_PORT = 9455
TSHARK = "/usr/bin/tshark"


@dataclass
class Side:
    pid: int
    lines: list  # this process's "websocket" lines, in output order


def build_gorilla_client(directory):
    """In GOPATH mode against Debian's golang-github-gorilla-websocket-dev: nothing fetched."""
    out = directory / "gorilla_client"
    env = {**os.environ, "GO111MODULE": "off", "GOPROXY": "off", "GOFLAGS": "", "CGO_ENABLED": "0",
           "GOPATH": "/usr/share/gocode", "GOCACHE": str(directory / "gocache")}
    subprocess.run([GO, "build", "-o", out, PROGS / "gorilla_client" / "main.go"], env=env, check=True, timeout=300)
    return GoBinary("gorilla_client", out, stripped=False)


def start_server(procs, cert, port, mode):
    server = procs.start([PYTHON, PROGS / "ws_server.py", cert.cert, cert.key, port, mode], stdout=subprocess.PIPE)
    assert LineReader(server.stdout).wait_for(b"listening", 30), f"{mode} server did not start"
    return server


def run_gorilla_client(procs, tap, gorilla, cert):
    """Started before it dials: it goes on once tlstap has attached to it."""
    client = procs.start([gorilla.path, cert.cert, GO_PORT], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    out = LineReader(client.stdout)
    assert out.next(60) == "ready"
    wait_attached(tap, gorilla)
    client.stdin.write(b"go\n")
    client.stdin.flush()
    assert out.next(60) == "ok" and client.wait(60) == 0
    return client.pid


@pytest.fixture(scope="module")
def run(tmp_path_factory, cert):
    directory = tmp_path_factory.mktemp("websocket")
    gorilla = build_gorilla_client(directory)
    procs = ProcessGroup()
    try:
        pcap = directory / "capture.pcapng"
        tap = Tlstap(procs, directory / "capture.json", ["-w", pcap])
        pids = {}
        for mode, (port, client_mode) in MODES.items():
            server = start_server(procs, cert, port, mode)
            client = procs.run([PYTHON, PROGS / "ws_client.py", cert.cert, port, client_mode])
            assert client.stdout == b"ok\n"
            pids[mode] = (client.pid, server.pid)
        server = start_server(procs, cert, GO_PORT, "nocontext")  # gorilla offers no context takeover
        pids["go"] = (run_gorilla_client(procs, tap, gorilla, cert), server.pid)
        capture = tap.stop()
        sides = {mode: tuple(Side(pid, [m for m in capture.websocket if m["pid"] == pid]) for pid in pair)
                 for mode, pair in pids.items()}
        yield sides, capture.summary, pcap
    finally:
        procs.cleanup()


def expected_messages(compressed):
    """(from, opcode, length, payload, frames, compressed, close_code) of every message,
    in each direction's order. websockets 10.4 sends a fragmented message as its three
    fragments and an empty final frame; control frames are never compressed."""
    def data(sender, opcode, payload, frames=1):
        length = len(payload)
        kept = payload[:MAX_BODY]
        return (sender, opcode, length, kept, frames, compressed, None)

    messages = []
    for sender in ("client", "server"):
        frames = 4 if sender == "client" else 1  # the echo comes back in one frame
        messages += [data(sender, "text", TEXT), data(sender, "binary", BINARY),
                     data(sender, "text", "".join(FRAGMENTS), frames), data(sender, "text", LONG)]
    messages += [("client", "ping", len(PING), PING, 1, False, None),
                 ("server", "pong", len(PING), PING, 1, False, None),
                 ("client", "close", 3, "bye", 1, False, 1000),
                 ("server", "close", 3, "bye", 1, False, 1000)]
    return messages


def seen(line):
    if line["opcode"] == "binary":
        payload = base64.b64decode(line["payload_base64"])
    else:
        payload = line["payload"]
    return (line["from"], line["opcode"], line["length"], payload, line.get("frames", 1),
            line.get("compressed", False), line.get("close_code"))


def in_direction_order(messages):
    return [m for m in messages if m[0] == "client"] + [m for m in messages if m[0] == "server"]


@pytest.mark.parametrize("mode", MODES)
def test_every_message_of_both_directions_on_both_sides(run, mode):
    client, server = run[0][mode]
    expected = in_direction_order(expected_messages(compressed=mode != "plain"))
    for side in (client, server):
        assert in_direction_order([seen(m) for m in side.lines]) == expected, f"{mode}: pid {side.pid}"
        truncated = [m for m in side.lines if m.get("payload_truncated")]
        assert [(m["from"], m["length"]) for m in truncated] == [("client", 5000), ("server", 5000)]


@pytest.mark.parametrize("mode", MODES)
def test_messages_name_their_process_and_connection(run, mode):
    client, server = run[0][mode]
    port = MODES[mode][0]
    server_endpoint = format_endpoint("127.0.0.1", port)
    for side, role in ((client, "client"), (server, "server")):
        identity = {(m["pid"], m["comm"], m["exe"], m["library"], m["role"], m["local"], m["remote"], m["conn_id"])
                    for m in side.lines}
        assert len(identity) == 1, identity
        pid, comm, exe, library, seen_role, local, remote, _ = identity.pop()
        assert (pid, comm, exe, library, seen_role) == (side.pid, "python3", real_exe(PYTHON), "openssl", role)
        assert (remote if role == "client" else local) == server_endpoint
        # The request that upgraded the connection names the socket.
        assert {(m["authority"], m["path"]) for m in side.lines} == {(f"127.0.0.1:{port}", "/chat")}
    assert client.lines[0]["local"] == server.lines[0]["remote"]


def gorilla_messages():
    """What tests/testprogs/websocket/gorilla_client sends, and the echoes: its long text
    goes out in three frames (1 KiB write buffer), the echo in one."""
    binary = bytes(i * 7 % 256 for i in range(1024))
    long, i = "", 0
    while len(long) < 6000:
        long += f"{i * i * 7919 % 1000003},"
        i += 1
    messages = []
    for sender in ("client", "server"):
        messages += [(sender, "text", 13, "hello from go", 1, True, None),
                     (sender, "binary", 1024, binary, 1, True, None),
                     (sender, "text", len(long), long[:MAX_BODY], 3 if sender == "client" else 1, True, None)]
    messages += [("client", "ping", 7, "go-ping", 1, False, None), ("server", "pong", 7, "go-ping", 1, False, None),
                 ("client", "close", 3, "bye", 1, False, 1000), ("server", "close", 3, "bye", 1, False, 1000)]
    return messages


def test_go_client_and_python_server_both_seen(run):
    client, server = run[0]["go"]
    expected = in_direction_order(gorilla_messages())
    for side, comm, library, role in ((client, "gorilla_client", "go", "client"),
                                      (server, "python3", "openssl", "server")):
        assert in_direction_order([seen(m) for m in side.lines]) == expected, f"pid {side.pid}"
        assert {(m["comm"], m["library"], m["role"]) for m in side.lines} == {(comm, library, role)}
        assert {(m["authority"], m["path"]) for m in side.lines} == {(f"127.0.0.1:{GO_PORT}", "/go")}
    assert {m["local"] for m in client.lines} == {m["remote"] for m in server.lines}
    assert {m["remote"] for m in client.lines} == {format_endpoint("127.0.0.1", GO_PORT)}


def test_no_direction_given_up(run):
    """Eight connection sides, two directions each, all followed to their close."""
    sides, summary, _ = run
    assert summary["websocket"] == (sum(len(s.lines) for pair in sides.values() for s in pair), 0)


def test_pcapng_frames_for_wireshark(run):
    """pcapng (pdu mode): after the 101, each direction's frames go whole to Wireshark's
    websocket dissector, which unmasks them; each connection appears once though both
    ends were traced. The plain conversation, frame by frame as tshark reads it
    (it shows no text for the frames of a fragmented message)."""
    port = MODES["plain"][0]
    rows = subprocess.run([TSHARK, "-r", run[2], "-Y", f"websocket && "
                           f"(exported_pdu.src_port == {port} || exported_pdu.dst_port == {port})",
                           "-T", "fields", "-E", "separator=|", "-e", "exported_pdu.dst_port", "-e", "websocket.opcode",
                           "-e", "websocket.fin", "-e", "websocket.mask", "-e", "websocket.payload.text",
                           "-e", "websocket.payload.close.status_code", "-e", "websocket.payload.close.reason"],
                          capture_output=True, text=True, check=True, timeout=120).stdout.splitlines()
    to_server = str(port)

    def frame(sender, opcode, fin, text="", code="", reason=""):
        return (sender, str(opcode), str(fin), "1" if sender == "client" else "0", text, code, reason)

    seen_rows = [("client" if r.split("|")[0] == to_server else "server", *r.split("|")[1:]) for r in rows]
    assert seen_rows == [frame("client", 1, 1, TEXT), frame("server", 1, 1, TEXT),
                         frame("client", 2, 1), frame("server", 2, 1),
                         frame("client", 1, 0), frame("client", 0, 0), frame("client", 0, 0), frame("client", 0, 1),
                         frame("server", 1, 1, "".join(FRAGMENTS)),
                         frame("client", 1, 1, LONG), frame("server", 1, 1, LONG),
                         frame("client", 9, 1), frame("server", 10, 1),
                         frame("client", 8, 1, "", "1000", "bye"), frame("server", 8, 1, "", "1000", "bye")]


def test_top_counts_websocket_messages(cert):
    """`tlstap top` gives each WebSocket connection a row of its own: the
    client's messages, both ways, under "ws" and the upgrade's host and path."""
    procs = ProcessGroup()
    master = None
    try:
        top, master = start_top(procs, "--comm", "python3")
        start_server(procs, cert, TOP_PORT, "plain")
        client = procs.run([PYTHON, PROGS / "ws_client.py", cert.cert, TOP_PORT, "plain"])
        assert client.stdout == b"ok\n"
        row = rf"python3\[{client.pid}\] +[0-9.]+ +(\d+) +0 +- +- +- ws 127\.0\.0\.1:{TOP_PORT}/chat"
        screen = read_screen(master, row, 10)
        # Its text and binary messages and their echoes; pings, pongs and a normal close are not counted.
        messages = sum(1 for m in expected_messages(compressed=False) if m[1] in ("text", "binary"))
        assert int(re.search(row, screen).group(1)) == messages, screen
        assert re.search(r"tlstap top - \d+ exchanges, \d+ WebSocket messages", screen), screen
        os.write(master, b"q")
        assert top.wait(90) == 0
    finally:
        if master is not None:
            os.close(master)
        procs.cleanup()
