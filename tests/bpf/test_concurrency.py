"""Many connections at once: eight client processes against one threaded server, and
six connections on one Node event loop. Every chunk lands on the right process and
connection, nothing is missing, nothing is duplicated."""
from harness import (NODE, NODE_ENV, PYTHON, PY_EGRESS, PY_INGRESS, TESTPROGS, assert_exchange, finish_py_client,
                     go, http_body, http_post, pattern, real_exe, start_py_client)

CLIENTS = 8
NODE_CONNECTIONS = 6


def test_concurrent_clients(procs, tlstap, server, cert, tmp_path):
    requests = []
    for i in range(CLIENTS):
        requests.append(http_post(server.address, pattern(30_000 + 1111 * i, f"client {i}"), path=f"/client{i}"))
        (tmp_path / f"request{i}").write_bytes(requests[i])
    tap = tlstap()
    # All connect first, then all send at once, in 4000-byte calls so writes interleave.
    clients = [start_py_client(procs, server.host, server.port, cert.cert, tmp_path / f"request{i}",
                               "--wait-go", "--write-size", "4000") for i in range(CLIENTS)]
    for proc, _, _ in clients:
        go(proc)
    responses = [finish_py_client(proc, out) for proc, out, _ in clients]
    records = {r.peer: r for r in (server.next_connection() for _ in range(CLIENTS))}
    capture = tap.stop()

    assert sorted(records) == sorted(local for _, _, local in clients)
    for (proc, _, local), request, response in zip(clients, requests, responses):
        record = records[local]
        assert (record.received, record.sent) == (request, response)
        client_side, server_side = assert_exchange(capture, server, record, proc.pid, comm="python3",
                                                   exe=real_exe(PYTHON), egress_functions=PY_EGRESS,
                                                   ingress_functions=PY_INGRESS)
        assert client_side.field_values("tid") == {proc.pid}
        # The server serves each connection on its own thread, not the main one.
        assert len(server_side.field_values("tid")) == 1 and server.pid not in server_side.field_values("tid")
    # Nothing beyond these connections from these processes.
    ours = {server.pid} | {proc.pid for proc, _, _ in clients}
    expected_bytes = 2 * sum(len(r) for r in requests) + 2 * sum(len(r) for r in responses)
    assert sum(e["len"] for e in capture.events if e["pid"] in ours) == expected_bytes
    assert len(capture.connections(server.pid)) == CLIENTS


def test_node_event_loop_connections(procs, tlstap, server, cert, tmp_path):
    """One Node thread drives several TLS connections through memory BIOs: each
    chunk must still land on the connection it belongs to."""
    (tmp_path / "body").write_bytes(pattern(20_000, "node parallel"))
    tap = tlstap()
    node = procs.run([NODE, TESTPROGS / "https_client.js", server.url("/parallel"), cert.cert, tmp_path / "body"],
                     env={**NODE_ENV, "PARALLEL": str(NODE_CONNECTIONS)})
    records = [server.next_connection() for _ in range(NODE_CONNECTIONS)]
    capture = tap.stop()

    bodies = sorted(http_body(r.received).split(b"\n", 1)[0] for r in records)
    assert bodies == sorted(f"request {i}".encode() for i in range(NODE_CONNECTIONS))
    assert len(capture.connections(node.pid)) == NODE_CONNECTIONS
    for record in records:
        assert_exchange(capture, server, record, node.pid, comm="node", exe=real_exe(NODE),
                        egress_functions=("SSL_write",), ingress_functions=("SSL_read",), sole=False)
