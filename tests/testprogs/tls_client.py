#!/usr/bin/python3
"""Raw TLS client on Python's ssl module: sends a file's bytes, reads the reply.

Prints {"local": ..., "remote": ...} once the handshake is done, then
{"response": base64} at the end. By default the whole request goes out in ONE
sendall, i.e. one SSL_write_ex call however large it is.
"""
import argparse
import base64
import json
import socket
import ssl
import sys


def format_endpoint(address):
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def emit(record):
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cafile", required=True)
    parser.add_argument("--request", required=True, help="file whose bytes are sent")
    parser.add_argument("--write-size", type=int, default=0,
                        help="send in SSL writes of this size (0: one write)")
    parser.add_argument("--wait-go", action="store_true",
                        help="after the handshake, wait for a line on stdin before sending")
    parser.add_argument("--response-size", type=int, default=0,
                        help="stop reading after this many bytes (0: read until the server closes)")
    parser.add_argument("--linger", action="store_true",
                        help="after reading the response, wait for a line on stdin before exiting")
    parser.add_argument("--no-response", action="store_true",
                        help="never read: after sending, wait for a line on stdin, then close")
    parser.add_argument("--again", action="store_true",
                        help="after the exchange, wait for a line on stdin and do it again on a new connection")
    args = parser.parse_args()

    with open(args.request, "rb") as f:
        request = f.read()
    context = ssl.create_default_context(cafile=args.cafile)
    exchange(args, context, request)
    if args.again:
        sys.stdin.readline()
        exchange(args, context, request)


def exchange(args, context, request):
    with socket.create_connection((args.host, args.port), timeout=60) as raw:
        with context.wrap_socket(raw, server_hostname=args.host) as conn:
            emit({"local": format_endpoint(conn.getsockname()),
                  "remote": format_endpoint(conn.getpeername())})
            if args.wait_go:
                sys.stdin.readline()
            view = memoryview(request)
            step = args.write_size or len(request)
            for start in range(0, len(request), step):
                conn.sendall(view[start:start + step])
            if args.no_response:
                emit({"sent": len(request)})
                sys.stdin.readline()
                return
            response = bytearray()
            while not args.response_size or len(response) < args.response_size:
                piece = conn.recv(65536)
                if not piece:
                    break
                response += piece
            emit({"response": base64.b64encode(response).decode()})
            if args.linger:
                sys.stdin.readline()


if __name__ == "__main__":
    main()
