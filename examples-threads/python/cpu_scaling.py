#!/usr/bin/env python3
"""The GIL as a number (8.1): the same CPU-bound jobs on 1, 2, ... threads, then on processes.

cpu_task(seed, rounds) is the splitmix64 loop of the Rust examples (shared/src/work.rs), so both
languages compute the same 64-bit values; the checksum is their sum modulo 2**64, whatever the
order the jobs ran in. Threads take the next job from a queue.Queue, but the GIL lets only one
of them run Python bytecode at a time: on CPU-bound work 2 threads take as long as 1.
multiprocessing.Pool runs one interpreter per core instead: the course's answer.

`cpu-scaling --python` runs this on the same jobs and checks the checksums:
    cargo run --release -p examples-threads --bin cpu-scaling -- --python
Alone:
    python3 cpu_scaling.py --jobs 96 --rounds 100000 --threads 1,2 --processes 2 --repeat 3

Prints one JSON line: {"jobs", "rounds", "rows": [{"kind": "threads" or "processes", "workers",
"wall_s", "cpu_s", "checksum"}]} (a process row's cpu_s counts its workers).
"""
import argparse
import json
import os
import queue
import threading
import time
from multiprocessing import Pool

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


def on_threads(seeds, k, rounds):
    """k threads, each taking the next seed from a shared queue until it is empty."""
    jobs = queue.Queue()
    for seed in seeds:
        jobs.put(seed)
    sums = [0] * k  # one slot per thread: no lock needed to add up

    def worker(i):
        while True:
            try:
                seed = jobs.get_nowait()
            except queue.Empty:
                return
            sums[i] = (sums[i] + cpu_task(seed, rounds)) & MASK

    threads = [threading.Thread(target=worker, args=(i,), name=f"worker-{i}") for i in range(k)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(sums) & MASK


def task(job):
    """What a Pool worker runs: arguments and result travel pickled through a pipe."""
    seed, rounds = job
    return cpu_task(seed, rounds)


def on_processes(seeds, k, rounds):
    with Pool(k) as pool:
        return sum(pool.map(task, [(s, rounds) for s in seeds], chunksize=1)) & MASK


def measured(kind, workers, run, repeat):
    """The fastest of `repeat` runs: other programs only ever make a run slower."""
    best = None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), os.times()
        checksum = run()
        wall, c1 = time.perf_counter() - t0, os.times()
        cpu = sum(c1[:4]) - sum(c0[:4])  # children count once reaped (the pool joins them)
        if best is None or wall < best["wall_s"]:
            best = {"kind": kind, "workers": workers, "wall_s": round(wall, 6),
                    "cpu_s": round(cpu, 6), "checksum": checksum}
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=96, help="seeds 0..jobs, one job each")
    parser.add_argument("--rounds", type=int, default=100_000)
    parser.add_argument("--threads", default="1,2", help="thread counts to try, e.g. 1,2,4")
    parser.add_argument("--processes", type=int, default=os.cpu_count(),
                        help="the multiprocessing.Pool row (0: none)")
    parser.add_argument("--repeat", type=int, default=1, help="keep the fastest of N runs")
    args = parser.parse_args()
    counts = [int(k) for k in args.threads.split(",") if k]
    if min([args.jobs, args.rounds, args.repeat] + counts) < 1 or args.processes < 0:
        parser.error("--jobs, --rounds, --repeat and the thread counts must be at least 1")

    seeds = list(range(args.jobs))
    rows = [measured("threads", k, lambda k=k: on_threads(seeds, k, args.rounds), args.repeat)
            for k in counts]
    if args.processes:
        rows.append(measured("processes", args.processes,
                             lambda: on_processes(seeds, args.processes, args.rounds),
                             args.repeat))
    print(json.dumps({"jobs": args.jobs, "rounds": args.rounds, "rows": rows}))


if __name__ == "__main__":
    main()
