//! An async REST shop on a real database: sessions, carts and stock under concurrent requests.
//!
//! Course section **8.2 — Programmation asynchrone avec asyncio** (the e-commerce row: "API REST,
//! sessions utilisateurs"). The Python twin is `python/shop_api.py` (aiohttp + aiosqlite).
//! Crates: `tokio = { version = "1", features = ["full"] }`,
//! `axum = { version = "0.8", features = ["json", "http1", "tokio"] }`,
//! `sqlx = { version = "0.9", default-features = false, features = ["runtime-tokio", "sqlite-bundled", "postgres", "any"] }`,
//! `serde_json = "1"`, `rand = "0.9"`, `tracing = "0.1"`
//!
//! # Concepts
//! - **The database is the source of truth**, not a `Mutex<HashMap>`: a mutex guards one process,
//!   while the stock must stay right across restarts, across several server processes, and (with
//!   PostgreSQL) across machines. The database's atomic statements and transactions are the only
//!   lock that all of them share; the handlers keep no state of their own.
//! - Four bugs that async handlers really have, each with `--racy` to bring the naive version back:
//!   **oversell** (read the stock, `.await`, write it back: fixed by `UPDATE … WHERE stock >= qty`),
//!   **lost cart updates** (load the cart, modify, save: fixed by one upsert `qty = qty + $n`),
//!   **double checkout** (a retried request makes a second order: fixed by an idempotency key and a
//!   unique index), **pool exhaustion** (the write connection held across a slow payment `.await`:
//!   fixed by paying first, then a short job of a few statements).
//! - **Group commit** (`mod writer`): SQLite takes one writer at a time, so one task owns the write
//!   connection and every write is a job sent to it. It runs all the jobs waiting at once, each in
//!   its own SAVEPOINT of ONE transaction, commits once (one fsync for all), then answers each one.
//!   Reads use a pool of N in WAL mode, where readers never wait for the writer.
//! - **Reads may be a moment old, writes may not**: product pages come from a catalogue snapshot
//!   (`--cache-ttl`; one request refreshes it, the others serve the old one); checkouts never read it.
//! - What a real API has: a token bucket per session (or IP) → 429 + `Retry-After`; a timeout
//!   (503); a body limit (413); JSON errors; graceful shutdown on Ctrl-C and SIGTERM (in-flight
//!   requests finish, new connections are refused); a tracing span per request.
//!
//! # Run
//! ```text
//! cargo run --release -p examples-async --features shop --bin shop-api     # shop.db, 127.0.0.1:3000
//! curl -si -c jar -H 'content-type: application/json' -d '{"user":"alice"}' localhost:3000/login
//! curl -s -b jar -H 'content-type: application/json' -d '{"product_id":1,"qty":2}' localhost:3000/cart/items
//! curl -s -b jar -X POST -H 'idempotency-key: k1' localhost:3000/checkout    # twice: same order
//! RUST_LOG=shop_api=debug cargo run -p examples-async --features shop --bin shop-api   # a span per request
//! cargo run ... --bin shop-api -- --db :memory: --racy    # oversell, lost updates, double checkout
//! cargo run ... --bin shop-api -- --db postgres://user:pass@localhost/shop   # same code, PostgreSQL
//! target/release/shop-load --batch 1   # no group commit (shop-load starts shop-api; see its --help)
//! ```
//! The first stdout line is always `shop-api listening on http://ADDR` (scripts and tests read it).
//!
//! # What to observe
//! - `shop-load` against the default server: every invariant holds. With `--racy` it reports
//!   oversold stock, lost cart updates and duplicate orders, and exits 1.
//! - On exit shop-api prints its writes per commit: one when idle, dozens under load. `--batch 1`
//!   (an fsync per write) falls to a few hundred checkouts/s; `--synchronous normal` gets them back
//!   by no longer promising that a power cut loses no answered order.
//! - `--racy hold-connection`: the writer waits through each payment, and so do all the shop's
//!   writes; those that wait longer than `--acquire-timeout` get 503.
//!
//! # Exercises
//! 1. Move the stock check into the transaction but keep `SELECT` then `UPDATE stock = $new`: does
//!    it still oversell on SQLite? On PostgreSQL at READ COMMITTED? Why do the answers differ?
//! 2. Key the rate limit by IP only and run `shop-load`: what happens to 500 users behind one NAT?
//! 3. Add `DELETE /orders/{id}` that puts the stock back. Which invariant must `shop-load` change?
//! 4. `--request-timeout 1ms` cuts a checkout during its payment: nothing is written, but what
//!    should a real shop do about the payment it authorised?
//! 5. Give PostgreSQL four writers sharing the queue: why can two batches now deadlock?

