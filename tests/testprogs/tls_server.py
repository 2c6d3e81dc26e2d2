#!/usr/bin/python3
"""Threaded HTTP/1.1-over-TLS test server built on Python's ssl module (libssl.so.3).

Prints {"port": N} once listening, then one JSON line per finished connection
with what it really received and sent, so tests compare tlstap's capture with
ground truth. Reads go through SSL_read_ex, writes through SSL_write_ex.
"""
import argparse
import base64
import hashlib
import json
import socket
import ssl
import sys
import threading

STORE_LIMIT = 8 << 20  # bigger request bodies are only hashed

log_lock = threading.Lock()


def log(record):
    with log_lock:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()


def format_endpoint(address):
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def read_request(conn):
    """Returns (received bytes or None if too big, length, sha256 hex)."""
    head = b""
    while b"\r\n\r\n" not in head:
        piece = conn.recv(65536)
        if not piece:
            raise EOFError("connection closed inside the request head")
        head += piece
    header_end = head.index(b"\r\n\r\n") + 4
    content_length = 0
    for line in head[:header_end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            content_length = int(value)
    total = header_end + content_length
    digest = hashlib.sha256(head)
    stored = bytearray(head)
    received = len(head)
    while received < total:
        piece = conn.recv(min(1 << 20, total - received))
        if not piece:
            raise EOFError(f"connection closed after {received} of {total} bytes")
        digest.update(piece)
        received += len(piece)
        if len(stored) < STORE_LIMIT:
            stored += piece
    if received != total:
        raise ValueError(f"client sent {received - total} bytes past the request")
    return (bytes(stored) if received <= STORE_LIMIT else None), received, digest.hexdigest()


def response_for(peer, length, sha256, padding):
    # Distinct per connection: a chunk attributed to the wrong connection cannot match.
    body = f"peer {peer} sent {length} bytes sha256 {sha256}\n".encode()
    body += bytes((i * 7 + len(peer)) % 251 for i in range(padding))
    head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    return head + body


def serve(context, raw, peer_address, padding):
    peer = format_endpoint(peer_address)
    record = {"peer": peer, "local": format_endpoint(raw.getsockname())}
    try:
        with context.wrap_socket(raw, server_side=True) as conn:
            received, length, sha256 = read_request(conn)
            response = response_for(peer, length, sha256, padding)
            record.update(received_len=length, received_sha256=sha256,
                          sent=base64.b64encode(response).decode())
            if received is not None:
                record["received"] = base64.b64encode(received).decode()
            conn.sendall(response)  # one SSL_write_ex
    except (OSError, EOFError, ValueError) as error:
        record["error"] = repr(error)
    log(record)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--response-padding", type=int, default=0,
                        help="extra response body bytes (to span several TLS records)")
    args = parser.parse_args()

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, 0))
    listener.listen(64)
    log({"port": listener.getsockname()[1]})
    while True:
        raw, peer_address = listener.accept()
        threading.Thread(target=serve, args=(context, raw, peer_address, args.response_padding),
                         daemon=True).start()


if __name__ == "__main__":
    main()
