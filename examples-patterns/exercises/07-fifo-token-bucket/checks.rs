// Checks of patterns/07, compiled against the learner's file, the solution and each wrong one.
// Every scenario runs on a paused tokio clock: 20 s of calls take milliseconds, and virtual
// times are exact, so "the 12th caller was served before the 9th" is a fact, not a guess.

use shared::exercise::{Check, Failure, Jitter, Progress, ensure, stress};
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering as Mem};
use std::task::{Context, Poll};
use tokio::time::{Instant, sleep, sleep_until, timeout_at};

use std::time::Duration;

fn paused() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| Failure::property("runs", format!("cannot build a runtime: {e}")))
}

/// A panic in a caller's task (a `todo!()`) goes on to the watchdog, which reports it.
fn joined<T>(r: Result<T, tokio::task::JoinError>) -> T {
    r.unwrap_or_else(|e| match e.try_into_panic() {
        Ok(p) => std::panic::resume_unwind(p),
        Err(e) => panic!("a task was cancelled: {e}"),
    })
}

/// Counts how many times a future is polled: once to start, once per wake-up.
struct Polls<'a> {
    inner: Pin<Box<dyn Future<Output = ()> + Send + 'a>>,
    polls: u32,
}

impl Future for Polls<'_> {
    type Output = u32;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        self.polls += 1;
        match self.inner.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(self.polls),
            Poll::Pending => Poll::Pending,
        }
    }
}

const QUIET: Duration = Duration::from_secs(2);
const RUN: Duration = Duration::from_secs(20);

/// Clients calling without pause for 20 s, after 2 s of quiet, and one trying now and then:
/// never faster than the bucket allows, and not slower either.
async fn rate_and_burst(seed: u64) -> Check {
    let mut draw = Jitter::new(seed, 0);
    // `rate × 0.1` is never whole: a limiter that rounds tokens away shows it.
    let rate = [15.0, 25.0, 35.0, 45.0][draw.below(4) as usize];
    let burst = [1u32, 3, 8][draw.below(3) as usize];
    let clients = 2 + draw.below(5);
    let limiter = Arc::new(TokenBucket::new(rate, burst));
    sleep(QUIET).await; // The bucket fills up, to `burst` and no more.
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move {
                let mut times = Vec::new();
                while timeout_at(start + RUN, limiter.acquire()).await.is_ok() {
                    let t = start.elapsed();
                    if t >= RUN {
                        break;
                    }
                    times.push(t);
                }
                times
            })
        })
        .collect();
    // And one that never waits: every 10 ms it tries, and goes away when refused (a 429).
    let prober = {
        let limiter = Arc::clone(&limiter);
        tokio::spawn(async move {
            let mut times = Vec::new();
            while start.elapsed() + Duration::from_millis(10) < RUN {
                sleep(Duration::from_millis(10)).await;
                if limiter.try_acquire() {
                    times.push(start.elapsed());
                }
            }
            times
        })
    };
    let mut times = joined(prober.await);
    for t in tasks {
        times.extend(joined(t.await));
    }
    times.sort();
    let what = format!(
        "rate {rate}/s, burst {burst}, {clients} clients calling for {RUN:?} (and one trying \
         every 10 ms)"
    );
    for (k, t) in times.iter().enumerate() {
        let allowed = f64::from(burst) + rate * t.as_secs_f64();
        ensure(
            (k + 1) as f64 <= allowed + 1e-6,
            "never more than burst + rate × t calls by time t",
            || {
                format!(
                    "{what}: call {} went at {t:?}, when {allowed:.2} were allowed",
                    k + 1
                )
            },
        )?;
    }
    let due = f64::from(burst) + rate * RUN.as_secs_f64();
    ensure(
        times.len() as f64 >= 0.97 * due,
        "the configured rate, not less: callers waiting all along get burst + rate × T",
        || {
            format!(
                "{what}: {} calls went through, {due:.0} were due ({:.1} per second instead of \
                 {rate})",
                times.len(),
                (times.len() as f64 - f64::from(burst)) / RUN.as_secs_f64()
            )
        },
    )
}

