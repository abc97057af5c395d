#!/usr/bin/env python3
"""The course's race condition (`counter += 1` from several threads), counted.

Course section 8.3, "Conditions de course". The Rust twin is
`cargo run --release -p examples-sync --bin race-condition -- --python`, which runs this file
with the same --threads / --increments / --runs / --no-yield and prints both languages in one
table. Standalone:

    python3 examples-sync/python/race_condition.py --threads 4 --increments 1000000 --runs 3

Which rows lose updates depends on where CPython may switch threads. Since 3.10 a GIL build
switches only at a few points of the bytecode (the loop's backward jump, calls, ...), never in
the middle of `counter += 1`; the course's exact loop then loses nothing, even with
`sys.setswitchinterval(1e-6)`. It lost updates on CPython 3.9 and older, and it loses them on a
free-threaded build (3.13t and later, where `sys._is_gil_enabled()` is False). A read, then a
call or a `time.sleep(0)`, then the write, loses updates on every version.

Prints one JSON object on its last line: per variant the updates lost per run and the time.
"""
import argparse
import json
import sys
import threading
import time

KEYS = ("apple", "banana", "cherry", "date")
YIELD_EVERY = 256  # the Rust example yields inside its racy window as often


def plus_one(v):
    return v + 1


def run_once(variant, threads, increments, widen):
    """`threads` threads each add 1 `increments` times; returns the final count."""
    state = {"counter": 0, "map": {}}
    lock = threading.Lock()
    barrier = threading.Barrier(threads)
    locals_ = [0] * threads

    def work(me):
        barrier.wait()
        if variant == "course":  # the course's exact loop
            global counter
            for _ in range(increments):
                counter += 1
        elif variant == "read_then_write":
            for i in range(increments):
                v = state["counter"]
                if widen and i % YIELD_EVERY == 0:
                    time.sleep(0)  # the Rust example's yield_now(): a switch at the worst moment
                state["counter"] = v + 1
        elif variant == "read_call_write":
            for _ in range(increments):
                state["counter"] = plus_one(state["counter"])
        elif variant == "dict_get_then_set":
            d = state["map"]
            for i in range(increments):
                key = KEYS[i % len(KEYS)]
                v = d.get(key, 0)
                if widen and i % YIELD_EVERY == 0:
                    time.sleep(0)
                d[key] = v + 1
        elif variant == "lock":
            for _ in range(increments):
                with lock:
                    state["counter"] += 1
        elif variant == "dict_under_lock":
            d = state["map"]
            for i in range(increments):
                key = KEYS[i % len(KEYS)]
                with lock:
                    d[key] = d.get(key, 0) + 1
        elif variant == "thread_local":
            local = 0
            for _ in range(increments):
                local += 1
            locals_[me] = local

    global counter
    counter = 0
    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if variant == "course":
        return counter
    if variant in ("dict_get_then_set", "dict_under_lock"):
        return sum(state["map"].values())
    if variant == "thread_local":
        return sum(locals_)
    return state["counter"]


counter = 0

# (key, label, racy, the Rust row it mirrors or None, switch interval or None)
VARIANTS = [
    ("course", "counter += 1 (the course's loop)", True, None, None),
    ("course", "counter += 1, setswitchinterval(1e-6)", True, None, 1e-6),
    ("read_then_write", "v = counter; ...; counter = v + 1", True, "atomic load + store", None),
    ("read_call_write", "counter = plus_one(counter), switchinterval(1e-6)", True, None, 1e-6),
    ("dict_get_then_set", "d.get(k), then d[k] = v + 1", True, "map get, then insert", None),
    ("lock", "with lock: counter += 1", False, "Mutex<u64>", None),
    ("dict_under_lock", "with lock: d[k] = d.get(k, 0) + 1", False, "map entry API", None),
    ("thread_local", "local sums + join", False, "thread-local + join", None),
]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--increments", type=int, default=50_000)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--no-yield", action="store_true",
                   help="no time.sleep(0) inside the racy window: only CPython's own switches")
    a = p.parse_args()
    if not (2 <= a.threads <= 64 and 1 <= a.increments <= 10_000_000 and 1 <= a.runs <= 1000):
        p.error("--threads 2..64, --increments 1..10^7, --runs 1..1000")

    default_interval = sys.getswitchinterval()
    expected = a.threads * a.increments
    rows = []
    start = time.perf_counter()
    for key, label, racy, mirrors, interval in VARIANTS:
        sys.setswitchinterval(interval or default_interval)
        lost, spent = [], 0.0
        for _ in range(a.runs):
            t = time.perf_counter()
            got = run_once(key, a.threads, a.increments, not a.no_yield)
            spent += time.perf_counter() - t
            lost.append(expected - got)
        rows.append({
            "name": label, "racy": racy, "mirrors": mirrors, "expected": expected,
            "lost_total": sum(lost), "lost_min": min(lost), "lost_max": max(lost),
            "runs_with_losses": sum(1 for x in lost if x > 0),
            "mean_run_s": spent / a.runs,
        })
    sys.setswitchinterval(default_interval)
    gil = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
    print(json.dumps({
        "python": sys.version.split()[0], "gil_enabled": gil,
        "switch_interval_s": default_interval,
        "threads": a.threads, "increments": a.increments, "runs": a.runs,
        "widened_window": not a.no_yield, "variants": rows,
        "wall_s": time.perf_counter() - start,
    }))


if __name__ == "__main__":
    main()
