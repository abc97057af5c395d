// Checks of async/01, compiled against the learner's file, the solution and each wrong one.

use shared::exercise::{Check, Failure, Jitter, ensure, exactly_once, stress, watchdog};
use std::time::Duration;

use super::support::Site;

const PAGES: [&str; 3] = ["/user", "/orders", "/recommendations"];

/// One dashboard on a site with seeded latencies (10 ms to 500 ms, in steps of 10 ms).
fn one_run(seed: u64) -> Check {
    let mut draw = Jitter::new(seed, 0);
    let latencies: Vec<Duration> = PAGES
        .iter()
        .map(|_| Duration::from_millis(10 * (1 + draw.below(50))))
        .collect();
    let pages: Vec<(&'static str, Duration)> =
        PAGES.iter().copied().zip(latencies.clone()).collect();
    let site = Site::new(&pages);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| Failure::property("runs", format!("cannot build a runtime: {e}")))?;
    let (dashboard, took) = rt.block_on(async {
        let started = tokio::time::Instant::now();
        let dashboard = load_dashboard(&site).await;
        (dashboard, started.elapsed())
    });
    let expected = Dashboard {
        user: "content of /user".into(),
        orders: "content of /orders".into(),
        recommendations: "content of /recommendations".into(),
    };
    ensure(
        dashboard == expected,
        "each field holds its own page",
        || format!("got {dashboard:?}"),
    )?;
    exactly_once(PAGES, site.requests()).map_err(|mut f| {
        f.property = "each page requested exactly once".into();
        f
    })?;
    let slowest = latencies.iter().max().copied().unwrap_or_default();
    let sum: Duration = latencies.iter().sum();
    ensure(
        took == slowest,
        "the fetches overlap: the time is the slowest page, not the sum",
        || {
            format!(
                "took {took:?} of virtual time; the pages take {latencies:?}: together {slowest:?}, \
                 one after the other {sum:?}"
            )
        },
    )
}

pub fn all() -> Check {
    watchdog("dashboard", Duration::from_secs(10), |progress| {
        stress(20, |seed| {
            let r = one_run(seed);
            progress.tick();
            r
        })
    })
}
