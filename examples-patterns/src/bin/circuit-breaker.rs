//! Circuit breaker: stop calling a failing service, fail fast, probe it, recover; measured with
//! and without.
//!
//! Course section **8.4 Patterns de concurrence — Circuit Breaker**. Traffic arrives at a steady
//! rate (one tokio task per request) and calls the local test server over HTTP. In the middle of
//! the run the server has an outage: 90% of its requests hang, so callers only learn about the
//! failure when their timeout fires. The same traffic runs twice, without and with a breaker.
//!
//! Crates: `tokio = { version = "1.54", features = ["time", "macros", "rt", "test-util"] }`,
//! `thiserror = "2"` (`macros`, `rt` and `test-util` are for the paused-clock tests only)
//!
//! # Concepts
//! - **Three states.** *Closed*: calls go through; failures are counted in a sliding window.
//!   *Open* (after `--threshold` failures within `--window-ms`): calls fail at once, without
//!   touching the service, for `--cool-down-ms`. *Half-open*: at most `--probes` trial calls at
//!   a time; `--probes` successes close the breaker, one failure reopens it.
//! - **Why**: a timeout costs the caller the whole timeout *and* keeps a connection, a task and
//!   a slot of the failing service busy. Failing fast protects both sides.
//! - **State under a `std::sync::Mutex`**, held for a few instructions and never across an
//!   `.await`. A `Permit` guard reports the outcome; if the caller's future is dropped mid-call,
//!   the guard still frees its probe slot, so the breaker cannot get stuck half-open.
//! - **Time comes from `tokio::time::Instant`**, so tests run the state machine with a paused
//!   clock: minutes of cool-downs in microseconds, no flaky sleeps.
//! - **Bounded work** (the harness): at most `--max-in-flight` calls at once; arrivals beyond it
//!   are shed (counted, not sent), so memory stays bounded whatever the rate and the timeout.
//!
//! # Run
//! ```text
//! cargo run -p examples-patterns --bin circuit-breaker
//! cargo run -p examples-patterns --bin circuit-breaker -- --rate 400 --timeout-ms 500
//! cargo run -p examples-patterns --bin circuit-breaker -- --threshold 20 --cool-down-ms 1000
//! cargo run -p examples-patterns --bin circuit-breaker -- --target http://127.0.0.1:9/  # a dead port
//! cargo run -p examples-patterns --bin circuit-breaker -- --json
//! cargo run -p examples-patterns --bin circuit-breaker -- --python   # + the asyncio breaker
//! ```
//!
//! # What to observe
//! - The transition log: closed → open about one timeout after the outage starts, then
//!   open → half-open → open while the service is still down, and half-open → closed soon
//!   after it recovers.
//! - Without the breaker, every request during the outage reaches the server and waits the full
//!   timeout; with it, a handful of probes do and the rest fail in microseconds: the server's
//!   load during the outage and the callers' waiting time both drop several-fold.
//! - The price: requests that would have succeeded are rejected too. A breaker trades
//!   availability for protection; a shorter `--cool-down-ms` recovers sooner but probes more.
//! - With `--target` on a dead port, every call fails fast (connection refused) and the breaker
//!   still opens: it saves the attempts, not the waiting.
//! - `--python` replays this traffic as a seeded script on a fake clock through the course's
//!   asyncio breaker and this one: the same calls let through, the same transitions.
//!
//! # Exercises
//! 1. Make the outage fast (`error_500` instead of `hang`, in `outage_faults`). Does the breaker
//!    still save caller time? What does it still save?
//! 2. Count a timeout as two failures and a 500 as one. Why might slow failures weigh more?
//! 3. Add a fallback (a cached answer) for rejected calls, and measure the error rate seen by
//!    users with and without it.
//! 4. Give each task its own breaker instead of one `Arc<CircuitBreaker>`: what changes?
//! 5. Checked: the half-open probe budget, cancelled probes included, on a paused clock
//!    (`cargo run -p shared --bin exercises -- check patterns/03`).

// === Lesson: copy from here ===

/// The circuit breaker. In a real project: `breaker.rs`, one per remote service.
mod breaker {
    use std::collections::VecDeque;
    use std::future::Future;
    use std::sync::{Mutex, MutexGuard};
    use std::time::Duration;
    use tokio::time::Instant;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum State {
        Closed,
        Open,
        HalfOpen,
    }