// === Lesson: copy from here ===
/// The database: a read pool, the one writer, the schema, the seed. Every handler goes through here.
mod db {
    use super::writer::{BoxFuture, Connect, WriteError, Writer};
    use sqlx::any::AnyPoolOptions;
    use sqlx::{AnyConnection, AnyPool, Connection};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    /// Which server is behind the `Any` driver (SQL is the same; ids and set-up differ).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Backend {
        Sqlite,
        Postgres,
    }

    /// Reads go to the `read` pool; every write goes through `writer`, the one task that owns
    /// the write connection (see `writer`).
    #[derive(Clone)]
    pub struct Db {
        pub read: AnyPool,
        pub writer: Writer,
        pub backend: Backend,
    }

    /// How `open` sets the database up.
    #[derive(Clone, Copy, Debug)]
    pub struct Settings {
        /// Connections in the read pool.
        pub readers: u32,
        /// A request that waits longer than this for a read connection or for the writer
        /// gets 503: a queue that grows without bound helps nobody.
        pub max_wait: Duration,
        /// Writes committed together at most (one transaction, one fsync).
        pub max_batch: usize,
        /// SQLite: `true` fsyncs the log at each commit (`synchronous = FULL`): an answered
        /// order survives a power cut. `false` (NORMAL) leaves that fsync to the checkpoint:
        /// a crash of the process loses nothing, a power cut can lose the last commits.
        pub durable: bool,
    }

    impl Default for Settings {
        fn default() -> Self {
            Settings {
                readers: 8,
                max_wait: Duration::from_secs(2),
                max_batch: 64,
                durable: true,
            }
        }
    }

    pub const TABLES: [&str; 5] = [
        "CREATE TABLE IF NOT EXISTS products (id BIGINT PRIMARY KEY, name TEXT NOT NULL, \
         price_cents BIGINT NOT NULL, stock BIGINT NOT NULL, initial_stock BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS sessions (token TEXT PRIMARY KEY, user_name TEXT NOT NULL, \
         expires_ms BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS cart_items (token TEXT NOT NULL, product_id BIGINT NOT NULL, \
         qty BIGINT NOT NULL, PRIMARY KEY (token, product_id))",
        "CREATE TABLE IF NOT EXISTS order_items (order_id BIGINT NOT NULL, product_id BIGINT NOT \
         NULL, qty BIGINT NOT NULL, price_cents BIGINT NOT NULL, PRIMARY KEY (order_id, product_id))",
        // NULL keys never collide: that is how the naive checkout (no key) gets duplicates.
        "CREATE UNIQUE INDEX IF NOT EXISTS orders_by_key ON orders (token, idem_key)",
    ];
    // The one line the two dialects disagree on: how a table numbers its rows.
    const SQLITE_ORDERS: &str = "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, \
        token TEXT NOT NULL, idem_key TEXT, total_cents BIGINT NOT NULL, created_ms BIGINT NOT NULL)";
    const POSTGRES_ORDERS: &str = "CREATE TABLE IF NOT EXISTS orders (id BIGINT GENERATED BY \
        DEFAULT AS IDENTITY PRIMARY KEY, token TEXT NOT NULL, idem_key TEXT, total_cents BIGINT \
        NOT NULL, created_ms BIGINT NOT NULL)";

    /// Opens `url` (`sqlite:shop.db?mode=rwc`, `sqlite::memory:`, `postgres://…`): creates the
    /// tables, starts the writer on a connection of its own, and opens the read pool.
    pub async fn open(url: &str, s: Settings) -> sqlx::Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let url = if backend == Backend::Sqlite && url.contains(":memory:") {
            // Each connection to `:memory:` is its own empty database; SQLite's `memdb` VFS
            // gives all the connections of this process one database, named with a `/`.
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let (pid, n) = (std::process::id(), NEXT.fetch_add(1, Relaxed));
            format!("sqlite:/shop-{pid}-{n}?mode=rwc&vfs=memdb")
        } else {
            url.to_string()
        };
        // How the writer opens its connection (again after losing it: a database restart).
        let writer_url = url.clone();
        let connect: Connect = Arc::new(move || {
            let url = writer_url.clone();
            Box::pin(async move {
                let mut conn = AnyConnection::connect(&url).await?;
                if backend == Backend::Sqlite {
                    for pragma in [
                        // Persistent in the file; set before the readers open it. Readers never
                        // wait for the writer, nor the writer for them (a no-op in memory).
                        "PRAGMA journal_mode = WAL",
                        if s.durable {
                            "PRAGMA synchronous = FULL"
                        } else {
                            "PRAGMA synchronous = NORMAL"
                        },
                        // The checkpoint (copy the log into the file, fsync) would run inside
                        // some unlucky commit, with every write queued behind it: `checkpoint`
                        // runs it beside the writer instead.
                        "PRAGMA wal_autocheckpoint = 0",
                    ] {
                        sqlx::query(pragma).execute(&mut conn).await?;
                    }
                }
                Ok(conn)
            })
        });
        let mut conn = connect().await?;
        let orders = match backend {
            Backend::Sqlite => SQLITE_ORDERS,
            Backend::Postgres => POSTGRES_ORDERS,
        };
        for sql in std::iter::once(orders).chain(TABLES) {
            sqlx::query(sql).execute(&mut conn).await?;
        }
        let read = AnyPoolOptions::new()
            .max_connections(s.readers)
            .acquire_timeout(s.max_wait)
            // The default pings each connection before lending it: one more round trip to
            // the database (to SQLite's thread) per query. A broken connection shows up as an
            // error on the query itself anyway.
            .test_before_acquire(false)
            .connect(&url)
            .await?;
        Ok(Db {
            read,
            writer: Writer::start(conn, connect, s.max_batch, s.max_wait),
            backend,
        })
    }

    impl Db {
        /// Runs `work` on the writer (see `Writer::run`), with the shop's error type.
        pub async fn write<T, F>(&self, work: F) -> Result<T, ShopError>
        where
            T: Send + 'static,
            F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, ShopError>>
                + Send
                + 'static,
        {
            self.writer.run(work).await
        }
    }

    /// Copies the write-ahead log into the database file on a read connection, so the fsync
    /// never stalls the writer (call it every second or so; a no-op on PostgreSQL).
    pub async fn checkpoint(db: &Db) -> sqlx::Result<()> {
        if db.backend == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&db.read)
                .await?;
        }
        Ok(())
    }

    /// Fills an empty catalogue: `count` products, `stock` of each, seeded prices.
    pub async fn seed(db: &Db, count: i64, stock: i64) -> Result<bool, ShopError> {
        let (have,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM products")
            .fetch_one(&db.read)
            .await?;
        if have > 0 {
            return Ok(false);
        }
        db.write(move |conn| {
            Box::pin(async move {
                for id in 1..=count {
                    sqlx::query("INSERT INTO products VALUES ($1, $2, $3, $4, $4)")
                        .bind(id)
                        .bind(format!("product {id}"))
                        .bind(price_cents(id))
                        .bind(stock)
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(true)
            })
        })
        .await
    }

    /// Deterministic prices (199 to 9,999 cents) so every run sells the same catalogue.
    pub fn price_cents(id: i64) -> i64 {
        199 + (id * 7_919) % 9_801
    }

    /// Wall-clock milliseconds: session expiry must mean the same thing to every server process.
    pub fn now_ms() -> i64 {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    }

    /// Every way a shop request can fail, and so every status the API answers with.
    #[derive(Debug)]
    pub enum ShopError {
        /// 401: no session cookie, or an expired or unknown one.
        Unauthorized,
        /// 404
        NotFound(String),
        /// 409: the request is valid but the world changed (out of stock).
        Conflict(String),
        /// 422: well-formed but not acceptable (an empty cart, a quantity of 0).
        Unprocessable(String),
        /// 503: no read connection, or no turn of the writer, came in time.
        Busy,
        /// 500
        Database(Arc<sqlx::Error>),
    }

    impl From<sqlx::Error> for ShopError {
        fn from(e: sqlx::Error) -> Self {
            match e {
                sqlx::Error::PoolTimedOut => ShopError::Busy,
                other => ShopError::Database(Arc::new(other)),
            }
        }
    }

    impl From<WriteError> for ShopError {
        fn from(e: WriteError) -> Self {
            match e {
                WriteError::Busy | WriteError::Closed => ShopError::Busy,
                WriteError::Batch(e) => ShopError::Database(e),
            }
        }
    }
}

/// Group commit: many requests, one writer, batching.
///
/// SQLite takes one writer at a time, and each commit costs a write of the log (and an fsync when
/// durable). So one task owns the write connection and every write of the shop is a *job* sent
/// to it through a bounded queue. The task takes every job waiting at that moment (up to
/// `max_batch`), runs them one after the other inside ONE transaction, each in its own SAVEPOINT,
/// commits once, and only then answers each job through its oneshot channel:
/// - each job still succeeds or fails on its own: a failed job (out of stock) is rolled back to
///   its savepoint, and the others in the batch keep their writes;
/// - nobody hears "done" before the commit that makes it true: if the commit fails, every job of
///   the batch is told so, and none of them was written;
/// - at low load a batch is one job and nothing waits for company; under load the batches grow
///   by themselves, and the cost of a commit is shared by all the jobs in it;
/// - a job waits at most `max_wait` for its turn (then 503: shed load rather than queue without
///   bound), and a job whose caller has gone (timed out, disconnected) is never run.
///
/// A job must not `.await` anything slow: every write of the shop waits behind it (see the
/// naive checkout that holds the writer through the payment). Nor panic: that ends the writer,
/// and every write after it gets 503.
mod writer {
    use sqlx::{AnyConnection, Connection};
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use std::time::{Duration, Instant};
    use tokio::sync::{mpsc, oneshot};

    pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
    /// Opens the write connection (again, if a database restart broke it).
    pub type Connect =
        Arc<dyn Fn() -> BoxFuture<'static, sqlx::Result<AnyConnection>> + Send + Sync>;

    /// Why a job got no answer of its own.
    #[derive(Clone, Debug)]
    pub enum WriteError {
        /// It waited longer than `max_wait` for its turn.
        Busy,
        /// The writer has stopped.
        Closed,
        /// Its batch could not be committed (or begun): nothing of it was written.
        Batch(Arc<sqlx::Error>),
    }

    /// A handle on the writer task; clones share it.
    #[derive(Clone)]
    pub struct Writer {
        inbox: mpsc::Sender<Message>,
        max_wait: Duration,
        counts: Arc<Counts>,
    }

    #[derive(Default)]
    struct Counts {
        batches: AtomicU64,
        jobs: AtomicU64,
    }

    enum Message {
        Job(Box<dyn Job>),
        /// Finish the jobs already queued, close the connection, then say so.
        Close(oneshot::Sender<()>),
    }

    impl Writer {
        /// Starts the writer task: it owns `conn`, and replaces it with `connect()` if it breaks.
        pub fn start(
            conn: AnyConnection,
            connect: Connect,
            max_batch: usize,
            max_wait: Duration,
        ) -> Writer {
            let max_batch = max_batch.max(1);
            // Room for a few batches: beyond that, senders wait (at most `max_wait`).
            let (inbox, jobs) = mpsc::channel(max_batch.saturating_mul(8));
            let counts = Arc::new(Counts::default());
            let shared = Arc::clone(&counts);
            tokio::spawn(write_loop(conn, connect, jobs, max_batch, max_wait, shared));
            Writer {
                inbox,
                max_wait,
                counts,
            }
        }

        /// Runs `work` on the writer's connection in the next batch and returns its result once
        /// that batch is committed. `Err` from `work` rolls back this job's writes only.
        pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
        where
            T: Send + 'static,
            E: From<WriteError> + Send + 'static,
            F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, E>>
                + Send
                + 'static,
        {
            let (reply, answer) = oneshot::channel();
            let job = Box::new(TypedJob {
                queued: Instant::now(),
                work,
                reply,
            });
            match tokio::time::timeout(self.max_wait, self.inbox.send(Message::Job(job))).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(WriteError::Closed.into()),
                Err(_) => return Err(WriteError::Busy.into()), // the queue stayed full
            }
            answer.await.unwrap_or(Err(WriteError::Closed.into())) // unanswered: it stopped
        }

        /// Lets the queued jobs finish, then closes the connection.
        pub async fn close(&self) {
            let (done, closed) = oneshot::channel();
            if self.inbox.send(Message::Close(done)).await.is_ok() {
                let _ = closed.await;
            }
        }

        /// (transactions committed, jobs run): jobs ÷ transactions is the batching.
        pub fn counts(&self) -> (u64, u64) {
            let c = &self.counts;
            (c.batches.load(Relaxed), c.jobs.load(Relaxed))
        }

        /// Jobs waiting in the queue now.
        pub fn queued(&self) -> usize {
            self.inbox.max_capacity() - self.inbox.capacity()
        }
    }

    /// What the writer needs of a job, whatever its result type.
    trait Job: Send {
        fn waited(&self) -> Duration;
        /// Its caller stopped waiting: running it would write what nobody will be told about.
        fn abandoned(&self) -> bool;
        fn refuse(self: Box<Self>, why: WriteError);
        /// Runs the work: did it succeed, and how to answer once the batch's fate is known.
        fn run(self: Box<Self>, conn: &mut AnyConnection) -> BoxFuture<'_, (bool, Answer)>;
    }

    /// Called after the commit: `Some` if the batch failed.
    type Answer = Box<dyn FnOnce(Option<WriteError>) + Send>;

    struct TypedJob<T, E, F> {
        queued: Instant,
        work: F,
        reply: oneshot::Sender<Result<T, E>>,
    }

    impl<T, E, F> Job for TypedJob<T, E, F>
    where
        T: Send + 'static,
        E: From<WriteError> + Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
    {
        fn waited(&self) -> Duration {
            self.queued.elapsed()
        }

        fn abandoned(&self) -> bool {
            self.reply.is_closed()
        }

        fn refuse(self: Box<Self>, why: WriteError) {
            let _ = self.reply.send(Err(why.into()));
        }

        fn run(self: Box<Self>, conn: &mut AnyConnection) -> BoxFuture<'_, (bool, Answer)> {
            let TypedJob { work, reply, .. } = *self;
            Box::pin(async move {
                let result = work(conn).await;
                let ok = result.is_ok();
                let answer: Answer = Box::new(move |failed: Option<WriteError>| {
                    // A failed job keeps its own error; a good one is good only if committed.
                    let _ = reply.send(match failed {
                        Some(e) if ok => Err(e.into()),
                        _ => result,
                    });
                });
                (ok, answer)
            })
        }
    }

    async fn write_loop(
        mut conn: AnyConnection,
        connect: Connect,
        mut inbox: mpsc::Receiver<Message>,
        max_batch: usize,
        max_wait: Duration,
        counts: Arc<Counts>,
    ) {
        let mut messages = Vec::with_capacity(max_batch);
        let mut closed = None;
        // Waits for at least one message, then takes all that are there (up to `max_batch`).
        while closed.is_none() && inbox.recv_many(&mut messages, max_batch).await > 0 {
            let mut jobs = Vec::with_capacity(messages.len());
            for message in messages.drain(..) {
                match message {
                    Message::Close(done) => closed = Some(done),
                    Message::Job(job) if job.abandoned() => {}
                    Message::Job(job) if job.waited() > max_wait => job.refuse(WriteError::Busy),
                    Message::Job(job) => jobs.push(job),
                }
            }
            if !jobs.is_empty() {
                counts.jobs.fetch_add(jobs.len() as u64, Relaxed);
                counts.batches.fetch_add(1, Relaxed);
                // A failed batch may mean a lost connection (the server restarted): replace
                // it, or every write from now on would fail too.
                if !run_batch(&mut conn, jobs).await && conn.ping().await.is_err() {
                    match connect().await {
                        Ok(fresh) => conn = fresh,
                        Err(e) => tracing::warn!("the writer cannot reconnect (yet): {e}"),
                    }
                }
            }
        }
        inbox.close(); // senders from now on get `Closed`; the jobs still queued, too:
        while let Ok(message) = inbox.try_recv() {
            if let Message::Job(job) = message {
                job.refuse(WriteError::Closed);
            }
        }
        let _ = conn.close().await;
        if let Some(done) = closed {
            let _ = done.send(());
        }
    }

    /// One transaction, one savepoint per job, one commit; then every answer. `false`: the
    /// batch failed.
    async fn run_batch(conn: &mut AnyConnection, jobs: Vec<Box<dyn Job>>) -> bool {
        let mut jobs = jobs.into_iter();
        let mut answers = Vec::with_capacity(jobs.len());
        let committed: sqlx::Result<()> = async {
            let mut tx = conn.begin().await?;
            if jobs.len() == 1 {
                // A batch of one needs no savepoint: the transaction is the job's own.
                let (ok, answer) = jobs.next().expect("one job").run(&mut tx).await;
                answers.push(answer);
                return if ok {
                    tx.commit().await
                } else {
                    tx.rollback().await
                };
            }
            for job in jobs.by_ref() {
                let mut savepoint = Connection::begin(&mut *tx).await?;
                let (ok, answer) = job.run(&mut savepoint).await;
                answers.push(answer);
                if ok {
                    savepoint.commit().await?; // RELEASE: its writes join the batch
                } else {
                    savepoint.rollback().await?; // ROLLBACK TO: as if it never ran
                }
            }
            tx.commit().await
        }
        .await;
        let failed = committed.err().map(|e| WriteError::Batch(Arc::new(e)));
        for answer in answers {
            answer(failed.clone());
        }
        for never_ran in jobs {
            never_ran.refuse(failed.clone().unwrap_or(WriteError::Closed));
        }
        failed.is_none()
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use sqlx::Row;

        #[derive(Debug)]
        enum TestError {
            Write(WriteError),
            #[allow(dead_code)] // read by `{:?}` when a test fails
            Sql(sqlx::Error),
            Refused,
        }
        impl From<WriteError> for TestError {
            fn from(e: WriteError) -> Self {
                TestError::Write(e)
            }
        }
        impl From<sqlx::Error> for TestError {
            fn from(e: sqlx::Error) -> Self {
                TestError::Sql(e)
            }
        }

        /// A writer on a fresh in-memory database with one table `t (n)`.
        async fn writer(max_wait: Duration) -> Writer {
            sqlx::any::install_default_drivers();
            let mut conn = AnyConnection::connect("sqlite::memory:")
                .await
                .expect("open");
            sqlx::query("PRAGMA foreign_keys = ON")
                .execute(&mut conn)
                .await
                .expect("pragma");
            sqlx::raw_sql(
                "CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE t (n INTEGER, \
                 parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
            )
            .execute(&mut conn)
            .await
            .expect("schema");
            // Never called: a connection to an in-memory database does not break.
            let connect: Connect = Arc::new(|| Box::pin(AnyConnection::connect("sqlite::memory:")));
            Writer::start(conn, connect, 64, max_wait)
        }

        /// A job that inserts `n`, and fails afterwards if `n` is negative.
        async fn insert(w: &Writer, n: i64) -> Result<(), TestError> {
            w.run(move |conn| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO t (n) VALUES ($1)")
                        .bind(n)
                        .execute(&mut *conn)
                        .await?;
                    if n < 0 {
                        Err(TestError::Refused)
                    } else {
                        Ok(())
                    }
                })
            })
            .await
        }

        async fn rows(w: &Writer) -> Vec<i64> {
            fn read(conn: &mut AnyConnection) -> BoxFuture<'_, Result<Vec<i64>, TestError>> {
                Box::pin(async move {
                    let rows = sqlx::query("SELECT n FROM t ORDER BY n")
                        .fetch_all(conn)
                        .await?;
                    Ok(rows.iter().map(|r| r.get::<i64, _>(0)).collect())
                })
            }
            w.run(read).await.expect("read")
        }

        /// Holds the writer until the returned sender is used; returns once it holds it.
        async fn hold(w: &Writer) -> oneshot::Sender<()> {
            let (started, holding) = oneshot::channel();
            let (release, released) = oneshot::channel::<()>();
            let w = w.clone();
            tokio::spawn(async move {
                w.run(move |_conn| {
                    Box::pin(async move {
                        let _ = started.send(());
                        let _ = released.await;
                        Ok::<_, TestError>(())
                    })
                })
                .await
            });
            holding.await.expect("the holding job started");
            release
        }

        async fn wait_until_queued(w: &Writer, n: usize) {
            while w.queued() < n {
                tokio::task::yield_now().await;
            }
        }

        #[tokio::test]
        async fn jobs_waiting_together_share_one_commit_and_fail_alone() {
            let w = writer(Duration::from_secs(60)).await;
            let release = hold(&w).await;
            let jobs: Vec<_> = [1, -2, 3]
                .into_iter()
                .map(|n| {
                    let w = w.clone();
                    tokio::spawn(async move { insert(&w, n).await })
                })
                .collect();
            wait_until_queued(&w, 3).await;
            let _ = release.send(());
            let mut results = Vec::new();
            for job in jobs {
                results.push(job.await.expect("task"));
            }
            assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
            assert!(matches!(results[1], Err(TestError::Refused)), "{results:?}");
            assert_eq!(
                rows(&w).await,
                [1, 3],
                "the failed job's insert was rolled back"
            );
            let (commits, jobs) = w.counts();
            assert_eq!(
                (commits, jobs),
                (3, 5),
                "holder, the three together, the read"
            );
        }

        #[tokio::test]
        async fn nobody_hears_done_before_the_commit_and_a_failed_commit_fails_everyone() {
            let w = writer(Duration::from_secs(60)).await;
            let release = hold(&w).await;
            let good = tokio::spawn({
                let w = w.clone();
                async move { insert(&w, 1).await }
            });
            // Breaks a deferred foreign key: only the COMMIT finds out.
            let breaks_the_batch = tokio::spawn({
                let w = w.clone();
                async move {
                    w.run(|conn| {
                        Box::pin(async move {
                            let sql = "INSERT INTO t (n, parent) VALUES (2, 99)";
                            sqlx::query(sql).execute(&mut *conn).await?;
                            Ok::<_, TestError>(())
                        })
                    })
                    .await
                }
            });
            wait_until_queued(&w, 2).await;
            let _ = release.send(());
            for job in [good, breaks_the_batch] {
                let result = job.await.expect("task");
                assert!(matches!(
                    result,
                    Err(TestError::Write(WriteError::Batch(_)))
                ));
            }
            assert_eq!(
                rows(&w).await,
                Vec::<i64>::new(),
                "nothing of that batch was written"
            );
            insert(&w, 4).await.expect("the writer goes on");
            assert_eq!(rows(&w).await, [4]);
        }

        #[tokio::test]
        async fn a_job_that_waited_too_long_or_whose_caller_left_never_runs() {
            let w = writer(Duration::from_millis(50)).await;
            let release = hold(&w).await;
            let late = tokio::spawn({
                let w = w.clone();
                async move { insert(&w, 1).await }
            });
            let gone = tokio::spawn({
                let w = w.clone();
                async move { insert(&w, 2).await }
            });
            wait_until_queued(&w, 2).await;
            gone.abort();
            assert!(gone.await.is_err(), "cancelled");
            // Certainly longer than `max_wait` (50 ms), however slow the machine.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let _ = release.send(());
            let result = late.await.expect("task");
            assert!(
                matches!(result, Err(TestError::Write(WriteError::Busy))),
                "{result:?}"
            );
            assert_eq!(rows(&w).await, Vec::<i64>::new());
            w.close().await;
            assert!(matches!(
                insert(&w, 3).await,
                Err(TestError::Write(WriteError::Closed))
            ));
        }
    }
}

