//! Worker pool: e-commerce orders (validate → charge → confirmation e-mail), retries, overload warning, graceful stop.
//!
//! Course section **8.4 Patterns de concurrence — Worker Pool** (the course's e-commerce case:
//! "traitement de commandes et envoi d'e-mails"). A storefront thread takes orders, with a
//! flash-sale burst in the middle, and puts them on a bounded queue; a fixed pool of worker
//! threads processes them. Payments go to a fake gateway that sometimes fails transiently;
//! confirmations go over TCP to a fake SMTP-like mail server on `127.0.0.1:0` that sometimes
//! answers "451 try again later".
//!
//! # Concepts
//! - **A fixed pool** of `--workers` threads sharing one bounded queue (`crossbeam_channel`):
//!   the pool size caps concurrency against the gateway and the mail server, whatever the load.
//! - **Retry the step, not the order**, with a limit and exponential backoff. Retrying the whole
//!   order after the e-mail failed would charge the customer twice; the gateway's ledger is
//!   checked at the end: every order is charged at most once.
//! - **Permanent vs transient failures**: an invalid order is rejected at once (retrying cannot
//!   fix it); a "try again" from the gateway or the mail server is retried.
//! - **Monitoring**: a monitor thread samples the queue depth and the process (CPU%, RSS via
//!   `shared::monitor`) every 100 ms and warns when the queue grows past `--warn-depth` (the
//!   workers are not keeping up), and again when it recovers.
//! - **Graceful stop** (Ctrl-C or `--stop-after`): the storefront stops taking orders, each
//!   worker finishes the order in its hands and exits; orders still queued are *reported* as not
//!   processed (a real system would leave them in a durable queue for the next run).
//! - **Everything is accounted for**: completed + failed + not processed = submitted; mails
//!   received by the server = orders completed.
//!
//! # Run
//! ```text
//! cargo run -p examples-patterns --bin worker-pool                       # 300 orders, 8 workers
//! cargo run -p examples-patterns --bin worker-pool -- --workers 32       # no more overload warning
//! cargo run -p examples-patterns --bin worker-pool -- --workers 2 --stop-after 1   # graceful stop
//! cargo run -p examples-patterns --bin worker-pool -- --fail-rate 0.5 --max-attempts 2
//! cargo run -p examples-patterns --bin worker-pool -- --json
//! ```
//!
//! # What to observe
//! - During the burst (orders 100..200 arrive 4× faster) the queue grows past the threshold and
//!   the monitor warns; after it, the queue drains and the monitor says so.
//! - The per-worker table: work spreads evenly because idle workers pull from the same queue.
//! - With `--stop-after`, in-flight orders complete (no half-charged order) and the rest are
//!   listed as not processed; the accounting line still balances.
//!
//! # Exercises
//! 1. Make the queue unbounded and the burst 20× faster. What grows, and what would a real shop
//!    do instead (reject at the door with "try later", autoscale workers)?
//! 2. Add a per-order deadline: an order older than 2 s when a worker takes it is failed as
//!    "expired" instead of being processed late.
//! 3. Move the e-mail step to its own smaller pool (a second queue). Why is that better when the
//!    mail server is slow but payments are fast?
//! 4. Make the backoff add random jitter. Why do synchronized retries hurt a recovering server?