    impl State {
        pub fn as_str(self) -> &'static str {
            match self {
                State::Closed => "closed",
                State::Open => "open",
                State::HalfOpen => "half-open",
            }
        }
    }

    #[derive(Debug, Clone, Copy)]
    pub struct BreakerConfig {
        /// Failures within `window` that open the breaker.
        pub threshold: usize,
        /// The sliding window over which failures are counted.
        pub window: Duration,
        /// How long the breaker stays open before letting probes through.
        pub cool_down: Duration,
        /// Probes allowed in flight at once while half-open, and successes needed to close.
        pub probes: u32,
    }

    #[derive(Debug, Clone)]
    pub struct Transition {
        /// Time since the breaker was created.
        pub at_ms: f64,
        pub from: State,
        pub to: State,
        pub reason: String,
    }

    /// Why a call through the breaker failed.
    #[derive(Debug, thiserror::Error)]
    pub enum CallError<E> {
        /// The breaker is open (or half-open with every probe slot taken): the service was not called.
        #[error("circuit open: call rejected without calling the service")]
        Rejected,
        /// The service was called and failed.
        #[error(transparent)]
        Failed(E),
    }

    struct Inner {
        state: State,
        /// Times of recent failures while closed (older than `window` are dropped).
        failures: VecDeque<Instant>,
        opened_at: Instant,
        probes_in_flight: u32,
        probe_successes: u32,
        transitions: Vec<Transition>,
    }

    pub struct CircuitBreaker {
        cfg: BreakerConfig,
        created: Instant,
        inner: Mutex<Inner>,
        /// Called on every transition (for live logging); must be quick, runs under the lock.
        on_transition: Box<dyn Fn(&Transition) + Send + Sync>,
    }

    /// The right to call the service once. Report the outcome with [`Permit::record`]; dropping it
    /// unreported (the call was cancelled) frees a probe slot without counting an outcome.
    pub struct Permit<'a> {
        breaker: &'a CircuitBreaker,
        probe: bool,
        done: bool,
    }

    impl CircuitBreaker {
        #[allow(dead_code)] // the demo logs transitions; the tests and quiet callers use this
        pub fn new(cfg: BreakerConfig) -> Self {
            Self::with_observer(cfg, |_| {})
        }

        pub fn with_observer(
            cfg: BreakerConfig,
            on_transition: impl Fn(&Transition) + Send + Sync + 'static,
        ) -> Self {
            let now = Instant::now();
            CircuitBreaker {
                cfg,
                created: now,
                inner: Mutex::new(Inner {
                    state: State::Closed,
                    failures: VecDeque::new(),
                    opened_at: now,
                    probes_in_flight: 0,
                    probe_successes: 0,
                    transitions: Vec::new(),
                }),
                on_transition: Box::new(on_transition),
            }
        }

        fn lock(&self) -> MutexGuard<'_, Inner> {
            // A panic while holding this lock cannot leave the state half-updated in a way that
            // matters more than losing the breaker: keep going with the data.
            self.inner.lock().unwrap_or_else(|p| p.into_inner())
        }

        pub fn state(&self) -> State {
            self.lock().state
        }

        pub fn transitions(&self) -> Vec<Transition> {
            self.lock().transitions.clone()
        }

        fn transition(&self, inner: &mut Inner, to: State, reason: String) {
            let t = Transition {
                at_ms: self.created.elapsed().as_secs_f64() * 1e3,
                from: inner.state,
                to,
                reason,
            };
            (self.on_transition)(&t);
            inner.transitions.push(t);
            inner.state = to;
            match to {
                State::Open => inner.opened_at = Instant::now(),
                State::HalfOpen => {
                    inner.probes_in_flight = 0;
                    inner.probe_successes = 0;
                }
                State::Closed => inner.failures.clear(),
            }
        }

        /// Ask to call the service. `None` = fail fast.
        pub fn try_acquire(&self) -> Option<Permit<'_>> {
            let mut inner = self.lock();
            if inner.state == State::Open && inner.opened_at.elapsed() >= self.cfg.cool_down {
                let reason = format!("cool-down of {:?} over", self.cfg.cool_down);
                self.transition(&mut inner, State::HalfOpen, reason);
            }
            let probe = match inner.state {
                State::Closed => false,
                State::Open => return None,
                State::HalfOpen if inner.probes_in_flight < self.cfg.probes => {
                    inner.probes_in_flight += 1;
                    true
                }
                State::HalfOpen => return None,
            };
            Some(Permit {
                breaker: self,
                probe,
                done: false,
            })
        }

        fn record(&self, probe: bool, success: Option<bool>) {
            let mut inner = self.lock();
            if probe && inner.state == State::HalfOpen {
                inner.probes_in_flight -= 1;
            }
            match (inner.state, probe, success) {
                (_, _, None) => {} // cancelled: no information about the service
                (State::Closed, _, Some(false)) => {
                    let now = Instant::now();
                    inner.failures.push_back(now);
                    while inner
                        .failures
                        .front()
                        .is_some_and(|&t| now.duration_since(t) > self.cfg.window)
                    {
                        inner.failures.pop_front();
                    }
                    if inner.failures.len() >= self.cfg.threshold {
                        let reason = format!(
                            "{} failures within {:?}",
                            inner.failures.len(),
                            self.cfg.window
                        );
                        self.transition(&mut inner, State::Open, reason);
                    }
                }
                (State::HalfOpen, true, Some(true)) => {
                    inner.probe_successes += 1;
                    if inner.probe_successes >= self.cfg.probes {
                        let reason = format!("{} probes succeeded", inner.probe_successes);
                        self.transition(&mut inner, State::Closed, reason);
                    }
                }
                (State::HalfOpen, true, Some(false)) => {
                    self.transition(&mut inner, State::Open, "a probe failed".into());
                }
                // Successes while closed, and late results of calls admitted before the state
                // changed: they say nothing about the current state of the service.
                _ => {}
            }
        }

        /// Run `call` through the breaker.
        pub async fn call<T, E, F>(&self, call: F) -> Result<T, CallError<E>>
        where
            F: Future<Output = Result<T, E>>,
        {
            let permit = self.try_acquire().ok_or(CallError::Rejected)?;
            let result = call.await; // no lock held here
            permit.record(result.is_ok());
            result.map_err(CallError::Failed)
        }
    }

    impl Permit<'_> {
        pub fn record(mut self, success: bool) {
            self.done = true;
            self.breaker.record(self.probe, Some(success));
        }
    }

    impl Drop for Permit<'_> {
        fn drop(&mut self) {
            if !self.done {
                self.breaker.record(self.probe, None);
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::time::Duration;

        fn cfg() -> BreakerConfig {
            BreakerConfig {
                threshold: 3,
                window: Duration::from_secs(10),
                cool_down: Duration::from_secs(30),
                probes: 2,
            }
        }

        async fn fail(b: &CircuitBreaker) -> Result<(), CallError<&'static str>> {
            b.call(async { Err::<(), _>("boom") }).await
        }

        async fn succeed(b: &CircuitBreaker) -> Result<(), CallError<&'static str>> {
            b.call(async { Ok::<(), &str>(()) }).await
        }

        #[tokio::test(start_paused = true)]
        async fn closed_opens_after_threshold_failures_in_window() {
            let b = CircuitBreaker::new(cfg());
            for _ in 0..2 {
                assert!(matches!(fail(&b).await, Err(CallError::Failed("boom"))));
            }
            assert_eq!(b.state(), State::Closed);
            assert!(
                succeed(&b).await.is_ok(),
                "successes do not reset the window"
            );
            assert!(fail(&b).await.is_err());
            assert_eq!(b.state(), State::Open);
            // Open: the service is not called at all.
            let mut called = false;
            let r = b
                .call(async {
                    called = true;
                    Ok::<(), &str>(())
                })
                .await;
            assert!(matches!(r, Err(CallError::Rejected)) && !called);
        }

        #[tokio::test(start_paused = true)]
        async fn failures_outside_the_window_do_not_open() {
            let b = CircuitBreaker::new(cfg());
            for _ in 0..10 {
                let _ = fail(&b).await;
                let _ = fail(&b).await;
                tokio::time::advance(Duration::from_secs(11)).await; // older ones leave the window
                assert_eq!(b.state(), State::Closed);
            }
        }

        async fn opened() -> CircuitBreaker {
            let b = CircuitBreaker::new(cfg());
            for _ in 0..3 {
                let _ = fail(&b).await;
            }
            assert_eq!(b.state(), State::Open);
            b
        }

        #[tokio::test(start_paused = true)]
        async fn open_becomes_half_open_after_the_cool_down_only() {
            let b = opened().await;
            tokio::time::advance(Duration::from_secs(29)).await;
            assert!(matches!(succeed(&b).await, Err(CallError::Rejected)));
            assert_eq!(b.state(), State::Open);
            tokio::time::advance(Duration::from_secs(1)).await;
            let p = b
                .try_acquire()
                .expect("a probe is allowed after the cool-down");
            assert_eq!(b.state(), State::HalfOpen);
            drop(p);
        }

        #[tokio::test(start_paused = true)]
        async fn half_open_limits_probes_and_closes_after_successes() {
            let b = opened().await;
            tokio::time::advance(Duration::from_secs(30)).await;
            let p1 = b.try_acquire().expect("probe 1");
            let p2 = b.try_acquire().expect("probe 2");
            assert!(b.try_acquire().is_none(), "only 2 probes in flight");
            p1.record(true);
            assert_eq!(b.state(), State::HalfOpen, "one success is not enough");
            p2.record(true);
            assert_eq!(b.state(), State::Closed);
            let states: Vec<_> = b.transitions().iter().map(|t| t.to).collect();
            assert_eq!(states, [State::Open, State::HalfOpen, State::Closed]);
            // Closed again with a fresh window: one failure does not reopen.
            let _ = fail(&b).await;
            assert_eq!(b.state(), State::Closed);
        }

        #[tokio::test(start_paused = true)]
        async fn a_failed_probe_reopens_for_a_new_cool_down() {
            let b = opened().await;
            tokio::time::advance(Duration::from_secs(30)).await;
            assert!(fail(&b).await.is_err());
            assert_eq!(b.state(), State::Open);
            tokio::time::advance(Duration::from_secs(29)).await;
            assert!(matches!(succeed(&b).await, Err(CallError::Rejected)));
            tokio::time::advance(Duration::from_secs(1)).await;
            assert!(succeed(&b).await.is_ok());
            assert!(succeed(&b).await.is_ok());
            assert_eq!(b.state(), State::Closed);
        }

        #[tokio::test(start_paused = true)]
        async fn a_cancelled_probe_frees_its_slot() {
            let b = opened().await;
            tokio::time::advance(Duration::from_secs(30)).await;
            // A probe that never finishes, cancelled by a timeout.
            let slow = b.call(async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok::<(), &str>(())
            });
            assert!(
                tokio::time::timeout(Duration::from_secs(1), slow)
                    .await
                    .is_err()
            );
            let _p1 = b.try_acquire().expect("the cancelled probe's slot is free");
            let _p2 = b.try_acquire().expect("both slots are free");
            assert_eq!(b.state(), State::HalfOpen);
        }
    }
}

