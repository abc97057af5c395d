// Reference solution of async/05 (see exercise.rs for the statement).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use tokio::task::JoinSet;

use support::Site;

/// Every page reachable from `start`, each fetched once, at most `limit` fetches at once.
pub async fn crawl(site: Arc<Site>, start: &str, limit: usize) -> HashSet<String> {
    // Marked seen when queued: the check and the insert are one step, with no `.await` between.
    let mut seen = HashSet::from([start.to_string()]);
    let mut queue = VecDeque::from([start.to_string()]);
    let mut fetching = JoinSet::new();
    let mut found = HashSet::new();
    loop {
        while fetching.len() < limit.max(1)
            && let Some(url) = queue.pop_front()
        {
            let site = Arc::clone(&site);
            fetching.spawn(async move {
                let links = site.get(&url).await;
                (url, links)
            });
        }
        let Some(done) = fetching.join_next().await else {
            break; // nothing in flight and nothing queued: done
        };
        // A fetch cannot panic; if one did, its panic goes on to our caller.
        let (url, links) = done.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let Some(links) = links else {
            continue; // no such page
        };
        found.insert(url);
        for link in links {
            if seen.insert(link.clone()) {
                queue.push_back(link);
            }
        }
    }
    found
}
