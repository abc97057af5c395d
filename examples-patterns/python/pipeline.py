#!/usr/bin/env python3
"""A processing pipeline the course's way: read -> parse -> transform -> aggregate, a few
threads per stage, bounded `queue.Queue`s between the stages.

Course section 8.4, "Pipeline de traitement" (the data analysis / report generation case). The
Rust twin, `cargo run -p examples-patterns --bin pipeline -- --python`, runs this file on the
same CSV files with the same thread counts and per-file costs, and prints both languages in
one table. Standalone, on a folder of `date,region,product,currency,qty,unit_price` files:

    python3 examples-patterns/python/pipeline.py ./sales --readers 2 --transformers 1

Each stage's threads loop on `get()` until they take a `STOP`; when every thread of a stage
has stopped, the main thread puts one `STOP` per thread of the next stage. Reading sleeps
`--read-us` per file (slow storage: the GIL is released); the transform burns `--transform-us`
of CPU per file (holding the GIL: a second transform thread does not help, unlike Rust's).
Money is exact: prices are parsed as decimal text into cents, with the Rust example's limits.

Prints one JSON object on its last line: files, records, rows, rejected, wall_s, files_per_s,
each stage's utilisation (busy / (wall x threads)), the bottleneck, and the report as CSV text
(region,product,rows,qty,revenue_eur,large_orders), which the Rust side compares with its own.
"""
import argparse
import json
import os
import queue
import threading
import time
import unicodedata
from collections import defaultdict

HEADER = "date,region,product,currency,qty,unit_price"
EUR_MILLI = {"EUR": 1000, "USD": 920, "GBP": 1170, "CHF": 1040}
MAX_QTY, MAX_UNIT_PRICE_CENTS, MAX_NAME_CHARS = 1_000_000, 100_000_000, 64
LARGE_ORDER_EUR_CENTS = 100_000
STOP = object()
MASK = (1 << 64) - 1


def digits(s):
    """ASCII digits only (int() would also take '+3', ' 3' or '3_0')."""
    return int(s) if s and s.isascii() and s.isdigit() else None


def parse_cents(s):
    units, _, decimals = s.partition(".")
    if "." in s and len(decimals) not in (1, 2):
        return None
    u, d = digits(units), digits(decimals) if "." in s else 0
    if u is None or d is None:
        return None
    return u * 100 + (d * 10 if len(decimals) == 1 else d)


def parse_record(line):
    """Returns (region, product, currency, qty, cents) or raises ValueError with the reason."""
    fields = line.split(",")
    if len(fields) != 6:
        raise ValueError(f"expected 6 fields, found {len(fields)}")
    _, region, product, currency, qty_text, price = fields
    if currency not in EUR_MILLI:
        raise ValueError(f"unknown currency {currency!r}")
    qty = digits(qty_text)
    if qty is None or qty > MAX_QTY:
        raise ValueError(f"quantity {qty_text!r} is not a whole number from 0 to {MAX_QTY}")
    cents = parse_cents(price)
    if cents is None or cents > MAX_UNIT_PRICE_CENTS:
        raise ValueError(f"unit price {price!r} is not an amount like 12.50")
    for name in (region, product):
        if (not name or len(name) > MAX_NAME_CHARS
                or any(unicodedata.category(ch) == "Cc" for ch in name)):
            raise ValueError(f"name {name!r} is empty, too long or has control characters")
    return region, product, currency, qty, cents


def parse_file(name, data):
    """(name, records, sales, rejections): blank lines and a first-line header are skipped."""
    sales, rejected, records = [], [], 0
    for i, raw in enumerate(data.split(b"\n")):
        raw = raw.removesuffix(b"\r")
        if not raw.strip() or (i == 0 and raw == HEADER.encode()):
            continue
        records += 1
        try:
            sales.append(parse_record(raw.decode("utf-8")))
        except UnicodeDecodeError:
            rejected.append((i + 1, "not valid UTF-8"))
        except ValueError as e:
            rejected.append((i + 1, str(e)))
    return name, records, sales, rejected


def burn_cpu(seed, rounds):
    """xorshift64, like the Rust stage: work that needs the CPU (and the GIL) the whole time."""
    x = seed | 1
    for _ in range(rounds):
        x ^= (x << 13) & MASK
        x ^= x >> 7
        x ^= (x << 17) & MASK
    return x


def rounds_per_us():
    """How many burn_cpu rounds this interpreter does per microsecond of CPU (measured for
    20 ms of this thread's CPU time, not wall time: a busy machine cannot skew it), so
    --transform-us means the same CPU time in both languages."""
    start, rounds = time.thread_time(), 0
    while time.thread_time() - start < 0.02:
        burn_cpu(rounds, 1000)
        rounds += 1000
    return rounds / ((time.thread_time() - start) * 1e6)


