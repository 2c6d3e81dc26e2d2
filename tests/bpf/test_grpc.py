"""gRPC over TLS from three real implementations (grpc-go, python3-grpcio's C
core on memory BIOs, node's @grpc/grpc-js on its static OpenSSL), client and
server both traced: tlstap's "http" lines carry each call's method, status,
messages and decoded protobuf, once on each side; messages sent compressed
(grpc-encoding gzip or deflate) are shown decoded.

Every client makes, on one connection, a unary call, a call failing with
NOT_FOUND and a streaming call (testprogs/grpc/*)."""
import os
import subprocess
from dataclasses import dataclass
from urllib.parse import unquote

import pytest

from harness import NODE, NODE_ENV, PYTHON, RUN_TIMEOUT, TESTPROGS, TLSTAP_BIN, LineReader, real_exe

GRPC_JS_DIR = "/opt/tlstap-testdeps/node_modules"  # scripts/install-deps.sh puts @grpc/grpc-js there
PROGS = TESTPROGS / "grpc"
MAX_LATENCY_NS = 10 * 10**9


def text(field, value):
    return {"field": field, "wire": "len", "string": value}


def varint(field, value):
    return {"field": field, "wire": "varint", "value": value}


def encoded_len(fields):
    """Wire length of a message of these fields (numbers < 16, short values)."""
    return sum(2 + len(f["string"].encode()) if f["wire"] == "len" else 2 for f in fields)


@dataclass
class Call:
    """One call as the programs really make it, and what tlstap must say of it."""
    path: str
    requests: list   # protobuf fields of each request message
    responses: list  # ... of each response message
    status: int = 0  # grpc-status
    message: str = None  # grpc-message

    @property
    def service(self):
        return self.path.split("/")[1]

    @property
    def method(self):
        return self.path.split("/")[2]


@dataclass
class Impl:
    name: str
    comm: str
    exe: str
    library: str
    server_argv: list
    client_argv: callable  # (address, ca) -> argv
    client_env: dict
    output: list  # the client's stdout lines
    calls: list


def greeter_calls(ok_message=None):
    """ok_message: the grpc-message a server sends with status 0 (grpc-js: "OK")."""
    return [
        Call("/tlstap.Greeter/SayHello", [[text(1, "alice")]], [[text(1, "hello alice")]], 0, ok_message),
        Call("/tlstap.Greeter/SayHello", [[text(1, "missing")]], [], 5, "no such name: missing"),
        Call("/tlstap.Greeter/Chat", [[text(1, w)] for w in ("one", "two", "three")],
             [[text(1, f"echo {w}")] for w in ("one", "two", "three")], 0, ok_message),
    ]


GREETER_OUTPUT = ["hello alice", "NOT_FOUND no such name: missing", "echo one", "echo two", "echo three"]


def go_impl(health, cert):
    check = "/grpc.health.v1.Health/Check"
    return Impl("go", "health", real_exe(health), "go", [health, "server", cert.cert, cert.key],
                lambda address, ca: [health, "calls", address, "tlstap"], None,
                ["SERVING", "NotFound unknown service", "SERVING", "NOT_SERVING"],
                [Call(check, [[text(1, "tlstap")]], [[varint(1, 1)]]),  # SERVING
                 Call(check, [[text(1, "missing")]], [], 5, "unknown service"),
                 # Watch streams SERVING, then NOT_SERVING (the server flips it and ends the call).
                 Call("/grpc.health.v1.Health/Watch", [[text(1, "tlstap")]], [[varint(1, 1)], [varint(1, 2)]])])


def python_impl(cert):
    greeter = PROGS / "py_greeter.py"
    return Impl("python", "python3", real_exe(PYTHON), "openssl", [PYTHON, greeter, "server", cert.cert, cert.key],
                lambda address, ca: [PYTHON, greeter, "client", address, ca], None, GREETER_OUTPUT, greeter_calls())


def node_impl(cert):
    greeter = PROGS / "node_greeter.js"
    env = {**NODE_ENV, "GRPC_JS_DIR": GRPC_JS_DIR}
    return Impl("node", "node", real_exe(NODE), "openssl", [NODE, greeter, "server", cert.cert, cert.key],
                lambda address, ca: [NODE, greeter, "client", address, ca], env, GREETER_OUTPUT, greeter_calls("OK"))