/// Sessions, the catalogue and the cart. Each cart update is one statement, so two requests of
/// one session (two tabs, a double click, a retry) cannot undo each other.
mod cart {
    use super::db::{Db, ShopError, now_ms};

    /// Who a valid session cookie belongs to.
    #[derive(Clone, Debug)]
    pub struct Session {
        pub token: String,
        pub user: String,
    }

    /// Creates a session valid for `ttl_ms`. The token is 256 random bits: the only secret.
    pub async fn login(db: &Db, user: &str, ttl_ms: i64) -> Result<Session, ShopError> {
        let token = format!(
            "{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>()
        );
        let (t, u) = (token.clone(), user.to_string());
        let expires_ms = now_ms().saturating_add(ttl_ms);
        db.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO sessions (token, user_name, expires_ms) VALUES ($1, $2, $3)",
                )
                .bind(t)
                .bind(u)
                .bind(expires_ms)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await?;
        Ok(Session {
            token,
            user: user.to_string(),
        })
    }

    /// The session behind `token`, if it exists and has not expired.
    pub async fn authenticate(db: &Db, token: &str) -> Result<Session, ShopError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT user_name FROM sessions WHERE token = $1 AND expires_ms > $2")
                .bind(token)
                .bind(now_ms())
                .fetch_optional(&db.read)
                .await?;
        let (user,) = row.ok_or(ShopError::Unauthorized)?;
        Ok(Session {
            token: token.to_string(),
            user,
        })
    }

    /// A product as the catalogue shows it.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Product {
        pub id: i64,
        pub name: String,
        pub price_cents: i64,
        pub stock: i64,
    }

    /// The first `limit` products by id.
    pub async fn products(db: &Db, limit: i64) -> Result<Vec<Product>, ShopError> {
        let rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(
            "SELECT id, name, price_cents, stock FROM products ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&db.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name, price_cents, stock)| Product {
                id,
                name,
                price_cents,
                stock,
            })
            .collect())
    }

    pub async fn product(db: &Db, id: i64) -> Result<Product, ShopError> {
        let row: Option<(String, i64, i64)> =
            sqlx::query_as("SELECT name, price_cents, stock FROM products WHERE id = $1")
                .bind(id)
                .fetch_optional(&db.read)
                .await?;
        let (name, price_cents, stock) =
            row.ok_or_else(|| ShopError::NotFound(format!("product {id}")))?;
        Ok(Product {
            id,
            name,
            price_cents,
            stock,
        })
    }

    /// Adds `qty` of a product to the cart and returns the line's new quantity. One statement:
    /// the database applies concurrent adds one after the other, and none is lost. An unknown
    /// product selects no row, so nothing is inserted.
    pub async fn add(db: &Db, token: &str, product_id: i64, qty: i64) -> Result<i64, ShopError> {
        let token = token.to_string();
        let row: Option<(i64,)> = db
            .write(move |conn| {
                Box::pin(async move {
                    let row = sqlx::query_as(
                        "INSERT INTO cart_items (token, product_id, qty) SELECT $1, id, $3 \
                         FROM products WHERE id = $2 ON CONFLICT (token, product_id) \
                         DO UPDATE SET qty = cart_items.qty + excluded.qty RETURNING qty",
                    )
                    .bind(token)
                    .bind(product_id)
                    .bind(qty)
                    .fetch_optional(&mut *conn)
                    .await?;
                    Ok(row)
                })
            })
            .await?;
        let (new_qty,) = row.ok_or_else(|| ShopError::NotFound(format!("product {product_id}")))?;
        Ok(new_qty)
    }

    /// The naive add (`--racy lost-updates`): load the line, check the product, save the sum.
    /// Two concurrent adds both load 1 and both save 2: both are acknowledged, one is lost.
    /// Session stores that load the whole session and save it back lose updates the same way.
    pub async fn add_naive(
        db: &Db,
        token: &str,
        product_id: i64,
        qty: i64,
    ) -> Result<i64, ShopError> {
        let line: Option<(i64,)> =
            sqlx::query_as("SELECT qty FROM cart_items WHERE token = $1 AND product_id = $2")
                .bind(token)
                .bind(product_id)
                .fetch_optional(&db.read)
                .await?;
        product(db, product_id).await?; // the `.await` that lets the other request in
        let new_qty = line.map_or(0, |(q,)| q).saturating_add(qty);
        let token = token.to_string();
        db.write(move |conn| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO cart_items (token, product_id, qty) VALUES ($1, $2, $3) \
                     ON CONFLICT (token, product_id) DO UPDATE SET qty = excluded.qty",
                )
                .bind(token)
                .bind(product_id)
                .bind(new_qty)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await?;
        Ok(new_qty)
    }

    /// Removes a product's line from the cart and returns the quantity it held.
    pub async fn remove(db: &Db, token: &str, product_id: i64) -> Result<i64, ShopError> {
        let token = token.to_string();
        let row: Option<(i64,)> = db
            .write(move |conn| {
                Box::pin(async move {
                    let row = sqlx::query_as(
                        "DELETE FROM cart_items WHERE token = $1 AND product_id = $2 RETURNING qty",
                    )
                    .bind(token)
                    .bind(product_id)
                    .fetch_optional(&mut *conn)
                    .await?;
                    Ok(row)
                })
            })
            .await?;
        let (qty,) =
            row.ok_or_else(|| ShopError::NotFound(format!("product {product_id} in the cart")))?;
        Ok(qty)
    }

    /// One line of a cart, with the current price.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct CartLine {
        pub product_id: i64,
        pub qty: i64,
        pub price_cents: i64,
    }

    /// The cart, in product order (the order checkout locks rows in: see `checkout`).
    pub async fn lines(db: &Db, token: &str) -> Result<Vec<CartLine>, ShopError> {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT c.product_id, c.qty, p.price_cents FROM cart_items c \
             JOIN products p ON p.id = c.product_id WHERE c.token = $1 ORDER BY c.product_id",
        )
        .bind(token)
        .fetch_all(&db.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(product_id, qty, price_cents)| CartLine {
                product_id,
                qty,
                price_cents,
            })
            .collect())
    }
}

