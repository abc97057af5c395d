//! Rate limiter: an async token bucket shared by many tasks; measured rate vs configured,
//! waiting and rejecting modes.
//!
//! Course section **8.4 Patterns de concurrence** (and 8.3 synchronisation: a semaphore limits
//! how many at once, a rate limiter limits how many per second). Typical uses: stay under an
//! API's quota (wait), or protect a server from a client that sends too much (reject with 429).
//!
//! Crates: `tokio = { version = "1.54", features = ["time", "rt", "macros", "test-util"] }`
//! (`macros` and `test-util` are for the paused-clock tests)
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
//!   token. `governor` (GCRA), the crate production code uses, chooses the other way: its
//!   `until_ready` loops `check()` (which takes nothing when it refuses) and a sleep until the
//!   earliest time a token could be there. A caller that gives up has spent nothing, but there
//!   is no queue: after each sleep the waiters race, and any of them may win
//!   (`until_ready_with_jitter` spreads them out).
//! - **Rejecting mode**: `try_acquire` never waits: `false` means "answer 429 Too Many Requests".
//! - **One bucket, many tasks**: clients share it through an `Arc`; the total rate is the
//!   bucket's, whatever the number of clients.
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
//! 5. Checked: this bucket from scratch, its waiters served in order and woken once, its rate
//!    exact over a long run (`cargo run -p shared --bin exercises -- check patterns/07`).

// === Lesson: copy from here ===

/// The token bucket. In a real project: `rate_limit.rs`.
mod token_bucket {
    use std::sync::{Mutex, MutexGuard};
    use std::time::Duration;
    use tokio::time::Instant;

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
        /// `rate` tokens per second (finite, > 0), at most `burst` (≥ 1) stored. Starts full.
        pub fn new(rate: f64, burst: u32) -> Self {
            assert!(
                rate.is_finite() && rate > 0.0 && burst >= 1,
                "rate must be > 0 and burst >= 1"
            );
            TokenBucket {
                rate,
                burst: f64::from(burst),
                bucket: Mutex::new(Bucket {
                    tokens: f64::from(burst),
                    last: Instant::now(),
                }),
            }
        }

        /// Locks and adds the tokens that dripped in since the last call.
        fn refill(&self) -> MutexGuard<'_, Bucket> {
            let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let dripped = now.duration_since(b.last).as_secs_f64() * self.rate;
            b.tokens = (b.tokens + dripped).min(self.burst);
            b.last = now;
            b
        }

        /// Takes a token if one is available now; never waits.
        pub fn try_acquire(&self) -> bool {
            let mut b = self.refill();
            if b.tokens >= 1.0 {
                b.tokens -= 1.0;
                true
            } else {
                false
            }
        }

        /// Takes a token, waiting until it is available.
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
            let all = start.elapsed().as_secs_f64();
            assert!((all - 1.1).abs() < 1e-3, "{all}");
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
    }
}

/// Many client tasks sharing one bucket: waiting for their turn, or turned away (429).
mod clients {
    use super::token_bucket::TokenBucket;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::time::{Instant, timeout_at};

    /// Every client calls `acquire` in a loop for `duration`; returns the calls made in each
    /// `window` (counts, not timestamps: memory does not grow with the rate).
    pub async fn waiting_clients(
        limiter: Arc<TokenBucket>,
        clients: u32,
        duration: Duration,
        window: Duration,
    ) -> Vec<u64> {
        let windows = (duration.as_nanos() / window.as_nanos()).max(1) as usize;
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..clients {
            let limiter = Arc::clone(&limiter);
            tasks.spawn(async move {
                let mut timeline = vec![0u64; windows];
                // `timeout_at`: at a low rate, the next token may be due long after the end.
                while timeout_at(start + duration, limiter.acquire())
                    .await
                    .is_ok()
                {
                    let t = start.elapsed();
                    if t >= duration {
                        break;
                    }
                    // "The call": here it would be an HTTP request.
                    let i = (t.as_nanos() / window.as_nanos()) as usize;
                    if let Some(w) = timeline.get_mut(i) {
                        *w += 1;
                    }
                }
                timeline
            });
        }
        let mut total = vec![0u64; windows];
        for timeline in tasks.join_all().await {
            total.iter_mut().zip(timeline).for_each(|(t, n)| *t += n);
        }
        total
    }

