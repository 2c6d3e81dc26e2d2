"""Go's crypto/tls, compiled into each Go executable, stripped or not: HTTPS
clients and servers on net/http (HTTP/1.1 and HTTP/2), 64 goroutines on two
threads, a 4 MiB Write and a long Read loop, calls that grow (move) the
goroutine stack while they run. Every byte, process and connection is checked
against what the programs really sent and received.

The programs (tests/testprogs/go) are built once per session; clients wait on
stdin until tlstap logged its attach to their executable."""
import base64
import functools
import hashlib
import os
import signal

import pytest

from go_programs import (GO, GO_ABI0, GO_READ, GO_WRITE, H2_HEADERS, GoProcess, GoServer, build_go_program,
                         go_version, h2_data, h2_frames, wait_attached)
from harness import (CHUNK, PY_EGRESS, PY_INGRESS, PYTHON, TlsServer, assert_bytes_equal, assert_connection,
                     assert_exchange, finish_py_client, http_body, http_post, pattern, real_exe,
                     start_py_client, summarize)

GOROUTINES = 64
STACK_CHUNK = 512  # tlsclient's stackChunk
VARIANTS = pytest.mark.parametrize("stripped", [False, True], ids=["unstripped", "stripped"])
# Go 1.19 passes arguments in registers (ABIInternal), Go 1.15 on the stack (ABI0).
TOOLCHAINS = pytest.mark.parametrize("go", [GO, GO_ABI0], ids=["go1.19", "go1.15-abi0"])


@pytest.fixture(scope="session")
def go_binary(tmp_path_factory):
    """go_binary(program, stripped, go=GO) builds tests/testprogs/go/<program> once per session."""
    cache = tmp_path_factory.mktemp("go-cache")
    out = tmp_path_factory.mktemp("go-bin")
    return functools.cache(lambda program, stripped, go=GO: build_go_program(program, out, cache, stripped, go))


def check_attach_log(tap, binary, go_binary):
    """tlstap names the Go version and probes the entries of Write, Read and Close and Read's copy
    of the plaintext, all on instructions the kernel emulates."""
    attached = wait_attached(tap, binary)
    assert attached.version == go_version(binary)
    assert attached.probes == attached.instruction_probes == attached.emulated == 4, attached
    # -w drops DWARF: then the offsets come from tlstap's table.
    assert attached.layout_source == ("the go1.9-1.22 table" if binary.stripped else "DWARF"), attached


def assert_go_side(conn, binary, *, local, remote, role, egress, ingress):
    assert_connection(conn, comm=binary.comm, exe=binary.exe, local=local, remote=remote, role=role,
                      egress=egress, ingress=ingress, egress_functions=(GO_WRITE,), ingress_functions=(GO_READ,),
                      library="go")


def assert_go_exchange(capture, server, record, client, **kwargs):
    """assert_exchange for a Go client of tls_server.py; returns (client, server) sides."""
    return assert_exchange(capture, server, record, client.pid, comm=client.binary.comm, exe=client.binary.exe,
                           egress_functions=(GO_WRITE,), ingress_functions=(GO_READ,), library="go", **kwargs)


def assert_no_drops(capture):
    assert all(n == (0, 0) for n in capture.summary["dropped"].values()), capture.summary


def go_h1_request(host, path, body):
    """What Go 1.19's net/http client sends for client.Post(url, "application/octet-stream", body)."""
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Go-http-client/1.1\r\n"
            f"Content-Length: {len(body)}\r\nContent-Type: application/octet-stream\r\n"
            f"Accept-Encoding: gzip\r\n\r\n").encode() + body


def tlsclient_request(host, index, size):
    """What tlsclient sends on connection `index`."""
    return http_post(host, pattern(size + 97 * index, f"go conn {index}"), path=f"/conn{index}")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def run_tlsclient(procs, tlstap, go_binary, server, cert, size, *args, **kwargs):
    """One tlsclient connection to `server` under tlstap, which the server received whole:
    (the client, its result, the server's record, the capture)."""
    tap = tlstap()
    client = start_tlsclient(procs, go_binary, server, cert, "-size", size, *args, **kwargs)
    client.release(tap)
    result = client.finish()["connections"][0]
    record = server.next_connection()
    capture = tap.stop()
    assert result.get("error") is None and record.received == tlsclient_request(server.address, 0, size)
    return client, result, record, capture