// === Harness: not part of the lesson ===

use anyhow::{Context, Result};
use breaker::{BreakerConfig, CallError, CircuitBreaker, Transition};
use clap::Parser;
use examples_patterns::python_peer;
use serde::Serialize;
use shared::cli;
use shared::report::{fmt_duration, print_json};
use shared::server::{Faults, ServerConfig, StatsSnapshot, TestServer};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, oneshot};
use tokio::time::Instant;

/// The highest `--rate`: one task per request, started by one ticking loop. Beyond a few
/// thousand a second on a small machine the loop cannot keep its schedule and the run measures
/// the spawner, not the breaker. (The in-flight cap is what bounds memory.)
const MAX_RATE: f64 = 5_000.0;

/// Circuit breaker around HTTP calls to a local server that has an outage (or to `--target`).
#[derive(Parser, Debug, Clone)]
#[command(version)]
struct Args {
    /// Requests per second (each in its own task).
    #[arg(long, default_value_t = 200.0, value_parser = cli::f64_in(0.1, MAX_RATE))]
    rate: f64,
    /// Length of each run, in seconds.
    #[arg(long, default_value = "3", value_parser = cli::seconds_in(0.1, 3600.0))]
    duration: Duration,
    /// When the outage starts, in seconds into the run (local server only).
    #[arg(long, default_value = "0.8", value_parser = cli::seconds_in(0.0, 3600.0))]
    outage_start: Duration,
    /// How long the outage lasts, in seconds (local server only).
    #[arg(long, default_value = "1.2", value_parser = cli::seconds_in(0.0, 3600.0))]
    outage_len: Duration,
    /// Client timeout per request, in milliseconds.
    #[arg(long, default_value_t = 300, value_parser = cli::u64_in(1, 60_000))]
    timeout_ms: u64,
    /// Failures within the window that open the breaker.
    #[arg(long, default_value_t = 5, value_parser = cli::usize_in(1, 1_000_000))]
    threshold: usize,
    /// Failure-counting window, in milliseconds.
    #[arg(long, default_value_t = 1000, value_parser = cli::u64_in(1, 3_600_000))]
    window_ms: u64,
    /// Cool-down before probing, in milliseconds.
    #[arg(long, default_value_t = 250, value_parser = cli::u64_in(0, 3_600_000))]
    cool_down_ms: u64,
    /// Concurrent probes while half-open (and successes needed to close).
    #[arg(long, default_value_t = 2, value_parser = cli::u32_in(1, 1000))]
    probes: u32,
    /// Calls in flight at most; arrivals beyond it are shed (counted, never sent).
    #[arg(long, default_value_t = 1000, value_parser = cli::usize_in(1, 100_000))]
    max_in_flight: usize,
    /// Call this URL instead of the local server with its outage (e.g. a service of yours, or
    /// a dead port to see every call fail fast).
    #[arg(long)]
    target: Option<reqwest::Url>,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
    /// Also replay a seeded script of this traffic (the same rate, outage and timeout, on a
    /// fake clock) through the course's asyncio breaker (python/circuit_breaker.py) and this
    /// one: the same calls must be let through, with the same transitions.
    #[arg(long)]
    python: bool,
}

