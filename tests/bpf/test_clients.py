"""Real HTTPS clients (curl, Python urllib, Node) against the Python TLS server:
both directions captured byte for byte, tied to the right process and connection."""
from harness import (CURL, NODE, NODE_ENV, PYTHON, PY_EGRESS, PY_INGRESS, TESTPROGS, assert_bytes_equal,
                     assert_exchange, http_body, pattern, real_exe, summarize)

SEQUENTIAL = 12  # enough that curl's SSL object and kernel socket both get reused


def test_curl(procs, tlstap, server, cert):
    tap = tlstap()
    curl = procs.run([CURL, "-sS", "--http1.1", "--cacert", cert.cert, "-A", "tlstap-test", server.url("/curl")])
    record = server.next_connection()
    capture = tap.stop()

    # The exact bytes curl 7.88 sends: the capture must equal them, not just the server's log.
    expected = (f"GET /curl HTTP/1.1\r\nHost: {server.address}\r\nUser-Agent: tlstap-test\r\n"
                f"Accept: */*\r\n\r\n").encode()
    assert_bytes_equal(record.received, expected, "what the server received")
    assert curl.stdout == http_body(record.sent)
    assert_exchange(capture, server, record, curl.pid, comm="curl", exe=CURL,
                    egress_functions=("SSL_write",), ingress_functions=("SSL_read",))


def test_python_urllib(procs, tlstap, server, cert, tmp_path):
    body = pattern(5000, "urllib")
    (tmp_path / "body").write_bytes(body)
    tap = tlstap()
    client = procs.run([PYTHON, TESTPROGS / "urllib_client.py", server.url("/urllib"), cert.cert, tmp_path / "body"])
    record = server.next_connection()
    capture = tap.stop()

    assert record.received.startswith(b"POST /urllib HTTP/1.1\r\n") and record.received.endswith(body)
    assert client.stdout == http_body(record.sent)
    assert_exchange(capture, server, record, client.pid, comm="python3", exe=real_exe(PYTHON),
                    egress_functions=PY_EGRESS, ingress_functions=PY_INGRESS)


def test_node(procs, tlstap, server, cert, tmp_path):
    body = pattern(3000, "node")
    (tmp_path / "body").write_bytes(body)
    tap = tlstap()
    node = procs.run([NODE, TESTPROGS / "https_client.js", server.url("/node"), cert.cert, tmp_path / "body"],
                     env=NODE_ENV)
    record = server.next_connection()
    capture = tap.stop()

    assert record.received.startswith(b"POST /node HTTP/1.1\r\n") and record.received.endswith(body)
    assert node.stdout == http_body(record.sent)
    # Node's OpenSSL sits behind a memory BIO: addresses must still be the socket's.
    assert_exchange(capture, server, record, node.pid, comm="node", exe=real_exe(NODE),
                    egress_functions=("SSL_write",), ingress_functions=("SSL_read",))


def test_curl_sequential_connections(procs, tlstap, server, cert):
    """One process, several connections one after another (the server closes each):
    a freed and reused SSL object must not merge or shift their streams."""
    urls = [server.url(f"/seq{i}") for i in range(SEQUENTIAL)]
    tap = tlstap()
    curl = procs.run([CURL, "-sS", "--http1.1", "--cacert", cert.cert, *urls])
    records = [server.next_connection() for _ in urls]
    capture = tap.stop()

    assert sorted(r.received.split(b" ")[1] for r in records) == sorted(f"/seq{i}".encode() for i in range(SEQUENTIAL))
    assert len(capture.connections(curl.pid)) == len(urls), summarize(capture.of_pid(curl.pid))
    for record in records:
        assert_exchange(capture, server, record, curl.pid, comm="curl", exe=CURL, egress_functions=("SSL_write",),
                        ingress_functions=("SSL_read",), sole=False)
