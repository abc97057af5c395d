// A plausible wrong solution of async/04: the buckets sit behind a `tokio::sync::Mutex`, so
// holding the guard across `.await` compiles, and the code reads simply: lock, wait for a
// token, take it. But while one flooder sleeps for its next token it holds the lock, and every
// other client, however polite, queues behind it.

use std::collections::HashMap;

use tokio::time::{Duration, Instant};

pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: tokio::sync::Mutex<HashMap<u64, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(rate: u32, burst: u32) -> Self {
        RateLimiter {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    pub async fn acquire(&self, client: u64) {
        let mut buckets = self.buckets.lock().await;
        let now = Instant::now();
        let b = buckets.entry(client).or_insert((self.burst, now));
        b.0 = (b.0 + now.duration_since(b.1).as_secs_f64() * self.rate).min(self.burst);
        b.1 = now;
        if b.0 < 1.0 {
            tokio::time::sleep(Duration::from_secs_f64((1.0 - b.0) / self.rate)).await;
            b.0 = 1.0;
            b.1 = Instant::now();
        }
        b.0 -= 1.0;
    }
}
