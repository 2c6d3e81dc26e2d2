"""More TLS connections open at once than the kernel's table holds: the
kernel forgets the least recently used, and tlstap follows each on under its
first conn_uid, with its offsets continued, and says how often it did."""
import base64
import json
import re

from harness import PY_EGRESS, PY_INGRESS, PYTHON, TESTPROGS, assert_connection, real_exe, start_nginx

ADDRESS = ("127.0.0.1", 8445)
BODY = "a response from nginx\n"
CONNECTIONS, ROUNDS, TABLE = 24, 3, 16  # tlstap keeps twice TABLE itself


def forgotten_count(summary_lines):
    line = next(line for line in summary_lines if line.startswith("tlstap: summary:"))
    m = re.search(r"; (\d+) times the kernel's full table forgot a connection, followed on", line)
    return int(m.group(1)) if m else 0


def test_connections_the_kernel_forgets_are_followed_on(procs, tlstap, cert, tmp_path):
    """24 connections used in turns through a table of 16: each is forgotten
    before its next turn. Every connection comes out as one, under one
    conn_uid, its bytes whole and at their offsets; nothing is reported lost."""
    start_nginx(procs, tmp_path, cert, ADDRESS, f'    location / {{ return 200 "{BODY}"; }}')
    tap = tlstap("--max-connections", str(TABLE), "--comm", "python3")
    client = procs.run([PYTHON, TESTPROGS / "many_connections.py", "--port", str(ADDRESS[1]), "--cafile", cert.cert,
                        "--connections", str(CONNECTIONS), "--rounds", str(ROUNDS)])
    capture = tap.stop()

    records = [json.loads(line) for line in client.stdout.splitlines()]
    assert len(records) == CONNECTIONS
    assert len(capture.connections(client.pid)) == CONNECTIONS, "a connection was split in two"
    for record in records:
        connection = capture.connection(client.pid, local=record["local"])
        sent, received = (base64.b64decode(record[k]) for k in ("sent", "received"))
        assert_connection(connection, comm="python3", exe=real_exe(PYTHON), local=record["local"],
                          remote=f"{ADDRESS[0]}:{ADDRESS[1]}", role="client", egress=sent, ingress=received,
                          egress_functions=PY_EGRESS, ingress_functions=PY_INGRESS)
    # Closes come under the kernel's latest conn_uid: reported under the first.
    assert capture.closes and {c["conn_id"] for c in capture.closes} <= {c.conn_id for c in capture.connections(client.pid)}
    # Past the first round a strict LRU of TABLE forgets every connection
    # before its turn; the kernel's LRU is approximate: TABLE fewer are allowed.
    assert forgotten_count(capture.stderr) >= CONNECTIONS * (ROUNDS - 1) - TABLE, capture.stderr[-1]
    assert any("the kernel's connection table is full" in line for line in capture.stderr)
    # Its exchanges are whole: the HTTP layer followed each connection on too.
    paths = sorted(x["path"] for x in capture.exchanges_of(client.pid))
    assert paths == sorted(f"/round-{r}/connection-{c}" for r in range(ROUNDS) for c in range(CONNECTIONS))
    assert all(x["status"] == 200 and not x.get("incomplete") for x in capture.exchanges_of(client.pid))
