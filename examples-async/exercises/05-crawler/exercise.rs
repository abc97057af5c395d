// Exercise async/05 — A bounded crawler with a `JoinSet`
//
// Concept: a crawler discovers its work as it goes: each page fetched gives links to fetch.
// Spawning a task per link as soon as it is found is unbounded (a site with 100,000 pages opens
// 100,000 connections at once); a `JoinSet` with at most `limit` tasks in it, fed from a queue
// as tasks finish, is bounded. And "fetch each page once" needs the visited set to be updated
// when a link is *queued*, in the same step as the check: marking a page visited only when its
// fetch returns leaves an `.await` between the check and the act, and a page linked from two
// pages fetched at once is fetched twice (the race of async-race, in a crawler). This is
// async-downloader's bounded `JoinSet`, with the work found on the way.
//
// Goal: write `crawl(site, start, limit)`: fetch `start`, then every page reachable from it
// through links (`site.get(url).await` returns `Some(links)`, or `None` at once for a page that
// does not exist), each page exactly once, never more than `limit` fetches in flight, and up to
// `limit` of them at once whenever there is that much work. Return the URLs of the pages found.
//
// Hint: a `HashSet` of seen URLs (insert when you queue), a `VecDeque` of URLs to fetch, and a
// `JoinSet` whose tasks return `(url, site.get(&url).await)`: top the set up to `limit` from the queue, then
// `join_next()` one result and queue its new links; stop when both are empty.
//
// Checked by: 20 seeded runs on tokio's paused clock over random sites (diamonds, cycles,
// unreachable pages, 1 to 6 fetches at once), a star of 20 pages (the time must be that of
// `limit` fetches at once) and a diamond where two pages link to a slow third: each page fetched
// exactly once, all reachable pages found, never more than `limit` in flight. Every wrong
// solution is caught on every run (20/20).
// Run: cargo run -p shared --bin exercises -- check async/05

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use tokio::task::JoinSet;

use support::Site;

/// Every page reachable from `start`, each fetched once, at most `limit` fetches at once.
pub async fn crawl(site: Arc<Site>, start: &str, limit: usize) -> HashSet<String> {
    todo!("seen set + queue + a JoinSet of at most `limit` fetches")
}
