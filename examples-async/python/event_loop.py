#!/usr/bin/env python3
"""asyncio's event loop stalled by a blocking call, measured: the Python side of event-loop.rs.

A ticker coroutine wants to run every TICK and records how late each wake-up is, while another
coroutine does BLOCKS rounds of work: `time.sleep` or a CPU loop (the loop's one thread is
stuck: every coroutine waits), then the fixes: `asyncio.sleep`, `asyncio.to_thread` (the
blocking call moves to a thread of the default executor), and a CPU loop that gives the loop
back with `await asyncio.sleep(0)` every millisecond.

`event-loop --python` runs this with the same block, tick and count, and prints both languages
in one table:
    cargo run --release -p examples-async --bin event-loop -- --python
Alone:
    python3 examples-async/python/event_loop.py --block-ms 100 --tick-ms 10 --blocks 3
(`PYTHONASYNCIODEBUG=1` also makes asyncio log every callback slower than 100 ms.)

Prints one JSON line: {"python", "wall_s", "scenarios": [{"id", "scenario", "ticks",
"max_late_ms", "mean_late_ms"}]}.
"""
import argparse
import asyncio
import json
import sys
import time

SCENARIOS = [
    ("thread_sleep", "time.sleep in a coroutine"),
    ("cpu_loop", "CPU loop in a coroutine"),
    ("async_sleep", "asyncio.sleep"),
    ("offload", "asyncio.to_thread(time.sleep)"),
    ("cpu_yielding", "CPU loop, asyncio.sleep(0) every 1 ms"),
]


def spin(seconds):
    """Burn CPU (what a JSON parse, a hash or an image resize does to the loop)."""
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x = (x * 6364136223846793005 + 1) & 0xFFFFFFFFFFFFFFFF


async def ticker(tick, done):
    loop = asyncio.get_running_loop()
    lateness, deadline = [], loop.time() + tick
    while not done.is_set():
        await asyncio.sleep(max(0.0, deadline - loop.time()))
        now = loop.time()
        lateness.append(now - deadline)
        deadline = now + tick  # after a stall: one late tick, not a burst of catch-ups
    return lateness


async def scenario(work, block, blocks, tick):
    done = asyncio.Event()
    ticks = asyncio.create_task(ticker(tick, done))
    await asyncio.sleep(tick * 2)  # let the ticker start before the trouble does
    for _ in range(blocks):
        if work == "thread_sleep":
            time.sleep(block)
        elif work == "cpu_loop":
            spin(block)
        elif work == "async_sleep":
            await asyncio.sleep(block)
        elif work == "offload":
            await asyncio.to_thread(time.sleep, block)
        else:
            end = time.perf_counter() + block
            while time.perf_counter() < end:
                spin(0.001)
                await asyncio.sleep(0)
        await asyncio.sleep(0.05)
    done.set()
    return await ticks


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--block-ms", type=int, default=100)
    p.add_argument("--tick-ms", type=int, default=10)
    p.add_argument("--blocks", type=int, default=3)
    args = p.parse_args()
    started = time.perf_counter()
    rows = []
    for key, name in SCENARIOS:
        lateness = asyncio.run(scenario(key, args.block_ms / 1000, args.blocks, args.tick_ms / 1000))
        rows.append({
            "id": key,
            "scenario": name,
            "ticks": len(lateness),
            "max_late_ms": max(lateness, default=0.0) * 1000,
            "mean_late_ms": sum(lateness) / len(lateness) * 1000 if lateness else 0.0,
        })
    print(json.dumps({"python": sys.version.split()[0], "wall_s": time.perf_counter() - started,
                      "scenarios": rows}))


if __name__ == "__main__":
    main()
