#!/usr/bin/env python3
"""multiprocessing's shared memory (8.1): Value, Array and shared_memory, against a Pipe.

The two experiments of `shared-memory` in Rust, with the same workers and the same counts:
- counters: each worker adds 1 to a total --increments times: through a Pipe (one send() per
  update, summed by the parent), a Value with its lock held around `+= 1`, a Value without it
  (a race: it loses updates), and a SharedMemory block with one slot per worker (summed);
- fill: the workers fill an array of --cells 64-bit cells, cell i = i * 0x9E3779B97F4A7C15 mod
  2**64, each its own part: in place in an Array(lock=False), or sent with send_bytes().

`shared-memory --python` runs this with its own settings and checks totals and checksums:
    cargo run --release -p examples-processes --bin shared-memory -- --python
Alone:
    python3 shared_memory.py --workers 2 --increments 200000 --cells 4194304

Every timing starts when all workers are ready (a Barrier) and ends when the parent holds the
result and every worker is joined. Prints one JSON line: {"workers", "increments", "cells",
"counters": {name: {"total", "wall_s"}}, "fill": {name: {"checksum", "wall_s"}}}.
"""
import argparse
import json
import os
import time
from array import array
from multiprocessing import Array, Barrier, Pipe, Process, Value, shared_memory
from multiprocessing.connection import wait

MASK = (1 << 64) - 1
K = 0x9E3779B97F4A7C15
STRIDE = 16  # slots 128 bytes apart, as in the Rust version (no false sharing)


def add_with_lock(counter, n, start):
    start.wait()
    for _ in range(n):
        with counter.get_lock():
            counter.value += 1


def add_without_lock(counter, n, start):
    start.wait()
    for _ in range(n):
        counter.value += 1  # read, add, write: another process may write in between


def add_to_own_slot(name, slot, n, start):
    block = shared_memory.SharedMemory(name=name)
    cells = block.buf.cast("q")
    start.wait()
    for _ in range(n):
        cells[slot] += 1
    cells.release()
    block.close()


def send_updates(conn, n, start):
    start.wait()
    for _ in range(n):
        conn.send(1)
    conn.close()


def fill_in_place(cells, lo, hi, start):
    start.wait()
    for i in range(lo, hi):
        cells[i] = (i * K) & MASK


def fill_and_send(conn, lo, hi, start):
    start.wait()
    conn.send_bytes(array("Q", [(i * K) & MASK for i in range(lo, hi)]))
    conn.close()


def part(w, workers, cells):
    return cells * w // workers, cells * (w + 1) // workers


def measured(workers, target, args_of, collect=lambda: None, after_start=lambda: None):
    """Starts the workers, starts the clock once all are at the barrier, runs `collect`, joins."""
    start = Barrier(workers + 1)
    procs = [Process(target=target, args=(*args_of(w), start)) for w in range(workers)]
    for p in procs:
        p.start()
    after_start()
    start.wait()
    t0 = time.perf_counter()
    result = collect()
    for p in procs:
        p.join()
    wall = time.perf_counter() - t0
    if any(p.exitcode != 0 for p in procs):
        raise SystemExit(f"a worker failed: exit codes {[p.exitcode for p in procs]}")
    return result, wall


def through_pipes(workers, target, args_of, receive):
    """One Pipe per worker; the parent reads them all with `receive(conn)` until each closes."""
    pipes = [Pipe(duplex=False) for _ in range(workers)]

    def close_our_send_ends():  # or the parent never sees EOF
        for _, send_end in pipes:
            send_end.close()

    def collect():
        results, open_ends = [], [r for r, _ in pipes]
        while open_ends:
            for conn in wait(open_ends):
                try:
                    results.append(receive(conn))
                except EOFError:
                    open_ends.remove(conn)
        return results

    return measured(workers, target, lambda w: (pipes[w][1], *args_of(w)), collect,
                    close_our_send_ends)


def counters(workers, n):
    out = {}
    total, wall = through_pipes(workers, send_updates, lambda w: (n,), lambda c: c.recv())
    out["pipe"] = {"total": sum(total), "wall_s": wall}
    for name, target in [("value_lock", add_with_lock), ("value_no_lock", add_without_lock)]:
        counter = Value("q", 0)
        _, wall = measured(workers, target, lambda w: (counter, n))
        out[name] = {"total": counter.value, "wall_s": wall}
    block = shared_memory.SharedMemory(create=True, size=8 * STRIDE * workers)
    try:
        _, wall = measured(workers, add_to_own_slot, lambda w: (block.name, w * STRIDE, n))
        cells = block.buf.cast("q")
        out["shared_memory_slots"] = {"total": sum(cells[::STRIDE]), "wall_s": wall}
        cells.release()
    finally:
        block.close()
        block.unlink()
    return out


def fill(workers, cells):
    out = {}
    array_cells = Array("Q", cells, lock=False)
    _, wall = measured(workers, fill_in_place, lambda w: (array_cells, *part(w, workers, cells)))
    out["array"] = {"checksum": sum(array_cells) & MASK, "wall_s": wall}

    def receive(conn):
        values = array("Q")
        values.frombytes(conn.recv_bytes())
        return values

    parts, wall = through_pipes(workers, fill_and_send, lambda w: part(w, workers, cells), receive)
    out["send_bytes"] = {"checksum": sum(sum(p) for p in parts) & MASK, "wall_s": wall}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--increments", type=int, default=200_000)
    parser.add_argument("--cells", type=int, default=4 << 20)
    args = parser.parse_args()
    if min(args.workers, args.increments, args.cells) < 1:
        parser.error("--workers, --increments and --cells must be at least 1")
    report = {"workers": args.workers, "increments": args.increments, "cells": args.cells,
              "counters": counters(args.workers, args.increments),
              "fill": fill(args.workers, args.cells)}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
