// Test support of async/05, seen by the exercise as `support::Site`: a fake web site made of
// pages that link to each other, each answering after its own latency on tokio's clock (paused
// in the checks). It counts every fetch and the most fetches it ever had in flight at once.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// One page: how long it takes to answer, and its links.
#[derive(Debug, Clone)]
pub struct Page {
    pub latency: Duration,
    pub links: Vec<String>,
}

#[derive(Debug, Default)]
struct Stats {
    in_flight: usize,
    max_in_flight: usize,
    fetched: Vec<String>,
}

/// A fake site.
pub struct Site {
    pages: BTreeMap<String, Page>,
    stats: Mutex<Stats>,
}

/// Counts a fetch out of flight however it ends (even if the caller drops it).
struct Flight<'a>(&'a Mutex<Stats>);

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .in_flight -= 1;
    }
}

impl Site {
    pub fn new(pages: BTreeMap<String, Page>) -> Site {
        Site {
            pages,
            stats: Mutex::new(Stats::default()),
        }
    }

    /// The links of `url`, after its latency; `None` at once for a page that does not exist
    /// (a 404: not fetched, not counted).
    pub async fn get(&self, url: &str) -> Option<Vec<String>> {
        let page = self.pages.get(url)?;
        {
            let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
            stats.in_flight += 1;
            stats.max_in_flight = stats.max_in_flight.max(stats.in_flight);
            stats.fetched.push(url.to_string());
        }
        let _flight = Flight(&self.stats);
        tokio::time::sleep(page.latency).await;
        Some(page.links.clone())
    }

    /// Every page reachable from `start` by following links (start included if it exists).
    pub fn reachable(&self, start: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([start.to_string()]);
        while let Some(url) = queue.pop_front() {
            if let Some(page) = self.pages.get(&url)
                && seen.insert(url)
            {
                queue.extend(page.links.iter().cloned());
            }
        }
        seen
    }

    /// Every fetch made so far, in order.
    pub fn fetched(&self) -> Vec<String> {
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .fetched
            .clone()
    }

    /// The most fetches in flight at once so far.
    pub fn max_in_flight(&self) -> usize {
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .max_in_flight
    }
}
