#!/usr/bin/env python3
"""Peer for chat-load --ws: the chat room a Python developer would write with `websockets`.

Every text message a client sends goes to every other client, as chat-server does. No limits
beyond the library's defaults (1 MiB messages, its write-buffer high-water mark), no names, no
notices: the Python side is given every advantage, so the comparison is about the event loop and
the WebSocket stack, not features.

    pip install -r examples-async/python/requirements.txt
    python3 examples-async/python/py_ws_chat_server.py 6150 [--uvloop]
    target/release/chat-load --ws-addr 127.0.0.1:6150 --clients 0 --ws 10000 --server-pid PID

`websockets.broadcast` writes to each connection without waiting for it (a client whose buffer
is over the high-water mark is skipped), the same "never wait for a slow reader" policy as
chat-server's broadcast ring. Per-message deflate is off: chat-load's client does not offer it,
and chat-server does not implement it.
"""
import asyncio
import sys

from websockets.asyncio.server import broadcast, serve

CLIENTS = set()


async def handler(ws):
    CLIENTS.add(ws)
    try:
        async for message in ws:
            if isinstance(message, str):
                broadcast((c for c in CLIENTS if c is not ws), message)
    finally:
        CLIENTS.discard(ws)


async def main(port):
    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None,
                     backlog=4096) as server:
        print(f"py_ws_chat_server listening on 127.0.0.1:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    if "--uvloop" in sys.argv:
        import uvloop
        uvloop.install()
    asyncio.run(main(int(sys.argv[1])))
