"""OpenSSL 3 linked statically into an executable (Debian's libssl.a and libcrypto.a), with its
symbols and stripped of every one: tests/testprogs/boringssl/bssl_echo.c as client and server
over loopback, moving its bytes with SSL_write/SSL_read, or (-DECHO_EX_CALLS) with their _ex
twins. Without symbols tlstap locates the four functions by the names OpenSSL's error records
keep (src/tls/openssl_locator.h); it must capture the same bytes, with the same process,
addresses, role and function names, as from the build that has symbols."""
import re
import subprocess

import pytest

from harness import RUN_TIMEOUT, TESTPROGS, assert_connection, kernel_has_uprobe_sessions, pattern, summarize
from test_boringssl import exchange, wait_attached

SOURCE = TESTPROGS / "boringssl" / "bssl_echo.c"
ARCHIVES = ["/usr/lib/x86_64-linux-gnu/libssl.a", "/usr/lib/x86_64-linux-gnu/libcrypto.a"]
FUNCTIONS = {"plain": (("SSL_write",), ("SSL_read",)), "ex": (("SSL_write_ex",), ("SSL_read_ex",))}


@pytest.fixture(scope="module", params=["symbols", "stripped"])
def symbols(request):
    return request.param


@pytest.fixture(scope="module", params=["plain", "ex"])
def calls(request):
    return request.param


@pytest.fixture(scope="module")
def echo(tmp_path_factory, symbols, calls):
    exe = tmp_path_factory.mktemp(f"openssl-static-{symbols}-{calls}") / "bssl_echo"
    defines = ["-DECHO_EX_CALLS"] if calls == "ex" else []
    subprocess.run(["cc", "-O1", *defines, "-o", exe, SOURCE, *ARCHIVES, "-lpthread"], check=True,
                   timeout=RUN_TIMEOUT)
    if symbols == "stripped":
        subprocess.run(["strip", "--strip-all", exe], check=True, timeout=RUN_TIMEOUT)
    listed = subprocess.run(["nm", exe], capture_output=True, text=True).stdout
    assert ("SSL_read" in listed) == (symbols == "symbols"), listed[:200]
    linked = subprocess.run(["ldd", exe], check=True, capture_output=True, text=True).stdout
    assert "libssl" not in linked and "libcrypto" not in linked, linked
    return str(exe)


def test_static_openssl_with_and_without_symbols(procs, tlstap, cert, tmp_path, echo, symbols, calls):
    request = b"GET /static-openssl HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    response = pattern(40000, f"static-openssl-{symbols}-{calls}")  # several records and SSL_read calls
    tap = tlstap("--comm", "bssl_echo")
    server_pid, client_pid, client_address, server_address = exchange(
        procs, echo, cert, tmp_path, request, response, lambda: wait_attached(tap, "static", echo))
    capture = tap.stop()

    writes, reads = FUNCTIONS[calls]
    for pid in (server_pid, client_pid):
        # The plain socket each side also uses carries no TLS.
        assert len(capture.connections(pid)) == 1, summarize(capture.of_pid(pid))
    assert_connection(capture.connection(client_pid), comm="bssl_echo", exe=echo, local=client_address,
                      remote=server_address, role="client", egress=request, ingress=response,
                      egress_functions=writes, ingress_functions=reads)
    assert_connection(capture.connection(server_pid), comm="bssl_echo", exe=echo, local=server_address,
                      remote=client_address, role="server", egress=response, ingress=request,
                      egress_functions=writes, ingress_functions=reads)

    # Both builds get the internal functions' probes (an entry and a return each, or one
    # session each); only the one with symbols has SSL_free's. The version banner is not
    # linked into either.
    attached = [line for line in capture.stderr
                if re.search(r"attached \d+ probes to /proc/\d+/root" + re.escape(echo) + " ", line)]
    assert attached, "\n".join(capture.stderr)
    internal = 2 if kernel_has_uprobe_sessions() else 4
    expected = (f"attached {internal} probes", "(openssl (version unknown); no symbols: functions located by "
                "their error records;") if symbols == "stripped" else (f"attached {internal + 1} probes",
                                                                      "(openssl (version unknown);")
    for line in attached:
        assert all(part in line for part in expected), line
