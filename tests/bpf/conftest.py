"""Fixtures of the bpf tier: root check, a test certificate, process ownership, tlstap runs."""
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.register_assert_rewrite("harness")  # detailed assertion messages in the helpers too

from harness import OPENSSL, TESTPROGS, TLSTAP_BIN, ProcessGroup, Tlstap, TlsServer


@pytest.fixture(scope="session", autouse=True)
def environment():
    # CI runs this tier as root: not being root is a failure, never a skip.
    if os.geteuid() != 0:
        pytest.fail("the bpf tier must run as root (it loads BPF programs)", pytrace=False)
    if not os.access(TLSTAP_BIN, os.X_OK):
        pytest.fail(f"tlstap binary not found at {TLSTAP_BIN} (set TLSTAP_BIN)", pytrace=False)
    if subprocess.run(["mountpoint", "-q", "/sys/kernel/tracing"]).returncode != 0:
        subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"], check=True)


@dataclass
class Cert:
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def cert(tmp_path_factory):
    """Self-signed certificate valid for localhost, 127.0.0.1 and ::1."""
    directory = tmp_path_factory.mktemp("cert")
    cert = Cert(directory / "cert.pem", directory / "key.pem")
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
                    "-keyout", cert.key, "-out", cert.cert],
                   check=True, capture_output=True, timeout=30)
    return cert


@pytest.fixture
def procs():
    group = ProcessGroup()
    try:
        yield group
    finally:
        group.cleanup()


@pytest.fixture
def tlstap(procs, tmp_path):
    """Starts tlstap (JSON into a file under tmp_path) and waits until it is ready."""
    runs = []

    def start(*args, **popen_kwargs):
        runs.append(Tlstap(procs, tmp_path / f"tlstap-{len(runs)}.json", args, **popen_kwargs))
        return runs[-1]

    return start


@pytest.fixture
def server(procs, cert):
    """A Python TLS server on 127.0.0.1 with a response spanning several TLS records."""
    return TlsServer(procs, cert, response_padding=40000)


@pytest.fixture(scope="session")
def health(tmp_path_factory):
    """tests/testprogs/grpc/health, built once in GOPATH mode against Debian's grpc-go
    (golang-google-grpc-dev's sources): nothing is fetched."""
    directory = tmp_path_factory.mktemp("grpc")
    out = directory / "health"
    env = {**os.environ, "GO111MODULE": "off", "GOPROXY": "off", "GOFLAGS": "", "CGO_ENABLED": "0",
           "GOPATH": "/usr/share/gocode", "GOCACHE": str(directory / "gocache")}
    subprocess.run(["/usr/lib/go-1.19/bin/go", "build", "-o", out, TESTPROGS / "grpc" / "health" / "main.go"],
                   env=env, check=True, timeout=300)
    return out
