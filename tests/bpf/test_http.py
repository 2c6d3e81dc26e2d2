"""The protocol layer on real traffic: curl (HTTP/1.1 and HTTP/2) against nginx
with both ends traced, one "http" line per exchange and side; `tlstap replay`
gives the same exchanges from the data lines; `tlstap top` shows them live.

Stopping a tlstap takes 10 to 30 s here (the kernel detaches its uprobes), so
one run captures the traffic of the whole module and the tests read it.
"""
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import (CURL, OPENSSL, RUN_TIMEOUT, TLSTAP_BIN, ProcessGroup, Tlstap, format_endpoint, pattern, read_screen,
                     real_exe, start_nginx, start_top)

ADDRESS = ("127.0.0.1", 8443)
SERVER = format_endpoint(*ADDRESS)
USER_AGENT = "tlstap-http-test"
SECRET = "Bearer sekrit-token-123"
MAX_BODY = 4096  # tlstap's default --max-body

NGINX_LOCATIONS = """
    location /static/ {{ root {dir}; }}
    location /gzip/ {{
      alias {dir}/static/;
      gzip on;
      gzip_types text/plain;
      gzip_min_length 1;
    }}
    location /echo {{
      client_body_buffer_size 1m;
      default_type text/plain;
      return 201 "created\\n";
    }}"""

def text_pattern(size, seed):
    """Printable and seed-specific: tlstap shows such bodies as text."""
    return pattern(size, seed).hex()[:size].encode()


FILES = {"page.txt": text_pattern(5000, "page"), "a.txt": b"first file\n", "b.txt": text_pattern(70000, "b"),
         "top.txt": b"top\n"}


@dataclass
class Run:
    capture: object  # harness.Capture
    output: Path  # tlstap's JSON lines
    nginx_pid: int
    curl: dict  # name -> (pid, stdout)
    post_body: bytes


def curl(procs, cert, *args):
    return procs.run([CURL, "-sS", "--cacert", cert.cert, "-A", USER_AGENT, *args])


def url(path):
    return f"https://{ADDRESS[0]}:{ADDRESS[1]}{path}"


def start_module_nginx(procs, directory, cert):
    static = directory / "static"
    static.mkdir()
    for name, content in FILES.items():
        (static / name).write_bytes(content)
    return start_nginx(procs, directory, cert, ADDRESS, NGINX_LOCATIONS.format(dir=directory))


@pytest.fixture(scope="module")
def run(tmp_path_factory, cert):
    directory = tmp_path_factory.mktemp("http")
    procs = ProcessGroup()
    try:
        nginx = start_module_nginx(procs, directory, cert)
        output = directory / "capture.json"
        tap = Tlstap(procs, output)
        done = {}
        done["h1"] = curl(procs, cert, "--http1.1", url("/static/page.txt"))
        done["h2"] = curl(procs, cert, "--http2", url("/static/a.txt"), url("/static/b.txt"))
        done["keepalive"] = curl(procs, cert, "--http1.1", url("/static/a.txt"), url("/static/missing"))
        done["gzip-h1"] = curl(procs, cert, "--http1.1", "--compressed", url("/gzip/page.txt"))
        done["gzip-h2"] = curl(procs, cert, "--http2", "--compressed", url("/gzip/b.txt"))
        post_body = text_pattern(3000, "post")
        (directory / "post").write_bytes(post_body)
        done["post"] = curl(procs, cert, "--http2", "-H", f"Authorization: {SECRET}", "--data-binary",
                            f"@{directory / 'post'}", url("/echo?x=1"))
        capture = tap.stop()
        yield Run(capture, output, nginx.pid, {k: (v.pid, v.stdout) for k, v in done.items()}, post_body)
    finally:
        procs.cleanup()


def one(exchanges, **fields):
    found = [x for x in exchanges if all(x.get(k) == v for k, v in fields.items())]
    assert len(found) == 1, f"expected one exchange with {fields}, found {len(found)} in {exchanges}"
    return found[0]


def assert_plausible_latency(x):
    assert 0 < x["latency_ns"] < 10 * 10**9, x


def test_http1_both_sides(run):
    pid, body = run.curl["h1"]
    assert body == FILES["page.txt"]
    client = one(run.capture.exchanges_of(pid), path="/static/page.txt")
    assert client["version"] == "1.1"
    assert (client["comm"], client["exe"], client["library"]) == ("curl", real_exe(CURL), "openssl")
    assert (client["role"], client["remote"]) == ("client", SERVER)
    assert (client["method"], client["authority"], client["status"]) == ("GET", SERVER, 200)
    assert client["request_headers"]["user-agent"] == USER_AGENT
    assert client["request_body_len"] == 0
    assert client["response_headers"]["content-length"] == "5000"
    assert client["response_body_len"] == 5000
    assert client["response_body"] == FILES["page.txt"][:MAX_BODY].decode()
    assert client["response_body_truncated"] is True
    assert_plausible_latency(client)

    server = one(run.capture.exchanges_of(run.nginx_pid), path="/static/page.txt")
    assert (server["comm"], server["role"], server["local"]) == ("nginx", "server", SERVER)
    assert server["remote"] == client["local"]
    assert (server["method"], server["status"], server["response_body_len"]) == ("GET", 200, 5000)
    assert_plausible_latency(server)
    # Writes are stamped when they start, reads when they return: the server's exchange lies
    # within the client's (the request is read after it began to be written, the response's
    # last byte written before it was read).
    assert client["ts"] <= server["ts"], (client["ts"], server["ts"])
    assert server["ts"] + server["latency_ns"] <= client["ts"] + client["latency_ns"], (client, server)


