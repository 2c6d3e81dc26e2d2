"""A WebSocket client over TLS: sends the messages the bpf test expects (text,
binary, a text in three fragments, a text longer than tlstap keeps, a ping)
to an echo server, checks each echo, then closes with 1000 "bye". Offers
permessage-deflate unless told "plain". Prints "ok".

usage: ws_client.py CAFILE PORT {deflate,plain}
"""
import asyncio
import ssl
import sys

import websockets

cafile, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
TEXT = "hello over tls"
BINARY = bytes(range(256)) * 4
FRAGMENTS = ["frag-one ", "frag-two ", "frag-three"]
LONG = "".join(chr(ord("a") + i % 26) for i in range(5000))
PING = b"are-you-there"


async def main():
    context = ssl.create_default_context(cafile=cafile)
    async with websockets.connect(f"wss://127.0.0.1:{port}/chat", ssl=context,
                                  compression=None if mode == "plain" else "deflate") as ws:
        for message in (TEXT, BINARY, FRAGMENTS, LONG):
            await ws.send(message)
            expected = "".join(message) if isinstance(message, list) else message
            assert await ws.recv() == expected
        await (await ws.ping(PING))
        await ws.close(code=1000, reason="bye")
    print("ok", flush=True)


asyncio.run(main())