/// During the outage 90% of requests hang (the slow kind of failure, caught by the timeout).
fn outage_faults() -> Faults {
    Faults {
        hang: 0.9,
        ..Faults::NONE
    }
}

/// What one run (without or with the breaker) measured.
#[derive(Debug, Default, Serialize)]
struct TrafficReport {
    breaker: bool,
    /// Arrivals: ok + failed + rejected + shed.
    requests: u64,
    ok: u64,
    failed: u64,
    /// Failed fast by the breaker, without calling the service.
    rejected: u64,
    /// Not sent: `--max-in-flight` calls were already waiting.
    shed: u64,
    max_in_flight: usize,
    wall_s: f64,
    /// Sum of the time every caller spent waiting for an answer.
    caller_time_s: f64,
    mean_failure_ms: f64,
    mean_rejection_us: f64,
    /// Requests that reached the local server while it was down (`null` with `--target`).
    server_load_during_outage: Option<u64>,
    server_requests_total: Option<u64>,
    transitions: Vec<TransitionJson>,
    final_state: &'static str,
}

#[derive(Debug, Serialize)]
struct TransitionJson {
    at_ms: f64,
    from: &'static str,
    to: &'static str,
    reason: String,
}

impl From<&Transition> for TransitionJson {
    fn from(t: &Transition) -> Self {
        TransitionJson {
            at_ms: t.at_ms,
            from: t.from.as_str(),
            to: t.to.as_str(),
            reason: t.reason.clone(),
        }
    }
}