def start_tlsclient(procs, go_binary, server, cert, *args, stripped=False, go=GO, env=None):
    return GoProcess(procs, go_binary("tlsclient", stripped, go),
                     ["-addr", server.address, "-cafile", cert.cert, "-wait", *args], env=env)


def test_a_client_gone_before_it_is_looked_at_is_captured_at_its_next_start(procs, tlstap, server, cert, go_binary):
    """A short-lived Go client may be gone by the time tlstap reads its exec
    (here tlstap is stopped while it runs): tlstap looks at its file through
    the path it was started by, so the next run is captured from its start."""
    binary = go_binary("tlsclient", False)
    tap = tlstap("-v")
    os.kill(tap.proc.pid, signal.SIGSTOP)
    try:
        procs.run([binary.path, "-addr", server.address, "-cafile", cert.cert, "-size", 100])
    finally:
        os.kill(tap.proc.pid, signal.SIGCONT)
    server.next_connection()
    wait_attached(tap, binary)
    client = start_tlsclient(procs, go_binary, server, cert, "-size", 100)
    client.release(tap)
    assert client.finish()["connections"][0].get("error") is None
    record = server.next_connection()
    capture = tap.stop()
    assert_go_exchange(capture, server, record, client)
    assert_no_drops(capture)


# ---------------------------------------------------------------- net/http


@VARIANTS
def test_http1_client(procs, tlstap, server, cert, tmp_path, go_binary, stripped):
    """Started while tlstap runs: attached when it executes, before it sends."""
    body = pattern(5000, "go http/1.1 client")
    (tmp_path / "body").write_bytes(body)
    tap = tlstap()
    client = GoProcess(procs, go_binary("httpsclient", stripped),
                       ["-url", server.url("/go-h1"), "-cafile", cert.cert, "-body", tmp_path / "body", "-wait"])
    check_attach_log(tap, client.binary, go_binary)
    client.release(tap)
    result = client.finish()
    record = server.next_connection()
    capture = tap.stop()

    assert_bytes_equal(record.received, go_h1_request(server.address, "/go-h1", body), "what the server received")
    assert (result["proto"], result["local"]) == ("HTTP/1.1", record.peer)
    assert base64.b64decode(result["body"]) == http_body(record.sent)
    assert_go_exchange(capture, server, record, client)
    assert_no_drops(capture)


def http1_close_request(host, path, body):
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    return head + body


@TOOLCHAINS
@VARIANTS
def test_http1_server(procs, tlstap, cert, tmp_path, go_binary, stripped, go):
    """Running before tlstap starts: attached by the start-up scan. A Python client
    (OpenSSL, traced too) is the other end."""
    server = GoServer(procs, go_binary("httpsserver", stripped, go), cert)
    tap = tlstap()
    check_attach_log(tap, server.binary, go_binary)
    body = pattern(7000, "go http/1.1 server")
    request = http1_close_request(server.address, "/go-server", body)
    (tmp_path / "request").write_bytes(request)
    client, out, local = start_py_client(procs, "127.0.0.1", server.first["port"], cert.cert, tmp_path / "request")
    response = finish_py_client(client, out)
    served = server.served(local)
    capture = tap.stop()

    # Both ends closed their connection while tlstap ran: the Go server's (*Conn).Close
    # and the Python client's SSL_free (its `with` block).
    assert capture.summary["closed"] >= 2, capture.summary
    assert (served["proto"], served["path"]) == ("HTTP/1.1", "/go-server")
    assert base64.b64decode(served["received"]) == body
    assert http_body(response) == base64.b64decode(served["sent"])
    assert_go_side(capture.connection(server.pid, remote=local), server.binary, local=server.address, remote=local,
                   role="server", egress=response, ingress=request)
    assert_connection(capture.connection(client.pid), comm="python3", exe=real_exe(PYTHON), local=local,
                      remote=server.address, role="client", egress=request, ingress=response,
                      egress_functions=PY_EGRESS, ingress_functions=PY_INGRESS)
    assert_no_drops(capture)


