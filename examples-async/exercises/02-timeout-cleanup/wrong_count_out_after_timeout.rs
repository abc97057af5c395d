// A plausible wrong solution of async/02: the count is taken back after `timeout(..).await`, so
// the timeout case is handled. But this whole function is a future too: when *its* caller drops
// it (a `select!` whose other branch won, a server shutting down), it stops at that `.await`
// and the decrement never runs. Only `Drop` runs in every case.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::Site;

pub async fn fetch_with_timeout(site: &Site, page: &str, limit: Duration) -> Option<String> {
    site.in_flight.fetch_add(1, Ordering::SeqCst);
    let body = tokio::time::timeout(limit, site.get(page)).await.ok();
    site.in_flight.fetch_sub(1, Ordering::SeqCst);
    body
}
