"""A request body far larger than a TLS record, sent in ONE SSL_write_ex call,
is captured whole: no truncation at 4/16/32 KiB, no gap, identical SHA-256."""
import hashlib

import pytest

from harness import (CHUNK, PYTHON, PY_EGRESS, PY_INGRESS, assert_exchange, finish_py_client, http_post, pattern,
                     real_exe, start_py_client)


@pytest.mark.parametrize("body_size", [(1 << 20) + 123, (6 << 20) + 5])
def test_one_large_write(procs, tlstap, server, cert, tmp_path, body_size):
    request = http_post(server.address, pattern(body_size, f"large {body_size}"))
    (tmp_path / "request").write_bytes(request)
    tap = tlstap()
    client, out, _ = start_py_client(procs, server.host, server.port, cert.cert, tmp_path / "request")
    finish_py_client(client, out)
    record = server.next_connection()
    capture = tap.stop()

    assert record.received_sha256 == hashlib.sha256(request).hexdigest()
    client_side, server_side = assert_exchange(capture, server, record, client.pid, comm="python3",
                                               exe=real_exe(PYTHON), egress_functions=PY_EGRESS,
                                               ingress_functions=PY_INGRESS)
    for side, stream in (("client egress", client_side.egress), ("server ingress", server_side.ingress)):
        assert hashlib.sha256(stream.data).hexdigest() == hashlib.sha256(request).hexdigest(), side
    # One call, cut into consecutive full chunks and a remainder.
    chunks = client_side.egress.events
    assert {e["call_len"] for e in chunks} == {len(request)}
    assert [e["stream_offset"] for e in chunks] == list(range(0, len(request), CHUNK))
    assert [e["len"] for e in chunks] == [min(CHUNK, len(request) - o) for o in range(0, len(request), CHUNK)]
    assert len({e["tid"] for e in chunks}) == 1 and chunks[0]["tid"] == client.pid