    /// Clients try `attempts_per_s` calls in total, never waiting; returns (accepted, rejected).
    pub async fn rejecting_clients(
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
                while timeout_at(start + duration, tick.tick()).await.is_ok() {
                    if limiter.try_acquire() {
                        ok += 1;
                    } else {
                        rejected += 1; // 429 Too Many Requests
                    }
                }
                (ok, rejected)
            });
        }
        let all = tasks.join_all().await;
        all.into_iter()
            .fold((0, 0), |(a, r), (x, y)| (a + x, r + y))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[tokio::test(start_paused = true)]
        async fn concurrent_clients_get_exactly_the_configured_rate() {
            let bucket = Arc::new(TokenBucket::new(20.0, 5));
            let second = Duration::from_secs(1);
            let timeline = waiting_clients(bucket, 7, Duration::from_secs(10), second).await;
            assert_eq!(timeline.len(), 10);
            // burst + rate × T, minus at most one call that lands exactly on the deadline.
            let n = timeline.iter().sum::<u64>() as i64;
            assert!((n - 205).abs() <= 1, "{n} calls");
            // Window 0: the burst of 5 at once, then one call every 50 ms (19 before 1 s).
            assert_eq!(timeline[0], 5 + 19);
            assert!(
                timeline[1..].iter().all(|&n| (19..=21).contains(&n)),
                "{timeline:?}"
            );
        }

        #[tokio::test(start_paused = true)]
        async fn rejecting_mode_accepts_about_the_rate() {
            let bucket = Arc::new(TokenBucket::new(10.0, 1));
            let (ok, rejected) = rejecting_clients(bucket, 3, 30.0, Duration::from_secs(10)).await;
            assert!((95..=106).contains(&ok), "{ok} accepted");
            assert!(rejected > 150, "{rejected} rejected");
        }
    }
}

// === Harness: not part of the lesson ===

use anyhow::{Result, bail};
use clap::{CommandFactory, Parser};
use clients::{rejecting_clients, waiting_clients};
use serde::Serialize;
use shared::cli;
use shared::report::print_json;
use std::sync::Arc;
use std::time::Duration;
use token_bucket::TokenBucket;

/// A token-bucket rate limiter shared by concurrent clients; measured against its configuration.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Allowed calls per second.
    #[arg(long, default_value_t = 50.0, value_parser = cli::f64_in(0.01, 100_000.0))]
    rate: f64,
    /// Bucket size: calls allowed at once after a quiet period.
    #[arg(long, default_value_t = 10, value_parser = cli::u32_in(1, 1_000_000))]
    burst: u32,
    /// Concurrent client tasks sharing the limiter.
    #[arg(long, default_value_t = 8, value_parser = cli::u32_in(1, 10_000))]
    clients: u32,
    /// Length of each mode's run, in seconds.
    #[arg(long, default_value = "2", value_parser = cli::seconds_in(0.01, 3600.0))]
    duration: Duration,
    /// Width of a timeline window, in milliseconds.
    #[arg(long, default_value_t = 250, value_parser = cli::u64_in(1, 3_600_000))]
    window_ms: u64,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

/// The most timeline windows (one printed line each).
const MAX_WINDOWS: u128 = 1000;

#[derive(Serialize)]
struct RateReport {
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

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let window = Duration::from_millis(args.window_ms);
    if args.duration.as_nanos() / window.as_nanos() > MAX_WINDOWS {
        Args::command()
            .error(
                clap::error::ErrorKind::ValueValidation,
                format!("--duration / --window-ms gives more than {MAX_WINDOWS} windows: widen the window"),
            )
            .exit();
    }
    let (rate, burst, duration) = (args.rate, args.burst, args.duration);
    let bucket = || Arc::new(TokenBucket::new(rate, burst));
    let timeline = waiting_clients(bucket(), args.clients, duration, window).await;
    let calls: u64 = timeline.iter().sum();
    let max_allowed = f64::from(burst) + rate * duration.as_secs_f64();
    let measured_rate = (calls as f64 - f64::from(burst)).max(0.0) / duration.as_secs_f64();
    let (accepted, rejected) =
        rejecting_clients(bucket(), args.clients, 3.0 * rate, duration).await;
    let r = RateReport {
        rate,
        burst,
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
        print_json(&r);
    } else {
        print_report(&r, args.window_ms);
    }
    if r.calls as f64 > r.max_allowed + 1.0 {
        bail!("the limiter let through more than it allows: this is a bug");
    }
    Ok(())
}

fn print_report(r: &RateReport, window_ms: u64) {
    println!(
        "waiting mode: {} clients share a bucket of {} tokens refilled at {}/s, for {:.1} s",
        r.clients, r.burst, r.rate, r.duration_s
    );
    let per_window = r.rate * window_ms as f64 / 1000.0;
    // Bars scaled to at most 60 characters, whatever the rate.
    let widest = r.timeline.iter().copied().max().unwrap_or(0).max(1);
    for (i, n) in r.timeline.iter().enumerate() {
        let bar = (n * 60).div_ceil(widest.max(60)).min(60) as usize;
        println!(
            "  {:>6} ms {:>4} calls {}",
            i as u64 * window_ms,
            n,
            "#".repeat(bar)
        );
    }
    println!(
        "  {} calls (at most burst + rate x T = {:.0}); after the burst: {:.1} calls/s measured vs {} configured ({:.0} per window)",
        r.calls, r.max_allowed, r.measured_rate, r.rate, per_window
    );
    println!(
        "rejecting mode: clients try {:.0}/s in total: {} accepted ({:.1}/s after the burst), {} rejected with 429",
        3.0 * r.rate,
        r.accepted,
        (r.accepted as f64 - f64::from(r.burst)).max(0.0) / r.duration_s,
        r.rejected
    );
}