/// Product reads from a snapshot of the catalogue, refreshed at most every `ttl`: a product page
/// shows the stock as it was a moment ago, and the checkout's conditional UPDATE decides.
mod catalogue {
    use super::cart::{self, Product};
    use super::db::{Db, ShopError};
    use std::sync::{Arc, PoisonError, RwLock};
    use std::time::{Duration, Instant};

    /// The largest catalogue kept in memory; a product beyond it is read from the database.
    const MAX_CACHED: i64 = 100_000;

    struct Snapshot {
        taken: Instant,
        /// Sorted by id.
        products: Vec<Product>,
    }

    pub struct Catalogue {
        ttl: Duration,
        // A std RwLock: held only to clone an `Arc`, never across an `.await`.
        current: RwLock<Option<Arc<Snapshot>>>,
        // One refresh at a time: the other requests keep serving the old snapshot meanwhile,
        // instead of all querying the database at once when it expires (a cache stampede).
        refreshing: tokio::sync::Mutex<()>,
    }

    impl Catalogue {
        /// `ttl` zero: no cache, every read goes to the database.
        pub fn new(ttl: Duration) -> Self {
            let refreshing = tokio::sync::Mutex::new(());
            Catalogue {
                ttl,
                current: RwLock::new(None),
                refreshing,
            }
        }

        pub async fn product(&self, db: &Db, id: i64) -> Result<Product, ShopError> {
            if let Some(snap) = self.snapshot(db).await?
                && let Ok(i) = snap.products.binary_search_by_key(&id, |p| p.id)
            {
                return Ok(snap.products[i].clone());
            }
            cart::product(db, id).await // not in the snapshot (new, or no cache): ask the database
        }

        pub async fn first(&self, db: &Db, n: usize) -> Result<Vec<Product>, ShopError> {
            match self.snapshot(db).await? {
                Some(snap) => Ok(snap.products.iter().take(n).cloned().collect()),
                None => cart::products(db, i64::try_from(n).unwrap_or(i64::MAX)).await,
            }
        }

        async fn snapshot(&self, db: &Db) -> Result<Option<Arc<Snapshot>>, ShopError> {
            if self.ttl.is_zero() {
                return Ok(None);
            }
            let current = self
                .current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if let Some(snap) = &current
                && snap.taken.elapsed() < self.ttl
            {
                return Ok(current);
            }
            let _refresh = match (self.refreshing.try_lock(), current) {
                (Ok(guard), _) => guard,
                (Err(_), Some(stale)) => return Ok(Some(stale)), // someone is refreshing it
                (Err(_), None) => self.refreshing.lock().await,  // the very first load
            };
            let fresh = self
                .current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if let Some(snap) = &fresh
                && snap.taken.elapsed() < self.ttl
            {
                return Ok(fresh); // refreshed while we waited for the lock
            }
            let products = cart::products(db, MAX_CACHED).await?;
            let snap = Arc::new(Snapshot {
                taken: Instant::now(),
                products,
            });
            *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&snap));
            Ok(Some(snap))
        }
    }
    #[cfg(test)]
    mod tests {
        use super::super::db;
        use super::*;

        #[tokio::test]
        async fn reads_come_from_the_snapshot_until_it_expires() {
            let db = db::open("sqlite::memory:", db::Settings::default())
                .await
                .expect("open");
            db::seed(&db, 2, 5).await.expect("seed");
            let cached = Catalogue::new(Duration::from_secs(3600));
            let direct = Catalogue::new(Duration::ZERO);
            assert_eq!(cached.product(&db, 1).await.expect("read").stock, 5);
            db.write(|conn| {
                Box::pin(async move {
                    let sql = "UPDATE products SET stock = 4 WHERE id = 1";
                    sqlx::query(sql).execute(&mut *conn).await?;
                    Ok(())
                })
            })
            .await
            .expect("update");
            assert_eq!(
                cached.product(&db, 1).await.expect("read").stock,
                5,
                "the snapshot"
            );
            assert_eq!(
                direct.product(&db, 1).await.expect("read").stock,
                4,
                "the database"
            );
            assert!(matches!(
                cached.product(&db, 99).await,
                Err(ShopError::NotFound(_))
            ));
            assert_eq!(cached.first(&db, 10).await.expect("list").len(), 2);
        }
    }
}

/// Checkout: the oversell, the double checkout and the held connection, each fixed next to the
/// naive version that `--racy` brings back.
mod checkout {
    use super::cart::{self, CartLine};
    use super::db::{Db, ShopError, now_ms};
    use super::orders;
    use sqlx::AnyConnection;
    use std::time::Duration;

    /// Which naive versions are on (`--racy`); each brings one bug back.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Racy {
        /// Check the stock, `.await` the payment, then write `stock = (what we saw) - qty`.
        pub oversell: bool,
        /// Cart adds by load, modify, save (`cart::add_naive`).
        pub lost_updates: bool,
        /// Ignore the idempotency key: a retried request makes a second order.
        pub double_checkout: bool,
        /// Pay inside the writer's job: the one write connection is held during the payment.
        pub hold_connection: bool,
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Order {
        pub id: i64,
        pub total_cents: i64,
        pub items: Vec<CartLine>,
        /// This is the answer to an earlier request with the same idempotency key.
        pub replayed: bool,
    }

