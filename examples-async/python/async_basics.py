#!/usr/bin/env python3
"""asyncio's building blocks, each step timed: the Python side of async-basics.rs.

The same steps as the Rust tour, in the course's asyncio: `gather`, `create_task`, `wait`,
`wait_for`, `as_completed`, `to_thread`, `TaskGroup`, `gather(return_exceptions=True)`, `shield`
and `async with`. Each step reports its time and, where it does not depend on timing, what it
found (an order, a failure, how many tasks were cancelled), in the words the Rust side uses, so
that `async-basics --python` can check both languages agree:
    cargo run -p examples-async --bin async-basics -- --python
Alone:
    python3 examples-async/python/async_basics.py --step-ms 200

Prints one JSON line: {"python", "step_ms", "wall_s", "steps": [{"name", "took_ms",
"expected_ms", "outcome"}]}.
"""
import argparse
import asyncio
import contextlib
import json
import sys
import time


async def fetch(name, step):
    await asyncio.sleep(step)
    return f"data from {name}"


async def failing(step):
    await asyncio.sleep(step / 2)
    raise RuntimeError("service B is down")


async def service(name, step, steps):
    """`B` fails after half a step, the others answer after `steps` steps."""
    if name == "B":
        await failing(step)
    await asyncio.sleep(step * steps)
    return f"data from {name}"


class Pool:
    def __init__(self):
        self.in_use = 0
        self.log = []


class Connection:
    stage = "connected"


@contextlib.asynccontextmanager
async def connection(pool):
    """`async with connection(pool) as conn:` gives the connection back however the block ends,
    cancellation included: CancelledError is raised at the pending await, `finally` runs."""
    pool.in_use += 1
    conn = Connection()
    try:
        yield conn
    finally:
        pool.in_use -= 1
        pool.log.append(f"released while {conn.stage}")


async def tour(step):
    steps = []

    def record(name, started, expected, outcome=""):
        steps.append({"name": name, "took_ms": (time.perf_counter() - started) * 1000,
                      "expected_ms": expected * 1000, "outcome": outcome})

    t = time.perf_counter()
    await fetch("A", step)
    await fetch("B", step)
    record("sequential", t, step * 2)

    t = time.perf_counter()
    await asyncio.gather(fetch("A", step), fetch("B", step))
    record("join", t, step)

    # gather raises the first error at once but does NOT cancel the others: A runs on.
    t = time.perf_counter()
    try:
        await asyncio.gather(fetch("A", step), failing(step))
        outcome = "ok"
    except RuntimeError as e:
        outcome = f"failed: {e}"
    record("try_join (fails at step/2)", t, step / 2, outcome)

    t = time.perf_counter()
    tasks = [asyncio.create_task(fetch(str(i), step)) for i in range(10)]
    await asyncio.gather(*tasks)
    record("10 spawned tasks", t, step)

    t = time.perf_counter()
    fast = asyncio.create_task(asyncio.sleep(step, result="fast"))
    slow = asyncio.create_task(asyncio.sleep(step * 5, result="slow"))
    done, pending = await asyncio.wait({fast, slow}, return_when=asyncio.FIRST_COMPLETED)
    for p in pending:
        p.cancel()
    record("select", t, step, done.pop().result())

    t = time.perf_counter()
    try:
        await asyncio.wait_for(fetch("slow service", step * 3), step)
    except TimeoutError:
        pass
    record("timeout", t, step)

    t = time.perf_counter()

    async def after(i, tenths):
        await asyncio.sleep(step * tenths / 10)
        return i

    order = [await f for f in asyncio.as_completed(
        [after(i, tenths) for i, tenths in [(1, 9), (2, 3), (3, 6), (4, 1), (5, 10)]])]
    record("JoinSet of 5", t, step, " ".join(map(str, order)))

    t = time.perf_counter()
    stop, units = asyncio.Event(), 0

    async def worker():
        nonlocal units
        while not stop.is_set():
            await asyncio.sleep(step / 10)
            units += 1

    w = asyncio.create_task(worker())
    await asyncio.sleep(step)
    stop.set()
    await w
    record("token cancel after 1 step", t, step)

    t = time.perf_counter()
    await asyncio.to_thread(time.sleep, step)
    record("spawn_blocking", t, step)

    t = time.perf_counter()
    cancelled = 0

    async def member(name, n):
        nonlocal cancelled
        try:
            return await service(name, step, n)
        except asyncio.CancelledError:
            cancelled += 1
            raise

    try:
        async with asyncio.TaskGroup() as tg:
            for name, n in (("A", 1), ("B", 1), ("C", 3)):
                tg.create_task(member(name, n))
        outcome = "ok"
    except* RuntimeError as group:
        outcome = f"failed: {group.exceptions[0]}; {cancelled} cancelled"
    record("task group, first error", t, step / 2, outcome)

    t = time.perf_counter()
    results = await asyncio.gather(*(service(n, step, 1) for n in "ABC"), return_exceptions=True)
    shown = [f"error: {r}" if isinstance(r, Exception) else r for r in results]
    record("gather, errors as values", t, step, ", ".join(shown))

    t = time.perf_counter()
    save = asyncio.ensure_future(service("the save", step, 1))
    try:
        await asyncio.wait_for(asyncio.shield(save), step / 2)
        gave_up = False
    except TimeoutError:
        gave_up = True
    finished = (await save) == "data from the save"
    record("shield", t, step, f"gave up: {str(gave_up).lower()}; the save finished: "
           f"{str(finished).lower()}")

    t = time.perf_counter()
    pool = Pool()

    async def query():
        async with connection(pool) as conn:
            conn.stage = "sending the query"
            await asyncio.sleep(step / 4)
            conn.stage = "awaiting the rows"
            await asyncio.sleep(step)  # the timeout fires here
            conn.stage = "done"
            return "rows"

    try:
        await asyncio.wait_for(query(), step / 2)
        cut = False
    except TimeoutError:
        cut = True
    record("async with, cancelled", t, step / 2,
           f"timed out: {str(cut).lower()}; {'; '.join(pool.log)}; {pool.in_use} in use")
    return steps


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--step-ms", type=int, default=200, help="one simulated I/O step")
    args = p.parse_args()
    started = time.perf_counter()
    steps = asyncio.run(tour(args.step_ms / 1000))
    print(json.dumps({"python": sys.version.split()[0], "step_ms": args.step_ms,
                      "wall_s": time.perf_counter() - started, "steps": steps}))


if __name__ == "__main__":
    main()
