#!/usr/bin/env python3
"""Locks in Python: `with lock:` and how long it is held, what a crash inside it leaves behind,
`RLock`, and what a lock costs.

Course section 8.3, "Locks, RLocks". The Rust twin is
`cargo run --release -p examples-sync --bin locks -- --python`, which runs this file with the
same --threads / --work-ms / --ops and prints both languages in one table. Standalone:

    python3 examples-sync/python/locks.py --threads 4 --work-ms 20

Where Python and Rust differ, and the JSON shows it:
- a thread that raises inside `with lock:` releases the lock and leaves the data half-updated,
  silently: the next `with lock:` sees it with no warning (Rust's `Mutex` is "poisoned" and says
  so);
- `threading.RLock` is re-entrant and holds any data; Rust's re-entrant locks only give `&T`;
- a lock acquired and never released stays held: in Python by forgetting `release()`, in Rust
  by `std::mem::forget(guard)` (safe code, rare, but possible);
- the standard library has no reader-writer lock.

Prints one JSON object on its last line.
"""
import argparse
import json
import threading
import time


def slow_work(threads, work_s, inside):
    """Every thread appends to a shared log after some slow work, inside or outside the lock."""
    lock, log = threading.Lock(), []

    def worker(i):
        if inside:
            with lock:
                time.sleep(work_s)  # everybody else waits for this
                log.append(i)
        else:
            time.sleep(work_s)  # no lock needed to do the work
            with lock:
                log.append(i)

    start = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return time.perf_counter() - start, len(log)


def readers(threads, work_s):
    """Readers holding a plain Lock for `work_s` each: one at a time (no RwLock in the stdlib)."""
    lock, config = threading.Lock(), [1] * 1024

    def reader():
        with lock:
            time.sleep(work_s)
            len(config)

    start = time.perf_counter()
    ts = [threading.Thread(target=reader) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return time.perf_counter() - start


def crash_inside_the_lock():
    """A thread raises halfway through a transfer: what does the next locker see?"""
    lock, balances = threading.Lock(), [100, 0]

    def transfer():
        with lock:
            balances[0] -= 50  # debit done...
            raise ConnectionError("network error before the credit")  # ...credit never happens

    t = threading.Thread(target=transfer)
    hook, threading.excepthook = threading.excepthook, lambda args: None  # silence it
    t.start()
    t.join()
    threading.excepthook = hook
    with lock:  # no error, no warning: the half-update is simply there
        return list(balances)


def nested_report(rlock, log, depth):
    with rlock:  # re-entrant: fine while this thread already holds it
        log.append(f"depth {depth}")
        if depth < 3:
            return nested_report(rlock, log, depth + 1)
        return depth


def ns_per_lock(threads, ops):
    lock, state = threading.Lock(), {"n": 0}

    def worker():
        for _ in range(ops):
            with lock:
                state["n"] += 1

    start = time.perf_counter()
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert state["n"] == threads * ops
    return (time.perf_counter() - start) * 1e9 / (threads * ops)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--work-ms", type=int, default=20)
    p.add_argument("--ops", type=int, default=1_000_000)
    a = p.parse_args()
    if not (2 <= a.threads <= 64 and 0 <= a.work_ms <= 1000 and 100 <= a.ops <= 10_000_000):
        p.error("--threads 2..64, --work-ms 0..1000, --ops 100..10^7")
    start = time.perf_counter()
    work = a.work_ms / 1000
    inside, logged_in = slow_work(a.threads, work, True)
    outside, logged_out = slow_work(a.threads, work, False)

    plain = threading.Lock()
    plain.acquire()
    second_refused = not plain.acquire(blocking=False)  # Lock is not re-entrant
    # Forgetting release(): nothing ever gives it back (Rust: std::mem::forget(guard)).
    forgotten = threading.Lock()
    forgotten.acquire()
    forgotten_keeps_lock = not forgotten.acquire(blocking=False)

    rlock, log = threading.RLock(), []
    depth = nested_report(rlock, log, 0)

    print(json.dumps({
        "threads": a.threads, "work_ms": a.work_ms,
        "slow_work_inside_s": inside, "slow_work_outside_s": outside,
        "logged": [logged_in, logged_out],
        "mutex_readers_s": readers(a.threads, work),
        "rwlock_readers_s": None,
        "crash_left_balances": crash_inside_the_lock(), "crash_reported": False,
        "lock_ns_per_op": ns_per_lock(1, a.ops),
        "lock_contended_ns_per_op": ns_per_lock(a.threads, a.ops // 4),
        "second_lock_refused": second_refused,
        "forgotten_release_keeps_lock": forgotten_keeps_lock,
        "reentrant_depth_reached": depth, "reentrant_log_len": len(log),
        "wall_s": time.perf_counter() - start,
    }))


if __name__ == "__main__":
    main()
