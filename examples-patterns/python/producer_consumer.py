#!/usr/bin/env python3
"""Producer-consumer the course's way: M producer threads, N consumer threads, one
`queue.Queue(maxsize)`, and a sentinel per consumer to say "no more items".

Course section 8.4, "Producer-Consumer". The Rust twin,
`cargo run -p examples-patterns --bin producer-consumer -- --python`, runs this file with the
same flags and prints both languages in one table. Standalone:

    python3 examples-patterns/python/producer_consumer.py --producers 2 --consumers 2 --items 1500

Rates are items per second per thread (0: as fast as possible), paced on a fixed schedule.
`put` blocks while the queue is full (backpressure), `get` while it is empty; both are tried
without blocking first, so only the time actually spent blocked is counted. A queue has no
"closed" state: after the producers finish, the main thread puts one `None` per consumer.

Prints one JSON object on its last line: counts (produced, consumed, duplicates, missing, and
whether every item was consumed exactly once), wall_s, items_per_s, and the share of their time
producers spent blocked on a full queue and consumers waiting on an empty one.
"""
import argparse
import json
import queue
import threading
import time


class Pace:
    """`rate` slots per second on a fixed schedule; idle time is not credit."""

    def __init__(self, rate):
        self.period = 1.0 / rate if rate > 0 else None
        self.next = time.monotonic()

    def wait(self):
        if self.period is None:
            return
        self.next += self.period
        delay = self.next - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def restart(self):
        self.next = time.monotonic()


def producer(pid, q, args, deadline, stats):
    pace, blocked, produced = Pace(args.produce_rate), 0.0, 0
    for seq in range(args.items):
        pace.wait()  # "making" the item takes 1/rate seconds
        if deadline is not None and time.monotonic() >= deadline:
            break
        item = (pid, seq)
        try:
            q.put_nowait(item)
        except queue.Full:
            t = time.monotonic()
            q.put(item)  # blocks until a consumer makes room
            blocked += time.monotonic() - t
            pace.restart()
        produced += 1
    stats[pid] = (produced, blocked)


def consumer(cid, q, args, stats):
    pace, waited, items = Pace(args.consume_rate), 0.0, []
    while True:
        try:
            item = q.get_nowait()
        except queue.Empty:
            t = time.monotonic()
            item = q.get()  # blocks until an item (or the sentinel) arrives
            waited += time.monotonic() - t
            pace.restart()
        if item is None:  # the sentinel: no more items
            break
        pace.wait()  # "processing" takes 1/rate seconds
        items.append(item)
    stats[cid] = (items, waited)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--items", type=int, default=1500, help="items per producer")
    parser.add_argument("--produce-rate", type=float, default=1000.0, help="per producer, 0 = max")
    parser.add_argument("--consume-rate", type=float, default=600.0, help="per consumer, 0 = max")
    parser.add_argument("--capacity", type=int, default=64)
    parser.add_argument("--stop-after", type=float, default=None, help="seconds")
    args = parser.parse_args()
    if min(args.producers, args.consumers, args.capacity) < 1 or args.items < 0:
        parser.error("counts must be at least 1")

    q = queue.Queue(maxsize=args.capacity)
    made, seen = [None] * args.producers, [None] * args.consumers
    start = time.monotonic()
    deadline = start + args.stop_after if args.stop_after is not None else None
    producers = [threading.Thread(target=producer, args=(p, q, args, deadline, made))
                 for p in range(args.producers)]
    consumers = [threading.Thread(target=consumer, args=(c, q, args, seen))
                 for c in range(args.consumers)]
    for t in consumers + producers:
        t.start()
    for t in producers:
        t.join()
    for _ in consumers:
        q.put(None)  # one sentinel per consumer, after every item
    for t in consumers:
        t.join()
    wall = time.monotonic() - start

    produced = sum(n for n, _ in made)
    everything = sorted(item for items, _ in seen for item in items)
    distinct = set(everything)
    expected = {(p, s) for p, (n, _) in enumerate(made) for s in range(n)}
    duplicates = len(everything) - len(distinct)
    missing = len(expected - distinct)
    print(json.dumps({
        "producers": args.producers,
        "consumers": args.consumers,
        "capacity": args.capacity,
        "produced": produced,
        "consumed": len(everything),
        "duplicates": duplicates,
        "missing": missing,
        "unexpected": len(distinct - expected),
        "exactly_once": duplicates == 0 and missing == 0 and distinct == expected,
        "per_consumer": [len(items) for items, _ in seen],
        "wall_s": wall,
        "items_per_s": len(everything) / max(wall, 1e-9),
        "producers_blocked": sum(b for _, b in made) / (wall * args.producers),
        "consumers_waiting": sum(w for _, w in seen) / (wall * args.consumers),
    }))


if __name__ == "__main__":
    main()
