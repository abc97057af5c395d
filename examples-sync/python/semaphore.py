#!/usr/bin/env python3
"""At most N "downloads" at once: `threading.Semaphore` with one thread per download, then
`asyncio.Semaphore` with one task per download.

Course section 8.3, "Semaphores". The Rust twin is
`cargo run -p examples-sync --bin semaphore -- --python`, which runs this file with the same
--downloads / --permits / --download-ms and prints both languages in one table. Standalone:

    python3 examples-sync/python/semaphore.py --downloads 12 --permits 3 --download-ms 50

The downloads are simulated (a sleep), so it runs offline; what matters is how many run at once,
counted by a gauge. `with sem:` gives the permit back even when the body raises, like the Rust
permit's `Drop`. (`BoundedSemaphore` also refuses a `release()` too many; Rust's permits cannot
be released twice at all.)

Prints one JSON object on its last line: per version the maximum in flight, the downloads
completed and the time.
"""
import argparse
import asyncio
import contextlib
import json
import threading
import time


class Gauge:
    """How many downloads are in flight, and the maximum ever seen."""

    def __init__(self):
        self.lock, self.now, self.max = threading.Lock(), 0, 0

    def enter(self):
        with self.lock:
            self.now += 1
            self.max = max(self.max, self.now)

    def leave(self):
        with self.lock:
            self.now -= 1


def with_threads(downloads, limit, download_s):
    sem = threading.Semaphore(limit) if limit else contextlib.nullcontext()
    gauge, done, done_lock = Gauge(), [0], threading.Lock()

    def download():
        with sem:  # the permit lives until the end of the block
            gauge.enter()
            time.sleep(download_s)  # the "download"
            gauge.leave()
        with done_lock:
            done[0] += 1

    start = time.perf_counter()
    ts = [threading.Thread(target=download, name=f"download-{i}") for i in range(downloads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return {"max_in_flight": gauge.max, "completed": done[0], "elapsed_s": time.perf_counter() - start}


async def with_tasks(downloads, permits, download_s):
    sem, gauge = asyncio.Semaphore(permits), Gauge()

    async def download():
        async with sem:
            gauge.enter()
            await asyncio.sleep(download_s)  # the task waits, the thread does not
            gauge.leave()
        return True

    start = time.perf_counter()
    results = await asyncio.gather(*(download() for _ in range(downloads)))
    return {"max_in_flight": gauge.max, "completed": sum(results), "elapsed_s": time.perf_counter() - start}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--downloads", type=int, default=12)
    p.add_argument("--permits", type=int, default=3)
    p.add_argument("--download-ms", type=int, default=50)
    a = p.parse_args()
    if not (1 <= a.downloads <= 1000 and 1 <= a.permits <= 1000 and 0 <= a.download_ms <= 10_000):
        p.error("--downloads 1..1000, --permits 1..1000, --download-ms 0..10000")
    s = a.download_ms / 1000
    # acquire(blocking=False) on a 1-permit semaphore: the first gets it, the second does not.
    one = threading.Semaphore(1)
    exactly_one = one.acquire(blocking=False) and not one.acquire(blocking=False)
    start = time.perf_counter()
    runs = [
        {"name": "threads, no limit", "limit": None, **with_threads(a.downloads, None, s)},
        {"name": "threads + threading.Semaphore", "limit": a.permits,
         **with_threads(a.downloads, a.permits, s)},
        {"name": "asyncio tasks + asyncio.Semaphore", "limit": a.permits,
         **asyncio.run(with_tasks(a.downloads, a.permits, s))},
    ]
    print(json.dumps({
        "downloads": a.downloads, "permits": a.permits, "download_ms": a.download_ms,
        "try_acquire_grants_one": exactly_one, "runs": runs,
        "wall_s": time.perf_counter() - start,
    }))


if __name__ == "__main__":
    main()
