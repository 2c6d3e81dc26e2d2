"""GnuTLS programs (wget, gnutls-cli, gnutls-serv) under tlstap: both directions
byte for byte, the right process, addresses and role, library "gnutls"."""
import hashlib
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from harness import (CURL, RUN_TIMEOUT, assert_bytes_equal, assert_connection, assert_exchange, pattern,
                     summarize)

WGET = "/usr/bin/wget"
GNUTLS_CLI = "/usr/bin/gnutls-cli"
GNUTLS_SERV = "/usr/bin/gnutls-serv"
SEND = ("gnutls_record_send",)
RECV = ("gnutls_record_recv",)


def wget(procs, cert, url, *extra):
    return procs.run([WGET, "-q", "-O", "-", f"--ca-certificate={cert.cert}", *extra, url])


def test_wget(procs, tlstap, server, cert):
    tap = tlstap()
    client = wget(procs, cert, server.url("/wget"))
    record = server.next_connection()
    capture = tap.stop()

    assert record.received.startswith(b"GET /wget HTTP/1.1\r\n")
    assert_exchange(capture, server, record, client.pid, comm="wget", exe=WGET, library="gnutls",
                    egress_functions=SEND, ingress_functions=RECV)


def test_wget_one_mebibyte_body(procs, tlstap, server, cert, tmp_path):
    body = pattern((1 << 20) + 17, "wget-post")
    (tmp_path / "body").write_bytes(body)
    tap = tlstap()
    client = wget(procs, cert, server.url("/big"), f"--post-file={tmp_path / 'body'}")
    record = server.next_connection()
    capture = tap.stop()

    client_side, _ = assert_exchange(capture, server, record, client.pid, comm="wget", exe=WGET, library="gnutls",
                                     egress_functions=SEND, ingress_functions=RECV)
    sent_body = client_side.egress.data.split(b"\r\n\r\n", 1)[1]
    assert hashlib.sha256(sent_body).hexdigest() == hashlib.sha256(body).hexdigest()


def test_gnutls_cli(procs, tlstap, server, cert):
    request = f"GET /gnutls-cli HTTP/1.1\r\nHost: {server.address}\r\nConnection: close\r\n\r\n".encode()
    tap = tlstap()
    # The server closes without close_notify, which gnutls-cli reports with exit status 1.
    client = procs.run([GNUTLS_CLI, f"--x509cafile={cert.cert}", "-p", str(server.port), "127.0.0.1"],
                       input=request, check=False)
    record = server.next_connection()
    capture = tap.stop()
    assert record.sent.split(b"\r\n\r\n", 1)[1] in client.stdout

    assert_bytes_equal(record.received, request, "what the server received")
    assert_exchange(capture, server, record, client.pid, comm="gnutls-cli", exe=GNUTLS_CLI, library="gnutls",
                    egress_functions=SEND, ingress_functions=RECV)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gnutls_serv(procs, tlstap, cert):
    """gnutls-serv as the server, curl (OpenSSL) as the client: each side's
    ingress is the other's egress, and the server side says "server"."""
    port = free_port()
    serv = procs.start([GNUTLS_SERV, "--http", "-p", str(port), f"--x509certfile={cert.cert}",
                        f"--x509keyfile={cert.key}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run([CURL, "-sk", "--retry-connrefused", "--retry", "20", "--retry-delay", "0", "-o", "/dev/null",
                    f"https://127.0.0.1:{port}/warm-up"], timeout=RUN_TIMEOUT)  # wait until it listens
    tap = tlstap()
    curl = procs.run([CURL, "-sS", "--http1.1", "--cacert", cert.cert, f"https://127.0.0.1:{port}/to-gnutls-serv"])
    capture = tap.stop()

    [client] = capture.connections(curl.pid)
    [server_side] = [c for c in capture.connections(serv.pid) if c.remote == client.local]
    address = f"127.0.0.1:{port}"
    assert client.egress.data.startswith(b"GET /to-gnutls-serv HTTP/1.1\r\n")
    assert curl.stdout and curl.stdout in client.ingress.data
    assert_connection(server_side, comm="gnutls-serv", exe=GNUTLS_SERV, local=address, remote=client.local,
                      role="server", egress=client.ingress.data, ingress=client.egress.data,
                      egress_functions=SEND, ingress_functions=RECV, library="gnutls")
    assert client.remote == address and client.field_values("role") == {"client"}, summarize(client.events)


class PlainHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"plain text over a plain socket\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_plain_socket_of_the_same_process_is_not_tls(procs, tlstap, server, cert):
    """wget fetching one URL over HTTPS and one over plain HTTP: only the first is reported."""
    plain = HTTPServer(("127.0.0.1", 0), PlainHandler)
    thread = threading.Thread(target=plain.serve_forever, daemon=True)
    thread.start()
    try:
        tap = tlstap()
        client = wget(procs, cert, server.url("/tls"), f"http://127.0.0.1:{plain.server_port}/plain")
        record = server.next_connection()
        capture = tap.stop()
    finally:
        plain.shutdown()
    events = capture.of_pid(client.pid)
    assert events, "no capture of wget's HTTPS request"
    assert {e["remote"] for e in events} == {server.address}, summarize(events)
    assert not any(b"/plain" in e["payload"] for e in events)
    assert_exchange(capture, server, record, client.pid, comm="wget", exe=WGET, library="gnutls",
                    egress_functions=SEND, ingress_functions=RECV)