#[derive(Serialize)]
struct BreakerComparison {
    target: Option<String>,
    without: TrafficReport,
    with: TrafficReport,
    peak_rss_kib: u64,
}

#[derive(Debug)]
enum CallResult {
    Ok(Duration),
    Failed(Duration),
    Rejected(Duration),
}

#[tokio::main]
async fn main() -> Result<ExitCode> {
    let args = Args::parse();
    let python = args.python.then(|| python_peer::python_or_exit(&[]));
    let cancel = shared::shutdown::cancel_on_ctrl_c();
    if !args.json {
        let load = format!(
            "{:.0} requests/s for {:.1} s",
            args.rate,
            args.duration.as_secs_f64()
        );
        match &args.target {
            Some(url) => println!("{load} to {url}; timeout {} ms", args.timeout_ms),
            None => println!(
                "{load}; outage (90% of requests hang) from {:.1} s to {:.1} s; timeout {} ms",
                args.outage_start.as_secs_f64(),
                (args.outage_start + args.outage_len).as_secs_f64(),
                args.timeout_ms
            ),
        }
        println!("run 1: without a breaker");
    }
    let both = async {
        let without = run_traffic(&args, false).await?;
        if !args.json {
            println!("run 2: with a breaker (transitions as they happen)");
        }
        let with = run_traffic(&args, true).await?;
        anyhow::Ok((without, with))
    };
    let (without, with) = tokio::select! {
        r = both => r?,
        () = cancel.cancelled() => {
            eprintln!("interrupted: no figures");
            return Ok(ExitCode::from(130));
        }
    };
    let comparison = BreakerComparison {
        target: args.target.as_ref().map(|u| u.to_string()),
        without,
        with,
        peak_rss_kib: shared::report::peak_rss_kib(),
    };
    let python = match python {
        Some(py) => Some(python_replay(&py, &args).await?),
        None => None,
    };
    if args.json {
        let mut out = serde_json::to_value(&comparison).context("serializing the figures")?;
        if let Some(r) = &python {
            out["python"] = r.json();
        }
        print_json(&out);
    } else {
        print_comparison(&comparison);
        if let Some(r) = &python {
            r.print();
        }
    }
    if let Some(r) = &python {
        r.check()?;
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// --python: the same script of calls through both breakers, on a fake clock
// ---------------------------------------------------------------------------------------------

/// One step of a script: call `call` starts, or ends (`ok`, `fail`, `cancel`), at `at_ms`.
#[derive(Debug, Clone, Serialize)]
struct ScriptOp {
    at_ms: u64,
    op: &'static str,
    call: u64,
}

/// The live traffic in virtual time: a call every `1/rate`, lasting ~10 ms when the service is
/// up; during the outage 90% hang until the timeout (a failure), and 2% of callers give up
/// halfway (cancelled: the breaker must free a probe slot and count nothing).
fn script(args: &Args, seed: u64) -> Vec<ScriptOp> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let ms = |d: Duration| d.as_millis() as u64;
    let (period, duration) = (1000.0 / args.rate, ms(args.duration));
    let outage = ms(args.outage_start)..ms(args.outage_start + args.outage_len);
    let mut ops = Vec::new();
    for call in 0.. {
        let start = (call as f64 * period) as u64;
        if start >= duration {
            break;
        }
        let (end, outcome) = if outage.contains(&start) && rng.random_bool(0.9) {
            (start + args.timeout_ms, "fail")
        } else {
            (start + rng.random_range(5..15), "ok")
        };
        let (end, outcome) = if rng.random_bool(0.02) {
            ((start + end) / 2, "cancel")
        } else {
            (end, outcome)
        };
        ops.push(ScriptOp {
            at_ms: start,
            op: "start",
            call,
        });
        ops.push(ScriptOp {
            at_ms: end,
            op: outcome,
            call,
        });
    }
    // By time; at the same millisecond, ends before starts, then by call: one fixed order that
    // both languages replay as written.
    ops.sort_by_key(|o| (o.at_ms, o.op == "start", o.call));
    ops
}

/// What one breaker decided on the script.
#[derive(Debug, PartialEq, Eq)]
struct ScriptVerdict {
    /// One character per `start`: 1 = let through, 0 = rejected.
    granted: String,
    /// (ms since the start, from, to).
    transitions: Vec<(u64, String, String)>,
}

/// Replays the script through this example's breaker on a paused tokio clock (a runtime of
/// its own, on a thread of its own: the paused clock must not slow the real traffic).
fn rust_verdict(script: &[ScriptOp], cfg: BreakerConfig) -> Result<ScriptVerdict> {
    let run = move || -> Result<ScriptVerdict> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .context("a paused runtime for the replay")?;
        rt.block_on(async {
            let breaker = CircuitBreaker::new(cfg);
            let start = Instant::now();
            let mut permits = std::collections::HashMap::new();
            let mut granted = String::new();
            for op in script {
                let at = start + Duration::from_millis(op.at_ms);
                let now = Instant::now();
                if at > now {
                    tokio::time::advance(at - now).await;
                }
                match op.op {
                    "start" => match breaker.try_acquire() {
                        Some(p) => {
                            permits.insert(op.call, p);
                            granted.push('1');
                        }
                        None => granted.push('0'),
                    },
                    outcome => match (permits.remove(&op.call), outcome) {
                        (Some(p), "ok") => p.record(true),
                        (Some(p), "fail") => p.record(false),
                        (p, _) => drop(p), // cancelled (or rejected at its start)
                    },
                }
            }
            let transitions = breaker
                .transitions()
                .iter()
                .map(|t| {
                    let at = t.at_ms.round() as u64;
                    (at, t.from.as_str().to_string(), t.to.as_str().to_string())
                })
                .collect();
            Ok(ScriptVerdict {
                granted,
                transitions,
            })
        })
    };
    std::thread::scope(|s| s.spawn(run).join().expect("the replay does not panic"))
}