@VARIANTS
def test_http2_client_and_server(procs, tlstap, cert, tmp_path, go_binary, stripped):
    """Both ends Go: each side's capture must mirror the other's exactly, and
    parse as whole HTTP/2 frames carrying the real request and response bodies."""
    body = pattern(40_000, "go http/2")  # several DATA frames and TLS records
    (tmp_path / "body").write_bytes(body)
    server = GoServer(procs, go_binary("httpsserver", stripped), cert)
    tap = tlstap()
    client = GoProcess(procs, go_binary("httpsclient", stripped),
                       ["-url", f"https://{server.address}/go-h2", "-cafile", cert.cert, "-body", tmp_path / "body",
                        "-http2", "-wait"])
    client.release(tap)
    result = client.finish()
    local = result["local"]
    served = server.served(local)
    capture = tap.stop()

    assert (result["proto"], served["proto"]) == ("HTTP/2.0", "HTTP/2.0")
    assert base64.b64decode(served["received"]) == body
    sent = base64.b64decode(served["sent"])
    assert base64.b64decode(result["body"]) == sent
    client_side = capture.connection(client.pid)
    server_side = capture.connection(server.pid, remote=local)
    assert_go_side(client_side, client.binary, local=local, remote=server.address, role="client",
                   egress=server_side.ingress.data, ingress=server_side.egress.data)
    assert_go_side(server_side, server.binary, local=server.address, remote=local, role="server",
                   egress=client_side.ingress.data, ingress=client_side.egress.data)
    requests, responses = h2_frames(client_side.egress.data, client=True), h2_frames(client_side.ingress.data, False)
    assert any(f.type == H2_HEADERS and f.stream == 1 for f in requests), "no request HEADERS"
    assert any(f.type == H2_HEADERS and f.stream == 1 for f in responses), "no response HEADERS"
    assert_bytes_equal(h2_data(requests, 1), body, "request DATA")
    assert_bytes_equal(h2_data(responses, 1), sent, "response DATA")
    # The protocol layer pairs the stream into one exchange on each side.
    for pid, role, local_end, remote_end in ((client.pid, "client", local, server.address),
                                             (server.pid, "server", server.address, local)):
        exchanges = [x for x in capture.exchanges_of(pid) if x["remote"] == remote_end]
        assert len(exchanges) == 1, exchanges
        x = exchanges[0]
        assert (x["version"], x["stream_id"], x["method"], x["path"], x["status"]) == ("2", 1, "POST", "/go-h2", 200)
        assert (x["library"], x["role"], x["local"], x["authority"]) == ("go", role, local_end, server.address)
        assert (x["request_body_len"], x["response_body_len"]) == (len(body), len(sent))
        assert x["response_headers"]["content-type"] == "application/octet-stream"
        assert 0 < x["latency_ns"] < 10 * 10**9
    assert_no_drops(capture)


# ---------------------------------------------------------------- crypto/tls directly


@TOOLCHAINS
def test_goroutines_on_two_threads(procs, tlstap, server, cert, go_binary, go):
    """64 connections, one goroutine each, on GOMAXPROCS=2, writing in 1000-byte
    pieces at once: goroutines hop threads, calls are matched by goroutine."""
    size = 12_000
    tap = tlstap()
    client = start_tlsclient(procs, go_binary, server, cert, "-conns", GOROUTINES, "-size", size,
                             "-write-size", 1000, "-read-size", 4096, stripped=True, go=go,
                             env={"GOMAXPROCS": "2"})
    locals_ = client.first["locals"]
    client.release(tap)
    results = client.finish()["connections"]
    records = {r.peer: r for r in (server.next_connection() for _ in range(GOROUTINES))}
    capture = tap.stop()

    assert sorted(records) == sorted(locals_)
    for index, (local, result) in enumerate(zip(locals_, results)):
        record = records[local]
        assert (result["local"], result.get("error")) == (local, None)
        assert_bytes_equal(record.received, tlsclient_request(server.address, index, size), f"connection {index}")
        assert (result["response_len"], result["response_sha256"]) == (len(record.sent), sha256(record.sent))
        assert_go_exchange(capture, server, record, client, sole=False)
    assert len(capture.connections(client.pid)) == GOROUTINES, summarize(capture.of_pid(client.pid))
    # Nothing beyond these connections, and really more than one thread at work.
    expected = sum(len(r.received) + len(r.sent) for r in records.values())
    assert sum(e["len"] for e in capture.of_pid(client.pid)) == expected
    assert len({e["tid"] for e in capture.of_pid(client.pid)}) >= 2
    assert_no_drops(capture)


