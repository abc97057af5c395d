// Reference solution of patterns/07 (see exercise.rs for the statement).

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
        let now = Instant::now();
        // Fractions of a token are kept: rounding them away at every call would lose a part of
        // the rate that grows with the number of calls.
        let dripped = now.duration_since(bucket.last).as_secs_f64() * self.rate;
        bucket.tokens = (bucket.tokens + dripped).min(self.burst);
        bucket.last = now;
        bucket
    }

    /// Takes a token if one is there now; never waits.
    pub fn try_acquire(&self) -> bool {
        let mut bucket = self.refill();
        // A negative balance is owed to the waiters: nothing to take.
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Takes a token, waiting until it is due. Callers are served in the order they called.
    pub async fn acquire(&self) {
        let wait = {
            let mut bucket = self.refill();
            // Take it now, due or not: the callers before us have taken theirs already, so ours
            // is due after theirs (FIFO), and nobody after us can take it.
            bucket.tokens -= 1.0;
            if bucket.tokens >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-bucket.tokens / self.rate)
            }
        }; // The lock is released here, before any `.await`.
        if !wait.is_zero() {
            tokio::time::sleep(wait).await; // Once: when we wake, the token is ours.
        }
    }
}
