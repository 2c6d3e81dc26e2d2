"""NSS programs under tlstap: selfserv and tstclnt (libnss3-tools) over loopback, and
tests/testprogs/nss/plain_and_tls.c, an NSPR client with one TLS and one plain socket:
both directions byte for byte, the right process, addresses and role, library "nss";
the plain NSPR socket is not reported."""
import hashlib
import socket
import subprocess
import threading
import time

import pytest

from harness import (RUN_TIMEOUT, TESTPROGS, TlsServer, assert_bytes_equal, assert_connection, pattern, real_exe,
                     summarize)

CERTUTIL = "/usr/bin/certutil"
SELFSERV = "/usr/bin/selfserv"
TSTCLNT = "/usr/bin/tstclnt"
EGRESS = ("PR_Write", "PR_Send")
INGRESS = ("PR_Read", "PR_Recv")


@pytest.fixture(scope="session")
def nss_db(tmp_path_factory):
    """An NSS certificate database holding a self-signed server certificate "server"."""
    directory = tmp_path_factory.mktemp("nssdb")
    noise = directory / "noise"
    noise.write_bytes(pattern(64, "nss-noise"))
    db = f"sql:{directory}"
    subprocess.run([CERTUTIL, "-N", "-d", db, "--empty-password"], check=True, capture_output=True, timeout=30)
    subprocess.run([CERTUTIL, "-S", "-d", db, "-s", "CN=localhost", "-n", "server", "-x", "-t", "CT,C,C",
                    "-k", "ec", "-q", "nistp256", "-z", noise, "--extSAN", "ip:127.0.0.1,dns:localhost"],
                   check=True, capture_output=True, timeout=30)
    return db


@pytest.fixture(scope="session")
def nss_client(tmp_path_factory):
    exe = tmp_path_factory.mktemp("nss") / "nss_plain_tls"
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "nss"], check=True, capture_output=True,
                           text=True, timeout=30).stdout.split()
    subprocess.run(["cc", "-O1", "-o", exe, TESTPROGS / "nss" / "plain_and_tls.c", *flags], check=True,
                   timeout=RUN_TIMEOUT)
    return str(exe)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port):
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port}")


def test_tstclnt_and_selfserv(procs, tlstap, nss_db, tmp_path):
    port = free_port()
    server = procs.start([SELFSERV, "-d", nss_db, "-n", "server", "-p", port, "-t", "1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(port)  # before tlstap: this probe connection is not part of the capture
    request = b"GET /nss-tstclnt HTTP/1.0\r\nX-Test: " + pattern(20, "nss").hex().encode() + b"\r\n\r\n"
    (tmp_path / "request").write_bytes(request)
    tap = tlstap("--comm", "tstclnt", "--comm", "selfserv")  # other programs' TLS cannot crowd ours out
    # -A: the request from a file (with stdin a pipe, tstclnt waits on after the reply); -o: self-signed is fine
    client = procs.run([TSTCLNT, "-h", "127.0.0.1", "-p", port, "-d", nss_db, "-o", "-A", tmp_path / "request"])
    time.sleep(0.5)  # selfserv's last call returns after tstclnt has its bytes
    capture = tap.stop()

    response = client.stdout
    assert request in response  # selfserv echoes the request
    [client_side] = capture.connections(client.pid)
    address = f"127.0.0.1:{port}"
    assert_connection(client_side, comm="tstclnt", exe=TSTCLNT, local=client_side.local, remote=address,
                      role="client", egress=request, ingress=response, egress_functions=EGRESS,
                      ingress_functions=INGRESS, library="nss")
    assert client_side.local.startswith("127.0.0.1:") and client_side.local != address
    server_side = capture.connection(server.pid, remote=client_side.local)
    assert_connection(server_side, comm="selfserv", exe=SELFSERV, local=address, remote=client_side.local,
                      role="server", egress=response, ingress=request, egress_functions=EGRESS,
                      ingress_functions=INGRESS, library="nss")


class PlainServer:
    """A plain TCP server: reads one request to EOF, answers "plain reply"."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.listener.accept()
        with conn:
            while piece := conn.recv(65536):
                self.received += piece
            conn.sendall(b"plain reply")

    def close(self):
        self.thread.join(RUN_TIMEOUT)
        self.listener.close()


def test_nspr_client_one_mebibyte_each_way_plain_socket_not_reported(procs, tlstap, cert, tmp_path, nss_client):
    """PR_Write/PR_Read on a socket with NSS's SSL layer are reported, on a plain NSPR
    socket of the same process not; a 1 MiB upload and a 1 MiB download arrive whole."""
    server = TlsServer(procs, cert, response_padding=1 << 20)
    plain = PlainServer()
    body = pattern((1 << 20) + 17, "nss-upload")
    request = (f"POST /nss HTTP/1.1\r\nHost: {server.address}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    (tmp_path / "request").write_bytes(request)
    tap = tlstap("--comm", "nss_plain_tls")  # the server's side is Python's OpenSSL, tested elsewhere
    client = procs.run([nss_client, server.port, plain.port, tmp_path / "request"])
    record = server.next_connection()
    plain.close()
    capture = tap.stop()

    assert plain.received == b"plain request"
    local_line, response = client.stdout.split(b"\n", 1)
    assert local_line.decode() == f"local {record.peer}"
    assert_bytes_equal(response, record.sent, "what the NSS client received")
    events = capture.of_pid(client.pid)
    assert {e["remote"] for e in events} == {server.address}, summarize(events)
    assert not any(b"plain" in e["payload"] for e in events), summarize(events)
    client_side = capture.connection(client.pid)
    assert_connection(client_side, comm="nss_plain_tls", exe=real_exe(nss_client), local=record.peer,
                      remote=server.address, role="client", egress=request, ingress=record.sent,
                      egress_functions=("PR_Write",), ingress_functions=("PR_Read",), library="nss")
    assert_bytes_equal(record.received, request, "what the server received")
    for captured, sent in ((client_side.egress.data, request), (client_side.ingress.data, record.sent)):
        assert hashlib.sha256(captured).hexdigest() == hashlib.sha256(sent).hexdigest()
