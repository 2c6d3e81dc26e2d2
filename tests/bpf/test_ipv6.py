"""IPv6: loopback addresses are formatted "[::1]:PORT" on both ends; a dual-stack
server's IPv4 peers (::ffff:a.b.c.d on its socket) are shown as plain IPv4."""
from harness import (CURL, PYTHON, PY_EGRESS, PY_INGRESS, TlsServer, assert_connection, assert_exchange,
                     finish_py_client, format_endpoint, http_post, pattern, real_exe, start_py_client)


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


def test_dual_stack_server_with_ipv4_client(procs, tlstap, cert, tmp_path):
    server = TlsServer(procs, cert, host="::")  # IPV6_V6ONLY off: also accepts IPv4
    ipv4_server = format_endpoint("127.0.0.1", server.port)
    request = http_post(ipv4_server, pattern(3000, "dual stack"))
    (tmp_path / "request").write_bytes(request)
    tap = tlstap()
    client, out, local = start_py_client(procs, "127.0.0.1", server.port, cert.cert, tmp_path / "request")
    response = finish_py_client(client, out)
    record = server.next_connection()
    capture = tap.stop()

    # The server's own socket sees the client as an IPv4-mapped IPv6 address.
    client_host, client_port = local.rsplit(":", 1)
    assert record.peer == f"[::ffff:{client_host}]:{client_port}"
    assert record.local == f"[::ffff:127.0.0.1]:{server.port}"
    assert_connection(capture.connection(server.pid), comm="python3", exe=real_exe(PYTHON), local=ipv4_server,
                      remote=local, role="server", egress=response, ingress=request,
                      egress_functions=PY_EGRESS, ingress_functions=PY_INGRESS)
    assert_connection(capture.connection(client.pid), comm="python3", exe=real_exe(PYTHON), local=local,
                      remote=ipv4_server, role="client", egress=request, ingress=response,
                      egress_functions=PY_EGRESS, ingress_functions=PY_INGRESS)
