#!/usr/bin/env python3
"""Messages between processes (8.1): multiprocessing.Pipe and multiprocessing.Queue, measured.

The Python side of `pipe-ipc`, on the same message sizes and counts:
- one way: the parent sends `messages` messages of `size` bytes to a child process that counts
  them, through a Pipe (send_bytes/recv_bytes: a length-prefixed frame over an OS pipe, like the
  Rust version) and through a Queue (a pipe, a feeder thread and pickling; the course's "Queue");
- round trip: a 64-byte message sent to an echo child and back, `--round-trips` times (Pipe).

`pipe-ipc --python` runs this with its own settings and checks every count:
    cargo run --release -p examples-processes --bin pipe-ipc -- --python
Alone:
    python3 pipe_ipc.py --mib 32 --max-messages 100000 --round-trips 20000

Prints one JSON line: {"one_way": [{"size", "messages", "pipe_s", "queue_s", "pipe_received":
[messages, bytes], "queue_received": [messages, bytes]}], "round_trip": {"size", "round_trips",
"pipe_us"}}. Each time starts once the child is ready and ends when it has counted everything.
"""
import argparse
import json
import time
from multiprocessing import Pipe, Process, Queue

SIZES = [64, 1024, 16 * 1024, 256 * 1024]


def count_pipe(conn, report, parents_end):
    parents_end.close()  # inherited by fork: while open here, the pipe never reaches EOF
    report.send("ready")
    messages = size = 0
    try:
        while True:
            size += len(conn.recv_bytes())
            messages += 1
    except EOFError:  # the parent closed its end: every message has arrived
        report.send((messages, size))


def count_queue(queue, report):
    report.send("ready")
    messages = size = 0
    while (msg := queue.get()) is not None:  # None: the end, sent after the last message
        messages += 1
        size += len(msg)
    report.send((messages, size))


def echo(conn, parents_end):
    parents_end.close()  # inherited by fork: while open here, we never see the parent's EOF
    try:
        while True:
            conn.send_bytes(conn.recv_bytes())
    except EOFError:
        pass


def one_way_pipe(size, messages):
    receive, send = Pipe(duplex=False)
    report, child_report = Pipe()
    child = Process(target=count_pipe, args=(receive, child_report, send))
    child.start()
    receive.close()  # the child holds it now; ours would keep the pipe open forever
    report.recv()  # "ready"
    payload = b"\xa5" * size
    t0 = time.perf_counter()
    for _ in range(messages):
        send.send_bytes(payload)
    send.close()
    received = report.recv()
    seconds = time.perf_counter() - t0
    child.join()
    return seconds, received


def one_way_queue(size, messages):
    queue = Queue()
    report, child_report = Pipe()
    child = Process(target=count_queue, args=(queue, child_report))
    child.start()
    report.recv()
    payload = b"\xa5" * size
    t0 = time.perf_counter()
    for _ in range(messages):
        queue.put(payload)
    queue.put(None)
    received = report.recv()
    seconds = time.perf_counter() - t0
    child.join()
    return seconds, received


def round_trip(size, trips):
    ours, theirs = Pipe()
    child = Process(target=echo, args=(theirs, ours))
    child.start()
    theirs.close()
    payload = b"\x01" * size
    ours.send_bytes(payload)  # one untimed exchange: the child has started, both sides are warm
    ours.recv_bytes()
    t0 = time.perf_counter()
    for _ in range(trips):
        ours.send_bytes(payload)
        back = ours.recv_bytes()
    seconds = time.perf_counter() - t0
    assert back == payload, "the echo changed the message"
    ours.close()
    child.join()
    return seconds * 1e6 / trips


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=128, help="MiB sent per message size")
    parser.add_argument("--max-messages", type=int, default=400_000)
    parser.add_argument("--round-trips", type=int, default=20_000)
    args = parser.parse_args()
    if min(args.mib, args.max_messages, args.round_trips) < 1:
        parser.error("every count must be at least 1")
    one_way = []
    for size in SIZES:
        messages = max(1, min(args.mib * 1024 * 1024 // size, args.max_messages))
        pipe_s, pipe_received = one_way_pipe(size, messages)
        queue_s, queue_received = one_way_queue(size, messages)
        one_way.append({"size": size, "messages": messages, "pipe_s": pipe_s, "queue_s": queue_s,
                        "pipe_received": pipe_received, "queue_received": queue_received})
    trip = {"size": 64, "round_trips": args.round_trips,
            "pipe_us": round_trip(64, args.round_trips)}
    print(json.dumps({"one_way": one_way, "round_trip": trip}))


if __name__ == "__main__":
    main()
