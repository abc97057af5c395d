// A plausible wrong solution of patterns/07: tokens are whole things, so they are counted in
// an integer, and a refill adds the whole tokens that dripped in since the last one. But `last`
// moves to now at every call, so the fraction that had dripped in is thrown away each time: with
// callers coming more often than one token's time, most refills add nothing, and the rate
// collapses. With one slow caller, it looks right.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

pub struct TokenBucket {
    rate: f64,
    burst: i64,
    bucket: Mutex<Bucket>,
}

struct Bucket {
    /// Whole tokens; negative: promised to waiters.
    tokens: i64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: u32) -> Self {
        assert!(
            rate.is_finite() && rate > 0.0 && burst >= 1,
            "rate must be > 0 and burst >= 1"
        );
        TokenBucket {
            rate,
            burst: i64::from(burst),
            bucket: Mutex::new(Bucket {
                tokens: i64::from(burst),
                last: Instant::now(),
            }),
        }
    }

    fn refill(&self) -> MutexGuard<'_, Bucket> {
        let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let dripped = (now.duration_since(bucket.last).as_secs_f64() * self.rate) as i64;
        bucket.tokens = (bucket.tokens + dripped).min(self.burst);
        bucket.last = now; // (wrong: the fraction of a token that dripped in is lost)
        bucket
    }

    pub fn try_acquire(&self) -> bool {
        let mut bucket = self.refill();
        if bucket.tokens >= 1 {
            bucket.tokens -= 1;
            true
        } else {
            false
        }
    }

    pub async fn acquire(&self) {
        let wait = {
            let mut bucket = self.refill();
            bucket.tokens -= 1;
            if bucket.tokens >= 0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-bucket.tokens as f64 / self.rate)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}
