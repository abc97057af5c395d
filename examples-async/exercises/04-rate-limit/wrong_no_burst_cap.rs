// A plausible wrong solution of async/04: the bucket refills but is never capped at `burst`. A
// flooder is limited as long as it floods; but a client quiet for a minute has saved up
// `60 × rate` tokens and may then send them all at once: the burst the limit was meant to stop.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio::time::{Duration, Instant};

pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<u64, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(rate: u32, burst: u32) -> Self {
        RateLimiter {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub async fn acquire(&self, client: u64) {
        loop {
            let wait = {
                let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                let b = buckets.entry(client).or_insert((self.burst, now));
                b.0 += now.duration_since(b.1).as_secs_f64() * self.rate;
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
