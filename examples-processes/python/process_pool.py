#!/usr/bin/env python3
"""The course's CPU-bound pool (8.1): concurrent.futures.ProcessPoolExecutor, submit + as_completed.

Every task runs cpu_task(seed, rounds), the splitmix64 loop of the Rust examples
(shared/src/work.rs), so both languages compute the same 64-bit values. All tasks are submitted
at once; results are taken as they complete (as_completed) and stored by task number.

`process-pool --python` runs this on the pool's own tasks (seeds, rounds, poison) through a task
file, and checks that every value agrees:
    cargo run --release -p examples-processes --bin process-pool -- --python
Alone:
    python3 process_pool.py --tasks 48 --rounds 1000000 --seed 42 --workers 2

A poison task aborts its worker (os.abort(), like a crashing C extension). Unlike the Rust pool,
the executor does not replace the worker: it fails every pending task with BrokenProcessPool.

Prints one JSON line: {"workers", "tasks", "rounds", "values": [int or null], "errors":
{task: message}, "completion_order", "checksum", "wall_s", "cpu_s"} (cpu_s counts the workers).
"""
import argparse
import json
import os
import random
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

MASK = (1 << 64) - 1


def cpu_task(seed, rounds, poison=False):
    """splitmix64, `rounds` times: ~250 ns a round in CPython, ~1 ns in Rust."""
    if poison:
        os.abort()
    state, acc = seed, 0
    for _ in range(rounds):
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        acc ^= z ^ (z >> 31)
    return acc


def checksum(values):
    """The Rust report's checksum: fold(0, |a, v| a.rotate_left(5) ^ v) over the values."""
    acc = 0
    for v in values:
        if v is not None:
            acc = (((acc << 5) | (acc >> 59)) & MASK) ^ v
    return acc


def cpu_seconds():
    t = os.times()  # Children count once reaped: the executor reaps its workers on exit.
    return t.user + t.system + t.children_user + t.children_system


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks-file", help='JSON {"rounds", "seeds", "poison"}, as process-pool writes it')
    parser.add_argument("--tasks", type=int, default=48, help="without --tasks-file")
    parser.add_argument("--rounds", type=int, default=1_000_000, help="without --tasks-file")
    parser.add_argument("--seed", type=int, default=42, help="without --tasks-file")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    if args.workers < 1 or args.tasks < 1 or args.rounds < 1:
        parser.error("--workers, --tasks and --rounds must be at least 1")

    if args.tasks_file:
        with open(args.tasks_file) as f:
            spec = json.load(f)
        rounds, seeds, poison = spec["rounds"], spec["seeds"], set(spec["poison"])
    else:
        rng = random.Random(args.seed)
        rounds, poison = args.rounds, set()
        seeds = [rng.getrandbits(64) for _ in range(args.tasks)]

    values, errors, order = [None] * len(seeds), {}, []
    t0, c0 = time.perf_counter(), cpu_seconds()
    with ProcessPoolExecutor(max_workers=args.workers) as executor:
        futures = {executor.submit(cpu_task, seed, rounds, i in poison): i
                   for i, seed in enumerate(seeds)}
        for future in as_completed(futures):
            i = futures[future]
            order.append(i)
            try:
                values[i] = future.result()
            except Exception as e:  # BrokenProcessPool once a worker has died
                errors[str(i)] = f"{type(e).__name__}: {e}"
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0

    print(json.dumps({"workers": args.workers, "tasks": len(seeds), "rounds": rounds,
                      "values": values, "errors": errors, "completion_order": order,
                      "checksum": checksum(values), "wall_s": round(wall, 6),
                      "cpu_s": round(cpu, 6)}))


if __name__ == "__main__":
    main()
