#!/usr/bin/env python3
"""The course's thread pool (8.1): concurrent.futures.ThreadPoolExecutor on CPU-bound jobs.

The jobs of `thread-pool`: job i runs cpu_task(i, rounds_i), the splitmix64 loop of the Rust
examples (shared/src/work.rs), with rounds growing from 1x to 4x the base; a few extra jobs
raise. The executor stores each exception in its Future and the worker thread takes the next
job (what the Rust pool's catch_unwind does). Results are read in submission order.

On CPU-bound jobs the GIL lets one worker run Python at a time, so the pool is no faster than
the plain loop (the sequential row). On I/O-bound jobs (downloads) the GIL is released while a
thread waits, and this same executor is the right tool.

`thread-pool --python` runs this on the pool's own jobs (through a jobs file) and checks that
every value agrees:
    cargo run --release -p examples-threads --bin thread-pool -- --python
Alone:
    python3 thread_pool.py --jobs 200 --rounds 20000 --workers 2 --panics 2

Prints one JSON line: {"workers", "jobs", "raised", "values": [int], "sequential_values_agree",
"sequential_wall_s", "sequential_cpu_s", "pool_wall_s", "pool_cpu_s"}.
"""
import argparse
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

MASK = (1 << 64) - 1


def cpu_task(seed, rounds):
    """splitmix64, `rounds` times: ~250 ns a round in CPython, ~1 ns in Rust."""
    state, acc = seed, 0
    for _ in range(rounds):
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        acc ^= z ^ (z >> 31)
    return acc


def a_bug(i):
    raise RuntimeError(f"job {i}b: a bug in one job")


def job_sizes(n, base):
    """thread-pool's jobs: (seed, rounds), rounds growing linearly from 1x to 4x `base`."""
    return [(i, int(base * (1.0 + 3.0 * i / (max(n, 2) - 1)))) for i in range(n)]


def cpu_seconds():
    t = os.times()
    return t.user + t.system


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs-file", help='JSON {"jobs": [[seed, rounds], ...]}, as thread-pool writes it')
    parser.add_argument("--jobs", type=int, default=200, help="without --jobs-file")
    parser.add_argument("--rounds", type=int, default=20_000, help="base rounds, without --jobs-file")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--panics", type=int, default=2, help="extra jobs that raise")
    args = parser.parse_args()
    if args.workers < 1 or args.jobs < 1 or args.rounds < 1 or args.panics < 0:
        parser.error("--workers, --jobs and --rounds must be at least 1, --panics at least 0")
    if args.jobs_file:
        with open(args.jobs_file) as f:
            jobs = [tuple(job) for job in json.load(f)["jobs"]]
    else:
        jobs = job_sizes(args.jobs, args.rounds)

    t0, c0 = time.perf_counter(), cpu_seconds()
    sequential = [cpu_task(seed, rounds) for seed, rounds in jobs]
    seq_wall, seq_cpu = time.perf_counter() - t0, cpu_seconds() - c0

    # The failing jobs go in among the others, at the positions thread-pool uses.
    panic_every = len(jobs) // (args.panics + 1)
    t0, c0 = time.perf_counter(), cpu_seconds()
    with ThreadPoolExecutor(max_workers=args.workers, thread_name_prefix="pool-worker") as pool:
        futures, failing = [], []
        for i, (seed, rounds) in enumerate(jobs):
            if len(failing) < args.panics and panic_every > 0 and i > 0 and i % panic_every == 0:
                failing.append(pool.submit(a_bug, i))
            futures.append(pool.submit(cpu_task, seed, rounds))
        failing += [pool.submit(a_bug, i) for i in range(args.panics - len(failing))]
        values = [f.result() for f in futures]  # in submission order, waiting as needed
        raised = sum(f.exception() is not None for f in failing)
    pool_wall, pool_cpu = time.perf_counter() - t0, cpu_seconds() - c0

    print(json.dumps({"workers": args.workers, "jobs": len(jobs), "raised": raised,
                      "values": values, "sequential_values_agree": values == sequential,
                      "sequential_wall_s": round(seq_wall, 6), "sequential_cpu_s": round(seq_cpu, 6),
                      "pool_wall_s": round(pool_wall, 6), "pool_cpu_s": round(pool_cpu, 6)}))


if __name__ == "__main__":
    main()
