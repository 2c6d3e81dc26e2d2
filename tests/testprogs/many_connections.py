#!/usr/bin/python3
"""Many TLS connections open at once, used in turns: opens --connections
keep-alive HTTP/1.1 connections to one server, then sends --rounds requests on
each, one connection after the other, reading each response whole before the
next request. Every connection is idle while the others are used: the least
recently used, each in turn.

Prints one JSON line per connection at the end: its local endpoint, and what
it sent and received (base64).
"""
import argparse
import base64
import json
import socket
import ssl


def read_response(tls, pending):
    """One HTTP/1.1 response with a Content-Length body: (its bytes, what follows it)."""
    while b"\r\n\r\n" not in pending:
        pending += tls.recv(65536)
    head, _, rest = pending.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(rest) < length:
        rest += tls.recv(65536)
    return head + b"\r\n\r\n" + rest[:length], rest[length:]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cafile", required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--rounds", type=int, required=True)
    args = parser.parse_args()

    context = ssl.create_default_context(cafile=args.cafile)
    context.set_alpn_protocols(["http/1.1"])
    connections = []
    for _ in range(args.connections):
        tls = context.wrap_socket(socket.create_connection((args.host, args.port)), server_hostname=args.host)
        connections.append({"tls": tls, "sent": b"", "received": b"", "pending": b""})
    for round_ in range(args.rounds):
        for index, connection in enumerate(connections):
            request = (f"GET /round-{round_}/connection-{index} HTTP/1.1\r\n"
                       f"Host: {args.host}\r\n\r\n").encode()
            connection["tls"].sendall(request)
            connection["sent"] += request
            response, connection["pending"] = read_response(connection["tls"], connection["pending"])
            connection["received"] += response
    for connection in connections:
        host, port = connection["tls"].getsockname()[:2]
        print(json.dumps({"local": f"{host}:{port}", "sent": base64.b64encode(connection["sent"]).decode(),
                          "received": base64.b64encode(connection["received"]).decode()}))
        connection["tls"].close()


if __name__ == "__main__":
    main()
