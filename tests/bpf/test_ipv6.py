"""IPv6 loopback: addresses are formatted "[::1]:PORT" on both ends."""
from harness import CURL, PYTHON, PY_EGRESS, PY_INGRESS, TlsServer, assert_exchange, finish_py_client, http_post, pattern, real_exe, start_py_client


def test_ipv6_loopback(procs, tlstap, cert, tmp_path):
    server = TlsServer(procs, cert, host="::1", response_padding=20000)
    assert server.address == f"[::1]:{server.port}"
    request = http_post(server.address, pattern(2000, "ipv6"))
    (tmp_path / "request").write_bytes(request)
    tap = tlstap()
    curl = procs.run([CURL, "-sS", "--http1.1", "--cacert", cert.cert, server.url("/v6")])
    curl_record = server.next_connection()
    client, out, local = start_py_client(procs, "::1", server.port, cert.cert, tmp_path / "request")
    finish_py_client(client, out)
    py_record = server.next_connection()
    capture = tap.stop()

    assert curl_record.peer.startswith("[::1]:") and py_record.peer == local
    assert curl_record.received.startswith(b"GET /v6 HTTP/1.1\r\nHost: " + server.address.encode() + b"\r\n")
    assert_exchange(capture, server, curl_record, curl.pid, comm="curl", exe=CURL,
                    egress_functions=("SSL_write",), ingress_functions=("SSL_read",))
    assert_exchange(capture, server, py_record, client.pid, comm="python3", exe=real_exe(PYTHON),
                    egress_functions=PY_EGRESS, ingress_functions=PY_INGRESS)
