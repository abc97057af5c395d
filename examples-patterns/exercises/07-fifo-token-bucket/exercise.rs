// Exercise patterns/07 — A token bucket that serves its waiters in order (reserve, then sleep)
//
// Concept: a token bucket lets `rate` calls per second through on average, and up to `burst`
// at once after a quiet spell: tokens drip in at `rate` per second, at most `burst` are kept,
// each call takes one. The hard part is the waiting. The obvious loop ("no token? sleep until
// the next one, then try again") has no queue: every waiter sleeps until the same next token,
// they all wake, one wins, the others sleep again (a thundering herd), and a caller who just
// arrived can take the token before those who have waited for seconds. The fix: take your token
// *now*, even one that has not dripped in yet (the balance goes negative: a debt owed to the
// waiters in line), compute when it will have dripped in, and sleep until then, once. Waiters are
// then served in the order they came, each woken once. Tokens are fractions: the time since the
// last refill times `rate`, kept exactly, or the rate comes out low. See examples-patterns'
// rate-limiter.
//
// Goal: write `refill` (lock, add `rate × elapsed` since `last`, keep at most `burst`, move
// `last` to now), `try_acquire` (take a token if one is there now, never wait, never take one
// promised to a waiter) and `acquire` (take a token in advance, sleep until it is due).
//
// Hint: `acquire` holds the lock only to compute its wait: `tokens -= 1.0`, then a negative
// balance means a wait of `-tokens / rate` seconds. Drop the guard before `.await`ing the
// `tokio::time::sleep`. Use `tokio::time::Instant`: the checks run on tokio's paused clock.
//
// Checked by: seeded runs on tokio's paused clock (exact virtual times). 8 runs of 2 to 6
// clients calling without pause for 20 s after 2 s of quiet, and one trying every 10 ms, rate 15
// to 45 per second, burst 1 to 8: never more than `burst + rate × t` calls by time t, at least
// 97% of that by the end. 12 runs of 30 callers arriving at seeded times (some exactly when a
// token drips in): served in arrival order, each `acquire` polled at most 3 times (woken once).
// While callers wait, `try_acquire` refuses. Every wrong solution is caught on every run (20/20).
// Run: cargo run -p shared --bin exercises -- check patterns/07

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

pub struct TokenBucket {
    /// Tokens per second.
    rate: f64,
    /// Most tokens kept.
    burst: f64,
    bucket: Mutex<Bucket>,
}

struct Bucket {
    /// Tokens available now; negative: tokens already promised to waiting callers.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    last: Instant,
}

impl TokenBucket {
    /// `rate` tokens per second (finite, > 0), at most `burst` (≥ 1) kept. Starts full.
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

    /// Locks the bucket and adds the tokens that dripped in since `last`.
    fn refill(&self) -> MutexGuard<'_, Bucket> {
        let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        todo!("add rate × the time since `last` (at most `burst` in all), and move `last` to now")
    }

    /// Takes a token if one is there now; never waits.
    pub fn try_acquire(&self) -> bool {
        todo!("refill, then take a whole token if there is one")
    }

    /// Takes a token, waiting until it is due. Callers are served in the order they called.
    pub async fn acquire(&self) {
        todo!("take the token now (a debt if need be), then sleep until it is due, lock released")
    }
}
