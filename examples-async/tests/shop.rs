//! End to end: the real `shop-api` binary on port 0 with a temporary SQLite database, driven by
//! real HTTP clients, and `shop-load` against it (fixed and `--racy`).
//!
//! No assertion depends on timing: where a test needs a request to be in flight, it waits for the
//! server's own log line saying so; sleeps only ever make a condition *more* certain (a session
//! that expires after 100 ms is certainly expired 500 ms later).
//!
//! With `DATABASE_URL` set to a PostgreSQL URL, `checkouts_on_postgres_sell_exactly_the_stock`
//! runs the 200-checkout test against it; without it, that test says it is skipped and passes.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

const SHOP_API: &str = env!("CARGO_BIN_EXE_shop-api");
const SHOP_LOAD: &str = env!("CARGO_BIN_EXE_shop-load");
/// Generous bound on anything the server prints or does: a hang guard, not a timing assertion.
const WAIT: Duration = Duration::from_secs(60);
/// The PostgreSQL tests share one database (`--reset`, killed connections): one at a time.
static POSTGRES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A running `shop-api` on its own temporary database; SIGKILLed if a test fails before stopping it.
struct Server {
    child: Child,
    addr: SocketAddr,
    db: tempfile::TempDir,
    /// stderr lines, as they come (the tests wait for log lines on it).
    log: mpsc::Receiver<String>,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        Server::start_with_env(extra, &[])
    }

    fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let db = tempfile::tempdir().expect("tempdir");
        let path = db.path().join("shop.db");
        let mut cmd = Command::new(SHOP_API);
        cmd.args(["--addr", "127.0.0.1:0", "--cache-ttl", "0s"]);
        if !extra.contains(&"--db") {
            cmd.arg("--db").arg(&path);
        }
        let mut child = cmd
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start shop-api");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().expect("a first line").expect("utf-8");
        let addr = first
            .strip_prefix("shop-api listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .parse()
            .expect("an address");
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        let log = forward_lines(child.stderr.take().expect("stderr"));
        Server {
            child,
            addr,
            db,
            log,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn db_path(&self) -> String {
        self.db
            .path()
            .join("shop.db")
            .to_string_lossy()
            .into_owned()
    }

    /// Waits for a stderr line containing every one of `parts`.
    fn wait_for_log(&self, parts: &[&str]) -> String {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self
                .log
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no log line with {parts:?}"));
            if parts.iter().all(|p| line.contains(p)) {
                return line;
            }
        }
    }

    fn signal(&self, sig: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe { libc::kill(pid, sig) };
    }

    /// SIGTERM, then the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        wait_bounded(&mut self.child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward_lines(stderr: ChildStderr) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_bounded(child: &mut Child) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running after {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WAIT)
        .build()
        .expect("client")
}

/// A logged-in user: its client and its session cookie.
struct User {
    http: reqwest::Client,
    cookie: String,
    base: String,
}