    /// The slow external call in the middle of a checkout (a payment provider), simulated: what
    /// matters is that it takes time, and that nothing is held while it runs. A real one gets
    /// the idempotency key too, so a retry is not charged twice.
    pub async fn authorize_payment(_total_cents: i64, latency: Duration) {
        tokio::time::sleep(latency).await;
    }

    /// Turns the session's cart into an order: stock taken, cart emptied of what was paid for,
    /// all in one job of the writer, at most once per idempotency `key`.
    pub async fn checkout(
        db: &Db,
        racy: Racy,
        token: &str,
        key: &str,
        payment_latency: Duration,
    ) -> Result<Order, ShopError> {
        let lines = cart::lines(db, token).await?;
        if lines.is_empty() {
            // Double checkout, fixed (1/2): a retry of a checkout that went through (the client
            // never saw the answer) finds the cart emptied by it, and gets that order back.
            if !racy.double_checkout
                && let Some(order) = orders::by_key(db, token, key).await?
            {
                return Ok(order);
            }
            return Err(ShopError::Unprocessable("the cart is empty".into()));
        }
        let total = total_cents(&lines)?;
        // Oversell, naive: check the stock now, act on it after an `.await`.
        let mut seen_stock = Vec::with_capacity(lines.len());
        if racy.oversell {
            for line in &lines {
                let stock = cart::product(db, line.product_id).await?.stock;
                if stock < line.qty {
                    return Err(out_of_stock(line.product_id));
                }
                seen_stock.push(stock);
            }
        }
        let paid = Paid {
            token: token.to_string(),
            key: (!racy.double_checkout).then(|| key.to_string()), // naive: NULLs never collide
            total,
            lines: lines.clone(),
            seen_stock,
        };
        let placed = if racy.hold_connection {
            // Pool exhaustion, naive: the writer itself waits for the payment, and every write
            // of the shop (logins, carts, other checkouts) waits behind it.
            db.write(move |conn| {
                Box::pin(async move {
                    authorize_payment(total, payment_latency).await;
                    place_order(conn, &paid).await
                })
            })
            .await?
        } else {
            // Fixed: pay first, holding nothing; then a short job of a few statements.
            authorize_payment(total, payment_latency).await;
            db.write(move |conn| Box::pin(async move { place_order(conn, &paid).await }))
                .await?
        };
        match placed {
            Some(id) => Ok(Order {
                id,
                total_cents: total,
                items: lines,
                replayed: false,
            }),
            // Double checkout, fixed (2/2): a request with this key committed first (a retry
            // running next to it, or one that finished after we read the cart): the unique
            // index refused a second order. Answer with the first (committed by now: the
            // writer answers only after its commit).
            None => orders::by_key(db, token, key).await?.ok_or_else(|| {
                ShopError::Conflict("the order with this key could not be read back".into())
            }),
        }
    }

    /// What a checkout paid for, handed to the writer.
    struct Paid {
        token: String,
        /// `None`: the naive checkout, which ignores the key.
        key: Option<String>,
        total: i64,
        lines: Vec<CartLine>,
        /// The naive checkout's stock readings (empty when fixed).
        seen_stock: Vec<i64>,
    }

    /// The writes of a checkout, on the writer's connection: the order, the stock, the cart.
    /// `Ok(None)`: this key already has an order. `Err` undoes all of it (the job's savepoint).
    async fn place_order(conn: &mut AnyConnection, paid: &Paid) -> Result<Option<i64>, ShopError> {
        let inserted: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO orders (token, idem_key, total_cents, created_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (token, idem_key) DO NOTHING RETURNING id",
        )
        .bind(&paid.token)
        .bind(&paid.key)
        .bind(paid.total)
        .bind(now_ms())
        .fetch_optional(&mut *conn)
        .await?;
        let Some((order_id,)) = inserted else {
            return Ok(None);
        };
        // Lines come sorted by product id: on PostgreSQL, two transactions lock rows in the same
        // order and cannot deadlock.
        for (i, line) in paid.lines.iter().enumerate() {
            let sold = if let Some(stock) = paid.seen_stock.get(i) {
                sqlx::query("UPDATE products SET stock = $1 WHERE id = $2")
                    .bind(stock - line.qty) // stale: another checkout may have sold them since
                    .bind(line.product_id)
                    .execute(&mut *conn)
                    .await?;
                true
            } else {
                // Oversell, fixed: the check and the decrement are one statement, applied
                // atomically per row by the database.
                sqlx::query("UPDATE products SET stock = stock - $1 WHERE id = $2 AND stock >= $1")
                    .bind(line.qty)
                    .bind(line.product_id)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected()
                    == 1
            };
            if !sold {
                return Err(out_of_stock(line.product_id));
            }
            sqlx::query("INSERT INTO order_items VALUES ($1, $2, $3, $4)")
                .bind(order_id)
                .bind(line.product_id)
                .bind(line.qty)
                .bind(line.price_cents)
                .execute(&mut *conn)
                .await?;
            if paid.key.is_some() && !take_from_cart(conn, &paid.token, line).await? {
                return Err(ShopError::Conflict(
                    "the cart changed during checkout".into(),
                ));
            }
        }
        if paid.key.is_none() {
            // Naive: empty the cart, whatever it holds now (a concurrent checkout of the same
            // cart, or an add that arrived during the payment, goes unnoticed).
            sqlx::query("DELETE FROM cart_items WHERE token = $1")
                .bind(&paid.token)
                .execute(&mut *conn)
                .await?;
        }
        Ok(Some(order_id))
    }

    /// Takes out of the cart exactly what was paid for: usually the whole line (one DELETE);
    /// if an add arrived during the payment, only the paid part. `false`: the line shrank or
    /// went (a concurrent checkout of the same cart took it).
    async fn take_from_cart(
        conn: &mut AnyConnection,
        token: &str,
        line: &CartLine,
    ) -> Result<bool, ShopError> {
        for sql in [
            "DELETE FROM cart_items WHERE token = $1 AND product_id = $2 AND qty = $3",
            "UPDATE cart_items SET qty = qty - $3 WHERE token = $1 AND product_id = $2 AND qty > $3",
        ] {
            let done = sqlx::query(sql)
                .bind(token)
                .bind(line.product_id)
                .bind(line.qty)
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 1 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn out_of_stock(product_id: i64) -> ShopError {
        ShopError::Conflict(format!("product {product_id} is out of stock"))
    }

    /// Σ qty × price, refusing to wrap around.
    pub fn total_cents(lines: &[CartLine]) -> Result<i64, ShopError> {
        lines
            .iter()
            .try_fold(0i64, |sum, l| {
                l.qty
                    .checked_mul(l.price_cents)
                    .and_then(|t| sum.checked_add(t))
            })
            .ok_or_else(|| ShopError::Unprocessable("the order total is too large".into()))
    }
}

/// Orders read back: a session's list, and the order an idempotency key already has.
mod orders {
    use super::cart::CartLine;
    use super::checkout::Order;
    use super::db::{Db, ShopError};

    /// The order `key` already made in this session, marked as a replay.
    pub async fn by_key(db: &Db, token: &str, key: &str) -> Result<Option<Order>, ShopError> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM orders WHERE token = $1 AND idem_key = $2")
                .bind(token)
                .bind(key)
                .fetch_optional(&db.read)
                .await?;
        let Some((id,)) = row else { return Ok(None) };
        Ok(list(db, token, Some(id)).await?.pop().map(|o| Order {
            replayed: true,
            ..o
        }))
    }

    /// The session's orders (or only `only`), oldest first, with their lines.
    pub async fn list(db: &Db, token: &str, only: Option<i64>) -> Result<Vec<Order>, ShopError> {
        let rows: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT o.id, o.total_cents, i.product_id, i.qty, i.price_cents FROM orders o \
             JOIN order_items i ON i.order_id = o.id WHERE o.token = $1 AND ($2 = 0 OR o.id = $2) \
             ORDER BY o.id, i.product_id LIMIT 10000",
        )
        .bind(token)
        .bind(only.unwrap_or(0))
        .fetch_all(&db.read)
        .await?;
        let mut out: Vec<Order> = Vec::new();
        for (id, total_cents, product_id, qty, price_cents) in rows {
            if out.last().is_none_or(|o| o.id != id) {
                out.push(Order {
                    id,
                    total_cents,
                    items: Vec::new(),
                    replayed: false,
                });
            }
            if let Some(order) = out.last_mut() {
                order.items.push(CartLine {
                    product_id,
                    qty,
                    price_cents,
                });
            }
        }
        Ok(out)
    }
}

/// Rate limiting: a token bucket per key, kept in a std `Mutex` that no `.await` ever holds.
mod limits {
    use std::collections::HashMap;
    use std::sync::{Mutex, PoisonError};
    use std::time::{Duration, Instant};

    /// `rate` requests per second on average, bursts of up to `burst`, for each key.
    pub struct RateLimiter {
        rate: f64,
        burst: f64,
        max_keys: usize,
        // A std Mutex, not tokio's: the critical section is a few additions and never awaits.
        // One lock for all keys costs well under a microsecond per request; shard it (N maps
        // chosen by hash) if it ever shows in a profile.
        buckets: Mutex<HashMap<String, Bucket>>,
    }

    struct Bucket {
        tokens: f64,
        last: Instant,
    }

    impl Bucket {
        fn refill(&mut self, now: Instant, rate: f64, burst: f64) {
            let dt = now.saturating_duration_since(self.last).as_secs_f64();
            self.tokens = (self.tokens + dt * rate).min(burst);
            self.last = now;
        }
    }

    impl RateLimiter {
        /// `max_keys` bounds memory whatever the traffic (one bucket per session or IP).
        pub fn new(rate: f64, burst: f64, max_keys: usize) -> Self {
            let buckets = Mutex::new(HashMap::new());
            RateLimiter {
                rate,
                burst: burst.max(1.0),
                max_keys,
                buckets,
            }
        }

