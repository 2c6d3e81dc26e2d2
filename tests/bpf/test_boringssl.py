"""BoringSSL under tlstap: tests/testprogs/boringssl/bssl_echo.c as client and server over
loopback, both directions byte for byte, the right process, addresses and role, library
"boringssl"; the plain TCP socket each side also uses is not reported. Each test runs twice:
linked against Debian's shared android-libboringssl, and with BoringSSL linked statically into
the executable (symbols kept), from the archives scripts/install-deps.sh builds out of Debian's
source of the same package."""
import hashlib
import os
import re
import subprocess

import pytest

from harness import RUN_TIMEOUT, TESTPROGS, assert_connection, pattern, summarize

BORINGSSL_LIB = "/usr/lib/x86_64-linux-gnu/android"
BORINGSSL_STATIC = "/opt/tlstap-testdeps/boringssl-static"
SOURCE = TESTPROGS / "boringssl" / "bssl_echo.c"
WRITE = ("SSL_write",)
# Other programs' TLS on this host can fill the ring during a 1 MiB exchange: trace ours only.
ONLY_OURS = ("--comm", "bssl_echo")
READ = ("SSL_read",)


@pytest.fixture(scope="session", params=["shared", "static"])
def linking(request):
    """How bssl_echo has its BoringSSL: Debian's shared libssl.so, or linked into the executable."""
    return request.param


@pytest.fixture(scope="session")
def bssl_echo(tmp_path_factory, linking):
    exe = tmp_path_factory.mktemp(f"boringssl-{linking}") / "bssl_echo"
    if linking == "shared":
        if not os.path.exists(f"{BORINGSSL_LIB}/libssl.so"):
            pytest.fail("android-libboringssl-dev is not installed (scripts/install-deps.sh)", pytrace=False)
        subprocess.run(["cc", "-O1", "-I/usr/include/android", "-o", exe, SOURCE, f"-L{BORINGSSL_LIB}",
                        f"-Wl,-rpath,{BORINGSSL_LIB}", "-lssl", "-lcrypto"], check=True, timeout=RUN_TIMEOUT)
    else:
        archives = [f"{BORINGSSL_STATIC}/lib/libssl.a", f"{BORINGSSL_STATIC}/lib/libcrypto.a"]
        if not all(os.path.exists(a) for a in archives):
            pytest.fail(f"static BoringSSL is not installed in {BORINGSSL_STATIC} (scripts/install-deps.sh)",
                        pytrace=False)
        # BoringSSL statically, libc dynamically; its libssl needs no C++ runtime (built without
        # exceptions and RTTI), so plain cc links it.
        subprocess.run(["cc", "-O1", f"-I{BORINGSSL_STATIC}/include", "-o", exe, SOURCE, *archives, "-lpthread"],
                       check=True, timeout=RUN_TIMEOUT)
        linked = subprocess.run(["ldd", exe], check=True, capture_output=True, text=True).stdout
        assert "libssl" not in linked and "libcrypto" not in linked, linked
    return str(exe)


def attach_line(linking, bssl_echo):
    """tlstap's "attached N probes to FILE (" line for the file bssl_echo's BoringSSL is in: the
    shared library, or the executable itself (logged through /proc/PID/root, once per run)."""
    where = r"\S+/android/libssl\.so" if linking == "shared" else r"/proc/\d+/root" + re.escape(bssl_echo)
    return rf"attached \d+ probes to {where} \("


def wait_attached(tap, linking, bssl_echo):
    """Debian's libssl.so is probed before tlstap is ready; an executable with BoringSSL inside
    once tlstap has seen it executed, a moment later (like Go's, test_go.py)."""
    if linking == "static":
        tap.stderr.wait_for(re.compile(attach_line(linking, bssl_echo).encode()), RUN_TIMEOUT)