IMPLEMENTATIONS = ["node", "go", "python"]


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request, cert):
    if request.param == "go":
        return go_impl(request.getfixturevalue("health"), cert)
    return python_impl(cert) if request.param == "python" else node_impl(cert)


def start_server(procs, argv):
    env = {**os.environ, "GRPC_JS_DIR": GRPC_JS_DIR}
    proc = procs.start(argv, stdout=subprocess.PIPE, env=env)
    first = LineReader(proc.stdout).next(RUN_TIMEOUT)
    assert first and first.startswith("listening "), f"{argv} said {first!r}"
    return proc, int(first.split()[1])


def assert_messages(seen, expected, where):
    """The length-prefixed messages of one direction; returns their wire size (5-byte prefix + message)."""
    assert [m["protobuf"] for m in seen] == expected, where
    assert [m["length"] for m in seen] == [encoded_len(fields) for fields in expected], where
    assert not any(m["compressed"] for m in seen), where
    return sum(5 + encoded_len(fields) for fields in expected)


def assert_call(x, call, where):
    where = f"{where} {call.path}: {x}"
    assert (x["version"], x["method"], x["path"], x["status"]) == ("2", "POST", call.path, 200), where
    assert x["request_headers"]["content-type"].startswith("application/grpc"), where
    assert x["response_headers"]["content-type"].startswith("application/grpc"), where
    assert 0 < x["latency_ns"] < MAX_LATENCY_NS, where
    grpc = x["grpc"]
    assert (grpc["service"], grpc["method"]) == (call.service, call.method), where
    assert x["request_body_len"] == assert_messages(grpc["request_messages"], call.requests, where), where
    assert x["response_body_len"] == assert_messages(grpc["response_messages"], call.responses, where), where
    assert "reset_code" not in x and not x.get("incomplete"), where
    assert grpc["status"] == call.status, where
    trailers = x.get("response_trailers") or x["response_headers"]  # an error may come trailers-only
    assert trailers["grpc-status"] == str(call.status), where
    # On the wire grpc-message is percent-encoded, as much as the sender likes.
    assert unquote(trailers.get("grpc-message", "")) == (call.message or ""), where


def assert_grpc_messages(capture, pid, impl):
    """grpc.message is the status message itself: the header percent-decoded."""
    exchanges = sorted(capture.exchanges_of(pid), key=lambda x: x["stream_id"])
    assert [x["grpc"].get("message") for x in exchanges] == [c.message for c in impl.calls], exchanges


def assert_side(capture, pid, impl, role, local, remote):
    """The calls of one side, in order, on one connection, each with its own stream."""
    exchanges = sorted(capture.exchanges_of(pid), key=lambda x: x["stream_id"])
    where = f"{impl.name} {role} pid {pid}"
    assert [x.get("path") for x in exchanges] == [c.path for c in impl.calls], f"{where}: {exchanges}"
    for x, call in zip(exchanges, impl.calls):
        assert (x["pid"], x["comm"], x["exe"], x["library"], x["role"]) == (pid, impl.comm, impl.exe, impl.library,
                                                                             role), f"{where}: {x}"
        assert (x["local"], x["remote"]) == (local, remote), f"{where}: {x}"
        assert_call(x, call, where)
    assert len({x["conn_id"] for x in exchanges}) == 1, f"{where}: {exchanges}"
    stream_ids = [x["stream_id"] for x in exchanges]
    assert all(s % 2 == 1 for s in stream_ids) and len(set(stream_ids)) == len(stream_ids), f"{where}: {stream_ids}"


def test_grpc_calls_on_both_sides(procs, tlstap, cert, impl):
    server, port = start_server(procs, impl.server_argv)
    tap = tlstap("--comm", impl.comm)
    address = f"127.0.0.1:{port}"
    client = procs.start(impl.client_argv(address, cert.cert), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=impl.client_env)
    out, err = client.communicate(timeout=RUN_TIMEOUT)
    assert client.returncode == 0, err
    assert out.decode().splitlines() == impl.output, err
    capture = tap.stop()

    client_sides = capture.exchanges_of(client.pid)
    assert client_sides, f"no exchange of the {impl.name} client; all: {capture.exchanges}"
    client_local = client_sides[0]["local"]
    assert_side(capture, client.pid, impl, "client", client_local, address)
    assert_side(capture, server.pid, impl, "server", address, client_local)
    assert_grpc_messages(capture, client.pid, impl)
    assert_grpc_messages(capture, server.pid, impl)


# Compressible: the C core sends a message as it is when compressing would not shrink it.
LONG_NAME = "tlstap " * 80