        /// Takes a token for `key`; `Err(wait)` says how long until the next one.
        pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
            let (rate, burst) = (self.rate, self.burst);
            let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
            if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
                // Forget the buckets that have refilled: they would start full anyway.
                buckets.retain(|_, b| {
                    b.refill(now, rate, burst);
                    b.tokens < burst
                });
                if buckets.len() >= self.max_keys {
                    buckets.clear(); // a flood of keys: fail open rather than refuse everyone
                }
            }
            let bucket = match buckets.get_mut(key) {
                Some(b) => b,
                None => buckets.entry(key.to_owned()).or_insert(Bucket {
                    tokens: burst,
                    last: now,
                }),
            };
            bucket.refill(now, rate, burst);
            if bucket.tokens >= 1.0 {
                bucket.tokens -= 1.0;
                Ok(())
            } else {
                Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_burst_then_the_rate_and_keys_are_independent() {
            let limiter = RateLimiter::new(10.0, 3.0, 100);
            let t0 = Instant::now();
            for _ in 0..3 {
                assert!(limiter.check("a", t0).is_ok());
            }
            let wait = limiter.check("a", t0).expect_err("burst spent");
            assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100));
            assert!(
                limiter.check("b", t0).is_ok(),
                "another key has its own bucket"
            );
            assert!(
                limiter.check("a", t0 + Duration::from_millis(100)).is_ok(),
                "refilled"
            );
        }

        #[test]
        fn memory_stays_bounded() {
            let limiter = RateLimiter::new(1.0, 1.0, 10);
            let t0 = Instant::now();
            for i in 0..1000 {
                let _ = limiter.check(&format!("k{i}"), t0);
            }
            assert!(limiter.buckets.lock().expect("not poisoned").len() <= 10);
        }
    }
}

/// The HTTP layer: routes, JSON in and out, and the limits every request passes through.
mod api {
    use super::cart::{self, Session};
    use super::catalogue::Catalogue;
    use super::checkout::{self, Order, Racy};
    use super::db::{Db, ShopError};
    use super::guards::{ApiError, limit_rate, time_limit, trace_request};
    use super::limits::RateLimiter;
    use super::orders;
    use axum::extract::rejection::JsonRejection;
    use axum::extract::{DefaultBodyLimit, Path, State};
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::middleware;
    use axum::response::{IntoResponse, Response};
    use axum::routing::{delete, get, post};
    use axum::{Json, Router, serve::ListenerExt};
    use serde_json::{Value, json};
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;
    use std::time::Duration;

    pub struct Config {
        pub racy: Racy,
        pub session_ttl: Duration,
        pub payment_latency: Duration,
        pub request_timeout: Duration,
        pub body_limit: usize,
    }

    /// What every handler shares: no cart, no stock, only the way to the database.
    pub struct Shop {
        pub db: Db,
        pub catalogue: Catalogue,
        pub config: Config,
        pub limiter: RateLimiter,
        pub requests: AtomicU64,
    }

    pub fn router(shop: Arc<Shop>) -> Router {
        Router::new()
            .route("/login", post(login))
            .route("/products", get(list_products))
            .route("/products/{id}", get(show_product))
            .route("/cart", get(view_cart))
            .route("/cart/items", post(add_to_cart))
            .route("/cart/items/{id}", delete(remove_from_cart))
            .route("/checkout", post(checkout))
            .route("/orders", get(list_orders))
            .fallback(|| async { ApiError::from(ShopError::NotFound("route".into())) })
            // The first layer added is the innermost: a request meets the span, the timeout,
            // the rate limit, then the body limit (enforced while the JSON is read).
            .layer(DefaultBodyLimit::max(shop.config.body_limit))
            .layer(middleware::from_fn_with_state(shop.clone(), limit_rate))
            .layer(middleware::from_fn_with_state(shop.clone(), time_limit))
            .layer(middleware::from_fn_with_state(shop.clone(), trace_request))
            .with_state(shop)
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets the requests in flight
    /// finish, closes idle keep-alive connections, and returns.
    pub async fn serve(
        listener: tokio::net::TcpListener,
        shop: Arc<Shop>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        // No Nagle: a response is one small write; waiting for an ACK would add 40 ms.
        let listener = listener.tap_io(|tcp| drop(tcp.set_nodelay(true)));
        let app = router(shop).into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    }

    async fn login(
        State(s): State<Arc<Shop>>,
        body: Result<Json<Value>, JsonRejection>,
    ) -> Result<Response, ApiError> {
        let body = json_body(body)?;
        let user = body["user"]
            .as_str()
            .filter(|u| (1..=64).contains(&u.chars().count()) && !u.chars().any(char::is_control))
            .ok_or_else(|| unprocessable("`user` must be a name of 1 to 64 characters"))?;
        let ttl = s.config.session_ttl;
        let session = cart::login(
            &s.db,
            user,
            i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
        )
        .await?;
        let cookie = format!(
            "session={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
            session.token,
            ttl.as_secs().max(1)
        );
        Ok((
            [(header::SET_COOKIE, cookie)],
            Json(json!({"user": session.user, "expires_in_s": ttl.as_secs_f64()})),
        )
            .into_response())
    }

    async fn list_products(State(s): State<Arc<Shop>>) -> Result<Json<Value>, ApiError> {
        let products = s.catalogue.first(&s.db, 100).await?;
        Ok(Json(products.iter().map(product_json).collect()))
    }

    async fn show_product(
        State(s): State<Arc<Shop>>,
        Path(id): Path<String>,
    ) -> Result<Json<Value>, ApiError> {
        Ok(Json(product_json(
            &s.catalogue.product(&s.db, parse_id(&id)?).await?,
        )))
    }

    async fn view_cart(
        State(s): State<Arc<Shop>>,
        session: Session,
    ) -> Result<Json<Value>, ApiError> {
        Ok(Json(lines_json(&cart::lines(&s.db, &session.token).await?)))
    }

    async fn remove_from_cart(
        State(s): State<Arc<Shop>>,
        session: Session,
        Path(id): Path<String>,
    ) -> Result<Json<Value>, ApiError> {
        let product_id = parse_id(&id)?;
        let qty = cart::remove(&s.db, &session.token, product_id).await?;
        Ok(Json(json!({"product_id": product_id, "removed_qty": qty})))
    }

    async fn list_orders(
        State(s): State<Arc<Shop>>,
        session: Session,
    ) -> Result<Json<Value>, ApiError> {
        let orders = orders::list(&s.db, &session.token, None).await?;
        Ok(Json(orders.iter().map(order_json).collect()))
    }

    async fn add_to_cart(
        State(s): State<Arc<Shop>>,
        session: Session,
        body: Result<Json<Value>, JsonRejection>,
    ) -> Result<Json<Value>, ApiError> {
        let body = json_body(body)?;
        let product_id = body["product_id"]
            .as_i64()
            .filter(|id| *id >= 1)
            .ok_or_else(|| unprocessable("`product_id` must be a positive integer"))?;
        let qty = match &body["qty"] {
            Value::Null => Some(1),
            q => q.as_i64().filter(|q| (1..=1000).contains(q)),
        }
        .ok_or_else(|| unprocessable("`qty` must be an integer from 1 to 1000"))?;
        let new_qty = if s.config.racy.lost_updates {
            cart::add_naive(&s.db, &session.token, product_id, qty).await?
        } else {
            cart::add(&s.db, &session.token, product_id, qty).await?
        };
        Ok(Json(json!({"product_id": product_id, "qty": new_qty})))
    }

    async fn checkout(
        State(s): State<Arc<Shop>>,
        session: Session,
        headers: HeaderMap,
    ) -> Result<Response, ApiError> {
        let key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .filter(|k| (1..=64).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                ApiError::Rejected(
                    StatusCode::BAD_REQUEST,
                    "an `Idempotency-Key` header of 1 to 64 visible characters is required".into(),
                )
            })?;
        let order = checkout::checkout(
            &s.db,
            s.config.racy,
            &session.token,
            key,
            s.config.payment_latency,
        )
        .await?;
        let status = if order.replayed {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        Ok((status, Json(order_json(&order))).into_response())
    }

    fn parse_id(s: &str) -> Result<i64, ApiError> {
        s.parse().map_err(|_| {
            ApiError::Rejected(
                StatusCode::BAD_REQUEST,
                format!("`{s}` is not a product id"),
            )
        })
    }

    fn json_body(body: Result<Json<Value>, JsonRejection>) -> Result<Value, ApiError> {
        // axum picks the status: 400 bad JSON, 413 too large, 415 not JSON, 422 wrong shape.
        body.map(|Json(v)| v)
            .map_err(|r| ApiError::Rejected(r.status(), r.body_text()))
    }

    fn unprocessable(msg: &str) -> ApiError {
        ApiError::Shop(ShopError::Unprocessable(msg.into()))
    }

    fn product_json(p: &cart::Product) -> Value {
        json!({"id": p.id, "name": p.name, "price_cents": p.price_cents, "stock": p.stock})
    }

    fn lines_json(lines: &[cart::CartLine]) -> Value {
        lines
            .iter()
            .map(
                |l| json!({"product_id": l.product_id, "qty": l.qty, "price_cents": l.price_cents}),
            )
            .collect()
    }

    fn order_json(o: &Order) -> Value {
        json!({"order_id": o.id, "total_cents": o.total_cents, "items": lines_json(&o.items), "replayed": o.replayed})
    }
}

/// What every request passes through before a handler: its span, the timeout, the rate limit,
/// the session check; and how every failure becomes a status and a JSON body.
mod guards {
    use super::api::Shop;
    use super::cart::{self, Session};
    use super::db::ShopError;
    use axum::Json;
    use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
    use axum::http::{HeaderMap, StatusCode, header, request::Parts};
    use axum::middleware::Next;
    use axum::response::{IntoResponse, Response};
    use serde_json::json;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::{Duration, Instant};
    use tracing::Instrument;

