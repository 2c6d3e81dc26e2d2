"""gRPC over TLS with python3-grpcio (its C core drives OpenSSL through memory
BIOs), without generated code: messages are protobuf with one string field 1,
encoded by hand.

  py_greeter.py server CERT KEY   listens on 127.0.0.1:0, prints "listening PORT"
  py_greeter.py client ADDR CA    one line per call on stdout:
      SayHello("alice") -> "hello alice"; SayHello("missing") -> "NOT_FOUND no such name: missing";
      Chat("one", "two", "three") -> "echo one", "echo two", "echo three"

Service tlstap.Greeter: SayHello is unary (NOT_FOUND for the name "missing"),
Chat is bidirectional streaming (one reply per request).
"""
import sys
from concurrent import futures

import grpc

SERVICE = "tlstap.Greeter"


def encode(text):
    """A protobuf message with field 1 (wire type 2) = text; short texts only."""
    data = text.encode()
    assert len(data) < 128
    return bytes([0x0A, len(data)]) + data


def decode(message):
    assert message[0] == 0x0A and message[1] == len(message) - 2, message
    return message[2:].decode()


def say_hello(request, context):
    name = decode(request)
    if name == "missing":
        context.abort(grpc.StatusCode.NOT_FOUND, f"no such name: {name}")
    return encode(f"hello {name}")


def chat(requests, context):
    for request in requests:
        yield encode(f"echo {decode(request)}")


def serve(cert_file, key_file):
    with open(cert_file, "rb") as f:
        cert = f.read()
    with open(key_file, "rb") as f:
        key = f.read()
    handlers = {
        "SayHello": grpc.unary_unary_rpc_method_handler(say_hello),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, cert)]))
    server.start()
    print(f"listening {port}", flush=True)
    server.wait_for_termination()


def call(address, ca_file):
    with open(ca_file, "rb") as f:
        credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
    # The certificate names localhost; the client connects to 127.0.0.1.
    options = (("grpc.ssl_target_name_override", "localhost"),)
    with grpc.secure_channel(address, credentials, options) as channel:
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
    if len(sys.argv) == 4 and sys.argv[1] == "server":
        serve(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "client":
        call(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: py_greeter.py server CERT KEY | py_greeter.py client ADDR CA")


if __name__ == "__main__":
    main()
