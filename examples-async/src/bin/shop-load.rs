//! Load generator for `shop-api`: virtual users shop concurrently, then the database is audited.
//!
//! Course section **8.2 — Programmation asynchrone avec asyncio** (the e-commerce row: the REST API
//! under load). Runs the same load against the Python twin (`--python`) for the comparison.
//! Crates: `tokio = { version = "1", features = ["full"] }`,
//! `hyper = { version = "1", features = ["client", "http1"] }`,
//! `hyper-util = { version = "0.1", features = ["tokio"] }`, `http-body-util = "0.1"`, `bytes = "1"`,
//! `serde_json = "1"`, `rand = "0.9"`,
//! `sqlx = { version = "0.9", default-features = false, features = ["runtime-tokio", "sqlite-bundled", "postgres", "any"] }`
//!
//! # Concepts
//! - **Closed-loop virtual users**: each user is one task with its own session and keep-alive
//!   connection; it sends its next request when the last one is answered, like a browser. N users
//!   = at most N requests in flight, so the server is measured at a known concurrency.
//! - **Concurrency inside one session**: some adds go out as two requests at once on two
//!   connections (a double click, two tabs), and some checkouts are retried while the first is
//!   still running (a client timeout): exactly what breaks load-modify-save and non-idempotent code.
//! - **Invariants, audited in SQL afterwards**: every user remembers what the server acknowledged
//!   (units added, removed, order ids per idempotency key); the database must agree. Sold +
//!   remaining = initial stock; each order's total = Σ qty × price; acknowledged adds = units
//!   ordered + units in the cart + units removed; one order per key. Latency says nothing about
//!   these: a racy server is often the faster one.
//!
//! # Run
//! ```text
//! cargo build --release -p examples-async --features shop
//! target/release/shop-load                          # starts its own shop-api (temporary database)
//! target/release/shop-load --racy                   # the naive server: oversell, lost updates, exit 1
//! target/release/shop-load --racy hold-connection --payment-latency 50ms   # pool exhaustion
//! target/release/shop-load --users 500 --views 10 --adds 0 --checkout-rate 0 --floor  # reads, and
//!                                                   # the same on a bare axum server, no database
//! target/release/shop-load --users 500 --views 0 --adds 1 --checkout-rate 1 --stock 1000000  # checkouts
//! target/release/shop-load --users 500 --think 50ms # 500 shoppers who read between clicks
//! target/release/shop-load --batch 1 --synchronous normal   # no group commit; no fsync per commit
//! target/release/shop-load --python                 # the same load on python/shop_api.py too
//! target/release/shop-load --addr 127.0.0.1:3000 --db shop.db   # a server you started
//! ```
//!
//! # What to observe
//! - Against the default server every invariant holds; with `--racy` the audit finds oversold
//!   units, lost cart units and duplicate orders, and the exit status is 1.
//! - Product reads are the cheap path (a snapshot in memory; `--floor` shows what is left of the
//!   machine for them); checkouts queue on SQLite's one writer, which commits them in batches
//!   (`--batch 1`: one commit, one fsync, per write). `cpu per request` is the figure that stays
//!   put when other programs share the cores.
//! - `--python`: the same table for aiohttp + aiosqlite, and the requests/s ratio.
//!
//! # Exercises
//! 1. Make users open loop (a fixed arrival rate, whatever the answers): how do p99 and the
//!    server's memory behave when the rate is above what it can serve?
//! 2. Compare `--users 500` with `--think 0ms` and `--think 50ms`: why is the p99 of the first
//!    about users ÷ requests/s whatever the server does (Little's law)?
//! 3. Add an invariant: no session holds a cart line for a product that does not exist.

// === Lesson: copy from here ===
/// One keep-alive HTTP/1.1 connection: a request at a time, reused until the server closes it.
mod client {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::client::conn::http1::{self, SendRequest};
    use hyper::{Method, Request, StatusCode, header};
    use hyper_util::rt::TokioIo;
    use std::net::SocketAddr;
    use tokio::net::TcpStream;

    pub type Error = Box<dyn std::error::Error + Send + Sync>;

    pub struct Reply {
        pub status: StatusCode,
        pub body: Bytes,
        pub set_cookie: Option<String>,
    }

    impl Reply {
        pub fn json(&self) -> serde_json::Value {
            serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
        }
    }

    pub struct Conn {
        addr: SocketAddr,
        sender: Option<SendRequest<Full<Bytes>>>,
    }

    impl Conn {
        /// Connects lazily, on the first request.
        pub fn new(addr: SocketAddr) -> Conn {
            Conn { addr, sender: None }
        }

        async fn ready(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, Error> {
            // A connection the server closed (keep-alive timeout) is replaced *before* sending:
            // resending a request that may have arrived could apply it twice.
            if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
                let tcp = TcpStream::connect(self.addr).await?;
                tcp.set_nodelay(true)?;
                let (sender, conn) = http1::handshake(TokioIo::new(tcp)).await?;
                tokio::spawn(conn); // drives the socket; ends when `sender` is dropped
                self.sender = Some(sender);
            }
            let sender = self.sender.as_mut().expect("set just above");
            sender.ready().await?;
            Ok(sender)
        }