/// 30 callers arriving at seeded times, a third of them just when a token drips in: each is
/// served in its turn, and woken once.
async fn served_in_order(seed: u64) -> Check {
    const CALLERS: usize = 30;
    let mut draw = Jitter::new(seed, 0);
    let burst = 1 + draw.below(3) as u32;
    let limiter = Arc::new(TokenBucket::new(10.0, burst));
    let start = Instant::now();
    let mut arrivals = BTreeSet::new();
    while arrivals.len() < CALLERS {
        arrivals.insert(if draw.below(3) == 0 {
            100 * draw.below(20) // A token drips in every 100 ms.
        } else {
            draw.below(2_000)
        });
    }
    let (arrived, served) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let tasks: Vec<_> = arrivals
        .iter()
        .map(|&ms| {
            let (limiter, arrived, served) = (
                Arc::clone(&limiter),
                Arc::clone(&arrived),
                Arc::clone(&served),
            );
            tokio::spawn(async move {
                sleep_until(start + Duration::from_millis(ms)).await;
                let rank = arrived.fetch_add(1, Mem::SeqCst);
                let polls = Polls {
                    inner: Box::pin(limiter.acquire()),
                    polls: 0,
                }
                .await;
                let turn = served.fetch_add(1, Mem::SeqCst);
                (ms, rank, turn, polls, start.elapsed())
            })
        })
        .collect();
    let mut callers = Vec::new();
    for t in tasks {
        callers.push(joined(t.await));
    }
    let what = format!("rate 10/s, burst {burst}, {CALLERS} callers within 2 s");
    for &(ms, rank, turn, _, at) in &callers {
        ensure(
            turn == rank,
            "callers are served in the order they called",
            || {
                format!(
                    "{what}: the caller that came {} (at {ms} ms) was served {} (at {at:?}): someone \
                 who came later took a token before it",
                    nth(rank),
                    nth(turn)
                )
            },
        )?;
    }
    let herd = callers.iter().max_by_key(|c| c.3).copied();
    if let Some((ms, rank, _, polls, _)) = herd {
        ensure(
            polls <= 3,
            "each waiter sleeps once (no thundering herd)",
            || {
                format!(
                    "{what}: the acquire of the caller that came {} (at {ms} ms) was polled {polls} \
                 times: woken again and again to find the token taken",
                    nth(rank)
                )
            },
        )?;
    }
    Ok(())
}

fn nth(i: usize) -> String {
    let n = i + 1;
    match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => format!("{n}th"),
        (1, _) => format!("{n}st"),
        (2, _) => format!("{n}nd"),
        (3, _) => format!("{n}rd"),
        _ => format!("{n}th"),
    }
}

/// Tokens promised to waiters are theirs; after a quiet spell, `burst` again and no more.
async fn try_acquire_waits_its_turn() -> Check {
    let limiter = Arc::new(TokenBucket::new(10.0, 2));
    let burst = [
        limiter.try_acquire(),
        limiter.try_acquire(),
        limiter.try_acquire(),
    ];
    ensure(
        burst == [true, true, false],
        "try_acquire takes the burst, then refuses",
        || format!("a full bucket of 2: three try_acquire gave {burst:?}"),
    )?;
    // Three callers wait; their tokens are due at 100, 200 and 300 ms.
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move { limiter.acquire().await })
        })
        .collect();
    sleep(Duration::from_millis(150)).await;
    ensure(
        !limiter.try_acquire(),
        "while callers wait, try_acquire takes nothing",
        || {
            "three callers were waiting, 1.5 tokens had dripped in (all owed to them), and \
         try_acquire took one"
                .into()
        },
    )?;
    for w in waiters {
        joined(w.await);
    }
    sleep(Duration::from_secs(10)).await;
    let after = [
        limiter.try_acquire(),
        limiter.try_acquire(),
        limiter.try_acquire(),
    ];
    ensure(
        after == [true, true, false],
        "after a quiet spell, `burst` at once and no more",
        || format!("after 10 s of quiet, three try_acquire gave {after:?} (burst 2)"),
    )
}

fn in_paused<F: Future<Output = Check>>(scenario: F, progress: &Progress) -> Check {
    let result = paused()?.block_on(scenario);
    progress.tick();
    result
}

pub fn all() -> Check {
    shared::exercise::watchdog("fifo-token-bucket", Duration::from_secs(10), |progress| {
        stress(8, |seed| in_paused(rate_and_burst(seed), progress))?;
        stress(12, |seed| in_paused(served_in_order(seed), progress))?;
        in_paused(try_acquire_waits_its_turn(), progress)
    })
}
