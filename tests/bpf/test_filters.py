"""--pid, --comm and --cgroup: traffic of other processes is not reported, the
chosen process's traffic is, whole."""
import ctypes
import json
import os
import re
import struct
import subprocess

import pytest

from harness import (CURL, PYTHON, PY_EGRESS, PY_INGRESS, TESTPROGS, assert_connection, cgroup2_mount,
                     finish_py_client, go, http_post, in_cgroup, pattern, read_response, real_exe, start_py_client,
                     kernel_has_uprobe_sessions, system_libssl)


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


TRACEFS = "/sys/kernel/tracing"  # conftest.py mounts it
SYS_BPF = {"x86_64": 321, "aarch64": 280}.get(os.uname().machine)
BPF_ENABLE_STATS = 32


def enable_bpf_stats():
    """Makes the kernel count each BPF program's runs while the returned fd stays open."""
    libc = ctypes.CDLL(None, use_errno=True)
    attr = ctypes.create_string_buffer(struct.pack("I", 0), 8)  # BPF_STATS_RUN_TIME
    fd = libc.syscall(SYS_BPF, BPF_ENABLE_STATS, attr, 4)
    assert fd >= 0, f"BPF_ENABLE_STATS: {os.strerror(ctypes.get_errno())}"
    return fd


def runs_of(program, owner):
    """How often process `owner`'s BPF program of that name has run."""
    ids = set()
    for fd in os.listdir(f"/proc/{owner}/fdinfo"):
        try:
            with open(f"/proc/{owner}/fdinfo/{fd}") as info:
                ids.update(int(line.split()[1]) for line in info if line.startswith("prog_id:"))
        except FileNotFoundError:
            pass
    shown = json.loads(subprocess.run(["bpftool", "prog", "show", "--json"], check=True,
                                      capture_output=True).stdout)
    return sum(p.get("run_cnt", 0) for p in shown if p["id"] in ids and p.get("name") == program)


def sites_in(tlstap_log, library, functions):
    """File offsets tlstap -v says it probed `functions` at in `library`: each file's site
    lines come before its "attached N probes to FILE" line."""
    sites, found = [], {}
    for line in tlstap_log:
        if m := re.search(r"^tlstap:   (\w+) .*at file offset (0x[0-9a-f]+):", line):
            sites.append((m[1], int(m[2], 16)))
        elif m := re.search(r"^tlstap: attached \d+ probes to (\S+) ", line):
            try:
                if os.path.samefile(m[1], library):
                    found = {offset for function, offset in sites if function in functions}
            except OSError:
                pass  # reached through a process that has exited since
            sites = []
    return found


class CountingUprobes:
    """The kernel's own uprobes (tracefs) on a file's offsets: an independent count of
    the calls there, from every process."""
    GROUP = f"tlstap_test_{os.getpid()}"

    def __init__(self, path, offsets):
        self.names = []  # uprobe_profile names events without their group: these are unique
        try:
            for offset in offsets:
                name = f"tlstap_test_{os.getpid()}_{offset:x}"
                self._define(f"p:{self.GROUP}/{name} {path}:{offset:#x}")
                self.names.append(name)
            self._enable(1)
        except BaseException:
            self.__exit__()
            raise

    @staticmethod
    def _define(line):
        # not open(..., "a"): Python seeks to the end, which tracefs refuses
        events = os.open(f"{TRACEFS}/uprobe_events", os.O_WRONLY | os.O_APPEND)
        try:
            os.write(events, f"{line}\n".encode())
        finally:
            os.close(events)

    def _enable(self, on):
        with open(f"{TRACEFS}/events/{self.GROUP}/enable", "w") as enable:
            enable.write(f"{on}\n")

    def hits(self):
        with open(f"{TRACEFS}/uprobe_profile") as profile:
            return sum(int(line.split()[-1]) for line in profile if line.split()[1] in self.names)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.names:
            self._enable(0)
        for name in self.names:
            self._define(f"-:{self.GROUP}/{name}")


def test_a_call_filtered_out_at_its_entry_takes_no_return_trap(procs, tlstap, server, cert, tmp_path):
    """On a kernel with uprobe sessions (6.13+) one program runs at the entry of libssl's internal
    write and read and, when the entry asks, at their return: a call of a process filtered out
    asks for none. Against the kernel's own count of those calls, the program runs once per call
    with a Python client and server filtered out and twice per call with both traced, and the
    exchange is captured whole; --no-uprobe-sessions goes back to an entry probe and a uretprobe."""
    if not kernel_has_uprobe_sessions() or not SYS_BPF:
        pytest.skip("the kernel has no uprobe sessions (Linux 6.13+), or this test does not know bpf()'s number here")
    request = tmp_path / "request"
    request.write_bytes(http_post(server.address, pattern(3000, "session")))
    library = system_libssl()
    runs, hits, captures = {}, {}, {}
    stats = enable_bpf_stats()
    try:
        for mode, args in (("filtered out", ("--comm", "nobody")), ("traced", ()),
                           ("no sessions", ("--no-uprobe-sessions",))):
            tap = tlstap("-v", *args)
            offsets = sites_in(tap.stderr.lines, library, ("ssl_write_internal", "ssl_read_internal"))
            assert len(offsets) == 2, f"{mode}: libssl's internal write and read not probed:\n" + \
                "\n".join(tap.stderr.lines)
            with CountingUprobes(library, offsets) as calls:
                before = (runs_of("openssl_internal_session", tap.proc.pid), calls.hits())
                client, out, local = start_py_client(procs, server.host, server.port, cert.cert, request)
                response = finish_py_client(client, out)
                record = server.next_connection()  # the server is done with the connection
                runs[mode] = runs_of("openssl_internal_session", tap.proc.pid) - before[0]
                hits[mode] = calls.hits() - before[1]
            captures[mode] = (tap.stop(), client.pid, local, record, response)
    finally:
        os.close(stats)

    assert hits["filtered out"] > 0 and runs["filtered out"] == hits["filtered out"], (runs, hits)
    assert runs["traced"] == 2 * hits["traced"], (runs, hits)
    assert runs["no sessions"] == 0 and hits["no sessions"] > 0, (runs, hits)
    for mode, placed in (("traced", "uprobe session"), ("no sessions", "uretprobe")):
        capture, pid, local, record, response = captures[mode]
        assert any(re.search(rf"ssl_write_internal {placed} at file offset", line) for line in capture.stderr), \
            f"{mode}: no '{placed}' on ssl_write_internal in tlstap -v's log"
        assert_connection(capture.connection(pid), comm="python3", exe=real_exe(PYTHON), local=local,
                          remote=server.address, role="client", egress=record.received, ingress=response,
                          egress_functions=PY_EGRESS, ingress_functions=PY_INGRESS)
    assert not captures["filtered out"][0].events