@pytest.mark.parametrize("name, version, file", [("gzip-h1", "1.1", "page.txt"), ("gzip-h2", "2", "b.txt")])
def test_compressed_bodies_are_shown_decoded(run, name, version, file):
    """nginx compresses (gzip on) what curl --compressed asks for: both ends'
    exchanges show the body decoded, its first --max-body bytes exactly, say
    so, and count the bytes as sent (chunked in HTTP/1.1, DATA frames in 2)."""
    pid, body = run.curl[name]
    assert body == FILES[file]  # as curl decoded it
    client = one(run.capture.exchanges_of(pid), path=f"/gzip/{file}")
    server = one(run.capture.exchanges_of(run.nginx_pid), path=f"/gzip/{file}", remote=client["local"])
    for x in (client, server):
        assert (x["version"], x["status"]) == (version, 200)
        assert x["response_headers"]["content-encoding"] == "gzip"
        assert x["response_body_decoded"] == "gzip"
        assert x["response_body"] == FILES[file][:MAX_BODY].decode()
        assert x["response_body_truncated"] is True
        assert "response_body_decode_error" not in x
    # The bytes as sent: fewer than the file's, the same at both ends.
    assert 0 < client["response_body_len"] == server["response_body_len"] < len(FILES[file])


def test_http2_streams_on_one_connection(run):
    pid, body = run.curl["h2"]
    assert body == FILES["a.txt"] + FILES["b.txt"]
    expected = [(1, "/static/a.txt", 200, len(FILES["a.txt"])), (3, "/static/b.txt", 200, len(FILES["b.txt"]))]
    client = run.capture.exchanges_of(pid)
    local = client[0]["local"]
    server = [x for x in run.capture.exchanges_of(run.nginx_pid) if x["remote"] == local]
    for side, role in ((client, "client"), (server, "server")):
        assert sorted((x["stream_id"], x["path"], x["status"], x["response_body_len"]) for x in side) == expected
        assert len({x["conn_id"] for x in side}) == 1, "both streams on one connection"
        for x in side:
            assert (x["version"], x["method"], x["authority"], x["role"]) == ("2", "GET", SERVER, role)
            assert x["request_headers"]["user-agent"] == USER_AGENT
            assert_plausible_latency(x)
        assert one(side, path="/static/a.txt")["response_body"] == FILES["a.txt"].decode()


def test_keepalive_requests_in_order_with_a_404(run):
    pid, _ = run.curl["keepalive"]
    exchanges = sorted(run.capture.exchanges_of(pid), key=lambda x: x["ts"])
    assert [(x["path"], x["status"]) for x in exchanges] == [("/static/a.txt", 200), ("/static/missing", 404)]
    assert exchanges[0]["conn_id"] == exchanges[1]["conn_id"], "curl reuses the connection"
    assert exchanges[0]["response_body"] == FILES["a.txt"].decode()


def test_post_body_and_masked_credentials(run):
    pid, body = run.curl["post"]
    assert body == b"created\n"
    for side in (pid, run.nginx_pid):
        x = one(run.capture.exchanges_of(side), path="/echo?x=1")
        assert (x["version"], x["method"], x["status"]) == ("2", "POST", 201)
        assert x["request_headers"]["content-length"] == str(len(run.post_body))
        assert x["response_body"] == "created\n"
        assert x["request_headers"]["authorization"] == f"<masked {len(SECRET)} bytes>"
    # nginx's `return` answers without reading the body and resets the stream
    # (NO_ERROR): what it read of the body depends on timing; curl sent it all.
    client = one(run.capture.exchanges_of(pid), path="/echo?x=1")
    assert client["request_body_len"] == len(run.post_body)
    assert client["request_body"] == run.post_body[:MAX_BODY].decode()
    assert "request_body_truncated" not in client  # 3000 bytes: all kept
    http_lines = [line for line in run.output.read_text().splitlines() if '"type":"http"' in line]
    assert not [line for line in http_lines if "sekrit" in line], "a credential leaked into an http line"


def live_exchanges(output, pid):
    """The http lines of `pid` tlstap has written so far."""
    records = [json.loads(line) for line in output.read_text().splitlines() if line.endswith("}")]
    return [r for r in records if r["type"] == "http" and r["pid"] == pid]


