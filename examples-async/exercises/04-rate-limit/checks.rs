// Checks of async/04, compiled against the learner's file, the solution and each wrong one.

use shared::exercise::{Check, Failure, Jitter, Progress, ensure, stress, watchdog};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// Virtual times are exact, but a limiter may round a wait up to the timer's millisecond.
const SLACK: Duration = Duration::from_millis(2);

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| Failure::property("runs", format!("cannot build a runtime: {e}")))
}

/// When each of `n` back-to-back acquisitions of `client` returned, after `start`.
async fn flood(limiter: &RateLimiter, client: u64, n: usize, progress: &Progress) -> Vec<Duration> {
    let start = Instant::now();
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        limiter.acquire(client).await;
        times.push(start.elapsed());
        progress.tick();
    }
    times
}

/// A flooder's times: `burst` at once, then one token every `1/rate`: never sooner (the limit)
/// and not much later (a limiter that sleeps too long, or a second too often, is no good).
fn check_rate(who: &str, times: &[Duration], rate: u32, burst: u32) -> Check {
    for (i, &t) in times.iter().enumerate() {
        let tokens_needed = (i as u64 + 1).saturating_sub(u64::from(burst));
        let ideal = Duration::from_secs(tokens_needed) / rate;
        ensure(
            t + SLACK >= ideal,
            "never more than `rate` lines per second after the burst",
            || {
                format!(
                    "{who}, rate {rate}/s, burst {burst}: line {} was allowed at {t:?}, not before \
                 {ideal:?}",
                    i + 1
                )
            },
        )?;
        let late = ideal + ideal / 10 + SLACK * (tokens_needed as u32 + 1);
        ensure(t <= late, "a flooder still gets its full rate", || {
            format!(
                "{who}, rate {rate}/s, burst {burst}: line {} was allowed at {t:?}, expected \
                 by {ideal:?}",
                i + 1
            )
        })?;
    }
    Ok(())
}

async fn flooder_and_polite_client(rate: u32, burst: u32, progress: &Progress) -> Check {
    let limiter = Arc::new(RateLimiter::new(rate, burst));
    let n = (3 * burst + 2 * rate) as usize;
    let flooder = {
        let (limiter, progress) = (Arc::clone(&limiter), progress.clone());
        tokio::spawn(async move { flood(&limiter, 1, n, &progress).await })
    };
    // The polite client: one line every 250 ms while the flooder floods; each must go at once.
    let mut waits = Vec::new();
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let t = Instant::now();
        limiter.acquire(2).await;
        waits.push(t.elapsed());
        progress.tick();
    }
    let times = flooder
        .await
        .map_err(|e| Failure::property("no panic", format!("the flooder's task failed: {e}")))?;
    ensure(
        waits.iter().all(|w| w.is_zero()),
        "a client within its limit never waits for another client",
        || format!("the polite client (1 line per 250 ms, well under {rate}/s) waited {waits:?}"),
    )?;
    check_rate("one flooder", &times, rate, burst)?;

    // Quiet for 10 s, then a flood again: exactly `burst` at once, not the 10 s of savings.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let again = flood(&limiter, 1, burst as usize + 2, progress).await;
    check_rate("the flooder after 10 s of silence", &again, rate, burst)
}

async fn five_flooders(rate: u32, burst: u32, progress: &Progress) -> Check {
    let limiter = Arc::new(RateLimiter::new(rate, burst));
    let n = (burst + rate) as usize;
    let tasks: Vec<_> = (10..15)
        .map(|client| {
            let (limiter, progress) = (Arc::clone(&limiter), progress.clone());
            tokio::spawn(async move { flood(&limiter, client, n, &progress).await })
        })
        .collect();
    for task in tasks {
        let times = task
            .await
            .map_err(|e| Failure::property("no panic", format!("a flooder's task failed: {e}")))?;
        check_rate("one of five flooders", &times, rate, burst)?;
    }
    Ok(())
}

fn one_run(seed: u64, progress: &Progress) -> Check {
    let mut draw = Jitter::new(seed, 0);
    let rate = [10, 20, 25, 50][draw.below(4) as usize];
    let burst = [1, 3, 5, 20][draw.below(4) as usize];
    let rt = runtime()?;
    rt.block_on(async {
        flooder_and_polite_client(rate, burst, progress).await?;
        five_flooders(rate, burst, progress).await
    })
}

pub fn all() -> Check {
    watchdog("rate-limit", Duration::from_secs(10), |progress| {
        stress(20, |seed| one_run(seed, progress))
    })
}
