"""--pid, --comm and --cgroup: traffic of other processes is not reported, the
chosen process's traffic is, whole."""
import os
import re

from harness import (CURL, PYTHON, PY_EGRESS, PY_INGRESS, TESTPROGS, assert_connection, cgroup2_mount, go, http_post,
                     in_cgroup, pattern, read_response, real_exe, start_py_client)


def rewritten_code_kib(pid, library="libssl.so"):
    """KiB of the library's code that uprobes rewrote in the process: a breakpoint is
    planted by copy-on-write, which turns the page anonymous."""
    total, inside = 0, False
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if re.match(r"[0-9a-f]+-[0-9a-f]+ ", line):
                inside = fields[1] == "r-xp" and len(fields) >= 6 and library in fields[5]
            elif inside and fields[0] == "Anonymous:":
                total += int(fields[1])
    return total


def test_pid_filter(procs, tlstap, server, cert, tmp_path):
    clients = []
    for name in ("chosen", "other"):
        (tmp_path / name).write_bytes(http_post(server.address, pattern(20_000, name)))
        # --pid needs them running before tlstap; --linger keeps them up until the capture ends.
        clients.append(start_py_client(procs, server.host, server.port, cert.cert, tmp_path / name,
                                       "--wait-go", "--linger"))
    chosen, _, chosen_local = clients[0]
    tap = tlstap("--pid", chosen.pid)
    for proc, _, _ in clients:  # both talk at the same time
        go(proc)
    responses = [read_response(out) for _, out, _ in clients]
    server.next_connection(), server.next_connection()
    # --pid alone: the probes are planted in the chosen process only, so the other never traps.
    planted = [rewritten_code_kib(proc.pid) for proc, _, _ in clients]
    capture = tap.stop()

    assert planted[0] > 0 and planted[1] == 0, f"libssl code rewritten by probes, chosen/other: {planted} KiB"
    assert {e["pid"] for e in capture.events} == {chosen.pid}, "other processes leaked through --pid"
    assert_connection(capture.connection(chosen.pid), comm="python3", exe=real_exe(PYTHON), local=chosen_local,
                      remote=server.address, role="client", egress=(tmp_path / "chosen").read_bytes(),
                      ingress=responses[0], egress_functions=PY_EGRESS, ingress_functions=PY_INGRESS)


def test_comm_filter(procs, tlstap, server, cert, tmp_path):
    tap = tlstap("--comm", "curl")
    curl = procs.run([CURL, "-sS", "--http1.1", "--cacert", cert.cert, server.url("/by-comm")])
    curl_record = server.next_connection()
    procs.run([PYTHON, TESTPROGS / "urllib_client.py", server.url("/not-me"), cert.cert])
    server.next_connection()
    capture = tap.stop()

    assert {(e["pid"], e["comm"]) for e in capture.events} == {(curl.pid, "curl")}, \
        "processes with another comm leaked through --comm"
    assert_connection(capture.connection(curl.pid), comm="curl", exe=CURL, local=curl_record.peer,
                      remote=server.address, role="client", egress=curl_record.received, ingress=curl_record.sent,
                      egress_functions=("SSL_write",), ingress_functions=("SSL_read",))


def test_cgroup_filter(procs, tlstap, server, cert, tmp_path):
    """A container is a cgroup: --cgroup takes it as /proc/PID/cgroup names it and
    captures the processes in it and in its child cgroups, nothing else."""
    mount = cgroup2_mount()
    assert mount, "this test needs the cgroup v2 hierarchy (mounted on unified and hybrid hosts)"
    name = f"tlstap-test-{os.getpid()}"
    outer = os.path.join(mount, name)
    inner = os.path.join(outer, "inner")
    os.makedirs(inner)
    try:
        tap = tlstap("--cgroup", f"/{name}")
        # The shell joins the child cgroup, then becomes curl: same pid.
        inside = procs.run(in_cgroup(inner, [CURL, "-sS", "--http1.1", "--cacert", cert.cert,
                                             server.url("/in-the-cgroup")]))
        inside_record = server.next_connection()
        procs.run([CURL, "-sS", "--http1.1", "--cacert", cert.cert, server.url("/outside")])
        server.next_connection()
        capture = tap.stop()
    finally:
        os.rmdir(inner)
        os.rmdir(outer)

    assert {(e["pid"], e["comm"]) for e in capture.events} == {(inside.pid, "curl")}, \
        "processes outside the cgroup leaked through --cgroup"
    assert_connection(capture.connection(inside.pid), comm="curl", exe=CURL, local=inside_record.peer,
                      remote=server.address, role="client", egress=inside_record.received,
                      ingress=inside_record.sent, egress_functions=("SSL_write",), ingress_functions=("SSL_read",))


def test_cgroup_and_comm_filters_combine(procs, tlstap, server, cert):
    """--comm chooses within --cgroup: a curl outside the cgroup stays out."""
    mount = cgroup2_mount()
    name = f"tlstap-test-{os.getpid()}-comm"
    directory = os.path.join(mount, name)
    os.makedirs(directory)
    try:
        tap = tlstap("--cgroup", directory, "--comm", "curl")
        procs.run([CURL, "-sS", "--http1.1", "--cacert", cert.cert, server.url("/outside")])
        server.next_connection()
        procs.run(in_cgroup(directory, [PYTHON, TESTPROGS / "urllib_client.py", server.url("/inside-not-curl"),
                                        cert.cert]))
        server.next_connection()
        inside = procs.run(in_cgroup(directory, [CURL, "-sS", "--http1.1", "--cacert", cert.cert,
                                                 server.url("/inside-curl")]))
        server.next_connection()
        capture = tap.stop()
    finally:
        os.rmdir(directory)

    assert {(e["pid"], e["comm"]) for e in capture.events} == {(inside.pid, "curl")}


# A thread that names itself, as gRPC's and many servers' threads do: its TLS
# calls belong to the process, for --comm and in the output.
NAMED_THREAD_CLIENT = """
import ctypes, ssl, sys, threading, urllib.request
def fetch():
    ctypes.CDLL(None).prctl(15, b"tls-worker", 0, 0, 0)  # PR_SET_NAME
    context = ssl.create_default_context(cafile=sys.argv[2])
    sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], context=context).read())
worker = threading.Thread(target=fetch)
worker.start()
worker.join()
"""


def test_comm_filter_matches_the_process_not_the_thread(procs, tlstap, server, cert):
    tap = tlstap("--comm", "python3")
    client = procs.run([PYTHON, "-c", NAMED_THREAD_CLIENT, server.url("/named-thread"), cert.cert])
    record = server.next_connection()
    capture = tap.stop()

    conn = capture.connection(client.pid)
    assert {e["tid"] for e in conn.events} != {client.pid}, "the calls should come from the worker thread"
    assert_connection(conn, comm="python3", exe=real_exe(PYTHON), local=record.peer, remote=server.address,
                      role="client", egress=record.received, ingress=record.sent, egress_functions=PY_EGRESS,
                      ingress_functions=PY_INGRESS)
