//! Rate limiter: an async token bucket; measured rate vs configured, waiting and rejecting modes.
//!
//! Course section **8.4 Patterns de concurrence** (and 8.3 synchronisation: a semaphore limits
//! how many at once, a rate limiter limits how many per second). Typical uses: stay under an
//! API's quota (wait), or protect a server from a client that sends too much (reject with 429).
//!
//! # Concepts
//! - **Token bucket**: tokens drip in at `rate` per second up to `burst`; each call takes one.
//!   A full bucket allows a burst of `burst` calls at once, after which calls are spaced
//!   `1/rate` apart. Over any period `T`, at most `burst + rate × T` calls pass.
//! - **No background task**: the bucket is refilled lazily from the time elapsed since the last
//!   call (`tokio::time::Instant`, so tests can pause the clock).
//! - **Waiting mode without a lock across `.await`**: `acquire` takes its token *in advance*
//!   (the balance may go negative: a debt), computes when that token will have dripped in, and
//!   sleeps until then outside the lock. Callers are served in the order they asked (FIFO).
//!   Trade-off: a caller that gives up while sleeping (its future dropped) has still spent its
//!   token. `governor`, the crate production code uses, makes the same choice (GCRA).
//! - **Rejecting mode**: `try_acquire` never waits: `false` means "answer 429 Too Many Requests".
//!
//! # Run
//! ```text
//! cargo run -p examples-patterns --bin rate-limiter
//! cargo run -p examples-patterns --bin rate-limiter -- --rate 200 --burst 50 --clients 32
//! cargo run -p examples-patterns --bin rate-limiter -- --burst 1       # perfectly smooth
//! cargo run -p examples-patterns --bin rate-limiter -- --json
//! ```
//!
//! # What to observe
//! - The timeline: the first window holds the burst, then every window holds `rate × window`
//!   calls, whatever the number of clients. The measured rate matches the configured one.
//! - In rejecting mode, clients asking at 3× the rate get about one call in three accepted.
//!
//! # Exercises
//! 1. Give each client its own bucket. What is the total rate now, and when is that the intent
//!    (per-user quotas)?
//! 2. Make `acquire` cancellation-safe: return the token if the sleep is dropped (a guard).
//!    What does that cost in fairness?
//! 3. Add `acquire_n(n)` for weighted calls (a big request costs more tokens).
//! 4. Replace the `Mutex<Bucket>` with a single `AtomicU64` holding the "theoretical arrival
//!    time" (GCRA) and a compare-exchange loop.

use anyhow::{Result, bail};
use clap::Parser;
use serde::Serialize;
use shared::report::print_json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------------
// The token bucket (copy this part).
// ---------------------------------------------------------------------------------------------

pub struct TokenBucket {
    rate: f64,
    burst: f64,
    bucket: Mutex<Bucket>,
}

struct Bucket {
    /// Tokens available now; negative = tokens already promised to waiting callers.
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// `rate` tokens per second, at most `burst` stored. Starts full.
    pub fn new(rate: f64, burst: u32) -> Self {
        assert!(rate > 0.0 && burst >= 1, "rate must be > 0 and burst >= 1");
        TokenBucket {
            rate,
            burst: f64::from(burst),
            bucket: Mutex::new(Bucket {
                tokens: f64::from(burst),
                last: Instant::now(),
            }),
        }
    }

    /// Lock and add the tokens that dripped in since the last call.
    fn refill(&self) -> std::sync::MutexGuard<'_, Bucket> {
        let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let dripped = now.duration_since(b.last).as_secs_f64() * self.rate;
        b.tokens = (b.tokens + dripped).min(self.burst);
        b.last = now;
        b
    }

    /// Take a token if one is available now; never waits.
    pub fn try_acquire(&self) -> bool {
        let mut b = self.refill();
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Take a token, waiting until it is available.
    pub async fn acquire(&self) {
        let wait = {
            let mut b = self.refill();
            b.tokens -= 1.0; // reserve now, pay later: FIFO, and no lock held while sleeping
            if b.tokens >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-b.tokens / self.rate)
            }
        }; // the lock is released here, before any .await
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The demo.
// ---------------------------------------------------------------------------------------------

/// A token-bucket rate limiter shared by concurrent clients; measured against its configuration.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Allowed calls per second.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Bucket size: calls allowed at once after a quiet period.
    #[arg(long, default_value_t = 10)]
    burst: u32,
    /// Concurrent client tasks sharing the limiter.
    #[arg(long, default_value_t = 8)]
    clients: u32,
    /// Length of each mode's run, in seconds.
    #[arg(long, default_value_t = 2.0)]
    duration: f64,
    /// Width of a timeline window, in milliseconds.
    #[arg(long, default_value_t = 250)]
    window_ms: u64,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Summary {
    rate: f64,
    burst: u32,
    clients: u32,
    duration_s: f64,
    /// Waiting mode: calls that went through, and the most allowed (`burst + rate × T`).
    calls: u64,
    max_allowed: f64,
    /// Rate after the initial burst, measured.
    measured_rate: f64,
    timeline: Vec<u64>,
    /// Rejecting mode: clients try at 3× the rate.
    accepted: u64,
    rejected: u64,
}

/// Every client calls `acquire` in a loop until `duration`; returns the call times.
async fn waiting_mode(
    limiter: Arc<TokenBucket>,
    clients: u32,
    duration: Duration,
) -> Vec<Duration> {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let limiter = Arc::clone(&limiter);
        tasks.spawn(async move {
            let mut times = Vec::new();
            loop {
                limiter.acquire().await;
                let t = start.elapsed();
                if t >= duration {
                    break times;
                }
                times.push(t); // "the call": here it would be an HTTP request
            }
        });
    }
    let mut all: Vec<Duration> = tasks.join_all().await.into_iter().flatten().collect();
    all.sort();
    all
}

