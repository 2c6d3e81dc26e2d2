"""Processes are captured whenever they start: right after tlstap is ready, from
their very first TLS call (Node, whose OpenSSL is inside its own executable, once
tlstap has attached to it on exec), or already running with connections open;
and their exe is right even when tlstap reads their events after they exited."""
import base64
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from harness import (CURL, NODE, NODE_ENV, PYTHON, PY_EGRESS, PY_INGRESS, TESTPROGS, LineReader, RUN_TIMEOUT,
                     PrivateLibsslClient, assert_bytes_equal, assert_connection, assert_exchange, attached_in,
                     copy_with_interpreter,
                     finish_py_client, go, http_body, http_post, interpreter_of, pattern, read_response, real_exe,
                     start_py_client, summarize, system_libssl)


def assert_first_call_captured(conn, request_line):
    first = conn.egress.events[0]
    assert first["stream_offset"] == 0 and first["payload"].startswith(request_line), first


def assert_private_client_captured(client, tap, server, *log_lines, exe=real_exe(PYTHON)):
    """Waits for `log_lines` in tlstap's log, then for it to attach the
    PrivateLibsslClient's libssl copy; lets the client send, and checks that
    the capture holds its exchange whole. Returns the capture."""
    try:
        for line in log_lines:
            tap.stderr.wait_for(line, timeout=10)
        tap.stderr.wait_for(client.attached(), timeout=30)
        response = client.finish()
    finally:
        client.kill()
    record = server.next_connection()
    capture = tap.stop()
    assert response == record.sent
    assert_connection(capture.connection(client.proc.pid), comm="python3", exe=exe, local=record.peer,
                      remote=server.address, role="client", egress=record.received, ingress=record.sent,
                      egress_functions=PY_EGRESS, ingress_functions=PY_INGRESS)
    return capture


def run_client(procs, client, server, cert, path):
    if client == "curl":
        return procs.run([CURL, "-sS", "--http1.1", "--cacert", cert.cert, server.url(path)])
    return procs.run([NODE, TESTPROGS / "https_client.js", server.url(path), cert.cert], env=NODE_ENV)


EXES = {"curl": CURL, "node": real_exe(NODE)}


@pytest.mark.parametrize("client", ["curl", "node"])
def test_started_after_ready(procs, tlstap, server, cert, client):
    tap = tlstap()
    # curl's first call comes at once: libssl.so is attached before ready. Node's
    # OpenSSL is attached when tlstap sees its exec (see NODE_ENV for the delay).
    run = run_client(procs, client, server, cert, "/first")
    record = server.next_connection()
    capture = tap.stop()

    assert run.stdout == http_body(record.sent)
    conn, _ = assert_exchange(capture, server, record, run.pid, comm=client, exe=EXES[client],
                              egress_functions=("SSL_write",), ingress_functions=("SSL_read",))
    assert_first_call_captured(conn, b"GET /first HTTP/1.1\r\n")


