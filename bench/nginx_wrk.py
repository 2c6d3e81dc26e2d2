"""nginx (one process, TLS, 1 KiB body) in a temp prefix on a free loopback port,
loaded by wrk. nginx's access log records the plaintext bytes it sent and read
per request: the exact reference for what a capture of nginx must hold."""
import os
import re
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass

from benchlib import free_port, stop_group, wait_listening

NGINX = "/usr/sbin/nginx"
WRK = "/usr/bin/wrk"
BODY = "x" * 1023 + "\n"

# master_process off: the one process is the worker (comm "nginx"), run as is.
# The access log is buffered: one write per 256 KiB, not per request.
CONF = """
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 8192;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{
  log_format bench '$bytes_sent $request_length';
  access_log {dir}/access.log bench buffer=256k;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port} ssl backlog=4096;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location / {{
      default_type text/plain;
      return 200 "{body}";
    }}
  }}
}}
"""


@dataclass
class Served:
    """What nginx's access log says it did."""
    requests: int
    sent: int  # plaintext bytes written, headers included
    received: int  # plaintext bytes of the requests
    response_size: int  # the most common bytes_sent: every response is alike


class Nginx:
    """Context manager: a fresh nginx per run, so that each run's access log
    holds exactly that run's requests (flushed when nginx quits)."""

    def __init__(self, procs, directory, cert, key):
        self.procs, self.dir = procs, directory
        self.port = free_port()
        os.makedirs(directory, exist_ok=True)
        self.conf = os.path.join(directory, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(CONF.format(dir=directory, port=self.port, cert=cert, key=key, body=BODY.replace("\n", "\\n")))
        self.proc = None
        self.served = None

    def __enter__(self):
        self.proc = self.procs.start([NGINX, "-c", self.conf, "-p", self.dir, "-e", os.path.join(self.dir, "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(self.port, self.proc)
        return self

    def __exit__(self, *exc):
        stop_group(self.proc, signal.SIGQUIT)  # graceful: flushes the access log
        if exc[0] is None:
            self.served = self._read_access_log()

    def _read_access_log(self):
        path = os.path.join(self.dir, "access.log")
        sizes, sent, received, requests = Counter(), 0, 0, 0
        with open(path) as f:
            for line in f:
                bytes_sent, request_length = map(int, line.split())
                sizes[bytes_sent] += 1
                sent += bytes_sent
                received += request_length
                requests += 1
        os.remove(path)
        # The one request wait_listening made is a bare TCP connect: no log line.
        return Served(requests, sent, received, sizes.most_common(1)[0][0] if sizes else 0)


@dataclass
class WrkResult:
    requests_per_second: float
    requests: int
    errors: str  # wrk's "Socket errors" / "Non-2xx" lines, if any


def run_wrk(port, threads, connections, seconds, new_connections=False):
    """new_connections: a connection per request (wrk reconnects after each
    response to "Connection: close"): a handshake and a close per request."""
    headers = ["-H", "Connection: close"] if new_connections else []
    out = subprocess.run([WRK, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", *headers,
                          f"https://127.0.0.1:{port}/"],
                         check=True, capture_output=True, text=True, timeout=seconds + 120,
                         start_new_session=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    if not rate or not count:
        raise RuntimeError(f"cannot read wrk's output: {out}")
    errors = "; ".join(l.strip() for l in out.splitlines() if "errors" in l or "Non-2xx" in l)
    return WrkResult(float(rate[1]), int(count[1]), errors)
