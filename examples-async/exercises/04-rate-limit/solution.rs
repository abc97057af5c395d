// Reference solution of async/04 (see exercise.rs for the statement).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio::time::{Duration, Instant};

/// One client's bucket.
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A token bucket per client.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    /// A std `Mutex`: every critical section is a few arithmetic operations, never an `.await`.
    buckets: Mutex<HashMap<u64, Bucket>>,
}

impl RateLimiter {
    /// `rate` lines per second on average for each client, bursts of up to `burst`.
    pub fn new(rate: u32, burst: u32) -> Self {
        RateLimiter {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Returns when `client` may send one more line.
    pub async fn acquire(&self, client: u64) {
        loop {
            let wait = {
                let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                let bucket = buckets.entry(client).or_insert(Bucket {
                    tokens: self.burst,
                    last: now,
                });
                let elapsed = now.duration_since(bucket.last).as_secs_f64();
                bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
                bucket.last = now;
                if bucket.tokens >= 1.0 {
                    bucket.tokens -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate)
            }; // the lock is released here, before the sleep
            tokio::time::sleep(wait).await;
        }
    }
}
