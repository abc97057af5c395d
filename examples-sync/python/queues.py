#!/usr/bin/env python3
"""Thread-safe queues in Python: `queue.Queue(maxsize)` in the SPSC, MPSC and MPMC shapes,
the unbounded `queue.SimpleQueue`, `asyncio.Queue` between tasks, and `task_done()` / `join()`.

Course section 8.3, "Queues thread-safe". The Rust twin is
`cargo run --release -p examples-sync --bin queues -- --python`, which runs this file with the
same --messages / --capacity and prints both languages in one table. Standalone:

    python3 examples-sync/python/queues.py --messages 200000 --capacity 1024

`queue.Queue` is a deque, one lock and three conditions on it: `not_empty` (get waits),
`not_full` (put waits), `all_tasks_done` (join waits until every item got its `task_done()`).
A queue has no "closed" state: consumers stop on a sentinel (`None` here), one per consumer;
Rust's channels end when the last sender is dropped.

Prints one JSON object on its last line: messages per second for each queue and shape, and
whether every message arrived exactly once (count and sum).
"""
import argparse
import asyncio
import json
import queue
import threading
import time

SHAPES = {"spsc": (1, 1), "mpsc": (2, 1), "mpmc": (2, 2)}


def pump(q, n, producers, consumers):
    """Moves n numbers from producer threads to consumer threads; returns (seconds, ok)."""
    per = n // producers
    results = [None] * consumers

    def produce(p):
        put = q.put
        for i in range(per):
            put(p * per + i)

    def consume(c):
        get, count, total = q.get, 0, 0
        while (v := get()) is not None:
            count += 1
            total += v
        results[c] = (count, total)

    ps = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    cs = [threading.Thread(target=consume, args=(c,)) for c in range(consumers)]
    start = time.perf_counter()
    for t in ps + cs:
        t.start()
    for t in ps:
        t.join()
    for _ in cs:
        q.put(None)  # one sentinel per consumer: the end of the stream
    for t in cs:
        t.join()
    elapsed = time.perf_counter() - start
    total = per * producers
    ok = (sum(r[0] for r in results) == total
          and sum(r[1] for r in results) == total * (total - 1) // 2)
    return elapsed, ok


async def async_pump(n, producers, capacity):
    """asyncio.Queue between tasks: `producers` tasks, one consumer task."""
    q, per = asyncio.Queue(capacity), n // producers

    async def produce(p):
        for i in range(per):
            await q.put(p * per + i)

    async def consume():
        count = total = 0
        while (v := await q.get()) is not None:
            count += 1
            total += v
        return count, total

    start = time.perf_counter()
    consumer = asyncio.create_task(consume())
    await asyncio.gather(*(produce(p) for p in range(producers)))
    await q.put(None)
    count, total = await consumer
    t = per * producers
    return time.perf_counter() - start, count == t and total == t * (t - 1) // 2


def join_when_all_done(workers, items):
    """`task_done()` / `join()`: join returns once every item was processed, not just taken."""
    q, processed, lock = queue.Queue(), [0], threading.Lock()

    def worker():
        while (item := q.get()) is not None:
            with lock:
                processed[0] += 1  # the work on `item`
            q.task_done()  # forget it and join() waits forever; call it twice: ValueError
        q.task_done()  # the sentinel counts too

    ts = [threading.Thread(target=worker) for _ in range(workers)]
    for t in ts:
        t.start()
    for i in range(items):
        q.put(i)
    q.join()
    done_at_join = processed[0]
    for _ in ts:
        q.put(None)
    for t in ts:
        t.join()
    return done_at_join


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=200_000)
    p.add_argument("--capacity", type=int, default=1024)
    a = p.parse_args()
    if not (20 <= a.messages <= 100_000_000 and 1 <= a.capacity <= 1 << 20):
        p.error("--messages 20..10^8, --capacity 1..2^20")
    n, start, rows = a.messages, time.perf_counter(), []
    for name, factory in [(f"queue.Queue({a.capacity})", lambda: queue.Queue(a.capacity)),
                          ("queue.SimpleQueue (unbounded)", queue.SimpleQueue)]:
        row = {"name": name, "delivered_ok": True}
        for shape, (producers, consumers) in SHAPES.items():
            elapsed, ok = pump(factory(), n, producers, consumers)
            row[shape] = (n // producers * producers) / elapsed
            row["delivered_ok"] &= ok
        rows.append(row)
    row = {"name": f"asyncio.Queue({a.capacity}), tasks", "mpmc": None, "delivered_ok": True}
    for shape in ("spsc", "mpsc"):
        elapsed, ok = asyncio.run(async_pump(n, SHAPES[shape][0], a.capacity))
        row[shape] = (n // SHAPES[shape][0] * SHAPES[shape][0]) / elapsed
        row["delivered_ok"] &= ok
    rows.append(row)
    print(json.dumps({
        "messages": n, "capacity": a.capacity, "rows": rows,
        "join": {"workers": 4, "tasks": 1000, "done_at_join": join_when_all_done(4, 1000)},
        "wall_s": time.perf_counter() - start,
    }))


if __name__ == "__main__":
    main()
