// Exercise async/01 — Three fetches at once with `join!`
//
// Concept: `a.await; b.await; c.await` waits for each in turn: the time is the sum of the three.
// `tokio::join!(a, b, c)` polls the three futures together inside the current task: the time is
// the longest one (asyncio's `gather`). Creating the futures first does not start them: a Rust
// future, like a Python coroutine object, runs only when it is polled (awaited, joined or
// spawned). See async-basics, step 3.
//
// Goal: write `load_dashboard(site)`: fetch `/user`, `/orders` and `/recommendations` from `site`
// (`support::Site`, a fake site whose pages answer after a known latency) concurrently, and
// return them in a `Dashboard`. On a site whose pages take 100, 300 and 200 ms, the call takes
// 300 ms, not 600.
//
// Hint: `tokio::join!(f1, f2, f3)` returns the three outputs as a tuple once all three are done.
//
// Checked by: 20 seeded runs on tokio's paused clock (virtual time: exact and deterministic):
// the right page in each field, each page requested exactly once, and the elapsed virtual time
// equal to the slowest page, not the sum. Every wrong solution is caught on every run (20/20).
// Run: cargo run -p shared --bin exercises -- check async/01

use support::Site;

/// What the dashboard shows: the body of each page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard {
    pub user: String,
    pub orders: String,
    pub recommendations: String,
}

/// Fetches the three pages concurrently.
pub async fn load_dashboard(site: &Site) -> Dashboard {
    todo!("fetch /user, /orders and /recommendations at the same time with tokio::join!")
}