def exchange(procs, bssl_echo, cert, tmp_path, request, response, server_started=lambda: None):
    """Runs one server and one client, the client once server_started() returned; returns
    (server pid, client pid, client's local address, server's address)."""
    (tmp_path / "request").write_bytes(request)
    (tmp_path / "response").write_bytes(response)
    server = procs.start([bssl_echo, "server", cert.cert, cert.key, len(request), tmp_path / "response"],
                         stdout=subprocess.PIPE, text=True)
    tls_port, plain_port = server.stdout.readline().split()
    server_started()  # the server makes no TLS call before the client connects
    client = procs.run([bssl_echo, "client", tls_port, plain_port, tmp_path / "request"])
    lines = dict(line.split(" ", 1) for line in client.stdout.decode().splitlines())
    assert int(lines["response_len"]) == len(response)
    server_out, _ = server.communicate(timeout=RUN_TIMEOUT)
    assert server.returncode == 0, f"bssl_echo server exited {server.returncode}"
    assert server_out.split() == ["peer", lines["local"]]
    return server.pid, client.pid, lines["local"], f"127.0.0.1:{tls_port}"


def assert_both_sides(capture, bssl_echo, server_pid, client_pid, client_address, server_address, request,
                      response):
    for pid in (server_pid, client_pid):
        events = capture.of_pid(pid)
        # One connection per process: the plain socket's bytes are not TLS.
        assert len(capture.connections(pid)) == 1, summarize(events)
        assert not any(b"plain" in e["payload"] for e in events), summarize(events)
    client = capture.connection(client_pid)
    server = capture.connection(server_pid)
    assert_connection(client, comm="bssl_echo", exe=bssl_echo, local=client_address, remote=server_address,
                      role="client", egress=request, ingress=response, egress_functions=WRITE,
                      ingress_functions=READ, library="boringssl")
    assert_connection(server, comm="bssl_echo", exe=bssl_echo, local=server_address, remote=client_address,
                      role="server", egress=response, ingress=request, egress_functions=WRITE,
                      ingress_functions=READ, library="boringssl")
    return client, server


def test_client_and_server(procs, tlstap, cert, tmp_path, bssl_echo, linking):
    request = b"GET /boringssl HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    response = pattern(40000, "boringssl-response")  # several TLS records, several SSL_read calls
    tap = tlstap(*ONLY_OURS)
    server_pid, client_pid, client_address, server_address = exchange(
        procs, bssl_echo, cert, tmp_path, request, response, lambda: wait_attached(tap, linking, bssl_echo))
    capture = tap.stop()

    client, _ = assert_both_sides(capture, bssl_echo, server_pid, client_pid, client_address, server_address,
                                  request, response)
    # The response was one SSL_write on the server and needed several SSL_read calls here.
    assert len({e["stream_offset"] for e in client.ingress.events}) > 1
    # Recognised as BoringSSL by its symbols, and never claimed by the OpenSSL adapter; a static
    # executable has no soname to name the build by.
    attached = [line for line in capture.stderr if re.search(attach_line(linking, bssl_echo), line)]
    described = "(boringssl (unversioned; soname " if linking == "shared" else "(boringssl (unversioned);"
    assert attached and all(described in line for line in attached), "\n".join(capture.stderr)


def test_one_mebibyte_each_way(procs, tlstap, cert, tmp_path, bssl_echo, linking):
    request = pattern((1 << 20) + 17, "boringssl-upload")
    response = pattern((1 << 20) + 5, "boringssl-download")
    tap = tlstap(*ONLY_OURS)
    server_pid, client_pid, client_address, server_address = exchange(
        procs, bssl_echo, cert, tmp_path, request, response, lambda: wait_attached(tap, linking, bssl_echo))
    capture = tap.stop()

    client, server = assert_both_sides(capture, bssl_echo, server_pid, client_pid, client_address,
                                       server_address, request, response)
    # One SSL_write call of the whole request, reported whole in 16 KiB chunks.
    assert {e["call_len"] for e in client.egress.events} == {len(request)}
    for captured, sent in ((client.egress.data, request), (server.ingress.data, request),
                           (server.egress.data, response), (client.ingress.data, response)):
        assert hashlib.sha256(captured).hexdigest() == hashlib.sha256(sent).hexdigest()
