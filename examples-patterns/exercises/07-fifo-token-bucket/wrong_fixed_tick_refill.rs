// A plausible wrong solution of patterns/07: a tokio `Semaphore` holds the tokens (its waiters
// are served in order), and a background task adds `rate × 0.1` permits every 100 ms, up to
// `burst`. Order and burst are right. But permits are whole: at 25 per second, 2.5 per tick
// become 2, and the half is lost at every tick: the limiter lets 20 calls a second through, not
// 25 (and below 10 per second, none at all). Over a short test nobody notices.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

pub struct TokenBucket {
    permits: Arc<Semaphore>,
    refiller: JoinHandle<()>,
}

impl TokenBucket {
    /// Must be called inside a tokio runtime (it starts the refilling task).
    pub fn new(rate: f64, burst: u32) -> Self {
        assert!(
            rate.is_finite() && rate > 0.0 && burst >= 1,
            "rate must be > 0 and burst >= 1"
        );
        let burst = burst as usize;
        let permits = Arc::new(Semaphore::new(burst));
        let tick = Duration::from_millis(100);
        let per_tick = (rate * tick.as_secs_f64()) as usize; // (wrong: the fraction is dropped)
        let refiller = tokio::spawn({
            let permits = Arc::clone(&permits);
            async move {
                let mut ticks = tokio::time::interval(tick);
                ticks.tick().await; // The first tick is immediate: the bucket starts full.
                loop {
                    ticks.tick().await;
                    let room = burst.saturating_sub(permits.available_permits());
                    permits.add_permits(per_tick.min(room));
                }
            }
        });
        TokenBucket { permits, refiller }
    }

    pub fn try_acquire(&self) -> bool {
        match self.permits.try_acquire() {
            Ok(permit) => {
                permit.forget(); // A token is spent, not given back.
                true
            }
            Err(_) => false,
        }
    }

    pub async fn acquire(&self) {
        if let Ok(permit) = self.permits.acquire().await {
            permit.forget();
        }
    }
}

impl Drop for TokenBucket {
    fn drop(&mut self) {
        self.refiller.abort();
    }
}