fn python_verdict(json: &serde_json::Value) -> Result<ScriptVerdict> {
    let granted = json["granted"]
        .as_str()
        .context("the recipe printed no \"granted\"")?
        .to_string();
    let transitions = json["transitions"]
        .as_array()
        .context("the recipe printed no \"transitions\"")?
        .iter()
        .map(|t| {
            let at = t[0].as_u64().context("a transition's time")?;
            let s = |i: usize| t[i].as_str().map(str::to_string).context("a state");
            Ok((at, s(1)?, s(2)?))
        })
        .collect::<Result<_>>()?;
    Ok(ScriptVerdict {
        granted,
        transitions,
    })
}

struct BreakerReplay {
    ops: usize,
    rust: ScriptVerdict,
    python: ScriptVerdict,
    recipe: serde_json::Value,
}

async fn python_replay(py: &shared::python::Python, args: &Args) -> Result<BreakerReplay> {
    let script = script(args, 42);
    let dir = tempfile::tempdir().context("a temporary folder for the script")?;
    let path = dir.path().join("script.json");
    std::fs::write(&path, serde_json::to_vec(&script)?)
        .with_context(|| format!("writing {}", path.display()))?;
    let cfg = BreakerConfig {
        threshold: args.threshold,
        window: Duration::from_millis(args.window_ms),
        cool_down: Duration::from_millis(args.cool_down_ms),
        probes: args.probes,
    };
    let rust = rust_verdict(&script, cfg)?;
    let a = vec![
        path.display().to_string(),
        format!("--threshold={}", args.threshold),
        format!("--window-ms={}", args.window_ms),
        format!("--cool-down-ms={}", args.cool_down_ms),
        format!("--probes={}", args.probes),
    ];
    let py = py.clone();
    let recipe =
        tokio::task::spawn_blocking(move || python_peer::run_recipe(&py, "circuit_breaker", &a))
            .await
            .context("the Python run panicked")??;
    Ok(BreakerReplay {
        ops: script.len(),
        python: python_verdict(&recipe)?,
        rust,
        recipe,
    })
}

impl BreakerReplay {
    fn json(&self) -> serde_json::Value {
        let mut v = self.recipe.clone();
        v["script_ops"] = serde_json::json!(self.ops);
        v["same_decisions"] = serde_json::json!(self.rust.granted == self.python.granted);
        v["same_transitions"] = serde_json::json!(self.rust.transitions == self.python.transitions);
        v["rust_transitions"] = serde_json::json!(self.rust.transitions.len());
        v
    }

