// Checks of patterns/03, compiled against the learner's file, the solution and each wrong one.
// Every scenario runs on a paused tokio clock: minutes of cool-down in microseconds, and the
// same result on every run.

use shared::exercise::{Check, ensure};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const COOL_DOWN: Duration = Duration::from_secs(30);

fn paused<F: std::future::Future<Output = Check>>(f: impl FnOnce() -> F) -> Check {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a paused runtime");
    rt.block_on(f())
}

async fn opened(probes: u32) -> Breaker {
    let b = Breaker::new(3, COOL_DOWN, probes);
    for _ in 0..3 {
        let _ = b.call(async { Err::<(), &str>("down") }).await;
    }
    assert_eq!(
        b.state(),
        State::Open,
        "3 failures open the breaker (given code)"
    );
    b
}

/// Probes cancelled by their caller's timeout must give their slots back.
async fn cancelled_probes_free_their_slots() -> Check {
    let b = opened(2).await;
    tokio::time::advance(COOL_DOWN).await;
    // Two probes (the whole budget) hang, and their callers give up after 1 s.
    for _ in 0..2 {
        let slow = b.call(async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<(), &str>(())
        });
        match tokio::time::timeout(Duration::from_secs(1), slow).await {
            Err(_elapsed) => {} // cancelled: the call's future (and its permit) is dropped
            Ok(r) => {
                return ensure(false, "half-open lets `probes` probes through", || {
                    format!("a probe within the budget of 2 ended with {r:?}")
                });
            }
        }
    }
    let p1 = b.try_acquire();
    let p2 = b.try_acquire();
    ensure(
        p1.is_some() && p2.is_some(),
        "a cancelled probe frees its slot",
        || {
            format!(
                "after 2 probes cancelled by a timeout, try_acquire gives {} of 2 probe permits: \
             the breaker is stuck {:?}, rejecting every call",
                usize::from(p1.is_some()) + usize::from(p2.is_some()),
                b.state()
            )
        },
    )?;
    if let (Some(p1), Some(p2)) = (p1, p2) {
        p1.record(true);
        p2.record(true);
    }
    ensure(
        b.state() == State::Closed,
        "2 probe successes close",
        || format!("state {:?}", b.state()),
    )
}

/// While half-open, at most `probes` calls reach the service at once.
async fn half_open_lets_through_at_most_the_budget() -> Check {
    let b = opened(2).await;
    tokio::time::advance(COOL_DOWN).await;
    let (now, peak, reached) = (AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0));
    let service = || async {
        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
        peak.fetch_max(n, Ordering::SeqCst);
        reached.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        now.fetch_sub(1, Ordering::SeqCst);
        Ok::<(), &str>(())
    };
    // 20 callers arrive together while the probes are out.
    let calls = (0..20).map(|_| b.call(service()));
    let results = futures::future::join_all(calls).await;
    let rejected = results
        .iter()
        .filter(|r| matches!(r, Err(CallError::Rejected)))
        .count();
    ensure(
        peak.load(Ordering::SeqCst) <= 2,
        "at most `probes` calls while half-open",
        || {
            format!(
                "{} calls reached the service at once (budget 2); {} of 20 were let through",
                peak.load(Ordering::SeqCst),
                reached.load(Ordering::SeqCst)
            )
        },
    )?;
    ensure(rejected == 18, "the others fail fast", || {
        format!("{rejected} of 20 rejected")
    })
}

/// A call let through while closed, ending during the probing, frees no probe slot.
async fn a_late_result_frees_no_slot() -> Check {
    let b = Breaker::new(3, COOL_DOWN, 1);
    let early = b.try_acquire().expect("closed: let through");
    for _ in 0..3 {
        let _ = b.call(async { Err::<(), &str>("down") }).await;
    }
    tokio::time::advance(COOL_DOWN).await;
    let probe = b.try_acquire().expect("half-open: one probe");
    early.record(true); // the slow call from before the outage ends now
    let extra = b.try_acquire();
    ensure(extra.is_none(), "a late result frees no probe slot", || {
        "a call let through before the breaker opened ended during the probing, and a second \
         probe was let through: the budget is 1"
            .into()
    })?;
    drop(extra);
    probe.record(true);
    ensure(
        b.state() == State::Closed,
        "the probe's success closes",
        || format!("state {:?}", b.state()),
    )
}

/// The whole cycle, with a failed probe in the middle.
async fn the_full_cycle() -> Check {
    let b = opened(1).await;
    let mut called = false;
    let r = b
        .call(async {
            called = true;
            Ok::<(), &str>(())
        })
        .await;
    ensure(
        matches!(r, Err(CallError::Rejected)) && !called,
        "open rejects without calling",
        || format!("{r:?}, service called: {called}"),
    )?;
    tokio::time::advance(COOL_DOWN).await;
    let r = b.call(async { Err::<(), &str>("still down") }).await;
    ensure(
        r == Err(CallError::Failed("still down")),
        "half-open lets a probe through",
        || format!("{r:?}"),
    )?;
    ensure(b.state() == State::Open, "a failed probe reopens", || {
        format!("{:?}", b.state())
    })?;
    tokio::time::advance(COOL_DOWN - Duration::from_secs(1)).await;
    ensure(
        b.try_acquire().is_none(),
        "a new cool-down after a failed probe",
        || "a call was let through before the new cool-down ended".into(),
    )?;
    tokio::time::advance(Duration::from_secs(1)).await;
    let r = b.call(async { Ok::<(), &str>(()) }).await;
    ensure(
        r.is_ok() && b.state() == State::Closed,
        "a successful probe closes",
        || format!("{r:?}, state {:?}", b.state()),
    )
}

pub fn all() -> Check {
    // A `todo!()` panics inside the scenario; the watchdog turns it into "not solved yet".
    shared::exercise::watchdog("probe-budget", Duration::from_secs(10), |progress| {
        paused(the_full_cycle)?;
        progress.tick();
        paused(cancelled_probes_free_their_slots)?;
        progress.tick();
        paused(half_open_lets_through_at_most_the_budget)?;
        progress.tick();
        paused(a_late_result_frees_no_slot)
    })
}
