#!/usr/bin/env python3
"""The asyncio worker pattern: one `asyncio.Queue(maxsize)`, N worker tasks looping on
`await q.get()` ... `q.task_done()`, the producer's `await q.join()`, then the workers cancelled.

Course section 8.4, "Producer-Consumer", with asyncio. The Rust twin,
`cargo run -p examples-patterns --bin async-work-queue -- --python`, runs this file with the
same flags and prints both languages in one table. Standalone:

    python3 examples-patterns/python/async_work_queue.py --jobs 200 --workers 8 --job-ms 10

`task_done()` sits in a `finally`: a handler that raises before it would leave `join()` waiting
for ever. The queue cannot be closed (before Python 3.13's `shutdown()`): once `join()` has
returned, the idle workers are cancelled, and `gather(..., return_exceptions=True)` collects
their CancelledError.

Prints one JSON object on its last line: handled, value_sum (every job's value: the same as
Rust's when every job ran once), exactly_once, per_worker, wall_s, joined_s.
"""
import argparse
import asyncio
import json
import time

MASK = (1 << 64) - 1


def job_value(i):
    """Rust's `job_value`: (i * 0x9E3779B9) rotated left by 13 bits (64-bit), mod 1_000_003."""
    x = (i * 0x9E3779B9) & MASK
    return (((x << 13) | (x >> 51)) & MASK) % 1_000_003


async def worker(q, job_s, done):
    while True:
        i = await q.get()
        try:
            await asyncio.sleep(job_s)  # the "network call"
            done.append((i, job_value(i)))
        finally:
            q.task_done()


async def run(args):
    q = asyncio.Queue(maxsize=args.capacity)
    done = [[] for _ in range(args.workers)]
    workers = [asyncio.create_task(worker(q, args.job_ms / 1e3, done[w]))
               for w in range(args.workers)]
    start = time.perf_counter()
    for i in range(args.jobs):
        await q.put(i)  # waits while the queue is full
    await q.join()  # every job marked done
    joined = time.perf_counter() - start
    for w in workers:
        w.cancel()  # idle on `get()`: nothing is lost
    await asyncio.gather(*workers, return_exceptions=True)
    return done, joined, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--capacity", type=int, default=16)
    parser.add_argument("--job-ms", type=int, default=10)
    args = parser.parse_args()
    if min(args.workers, args.capacity) < 1 or args.jobs < 0 or args.job_ms < 0:
        parser.error("--workers and --capacity must be at least 1")
    done, joined, wall = asyncio.run(run(args))
    seen = sorted(i for per in done for i, _ in per)
    print(json.dumps({
        "handled": len(seen),
        "value_sum": sum(v for per in done for _, v in per),
        "exactly_once": seen == list(range(args.jobs)),
        "per_worker": [len(per) for per in done],
        "wall_s": wall,
        "joined_s": joined,
    }))


if __name__ == "__main__":
    main()
