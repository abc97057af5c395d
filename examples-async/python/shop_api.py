"""The shop API of shop-api.rs, in the course's asyncio style: aiohttp + aiosqlite.

Same endpoints, same JSON, same schema and the same fixed SQL (conditional stock update, one
upsert per cart add, idempotency key with a unique index), so `shop-load --python` runs the same
load and audits the database the same way.

    pip install -r requirements.txt        # aiohttp, aiosqlite
    python3 shop_api.py --port 3001 --db shop-py.db
    shop-load --python                      # starts it on a temporary database, same load as Rust

The first stdout line is `shop_api.py listening on http://HOST:PORT`. Ctrl-C and SIGTERM stop it
cleanly (aiohttp finishes the requests in flight).

asyncio notes, next to the Rust version:
- One aiosqlite connection is one thread running statements one by one. Writes share one
  connection behind an `asyncio.Lock`, so a transaction is never interleaved with another
  handler's statements (the Rust version's one-connection write pool); reads round-robin
  over a few connections of their own (WAL mode: readers never wait for the writer).
- Every handler runs on the one event-loop thread: the JSON, the routing and the rate limiter
  need no lock, but they also never run in parallel.
"""

import argparse
import asyncio
import itertools
import json
import secrets
import signal
import sys
import time

import aiosqlite
from aiohttp import web

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, token TEXT NOT NULL, idem_key TEXT, "
    "total_cents BIGINT NOT NULL, created_ms BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS products (id BIGINT PRIMARY KEY, name TEXT NOT NULL, "
    "price_cents BIGINT NOT NULL, stock BIGINT NOT NULL, initial_stock BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sessions (token TEXT PRIMARY KEY, user_name TEXT NOT NULL, "
    "expires_ms BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cart_items (token TEXT NOT NULL, product_id BIGINT NOT NULL, "
    "qty BIGINT NOT NULL, PRIMARY KEY (token, product_id))",
    "CREATE TABLE IF NOT EXISTS order_items (order_id BIGINT NOT NULL, product_id BIGINT NOT NULL, "
    "qty BIGINT NOT NULL, price_cents BIGINT NOT NULL, PRIMARY KEY (order_id, product_id))",
    "CREATE UNIQUE INDEX IF NOT EXISTS orders_by_key ON orders (token, idem_key)",
]


def now_ms():
    return int(time.time() * 1000)


def price_cents(pid):
    return 199 + (pid * 7919) % 9801


class ShopError(Exception):
    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def error_response(status, message, headers=None):
    reason = web.Response(status=status).reason or "error"
    body = {"error": reason.lower().replace(" ", "_"), "message": message}
    return web.json_response(body, status=status, headers=headers)


class Db:
    """One writer connection behind a lock, a few reader connections."""

    def __init__(self, path, readers):
        self.path, self.readers_n = path, readers
        self.write_lock = asyncio.Lock()

    async def open(self):
        self.writer = await aiosqlite.connect(self.path, isolation_level=None)
        await self.writer.execute("PRAGMA journal_mode = WAL")
        await self.writer.execute("PRAGMA synchronous = NORMAL")
        for sql in SCHEMA:
            await self.writer.execute(sql)
        self.readers = [await aiosqlite.connect(self.path, isolation_level=None) for _ in range(self.readers_n)]
        self.next_reader = itertools.cycle(self.readers)

    def read(self):
        return next(self.next_reader)

    async def close(self):
        for c in [self.writer, *self.readers]:
            await c.close()


class RateLimiter:
    """A token bucket per key; the event loop is one thread, so no lock."""

    def __init__(self, rate, burst, max_keys=100_000):
        self.rate, self.burst, self.max_keys, self.buckets = rate, burst, max_keys, {}

    def check(self, key):
        now = time.monotonic()
        if key not in self.buckets and len(self.buckets) >= self.max_keys:
            self.buckets.clear()
        tokens, last = self.buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1:
            self.buckets[key] = (tokens - 1, now)
            return None
        self.buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate


def session_cookie(request):
    token = request.cookies.get("session", "")
    if len(token) == 64 and all(c in "0123456789abcdef" for c in token.lower()):
        return token
    return None


