// Reference solution of async/02 (see exercise.rs for the statement).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::Site;

/// One request counted in flight for as long as this value lives.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn new(gauge: &'a AtomicUsize) -> Self {
        gauge.fetch_add(1, Ordering::SeqCst);
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    // Runs on return, on a panic, when the timeout drops the request and when our own caller
    // drops us: the one place a cancelled future still gets to run code.
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `site.get(page)` if it answers within `limit`; `site.in_flight` counts the request meanwhile.
pub async fn fetch_with_timeout(site: &Site, page: &str, limit: Duration) -> Option<String> {
    let _in_flight = InFlight::new(&site.in_flight);
    tokio::time::timeout(limit, site.get(page)).await.ok()
}
