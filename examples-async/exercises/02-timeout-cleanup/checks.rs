// Checks of async/02, compiled against the learner's file, the solution and each wrong one.

use shared::exercise::{Check, Failure, Jitter, ensure, stress, watchdog};
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::support::Site;

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| Failure::property("runs", format!("cannot build a runtime: {e}")))
}

fn gauge_is_zero(site: &Site, after: &str) -> Check {
    let left = site.in_flight.load(Ordering::SeqCst);
    ensure(
        left == 0,
        "the in-flight count comes back to 0 (no leak)",
        || format!("{left} request(s) still counted in flight after {after}"),
    )
}

/// One call: the result, its duration on the paused clock, and the gauge during and after.
async fn one_call(latency_ms: u64, limit_ms: u64) -> Check {
    let site = Site::new(Duration::from_millis(latency_ms));
    let limit = Duration::from_millis(limit_ms);
    let started = tokio::time::Instant::now();
    let body = fetch_with_timeout(&site, "/report", limit).await;
    let took = started.elapsed();
    let in_time = latency_ms < limit_ms;
    let call = format!("a page taking {latency_ms} ms with a limit of {limit_ms} ms");
    ensure(
        body.as_deref() == in_time.then_some("content of /report"),
        "the page if it arrives within the limit, None otherwise",
        || format!("{call} returned {body:?}"),
    )?;
    ensure(
        took == Duration::from_millis(latency_ms.min(limit_ms)),
        "the call lasts until the page arrives or the limit, whichever comes first",
        || format!("{call} took {took:?} of virtual time"),
    )?;
    ensure(
        site.last_seen().is_some_and(|n| n >= 1),
        "the request is counted in flight before it is sent",
        || {
            format!(
                "the site saw the gauge at {:?} when {call} arrived",
                site.last_seen()
            )
        },
    )?;
    gauge_is_zero(&site, &call)
}

/// The caller gives up first: a `select!` whose other branch wins drops the whole call.
async fn dropped_by_the_caller(latency_ms: u64, limit_ms: u64, caller_ms: u64) -> Check {
    let site = Site::new(Duration::from_millis(latency_ms));
    tokio::select! {
        _ = fetch_with_timeout(&site, "/report", Duration::from_millis(limit_ms)) => {
            return Err(Failure::property("runs", "the call ended before its caller gave up"));
        }
        () = tokio::time::sleep(Duration::from_millis(caller_ms)) => {}
    }
    ensure(
        site.last_seen().is_some_and(|n| n >= 1),
        "the request is counted in flight before it is sent",
        || format!("the site saw the gauge at {:?}", site.last_seen()),
    )?;
    gauge_is_zero(
        &site,
        "a call dropped by its caller (a select! whose other branch won)",
    )
}

fn one_run(seed: u64) -> Check {
    let mut draw = Jitter::new(seed, 0);
    let mut ms = |lo: u64| lo + 10 * draw.below(40);
    let rt = runtime()?;
    rt.block_on(async {
        // One call in time and one timed out on every run, then seeded ones.
        let latency = ms(10);
        one_call(latency, latency + ms(10)).await?;
        let limit = ms(10);
        one_call(limit + ms(10), limit).await?;
        for _ in 0..6 {
            let (latency, limit) = (ms(10), ms(15));
            one_call(latency, limit).await?;
        }
        let caller = ms(10);
        dropped_by_the_caller(caller + ms(10), caller + ms(10), caller).await
    })
}

pub fn all() -> Check {
    watchdog("timeout", Duration::from_secs(10), |progress| {
        stress(20, |seed| {
            let r = one_run(seed);
            progress.tick();
            r
        })
    })
}
