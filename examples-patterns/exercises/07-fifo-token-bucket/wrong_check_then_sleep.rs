// A plausible wrong solution of patterns/07: try for a token; if none, sleep until the next one
// drips in, and try again (what `governor`'s `until_ready` does). Nothing is owed, so a
// caller that gives up has spent nothing, and the rate is right. But there is no queue: every
// waiter sleeps until the same next token, all of them wake, one wins, the others sleep again
// (a thundering herd: a waiter behind 20 others is woken 20 times), and a caller that arrives
// just as a token drips in can take it from under those who have waited longest.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

pub struct TokenBucket {
    rate: f64,
    burst: f64,
    bucket: Mutex<Bucket>,
}

struct Bucket {
    tokens: f64,
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
            burst: f64::from(burst),
            bucket: Mutex::new(Bucket {
                tokens: f64::from(burst),
                last: Instant::now(),
            }),
        }
    }

    fn refill(&self) -> MutexGuard<'_, Bucket> {
        let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let dripped = now.duration_since(bucket.last).as_secs_f64() * self.rate;
        bucket.tokens = (bucket.tokens + dripped).min(self.burst);
        bucket.last = now;
        bucket
    }

    pub fn try_acquire(&self) -> bool {
        let mut bucket = self.refill();
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut bucket = self.refill();
                if bucket.tokens >= 1.0 {
                    bucket.tokens -= 1.0;
                    return;
                }
                // Until the next whole token, and at least the timer's resolution.
                Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate)
                    .max(Duration::from_millis(1))
            };
            tokio::time::sleep(wait).await; // (wrong: then race everyone else for it)
        }
    }
}
