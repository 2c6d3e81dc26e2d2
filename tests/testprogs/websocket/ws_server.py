"""A WebSocket echo server over TLS (Debian's python3-websockets on the system
libssl): echoes every data message, answers pings (the library does) and
closes with the code and reason it was sent. Prints "listening" when ready.

usage: ws_server.py CERT KEY PORT {deflate,nocontext,plain}
"""
import asyncio
import ssl
import sys

import websockets
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

cert, key, port, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
EXTENSIONS = {
    "deflate": [ServerPerMessageDeflateFactory()],
    "nocontext": [ServerPerMessageDeflateFactory(server_no_context_takeover=True,
                                                 client_no_context_takeover=True)],
    "plain": [],
}[mode]


async def echo(ws, _path=None):
    try:
        async for message in ws:
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass


async def main():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    async with websockets.serve(echo, "127.0.0.1", port, ssl=context, compression=None,
                                extensions=EXTENSIONS):
        print("listening", flush=True)
        await asyncio.Future()


asyncio.run(main())
