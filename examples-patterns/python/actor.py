#!/usr/bin/env python3
"""An actor in asyncio: one task owns the inventory and reads its mailbox (an
`asyncio.Queue(maxsize)`); customers send commands that carry a Future for the reply.

Course section 8.4 (shared state without locks). The Rust twin,
`cargo run -p examples-patterns --bin actor -- --python`, writes its seeded customers to a
JSON file and runs this file on them with the same stock and mailbox size; both languages are
printed in one table. Standalone:

    python3 examples-patterns/python/actor.py customers.json --stock 200 --mailbox 64

Each command is handled to completion before the next, so "check the stock, then take it" is
atomic by construction: no lock, no oversell. A queue has no "closed" state in asyncio (before
3.13's `shutdown()`): the main task sends a `None` once every customer is done, and the actor
returns its final state. Rust's actor stops by itself when the last handle is dropped.

Prints one JSON object on its last line: granted, rejected, messages, wall_s, messages_per_s,
the final state, and whether stock + reserved = initial + restocked for every product.
"""
import argparse
import asyncio
import json
import time
from collections import Counter

RESTOCK = 10  # units a customer with "restock" delivers first


class OutOfStock(Exception):
    pass


async def inventory_actor(mailbox, stock):
    """Owns `stock`; nothing else touches it. Returns the final state when told to stop."""
    reserved, restocked, rejected, messages = Counter(), Counter(), 0, 0
    while (cmd := await mailbox.get()) is not None:
        messages += 1
        kind, product, qty, reply = cmd
        if kind == "reserve":
            available = stock.get(product)
            if available is None:
                reply.set_exception(KeyError(product))
                rejected += 1
            elif available < qty:
                reply.set_exception(OutOfStock(f"{qty} wanted, {available} available"))
                rejected += 1
            else:
                stock[product] = available - qty
                reserved[product] += qty
                reply.set_result(stock[product])
        elif kind == "restock":
            stock[product] = stock.get(product, 0) + qty
            restocked[product] += qty
            reply.set_result(stock[product])
        else:  # "stock"
            reply.set_result(stock.get(product))
    return {"stock": stock, "reserved": dict(reserved), "restocked": dict(restocked),
            "rejected": rejected, "messages": messages}


async def ask(mailbox, kind, product, qty=0):
    reply = asyncio.get_running_loop().create_future()
    await mailbox.put((kind, product, qty, reply))  # waits while the mailbox is full
    return await reply


async def customer(mailbox, product, qty, restock):
    if restock:
        await ask(mailbox, "restock", product, RESTOCK)
    try:
        await ask(mailbox, "reserve", product, qty)
        granted = True
    except OutOfStock:
        granted = False
    await ask(mailbox, "stock", product)  # a look at the stock page: a message like any other
    return granted


async def flash_sale(customers, initial, mailbox_size):
    mailbox = asyncio.Queue(maxsize=mailbox_size)
    actor = asyncio.create_task(inventory_actor(mailbox, dict(initial)))
    granted = await asyncio.gather(*(customer(mailbox, c["product"], c["qty"], c["restock"])
                                     for c in customers))
    await mailbox.put(None)  # every customer is done: stop the actor
    return sum(granted), await actor


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("customers", help="JSON list of {product, qty, restock}")
    parser.add_argument("--stock", type=int, default=200, help="initial stock of each product")
    parser.add_argument("--mailbox", type=int, default=64)
    args = parser.parse_args()
    if args.mailbox < 1 or args.stock < 0:
        parser.error("--mailbox must be at least 1 and --stock at least 0")
    with open(args.customers) as f:
        customers = json.load(f)
    products = sorted({c["product"] for c in customers} | {"laptop", "phone", "tablet",
                                                           "headphones"})
    initial = {p: args.stock for p in products}

    t0 = time.perf_counter()
    granted, state = asyncio.run(flash_sale(customers, initial, args.mailbox))
    wall = time.perf_counter() - t0
    conserved = all(state["stock"][p] + state["reserved"].get(p, 0)
                    == initial[p] + state["restocked"].get(p, 0) for p in products)
    print(json.dumps({
        "customers": len(customers),
        "granted": granted,
        "rejected": state["rejected"],
        "messages": state["messages"],
        "messages_per_s": state["messages"] / max(wall, 1e-9),
        "wall_s": wall,
        "conserved": conserved,
        "final_state": state,
    }))


if __name__ == "__main__":
    main()
