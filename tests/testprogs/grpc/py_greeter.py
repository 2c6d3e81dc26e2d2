"""gRPC over TLS with python3-grpcio (its C core drives OpenSSL through memory
BIOs), without generated code: messages are protobuf with one string field 1,
encoded by hand.

  py_greeter.py server CERT KEY [--compression C]   listens on 127.0.0.1:0, prints "listening PORT"
  py_greeter.py client ADDR CA    one line per call on stdout:
      SayHello("alice") -> "hello alice"; SayHello("missing") -> "NOT_FOUND no such name: missing";
      Chat("one", "two", "three") -> "echo one", "echo two", "echo three"
  py_greeter.py hello ADDR CA NAME [--compression C]   SayHello(NAME), prints the reply

--compression gzip|deflate compresses what that side sends (the C core sends a
message as it is when compressing would not make it smaller).

Service tlstap.Greeter: SayHello is unary (NOT_FOUND for the name "missing"),
Chat is bidirectional streaming (one reply per request).
"""
import argparse
from concurrent import futures

import grpc

SERVICE = "tlstap.Greeter"


COMPRESSION = {None: grpc.Compression.NoCompression, "gzip": grpc.Compression.Gzip,
               "deflate": grpc.Compression.Deflate}


def encode(text):
    """A protobuf message with field 1 (wire type 2) = text, of less than 16 KiB."""
    data = text.encode()
    assert len(data) < 1 << 14
    size = bytes([len(data)]) if len(data) < 128 else bytes([len(data) & 0x7F | 0x80, len(data) >> 7])
    return b"\x0a" + size + data


def decode(message):
    assert message[0] == 0x0A, message
    size, start = (message[1], 2) if message[1] < 128 else ((message[1] & 0x7F) | message[2] << 7, 3)
    assert size == len(message) - start, message
    return message[start:].decode()


def say_hello(request, context):
    name = decode(request)
    if name == "missing":
        context.abort(grpc.StatusCode.NOT_FOUND, f"no such name: {name}")
    return encode(f"hello {name}")


def chat(requests, context):
    for request in requests:
        yield encode(f"echo {decode(request)}")


def serve(cert_file, key_file, compression):
    with open(cert_file, "rb") as f:
        cert = f.read()
    with open(key_file, "rb") as f:
        key = f.read()
    handlers = {
        "SayHello": grpc.unary_unary_rpc_method_handler(say_hello),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), compression=COMPRESSION[compression])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, cert)]))
    server.start()
    print(f"listening {port}", flush=True)
    server.wait_for_termination()


def open_channel(address, ca_file, compression=None):
    with open(ca_file, "rb") as f:
        credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
    # The certificate names localhost; the client connects to 127.0.0.1.
    options = (("grpc.ssl_target_name_override", "localhost"),)
    return grpc.secure_channel(address, credentials, options, compression=COMPRESSION[compression])


def say_hello_once(address, ca_file, name, compression):
    with open_channel(address, ca_file, compression) as channel:
        print(decode(channel.unary_unary(f"/{SERVICE}/SayHello")(encode(name), timeout=20)), flush=True)


def call(address, ca_file):
    with open_channel(address, ca_file) as channel:
        hello = channel.unary_unary(f"/{SERVICE}/SayHello")
        print(decode(hello(encode("alice"), timeout=20)), flush=True)
        try:
            hello(encode("missing"), timeout=20)
            print("unexpected success", flush=True)
        except grpc.RpcError as error:
            print(error.code().name, error.details(), flush=True)
        chat_call = channel.stream_stream(f"/{SERVICE}/Chat")
        for reply in chat_call(iter([encode("one"), encode("two"), encode("three")]), timeout=20):
            print(decode(reply), flush=True)


def main():
    parser = argparse.ArgumentParser(description="gRPC greeter over TLS (python3-grpcio)")
    commands = parser.add_subparsers(dest="command", required=True)
    server = commands.add_parser("server")
    server.add_argument("cert")
    server.add_argument("key")
    client = commands.add_parser("client")
    hello = commands.add_parser("hello")
    for command in (client, hello):
        command.add_argument("address")
        command.add_argument("ca")
    hello.add_argument("name")
    for command in (server, hello):
        command.add_argument("--compression", choices=["gzip", "deflate"])
    args = parser.parse_args()
    if args.command == "server":
        serve(args.cert, args.key, args.compression)
    elif args.command == "client":
        call(args.address, args.ca)
    else:
        say_hello_once(args.address, args.ca, args.name, args.compression)


if __name__ == "__main__":
    main()