@web.middleware
async def guards(request, handler):
    app = request.app
    key = session_cookie(request)
    key = f"s:{key}" if key else f"ip:{request.remote}"
    wait = app["limiter"].check(key)
    if wait is not None:
        secs = str(max(1, int(-(-wait // 1))))
        return error_response(429, f"slow down: retry in {secs} s", {"Retry-After": secs})
    try:
        async with asyncio.timeout(app["args"].request_timeout_s):
            return await handler(request)
    except ShopError as e:
        return error_response(e.status, e.message, e.headers)
    except web.HTTPRequestEntityTooLarge as e:
        return error_response(413, e.text or "request body too large")
    except web.HTTPException as e:
        if e.status == 404 or e.status == 405:
            return error_response(e.status, "unknown route" if e.status == 404 else "method not allowed")
        raise
    except TimeoutError:
        return error_response(503, "the request timed out")


async def json_body(request):
    try:
        return await request.json()
    except json.JSONDecodeError as e:
        raise ShopError(400, f"bad JSON: {e}")


async def authenticate(request):
    token = session_cookie(request)
    if token is None:
        raise ShopError(401, "log in first: no valid session")
    db = request.app["db"]
    async with db.read().execute(
        "SELECT user_name FROM sessions WHERE token = ? AND expires_ms > ?", (token, now_ms())
    ) as cur:
        row = await cur.fetchone()
    if row is None:
        raise ShopError(401, "log in first: no valid session")
    return token


async def login(request):
    body = await json_body(request)
    user = body.get("user") if isinstance(body, dict) else None
    if not isinstance(user, str) or not 1 <= len(user) <= 64:
        raise ShopError(422, "`user` must be a name of 1 to 64 characters")
    token = secrets.token_hex(32)
    ttl = request.app["args"].session_ttl_s
    db = request.app["db"]
    async with db.write_lock:
        await db.writer.execute(
            "INSERT INTO sessions (token, user_name, expires_ms) VALUES (?, ?, ?)",
            (token, user, now_ms() + int(ttl * 1000)),
        )
    resp = web.json_response({"user": user, "expires_in_s": ttl})
    resp.set_cookie("session", token, httponly=True, samesite="Strict", path="/", max_age=int(max(1, ttl)))
    return resp


def product_json(row):
    return {"id": row[0], "name": row[1], "price_cents": row[2], "stock": row[3]}


def parse_id(text):
    try:
        return int(text)
    except ValueError:
        raise ShopError(400, f"`{text}` is not a product id")


async def list_products(request):
    async with request.app["db"].read().execute(
        "SELECT id, name, price_cents, stock FROM products ORDER BY id LIMIT 100"
    ) as cur:
        return web.json_response([product_json(r) for r in await cur.fetchall()])


async def show_product(request):
    pid = parse_id(request.match_info["id"])
    async with request.app["db"].read().execute(
        "SELECT id, name, price_cents, stock FROM products WHERE id = ?", (pid,)
    ) as cur:
        row = await cur.fetchone()
    if row is None:
        raise ShopError(404, f"unknown product {pid}")
    return web.json_response(product_json(row))


async def cart_lines(db, token):
    async with db.read().execute(
        "SELECT c.product_id, c.qty, p.price_cents FROM cart_items c JOIN products p "
        "ON p.id = c.product_id WHERE c.token = ? ORDER BY c.product_id",
        (token,),
    ) as cur:
        return [{"product_id": r[0], "qty": r[1], "price_cents": r[2]} for r in await cur.fetchall()]


async def view_cart(request):
    token = await authenticate(request)
    return web.json_response(await cart_lines(request.app["db"], token))


async def add_to_cart(request):
    token = await authenticate(request)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ShopError(422, "expected a JSON object")
    pid, qty = body.get("product_id"), body.get("qty", 1)
    if not isinstance(pid, int) or isinstance(pid, bool) or pid < 1:
        raise ShopError(422, "`product_id` must be a positive integer")
    if not isinstance(qty, int) or isinstance(qty, bool) or not 1 <= qty <= 1000:
        raise ShopError(422, "`qty` must be an integer from 1 to 1000")
    db = request.app["db"]
    async with db.write_lock:
        async with db.writer.execute(
            "INSERT INTO cart_items (token, product_id, qty) SELECT ?, id, ? FROM products WHERE id = ? "
            "ON CONFLICT (token, product_id) DO UPDATE SET qty = cart_items.qty + excluded.qty RETURNING qty",
            (token, qty, pid),
        ) as cur:
            row = await cur.fetchone()
    if row is None:
        raise ShopError(404, f"unknown product {pid}")
    return web.json_response({"product_id": pid, "qty": row[0]})


async def remove_from_cart(request):
    token = await authenticate(request)
    pid = parse_id(request.match_info["id"])
    db = request.app["db"]
    async with db.write_lock:
        async with db.writer.execute(
            "DELETE FROM cart_items WHERE token = ? AND product_id = ? RETURNING qty", (token, pid)
        ) as cur:
            row = await cur.fetchone()
    if row is None:
        raise ShopError(404, f"unknown product {pid} in the cart")
    return web.json_response({"product_id": pid, "removed_qty": row[0]})


async def order_by_key(db, token, key):
    async with db.read().execute("SELECT id FROM orders WHERE token = ? AND idem_key = ?", (token, key)) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    orders = await load_orders(db, token, row[0])
    return orders[0] if orders else None


async def load_orders(db, token, only=0):
    async with db.read().execute(
        "SELECT o.id, o.total_cents, i.product_id, i.qty, i.price_cents FROM orders o "
        "JOIN order_items i ON i.order_id = o.id WHERE o.token = ? AND (? = 0 OR o.id = ?) "
        "ORDER BY o.id, i.product_id LIMIT 10000",
        (token, only, only),
    ) as cur:
        rows = await cur.fetchall()
    orders = []
    for oid, total, pid, qty, price in rows:
        if not orders or orders[-1]["order_id"] != oid:
            orders.append({"order_id": oid, "total_cents": total, "items": [], "replayed": False})
        orders[-1]["items"].append({"product_id": pid, "qty": qty, "price_cents": price})
    return orders


async def checkout(request):
    token = await authenticate(request)
    key = request.headers.get("Idempotency-Key", "")
    if not 1 <= len(key) <= 64 or not all(33 <= ord(c) <= 126 for c in key):
        raise ShopError(400, "an `Idempotency-Key` header of 1 to 64 visible characters is required")
    db = request.app["db"]
    previous = await order_by_key(db, token, key)
    if previous is not None:
        return web.json_response({**previous, "replayed": True})
    lines = await cart_lines(db, token)
    if not lines:
        raise ShopError(422, "the cart is empty")
    total = sum(l["qty"] * l["price_cents"] for l in lines)
    await asyncio.sleep(request.app["args"].payment_latency_ms / 1000)  # the payment provider
    async with db.write_lock:
        w = db.writer
        await w.execute("BEGIN")
        try:
            async with w.execute(
                "INSERT INTO orders (token, idem_key, total_cents, created_ms) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (token, idem_key) DO NOTHING RETURNING id",
                (token, key, total, now_ms()),
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                await w.execute("ROLLBACK")
                previous = await order_by_key(db, token, key)
                return web.json_response({**previous, "replayed": True})
            order_id = row[0]
            for l in lines:
                cur = await w.execute(
                    "UPDATE products SET stock = stock - ? WHERE id = ? AND stock >= ?",
                    (l["qty"], l["product_id"], l["qty"]),
                )
                if cur.rowcount != 1:
                    raise ShopError(409, f"product {l['product_id']} is out of stock")
                await w.execute(
                    "INSERT INTO order_items VALUES (?, ?, ?, ?)",
                    (order_id, l["product_id"], l["qty"], l["price_cents"]),
                )
                cur = await w.execute(
                    "UPDATE cart_items SET qty = qty - ? WHERE token = ? AND product_id = ? AND qty >= ?",
                    (l["qty"], token, l["product_id"], l["qty"]),
                )
                if cur.rowcount != 1:
                    raise ShopError(409, "the cart changed during checkout")
            await w.execute("DELETE FROM cart_items WHERE token = ? AND qty <= 0", (token,))
            await w.execute("COMMIT")
        except BaseException:
            # Out of stock, an error, or a timeout cancelling us: nothing of this order stays.
            if w.in_transaction:
                await w.execute("ROLLBACK")
            raise
    return web.json_response({"order_id": order_id, "total_cents": total, "items": lines, "replayed": False}, status=201)


async def list_orders(request):
    token = await authenticate(request)
    return web.json_response(await load_orders(request.app["db"], token))


async def seed(db, args):
    async with db.write_lock:
        if args.reset:
            for t in ["order_items", "orders", "cart_items", "sessions", "products"]:
                await db.writer.execute(f"DELETE FROM {t}")
        async with db.writer.execute("SELECT COUNT(*) FROM products") as cur:
            (have,) = await cur.fetchone()
        if have == 0:
            await db.writer.executemany(
                "INSERT INTO products VALUES (?, ?, ?, ?, ?)",
                [(i, f"product {i}", price_cents(i), args.stock, args.stock) for i in range(1, args.products + 1)],
            )


async def main(args):
    db = Db(args.db, args.readers)
    await db.open()
    await seed(db, args)
    app = web.Application(middlewares=[guards], client_max_size=args.body_limit)
    app["db"], app["args"] = db, args
    app["limiter"] = RateLimiter(args.rate_limit, args.burst or max(1.0, 2 * args.rate_limit))
    app.add_routes([
        web.post("/login", login),
        web.get("/products", list_products),
        web.get("/products/{id}", show_product),
        web.get("/cart", view_cart),
        web.post("/cart/items", add_to_cart),
        web.delete("/cart/items/{id}", remove_from_cart),
        web.post("/checkout", checkout),
        web.get("/orders", list_orders),
    ])
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=10)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    host, port = site._server.sockets[0].getsockname()[:2]
    print(f"shop_api.py listening on http://{host}:{port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # SIGTERM is Ctrl-C: docker stop, systemd
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        print("shop_api.py: stopping, finishing the requests in flight", file=sys.stderr)
    finally:
        await runner.cleanup()  # stops accepting, lets in-flight requests finish
        await db.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3001)
    p.add_argument("--db", default="shop-py.db")
    p.add_argument("--reset", action="store_true")
    p.add_argument("--products", type=int, default=100)
    p.add_argument("--stock", type=int, default=1000)
    p.add_argument("--readers", type=int, default=4)
    p.add_argument("--payment-latency-ms", type=float, default=5.0)
    p.add_argument("--session-ttl-s", type=float, default=1800.0)
    p.add_argument("--rate-limit", type=float, default=1000.0)
    p.add_argument("--burst", type=float, default=None)
    p.add_argument("--request-timeout-s", type=float, default=10.0)
    p.add_argument("--body-limit", type=int, default=16 * 1024)
    a = p.parse_args()
    asyncio.run(main(a))
