// A plausible wrong solution of async/02: the request is counted out on the line after its
// `.await`. When the timeout fires, the inner future is dropped at that `.await` and the line
// never runs: every timed-out request stays "in flight" forever. It passes every test where the
// page arrives in time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::Site;

pub async fn fetch_with_timeout(site: &Site, page: &str, limit: Duration) -> Option<String> {
    site.in_flight.fetch_add(1, Ordering::SeqCst);
    tokio::time::timeout(limit, async {
        let body = site.get(page).await;
        site.in_flight.fetch_sub(1, Ordering::SeqCst);
        body
    })
    .await
    .ok()
}