    /// `Session` as an extractor: a handler that names it only runs for a valid session.
    impl FromRequestParts<Arc<Shop>> for Session {
        type Rejection = ApiError;
        async fn from_request_parts(parts: &mut Parts, s: &Arc<Shop>) -> Result<Self, ApiError> {
            let token = session_cookie(&parts.headers).ok_or(ShopError::Unauthorized)?;
            Ok(cart::authenticate(&s.db, token).await?)
        }
    }

    /// A span per request: `RUST_LOG=shop_api=debug` prints each one, with its id on every line.
    pub async fn trace_request(State(s): State<Arc<Shop>>, req: Request, next: Next) -> Response {
        let id = s.requests.fetch_add(1, Relaxed);
        let span =
            tracing::debug_span!("request", id, method = %req.method(), path = %req.uri().path());
        async move {
            tracing::debug!("started");
            let started = Instant::now();
            let response = next.run(req).await;
            tracing::debug!(
                status = response.status().as_u16(),
                us = started.elapsed().as_micros() as u64,
                "done"
            );
            response
        }
        .instrument(span)
        .await
    }

    /// Cancelling a handler is safe here: the writer skips a job whose caller has gone, so a
    /// checkout that times out before its turn writes nothing. One that times out while the
    /// writer runs it is committed: a retry with the same key gets that order back.
    pub async fn time_limit(State(s): State<Arc<Shop>>, req: Request, next: Next) -> Response {
        match tokio::time::timeout(s.config.request_timeout, next.run(req)).await {
            Ok(response) => response,
            Err(_) => ApiError::TimedOut.into_response(),
        }
    }

    /// One bucket per session; requests without a session cookie share their IP's bucket.
    pub async fn limit_rate(State(s): State<Arc<Shop>>, req: Request, next: Next) -> Response {
        let key = match session_cookie(req.headers()) {
            Some(token) => format!("s:{token}"),
            None => match req.extensions().get::<ConnectInfo<SocketAddr>>() {
                Some(ConnectInfo(peer)) => format!("ip:{}", peer.ip()),
                None => "ip:unknown".to_string(),
            },
        };
        match s.limiter.check(&key, Instant::now()) {
            Ok(()) => next.run(req).await,
            Err(wait) => ApiError::RateLimited(wait).into_response(),
        }
    }

    /// The `session` cookie, if it looks like one of our tokens (64 hex digits).
    pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| c.trim().strip_prefix("session="))
            .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
    }

    /// Every failure, as a status and a JSON body `{"error": "...", "message": "..."}`.
    #[derive(Debug)]
    pub enum ApiError {
        Shop(ShopError),
        Rejected(StatusCode, String),
        RateLimited(Duration),
        TimedOut,
    }

    impl From<ShopError> for ApiError {
        fn from(e: ShopError) -> Self {
            ApiError::Shop(e)
        }
    }

    impl IntoResponse for ApiError {
        fn into_response(self) -> Response {
            let mut retry_after = None;
            let (status, message) = match self {
                ApiError::Shop(ShopError::Unauthorized) => (
                    StatusCode::UNAUTHORIZED,
                    "log in first: no valid session".into(),
                ),
                ApiError::Shop(ShopError::NotFound(what)) => {
                    (StatusCode::NOT_FOUND, format!("unknown {what}"))
                }
                ApiError::Shop(ShopError::Conflict(m)) => (StatusCode::CONFLICT, m),
                ApiError::Shop(ShopError::Unprocessable(m)) => {
                    (StatusCode::UNPROCESSABLE_ENTITY, m)
                }
                ApiError::Shop(ShopError::Busy) => {
                    retry_after = Some(1);
                    let m = "no database connection came free in time".into();
                    (StatusCode::SERVICE_UNAVAILABLE, m)
                }
                ApiError::Shop(ShopError::Database(e)) => {
                    tracing::error!("database: {e}"); // inside the request's span
                    (StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
                }
                ApiError::Rejected(status, m) => (status, m),
                ApiError::RateLimited(wait) => {
                    let secs = wait.as_secs().saturating_add(1); // rounded up, at least 1
                    retry_after = Some(secs);
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        format!("slow down: retry in {secs} s"),
                    )
                }
                ApiError::TimedOut => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the request timed out".into(),
                ),
            };
            let reason = status.canonical_reason().unwrap_or("error");
            let error = reason.to_lowercase().replace(' ', "_");
            let body = Json(json!({"error": error, "message": message}));
            match retry_after {
                Some(secs) => {
                    (status, [(header::RETRY_AFTER, secs.to_string())], body).into_response()
                }
                None => (status, body).into_response(),
            }
        }
    }
}

// === Harness: not part of the lesson ===
use anyhow::Context;
use clap::{Parser, ValueEnum};
use shared::cli;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

const DEFAULT_ADDR: &str = "127.0.0.1:3000";
/// How long shutdown waits for in-flight requests before giving up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often expired sessions (and their carts) are deleted.
const PURGE_EVERY: Duration = Duration::from_secs(60);
/// How often the SQLite log is copied into the database file (see `db::checkpoint`).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// Rate-limit buckets kept at most (one per session or IP).
const MAX_RATE_KEYS: usize = 100_000;

/// An async REST shop on SQLite or PostgreSQL (see the file header for the endpoints).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address to listen on; port 0 picks a free one (the first stdout line says which).
    #[arg(long, default_value = DEFAULT_ADDR)]
    addr: SocketAddr,
    /// Database: a SQLite file (`*.db`, `*.sqlite`, `*.sqlite3`; created on first run),
    /// `:memory:`, or a `sqlite:` / `postgres://` URL.
    #[arg(long, default_value = "shop.db", value_parser = database_url)]
    db: String,
    /// Empty the database first, then seed it again.
    #[arg(long)]
    reset: bool,
    /// Products to seed into an empty catalogue.
    #[arg(long, default_value_t = 100, value_parser = cli::int_in(1i64, 100_000))]
    products: i64,
    /// Initial stock of each seeded product.
    #[arg(long, default_value_t = 1_000, value_parser = cli::int_in(0i64, 1_000_000_000))]
    stock: i64,
    /// Read connections (every write goes through the one writer connection).
    #[arg(long, default_value_t = 8, value_parser = cli::u32_in(1, 1000))]
    pool: u32,
    /// A request waiting longer than this for a read connection or for the writer gets 503.
    #[arg(long, default_value = "2s", value_parser = cli::duration_in(Duration::from_millis(1), Duration::from_secs(600)))]
    acquire_timeout: Duration,
    /// Writes committed together at most (group commit; 1: a transaction per write).
    #[arg(long, default_value_t = 64, value_parser = cli::usize_in(1, 10_000))]
    batch: usize,
    /// SQLite's durability: `full` fsyncs the log at every commit, so an answered order
    /// survives a power cut; `normal` leaves the fsync to the next checkpoint (about a second):
    /// a crash of the process loses nothing, a power cut can lose the last commits.
    #[arg(long, value_enum, default_value_t = Synchronous::Full)]
    synchronous: Synchronous,
    /// Product reads are served from a snapshot of the catalogue at most this old (0s: every
    /// read goes to the database). Checkouts never read it.
    #[arg(long, default_value = "100ms", value_parser = cli::duration_in(Duration::ZERO, Duration::from_secs(3600)))]
    cache_ttl: Duration,
    /// Bring naive versions back: a list (`--racy oversell,lost-updates`), `all`, or nothing for
    /// the three that corrupt data. `hold-connection` is left out of that default: with one
    /// writer it serialises every checkout, which hides the oversell.
    #[arg(long, value_enum, num_args = 0.., value_delimiter = ',',
          default_missing_values = ["oversell", "lost-updates", "double-checkout"])]
    racy: Option<Vec<RacyBug>>,
    /// How long the (simulated) payment provider takes during a checkout.
    #[arg(long, default_value = "5ms", value_parser = cli::duration_in(Duration::ZERO, Duration::from_secs(10)))]
    payment_latency: Duration,
    /// How long a session lasts after login.
    #[arg(long, default_value = "30m", value_parser = cli::duration_in(Duration::from_millis(1), Duration::from_secs(30 * 86_400)))]
    session_ttl: Duration,
    /// Requests per second allowed per session (or per IP without a session), on average.
    #[arg(long, default_value_t = 1_000.0, value_parser = cli::f64_in(0.001, 1e9))]
    rate_limit: f64,
    /// Requests a session may send at once above the rate (default: 2 seconds' worth).
    #[arg(long, value_parser = cli::f64_in(1.0, 1e9))]
    burst: Option<f64>,
    /// A request taking longer than this gets 503 (and its transaction is rolled back).
    #[arg(long, default_value = "10s", value_parser = cli::duration_in(Duration::from_millis(1), Duration::from_secs(3600)))]
    request_timeout: Duration,
    /// Largest request body, in bytes (413 beyond).
    #[arg(long, default_value_t = 16 * 1024, value_parser = cli::usize_in(1, 16 << 20))]
    body_limit: usize,
    /// Stop by itself after this long (default: run until Ctrl-C or SIGTERM).
    #[arg(long, value_parser = cli::duration_in(Duration::from_millis(1), Duration::from_secs(30 * 86_400)))]
    duration: Option<Duration>,
}

/// `PRAGMA synchronous` for the writer (SQLite only; PostgreSQL has its own setting).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Synchronous {
    Full,
    Normal,
}

/// The naive versions `--racy` can bring back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum RacyBug {
    All,
    Oversell,
    LostUpdates,
    DoubleCheckout,
    HoldConnection,
}

fn racy_from(list: Option<&[RacyBug]>) -> checkout::Racy {
    let on = |bug: RacyBug| list.is_some_and(|l| l.contains(&bug) || l.contains(&RacyBug::All));
    checkout::Racy {
        oversell: on(RacyBug::Oversell),
        lost_updates: on(RacyBug::LostUpdates),
        double_checkout: on(RacyBug::DoubleCheckout),
        hold_connection: on(RacyBug::HoldConnection),
    }
}

