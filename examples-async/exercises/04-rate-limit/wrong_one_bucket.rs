// A plausible wrong solution of async/04: one bucket for the whole server. The rate is right
// for the server, and a test with one client passes; but a flooder empties the bucket and every
// other client now waits for tokens the flooder keeps taking.

use std::sync::{Mutex, PoisonError};

use tokio::time::{Duration, Instant};

pub struct RateLimiter {
    rate: f64,
    burst: f64,
    bucket: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub fn new(rate: u32, burst: u32) -> Self {
        RateLimiter {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            bucket: Mutex::new((f64::from(burst.max(1)), Instant::now())),
        }
    }

    pub async fn acquire(&self, _client: u64) {
        loop {
            let wait = {
                let mut b = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                b.0 = (b.0 + now.duration_since(b.1).as_secs_f64() * self.rate).min(self.burst);
                b.1 = now;
                if b.0 >= 1.0 {
                    b.0 -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - b.0) / self.rate)
            };
            tokio::time::sleep(wait).await;
        }
    }
}
