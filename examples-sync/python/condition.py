#!/usr/bin/env python3
"""A bounded buffer on `threading.Condition`, the way `queue.Queue(maxsize)` is built: `while`
loops against spurious and stolen wake-ups, `notify()` against `notify_all()`, one condition or
two, with the futile wake-ups counted.

Course section 8.3, "Conditions". The Rust twin is
`cargo run --release -p examples-sync --bin condition -- --python`, which runs this file with
the same --producers / --consumers / --items / --capacity and prints both languages in one table.
Standalone:

    python3 examples-sync/python/condition.py --producers 1 --consumers 8 --items 40000

Two `Condition`s can share one lock (`threading.Condition(lock)`): `queue.Queue` does exactly
that, with three of them (`not_empty`, `not_full`, `all_tasks_done`). The start gate uses
`Condition.wait_for(predicate)`, the loop on the condition written for you (Rust's
`Condvar::wait_while`).

Prints one JSON object on its last line: per signalling the items, whether each arrived exactly
once (the checksum), the wake-ups, the futile ones, and the time.
"""
import argparse
import collections
import json
import threading
import time


class BoundedBuffer:
    def __init__(self, capacity, separate, notify_all):
        self.lock = threading.Lock()
        self.not_empty = threading.Condition(self.lock)
        # One condition for both sides (`separate=False`) is only correct with notify_all().
        self.not_full = threading.Condition(self.lock) if separate else self.not_empty
        self.items, self.capacity, self.closed = collections.deque(), capacity, False
        self.notify_all = notify_all
        self.wakeups = self.futile = 0

    def _notify(self, cond):
        cond.notify_all() if self.notify_all else cond.notify()

    def push(self, item):
        with self.lock:
            while not self.closed and len(self.items) >= self.capacity:
                self.not_full.wait()
                self.wakeups += 1
                if not self.closed and len(self.items) >= self.capacity:
                    self.futile += 1
            if self.closed:
                raise RuntimeError("push after close")
            self.items.append(item)
            # Python must notify while holding the lock (RuntimeError otherwise); Rust may
            # notify after unlocking.
            self._notify(self.not_empty)

    def pop(self):
        """The oldest item, or None once the buffer is closed and drained."""
        with self.lock:
            while not self.items:
                if self.closed:
                    return None
                self.not_empty.wait()
                self.wakeups += 1
                if not self.closed and not self.items:
                    self.futile += 1
            item = self.items.popleft()
            self._notify(self.not_full)
            return item

    def close(self):
        with self.lock:
            self.closed = True
            self.not_full.notify_all()
            self.not_empty.notify_all()


class Gate:
    """Everybody starts at once: `wait_for` is the `while not open: wait()` loop."""

    def __init__(self):
        self.cond, self.is_open = threading.Condition(), False

    def wait(self):
        with self.cond:
            self.cond.wait_for(lambda: self.is_open)

    def open(self):
        with self.cond:
            self.is_open = True
            self.cond.notify_all()


def pump(separate, notify_all, producers, consumers, items, capacity):
    buf, gate = BoundedBuffer(capacity, separate, notify_all), Gate()
    sums = [0] * consumers

    def consume(c):
        gate.wait()
        total = 0
        while (item := buf.pop()) is not None:
            total += item
        sums[c] = total

    def produce(p):
        gate.wait()
        for i in range(items):
            buf.push(p * items + i)  # blocks while full: back-pressure

    cs = [threading.Thread(target=consume, args=(c,)) for c in range(consumers)]
    ps = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for t in cs + ps:
        t.start()
    start = time.perf_counter()
    gate.open()
    for t in ps:
        t.join()
    buf.close()
    for t in cs:
        t.join()
    elapsed = time.perf_counter() - start
    n = producers * items
    return {"items": n, "checksum_ok": sum(sums) == n * (n - 1) // 2,
            "wakeups": buf.wakeups, "futile_wakeups": buf.futile, "elapsed_s": elapsed}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--producers", type=int, default=1)
    p.add_argument("--consumers", type=int, default=8)
    p.add_argument("--items", type=int, default=40_000)
    p.add_argument("--capacity", type=int, default=8)
    a = p.parse_args()
    if not (1 <= a.producers <= 64 and 1 <= a.consumers <= 64 and 1 <= a.items <= 1_000_000
            and 1 <= a.capacity <= 1_000_000):
        p.error("--producers/--consumers 1..64, --items 1..10^6, --capacity 1..10^6")
    start = time.perf_counter()
    runs = []
    for name, separate, notify_all in [
        ("2 conditions, notify()", True, False),
        ("2 conditions, notify_all()", True, True),
        ("1 shared condition, notify_all()", False, True),
    ]:
        r = pump(separate, notify_all, a.producers, a.consumers, a.items, a.capacity)
        runs.append({"signalling": name, **r})
    print(json.dumps({"producers": a.producers, "consumers": a.consumers, "capacity": a.capacity,
                      "runs": runs, "wall_s": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