def test_running_before_tlstap(procs, tlstap, server, cert, tmp_path):
    request = http_post(server.address, pattern(40_000, "early"))
    (tmp_path / "request").write_bytes(request)
    # A Python client whose TLS connection is already established, and a Node
    # process whose static OpenSSL nothing has attached to yet. Both stay alive
    # (like the services tlstap usually joins) until the capture ends.
    client, out, local = start_py_client(procs, server.host, server.port, cert.cert, tmp_path / "request",
                                         "--wait-go", "--linger")
    node = procs.start([NODE, TESTPROGS / "https_client.js", server.url("/early-node"), cert.cert],
                       env={**os.environ, "WAIT_GO": "1"}, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    node_out = LineReader(node.stdout)
    assert node_out.next(RUN_TIMEOUT) == "waiting"
    tap = tlstap()

    go(client)
    response = read_response(out)
    py_record = server.next_connection()
    go(node)
    node_record = server.next_connection()
    node_out.wait_for(http_body(node_record.sent), RUN_TIMEOUT)
    capture = tap.stop()

    assert (py_record.peer, py_record.received, py_record.sent) == (local, request, response)
    # Roles of a connection opened before tlstap come from the listening sockets.
    py_side = capture.connection(client.pid)
    assert_connection(py_side, comm="python3", exe=real_exe(PYTHON), local=local, remote=server.address,
                      role="client", egress=request, ingress=response,
                      egress_functions=PY_EGRESS, ingress_functions=PY_INGRESS)
    assert_first_call_captured(py_side, b"POST /upload HTTP/1.1\r\n")
    server_side = capture.connection(server.pid, remote=local)
    assert server_side.field_values("role") == {"server"} and server_side.local == server.address
    assert_bytes_equal(server_side.egress.data, response, "server egress")
    # The server thread was already blocked inside SSL_read_ex when the probes
    # were attached; a uretprobe cannot see that call return, so at most that
    # first record (16 KiB) is missing. Everything after it must be there.
    captured = server_side.ingress.data
    assert request.endswith(captured) and len(captured) >= len(request) - 16384, len(captured)

    node_side, _ = assert_exchange(capture, server, node_record, node.pid, comm="node", exe=real_exe(NODE),
                                   egress_functions=("SSL_write",), ingress_functions=("SSL_read",))
    assert_first_call_captured(node_side, b"GET /early-node HTTP/1.1\r\n")


# python3 -c IMPORT_LATER tls_client.py ARGS...: tls_client.py, once a line on stdin lets it import ssl.
IMPORT_LATER = "import runpy, sys; sys.stdin.readline(); sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"


def test_library_loaded_after_the_process_was_looked_at(procs, tlstap, server, cert, tmp_path):
    """A process running before tlstap, looked at when tlstap started, loads a libssl of its own
    only later (import ssl): the loader's report makes tlstap look at the
    process again, and the new library is attached though the files it had
    looked at already are not looked at again."""
    client = PrivateLibsslClient(tmp_path, server, cert, b"from a libssl loaded after tlstap looked")
    client.spawn(procs, wrap=lambda argv: [argv[0], "-c", IMPORT_LATER, *argv[1:]])
    tap = tlstap()
    go(client.proc)  # import ssl: the loader maps the libssl copy
    client.wait_connected()
    assert_private_client_captured(client, tap, server)


def test_a_program_whose_loader_is_not_probed_yet_is_looked_at_on_its_exec(procs, tlstap, server, cert, tmp_path):
    """A program the kernel starts with a dynamic loader tlstap has not probed
    (here a copy of ld.so, as a new container image brings one): its exec
    wakes tlstap, which looks at the process at once and probes that loader,
    whose reports then lead tlstap to the libssl copy the program loads. A
    program whose loader is probed is looked at once the loader reports its
    libraries; its exec wakes no one."""
    # Short enough for python3's PT_INTERP (/lib64/ld-linux-x86-64.so.2): pytest's tmp_path is not.
    loader_dir = tempfile.mkdtemp(prefix="tlstap", dir="/tmp")
    try:
        loader = os.path.join(loader_dir, "ld.so")
        shutil.copy2(interpreter_of(real_exe(PYTHON)), loader)
        python = tmp_path / "python3"
        copy_with_interpreter(real_exe(PYTHON), python, loader)
        tap = tlstap("-v")
        ordinary = procs.run([PYTHON, "-c", "pass"])
        client = PrivateLibsslClient(tmp_path, server, cert, b"through a loader probed at its exec")
        client.start(procs, wrap=lambda argv: [python, *argv[1:]])
        assert_private_client_captured(client, tap, server, exe=str(python))
    finally:
        shutil.rmtree(loader_dir)
    execs = [line for line in tap.stderr.lines if "exec'd" in line]
    assert f"[{ordinary.pid}] exec'd {PYTHON}; its loader reports files not looked at yet" in "\n".join(execs)
    assert [line for line in execs if f"[{client.proc.pid}]" in line] == [
        f"tlstap: python3[{client.proc.pid}] exec'd {python}"], execs  # looked at at once


# python3 -c LOAD_ONE_LIBRARY LIB: says it is ready, loads LIB after a line on stdin, says so, waits for another.
LOAD_ONE_LIBRARY = ("import ctypes, sys; print('ready', flush=True); sys.stdin.readline(); ctypes.CDLL(sys.argv[1]); "
                    "print('loaded', flush=True); sys.stdin.readline()")


def load_and_exit(loader, out, tap, library):
    """Lets a LOAD_ONE_LIBRARY or LOAD_UNLOAD_LOAD process load `library`,
    waits for tlstap to attach it in that process, and lets the process end."""
    go(loader)
    assert out.next(RUN_TIMEOUT) == "loaded"
    tap.stderr.wait_for(attached_in(loader.pid, library), timeout=30)
    go(loader)
    loader.wait(RUN_TIMEOUT)


def test_a_library_load_is_reported_once(procs, tlstap, tmp_path):
    """The dynamic loader calls its debuggers' hook twice for a dlopen: before
    it maps anything, and once the libraries are in place. tlstap's probe
    reads the loader's state and reports only the second: one look at the
    process per load, which finds the library mapped."""
    library = tmp_path / "libssl-copy.so.3"
    shutil.copy2(system_libssl(), library)
    loader = procs.start([PYTHON, "-c", LOAD_ONE_LIBRARY, library], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    out = LineReader(loader.stdout)
    assert out.next(RUN_TIMEOUT) == "ready"  # its own start-up loads are over
    tap = tlstap("-v")
    load_and_exit(loader, out, tap, library)
    tap.stop()

    reports = [line for line in tap.stderr.lines if f"[{loader.pid}] loaded or unloaded libraries" in line]
    assert len(reports) == 1, reports


def test_a_start_with_every_file_looked_at_wakes_no_one(procs, tlstap):
    """A program whose executable and libraries tlstap has all looked at
    (python3: the test runner is one) starts without a loader's report: the
    kernel knows those files, and tlstap has nothing to look at."""
    tap = tlstap("-v")
    procs.run([PYTHON, "-c", "pass"])
    again = procs.run([PYTHON, "-c", "pass"])
    tap.stderr.wait_for(f"[{again.pid}] exec'd".encode(), timeout=10)  # read at the next poll: it wakes no one
    tap.stop()
    assert not [line for line in tap.stderr.lines if f"[{again.pid}] loaded or unloaded libraries" in line]


# A static C program that waits for a line on stdin: no interpreter, no TLS.
STATIC_WAITER = b"#include <unistd.h>\nint main(void) { char c; return read(0, &c, 1) < 0; }\n"


def build_static_waiter(procs, program):
    procs.run(["gcc", "-static", "-O2", "-x", "c", "-", "-o", program], input=STATIC_WAITER)


def test_a_static_program_looked_at_already_wakes_no_one(procs, tlstap, tmp_path):
    """A static program has no loader to report what it maps: its exec wakes
    tlstap to look at it, unless tlstap has looked at its file already and
    found it without TLS (the kernel knows the file then), when its start
    wakes no one. A copy of it, another file, is looked at on its exec."""
    program, copy = tmp_path / "static-waiter", tmp_path / "static-waiter-copy"
    build_static_waiter(procs, program)
    shutil.copy2(program, copy)
    running = procs.start([program], stdin=subprocess.PIPE)
    tap = tlstap("-v")  # looks at every running process before it is ready
    again = procs.start([program], stdin=subprocess.PIPE)
    other = procs.start([copy], stdin=subprocess.PIPE)
    tap.stderr.wait_for(f"[{again.pid}] exec'd {program}, a static program looked at already".encode(), timeout=10)
    tap.stderr.wait_for(f"[{other.pid}] exec'd {copy}\n".encode(), timeout=10)
    for proc in (running, again, other):
        go(proc)
        proc.wait(RUN_TIMEOUT)
    tap.stop()


def test_a_program_gone_before_it_is_looked_at_is_known_at_its_next_start(procs, tlstap, tmp_path):
    """A short-lived program may be gone by the time tlstap reads its exec
    (here tlstap is stopped meanwhile): tlstap looks at its file through the
    path it was started by, so that its next start finds it known (a static
    program without TLS, which then wakes no one; a Go program, attached)."""
    program = tmp_path / "static-waiter"
    build_static_waiter(procs, program)
    tap = tlstap("-v")
    os.kill(tap.proc.pid, signal.SIGSTOP)
    try:
        procs.run([program])  # its stdin is empty: it ends at once
    finally:
        os.kill(tap.proc.pid, signal.SIGCONT)
    tap.stderr.wait_for(f"{program}: its process was gone before it was looked at; the file looked at: nothing to "
                        f"attach".encode(), timeout=10)
    again = procs.run([program])
    tap.stderr.wait_for(f"[{again.pid}] exec'd {program}, a static program looked at already".encode(), timeout=10)
    tap.stop()


# python3 -c LOAD_UNLOAD_LOAD LIB: after a line on stdin loads and unloads LIB, says so; after another loads it again.
LOAD_UNLOAD_LOAD = ("import ctypes, _ctypes, sys; print('ready', flush=True); sys.stdin.readline(); "
                    "_ctypes.dlclose(ctypes.CDLL(sys.argv[1])._handle); print('unloaded', flush=True); "
                    "sys.stdin.readline(); ctypes.CDLL(sys.argv[1]); print('loaded', flush=True); sys.stdin.readline()")


def test_a_known_file_changed_in_place_is_looked_at_again(procs, tlstap, tmp_path):
    """The kernel knows a file tlstap looked at by its inode and its change
    time: a library found without TLS, unloaded, rewritten in place (here with
    libssl's bytes) and loaded again by the same process, is reported and
    attached. The unload is reported too, so that tlstap forgets the mapping."""
    library = tmp_path / "libchanging.so"
    shutil.copy2(os.path.join(os.path.dirname(system_libssl()), "libz.so.1"), library)
    tap = tlstap("-v")
    loader = procs.start([PYTHON, "-c", LOAD_UNLOAD_LOAD, library], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    out = LineReader(loader.stdout)
    assert out.next(RUN_TIMEOUT) == "ready"
    go(loader)
    assert out.next(RUN_TIMEOUT) == "unloaded"
    report = rf"\[{loader.pid}\] loaded or unloaded libraries".encode()
    tap.stderr.wait_for(re.compile(report + rb"(.|\n)*" + report), timeout=10)
    # tlstap looks at a process after reading the events at hand: once a later exec is read, it has.
    marker = procs.run([PYTHON, "-c", "pass"])
    tap.stderr.wait_for(f"[{marker.pid}] exec'd".encode(), timeout=10)
    library.write_bytes(Path(system_libssl()).read_bytes())  # the same inode
    load_and_exit(loader, out, tap, library)
    tap.stop()


# python3 -c LOAD_IN_NEW_NAMESPACE LIB: dlmopen(LM_ID_NEWLM, LIB, RTLD_NOW), says so, waits for a line on stdin.
LOAD_IN_NEW_NAMESPACE = ("import ctypes, os, sys; libc = ctypes.CDLL(None); libc.dlmopen.restype = ctypes.c_void_p; "
                         "libc.dlmopen.argtypes = [ctypes.c_long, ctypes.c_char_p, ctypes.c_int]; "
                         "assert libc.dlmopen(-1, os.fsencode(sys.argv[1]), 2); print('loaded', flush=True); "
                         "sys.stdin.readline()")


def test_a_library_loaded_into_another_namespace_is_attached(procs, tlstap, tmp_path):
    """dlmopen loads a library into a link-map namespace of its own, which the
    loader's rendezvous lists apart from the first: the kernel, which walks
    only the first to tell whether tlstap knows every object, reports the load."""
    library = tmp_path / "libssl-namespace.so.3"
    shutil.copy2(system_libssl(), library)
    tap = tlstap("-v")
    loader = procs.start([PYTHON, "-c", LOAD_IN_NEW_NAMESPACE, library], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    assert LineReader(loader.stdout).next(RUN_TIMEOUT) == "loaded"
    tap.stderr.wait_for(attached_in(loader.pid, library), timeout=30)
    go(loader)
    loader.wait(RUN_TIMEOUT)
    tap.stop()


class Paused:
    """tlstap stopped (SIGSTOP) for a while: a consumer lagging behind, as under load.
    Its probes keep firing; it reads the events only after the processes are gone."""

    def __init__(self, tap):
        self.tap = tap

    def __enter__(self):
        self.tap.proc.send_signal(signal.SIGSTOP)

    def __exit__(self, *exc):
        self.tap.proc.send_signal(signal.SIGCONT)


def test_exe_of_process_gone_before_tlstap_reads(procs, tlstap, server, cert):
    tap = tlstap()
    with Paused(tap):
        run = run_client(procs, "curl", server, cert, "/short")
        record = server.next_connection()
    capture = tap.stop()
    assert_exchange(capture, server, record, run.pid, comm="curl", exe=CURL,
                    egress_functions=("SSL_write",), ingress_functions=("SSL_read",))


@pytest.mark.parametrize("started", ["before-tlstap", "via-symlink"])
def test_exe_of_python_gone_before_tlstap_reads(procs, tlstap, server, cert, tmp_path, started):
    """Whenever tlstap reads the events, exe is the same canonical path."""
    (tmp_path / "request").write_bytes(http_post(server.address, pattern(100, "short-lived")))
    if started == "before-tlstap":
        client, out, _ = start_py_client(procs, server.host, server.port, cert.cert, tmp_path / "request",
                                         "--wait-go")
        tap = tlstap()
        with Paused(tap):
            go(client)
            finish_py_client(client, out)
            record = server.next_connection()
        pid = client.pid
    else:
        tap = tlstap()
        with Paused(tap):  # started as /usr/bin/python3, a symlink to python3.X
            pid = procs.run([PYTHON, TESTPROGS / "urllib_client.py", server.url("/short"), cert.cert]).pid
            record = server.next_connection()
    capture = tap.stop()
    if started == "before-tlstap":
        # The server thread already sat in SSL_read when tlstap attached: that
        # call is not seen, and tlstap says so by flagging the old connection.
        client_events = capture.of_pid(pid)
        assert client_events, summarize(capture.events)
        assert {e["exe"] for e in client_events} == {real_exe(PYTHON)}
        assert all(e.get("opened_before_capture") for e in client_events)
        assert b"".join(base64.b64decode(e["data"]) for e in client_events if e["direction"] == "egress") \
            == record.received
        return
    assert_exchange(capture, server, record, pid, comm="python3", exe=real_exe(PYTHON),
                    egress_functions=PY_EGRESS, ingress_functions=PY_INGRESS)


def test_process_outlives_its_main_thread(procs, tlstap, server, cert, tmp_path):
    """The main thread leaves with pthread_exit and another thread goes on: the
    process is not gone. Its requests made well after (past the time tlstap
    keeps a dead process's state for its last events) are still its own, with
    the exe read while it was whole (/proc/PID/exe is unreadable once the
    leader is a zombie)."""
    exe = tmp_path / "leader_exits"
    procs.run(["cc", "-O1", "-o", exe, TESTPROGS / "openssl" / "leader_exits.c", "-lssl", "-lcrypto"])
    tap = tlstap("--comm", "leader_exits")
    responses = tmp_path / "responses"
    with open(responses, "wb") as out:
        client = procs.start([exe, server.host, str(server.port), cert.cert, "/after-leader"],
                             stdin=subprocess.PIPE, stdout=out, stderr=subprocess.PIPE)
    assert LineReader(client.stderr).next(RUN_TIMEOUT) == "leader gone"
    first = server.next_connection()
    time.sleep(3)  # tlstap forgets an exited process's state 2 s after its exit
    client.stdin.write(b"go\n")
    client.stdin.flush()
    second = server.next_connection()
    assert client.wait(RUN_TIMEOUT) == 0
    assert responses.read_bytes() == first.sent + second.sent
    capture = tap.stop()

    for record in (first, second):
        assert_connection(capture.connection(client.pid, local=record.peer), comm="leader_exits", exe=str(exe),
                          local=record.peer, remote=server.address, role="client", egress=record.received,
                          ingress=record.sent, egress_functions=("SSL_write",), ingress_functions=("SSL_read",))


def test_deleted_library_keeps_its_probes_while_mapped_then_loses_them(procs, tlstap, server, cert, tmp_path):
    """A library deleted from disk (a package upgrade, a container image removed)
    keeps its probes while a process still maps it, and loses them once none
    does: they held the file on disk. A new file at its path is attached afresh."""
    copy = tmp_path / "lib" / "libssl.so.3"
    copy.parent.mkdir()
    env = {**os.environ, "LD_LIBRARY_PATH": str(copy.parent)}
    tap = tlstap()
    runs = []
    for n in range(2):
        shutil.copy2(system_libssl(), copy)
        request = tmp_path / f"request{n}"
        request.write_bytes(http_post(server.address, pattern(2000 + n, f"deleted-{n}")))
        client, out, _ = start_py_client(procs, server.host, server.port, cert.cert, request, "--wait-go", env=env)
        where = f"/proc/{client.pid}/root{copy}"
        assert tap.stderr.wait_for(re.compile(rf"attached \d+ probes to {re.escape(where)} ".encode()), RUN_TIMEOUT)
        if n == 0:
            copy.unlink()  # while the client maps it
            time.sleep(6)  # tlstap looks for deleted files every 5 s
            assert not [line for line in tap.stderr.lines if "detached" in line], "detached while in use"
        go(client)
        finish_py_client(client, out)
        runs.append((client.pid, server.next_connection()))
        if n == 0:
            assert client.wait(RUN_TIMEOUT) == 0
            detached = re.compile(rf"detached \d+ probes from {re.escape(where)}: deleted, and no process maps it".encode())
            assert tap.stderr.wait_for(detached, 30), "\n".join(tap.stderr.lines[-10:])
    capture = tap.stop()

    for pid, record in runs:
        assert_exchange(capture, server, record, pid, comm="python3", exe=real_exe(PYTHON),
                        egress_functions=PY_EGRESS, ingress_functions=PY_INGRESS)


@pytest.mark.parametrize("during_loss", ["started", "execd"])
def test_lost_process_events_are_recovered(procs, tlstap, server, cert, tmp_path, during_loss):
    """The control ring overflows (tlstap stopped while thousands of processes
    start). Meanwhile a client with a libssl copy of its own starts, or (execd)
    a shell tlstap knew from its start execs it: its exec and library events
    are lost. tlstap counts the loss, says so, looks at every running process
    again (the shell's pid anew), attaches that copy, and captures the exchange
    whole, its lines named by python3's exe, not the shell's."""
    client = PrivateLibsslClient(tmp_path, server, cert, f"{during_loss} while process events were lost".encode())
    if during_loss == "execd":
        client.spawn(procs, wrap=lambda argv: ["/bin/sh", "-c", 'read line && exec "$@"', "sh", *argv])
    tap = tlstap()
    tap.proc.send_signal(signal.SIGSTOP)
    try:
        # ~320 bytes per exec event: 3000 fill the 256 KiB ring three times over.
        procs.run(["sh", "-c", 'i=0; while [ $i -lt 3000 ]; do /bin/true; i=$((i+1)); done'], timeout=120)
        if during_loss == "execd":
            go(client.proc)  # the shell reads its line and execs the client
            client.wait_connected()
        else:
            client.start(procs)
    finally:
        tap.proc.send_signal(signal.SIGCONT)
    capture = assert_private_client_captured(
        client, tap, server, b"process events were lost: looking at every running process again")
    assert capture.summary["dropped"]["control_event_lost"][0] > 0