impl User {
    async fn login(server: &Server, name: &str) -> User {
        let http = client();
        let res = http
            .post(server.url("/login"))
            .header("content-type", "application/json")
            .body(format!(r#"{{"user":"{name}"}}"#))
            .send()
            .await
            .expect("login");
        assert_eq!(res.status(), StatusCode::OK);
        let cookie = res
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|c| c.split(';').next())
            .expect("a session cookie")
            .to_string();
        User {
            http,
            cookie,
            base: server.url(""),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
        key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", &self.cookie);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let bytes = res.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn add(&self, product: i64, qty: i64) -> (StatusCode, Value) {
        let body = format!(r#"{{"product_id":{product},"qty":{qty}}}"#);
        self.send(reqwest::Method::POST, "/cart/items", Some(&body), None)
            .await
    }

    async fn checkout(&self, key: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, "/checkout", None, Some(key))
            .await
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None, None).await
    }
}

/// 200 users with one unit in their cart each, all checking out at once; returns the statuses.
async fn two_hundred_checkouts(server: &Server) -> Vec<StatusCode> {
    let mut users = Vec::new();
    for i in 0..200 {
        let u = User::login(server, &format!("u{i}")).await;
        assert_eq!(u.add(1, 1).await.0, StatusCode::OK);
        users.push(u);
    }
    let mut set = tokio::task::JoinSet::new();
    for (i, u) in users.into_iter().enumerate() {
        set.spawn(async move { u.checkout(&format!("k{i}")).await.0 });
    }
    set.join_all().await
}

/// The stock as the server shows it (servers in these tests run with `--cache-ttl 0s`, so this is
/// the database's value, not a snapshot).
async fn stock_of(server: &Server, product: i64) -> i64 {
    let res = client()
        .get(server.url(&format!("/products/{product}")))
        .send()
        .await
        .expect("get");
    let v: Value = serde_json::from_slice(&res.bytes().await.expect("body")).expect("json");
    v["stock"].as_i64().expect("stock")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_checkouts_for_the_last_ten_items_sell_exactly_ten() {
    let server = Server::start(&[
        "--products",
        "1",
        "--stock",
        "10",
        "--payment-latency",
        "20ms",
        "--rate-limit",
        "100000",
    ]);
    let statuses = two_hundred_checkouts(&server).await;
    let sold = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((sold, refused), (10, 190), "statuses: {statuses:?}");
    assert_eq!(stock_of(&server, 1).await, 0);
    assert!(server.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_naive_checkout_oversells() {
    // The failure the fix prevents, reproduced: check, await the payment, write a stale stock.
    let server = Server::start(&[
        "--products",
        "1",
        "--stock",
        "10",
        "--payment-latency",
        "50ms",
        "--rate-limit",
        "100000",
        "--racy",
        "oversell",
    ]);
    let statuses = two_hundred_checkouts(&server).await;
    let sold = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert!(
        sold > 10,
        "the naive version sold only {sold} of 10: the race did not show"
    );
    assert!(server.stop().success());
}

#[tokio::test]
async fn sessions_are_isolated() {
    let server = Server::start(&[]);
    let alice = User::login(&server, "alice").await;
    let bob = User::login(&server, "bob").await;
    assert_eq!(alice.add(3, 2).await.0, StatusCode::OK);
    let (_, bob_cart) = bob.get("/cart").await;
    assert_eq!(bob_cart, serde_json::json!([]), "bob sees alice's cart");
    let (status, _) = bob
        .send(reqwest::Method::DELETE, "/cart/items/3", None, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "bob removed alice's line");
    assert_eq!(alice.checkout("a1").await.0, StatusCode::CREATED);
    let (_, bob_orders) = bob.get("/orders").await;
    assert_eq!(bob_orders, serde_json::json!([]));
    // The same key in another session is another order.
    assert_eq!(bob.add(3, 1).await.0, StatusCode::OK);
    let (status, order) = bob.checkout("a1").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(order["items"][0]["qty"], 1);
    let (_, alice_orders) = alice.get("/orders").await;
    assert_eq!(alice_orders.as_array().map(Vec::len), Some(1));
    assert_eq!(alice_orders[0]["items"][0]["qty"], 2);
}

#[tokio::test]
async fn requests_beyond_the_rate_limit_get_429_with_retry_after() {
    // One request per 100 s after a burst of 3: the 4th cannot have a token, however slow the run.
    let server = Server::start(&["--rate-limit", "0.01", "--burst", "3"]);
    let http = client();
    for _ in 0..3 {
        let res = http
            .get(server.url("/products/1"))
            .send()
            .await
            .expect("get");
        assert_eq!(res.status(), StatusCode::OK);
    }
    let res = http
        .get(server.url("/products/1"))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry >= 1);
    let body: Value = serde_json::from_slice(&res.bytes().await.expect("body")).expect("json");
    assert_eq!(body["error"], "too_many_requests");
}

#[tokio::test]
async fn bad_requests_get_clear_json_errors() {
    let server = Server::start(&["--session-ttl", "100ms", "--body-limit", "1024"]);
    let user = User::login(&server, "carol").await;
    let post = |body: String| {
        user.http
            .post(server.url("/cart/items"))
            .header("cookie", &user.cookie)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let check = |res: reqwest::Response, want: StatusCode| async move {
        assert_eq!(res.status(), want);
        let body: Value =
            serde_json::from_slice(&res.bytes().await.expect("body")).expect("a JSON error body");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        body
    };
    check(
        post(r#"{"product_id": 1,"#.into()).await.expect("send"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    check(
        post(format!(
            r#"{{"product_id": 1, "pad": "{}"}}"#,
            "x".repeat(4096)
        ))
        .await
        .expect("send"),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    let body = check(
        post(r#"{"product_id": 999999}"#.into())
            .await
            .expect("send"),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("999999"))
    );
    check(
        post(r#"{"product_id": 1, "qty": 0}"#.into())
            .await
            .expect("send"),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    check(
        client()
            .get(server.url("/products/424242"))
            .send()
            .await
            .expect("send"),
        StatusCode::NOT_FOUND,
    )
    .await;
    check(
        client()
            .get(server.url("/cart"))
            .send()
            .await
            .expect("send"),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let (status, _) = user
        .send(reqwest::Method::POST, "/checkout", None, None)
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a checkout without an idempotency key"
    );
    // Certainly expired 100 ms after login, whatever the machine's load.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = user.get("/cart").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retried_checkout_returns_the_same_order() {
    let server = Server::start(&["--payment-latency", "30ms"]);
    let user = User::login(&server, "dave").await;
    assert_eq!(user.add(5, 2).await.0, StatusCode::OK);
    // Twice at once (a retry while the first is running), then once more after both answered.
    let (a, b) = tokio::join!(user.checkout("retry-me"), user.checkout("retry-me"));
    let c = user.checkout("retry-me").await;
    let mut statuses = vec![a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CREATED],
        "one creates, the other replays"
    );
    assert_eq!(c.0, StatusCode::OK);
    assert_eq!(a.1["order_id"], b.1["order_id"]);
    assert_eq!(a.1["order_id"], c.1["order_id"]);
    assert_eq!(c.1["replayed"], true);
    let (_, orders) = user.get("/orders").await;
    assert_eq!(orders.as_array().map(Vec::len), Some(1), "{orders}");
    assert_eq!(stock_of(&server, 5).await, 998, "the stock went down once");
    // A late retry after the cart was filled again: still the first order, the new line stays.
    assert_eq!(user.add(6, 1).await.0, StatusCode::OK);
    let (status, late) = user.checkout("retry-me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(late["order_id"], a.1["order_id"]);
    let (_, cart) = user.get("/cart").await;
    assert_eq!(cart[0]["product_id"], 6, "{cart}");
    assert_eq!(stock_of(&server, 6).await, 1000);
}

// Multi-thread: the test thread blocks reading the server's log while a worker sends the checkout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_flight_request_completes_during_shutdown() {
    let server = Server::start_with_env(
        &["--payment-latency", "5s"],
        &[("RUST_LOG", "shop_api=debug")],
    );
    let user = User::login(&server, "erin").await;
    assert_eq!(user.add(7, 1).await.0, StatusCode::OK);
    let in_flight = tokio::spawn(async move { user.checkout("slow").await });
    server.wait_for_log(&["path=/checkout", "started"]);
    server.signal(libc::SIGTERM);
    server.wait_for_log(&["stopping"]);
    // While the checkout is still paying, the listener goes: new connections are refused. The
    // server logs `stopping` as it tells the accept loop to end, a moment before the listener is
    // closed, so poll (bounded) rather than expect it at once.
    let deadline = std::time::Instant::now() + WAIT;
    while std::net::TcpStream::connect(server.addr).is_ok() {
        assert!(
            !in_flight.is_finished(),
            "new connections were still accepted when the in-flight checkout finished"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "still accepting after {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let (status, order) = in_flight.await.expect("task");
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let mut server = server;
    let status = wait_bounded(&mut server.child);
    assert!(status.success(), "exit status {status}");
    server.wait_for_log(&["stopped"]);
}

fn shop_load(args: &[&str]) -> Output {
    Command::new(SHOP_LOAD)
        .args(args)
        .output()
        .expect("run shop-load")
}

#[test]
fn shop_load_finds_every_invariant_intact_on_the_fixed_server() {
    let out = shop_load(&[
        "--users",
        "20",
        "--duration",
        "1s",
        "--products",
        "5",
        "--stock",
        "200",
        "--twin-rate",
        "0.5",
        "--retry-rate",
        "0.5",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("  ok   ").count(), 4, "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

#[test]
fn shop_load_catches_the_oversell_and_the_lost_updates_of_the_racy_server() {
    let out = shop_load(&[
        "--users",
        "30",
        "--duration",
        "2s",
        "--products",
        "3",
        "--stock",
        "50",
        "--twin-rate",
        "1",
        "--racy",
        "--json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).expect("json");
    let audit = &report["runs"][0]["audit"];
    assert_eq!(audit["holds"], false);
    assert!(audit["oversold_units"].as_i64() > Some(0), "{audit}");
    assert!(audit["lost_cart_units"].as_i64() > Some(0), "{audit}");
}

#[test]
fn shop_load_audits_a_server_started_elsewhere() {
    let server = Server::start(&["--products", "4"]);
    let addr = server.addr.to_string();
    let db = server.db_path();
    let out = shop_load(&[
        "--addr",
        &addr,
        "--db",
        &db,
        "--users",
        "5",
        "--duration",
        "500ms",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("shop-api (Rust) on"), "{stdout}");
    assert_eq!(stdout.matches("  ok   ").count(), 4, "{stdout}");
    assert!(server.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkouts_on_postgres_sell_exactly_the_stock() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!(
            "SKIPPED checkouts_on_postgres_sell_exactly_the_stock: DATABASE_URL is not set (.ci/run sets it)"
        );
        return;
    };
    let _one_at_a_time = POSTGRES.lock().await;
    let mut server = Server::start(&[
        "--db",
        &url,
        "--reset",
        "--products",
        "1",
        "--stock",
        "10",
        "--rate-limit",
        "100000",
    ]);
    let statuses = two_hundred_checkouts(&server).await;
    let sold = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(sold, 10, "statuses: {statuses:?}");
    assert_eq!(stock_of(&server, 1).await, 0);
    server.signal(libc::SIGTERM);
    assert!(wait_bounded(&mut server.child).success());
}

#[test]
fn shop_load_runs_the_python_twin_and_its_invariants_hold() {
    let probe = Command::new("python3")
        .args(["-c", "import aiohttp, aiosqlite"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "SKIPPED shop_load_runs_the_python_twin: python3 with aiohttp and aiosqlite is not installed (pip install -r examples-async/python/requirements.txt)"
        );
        return;
    }
    let out = shop_load(&["--users", "10", "--duration", "1s", "--python", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(report["runs"][1]["server"], "shop_api.py (Python)");
    assert_eq!(report["runs"][1]["audit"]["holds"], true, "{report}");
    assert!(
        report["runs"][1]["orders_created"].as_u64() > Some(0),
        "{report}"
    );
    assert!(report["rust_over_python"].as_f64().is_some_and(|r| r > 0.0));
}

#[test]
fn shop_load_stops_early_on_sigterm_and_still_audits() {
    let mut child = Command::new(SHOP_LOAD)
        .args(["--users", "5", "--duration", "10m"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start shop-load");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a first line").expect("utf-8");
    assert!(first.contains("5 users for 600s"), "{first}");
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = wait_bounded(&mut child);
    assert!(status.success(), "exit status {status}; output {rest:?}");
    let out = rest.join("\n");
    assert!(out.contains("audit of the database"), "{out}");
    assert_eq!(out.matches("  ok   ").count(), 4, "{out}");
}

/// A database restart (here: every connection of ours killed) must cost a write or so, not every
/// write until shop-api is restarted: the writer replaces a connection that broke.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_the_writer_reconnects_after_losing_its_connection() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!(
            "SKIPPED on_postgres_the_writer_reconnects_after_losing_its_connection: DATABASE_URL is not set (.ci/run sets it)"
        );
        return;
    };
    let _one_at_a_time = POSTGRES.lock().await;
    let server = Server::start(&["--db", &url, "--reset", "--products", "1"]);
    User::login(&server, "before").await;
    sqlx::any::install_default_drivers();
    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = current_user \
         AND datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&mut admin)
    .await
    .expect("terminate shop-api's connections");
    let http = client();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let res = http
            .post(server.url("/login"))
            .header("content-type", "application/json")
            .body(r#"{"user":"after"}"#)
            .send()
            .await
            .expect("login");
        statuses.push(res.status());
        if res.status() == StatusCode::OK {
            break;
        }
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::OK),
        "logins after the connections were killed: {statuses:?}"
    );
    assert!(server.stop().success());
}