def test_connection_close_ends_a_body_read_until_close(procs, tlstap, tmp_path, cert):
    """openssl s_server -www answers HTTP/1.0 with no length and closes: the server's
    SSL_free ends the connection, so its exchange is complete while it still runs."""
    tap = tlstap()
    port = 8444
    server = procs.start([OPENSSL, "s_server", "-www", "-accept", f"127.0.0.1:{port}", "-cert", cert.cert,
                          "-key", cert.key, "-naccept", "5"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:  # until it listens
        client = procs.run([CURL, "-sS", "--cacert", cert.cert, "--http1.0", f"https://127.0.0.1:{port}/"],
                           check=False)
        if client.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert client.returncode == 0, client.stderr
    body = client.stdout
    assert body.startswith(b"<HTML>"), body[:100]

    exchanges = []
    while not exchanges and time.monotonic() < deadline:
        time.sleep(0.2)
        exchanges = live_exchanges(tap.output, server.pid)
    assert server.poll() is None, "s_server exited: the exchange would have ended with it"
    assert len(exchanges) == 1, f"no exchange of the running server yet: {exchanges}"
    x = exchanges[0]
    assert (x["method"], x["path"], x["version"], x["status"]) == ("GET", "/", "1.0", 200), x
    assert x["response_body_len"] == len(body), x
    assert "incomplete" not in x, x

    capture = tap.stop()
    assert capture.summary["closed"] >= 2, capture.summary  # curl's connection and the server's
    server_closes = [c for c in capture.closes if c["pid"] == server.pid]
    assert [c["conn_id"] for c in server_closes] == [x["conn_id"]], capture.closes
    # The close comes after the connection's last data, and replay ends the connection there too.
    server_data = [e for e in capture.events if e["pid"] == server.pid]
    assert server_data and max(e["ts"] for e in server_data) <= server_closes[0]["ts"]
    client_side = capture.exchanges_of(client.pid)
    assert [c["response_body_len"] for c in client_side] == [len(body)], client_side


def exchange_key(x):
    return (x["pid"], x["conn_id"], x.get("stream_id"), x.get("method"), x.get("path"), x.get("status"),
            x.get("request_body_len"), x.get("response_body_len"), x.get("latency_ns"), x["role"], x["local"],
            x["remote"])


def test_replay_gives_the_same_exchanges(run, tmp_path):
    out = tmp_path / "replayed.json"
    done = subprocess.run([TLSTAP_BIN, "replay", run.output, "-f", "json", "--events", "http", "-o", out],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    replayed = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(x["type"] == "http" for x in replayed), "--events http: no data lines"
    assert sorted(map(exchange_key, replayed)) == sorted(map(exchange_key, run.capture.exchanges))
    m = re.search(r"replay: (\d+) data records, (\d+) HTTP exchanges, 0 lines skipped", done.stderr)
    assert m and int(m.group(1)) == len(run.capture.events) and int(m.group(2)) == len(replayed), done.stderr


def test_replay_reports_bad_lines_and_keeps_going(run, tmp_path):
    lines = run.output.read_text().splitlines()
    broken = tmp_path / "broken.json"
    broken.write_text("\n".join(lines[:1] + ["{not json"] + lines[1:]) + "\n")
    done = subprocess.run([TLSTAP_BIN, "replay", broken, "--events", "http"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"tlstap: {broken}:2: skipped: not a JSON object" in done.stderr
    assert "1 lines skipped" in done.stderr
    missing = subprocess.run([TLSTAP_BIN, "replay", tmp_path / "nope.json"], capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode == 1
    assert f"cannot read {tmp_path / 'nope.json'}: No such file or directory" in missing.stderr


LATENCY = r"[0-9.]+(?:us|ms|s)"
LATENCY = r"[0-9.]+(?:us|ms|s)"


def test_top_shows_exchanges_live_and_quits_on_q(tmp_path, cert):
    procs = ProcessGroup()
    master = None
    try:
        nginx_dir = tmp_path / "nginx"
        nginx_dir.mkdir()
        start_module_nginx(procs, nginx_dir, cert)
        top, master = start_top(procs, "--comm", "curl")
        pids = [curl(procs, cert, "--http1.1", url("/static/top.txt")).pid for _ in range(3)]
        row = rf"curl\[{pids[-1]}\] +0\.1 +1 +0 +{LATENCY} +{LATENCY} +{LATENCY} GET {re.escape(SERVER)}/static/top.txt"
        screen = read_screen(master, row, 8)  # within the 10 s window: rate and latency shown
        assert "PROCESS" in screen and "P99" in screen
        os.write(master, b"q")
        assert top.wait(90) == 0
        rest = read_screen(master, r"tlstap: summary: .* (\d+) HTTP exchanges", 10)
        assert int(re.search(r"(\d+) HTTP exchanges", rest).group(1)) >= 3
    finally:
        if master is not None:
            os.close(master)
        procs.cleanup()