    fn print(&self) {
        let row = |name: &str, v: &ScriptVerdict| {
            let through = v.granted.bytes().filter(|&b| b == b'1').count();
            let path: Vec<&str> = v.transitions.iter().map(|t| t.2.as_str()).collect();
            vec![
                name.to_string(),
                v.granted.len().to_string(),
                through.to_string(),
                (v.granted.len() - through).to_string(),
                v.transitions.len().to_string(),
                format!("closed -> {}", path.join(" -> ")),
            ]
        };
        println!();
        println!(
            "the same traffic as a script of {} steps on a fake clock, through both breakers \
             ({}):",
            self.ops,
            self.recipe["interpreter"].as_str().unwrap_or("python3")
        );
        print!(
            "{}",
            python_peer::table(
                &[
                    "breaker",
                    "calls",
                    "let through",
                    "rejected",
                    "transitions",
                    "states"
                ],
                &[
                    row("Rust (this lesson)", &self.rust),
                    row("Python (asyncio)", &self.python),
                ],
            )
        );
        println!(
            "same decisions, call by call: {}; same transitions at the same milliseconds: {}",
            if self.rust.granted == self.python.granted {
                "yes"
            } else {
                "NO"
            },
            if self.rust.transitions == self.python.transitions {
                "yes"
            } else {
                "NO"
            },
        );
    }

    fn check(&self) -> Result<()> {
        anyhow::ensure!(
            self.rust == self.python,
            "the breakers disagree on the same script: Rust {:?}, Python {:?}",
            self.rust.transitions,
            self.python.transitions
        );
        Ok(())
    }
}

/// Where the traffic goes: the local server (with its outage schedule) or `--target`.
struct Service {
    url: String,
    local: Option<Arc<TestServer>>,
}

impl Service {
    async fn start(args: &Args) -> Result<Service> {
        if let Some(url) = &args.target {
            return Ok(Service {
                url: url.to_string(),
                local: None,
            });
        }
        let server = TestServer::start(
            ServerConfig::default()
                .latency(Duration::from_millis(10))
                .file_size(1024),
        )
        .await
        .context("start the test server")?;
        Ok(Service {
            url: server.url("/files/item.json"),
            local: Some(Arc::new(server)),
        })
    }

    /// Plays the outage on the local server: breaks at `start + outage_start`, heals
    /// `outage_len` later, or when `done` fires (the traffic is over). Returns how many
    /// requests reached the server while it was down.
    fn schedule_outage(
        &self,
        args: &Args,
        start: Instant,
        done: oneshot::Receiver<()>,
    ) -> Option<tokio::task::JoinHandle<u64>> {
        let server = Arc::clone(self.local.as_ref()?);
        let (outage_start, outage_len) = (args.outage_start, args.outage_len);
        Some(tokio::spawn(async move {
            tokio::pin!(done);
            tokio::select! {
                () = tokio::time::sleep_until(start + outage_start) => {}
                _ = &mut done => return 0,
            }
            let before = server.stats().requests;
            server.set_faults(outage_faults());
            tokio::select! {
                () = tokio::time::sleep(outage_len) => {}
                _ = &mut done => {}
            }
            server.set_faults(Faults::NONE);
            server.stats().requests - before
        }))
    }

    fn stats(&self) -> Option<StatsSnapshot> {
        self.local.as_ref().map(|s| s.stats())
    }

    async fn shutdown(self) {
        if let Some(server) = self.local.and_then(|s| Arc::try_unwrap(s).ok()) {
            server.shutdown().await;
        }
    }
}

