// Checks of async/05, compiled against the learner's file, the solution and each wrong one.

use shared::exercise::{Check, Failure, Jitter, Progress, ensure, exactly_once, stress, watchdog};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::support::{Page, Site};

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| Failure::property("runs", format!("cannot build a runtime: {e}")))
}

fn page(ms: u64, links: &[&str]) -> Page {
    Page {
        latency: Duration::from_millis(ms),
        links: links.iter().map(|l| (*l).to_string()).collect(),
    }
}

/// Crawls `site` from `/`; checks the pages found, each fetched once, the bound; returns the
/// virtual time the crawl took.
async fn crawl_and_check(name: &str, site: Site, limit: usize) -> Result<Duration, Failure> {
    let site = Arc::new(site);
    let started = tokio::time::Instant::now();
    let found: HashSet<String> = crawl(Arc::clone(&site), "/", limit).await;
    let took = started.elapsed();
    let expected = site.reachable("/");
    let found: BTreeSet<String> = found.into_iter().collect();
    ensure(
        found == expected,
        "every reachable page found, nothing else",
        || {
            let missing: Vec<_> = expected.difference(&found).collect();
            let extra: Vec<_> = found.difference(&expected).collect();
            format!("{name}: missing {missing:?}, not reachable but returned {extra:?}")
        },
    )?;
    exactly_once(expected, site.fetched()).map_err(|mut f| {
        f.property = "each page fetched exactly once".into();
        f.detail = format!("{name}: {}", f.detail);
        f
    })?;
    let max = site.max_in_flight();
    ensure(
        max <= limit,
        "never more than `limit` fetches in flight",
        || format!("{name}: {max} fetches were in flight at once with a limit of {limit}"),
    )?;
    Ok(took)
}

/// `/` links to 20 pages of 100 ms each: with a limit of 4 it takes 100 ms + 5 × 100 ms.
async fn star(progress: &Progress) -> Check {
    let leaves: Vec<String> = (0..20).map(|i| format!("/leaf-{i}")).collect();
    let refs: Vec<&str> = leaves.iter().map(String::as_str).collect();
    let mut pages = BTreeMap::from([("/".to_string(), page(100, &refs))]);
    for leaf in &leaves {
        pages.insert(leaf.clone(), page(100, &[]));
    }
    let took = crawl_and_check("a star of 20 pages, limit 4", Site::new(pages), 4).await?;
    progress.tick();
    ensure(
        took == Duration::from_millis(600),
        "up to `limit` fetches at once whenever there is that much work",
        || format!("a star of 20 pages of 100 ms with a limit of 4 took {took:?}, not 600 ms"),
    )
}

/// `/a` and `/c` are fetched at once and both link to the slow `/b`.
async fn diamond(progress: &Progress) -> Check {
    let pages = BTreeMap::from([
        ("/".to_string(), page(10, &["/a", "/c"])),
        ("/a".to_string(), page(10, &["/b"])),
        ("/c".to_string(), page(20, &["/b", "/"])),
        ("/b".to_string(), page(100, &["/a"])),
    ]);
    crawl_and_check("a diamond", Site::new(pages), 4).await?;
    progress.tick();
    Ok(())
}

/// A random site: cycles, diamonds, links to missing pages, unreachable islands.
async fn random_site(seed: u64, progress: &Progress) -> Check {
    let mut draw = Jitter::new(seed, 0);
    let n = 10 + draw.below(50);
    let url = |i: u64| {
        if i == 0 {
            "/".to_string()
        } else {
            format!("/p{i}")
        }
    };
    let mut pages = BTreeMap::new();
    for i in 0..n {
        let links: Vec<String> = (0..draw.below(5))
            .map(|_| url(draw.below(n + 3))) // a few links to pages that do not exist
            .collect();
        let latency = Duration::from_millis(10 * (1 + draw.below(20)));
        pages.insert(url(i), Page { latency, links });
    }
    let limit = 1 + draw.below(6) as usize;
    let name = format!("a random site of {n} pages, limit {limit}");
    crawl_and_check(&name, Site::new(pages), limit).await?;
    progress.tick();
    Ok(())
}

pub fn all() -> Check {
    watchdog("crawler", Duration::from_secs(10), |progress| {
        let rt = runtime()?;
        rt.block_on(async {
            star(progress).await?;
            diamond(progress).await
        })?;
        stress(20, |seed| runtime()?.block_on(random_site(seed, progress)))
    })
}
