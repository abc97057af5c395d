#!/usr/bin/env python3
"""The course's deadlock ("Thread 1 a lock A, veut lock B; Thread 2 a lock B, veut lock A"),
staged on every run, detected instead of hanging, then the three classic fixes.

Course section 8.3, "Interblocage". The Rust twin is
`cargo run -p examples-sync --bin deadlock -- --python`, which runs this file with the same
--scenario / --seats / --rounds / --fix / --stall-timeout and prints both languages in one table.
Standalone:

    python3 examples-sync/python/deadlock.py
    python3 examples-sync/python/deadlock.py --scenario philosophers --seats 5 --fix ordering

Like the Rust example, the first round is forced into the fatal interleaving: each thread takes
its first lock, then waits until every other thread holds a lock or waits for a held one.
Python has no deadlock detector (Rust's example uses parking_lot's); the watchdog here builds
the wait-for graph from what the threads report ("holds A, waits for B") and finds the cycle.
The stuck threads are daemon threads: they stay blocked until the interpreter exits.

Prints one JSON object on its last line: one entry per run (the deadlock, then each fix).
"""
import argparse
import json
import random
import threading
import time


class Board:
    """Who holds and who waits for which lock: what a thread dump would show."""

    def __init__(self, n):
        self.cond = threading.Condition()
        self.n = n
        self.holds = {}  # thread index -> [lock index]
        self.waits = {}  # thread index -> lock index or None
        self.done_first = set()
        self.names = {}

    def _update(self, me, change):
        with self.cond:
            self.holds.setdefault(me, [])
            change()
            if len(self.done_first) < self.n:  # someone may still be at the checkpoint
                self.cond.notify_all()

    def waiting(self, me, lock):
        self._update(me, lambda: self.waits.__setitem__(me, lock))

    def acquired(self, me, lock):
        def change():
            self.waits[me] = None
            self.holds[me].append(lock)
        self._update(me, change)

    def released(self, me, lock):
        self._update(me, lambda: self.holds[me].remove(lock))

    def first_round_done(self, me):
        with self.cond:
            self.done_first.add(me)
            self.cond.notify_all()

    def _held(self, lock):
        return any(lock in h for h in self.holds.values())

    def checkpoint(self, me):
        """The forced interleaving: wait until every other thread holds a lock, or waits for a
        lock somebody holds."""
        def settled():
            return len(self.holds) == self.n and all(
                t in self.done_first or self.holds[t]
                or (self.waits.get(t) is not None and self._held(self.waits[t]))
                for t in self.holds if t != me)
        with self.cond:
            self.cond.wait_for(settled)

    def cycle(self, lock_names):
        """The threads in a wait-for cycle, as "name holds [..], waits for ..", or []."""
        with self.cond:
            owner = {l: t for t, held in self.holds.items() for l in held}
            for start in self.holds:
                seen, t = [], start
                while t is not None and t not in seen:
                    seen.append(t)
                    w = self.waits.get(t)
                    t = owner.get(w) if w is not None else None
                if t is not None:  # back to a thread already on the path: a cycle
                    ring = sorted(seen[seen.index(t):])
                    return [f"{self.names[i]} holds [{', '.join(lock_names[l] for l in self.holds[i])}], "
                            f"waits for {lock_names[self.waits[i]]}" for i in ring]
            return []


def run(scenario, seats, rounds, fix, stall_timeout):
    if scenario == "transfer":
        lock_names = ["account A", "account B", "bank lock"]
        threads = [("transfer A->B", 0, 1), ("transfer B->A", 1, 0)]
        initial = 1_000_000
    else:
        lock_names = [f"fork {i}" for i in range(seats)] + ["table lock"]
        threads = [(f"philosopher {i}", i, (i + 1) % seats) for i in range(seats)]
        initial = 0
    n = len(threads)
    locks = [threading.Lock() for _ in lock_names]
    values = [initial] * len(lock_names)
    big = len(locks) - 1  # the coarse lock of the single-lock fix
    board = Board(n)
    counters = {"retries": 0, "completed": 0}
    finished = [0.0] * n  # when each thread ended its rounds
    count_lock = threading.Lock()

    def take_rounds(me, first, second):
        if fix == "ordering":  # every thread agrees on one order: the lower index first
            first, second = min(first, second), max(first, second)
        rng = random.Random(me)
        forced = True
        for r in range(rounds):
            if fix == "single-lock":
                board.waiting(me, big)
                locks[big].acquire()
                board.acquired(me, big)
            while True:
                board.waiting(me, first)
                locks[first].acquire()
                board.acquired(me, first)
                if forced:
                    board.checkpoint(me)
                    forced = False
                board.waiting(me, second)
                if fix == "try-lock":
                    if not locks[second].acquire(blocking=False):
                        # Give the first lock back, then wait a random moment (no livelock).
                        locks[first].release()
                        board.released(me, first)
                        with count_lock:
                            counters["retries"] += 1
                        time.sleep(rng.random() * 200e-6)
                        continue
                else:
                    locks[second].acquire()
                board.acquired(me, second)
                if scenario == "transfer":
                    values[first] -= 1
                    values[second] += 1
                else:
                    values[first] += 1
                    values[second] += 1
                locks[second].release()
                board.released(me, second)
                locks[first].release()
                board.released(me, first)
                break
            if fix == "single-lock":
                locks[big].release()
                board.released(me, big)
            if r == 0:
                board.first_round_done(me)
            with count_lock:
                counters["completed"] += 1
        finished[me] = time.perf_counter()

    start = time.perf_counter()
    workers = []
    for me, (name, first, second) in enumerate(threads):
        board.names[me] = name
        t = threading.Thread(target=take_rounds, args=(me, first, second), name=name, daemon=True)
        workers.append(t)
        t.start()
    cycle = []
    while True:  # the watchdog
        time.sleep(0.05)
        if not any(t.is_alive() for t in workers):
            break
        cycle = board.cycle(lock_names)
        if cycle:
            break
        if time.perf_counter() - start > stall_timeout:
            raise SystemExit(f"no progress and no cycle after {stall_timeout} s")
    elapsed = time.perf_counter() - start  # when the cycle was found
    invariant_ok = None
    if not cycle:
        elapsed = max(finished) - start
        accounts = values[:-1]
        invariant_ok = (sum(accounts) == 2 * initial if scenario == "transfer"
                        else all(v == 2 * rounds for v in accounts))
    return {
        "fix": fix, "deadlocked": bool(cycle), "cycle": cycle,
        "completed_rounds": counters["completed"], "expected_rounds": rounds * n,
        "retries": counters["retries"], "invariant_ok": invariant_ok, "elapsed_s": elapsed,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", choices=["transfer", "philosophers"], default="transfer")
    p.add_argument("--seats", type=int, default=5)
    p.add_argument("--rounds", type=int, default=2000)
    p.add_argument("--fix", choices=["ordering", "try-lock", "single-lock"])
    p.add_argument("--stall-timeout", type=float, default=20)
    a = p.parse_args()
    if not (2 <= a.seats <= 64 and 1 <= a.rounds <= 1_000_000 and 1 <= a.stall_timeout <= 3600):
        p.error("--seats 2..64, --rounds 1..10^6, --stall-timeout 1..3600")
    fixes = [a.fix] if a.fix else [None, "ordering", "try-lock", "single-lock"]
    start = time.perf_counter()
    runs = [run(a.scenario, a.seats, a.rounds, fix, a.stall_timeout) for fix in fixes]
    print(json.dumps({"scenario": a.scenario, "runs": runs, "wall_s": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
