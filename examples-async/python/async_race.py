#!/usr/bin/env python3
"""A race across `await` on ONE thread: asyncio oversells stock and loses updates (async-race.rs).

The course says asyncio has "pas de problèmes de synchronisation". One thread does rule out data
races, but every `await` lets another coroutine run, so a check made before an `await` can be
false after it. Buyers check the stock, await a payment, then take the unit, and add their sale
to a counter they read before awaiting the ledger. Then the two fixes: `async with lock:` held
across the awaits, and reserving the unit before awaiting (no lock at all: in asyncio, code with
no `await` between the check and the act cannot be interrupted).

`async-race --python` runs this on the same seeded buyers (the same splitmix64 draws, checked
with a checksum per run) and prints both languages in one table:
    cargo run --release -p examples-async --bin async-race -- --python
Alone:
    python3 examples-async/python/async_race.py --stock 50 --buyers 200 --runs 3

Prints one JSON line: {"python", "wall_s", "schedule_checksums",
"variants": {name: {"bought", "oversold", "lost_updates", "declined", "wall_s",
"threads"}}}, one list entry
per run.
"""
import argparse
import asyncio
import json
import math
import sys
import threading
import time

MASK = (1 << 64) - 1


def splitmix64(state):
    """Vigna's splitmix64, as async-race.rs draws it: returns (new state, output)."""
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


class Buyer:
    __slots__ = ("arrive", "pay", "declined")

    def __init__(self, arrive, pay, declined):
        self.arrive, self.pay, self.declined = arrive, pay, declined


def schedule(args, run):
    """The buyers of one run and the checksum the Rust side computes for the same draws."""
    state = args.seed ^ ((run * 0xD1B54A32D192ED03) & MASK)
    declined_below = math.floor(args.decline_rate * 10_000 + 0.5)
    arrive_us = checksum = 0
    buyers = []
    for _ in range(args.buyers):
        state, r = splitmix64(state)
        arrive_us += r % 1000
        state, r = splitmix64(state)
        pay_us = 1000 + r % (args.payment_ms * 1000)
        state, r = splitmix64(state)
        declined = r % 10_000 < declined_below
        checksum = (checksum * 31 + (arrive_us ^ (pay_us << 20) ^ int(declined))) & MASK
        buyers.append(Buyer(arrive_us / 1e6, pay_us / 1e6, declined))
    return buyers, checksum


class Inventory:
    def __init__(self, stock):
        self.stock = stock
        self.sold = 0  # the sale counter, updated after the ledger write


async def pay(buyer):
    """The payment provider: an await, where every other coroutine gets to run."""
    await asyncio.sleep(buyer.pay)
    return not buyer.declined


async def write_to_ledger():
    await asyncio.sleep(0.001)


async def checkout_racy(shop, buyer):
    if shop.stock <= 0:
        return "sold_out"                 # check...
    if not await pay(buyer):              # ...others pass the same check while we wait...
        return "declined"
    shop.stock -= 1                       # ...and act on it: oversold
    sold = shop.sold                      # read...
    await write_to_ledger()               # ...others count their sales meanwhile...
    shop.sold = sold + 1                  # ...and this write erases them: lost updates
    return "bought"


async def checkout_locked(shop, lock, buyer):
    async with lock:                      # one checkout at a time, payment included
        if shop.stock <= 0:
            return "sold_out"
        if not await pay(buyer):
            return "declined"
        shop.stock -= 1
        sold = shop.sold
        await write_to_ledger()
        shop.sold = sold + 1
        return "bought"


async def checkout_reserved(shop, buyer):
    if shop.stock <= 0:                   # check and take with no await in between:
        return "sold_out"                 # no other coroutine can run here
    shop.stock -= 1
    if not await pay(buyer):
        shop.stock += 1                   # declined: the unit goes back on the shelf
        return "declined"
    await write_to_ledger()
    shop.sold += 1                        # read-modify-write with no await inside
    return "bought"


async def run_sale(variant, stock, buyers):
    shop, lock = Inventory(stock), asyncio.Lock()

    async def buyer_task(buyer):
        await asyncio.sleep(buyer.arrive)
        if variant == "racy":
            end = await checkout_racy(shop, buyer)
        elif variant == "lock_across_awaits":
            end = await checkout_locked(shop, lock, buyer)
        else:
            end = await checkout_reserved(shop, buyer)
        return end, threading.get_ident()

    started = time.perf_counter()
    ends = await asyncio.gather(*(buyer_task(b) for b in buyers))
    wall = time.perf_counter() - started
    bought = sum(1 for end, _ in ends if end == "bought")
    return {
        "bought": bought,
        "oversold": max(0, bought - stock),
        "lost_updates": max(0, bought - shop.sold),
        "declined": sum(1 for end, _ in ends if end == "declined"),
        "threads": len({thread for _, thread in ends}),
        "wall_s": wall,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stock", type=int, default=50)
    p.add_argument("--buyers", type=int, default=200)
    p.add_argument("--payment-ms", type=int, default=10)
    p.add_argument("--decline-rate", type=float, default=0.1)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    # splitmix64's reference outputs for seed 0: the same draws as the Rust side.
    assert splitmix64(0)[1] == 0xE220A8397B1DCDAF

    started = time.perf_counter()
    schedules = [schedule(args, run) for run in range(args.runs)]
    variants = {}
    for variant in ("racy", "lock_across_awaits", "reserve_first"):
        runs = [asyncio.run(run_sale(variant, args.stock, buyers)) for buyers, _ in schedules]
        variants[variant] = {
            key: [r[key] for r in runs] for key in ("bought", "oversold", "lost_updates", "declined", "wall_s")
        }
        variants[variant]["threads"] = max(r["threads"] for r in runs)
    print(json.dumps({
        "python": sys.version.split()[0],
        "wall_s": time.perf_counter() - started,
        "schedule_checksums": [checksum for _, checksum in schedules],
        "variants": variants,
    }))


if __name__ == "__main__":
    main()
