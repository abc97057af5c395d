#!/usr/bin/env python3
"""Events and one-time signals in Python: `threading.Event` (set / clear / wait / wait with a
timeout), the stop-flag loop, `threading.Barrier`, a one-time initialisation, `threading.Timer`
and `asyncio.Event`.

Course section 8.3, "Conditions et événements". The Rust twin is
`cargo run -p examples-sync --bin event -- --python`, which runs this file with the same
--workers / --tick-ms / --run-ms and prints both languages side by side. Standalone:

    python3 examples-sync/python/event.py --workers 4 --tick-ms 10 --run-ms 100

The one-time initialisation is where Python needs care: the course's `if config is None:
config = load()` from several threads runs `load()` several times (a check-then-act race; Rust's
`LazyLock` cannot). A lock around the check fixes it, as `LazyLock` does internally.

Prints one JSON object on its last line.
"""
import argparse
import asyncio
import json
import threading
import time


def start_event(workers):
    """Workers wait for one start event; one set() releases all of them."""
    start, released, latencies, lock = threading.Event(), [0], [], threading.Lock()
    set_at = [0.0]

    def worker():
        start.wait()
        with lock:
            released[0] += 1
            latencies.append(time.perf_counter() - set_at[0])

    ts = [threading.Thread(target=worker, name=f"worker-{i}") for i in range(workers)]
    for t in ts:
        t.start()
    time.sleep(0.02)  # let them all block in wait()
    set_at[0] = time.perf_counter()
    start.set()
    for t in ts:
        t.join()
    start.clear()  # re-armed: a new wait with a timeout gives up and returns False
    gave_up = not start.wait(0.01)
    return released[0], max(latencies, default=0.0), gave_up


def periodic_worker(tick_s, run_s):
    """`while not stop.wait(tick): tick()`: a periodic worker that stops as soon as asked."""
    stop, out = threading.Event(), {}

    def worker():
        ticks = 0
        while not stop.wait(tick_s):
            ticks += 1
        out["ticks"], out["stopped"] = ticks, time.perf_counter()

    t = threading.Thread(target=worker)
    t.start()
    time.sleep(run_s)
    asked = time.perf_counter()
    stop.set()
    t.join()
    return out["ticks"], out["stopped"] - asked


def barrier_phases(workers):
    barrier, lock = threading.Barrier(workers), threading.Lock()
    state = {"phase1_done": 0, "order_ok": 0, "leaders": 0}

    def worker(i):
        time.sleep(0.002 * i)  # uneven phase 1
        with lock:
            state["phase1_done"] += 1
        if barrier.wait() == 0:  # exactly one thread gets index 0: the "leader"
            with lock:
                state["leaders"] += 1
        with lock:
            if state["phase1_done"] == workers:
                state["order_ok"] += 1

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return state["leaders"], state["order_ok"] == workers


def once_init(threads=8):
    """8 threads race for a slow global config: naively, then under a lock."""
    loads = {"naive": 0, "locked": 0}
    config = {"naive": None, "locked": None}
    lock = threading.Lock()

    def load(kind):
        loads[kind] += 1
        time.sleep(0.02)  # a slow load: the other threads arrive meanwhile
        return ["max_connections=100", "timeout_s=30"]

    def naive():
        if config["naive"] is None:  # check...
            config["naive"] = load("naive")  # ...then act: every thread that checked loads

    def locked():
        with lock:
            if config["locked"] is None:
                config["locked"] = load("locked")

    for target in (naive, locked):
        ts = [threading.Thread(target=target) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    return loads["naive"], loads["locked"]


def timers():
    """`threading.Timer`: one fires, one is cancelled while it waits."""
    ran = []
    fired = threading.Timer(0, lambda: ran.append("fired"))
    late = threading.Timer(3600, lambda: ran.append("late"))
    fired.start()
    late.start()
    fired.join()
    late.cancel()  # stops the waiting thread at once
    late.join()
    return "fired" in ran, "late" in ran


async def event_vs_notify():
    """asyncio.Event set before three tasks wait, then cleared (Rust: a watch<bool>)."""
    event = asyncio.Event()
    event.set()
    released = 0
    for _ in range(3):
        try:
            await asyncio.wait_for(event.wait(), 0.05)
            released += 1
        except asyncio.TimeoutError:
            pass
    event.clear()
    try:
        await asyncio.wait_for(event.wait(), 0.05)
        gave_up = False
    except asyncio.TimeoutError:
        gave_up = True
    return released, gave_up


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--tick-ms", type=int, default=10)
    p.add_argument("--run-ms", type=int, default=100)
    a = p.parse_args()
    if not (1 <= a.workers <= 256 and 1 <= a.tick_ms <= 10_000 and 0 <= a.run_ms <= 60_000):
        p.error("--workers 1..256, --tick-ms 1..10000, --run-ms 0..60000")
    start = time.perf_counter()
    released, worst, gave_up = start_event(a.workers)
    ticks, stop_latency = periodic_worker(a.tick_ms / 1000, a.run_ms / 1000)
    leaders, order_ok = barrier_phases(a.workers)
    naive_loads, locked_loads = once_init()
    timer_fired, cancelled_ran = timers()
    async_released, async_gave_up = asyncio.run(event_vs_notify())
    print(json.dumps({
        "workers_released": released, "worst_release_latency_s": worst,
        "timeout_returned_false": gave_up, "ticks": ticks, "stop_latency_s": stop_latency,
        "barrier_leaders": leaders, "barrier_phase_order_ok": order_ok,
        "naive_lazy_inits": naive_loads, "lazy_inits": locked_loads,
        "timer_fired": timer_fired, "timer_cancelled_ran": cancelled_ran,
        "async_event_released": async_released, "async_event_gave_up_after_clear": async_gave_up,
        "wall_s": time.perf_counter() - start,
    }))


if __name__ == "__main__":
    main()
