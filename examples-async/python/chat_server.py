#!/usr/bin/env python3
"""The course's asyncio chat server ("serveur chat gérant 10000 connexions simultanées"): the
Python side of chat-server.rs under `chat-load --python`.

One room. Every line a TCP client sends (`nc 127.0.0.1 PORT`) goes to every other client; with
`--ws-port`, WebSocket clients (`ws://127.0.0.1:WS_PORT/`, the `websockets` package) are in the
same room, so a TCP line reaches them as a text message and their messages reach TCP clients as
lines, as in chat-server. One coroutine per connection on one event loop; a broadcast writes to
every socket without waiting for any of them (`writer.write` buffers; `websockets.broadcast`
skips a client over its high-water mark), and a TCP client whose unsent buffer passes 1 MiB is
dropped, so one stuck reader cannot grow the server's memory without bound.

    python3 examples-async/python/chat_server.py --port 6150 [--ws-port 6151] [--uvloop]
    target/release/chat-load --addr 127.0.0.1:6150 --clients 10000
    cargo build --release -p examples-async && target/release/chat-load --python   # both, one table

Prints `chat_server.py listening on HOST:PORT` (then `chat_server.py websocket on HOST:PORT`
with --ws-port) as its first stdout lines, the addresses `chat-load --python` reads. Ctrl-C and
SIGTERM close the listeners and every connection.
"""
import argparse
import asyncio
import signal

MAX_LINE = 64 * 1024
MAX_UNSENT = 1024 * 1024


class Room:
    def __init__(self):
        self.tcp = set()  # StreamWriters
        self.ws = set()  # websockets connections

    def publish(self, sender, line):
        """`line` is bytes ending in a newline; nobody is awaited."""
        for writer in list(self.tcp):
            if writer is sender:
                continue
            if writer.transport.get_write_buffer_size() > MAX_UNSENT:
                self.tcp.discard(writer)  # too slow: dropped, not waited for
                writer.close()
                continue
            writer.write(line)
        if self.ws:
            from websockets.asyncio.server import broadcast
            text = line.rstrip(b"\r\n").decode("utf-8", "replace")
            broadcast((c for c in self.ws if c is not sender), text)


async def handle_tcp(room, reader, writer):
    room.tcp.add(writer)
    try:
        while line := await reader.readline():
            if not line.endswith(b"\n"):
                line += b"\n"
            room.publish(writer, line)
    except (ConnectionError, ValueError):  # a reset, or a line over the limit
        pass
    finally:
        room.tcp.discard(writer)
        writer.close()


async def handle_ws(room, ws):
    room.ws.add(ws)
    try:
        async for message in ws:
            if isinstance(message, str):
                room.publish(ws, message.encode() + b"\n")
    except Exception:  # a connection closed without a close frame
        pass
    finally:
        room.ws.discard(ws)


async def main(args):
    room = Room()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tcp = await asyncio.start_server(lambda r, w: handle_tcp(room, r, w), args.host, args.port,
                                     limit=MAX_LINE, backlog=4096)
    print(f"chat_server.py listening on {args.host}:{tcp.sockets[0].getsockname()[1]}", flush=True)
    ws = None
    if args.ws_port is not None:
        from websockets.asyncio.server import serve
        ws = await serve(lambda c: handle_ws(room, c), args.host, args.ws_port,
                         compression=None, ping_interval=None, backlog=4096)
        port = next(iter(ws.sockets)).getsockname()[1]
        print(f"chat_server.py websocket on {args.host}:{port}", flush=True)
    await stop.wait()
    tcp.close()
    for writer in list(room.tcp):
        writer.close()
    if ws is not None:
        ws.close()
        await ws.wait_closed()
    await tcp.wait_closed()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=6150, help="TCP line port (0: any free port)")
    p.add_argument("--ws-port", type=int, help="also serve WebSocket clients on this port")
    p.add_argument("--uvloop", action="store_true", help="the faster event loop (pip install uvloop)")
    args = p.parse_args()
    if args.uvloop:
        import uvloop
        uvloop.install()
    asyncio.run(main(args))