/// `--db` as a sqlx URL. A bare word is refused rather than taken as a file name: `--db
/// postgres` (a URL forgotten) would otherwise create an empty SQLite file called `postgres`.
fn database_url(db: &str) -> Result<String, String> {
    let is_file = [".db", ".sqlite", ".sqlite3"]
        .iter()
        .any(|ext| db.ends_with(ext));
    if db == ":memory:" {
        Ok("sqlite::memory:".to_string())
    } else if ["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|p| db.starts_with(p))
    {
        Ok(db.to_string())
    } else if is_file && !db.contains('?') {
        Ok(format!("sqlite:{db}?mode=rwc"))
    } else {
        Err(format!(
            "`{db}` is not a database: use a file ending in .db, .sqlite or .sqlite3, \
             `:memory:`, or a sqlite: or postgres:// URL"
        ))
    }
}

/// The URL with its password hidden, for printing.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,shop_api=info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let stop = shared::shutdown::cancel_on_ctrl_c();
    // One socket per client connection: the default soft limit (often 1,024) is too few.
    shared::monitor::raise_nofile_limit().context("raising RLIMIT_NOFILE")?;
    let url = args.db.clone(); // already a URL (see `database_url`)
    let shown = redacted(&url);
    let settings = db::Settings {
        readers: args.pool,
        max_wait: args.acquire_timeout,
        max_batch: args.batch,
        durable: args.synchronous == Synchronous::Full,
    };
    let db = db::open(&url, settings)
        .await
        .with_context(|| format!("opening the database {shown}"))?;
    if args.reset {
        reset(&db)
            .await
            .map_err(|e| anyhow::anyhow!("emptying the database: {e:?}"))?;
    }
    let seeded = db::seed(&db, args.products, args.stock)
        .await
        .map_err(|e| anyhow::anyhow!("seeding the catalogue: {e:?}"))?;
    let racy = racy_from(args.racy.as_deref());
    let shop = Arc::new(api::Shop {
        db: db.clone(),
        catalogue: catalogue::Catalogue::new(args.cache_ttl),
        config: api::Config {
            racy,
            session_ttl: args.session_ttl,
            payment_latency: args.payment_latency,
            request_timeout: args.request_timeout,
            body_limit: args.body_limit,
        },
        limiter: limits::RateLimiter::new(
            args.rate_limit,
            args.burst.unwrap_or((args.rate_limit * 2.0).max(1.0)),
            MAX_RATE_KEYS,
        ),
        requests: AtomicU64::new(0),
    });
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    let addr = listener.local_addr().context("local address")?;
    println!("shop-api listening on http://{addr}");
    print_intro(addr, &shown, &db, seeded, &args, racy);

    let chores_db = db.clone();
    let chores_stop = stop.clone();
    tokio::spawn(async move {
        let mut purge = tokio::time::interval(PURGE_EVERY);
        let mut checkpoint = tokio::time::interval(CHECKPOINT_EVERY);
        loop {
            tokio::select! {
                _ = chores_stop.cancelled() => break,
                _ = purge.tick() => {
                    if let Err(e) = purge_expired(&chores_db).await {
                        tracing::warn!("purging expired sessions: {e:?}");
                    }
                }
                _ = checkpoint.tick() => {
                    if let Err(e) = db::checkpoint(&chores_db).await {
                        tracing::warn!("checkpoint: {e}");
                    }
                    let (commits, writes) = chores_db.writer.counts();
                    let queued = chores_db.writer.queued();
                    tracing::debug!(queued, writes, commits, "writer");
                }
            }
        }
    });
    if let Some(d) = args.duration {
        let s = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            s.cancel();
        });
    }
    let server = tokio::spawn(api::serve(listener, shop, stop.clone().cancelled_owned()));
    stop.cancelled().await;
    eprintln!("shop-api: stopping: no new connections, finishing the requests in flight");
    match tokio::time::timeout(DRAIN_TIMEOUT, server).await {
        Ok(joined) => joined.context("server task")?.context("serving")?,
        Err(_) => {
            eprintln!("shop-api: requests still running after {DRAIN_TIMEOUT:?}: leaving them")
        }
    }
    let (commits, writes) = db.writer.counts();
    db.writer.close().await;
    db.read.close().await;
    eprintln!(
        "shop-api: stopped ({writes} writes in {commits} commits, {:.1} per commit)",
        writes as f64 / commits.max(1) as f64
    );
    Ok(())
}

/// Empties every table (`--reset`), children first.
async fn reset(db: &db::Db) -> Result<(), db::ShopError> {
    db.write(|conn| {
        Box::pin(async move {
            for sql in [
                "DELETE FROM order_items",
                "DELETE FROM orders",
                "DELETE FROM cart_items",
                "DELETE FROM sessions",
                "DELETE FROM products",
            ] {
                sqlx::query(sql).execute(&mut *conn).await?;
            }
            Ok(())
        })
    })
    .await
}

/// Deletes expired sessions and their carts (the harness runs it every minute).
async fn purge_expired(db: &db::Db) -> Result<(), db::ShopError> {
    let now = db::now_ms();
    db.write(move |conn| {
        Box::pin(async move {
            for sql in [
                "DELETE FROM cart_items WHERE token IN \
                 (SELECT token FROM sessions WHERE expires_ms <= $1)",
                "DELETE FROM sessions WHERE expires_ms <= $1",
            ] {
                sqlx::query(sql).bind(now).execute(&mut *conn).await?;
            }
            Ok(())
        })
    })
    .await
}

fn print_intro(
    addr: SocketAddr,
    url: &str,
    db: &db::Db,
    seeded: bool,
    args: &Args,
    racy: checkout::Racy,
) {
    let backend = match db.backend {
        db::Backend::Sqlite => format!("SQLite (WAL, synchronous {:?})", args.synchronous),
        db::Backend::Postgres => "PostgreSQL".to_string(),
    };
    println!(
        "database {url}: {backend}, 1 writer (up to {} writes per commit), {} read connections{}",
        args.batch,
        args.pool,
        if seeded {
            format!(", seeded {} products x {}", args.products, args.stock)
        } else {
            String::new()
        }
    );
    if racy != checkout::Racy::default() {
        println!("NAIVE VERSIONS ON (--racy): {racy:?}");
    }
    let base = format!("http://{addr}");
    println!("try it (Ctrl-C or SIGTERM stops it cleanly):");
    println!("  curl -s {base}/products/1");
    println!(
        "  curl -s -c jar -H 'content-type: application/json' -d '{{\"user\":\"alice\"}}' {base}/login"
    );
    println!(
        "  curl -s -b jar -H 'content-type: application/json' -d '{{\"product_id\":1,\"qty\":2}}' {base}/cart/items"
    );
    println!("  curl -s -b jar -X POST -H 'idempotency-key: order-1' {base}/checkout");
    println!("  curl -s -b jar {base}/orders");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_flag_becomes_a_url() {
        assert_eq!(database_url(":memory:").as_deref(), Ok("sqlite::memory:"));
        assert_eq!(
            database_url("shop.db").as_deref(),
            Ok("sqlite:shop.db?mode=rwc")
        );
        let pg = "postgres://u:p@h/db";
        assert_eq!(database_url(pg).as_deref(), Ok(pg));
        for bad in ["postgres", "abc", "0", "shop.db?mode=ro", ""] {
            assert!(database_url(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            redacted("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redacted("sqlite:shop.db"), "sqlite:shop.db");
    }

    #[test]
    fn racy_list() {
        assert_eq!(racy_from(None), checkout::Racy::default());
        let all = racy_from(Some(&[RacyBug::All]));
        assert!(all.oversell && all.lost_updates && all.double_checkout && all.hold_connection);
        let one = racy_from(Some(&[RacyBug::Oversell]));
        assert!(one.oversell && !one.lost_updates);
    }

    async fn memory_db(stock: i64) -> db::Db {
        let db = db::open("sqlite::memory:", db::Settings::default())
            .await
            .expect("open");
        db::seed(&db, 3, stock).await.expect("seed");
        db
    }

    #[tokio::test]
    async fn concurrent_checkouts_never_sell_more_than_the_stock() {
        let db = memory_db(10).await;
        let mut tokens = Vec::new();
        for i in 0..40 {
            let s = cart::login(&db, &format!("u{i}"), 60_000)
                .await
                .expect("login");
            cart::add(&db, &s.token, 1, 1).await.expect("add");
            tokens.push(s.token);
        }
        let mut set = tokio::task::JoinSet::new();
        for t in tokens {
            let db = db.clone();
            set.spawn(async move {
                checkout::checkout(
                    &db,
                    checkout::Racy::default(),
                    &t,
                    "k",
                    Duration::from_millis(1),
                )
                .await
            });
        }
        let mut sold = 0;
        while let Some(r) = set.join_next().await {
            match r.expect("task") {
                Ok(_) => sold += 1,
                Err(db::ShopError::Conflict(_)) => {}
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(sold, 10);
        assert_eq!(cart::product(&db, 1).await.expect("product").stock, 0);
    }

    #[tokio::test]
    async fn the_same_key_returns_the_same_order() {
        let db = memory_db(5).await;
        let s = cart::login(&db, "alice", 60_000).await.expect("login");
        cart::add(&db, &s.token, 2, 3).await.expect("add");
        let racy = checkout::Racy::default();
        let first = checkout::checkout(&db, racy, &s.token, "k1", Duration::ZERO)
            .await
            .expect("first");
        let again = checkout::checkout(&db, racy, &s.token, "k1", Duration::ZERO)
            .await
            .expect("retry");
        assert_eq!(first.id, again.id);
        assert!(again.replayed && !first.replayed);
        assert_eq!(first.total_cents, 3 * db::price_cents(2));
        assert_eq!(cart::product(&db, 2).await.expect("product").stock, 2);
    }
}
