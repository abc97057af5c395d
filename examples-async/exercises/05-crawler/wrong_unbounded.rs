// A plausible wrong solution of async/05: every new link gets its own task at once. Each page
// is fetched once and every page is found, and on a small site it is fast; but nothing bounds
// the tasks in flight: a page with 10,000 links opens 10,000 connections at once.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use tokio::task::JoinSet;

use support::Site;

pub async fn crawl(site: Arc<Site>, start: &str, limit: usize) -> HashSet<String> {
    let mut seen = HashSet::from([start.to_string()]);
    let mut fetching = JoinSet::new();
    let mut found = HashSet::new();
    let spawn = |fetching: &mut JoinSet<(String, Option<Vec<String>>)>, url: String| {
        let site = Arc::clone(&site);
        fetching.spawn(async move {
            let links = site.get(&url).await;
            (url, links)
        });
    };
    spawn(&mut fetching, start.to_string());
    while let Some(done) = fetching.join_next().await {
        let (url, links) = done.expect("a fetch panicked");
        let Some(links) = links else {
            continue; // no such page
        };
        found.insert(url);
        for link in links {
            if seen.insert(link.clone()) {
                spawn(&mut fetching, link);
            }
        }
    }
    found
}