/// Steady arrivals for `--duration`, one task per request (like independent users), each call
/// through the breaker or not, at most `--max-in-flight` at once.
async fn run_traffic(args: &Args, with_breaker: bool) -> Result<TrafficReport> {
    let service = Service::start(args).await?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(args.timeout_ms))
        .build()
        .context("build the HTTP client")?;
    let json = args.json;
    let start = Instant::now();
    let breaker = Arc::new(CircuitBreaker::with_observer(
        BreakerConfig {
            threshold: args.threshold,
            window: Duration::from_millis(args.window_ms),
            cool_down: Duration::from_millis(args.cool_down_ms),
            probes: args.probes,
        },
        move |t| {
            if !json {
                println!(
                    "  [{:>7.1} ms] {:?} -> {:?}: {}",
                    t.at_ms, t.from, t.to, t.reason
                );
            }
        },
    ));
    let (done_tx, done_rx) = oneshot::channel();
    let outage = service.schedule_outage(args, start, done_rx);

    let mut r = TrafficReport {
        breaker: with_breaker,
        ..TrafficReport::default()
    };
    // The bulkhead: a permit per call in flight. Without it, a slow service and a high rate
    // pile up rate × timeout tasks, each holding a connection and its buffers.
    let slots = Arc::new(Semaphore::new(args.max_in_flight));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    while start.elapsed() < args.duration {
        ticker.tick().await;
        r.requests += 1;
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            r.shed += 1;
            continue;
        };
        peak.fetch_max(
            args.max_in_flight - slots.available_permits(),
            Ordering::Relaxed,
        );
        let (client, url, breaker) = (client.clone(), service.url.clone(), Arc::clone(&breaker));
        tasks.spawn(async move {
            let _slot = slot; // released when the call ends, however it ends
            let t = Instant::now();
            let call = async {
                let resp = client.get(&url).send().await?.error_for_status()?;
                resp.bytes().await
            };
            let result = if with_breaker {
                breaker.call(call).await
            } else {
                call.await.map_err(CallError::Failed)
            };
            match result {
                Ok(_) => CallResult::Ok(t.elapsed()),
                Err(CallError::Failed(_)) => CallResult::Failed(t.elapsed()),
                Err(CallError::Rejected) => CallResult::Rejected(t.elapsed()),
            }
        });
    }
    let (mut fail_time, mut reject_time) = (Duration::ZERO, Duration::ZERO);
    while let Some(result) = tasks.join_next().await {
        let d = match result.context("a request task panicked")? {
            CallResult::Ok(d) => {
                r.ok += 1;
                d
            }
            CallResult::Failed(d) => {
                r.failed += 1;
                fail_time += d;
                d
            }
            CallResult::Rejected(d) => {
                r.rejected += 1;
                reject_time += d;
                d
            }
        };
        r.caller_time_s += d.as_secs_f64();
    }
    r.wall_s = start.elapsed().as_secs_f64();
    let _ = done_tx.send(()); // the outage ends with the traffic, however long it was to last
    if let Some(outage) = outage {
        r.server_load_during_outage = Some(outage.await.context("the outage task panicked")?);
    }
    r.server_requests_total = service.stats().map(|s| s.requests);
    r.max_in_flight = peak.load(Ordering::Relaxed);
    r.mean_failure_ms = fail_time.as_secs_f64() * 1e3 / r.failed.max(1) as f64;
    r.mean_rejection_us = reject_time.as_secs_f64() * 1e6 / r.rejected.max(1) as f64;
    r.final_state = breaker.state().as_str();
    r.transitions = breaker
        .transitions()
        .iter()
        .map(TransitionJson::from)
        .collect();
    drop(breaker);
    service.shutdown().await;
    Ok(r)
}

fn print_comparison(c: &BreakerComparison) {
    println!(
        "{:<16} {:>8} {:>6} {:>7} {:>9} {:>6} {:>12} {:>14} {:>15} {:>12}",
        "",
        "requests",
        "ok",
        "failed",
        "rejected",
        "shed",
        "caller time",
        "mean failure",
        "mean rejection",
        "outage load"
    );
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |n| n.to_string());
    for r in [&c.without, &c.with] {
        println!(
            "{:<16} {:>8} {:>6} {:>7} {:>9} {:>6} {:>12} {:>14} {:>15} {:>12}",
            if r.breaker {
                "with breaker"
            } else {
                "without breaker"
            },
            r.requests,
            r.ok,
            r.failed,
            r.rejected,
            r.shed,
            fmt_duration(Duration::from_secs_f64(r.caller_time_s)),
            format!("{:.0} ms", r.mean_failure_ms),
            if r.rejected > 0 {
                format!("{:.0} µs", r.mean_rejection_us)
            } else {
                "-".into()
            },
            opt(r.server_load_during_outage),
        );
    }
    let (a, b) = (&c.without, &c.with);
    println!(
        "the breaker cut the requests reaching the failing service from {} to {} and the callers' total waiting time from {} to {}",
        opt(a.server_load_during_outage.or(Some(a.failed))),
        opt(b.server_load_during_outage.or(Some(b.failed))),
        fmt_duration(Duration::from_secs_f64(a.caller_time_s)),
        fmt_duration(Duration::from_secs_f64(b.caller_time_s)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_numeric_flag_has_bounds() {
        let parse = |extra: &[&str]| Args::try_parse_from([&["circuit-breaker"], extra].concat());
        for bad in [
            &["--rate", "0"][..],
            &["--rate", "1e9"],
            &["--rate", "NaN"],
            &["--duration=-1"],
            &["--duration", "NaN"],
            &["--outage-len=-1"],
            &["--max-in-flight", "0"],
            &["--target", "not a url"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        let ok = parse(&["--rate", "5000", "--target", "http://127.0.0.1:9/x"]).unwrap();
        assert_eq!(ok.target.unwrap().port(), Some(9));
    }
}