use anyhow::{Context, Result, bail};
use clap::Parser;
use crossbeam_channel::{Receiver, SendTimeoutError, bounded};
use serde::Serialize;
use shared::report::{fmt_duration, print_json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// E-commerce order processing with a fixed pool of worker threads.
#[derive(Parser, Debug, Clone)]
#[command(version)]
struct Args {
    /// Orders the storefront receives.
    #[arg(long, default_value_t = 300)]
    orders: u64,
    /// Worker threads.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Orders per second arriving at the storefront (4× during the burst).
    #[arg(long, default_value_t = 250.0)]
    rate: f64,
    /// Queue capacity between the storefront and the workers.
    #[arg(long, default_value_t = 256)]
    queue: usize,
    /// Warn when this many orders are waiting.
    #[arg(long, default_value_t = 40)]
    warn_depth: usize,
    /// Probability that a payment or an e-mail attempt fails transiently.
    #[arg(long, default_value_t = 0.15)]
    fail_rate: f64,
    /// Attempts per step before the order is failed.
    #[arg(long, default_value_t = 3)]
    max_attempts: u32,
    /// Stop taking orders after this many seconds (in-flight orders finish).
    #[arg(long)]
    stop_after: Option<f64>,
    /// Seed for orders and failures.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Simulated latency of the payment gateway per call.
const CHARGE_LATENCY: Duration = Duration::from_millis(15);
/// First retry delay; doubled after each failed attempt.
const BACKOFF: Duration = Duration::from_millis(5);

#[derive(Debug, Clone)]
struct Order {
    id: u64,
    email: String,
    amount_cents: u64,
    items: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
enum Step {
    Validate,
    Charge,
    Email,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum Outcome {
    Completed {
        retries: u32,
    },
    Failed {
        step: Step,
        reason: String,
        retries: u32,
    },
}

#[derive(Debug, Clone, Serialize)]
struct OrderResult {
    id: u64,
    worker: usize,
    outcome: Outcome,
    latency_ms: f64,
}

/// A deterministic coin: "does attempt `attempt` of `what` for order `id` fail?". Seeded, so a
/// run can be replayed, and different for every attempt, so retries can succeed.
fn flaky(seed: u64, what: u64, id: u64, attempt: u32, p: f64) -> bool {
    let x = shared::work::cpu_task(
        seed ^ what.rotate_left(17) ^ id.rotate_left(31) ^ u64::from(attempt),
        2,
    );
    ((x >> 11) as f64 / (1u64 << 53) as f64) < p
}

// ---------------------------------------------------------------------------------------------
// The services the workers call: a payment gateway and a mail server.
// ---------------------------------------------------------------------------------------------

/// A fake payment gateway: slow, sometimes unavailable, and keeping a ledger of charges so the
/// run can prove no order was charged twice.
struct Gateway {
    seed: u64,
    fail_rate: f64,
    /// order id → successful charges. Locked briefly per call, never across the latency.
    ledger: Mutex<HashMap<u64, u32>>,
}

impl Gateway {
    fn charge(&self, order: &Order, attempt: u32) -> Result<(), String> {
        thread::sleep(CHARGE_LATENCY); // the network round trip
        if flaky(self.seed, 1, order.id, attempt, self.fail_rate) {
            return Err("503 gateway unavailable".into());
        }
        *self
            .ledger
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(order.id)
            .or_insert(0) += 1;
        Ok(())
    }
}

/// A fake SMTP-like mail server: one line per message, `MAIL <id> <email>`, answered with
/// `250 ok` or (transiently) `451 try again later`. One thread per connection: the workers
/// keep their connection open, so there are at most `--workers` of them.
struct MailServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<u64>>>,
    accept: Option<thread::JoinHandle<()>>,
}

impl MailServer {
    fn start(seed: u64, fail_rate: f64) -> Result<MailServer> {
        let listener = TcpListener::bind("127.0.0.1:0").context("bind the mail server")?;
        let addr = listener.local_addr().context("mail server address")?;
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (Arc::clone(&stop), Arc::clone(&received));
        let accept = thread::Builder::new()
            .name("mail-server".into())
            .spawn(move || {
                // Per-id attempt counter, so the failure coin differs on each retry.
                let attempts = Arc::new(Mutex::new(HashMap::<u64, u32>::new()));
                for conn in listener.incoming() {
                    if s.load(Ordering::Acquire) {
                        break; // woken by `shutdown`'s connection
                    }
                    let Ok(conn) = conn else { continue };
                    let (r, attempts) = (Arc::clone(&r), Arc::clone(&attempts));
                    // Errors on one connection end that connection only, never the server.
                    let _ = thread::Builder::new()
                        .name("mail-conn".into())
                        .spawn(move || serve_mail(conn, seed, fail_rate, &r, &attempts));
                }
            })
            .context("spawn the mail server")?;
        Ok(MailServer {
            addr,
            stop,
            received,
            accept: Some(accept),
        })
    }

    /// Stop accepting and return the ids of the messages received.
    fn shutdown(mut self) -> Vec<u64> {
        self.stop.store(true, Ordering::Release);
        // `accept` blocks: wake it with one last connection, then it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        std::mem::take(&mut *self.received.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn serve_mail(
    conn: TcpStream,
    seed: u64,
    fail_rate: f64,
    received: &Mutex<Vec<u64>>,
    attempts: &Mutex<HashMap<u64, u32>>,
) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut out = conn.try_clone()?;
    for line in BufReader::new(conn).lines() {
        let line = line?;
        let mut parts = line.split_whitespace();
        let reply = match (
            parts.next(),
            parts.next().and_then(|id| id.parse::<u64>().ok()),
            parts.next(),
        ) {
            (Some("MAIL"), Some(id), Some(email)) if email.contains('@') => {
                let attempt = {
                    let mut a = attempts.lock().unwrap_or_else(|p| p.into_inner());
                    let n = a.entry(id).or_insert(0);
                    *n += 1;
                    *n
                };
                if flaky(seed, 2, id, attempt, fail_rate) {
                    "451 try again later"
                } else {
                    received.lock().unwrap_or_else(|p| p.into_inner()).push(id);
                    "250 ok"
                }
            }
            _ => "500 syntax error",
        };
        out.write_all(format!("{reply}\n").as_bytes())?;
    }
    Ok(()) // the client closed the connection
}

/// A worker's connection to the mail server, opened on first use and reopened after an error.
struct Mailer {
    addr: SocketAddr,
    conn: Option<(BufReader<TcpStream>, TcpStream)>,
}

impl Mailer {
    fn send(&mut self, order: &Order) -> Result<(), String> {
        let result = self.try_send(order);
        if result.is_err() {
            self.conn = None; // do not reuse a connection in an unknown state
        }
        result
    }

    fn try_send(&mut self, order: &Order) -> Result<(), String> {
        if self.conn.is_none() {
            let s = TcpStream::connect(self.addr).map_err(|e| format!("connect: {e}"))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .map_err(|e| e.to_string())?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            let w = s.try_clone().map_err(|e| e.to_string())?;
            self.conn = Some((BufReader::new(s), w));
        }
        let (r, w) = self.conn.as_mut().expect("connected just above");
        // One `write_all` per request line, and TCP_NODELAY (set at connect): `writeln!` on a
        // raw socket issues several small writes, and Nagle's algorithm + delayed ACKs then add
        // ~40 ms to every request/reply round trip. A classic, invisible latency bug.
        w.write_all(format!("MAIL {} {}\n", order.id, order.email).as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        let mut reply = String::new();
        r.read_line(&mut reply).map_err(|e| format!("read: {e}"))?;
        match reply.trim_end() {
            r if r.starts_with("250") => Ok(()),
            r => Err(r.to_string()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The order flow and the pool.
// ---------------------------------------------------------------------------------------------

fn validate(order: &Order) -> Result<(), String> {
    if !order.email.contains('@') {
        return Err(format!("invalid e-mail {:?}", order.email));
    }
    if order.items == 0 || order.amount_cents == 0 {
        return Err("empty order".into());
    }
    Ok(())
}

/// Run `step` up to `max` times with exponential backoff; returns the retries used.
fn with_retries(
    max: u32,
    retries: &mut u32,
    mut step: impl FnMut(u32) -> Result<(), String>,
) -> Result<(), String> {
    let mut delay = BACKOFF;
    for attempt in 1..=max {
        match step(attempt) {
            Ok(()) => return Ok(()),
            Err(e) if attempt == max => return Err(format!("{e} (after {max} attempts)")),
            Err(_) => {
                *retries += 1;
                thread::sleep(delay);
                delay *= 2;
            }
        }
    }
    Err("no attempt allowed (--max-attempts 0)".into())
}

/// One order through the three steps. Each step is retried on its own: a failed e-mail never
/// causes a second charge.
fn process(order: &Order, gateway: &Gateway, mailer: &mut Mailer, max: u32) -> Outcome {
    let mut retries = 0;
    if let Err(reason) = validate(order) {
        return Outcome::Failed {
            step: Step::Validate,
            reason,
            retries,
        }; // permanent: no retry
    }
    if let Err(reason) = with_retries(max, &mut retries, |a| gateway.charge(order, a)) {
        return Outcome::Failed {
            step: Step::Charge,
            reason,
            retries,
        };
    }
    if let Err(reason) = with_retries(max, &mut retries, |_| mailer.send(order)) {
        // Charged but not confirmed: a real shop would queue the e-mail for later, not refund.
        return Outcome::Failed {
            step: Step::Email,
            reason,
            retries,
        };
    }
    Outcome::Completed { retries }
}

fn worker(
    id: usize,
    rx: Receiver<(Order, Instant)>,
    stop: &AtomicBool,
    deadline: Option<Instant>,
    gateway: &Gateway,
    mail: SocketAddr,
    max: u32,
) -> Vec<OrderResult> {
    let mut mailer = Mailer {
        addr: mail,
        conn: None,
    };
    let mut results = Vec::new();
    // Check the stop signals before taking an order, never in the middle of one: an order that
    // was started is finished (charged AND confirmed, or failed with a reason).
    while !stop.load(Ordering::Acquire) && deadline.is_none_or(|d| Instant::now() < d) {
        let Ok((order, queued_at)) = rx.recv() else {
            break;
        }; // closed and drained
        let outcome = process(&order, gateway, &mut mailer, max);
        results.push(OrderResult {
            id: order.id,
            worker: id,
            outcome,
            latency_ms: queued_at.elapsed().as_secs_f64() * 1e3,
        });
    }
    results
}

fn make_orders(n: u64, seed: u64) -> Vec<Order> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|id| {
            // ~3% of orders are invalid: a typo in the address, or an empty basket.
            let bad = rng.random_range(0..100);
            Order {
                id,
                email: if bad == 0 {
                    format!("customer{id}.example.com")
                } else {
                    format!("customer{id}@example.com")
                },
                items: if bad == 1 || bad == 2 {
                    0
                } else {
                    rng.random_range(1..6)
                },
                amount_cents: rng.random_range(500..50_000),
            }
        })
        .collect()
}

#[derive(Serialize)]
struct Summary {
    submitted: u64,
    completed: u64,
    failed_validate: u64,
    failed_charge: u64,
    failed_email: u64,
    not_processed: u64,
    retries: u64,
    accounted: bool,
    double_charges: u64,
    mails_received: u64,
    mails_match_completed: bool,
    overload_warnings: u64,
    max_queue_depth: usize,
    wall_s: f64,
    orders_per_s: f64,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    per_worker: Vec<u64>,
    stopped_early: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.workers == 0 || args.queue == 0 {
        bail!("--workers and --queue must be at least 1");
    }
    let stop = shared::shutdown::stop_flag_on_ctrl_c()?;
    let gateway = Gateway {
        seed: args.seed,
        fail_rate: args.fail_rate,
        ledger: Mutex::new(HashMap::new()),
    };
    let mail = MailServer::start(args.seed, args.fail_rate)?;
    let orders = make_orders(args.orders, args.seed);
    if !args.json {
        println!(
            "{} orders at {:.0}/s (x4 during the burst), {} workers, queue {}, mail server on {}",
            args.orders, args.rate, args.workers, args.queue, mail.addr
        );
    }

    let (tx, rx) = bounded::<(Order, Instant)>(args.queue);
    let start = Instant::now();
    let deadline = args.stop_after.map(|s| start + Duration::from_secs_f64(s));
    let finished = AtomicBool::new(false);
    let mail_addr = mail.addr;

    let (results, submitted, warnings, max_depth) = thread::scope(|s| -> Result<_> {
        let workers: Vec<_> = (0..args.workers)
            .map(|i| {
                let (rx, stop, gw) = (rx.clone(), &*stop, &gateway);
                thread::Builder::new()
                    .name(format!("worker-{i:02}"))
                    .spawn_scoped(s, move || {
                        worker(i, rx, stop, deadline, gw, mail_addr, args.max_attempts)
                    })
                    .context("spawn worker")
            })
            .collect::<Result<_>>()?;

        // The monitor: queue depth + process CPU/RSS, warnings on crossing the threshold.
        let monitor = {
            let (rx, finished, json) = (rx.clone(), &finished, args.json);
            let warn_depth = args.warn_depth;
            thread::Builder::new()
                .name("monitor".into())
                .spawn_scoped(s, move || {
                    let mut sampler = shared::monitor::Sampler::new();
                    let limits = shared::monitor::Thresholds::default_for_machine(1024);
                    let (mut overloaded, mut warnings, mut max_depth) = (false, 0u64, 0usize);
                    while !finished.load(Ordering::Acquire) {
                        thread::sleep(Duration::from_millis(100));
                        let depth = rx.len();
                        max_depth = max_depth.max(depth);
                        let sample = sampler.sample();
                        let t = start.elapsed().as_secs_f64();
                        if depth > warn_depth && !overloaded {
                            overloaded = true;
                            warnings += 1;
                            if !json {
                                eprintln!(
                                    "[{t:5.2}s] WARNING overload: {depth} orders waiting > {warn_depth} (cpu {:.0}%, rss {} MiB){}",
                                    sample.cpu_percent,
                                    sample.rss_kib / 1024,
                                    limits.check(&sample).map_or(String::new(), |m| format!("; {m}"))
                                );
                            }
                        } else if depth <= warn_depth / 2 && overloaded {
                            overloaded = false;
                            if !json {
                                eprintln!("[{t:5.2}s] recovered: {depth} orders waiting");
                            }
                        }
                    }
                    (warnings, max_depth)
                })
                .context("spawn monitor")?
        };

        // The storefront (this thread): orders arrive at `rate`, 4x faster for the middle third.
        let mut submitted = 0u64;
        let mut next = Instant::now();
        let stopping =
            || stop.load(Ordering::Acquire) || deadline.is_some_and(|d| Instant::now() >= d);
        'orders: for order in orders {
            if stopping() {
                break;
            }
            let burst = (args.orders / 3..2 * args.orders / 3).contains(&order.id);
            next += Duration::from_secs_f64(1.0 / (args.rate * if burst { 4.0 } else { 1.0 }));
            if let Some(d) = next.checked_duration_since(Instant::now()) {
                thread::sleep(d);
            }
            // Blocks when the queue is full: backpressure reaches the storefront. But never
            // block forever: once a stop is asked for, the workers stop taking orders, so a
            // full queue would stay full. Wait in slices and re-check the stop signals; an
            // order that was never accepted is not counted as submitted.
            let mut item = (order, Instant::now());
            loop {
                match tx.send_timeout(item, Duration::from_millis(20)) {
                    Ok(()) => break,
                    Err(SendTimeoutError::Timeout(back)) if !stopping() => item = back,
                    Err(_) => break 'orders, // stopping, or every worker is gone
                }
            }
            submitted += 1;
        }
        // No more orders: the channel closes, so workers waiting on an empty queue wake up
        // and exit; on a normal run they first finish what is queued.
        drop(tx);
        let mut results = Vec::new();
        for w in workers {
            results.extend(w.join().expect("a worker panicked"));
        }
        finished.store(true, Ordering::Release);
        let (warnings, max_depth) = monitor.join().expect("the monitor panicked");
        Ok((results, submitted, warnings, max_depth))
    })?;
    let wall = start.elapsed();
    // What is still queued was accepted but never started: report it, do not drop it silently.
    let not_processed: Vec<u64> = rx.try_iter().map(|(o, _)| o.id).collect();
    let mails = mail.shutdown();

    // ----- accounting -----
    let count =
        |f: &dyn Fn(&Outcome) -> bool| results.iter().filter(|r| f(&r.outcome)).count() as u64;
    let completed = count(&|o| matches!(o, Outcome::Completed { .. }));
    let failed = |step| count(&|o| matches!(o, Outcome::Failed { step: s, .. } if *s == step));
    let (fv, fc, fe) = (
        failed(Step::Validate),
        failed(Step::Charge),
        failed(Step::Email),
    );
    let retries: u64 = results
        .iter()
        .map(|r| match r.outcome {
            Outcome::Completed { retries } | Outcome::Failed { retries, .. } => u64::from(retries),
        })
        .sum();
    let accounted = completed + fv + fc + fe + not_processed.len() as u64 == submitted;
    let ledger = gateway.ledger.lock().unwrap_or_else(|p| p.into_inner());
    let double_charges = ledger.values().filter(|&&n| n > 1).count() as u64;
    let mut mailed = mails.clone();
    mailed.sort_unstable();
    let mut completed_ids: Vec<u64> = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Completed { .. }))
        .map(|r| r.id)
        .collect();
    completed_ids.sort_unstable();
    let mails_match = mailed == completed_ids;
    let mut lat: Vec<f64> = results.iter().map(|r| r.latency_ms).collect();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let mut per_worker = vec![0u64; args.workers];
    for r in &results {
        per_worker[r.worker] += 1;
    }
    let summary = Summary {
        submitted,
        completed,
        failed_validate: fv,
        failed_charge: fc,
        failed_email: fe,
        not_processed: not_processed.len() as u64,
        retries,
        accounted,
        double_charges,
        mails_received: mails.len() as u64,
        mails_match_completed: mails_match,
        overload_warnings: warnings,
        max_queue_depth: max_depth,
        wall_s: wall.as_secs_f64(),
        orders_per_s: results.len() as f64 / wall.as_secs_f64().max(1e-9),
        latency_p50_ms: pct(0.5),
        latency_p99_ms: pct(0.99),
        per_worker,
        stopped_early: submitted < args.orders || !not_processed.is_empty(),
    };

    if args.json {
        print_json(&summary);
    } else {
        let s = &summary;
        println!("{:<28} {:>6}", "orders submitted", s.submitted);
        println!("{:<28} {:>6}", "  completed", s.completed);
        println!("{:<28} {:>6}", "  failed: invalid order", s.failed_validate);
        println!(
            "{:<28} {:>6}",
            "  failed: payment (gave up)", s.failed_charge
        );
        println!("{:<28} {:>6}", "  failed: e-mail (gave up)", s.failed_email);
        println!("{:<28} {:>6}", "  not processed (queued)", s.not_processed);
        println!("{:<28} {:>6}", "retries", s.retries);
        println!("{:<28} {:>6}", "overload warnings", s.overload_warnings);
        println!("{:<28} {:>6}", "max queue depth", s.max_queue_depth);
        println!(
            "{} orders/s over {}; queue-to-done latency p50 {:.0} ms, p99 {:.0} ms",
            s.orders_per_s.round(),
            fmt_duration(wall),
            s.latency_p50_ms,
            s.latency_p99_ms
        );
        println!("orders per worker: {:?}", s.per_worker);
        println!(
            "checks: every order accounted for: {}; charged twice: {}; mails received {} = completed: {}",
            if accounted { "yes" } else { "NO" },
            s.double_charges,
            s.mails_received,
            if mails_match { "yes" } else { "NO" }
        );
        if !not_processed.is_empty() {
            let shown: Vec<String> = not_processed.iter().take(10).map(u64::to_string).collect();
            println!(
                "not processed (would be re-queued): {}{}",
                shown.join(", "),
                if not_processed.len() > 10 {
                    ", ..."
                } else {
                    ""
                }
            );
        }
    }
    if !accounted || double_charges > 0 || !mails_match {
        bail!(
            "an invariant failed: accounted={accounted}, double charges={double_charges}, mails match={mails_match}"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(fail_rate: f64) -> Gateway {
        Gateway {
            seed: 1,
            fail_rate,
            ledger: Mutex::new(HashMap::new()),
        }
    }

    #[test]
    fn invalid_orders_fail_without_retry() {
        let mail = MailServer::start(1, 0.0).unwrap();
        let mut m = Mailer {
            addr: mail.addr,
            conn: None,
        };
        let order = Order {
            id: 1,
            email: "nobody".into(),
            amount_cents: 100,
            items: 1,
        };
        let out = process(&order, &gateway(0.0), &mut m, 3);
        assert!(
            matches!(
                out,
                Outcome::Failed {
                    step: Step::Validate,
                    retries: 0,
                    ..
                }
            ),
            "{out:?}"
        );
        assert!(mail.shutdown().is_empty());
    }

    #[test]
    fn transient_failures_are_retried_and_never_double_charge() {
        let mail = MailServer::start(3, 0.4).unwrap();
        let gw = gateway(0.4);
        let mut m = Mailer {
            addr: mail.addr,
            conn: None,
        };
        let mut completed = Vec::new();
        let mut retries = 0;
        for id in 0..40 {
            let order = Order {
                id,
                email: format!("c{id}@x.org"),
                amount_cents: 100,
                items: 1,
            };
            match process(&order, &gw, &mut m, 4) {
                Outcome::Completed { retries: r } => {
                    completed.push(id);
                    retries += r;
                }
                Outcome::Failed { step, .. } => assert_ne!(step, Step::Validate),
            }
        }
        drop(m);
        let mut mails = mail.shutdown();
        mails.sort_unstable();
        assert_eq!(mails, completed, "one mail per completed order");
        assert!(
            retries > 0,
            "with a 40% failure rate some attempts must be retried"
        );
        assert!(
            gw.ledger.lock().unwrap().values().all(|&n| n == 1),
            "charged twice"
        );
    }

    #[test]
    fn retries_stop_at_the_limit() {
        let mut retries = 0;
        let mut calls = 0;
        let r = with_retries(3, &mut retries, |_| {
            calls += 1;
            Err("nope".into())
        });
        assert_eq!((calls, retries), (3, 2));
        assert!(r.unwrap_err().contains("after 3 attempts"));
    }
}