        /// Sends one request and reads the whole answer.
        pub async fn send(
            &mut self,
            method: Method,
            path: &str,
            headers: &[(&str, &str)],
            json: Option<String>,
        ) -> Result<Reply, Error> {
            let host = self.addr.to_string();
            let mut req = Request::builder()
                .method(method)
                .uri(path)
                .header(header::HOST, host);
            for (name, value) in headers {
                req = req.header(*name, *value);
            }
            let body = match json {
                Some(j) => {
                    req = req.header(header::CONTENT_TYPE, "application/json");
                    Full::new(Bytes::from(j))
                }
                None => Full::new(Bytes::new()),
            };
            let req = req.body(body)?;
            let res = self.ready().await?.send_request(req).await?;
            let status = res.status();
            let set_cookie = res
                .headers()
                .get(header::SET_COOKIE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = res.into_body().collect().await?.to_bytes();
            Ok(Reply {
                status,
                body,
                set_cookie,
            })
        }
    }
}

/// One virtual user: log in, then browse → add → checkout until the deadline, remembering what
/// the server acknowledged.
mod user {
    use super::client::{Conn, Error, Reply};
    use hyper::{Method, StatusCode};
    use rand::{Rng, SeedableRng, rngs::StdRng};
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    /// What each visit does.
    #[derive(Clone, Debug)]
    pub struct Script {
        pub products: i64,
        pub views: u32,
        pub adds: u32,
        /// Probability that an add goes out as two requests at once (same product, same session).
        pub twin_rate: f64,
        pub checkout_rate: f64,
        /// Probability that a checkout is sent again, with the same key, while the first runs.
        pub retry_rate: f64,
        /// A pause after each answer (reading the page): users with think time are many
        /// sessions with few requests in flight, like a real shop's.
        pub think: Duration,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum Endpoint {
        Login,
        Product,
        AddToCart,
        ViewCart,
        RemoveFromCart,
        Checkout,
    }

    /// What the server acknowledged to one user: what its database must show afterwards.
    #[derive(Debug, Default)]
    pub struct Acked {
        pub token: String,
        /// Units whose add was answered 200.
        pub added: i64,
        pub removed: i64,
        /// Order ids received for each idempotency key (more than one: a double checkout).
        pub orders: BTreeMap<String, Vec<i64>>,
        /// Checkouts answered 201 (a new order), retries answered 200 (the same order again).
        pub created: u64,
        pub replayed: u64,
    }

