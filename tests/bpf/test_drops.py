"""Overload: with a 1 MiB ring buffer and 64 MiB pushed through one connection as
fast as Python can, tlstap loses data, and accounts for every lost byte: captured +
dropped == sent, gap_before marks the holes, warnings say so while running."""
import hashlib
import math
import os
import time

from harness import CHUNK, go, http_post, start_py_client

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
