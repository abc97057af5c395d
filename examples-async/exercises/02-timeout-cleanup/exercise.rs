// Exercise async/02 — A timeout that cancels, and a cleanup that still happens
//
// Concept: `tokio::time::timeout(limit, fut)` gives up on `fut` by dropping it at the `.await`
// where it waits. Nothing after that `.await` runs: code written "after the request" to undo
// something (a gauge, a lock, a temporary file) is skipped. The same happens when *your* caller
// drops you (a `select!` that another branch won, a shutdown). What always runs is `Drop`: a
// guard value that undoes its work when dropped, whichever way the future ends. This is Python's
// `try/finally` around an `await` (there, CancelledError is raised at the `await`). See
// async-basics, step 14 (`mod guards`).
//
// Goal: write `fetch_with_timeout(site, page, limit)`: return `Some(body)` if `site.get(page)`
// answers within `limit`, `None` if not. While the request is in flight, `site.in_flight` (an
// `AtomicUsize`) counts it: add 1 before calling `site.get`, and take it back however the call
// ends: the page arrived, the timeout fired, or the caller dropped `fetch_with_timeout` itself.
//
// Hint: a small `struct InFlight<'a>(&'a AtomicUsize)` that adds 1 when created and subtracts 1
// in `impl Drop`; create it before the request and let it go out of scope.
//
// Checked by: 20 seeded runs on tokio's paused clock, each with calls that arrive in time and
// calls that time out (the result, and the call lasting min(latency, limit) exactly), one call
// cancelled by its caller halfway, and the gauge back to 0 after each. Every wrong solution is
// caught on every run (20/20).
// Run: cargo run -p shared --bin exercises -- check async/02

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::Site;

/// `site.get(page)` if it answers within `limit`; `site.in_flight` counts the request meanwhile.
pub async fn fetch_with_timeout(site: &Site, page: &str, limit: Duration) -> Option<String> {
    todo!("count the request in with a guard, then tokio::time::timeout(limit, site.get(page))")
}
