#!/usr/bin/env python3
"""Worker pool the course's way: e-commerce orders (validate -> charge -> confirmation e-mail)
on a `concurrent.futures.ThreadPoolExecutor`, each step retried on its own.

Course section 8.4, "Worker Pool" (the e-commerce case: "traitement de commandes et envoi
d'e-mails"). The Rust twin, `cargo run -p examples-patterns --bin worker-pool -- --python`,
writes its seeded orders to a JSON file, starts a second fake mail server, and runs this file
with the same flags; both languages are printed in one table. Standalone, with a mail server
of your own that answers `MAIL <id> <email>` lines with `250 ok`:

    python3 examples-patterns/python/worker_pool.py orders.json --mail-addr 127.0.0.1:2525

The payment gateway is simulated here exactly as in the Rust harness: 15 ms per call, and a
seeded coin per (order, attempt) decides a transient failure, so both languages see the same
failures and must end with the same counts. Each worker thread keeps its own connection to the
mail server (`threading.local`). Unlike the Rust pool's bounded queue, the executor's queue is
unbounded: `submit` never blocks, so a burst waits in memory instead of slowing the storefront.

Prints one JSON object on its last line: completed / failed per step / retries, double charges
(the gateway's ledger), orders per worker thread, wall_s, orders_per_s, queue-to-done latency.
"""
import argparse
import json
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

MASK = (1 << 64) - 1
CHARGE_LATENCY = 0.015  # seconds per gateway call
BACKOFF = 0.005  # first retry delay, doubled after each failed attempt


def cpu_task(seed, rounds):
    """shared::work::cpu_task (splitmix64), the mixer behind the seeded coins."""
    state, acc = seed, 0
    for _ in range(rounds):
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        acc ^= z ^ (z >> 31)
    return acc


def rotl(x, n):
    return ((x << n) | (x >> (64 - n))) & MASK


def flaky(seed, what, order_id, attempt, p):
    """The Rust harness's coin: does attempt `attempt` of `what` for this order fail?"""
    x = cpu_task(seed ^ rotl(what, 17) ^ rotl(order_id, 31) ^ attempt, 2)
    return (x >> 11) / float(1 << 53) < p


class TransientError(Exception):
    pass


class Gateway:
    """Slow, sometimes unavailable; keeps a ledger to prove nobody is charged twice."""

    def __init__(self, seed, fail_rate):
        self.seed, self.fail_rate = seed, fail_rate
        self.ledger, self.lock = Counter(), threading.Lock()

    def charge(self, order, attempt):
        time.sleep(CHARGE_LATENCY)  # the network round trip
        if flaky(self.seed, 1, order["id"], attempt, self.fail_rate):
            raise TransientError("503 gateway unavailable")
        with self.lock:
            self.ledger[order["id"]] += 1


class Mailer:
    """One connection per worker thread, opened on first use, dropped after an error."""

    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.addr, self.local = (host, int(port)), threading.local()

    def send(self, order):
        try:
            if getattr(self.local, "conn", None) is None:
                s = socket.create_connection(self.addr, timeout=5)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.local.conn = (s, s.makefile("r"))
            s, reader = self.local.conn
            s.sendall(f"MAIL {order['id']} {order['email']}\n".encode())
            reply = reader.readline().strip()
        except OSError as e:
            self.local.conn = None
            raise TransientError(str(e))
        if not reply.startswith("250"):
            raise TransientError(reply)


def validate(order):
    if "@" not in order["email"]:
        return f"invalid e-mail {order['email']!r}"
    if order["items"] == 0 or order["amount_cents"] == 0:
        return "empty order"
    return None


def with_retries(max_attempts, step):
    """Runs step(attempt) until it succeeds or the attempts are used up; returns
    (error or None, retries)."""
    delay = BACKOFF
    for attempt in range(1, max_attempts + 1):
        try:
            step(attempt)
            return None, attempt - 1
        except TransientError as e:
            if attempt == max_attempts:
                return f"{e} (after {max_attempts} attempts)", attempt - 1
            time.sleep(delay)
            delay *= 2


def process_order(order, queued_at, gateway, mailer, max_attempts):
    """validate -> charge -> e-mail; each step retried on its own, so a failed e-mail never
    causes a second charge."""
    if validate(order):
        status, retries = "failed_validate", 0
    else:
        err, retries = with_retries(max_attempts, lambda a: gateway.charge(order, a))
        if err:
            status = "failed_charge"
        else:
            err, more = with_retries(max_attempts, lambda a: mailer.send(order))
            retries += more
            status = "failed_email" if err else "completed"
    return status, retries, threading.current_thread().name, time.monotonic() - queued_at


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("orders", help="JSON list of {id, email, items, amount_cents}")
    parser.add_argument("--mail-addr", required=True, help="host:port of the mail server")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rate", type=float, default=250.0, help="orders/s (x4 in the burst)")
    parser.add_argument("--fail-rate", type=float, default=0.15)
    parser.add_argument("--max-attempts", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--stop-after", type=float, default=None, help="seconds")
    args = parser.parse_args()
    if args.workers < 1 or args.max_attempts < 1 or args.rate <= 0:
        parser.error("--workers, --max-attempts and --rate must be positive")
    with open(args.orders) as f:
        orders = json.load(f)

    gateway, mailer = Gateway(args.seed, args.fail_rate), Mailer(args.mail_addr)
    n, futures, submitted = len(orders), [], 0
    start = time.monotonic()
    deadline = start + args.stop_after if args.stop_after is not None else None
    with ThreadPoolExecutor(max_workers=args.workers, thread_name_prefix="worker") as pool:
        next_at = start
        for order in orders:
            burst = n // 3 <= order["id"] < 2 * n // 3  # the flash sale: 4x the rate
            next_at += 1.0 / (args.rate * (4 if burst else 1))
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if deadline is not None and time.monotonic() >= deadline:
                break
            futures.append(pool.submit(process_order, order, time.monotonic(), gateway,
                                       mailer, args.max_attempts))
            submitted += 1
        # Leaving the `with` block waits for every submitted order (shutdown(wait=True)).
    wall = time.monotonic() - start

    results = [f.result() for f in futures]
    statuses = Counter(status for status, _, _, _ in results)
    latencies = sorted(lat * 1e3 for _, _, _, lat in results)

    def pct(p):
        return latencies[round((len(latencies) - 1) * p)] if latencies else 0.0

    print(json.dumps({
        "submitted": submitted,
        "completed": statuses["completed"],
        "failed_validate": statuses["failed_validate"],
        "failed_charge": statuses["failed_charge"],
        "failed_email": statuses["failed_email"],
        "retries": sum(r for _, r, _, _ in results),
        "double_charges": sum(1 for c in gateway.ledger.values() if c > 1),
        "per_worker": sorted(Counter(name for _, _, name, _ in results).values(), reverse=True),
        "wall_s": wall,
        "orders_per_s": len(results) / max(wall, 1e-9),
        "latency_p50_ms": pct(0.5),
        "latency_p99_ms": pct(0.99),
    }))


if __name__ == "__main__":
    main()
