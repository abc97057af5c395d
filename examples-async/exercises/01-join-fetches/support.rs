// Test support of async/01, seen by the exercise as `support::Site`: a fake web site whose pages
// answer after a known latency on tokio's clock (paused in the checks, so times are exact).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// A fake site: every page answers after its own latency; every request is logged.
pub struct Site {
    latency: BTreeMap<&'static str, Duration>,
    requests: Mutex<Vec<&'static str>>,
}

impl Site {
    pub fn new(pages: &[(&'static str, Duration)]) -> Site {
        Site {
            latency: pages.iter().copied().collect(),
            requests: Mutex::new(Vec::new()),
        }
    }

    /// The body of `page`, after the page's latency (`not found` at once for another page).
    pub async fn get(&self, page: &'static str) -> String {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(page);
        match self.latency.get(page) {
            Some(&latency) => {
                tokio::time::sleep(latency).await;
                format!("content of {page}")
            }
            None => format!("{page}: not found"),
        }
    }

    /// The pages requested so far, in order.
    pub fn requests(&self) -> Vec<&'static str> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
