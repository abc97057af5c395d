// A plausible wrong solution of async/05: a page is marked visited when its fetch returns, and
// a link is queued if it is not visited yet. Between the check and the insert there is a whole
// fetch (an `.await`): a page linked from two pages fetched at once is queued by both, and
// fetched twice. On a site shaped like a tree it never shows.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use tokio::task::JoinSet;

use support::Site;

pub async fn crawl(site: Arc<Site>, start: &str, limit: usize) -> HashSet<String> {
    let mut visited = HashSet::new();
    let mut queue = VecDeque::from([start.to_string()]);
    let mut fetching = JoinSet::new();
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
            break;
        };
        let (url, links) = done.expect("a fetch panicked");
        let Some(links) = links else {
            continue;
        };
        visited.insert(url);
        for link in links {
            if !visited.contains(&link) {
                queue.push_back(link);
            }
        }
    }
    visited
}
