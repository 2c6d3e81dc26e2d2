"""Overload: with a 1 MiB ring buffer and 64 MiB pushed through one connection as
fast as Python can, tlstap loses data, and accounts for every lost byte: captured +
dropped == sent, gap_before marks the holes, warnings say so while running. And a
TLS call a thread leaves without returning is counted, not taken for the next."""
import hashlib
import math
import os
import time

import pytest

from harness import CHUNK, TESTPROGS, assert_connection, go, http_post, start_py_client

FLOOD = 64 << 20
WRITE = 4 << 20  # each call emits 256 chunks at once: far more than 1 MiB of ring


def test_drops_are_accounted_exactly(procs, tlstap, server, cert, tmp_path):
    request = http_post(server.address, os.urandom(FLOOD))
    (tmp_path / "request").write_bytes(request)
    # The client never reads, so its only traffic is the flood; it is the only
    # traced process, so every drop counted is one of its bytes.
    client, out, local = start_py_client(procs, server.host, server.port, cert.cert, tmp_path / "request",
                                         "--wait-go", "--no-response", "--write-size", WRITE)
    tap = tlstap("--pid", client.pid, "--buffer-size", "1")
    go(client)
    assert out.next(120) == f'{{"sent": {len(request)}}}'
    record = server.next_connection(120)
    assert record.received_sha256 == hashlib.sha256(request).hexdigest()
    time.sleep(2.5)  # tlstap checks the counters once a second: let it report the final ones
    capture = tap.stop()

    assert {e["pid"] for e in capture.events} <= {client.pid}, "--pid filter leaked other processes"
    conn = capture.connection(client.pid)
    assert not conn.ingress.events
    assert (conn.local, conn.remote) == (local, server.address)
    assert conn.field_values("comm") == {"python3"} and conn.field_values("role") == {"client"}
    for e in conn.egress.events:  # what was captured is exact, at the right offset
        assert e["payload"] == request[e["stream_offset"]:e["stream_offset"] + e["len"]], e["stream_offset"]

    dropped = capture.summary["dropped"]
    lost_events = dropped["ring_buffer_full"][0] + dropped["unreadable_memory"][0]
    lost_bytes = dropped["ring_buffer_full"][1] + dropped["unreadable_memory"][1]
    assert lost_bytes > 0, "no drops with a 1 MiB ring: is --buffer-size applied?"
    captured = conn.egress.captured_bytes
    assert captured + lost_bytes == len(request), (captured, lost_bytes, len(request))
    calls = [min(WRITE, len(request) - o) for o in range(0, len(request), WRITE)]
    assert len(conn.egress.events) + lost_events == sum(math.ceil(c / CHUNK) for c in calls)

    # Holes inside the stream carry gap_before; only a lost tail has no later chunk to carry it.
    end = 0
    for e in conn.egress.events:
        assert e.get("gap_before", 0) == e["stream_offset"] - end, e["stream_offset"]
        end = e["stream_offset"] + e["len"]
    assert sum(length for _, length in conn.egress.gaps) + (len(request) - end) == lost_bytes

    # Reported while running too, and the last report equals the final count.
    warnings = [line for line in capture.stderr if line.startswith("tlstap: warning: data lost so far: ")]
    summary = next(line for line in capture.stderr if line.startswith("tlstap: summary: "))
    assert warnings, "drops were never reported while running"
    assert warnings[-1].split("so far: ")[1] == summary.split("dropped: ")[1].split("; ")[0]


@pytest.mark.parametrize("mode", ["abandon-deeper", "request-deeper"])
def test_call_left_by_longjmp_is_counted_and_the_next_is_captured(procs, tlstap, server, cert, tmp_path, mode):
    """A thread leaves SSL_read by longjmp (its return never comes), then makes an
    HTTPS request: that request and its response are captured whole, and the
    abandoned call is counted as return_unseen. The request's calls run above the
    abandoned one's frame (abandon-deeper), or below it, where only its return
    address, gone from the stack, tells them from calls nested in it."""
    exe = tmp_path / "abandoned_read"
    procs.run(["cc", "-O1", "-o", exe, TESTPROGS / "openssl" / "abandoned_read.c", "-lssl", "-lcrypto"])
    tap = tlstap("--comm", "abandoned_read")
    client = procs.run([exe, server.host, str(server.port), cert.cert, "/after-longjmp", mode])
    record = server.next_connection()
    capture = tap.stop(return_unseen=1)

    assert_connection(capture.connection(client.pid), comm="abandoned_read", exe=str(exe), local=record.peer,
                      remote=server.address, role="client", egress=record.received, ingress=record.sent,
                      egress_functions=("SSL_write",), ingress_functions=("SSL_read",))
    assert client.stdout == record.sent