/// Clients try `attempts_per_s` in total, never waiting; returns (accepted, rejected).
async fn rejecting_mode(
    limiter: Arc<TokenBucket>,
    clients: u32,
    attempts_per_s: f64,
    duration: Duration,
) -> (u64, u64) {
    let mut tasks = tokio::task::JoinSet::new();
    let period = Duration::from_secs_f64(f64::from(clients) / attempts_per_s);
    for _ in 0..clients {
        let limiter = Arc::clone(&limiter);
        tasks.spawn(async move {
            let start = Instant::now();
            let (mut ok, mut rejected) = (0, 0);
            let mut tick = tokio::time::interval(period);
            while start.elapsed() < duration {
                tick.tick().await;
                if limiter.try_acquire() {
                    ok += 1
                } else {
                    rejected += 1
                } // 429
            }
            (ok, rejected)
        });
    }
    tasks
        .join_all()
        .await
        .into_iter()
        .fold((0, 0), |(a, r), (x, y)| (a + x, r + y))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.rate <= 0.0 || args.burst == 0 || args.clients == 0 || args.window_ms == 0 {
        bail!("--rate, --burst, --clients and --window-ms must be positive");
    }
    let duration = Duration::from_secs_f64(args.duration);
    let times = waiting_mode(
        Arc::new(TokenBucket::new(args.rate, args.burst)),
        args.clients,
        duration,
    )
    .await;
    let window = Duration::from_millis(args.window_ms);
    let windows = (duration.as_nanos() / window.as_nanos()).max(1) as usize;
    let mut timeline = vec![0u64; windows];
    for t in &times {
        let i = (t.as_nanos() / window.as_nanos()) as usize;
        if let Some(w) = timeline.get_mut(i) {
            *w += 1;
        }
    }
    let calls = times.len() as u64;
    let max_allowed = f64::from(args.burst) + args.rate * duration.as_secs_f64();
    let measured_rate = (calls as f64 - f64::from(args.burst)).max(0.0) / duration.as_secs_f64();

    let (accepted, rejected) = rejecting_mode(
        Arc::new(TokenBucket::new(args.rate, args.burst)),
        args.clients,
        3.0 * args.rate,
        duration,
    )
    .await;

    let s = Summary {
        rate: args.rate,
        burst: args.burst,
        clients: args.clients,
        duration_s: duration.as_secs_f64(),
        calls,
        max_allowed,
        measured_rate,
        timeline,
        accepted,
        rejected,
    };
    if args.json {
        print_json(&s);
    } else {
        println!(
            "waiting mode: {} clients share a bucket of {} tokens refilled at {}/s, for {:.1} s",
            s.clients, s.burst, s.rate, s.duration_s
        );
        let per_window = s.rate * window.as_secs_f64();
        for (i, n) in s.timeline.iter().enumerate() {
            println!(
                "  {:>6} ms {:>4} calls {}",
                i as u64 * args.window_ms,
                n,
                "#".repeat(*n as usize)
            );
        }
        println!(
            "  {} calls (at most burst + rate x T = {:.0}); after the burst: {:.1} calls/s measured vs {} configured ({:.0} per window)",
            s.calls, s.max_allowed, s.measured_rate, s.rate, per_window
        );
        println!(
            "rejecting mode: clients try {:.0}/s in total: {} accepted ({:.1}/s after the burst), {} rejected with 429",
            3.0 * s.rate,
            s.accepted,
            (s.accepted as f64 - f64::from(s.burst)).max(0.0) / s.duration_s,
            s.rejected
        );
    }
    if s.calls as f64 > s.max_allowed + 1.0 {
        bail!("the limiter let through more than it allows: this is a bug");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_is_immediate_then_calls_are_spaced() {
        let b = TokenBucket::new(10.0, 5);
        let start = Instant::now();
        for _ in 0..5 {
            b.acquire().await;
        }
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "the burst needs no waiting"
        );
        b.acquire().await;
        let first = start.elapsed();
        assert!((first.as_secs_f64() - 0.1).abs() < 1e-3, "{first:?}");
        for _ in 0..10 {
            b.acquire().await;
        }
        assert!(
            (start.elapsed().as_secs_f64() - 1.1).abs() < 1e-3,
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn try_acquire_rejects_then_refills() {
        let b = TokenBucket::new(2.0, 2);
        assert!(b.try_acquire() && b.try_acquire());
        assert!(!b.try_acquire(), "bucket empty");
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(b.try_acquire(), "one token dripped in");
        assert!(!b.try_acquire());
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(
            b.try_acquire() && b.try_acquire() && !b.try_acquire(),
            "capped at burst"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_clients_get_exactly_the_configured_rate() {
        let calls = waiting_mode(
            Arc::new(TokenBucket::new(20.0, 5)),
            7,
            Duration::from_secs(10),
        )
        .await;
        // burst + rate × T, minus at most one call that lands exactly on the deadline.
        let n = calls.len() as i64;
        assert!((n - 205).abs() <= 1, "{n} calls");
    }

    #[tokio::test(start_paused = true)]
    async fn rejecting_mode_accepts_about_the_rate() {
        let (ok, rejected) = rejecting_mode(
            Arc::new(TokenBucket::new(10.0, 1)),
            3,
            30.0,
            Duration::from_secs(10),
        )
        .await;
        assert!((95..=106).contains(&ok), "{ok} accepted");
        assert!(rejected > 150, "{rejected} rejected");
    }
}
