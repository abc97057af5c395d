// Test support of async/02, seen by the exercise as `support::Site`: a fake site with an
// in-flight gauge (what a monitoring dashboard reads) and pages that answer after a latency on
// tokio's clock (paused in the checks).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// A fake site.
pub struct Site {
    /// How long every page takes to answer.
    pub latency: Duration,
    /// Requests in flight: the caller counts each request in, and out however it ends.
    pub in_flight: AtomicUsize,
    /// The gauge as each request saw it when it reached the site.
    seen: Mutex<Vec<usize>>,
}

impl Site {
    pub fn new(latency: Duration) -> Site {
        Site {
            latency,
            in_flight: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        }
    }

    /// The body of `page`, after `latency`.
    pub async fn get(&self, page: &str) -> String {
        let now = self.in_flight.load(Ordering::SeqCst);
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(now);
        tokio::time::sleep(self.latency).await;
        format!("content of {page}")
    }

    /// The gauge as the last request saw it when it arrived.
    pub fn last_seen(&self) -> Option<usize> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last()
            .copied()
    }
}