class Stage:
    """`threads` threads applying `work` to what arrives on `inbox` until each takes a STOP."""

    def __init__(self, name, threads, work, inbox, outbox):
        self.name, self.busy, self.lock = name, 0.0, threading.Lock()
        self.threads = [threading.Thread(target=self.loop, args=(work, inbox, outbox),
                                         name=f"{name}-{i}") for i in range(threads)]

    def loop(self, work, inbox, outbox):
        while (item := inbox.get()) is not STOP:
            t = time.perf_counter()
            result = work(item)
            with self.lock:
                self.busy += time.perf_counter() - t
            if outbox is not None:
                outbox.put(result)  # blocks while the next stage is behind: backpressure


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", help="folder of .csv files")
    parser.add_argument("--readers", type=int, default=1)
    parser.add_argument("--parsers", type=int, default=1)
    parser.add_argument("--transformers", type=int, default=1)
    parser.add_argument("--read-us", type=int, default=4000)
    parser.add_argument("--transform-us", type=int, default=2500)
    parser.add_argument("--queue", type=int, default=16)
    parser.add_argument("--max-rejected", type=int, default=0)
    args = parser.parse_args()
    if min(args.readers, args.parsers, args.transformers, args.queue) < 1:
        parser.error("thread counts and --queue must be at least 1")
    paths = sorted(os.path.join(args.input, f) for f in os.listdir(args.input)
                   if f.endswith(".csv"))
    rounds = int(args.transform_us * rounds_per_us())

    report = defaultdict(lambda: [0, 0, 0, 0])  # (region, product) -> rows, qty, revenue, large
    tally = {"records": 0, "rows": 0, "rejected": [], "files": 0}

    def read(path):
        time.sleep(args.read_us / 1e6)  # slow storage
        with open(path, "rb") as f:
            return os.path.basename(path), f.read()

    def parse(item):
        return parse_file(*item)

    def transform(parsed):
        name, records, sales, rejected = parsed
        lines = [(r, p, q, q * c * EUR_MILLI[cur] // 1000) for r, p, cur, q, c in sales]
        burn_cpu(len(lines), rounds)
        return name, records, lines, rejected

    def aggregate(enriched):  # one thread: it owns the report, no lock needed
        name, records, lines, rejected = enriched
        for region, product, qty, revenue in lines:
            row = report[(region, product)]
            row[0] += 1
            row[1] += qty
            row[2] += revenue
            row[3] += revenue >= LARGE_ORDER_EUR_CENTS
        tally["files"] += 1
        tally["records"] += records
        tally["rows"] += len(lines)
        tally["rejected"] += [(name, line, why) for line, why in rejected]

    sources = queue.Queue()
    q1, q2, q3 = (queue.Queue(maxsize=args.queue) for _ in range(3))
    stages = [Stage("read", args.readers, read, sources, q1),
              Stage("parse", args.parsers, parse, q1, q2),
              Stage("transform", args.transformers, transform, q2, q3),
              Stage("aggregate", 1, aggregate, q3, None)]
    start = time.perf_counter()
    for path in paths:
        sources.put(path)
    for stage in stages:
        for t in stage.threads:
            t.start()
    # Stop the stages in order: each gets one STOP per thread once the previous one is done.
    inboxes = [sources, q1, q2, q3]
    for stage, inbox in zip(stages, inboxes):
        for _ in stage.threads:
            inbox.put(STOP)
        for t in stage.threads:
            t.join()
    wall = time.perf_counter() - start

    csv = "region,product,rows,qty,revenue_eur,large_orders\n" + "".join(
        f"{r},{p},{n},{q},{rev // 100}.{rev % 100:02},{large}\n"
        for (r, p), (n, q, rev, large) in sorted(report.items()))
    util = {s.name: s.busy / (wall * len(s.threads)) for s in stages}
    rejected = tally["rejected"]
    print(json.dumps({
        "ok": len(rejected) <= args.max_rejected,
        "error": None if len(rejected) <= args.max_rejected else
        "{} line {}: {} (rejected: {}, tolerated: {})".format(*rejected[0], len(rejected),
                                                               args.max_rejected),
        "files": tally["files"],
        "records": tally["records"],
        "rows": tally["rows"],
        "rejected": len(rejected),
        "wall_s": wall,
        "files_per_s": tally["files"] / max(wall, 1e-9),
        "utilisation": util,
        "bottleneck": max(util, key=util.get),
        "report_csv": csv,
    }))


if __name__ == "__main__":
    main()
