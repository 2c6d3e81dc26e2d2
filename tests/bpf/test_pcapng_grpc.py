"""gRPC (grpc-go over TLS, client and server both traced) in tlstap's default
pcapng: tshark shows the method, the gRPC content type and status, with no
option set."""
import subprocess

from harness import Tlstap
from test_pcapng import fields

METHOD = "/grpc.health.v1.Health/Check"


def test_grpc_method_and_status_dissected(procs, cert, tmp_path, health):
    server = procs.start([health, "server", cert.cert, cert.key], stdout=subprocess.PIPE)
    first = server.stdout.readline().decode()
    assert first.startswith("listening "), f"health server said {first!r}"
    port = int(first.split()[1])

    pcap = tmp_path / "grpc.pcapng"
    tap = Tlstap(procs, tmp_path / "grpc.json", ["-w", pcap])
    client = procs.start([health, "client", f"127.0.0.1:{port}", "tlstap"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    # Client and server are one executable, attached through the running server before "ready".
    out, _ = client.communicate(b"go\n", timeout=60)
    assert client.returncode == 0 and out == b"SERVING\n", out
    capture = tap.stop()

    # Both processes were captured as Go, each byte exported once.
    assert {e["library"] for e in capture.of_pid(client.pid)} == {"go"}
    assert {e["library"] for e in capture.of_pid(server.pid)} == {"go"}
    port_filter = f"exported_pdu.src_port == {port} or exported_pdu.dst_port == {port}"
    rows = fields(procs, pcap, ["frame.protocols", "http2.header.name", "http2.header.value"], port_filter)
    headers = [dict(zip(names.split(","), values.split(","))) for _, names, values in rows if names]
    requests = [h for h in headers if h.get(":path") == METHOD]
    assert len(requests) == 1, headers
    assert requests[0][":method"] == "POST" and requests[0]["content-type"] == "application/grpc", requests[0]
    assert any(h.get("grpc-status") == "0" for h in headers), headers
    assert any("grpc" in protocols.split(":") for protocols, _, _ in rows), rows