@pytest.mark.parametrize("wrapper", ["-wrap", "-decoy"])
def test_conn_without_an_fd_path_is_named_by_the_socket_tracepoints(procs, tlstap, server, cert, go_binary,
                                                                    wrapper):
    """TLS over the program's own net.Conn wrapper: the fields lead to no netFD, so the first
    Write's own socket write (seen by the tracepoint) names the connection. That Write is
    captured before its bytes reach the socket: it alone has no addresses. The decoy's fields
    lead to a TCP listener's fd where a netFD keeps its Sysfd: only checking that a netFD is
    there (its family and type, at offsets from DWARF) keeps that socket's addresses out."""
    size = 30_000
    client, _, record, capture = run_tlsclient(procs, tlstap, go_binary, server, cert, size, "-write-size", 4000,
                                               wrapper)
    request = tlsclient_request(server.address, 0, size)
    events = capture.of_pid(client.pid)
    assert len({e["conn_id"] for e in events}) == 1, summarize(events)
    egress = [e for e in events if e["direction"] == "egress"]
    ingress = [e for e in events if e["direction"] == "ingress"]
    assert_bytes_equal(b"".join(e["payload"] for e in egress), request, "egress")
    assert_bytes_equal(b"".join(e["payload"] for e in ingress), record.sent, "ingress")
    assert events[0]["direction"] == "egress"
    named = events[1:] if events[0]["local"] == "" else events
    for e in named:
        assert (e["local"], e["remote"], e["role"], e["library"]) == (record.peer, server.address, "client",
                                                                       "go"), summarize(events)
    assert_no_drops(capture)


@TOOLCHAINS
def test_large_write_and_read_loop(procs, tlstap, cert, go_binary, go):
    """One Write of a 4 MiB body; a 3 MiB response read by a loop of Reads."""
    size = 4 << 20
    server = TlsServer(procs, cert, response_padding=3 << 20)
    tap = tlstap()
    client = start_tlsclient(procs, go_binary, server, cert, "-size", size, "-write-size", 0,
                             "-read-size", 65536, go=go)
    client.release(tap)
    result = client.finish()["connections"][0]
    record = server.next_connection()
    capture = tap.stop()

    request = tlsclient_request(server.address, 0, size)
    assert record.received_sha256 == sha256(request) and result["writes"] == 1
    assert (result["response_len"], result["response_sha256"]) == (len(record.sent), sha256(record.sent))
    client_side, _ = assert_go_exchange(capture, server, record, client)
    # The Write: one call cut into consecutive full chunks and a remainder.
    chunks = client_side.egress.events
    assert {e["call_len"] for e in chunks} == {len(request)}
    assert [e["stream_offset"] for e in chunks] == list(range(0, len(request), CHUNK))
    # The Reads: one event per Read that returned data (one TLS record, at most
    # 16 KiB, each); the last Read returned EOF.
    reads = client_side.ingress.events
    assert len(reads) == result["reads"] - 1 and all(e["call_len"] == e["len"] for e in reads)
    assert_no_drops(capture)


@TOOLCHAINS
def test_stack_growth_during_calls(procs, tlstap, server, cert, go_binary, go):
    """Writes from and Reads into buffers on the goroutine stack, each from a fresh
    goroutine one recursion level deeper than the last: some calls grow the stack,
    which Go moves (buffer included) while the call runs. No crash, no loss.
    GODEBUG=efence=1 makes Go revoke all access to a stack it moved away from: reading a buffer
    where it was when the call began then fails instead of finding stale bytes."""
    size = 100_000
    client, result, record, capture = run_tlsclient(procs, tlstap, go_binary, server, cert, size, "-stack", go=go,
                                                    env={"GODEBUG": "efence=1"})
    request = tlsclient_request(server.address, 0, size)
    # The case under test happened: the stack moved during some Writes and some Reads.
    assert result["writes_moved"] > 0 and result["reads_moved"] > 0, result
    client_side, _ = assert_go_exchange(capture, server, record, client)
    head = len(request) - size
    assert [e["call_len"] for e in client_side.egress.events] == [head] + [
        min(STACK_CHUNK, len(request) - offset) for offset in range(head, len(request), STACK_CHUNK)]
    assert len(client_side.ingress.events) == result["reads"] - 1
    assert_no_drops(capture)