    /// Runs one user while `keep_going()` says so; every answer is reported to `observe`.
    pub async fn run_user(
        addr: SocketAddr,
        script: &Script,
        id: u64,
        seed: u64,
        keep_going: impl Fn() -> bool,
        observe: &mut (impl FnMut(Endpoint, StatusCode, Duration) + Send),
    ) -> Result<Acked, Error> {
        let mut rng = StdRng::seed_from_u64(seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        think(script.think, &mut rng).await; // arrive spread out, not all at once
        let (mut main, mut twin) = (Conn::new(addr), Conn::new(addr));
        let login = format!(r#"{{"user":"user{id}"}}"#);
        let (r, took) = timed(main.send(Method::POST, "/login", &[], Some(login))).await;
        let r = r?;
        observe(Endpoint::Login, r.status, took);
        let token = r
            .set_cookie
            .as_deref()
            .and_then(|c| c.split(';').next())
            .and_then(|c| c.strip_prefix("session="))
            .ok_or_else(|| format!("login answered {} without a session cookie", r.status))?
            .to_string();
        let cookie = format!("session={token}");
        let auth = [("cookie", cookie.as_str())];
        let mut acked = Acked {
            token: token.clone(),
            ..Acked::default()
        };
        let mut visit = 0u64;
        while keep_going() {
            visit += 1;
            for _ in 0..script.views {
                let path = format!("/products/{}", rng.random_range(1..=script.products));
                let (r, took) = timed(main.send(Method::GET, &path, &auth, None)).await;
                observe(Endpoint::Product, r?.status, took);
                think(script.think, &mut rng).await;
            }
            for _ in 0..script.adds {
                let body = format!(
                    r#"{{"product_id":{},"qty":1}}"#,
                    rng.random_range(1..=script.products)
                );
                if rng.random_bool(script.twin_rate) {
                    let (a, b) = tokio::join!(
                        timed(main.send(Method::POST, "/cart/items", &auth, Some(body.clone()))),
                        timed(twin.send(Method::POST, "/cart/items", &auth, Some(body.clone()))),
                    );
                    for (r, took) in [a, b] {
                        acked.added += count_ok(&r?, took, observe);
                    }
                } else {
                    let (r, took) =
                        timed(main.send(Method::POST, "/cart/items", &auth, Some(body))).await;
                    acked.added += count_ok(&r?, took, observe);
                }
                think(script.think, &mut rng).await;
            }
            if !rng.random_bool(script.checkout_rate) {
                continue;
            }
            let key = format!("user{id}-visit{visit}");
            let headers = [auth[0], ("idempotency-key", key.as_str())];
            let mut replies = Vec::with_capacity(2);
            if rng.random_bool(script.retry_rate) {
                let delay = Duration::from_micros(rng.random_range(0..2_000));
                let (a, b) = tokio::join!(
                    timed(main.send(Method::POST, "/checkout", &headers, None)),
                    async {
                        tokio::time::sleep(delay).await; // "no answer yet: send it again"
                        timed(twin.send(Method::POST, "/checkout", &headers, None)).await
                    }
                );
                replies.extend([a, b]);
            } else {
                replies.push(timed(main.send(Method::POST, "/checkout", &headers, None)).await);
            }
            think(script.think, &mut rng).await;
            let mut out_of_stock = false;
            for (r, took) in replies {
                let r = r?;
                observe(Endpoint::Checkout, r.status, took);
                match r.status {
                    StatusCode::CREATED | StatusCode::OK => {
                        let order = r.json()["order_id"].as_i64().unwrap_or(-1);
                        let ids = acked.orders.entry(key.clone()).or_default();
                        if !ids.contains(&order) {
                            ids.push(order);
                        }
                        if r.status == StatusCode::CREATED {
                            acked.created += 1
                        } else {
                            acked.replayed += 1
                        }
                    }
                    StatusCode::CONFLICT => out_of_stock = true,
                    _ => {}
                }
            }
            if out_of_stock {
                // Empty the cart, as a shopper would after "out of stock", and count what went.
                let (r, took) = timed(main.send(Method::GET, "/cart", &auth, None)).await;
                let r = r?;
                observe(Endpoint::ViewCart, r.status, took);
                let lines = r.json().as_array().cloned().unwrap_or_default();
                for line in lines {
                    let path = format!("/cart/items/{}", line["product_id"].as_i64().unwrap_or(0));
                    let (r, took) = timed(main.send(Method::DELETE, &path, &auth, None)).await;
                    let r = r?;
                    observe(Endpoint::RemoveFromCart, r.status, took);
                    if r.status == StatusCode::OK {
                        acked.removed += r.json()["removed_qty"].as_i64().unwrap_or(0);
                    }
                }
            }
        }
        Ok(acked)
    }

    /// Units acknowledged by one add (1 or 0), reported to `observe`.
    fn count_ok(
        r: &Reply,
        took: Duration,
        observe: &mut impl FnMut(Endpoint, StatusCode, Duration),
    ) -> i64 {
        observe(Endpoint::AddToCart, r.status, took);
        i64::from(r.status == StatusCode::OK)
    }

    /// Sleeps about `pause` (0.5× to 1.5×): with the same pause for everyone, users that started
    /// together stay in step and hit the server in waves that no real crowd produces.
    async fn think(pause: Duration, rng: &mut StdRng) {
        if !pause.is_zero() {
            tokio::time::sleep(pause.mul_f64(rng.random_range(0.5..1.5))).await;
        }
    }

    async fn timed<T>(f: impl Future<Output = T>) -> (T, Duration) {
        let start = Instant::now();
        let out = f.await;
        (out, start.elapsed())
    }
}

/// The audit: what the users were told must be what the database holds.
mod invariants {
    use super::user::Acked;
    use std::collections::HashMap;

    /// Everything found wrong; all zeros means every invariant holds.
    #[derive(Debug, Default, Clone, PartialEq, Eq)]
    pub struct Audit {
        /// Σ over products of (sold + remaining − initial) where positive: units sold twice.
        pub oversold_units: i64,
        pub negative_stock_products: i64,
        pub orders_checked: i64,
        pub wrong_totals: i64,
        /// Acknowledged adds that are neither ordered, nor in the cart, nor removed.
        pub lost_cart_units: i64,
        /// Units ordered or in carts beyond what was ever added (a cart sold twice).
        pub phantom_cart_units: i64,
        /// Orders beyond one per idempotency key.
        pub duplicate_orders: i64,
    }

    impl Audit {
        pub fn holds(&self) -> bool {
            let clean = Audit {
                orders_checked: self.orders_checked,
                ..Audit::default()
            };
            *self == clean
        }
    }

    pub async fn audit(url: &str, users: &[Acked]) -> sqlx::Result<Audit> {
        sqlx::any::install_default_drivers();
        let db = sqlx::AnyPool::connect(url).await?;
        let mut audit = Audit::default();
        let stock: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT p.initial_stock, p.stock, CAST(COALESCE(SUM(i.qty), 0) AS BIGINT) FROM products p \
             LEFT JOIN order_items i ON i.product_id = p.id GROUP BY p.id, p.initial_stock, p.stock",
        )
        .fetch_all(&db)
        .await?;
        for (initial, remaining, sold) in stock {
            audit.oversold_units += (sold + remaining - initial).max(0);
            audit.negative_stock_products += i64::from(remaining < 0);
        }
        let totals: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT o.total_cents, CAST(COALESCE(SUM(i.qty * i.price_cents), 0) AS BIGINT), \
             CAST(COALESCE(SUM(i.qty * p.price_cents), 0) AS BIGINT) FROM orders o \
             LEFT JOIN order_items i ON i.order_id = o.id LEFT JOIN products p ON p.id = i.product_id \
             GROUP BY o.id, o.total_cents",
        )
        .fetch_all(&db)
        .await?;
        audit.orders_checked = totals.len() as i64;
        audit.wrong_totals = totals
            .iter()
            .filter(|(t, lines, list)| t != lines || t != list)
            .count() as i64;
        // Per session: units ordered, units in the cart, orders.
        let per_token = |sql: &'static str| {
            let db = db.clone();
            async move {
                let rows: Vec<(String, i64)> = sqlx::query_as(sql).fetch_all(&db).await?;
                Ok::<HashMap<String, i64>, sqlx::Error>(rows.into_iter().collect())
            }
        };
        let ordered = per_token(
            "SELECT o.token, CAST(SUM(i.qty) AS BIGINT) FROM orders o \
             JOIN order_items i ON i.order_id = o.id GROUP BY o.token",
        )
        .await?;
        let in_cart =
            per_token("SELECT token, CAST(SUM(qty) AS BIGINT) FROM cart_items GROUP BY token")
                .await?;
        let orders = per_token("SELECT token, COUNT(*) FROM orders GROUP BY token").await?;
        for u in users {
            let held = ordered.get(&u.token).copied().unwrap_or(0)
                + in_cart.get(&u.token).copied().unwrap_or(0)
                + u.removed;
            audit.lost_cart_units += (u.added - held).max(0);
            audit.phantom_cart_units += (held - u.added).max(0);
            let keys = u.orders.len() as i64;
            let seen = u.orders.values().map(|ids| ids.len() as i64).sum::<i64>();
            let in_db = orders.get(&u.token).copied().unwrap_or(0);
            audit.duplicate_orders += (seen - keys).max(0).max(in_db - keys);
        }
        db.close().await;
        Ok(audit)
    }
}

// === Harness: not part of the lesson ===
use anyhow::{Context, bail};
use clap::Parser;
use hyper::StatusCode;
use serde::Serialize;
use shared::cli;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use user::{Endpoint, Script};

/// How long a started server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Virtual users against shop-api (or its Python twin), then an audit of the database.
#[derive(Parser, Debug, Clone)]
#[command(version)]
struct Args {
    /// A running server (default: start shop-api, built next to this binary, on a temporary database).
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// The server's database, for the audit (a SQLite file, or a `sqlite:`/`postgres://` URL).
    /// Needed with --addr; without it the invariants are not checked.
    #[arg(long, value_parser = db_url)]
    db: Option<String>,
    /// Virtual users (each one session, at most two connections).
    #[arg(long, default_value_t = 100, value_parser = cli::usize_in(1, 10_000))]
    users: usize,
    /// How long the users shop.
    #[arg(long, default_value = "5s", value_parser = cli::duration_in(Duration::from_millis(10), Duration::from_secs(3600)))]
    duration: Duration,
    /// Product reads per visit.
    #[arg(long, default_value_t = 4, value_parser = cli::u32_in(0, 1000))]
    views: u32,
    /// Cart adds per visit.
    #[arg(long, default_value_t = 2, value_parser = cli::u32_in(0, 1000))]
    adds: u32,
    /// Probability that an add is sent twice at once on one session (lost updates show here).
    #[arg(long, default_value_t = 0.2, value_parser = cli::probability)]
    twin_rate: f64,
    /// Probability that a visit ends with a checkout.
    #[arg(long, default_value_t = 1.0, value_parser = cli::probability)]
    checkout_rate: f64,
    /// Probability that a checkout is retried with the same key while the first is running.
    #[arg(long, default_value_t = 0.1, value_parser = cli::probability)]
    retry_rate: f64,
    /// Pause of each user after each answer (0ms: back-to-back, the most load N users can give).
    #[arg(long, default_value = "0ms", value_parser = cli::duration_in(Duration::ZERO, Duration::from_secs(60)))]
    think: Duration,
    /// Products in the catalogue (of the server we start; read from the server otherwise).
    #[arg(long, default_value_t = 100, value_parser = cli::int_in(1i64, 100_000))]
    products: i64,
    /// Initial stock of each product (of the server we start).
    #[arg(long, default_value_t = 1_000, value_parser = cli::int_in(0i64, 1_000_000_000))]
    stock: i64,
    /// Naive versions for the server we start: a list, or nothing for shop-api's default
    /// (oversell, lost-updates, double-checkout).
    #[arg(long, num_args = 0.., value_delimiter = ',',
          value_parser = ["all", "oversell", "lost-updates", "double-checkout", "hold-connection"])]
    racy: Option<Vec<String>>,
    /// Payment latency of the server we start.
    #[arg(long, value_parser = cli::duration_in(Duration::ZERO, Duration::from_secs(10)))]
    payment_latency: Option<Duration>,
    /// Catalogue snapshot age of the server we start (`0s`: every product read hits the database).
    #[arg(long, value_parser = cli::duration_in(Duration::ZERO, Duration::from_secs(3600)))]
    cache_ttl: Option<Duration>,
    /// Read connections of the server we start.
    #[arg(long, value_parser = cli::u32_in(1, 1000))]
    pool: Option<u32>,
    /// Writes committed together at most, in the server we start (1: a commit per write).
    #[arg(long, value_parser = cli::usize_in(1, 10_000))]
    batch: Option<usize>,
    /// SQLite durability of the server we start: `full` (an fsync per commit) or `normal`.
    #[arg(long, value_parser = ["full", "normal"])]
    synchronous: Option<String>,
    /// Also run the same load on the Python twin (aiohttp + aiosqlite), then print the ratio.
    #[arg(long)]
    python: bool,
    /// The Python twin's script.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/python/shop_api.py"))]
    python_script: PathBuf,
    /// Runtime threads of this load tool (1 leaves the other core to the server).
    #[arg(long, default_value_t = 1, value_parser = cli::usize_in(1, 64))]
    threads: usize,
    /// Seed of the users' choices.
    #[arg(long, default_value_t = 42, value_parser = cli::u64_in(0, u64::MAX))]
    seed: u64,
    /// Also run the same load on a bare axum server with no database (static JSON): the floor
    /// this machine puts under any HTTP server, to read shop-api's figures against.
    #[arg(long)]
    floor: bool,
    /// (Internal) serve the floor server on this address; `--floor` starts it as a child.
    #[arg(long, hide = true)]
    serve_floor: Option<SocketAddr>,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(addr) = args.serve_floor {
        return serve_floor(addr, args.products);
    }
    // Two connections per user, and as many on the server's side when it runs here.
    shared::monitor::raise_nofile_limit().context("raising RLIMIT_NOFILE")?;
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .context("building the runtime")?;
    // Ctrl-C or SIGTERM ends the run early; the audit and the report still happen. Installed
    // before anything starts, so no signal finds the default action (death, an orphaned server).
    let stop = runtime.block_on(async { shared::shutdown::cancel_on_ctrl_c() });
    let mut runs = Vec::new();
    let rust = runtime.block_on(run_against(&args, ServerKind::Rust, &stop))?;
    runs.push(rust);
    let mut ratio = None;
    if args.python && !stop.is_cancelled() {
        let python = runtime.block_on(run_against(&args, ServerKind::Python, &stop))?;
        ratio =
            (python.requests_per_s > 0.0).then(|| runs[0].requests_per_s / python.requests_per_s);
        runs.push(python);
    }
    let mut of_floor = None;
    if args.floor && !stop.is_cancelled() {
        let floor = runtime.block_on(run_against(&args, ServerKind::Floor, &stop))?;
        of_floor =
            (floor.requests_per_s > 0.0).then(|| runs[0].requests_per_s / floor.requests_per_s);
        runs.push(floor);
    }
    if args.json {
        let out = serde_json::json!({
            "runs": runs, "rust_over_python": ratio, "rust_over_floor": of_floor
        });
        println!("{}", serde_json::to_string_pretty(&out).context("json")?);
    } else {
        if let Some(r) = ratio {
            println!("\nrust/python: {r:.1}x the requests/s");
        }
        if let Some(f) = of_floor {
            println!(
                "\nshop-api reaches {:.0}% of the floor's requests/s",
                f * 100.0
            );
        }
    }
    let broken: Vec<&LoadReport> = runs
        .iter()
        .filter(|r| r.audit.as_ref().is_some_and(|a| !a.holds))
        .collect();
    if !broken.is_empty() {
        for r in &broken {
            eprintln!("shop-load: invariants broken on the {} server", r.server);
        }
        std::process::exit(1);
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerKind {
    Rust,
    Python,
    /// A bare axum server, no database (`--floor`).
    Floor,
}

/// One endpoint's figures.
#[derive(Debug, Serialize)]
struct EndpointReport {
    endpoint: String,
    requests: u64,
    per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Answers by status code.
    statuses: BTreeMap<u16, u64>,
}

#[derive(Debug, Serialize)]
struct AuditReport {
    holds: bool,
    oversold_units: i64,
    negative_stock_products: i64,
    orders_checked: i64,
    wrong_totals: i64,
    lost_cart_units: i64,
    phantom_cart_units: i64,
    duplicate_orders: i64,
}

/// One run against one server.
#[derive(Debug, Serialize)]
struct LoadReport {
    server: String,
    users: usize,
    seconds: f64,
    requests: u64,
    requests_per_s: f64,
    orders_created: u64,
    orders_per_s: f64,
    retries_answered_with_the_same_order: u64,
    user_errors: u64,
    /// CPU (user + system) the server spent per request, when we started it.
    server_cpu_us_per_request: Option<f64>,
    load_tool_cpu_us_per_request: f64,
    endpoints: Vec<EndpointReport>,
    audit: Option<AuditReport>,
}

async fn run_against(
    args: &Args,
    kind: ServerKind,
    stop: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<LoadReport> {
    let scratch = ScratchDir::new(kind).context("temporary directory")?;
    let (mut server, addr, db_url, products) = match (args.addr, kind) {
        (Some(addr), ServerKind::Rust) => {
            let products = catalogue_size(addr)
                .await
                .context("reading GET /products")?;
            (None, addr, args.db.clone(), products)
        }
        _ => {
            let db_path = scratch.path().join("shop.db");
            let server = start_server(args, kind, &db_path)?;
            let addr = server.addr;
            (
                Some(server),
                addr,
                Some(db_url(&db_path.to_string_lossy()).map_err(anyhow::Error::msg)?),
                args.products,
            )
        }
    };
    let label = match kind {
        ServerKind::Rust => "shop-api (Rust)",
        ServerKind::Python => "shop_api.py (Python)",
        ServerKind::Floor => "bare axum, no database (floor)",
    };
    let server_pid = server.as_ref().map(|s| s.child.id());
    let cpu_at_start = (
        server_pid.and_then(shared::report::process_cpu),
        shared::report::self_cpu_time(),
    );
    let script = Script {
        products,
        views: args.views,
        adds: args.adds,
        twin_rate: args.twin_rate,
        checkout_rate: args.checkout_rate,
        retry_rate: args.retry_rate,
        think: args.think,
    };
    if !args.json {
        println!(
            "{label} on {addr}: {} users for {:?} (views {}, adds {}, twin adds {}, checkout {}, retries {})",
            args.users,
            args.duration,
            args.views,
            args.adds,
            args.twin_rate,
            args.checkout_rate,
            args.retry_rate
        );
    }
    let started = Instant::now();
    let deadline = started + args.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..args.users as u64 {
        let script = script.clone();
        let seed = args.seed;
        let stop = stop.clone();
        let keep_going = move || Instant::now() < deadline && !stop.is_cancelled();
        tasks.spawn(async move {
            let mut samples: Vec<(Endpoint, u16, u32)> = Vec::with_capacity(1024);
            let mut observe = |e: Endpoint, s: StatusCode, took: Duration| {
                samples.push((
                    e,
                    s.as_u16(),
                    u32::try_from(took.as_micros()).unwrap_or(u32::MAX),
                ));
            };
            let acked = user::run_user(addr, &script, id, seed, keep_going, &mut observe).await;
            (acked.map_err(|e| e.to_string()), samples)
        });
    }
    let mut users = Vec::with_capacity(args.users);
    let mut samples = Vec::new();
    let mut user_errors = 0u64;
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let (acked, s) = joined.context("a user task panicked")?;
        samples.extend(s);
        match acked {
            Ok(a) => users.push(a),
            Err(e) => {
                user_errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let elapsed = started.elapsed();
    let server_cpu = server_pid
        .and_then(shared::report::process_cpu)
        .zip(cpu_at_start.0)
        .map(|(now, then)| now.since(then).total());
    let own_cpu = shared::report::self_cpu_time().saturating_sub(cpu_at_start.1);
    if let Some(e) = &first_error {
        eprintln!("shop-load: {user_errors} users stopped on an error, the first: {e}");
    }
    let audit = match &db_url {
        _ if kind == ServerKind::Floor => None,
        Some(url) => Some(
            invariants::audit(url, &users)
                .await
                .context("auditing the database")?,
        ),
        None => {
            eprintln!("shop-load: invariants not checked: pass --db with the server's database");
            None
        }
    };
    if let Some(s) = server.as_mut() {
        s.stop();
    }
    let mut report = build_report(
        label,
        args.users,
        elapsed,
        &samples,
        &users,
        user_errors,
        audit,
    );
    let per_request = |cpu: Duration| cpu.as_secs_f64() * 1e6 / (report.requests.max(1) as f64);
    report.server_cpu_us_per_request = server_cpu.map(per_request);
    report.load_tool_cpu_us_per_request = per_request(own_cpu);
    if !args.json {
        print_report(&report);
    }
    Ok(report)
}

fn build_report(
    label: &str,
    users_n: usize,
    elapsed: Duration,
    samples: &[(Endpoint, u16, u32)],
    users: &[user::Acked],
    user_errors: u64,
    audit: Option<invariants::Audit>,
) -> LoadReport {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut by_endpoint: BTreeMap<Endpoint, (Vec<u32>, BTreeMap<u16, u64>)> = BTreeMap::new();
    for &(e, status, us) in samples {
        let entry = by_endpoint.entry(e).or_default();
        entry.0.push(us);
        *entry.1.entry(status).or_default() += 1;
    }
    let endpoints = by_endpoint
        .into_iter()
        .map(|(e, (mut lat, statuses))| {
            lat.sort_unstable();
            EndpointReport {
                endpoint: format!("{e:?}"),
                requests: lat.len() as u64,
                per_s: lat.len() as f64 / secs,
                p50_ms: percentile(&lat, 0.50),
                p99_ms: percentile(&lat, 0.99),
                max_ms: percentile(&lat, 1.0),
                statuses,
            }
        })
        .collect();
    let created: u64 = users.iter().map(|u| u.created).sum();
    LoadReport {
        server: label.to_string(),
        users: users_n,
        seconds: secs,
        requests: samples.len() as u64,
        requests_per_s: samples.len() as f64 / secs,
        orders_created: created,
        orders_per_s: created as f64 / secs,
        retries_answered_with_the_same_order: users.iter().map(|u| u.replayed).sum(),
        user_errors,
        server_cpu_us_per_request: None,
        load_tool_cpu_us_per_request: 0.0,
        endpoints,
        audit: audit.map(|a| AuditReport {
            holds: a.holds(),
            oversold_units: a.oversold_units,
            negative_stock_products: a.negative_stock_products,
            orders_checked: a.orders_checked,
            wrong_totals: a.wrong_totals,
            lost_cart_units: a.lost_cart_units,
            phantom_cart_units: a.phantom_cart_units,
            duplicate_orders: a.duplicate_orders,
        }),
    }
}

/// Nearest-rank percentile of sorted microseconds, in milliseconds.
fn percentile(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    f64::from(sorted_us[rank - 1]) / 1000.0
}

fn print_report(r: &LoadReport) {
    println!(
        "{:<16} {:>9} {:>9} {:>9} {:>9} {:>9}  statuses",
        "endpoint", "requests", "per s", "p50 ms", "p99 ms", "max ms"
    );
    for e in &r.endpoints {
        let statuses: Vec<String> = e.statuses.iter().map(|(s, n)| format!("{s}:{n}")).collect();
        println!(
            "{:<16} {:>9} {:>9.0} {:>9.2} {:>9.2} {:>9.1}  {}",
            e.endpoint,
            e.requests,
            e.per_s,
            e.p50_ms,
            e.p99_ms,
            e.max_ms,
            statuses.join(" ")
        );
    }
    println!(
        "total: {} requests in {:.2} s = {:.0} requests/s; {} orders = {:.0} orders/s; {} retries got their first order back",
        r.requests,
        r.seconds,
        r.requests_per_s,
        r.orders_created,
        r.orders_per_s,
        r.retries_answered_with_the_same_order
    );
    if let Some(server) = r.server_cpu_us_per_request {
        println!(
            "cpu per request: server {server:.0} us, load tool {:.0} us (user + system)",
            r.load_tool_cpu_us_per_request
        );
    }
    let Some(a) = &r.audit else { return };
    let line = |ok: bool, what: String| println!("  {} {what}", if ok { "ok  " } else { "FAIL" });
    println!("audit of the database:");
    line(
        a.oversold_units == 0 && a.negative_stock_products == 0,
        format!(
            "sold + remaining = initial stock (oversold units: {}, products below 0: {})",
            a.oversold_units, a.negative_stock_products
        ),
    );
    line(
        a.wrong_totals == 0,
        format!(
            "order totals = sum of qty x price ({} of {} wrong)",
            a.wrong_totals, a.orders_checked
        ),
    );
    line(
        a.lost_cart_units == 0 && a.phantom_cart_units == 0,
        format!(
            "acknowledged adds = ordered + in cart + removed (lost units: {}, phantom units: {})",
            a.lost_cart_units, a.phantom_cart_units
        ),
    );
    line(
        a.duplicate_orders == 0,
        format!(
            "one order per idempotency key (duplicates: {})",
            a.duplicate_orders
        ),
    );
}

/// `--db` as a sqlx URL, by shop-api's rule (a file ending in .db, .sqlite or .sqlite3, or a
/// `sqlite:` / `postgres://` URL); opened read-write without creating it.
fn db_url(db: &str) -> Result<String, String> {
    let is_file = [".db", ".sqlite", ".sqlite3"]
        .iter()
        .any(|ext| db.ends_with(ext));
    if ["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|p| db.starts_with(p))
    {
        Ok(db.to_string())
    } else if is_file && !db.contains('?') {
        Ok(format!("sqlite:{db}?mode=rw"))
    } else {
        Err(format!(
            "`{db}` is not a database: use the server's file (.db, .sqlite, .sqlite3) or a sqlite: or postgres:// URL"
        ))
    }
}

/// How many products a running server lists (the users pick among them).
async fn catalogue_size(addr: SocketAddr) -> anyhow::Result<i64> {
    let mut conn = client::Conn::new(addr);
    let r = conn
        .send(hyper::Method::GET, "/products", &[], None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let n = r.json().as_array().map_or(0, Vec::len);
    if n == 0 {
        bail!("GET /products answered {} with no products", r.status);
    }
    Ok(n as i64)
}

/// The floor server: the same routes and the same kind of JSON as shop-api, served from memory.
/// Whatever shop-api spends above this is the database, the pools and the limits.
#[tokio::main]
async fn serve_floor(addr: SocketAddr, products: i64) -> anyhow::Result<()> {
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    use axum::serve::ListenerExt;
    use std::sync::Arc;
    let catalogue: Arc<Vec<serde_json::Value>> = Arc::new(
        (1..=products)
            .map(|id| {
                let name = format!("product {id}");
                serde_json::json!({"id": id, "name": name, "price_cents": 199, "stock": 1000})
            })
            .collect(),
    );
    let list = Arc::clone(&catalogue);
    let login = || async {
        let token = format!(
            "{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>()
        );
        let cookie = format!("session={token}; Path=/");
        (
            [("set-cookie", cookie)],
            axum::Json(serde_json::json!({"user": "u"})),
        )
            .into_response()
    };
    let product = move |axum::extract::Path(id): axum::extract::Path<usize>| async move {
        match catalogue.get(id.wrapping_sub(1)) {
            Some(p) => axum::Json(p.clone()).into_response(),
            None => hyper::StatusCode::NOT_FOUND.into_response(),
        }
    };
    let app = axum::Router::new()
        .route("/login", post(login))
        .route(
            "/products",
            get(move || async move {
                axum::Json(serde_json::Value::from(&list[..list.len().min(100)]))
            }),
        )
        .route("/products/{id}", get(product));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .context("binding")?;
    let local = listener.local_addr().context("address")?;
    println!("floor listening on http://{local}");
    let listener = listener.tap_io(|tcp| drop(tcp.set_nodelay(true)));
    let stop = shared::shutdown::cancel_on_ctrl_c();
    axum::serve(listener, app)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
        .context("serving")
}

/// A directory of our own under the system's temporary directory, removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(kind: ServerKind) -> std::io::Result<ScratchDir> {
        let name = format!("shop-load-{}-{kind:?}", std::process::id());
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir)?;
        Ok(ScratchDir(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server we started (shop-api, or the Python twin), stopped with SIGTERM.
struct OwnServer {
    child: Child,
    addr: SocketAddr,
}

fn start_server(args: &Args, kind: ServerKind, db: &Path) -> anyhow::Result<OwnServer> {
    let db = db.to_string_lossy().to_string();
    let mut cmd = match kind {
        ServerKind::Rust => {
            let exe = std::env::current_exe().context("locating our own executable")?;
            let server = exe.with_file_name("shop-api");
            if !server.exists() {
                bail!(
                    "no --addr given and {} does not exist; build it first: cargo build --release -p examples-async --features shop",
                    server.display()
                );
            }
            let mut cmd = Command::new(server);
            cmd.args(["--addr", "127.0.0.1:0", "--db", &db, "--reset"]);
            cmd.args([
                "--products",
                &args.products.to_string(),
                "--stock",
                &args.stock.to_string(),
            ]);
            match args.racy.as_deref() {
                Some([]) => drop(cmd.arg("--racy")),
                Some(list) => drop(cmd.arg(format!("--racy={}", list.join(",")))),
                None => {}
            }
            if let Some(t) = args.cache_ttl {
                cmd.arg(format!("--cache-ttl={}ms", t.as_millis()));
            }
            if let Some(p) = args.pool {
                cmd.args(["--pool", &p.to_string()]);
            }
            if let Some(b) = args.batch {
                cmd.args(["--batch", &b.to_string()]);
            }
            if let Some(s) = &args.synchronous {
                cmd.args(["--synchronous", s]);
            }
            cmd
        }
        ServerKind::Floor => {
            let exe = std::env::current_exe().context("locating our own executable")?;
            let mut cmd = Command::new(exe);
            cmd.args([
                "--serve-floor",
                "127.0.0.1:0",
                "--products",
                &args.products.to_string(),
            ]);
            cmd
        }
        ServerKind::Python => {
            let script = &args.python_script;
            let probe = Command::new("python3")
                .args(["-c", "import aiohttp, aiosqlite"])
                .output();
            if !probe.is_ok_and(|o| o.status.success()) {
                bail!(
                    "--python needs python3 with aiohttp and aiosqlite: pip install -r {}",
                    script.with_file_name("requirements.txt").display()
                );
            }
            let mut cmd = Command::new("python3");
            cmd.arg(script)
                .args(["--port", "0", "--db", &db, "--reset"]);
            cmd.args([
                "--products",
                &args.products.to_string(),
                "--stock",
                &args.stock.to_string(),
            ]);
            cmd
        }
    };
    if let Some(l) = args.payment_latency {
        match kind {
            ServerKind::Rust => cmd.arg(format!("--payment-latency={}us", l.as_micros())),
            ServerKind::Python => {
                cmd.arg(format!("--payment-latency-ms={}", l.as_secs_f64() * 1e3))
            }
            ServerKind::Floor => &mut cmd,
        };
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the server")?;
    let stdout = child.stdout.take().context("server stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok);
        let _ = tx.send(first);
        // Keep draining: a server blocked on a full pipe would stall the run.
        lines.map_while(Result::ok).for_each(drop);
    });
    let first = rx
        .recv_timeout(START_TIMEOUT)
        .ok()
        .flatten()
        .unwrap_or_default();
    let addr = first
        .rsplit("http://")
        .next()
        .and_then(|a| a.trim().parse().ok());
    let Some(addr) = addr else {
        let _ = child.kill();
        let _ = child.wait();
        bail!("the server did not print `... listening on http://ADDR` (first line: {first:?})");
    };
    Ok(OwnServer { child, addr })
}

impl OwnServer {
    fn stop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child's pid; no memory involved.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let _ = self.child.wait();
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<u32> = (1..=100).map(|x| x * 1000).collect();
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 0.50), 50.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.99), 0.0);
    }

    #[test]
    fn an_audit_with_only_orders_checked_holds() {
        let ok = invariants::Audit {
            orders_checked: 5,
            ..Default::default()
        };
        assert!(ok.holds());
        let lost = invariants::Audit {
            lost_cart_units: 1,
            ..Default::default()
        };
        assert!(!lost.holds());
    }
}