@dataclass
class CompressedCall:
    comm: str
    server_argv: list
    client_argv: list  # "ADDRESS" stands for the server's address
    client_env: dict
    output: str  # the client's stdout
    path: str
    request: list  # protobuf fields of the one request message
    response: list
    response_coding: str  # the server's grpc-encoding: "identity" sends its messages as they are


def compressed_call(name, coding, cert, health=None):
    if name == "go":  # grpc-go answers in the coding it was asked in
        return CompressedCall("health", [health, "server", cert.cert, cert.key], [health, "gzip", "ADDRESS", "tlstap"],
                              None, "SERVING\n", "/grpc.health.v1.Health/Check", [text(1, "tlstap")], [varint(1, 1)],
                              coding)
    expected = ("/tlstap.Greeter/SayHello", [text(1, LONG_NAME)], [text(1, f"hello {LONG_NAME}")])
    if name == "node":  # grpc-js compresses what its clients send, not what its server answers
        greeter = PROGS / "node_greeter.js"
        env = {**NODE_ENV, "GRPC_JS_DIR": GRPC_JS_DIR}
        return CompressedCall("node", [NODE, greeter, "server", cert.cert, cert.key, coding],
                              [NODE, greeter, "hello", "ADDRESS", cert.cert, LONG_NAME, coding], env,
                              f"hello {LONG_NAME}\n", *expected, "identity")
    greeter = PROGS / "py_greeter.py"
    return CompressedCall("python3", [PYTHON, greeter, "server", cert.cert, cert.key, "--compression", coding],
                          [PYTHON, greeter, "hello", "ADDRESS", cert.cert, LONG_NAME, "--compression", coding], None,
                          f"hello {LONG_NAME}\n", *expected, coding)


@pytest.mark.parametrize("name,coding", [("python", "gzip"), ("python", "deflate"), ("go", "gzip"), ("node", "gzip"),
                                         ("node", "deflate")])
def test_compressed_messages_are_shown_decoded(procs, tlstap, cert, request, name, coding):
    call = compressed_call(name, coding, cert, request.getfixturevalue("health") if name == "go" else None)
    server, port = start_server(procs, call.server_argv)
    tap = tlstap("--comm", call.comm)
    address = f"127.0.0.1:{port}"
    client = procs.start([address if a == "ADDRESS" else a for a in call.client_argv], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=call.client_env)
    out, err = client.communicate(timeout=RUN_TIMEOUT)
    assert (client.returncode, out.decode()) == (0, call.output), err
    capture = tap.stop()

    sides = (("request", ">", coding, call.request), ("response", "<", call.response_coding, call.response))
    for pid in (client.pid, server.pid):
        exchanges = capture.exchanges_of(pid)
        assert [x.get("path") for x in exchanges] == [call.path], f"pid {pid}: {capture.exchanges}"
        x = exchanges[0]
        for side, _, side_coding, fields in sides:
            assert x[f"{side}_headers"]["grpc-encoding"] == side_coding, x
            [message] = x["grpc"][f"{side}_messages"]
            compressed = side_coding != "identity"
            assert (message["compressed"], message.get("protobuf")) == (compressed, fields), x
            assert message.get("decoded") == (side_coding if compressed else None), x
            assert x[f"{side}_body_len"] == 5 + message["length"], x  # the length as sent
            if compressed and name != "go":
                assert message["length"] < encoded_len(fields) / 4, x

    # The text view (here of the same capture, replayed) shows each message decoded, on both sides.
    shown = subprocess.run([TLSTAP_BIN, "replay", tap.output, "--events", "http", "-v"], capture_output=True,
                           text=True, timeout=RUN_TIMEOUT, check=True).stdout.splitlines()
    for _, mark, side_coding, fields in sides:
        lines = [f"  {mark} (grpc message 1: "] + [f"  {mark}   {field_line(f)}" for f in fields]
        at = [i for i, line in enumerate(shown) if line.startswith(lines[0])]
        assert len(at) == 2, shown
        for i in at:
            assert shown[i].endswith(f" {side_coding} compressed, decoded)" if side_coding != "identity" else " B)"), shown
            assert shown[i + 1:i + len(lines)] == lines[1:], shown


def field_line(field):
    """A field as the text view lays it out (protoc --decode_raw's way)."""
    return f'{field["field"]}: ' + (f'"{field["string"]}"' if "string" in field else str(field["value"]))
