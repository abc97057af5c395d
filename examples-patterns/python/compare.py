#!/usr/bin/env python3
"""The course's comparison table in Python: threading, multiprocessing and asyncio on I/O-bound
and CPU-bound work, one approach per run.

Course: Module 8 overview, "Tableau de comparaison". The Rust twin,
`cargo run --release -p examples-patterns --bin compare -- --python`, runs this file once per
approach and workload, on the same local server (same requests, latency and concurrency) and the
same CPU tasks, and prints both languages in one table per workload. Standalone:

    python3 examples-patterns/python/compare.py io --approach asyncio --base-url http://127.0.0.1:8080
    python3 examples-patterns/python/compare.py cpu --approach processes --tasks 64 --rounds 50000

I/O: GET {base}/files/{i:06d}.bin?size=S for i in range(N), at most C at once. The result is
sum((i + 1) * crc32(body_i)) mod 2**64: the Rust side computes it from the bodies the server
must send, so a wrong or missing body shows.

CPU: task i is `shared::work::cpu_task` (splitmix64) ported line for line, its result mixed with
its index, the tasks' results added mod 2**64: the same total Rust computes for the same rounds.
Pure-Python integer arithmetic is a few hundred times slower per round than Rust, so the Rust
side runs this with fewer rounds per task (a stated factor) and compares speedups.

Prints one JSON object on its last line: wall_s (timed inside Python: interpreter start-up and
imports are not billed), cpu_s (this process and its reaped children), peak_rss_kib (this
process, plus each worker process's own peak for multiprocessing), result.
"""
import argparse
import asyncio
import json
import os
import resource
import sys
import time
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import Pool

MASK = (1 << 64) - 1


# --- The CPU task: shared::work::cpu_task, ported -------------------------------------------

def cpu_task(seed, rounds):
    """`rounds` rounds of splitmix64 from `seed`, xor-folded (the Rust function, line for line)."""
    state, acc = seed, 0
    for _ in range(rounds):
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        acc ^= z ^ (z >> 31)
    return acc


def rotl32(x):
    return ((x << 32) | (x >> 32)) & MASK


def combine(i, value):
    """compare.rs's `combine`: the result depends on the item and on its index."""
    return cpu_task(value ^ rotl32(i), 1)


def task(i, rounds):
    return combine(i, cpu_task(i, rounds))


# --- The I/O task: one download -------------------------------------------------------------

def url(base, i, size):
    return f"{base}/files/{i:06d}.bin?size={size}"


def digest(i, body):
    return (i + 1) * zlib.crc32(body)


def fetch(base, i, size):
    """A blocking download, the way the course's threading examples do it (urllib)."""
    with urllib.request.urlopen(url(base, i, size), timeout=30) as r:
        return digest(i, r.read())


async def fetch_async(session, sem, base, i, size):
    async with sem:
        async with session.get(url(base, i, size)) as r:
            r.raise_for_status()
            return digest(i, await r.read())


async def io_asyncio(base, n, c, size):
    import aiohttp  # imported here: the other approaches need only the standard library
    sem = asyncio.Semaphore(c)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c),
                                     timeout=timeout) as session:
        return await asyncio.gather(*(fetch_async(session, sem, base, i, size) for i in range(n)))


async def cpu_asyncio(n, rounds):
    """One task per item on one event loop: CPU work never awaits, so they take turns."""
    async def one(i):
        return task(i, rounds)
    return await asyncio.gather(*(one(i) for i in range(n)))


# --- Worker-process helpers (module level, so multiprocessing can pickle them) ----------------

def peak_rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def cpu_seconds():
    """User + system CPU of this process (every thread) and of its children once reaped."""
    return sum(r.ru_utime + r.ru_stime
               for r in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))


def fetch_in_worker(job):
    base, i, size = job
    return fetch(base, i, size), os.getpid(), peak_rss_kib()


def task_in_worker(job):
    i, rounds = job
    return task(i, rounds), os.getpid(), peak_rss_kib()


def pool_map(func, jobs, workers):
    """multiprocessing.Pool: returns the values and the sum of each worker's peak memory."""
    peaks = {}
    values = []
    with Pool(workers) as pool:
        for value, pid, kib in pool.imap_unordered(func, jobs):
            values.append(value)
            peaks[pid] = max(peaks.get(pid, 0), kib)
    return values, sum(peaks.values())


# --- One approach, measured -----------------------------------------------------------------

def run_io(args):
    base, n, c, size = args.base_url.rstrip("/"), args.requests, args.concurrency, args.size
    if args.approach == "sequential":
        return [fetch(base, i, size) for i in range(n)], 0
    if args.approach == "threads":
        with ThreadPoolExecutor(max_workers=c) as ex:
            return list(ex.map(lambda i: fetch(base, i, size), range(n))), 0
    if args.approach == "processes":
        return pool_map(fetch_in_worker, [(base, i, size) for i in range(n)], c)
    return asyncio.run(io_asyncio(base, n, c, size)), 0


def run_cpu(args):
    n, rounds, w = args.tasks, args.rounds, args.workers
    if args.approach == "sequential":
        return [task(i, rounds) for i in range(n)], 0
    if args.approach == "threads":
        with ThreadPoolExecutor(max_workers=w) as ex:
            return list(ex.map(lambda i: task(i, rounds), range(n))), 0
    if args.approach == "processes":
        return pool_map(task_in_worker, [(i, rounds) for i in range(n)], w)
    return asyncio.run(cpu_asyncio(n, rounds)), 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=["io", "cpu"])
    parser.add_argument("--approach", required=True,
                        choices=["sequential", "threads", "processes", "asyncio"])
    parser.add_argument("--base-url", default="http://127.0.0.1:8080", help="io: the server")
    parser.add_argument("--requests", type=int, default=100, help="io: N")
    parser.add_argument("--concurrency", type=int, default=50, help="io: C in flight")
    parser.add_argument("--size", type=int, default=16 * 1024, help="io: body bytes")
    parser.add_argument("--tasks", type=int, default=64, help="cpu: T")
    parser.add_argument("--rounds", type=int, default=50_000, help="cpu: rounds per task")
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="cpu: threads or processes")
    args = parser.parse_args()
    if min(args.requests, args.concurrency, args.tasks, args.workers) < 1 or args.rounds < 0:
        parser.error("counts must be at least 1")

    run = run_io if args.workload == "io" else run_cpu
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    values, workers_kib = run(args)
    # Children count once reaped: Pool's `with` block has joined its workers by now.
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    print(json.dumps({
        "workload": args.workload,
        "approach": args.approach,
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_kib": peak_rss_kib() + workers_kib,
        "items": len(values),
        "result": sum(values) & MASK,
        "python": sys.version.split()[0],
    }))


if __name__ == "__main__":
    main()
