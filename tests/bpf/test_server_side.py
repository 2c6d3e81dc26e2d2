"""Server-side capture: what a TLS server read is what its client wrote, and the
reverse, byte for byte, although both sides cut the streams differently."""
import re
import subprocess

from harness import (OPENSSL, PY_EGRESS, PY_INGRESS, PYTHON, LineReader, assert_bytes_equal, assert_connection,
                     assert_exchange, finish_py_client, format_endpoint, http_post, pattern, real_exe,
                     start_py_client)


def test_python_server_streams_mirror_client(procs, tlstap, server, cert, tmp_path):
    # 100 KB written in 3000-byte calls: the server's 16 KiB record reads split it elsewhere.
    request = http_post(server.address, pattern(100_000, "mirror"))
    (tmp_path / "request").write_bytes(request)
    tap = tlstap()
    client, out, local = start_py_client(procs, server.host, server.port, cert.cert, tmp_path / "request",
                                         "--write-size", "3000")
    response = finish_py_client(client, out)
    record = server.next_connection()
    capture = tap.stop()

    assert record.peer == local and record.received == request and record.sent == response
    client_side, server_side = assert_exchange(capture, server, record, client.pid, comm="python3",
                                               exe=real_exe(PYTHON), egress_functions=PY_EGRESS,
                                               ingress_functions=PY_INGRESS)
    assert_bytes_equal(server_side.ingress.data, client_side.egress.data, "server ingress vs client egress")
    assert_bytes_equal(server_side.egress.data, client_side.ingress.data, "server egress vs client ingress")
    # The client really made 34 calls; the capture shows each one's size.
    assert [e["call_len"] for e in client_side.egress.events] == [len(request[i:i + 3000])
                                                                  for i in range(0, len(request), 3000)]


def test_openssl_s_server(procs, tlstap, cert, tmp_path):
    """openssl s_server without -www: SSL_read/SSL_write from the openssl binary, role server."""
    tap = tlstap()
    s_server = procs.start([OPENSSL, "s_server", "-cert", cert.cert, "-key", cert.key, "-accept", "127.0.0.1:0",
                            "-naccept", "1"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = LineReader(s_server.stdout)
    port = int(output.wait_for(re.compile(rb"ACCEPT 127\.0\.0\.1:(\d+)\n"), 30).group(1))
    server_address = format_endpoint("127.0.0.1", port)

    request = http_post(server_address, pattern(20_000, "s_server request"))
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 9000\r\n\r\n" + pattern(9000, "s_server response")
    (tmp_path / "request").write_bytes(request)
    client, out, local = start_py_client(procs, "127.0.0.1", port, cert.cert, tmp_path / "request",
                                         "--response-size", len(response))
    output.wait_for(request, 30)  # s_server prints what it reads, raw
    s_server.stdin.write(response)  # and sends what it reads from stdin
    s_server.stdin.flush()
    assert finish_py_client(client, out) == response
    capture = tap.stop()

    server_side = capture.connection(s_server.pid)
    assert_connection(server_side, comm="openssl", exe=OPENSSL, local=server_address, remote=local, role="server",
                      egress=response, ingress=request,
                      egress_functions=("SSL_write",), ingress_functions=("SSL_read",))
    assert_connection(capture.connection(client.pid), comm="python3", exe=real_exe(PYTHON), local=local,
                      remote=server_address, role="client", egress=request, ingress=response,
                      egress_functions=PY_EGRESS, ingress_functions=PY_INGRESS)
