// Checks of threads/02, compiled against the learner's file, the solution and each wrong one.

use shared::exercise::{Check, Jitter, Progress, ensure, exactly_once, stress, watchdog};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// What `work(i)` returns: anything that depends on `i` only.
fn expected(i: usize) -> u64 {
    (i as u64).wrapping_mul(0x9E37_79B9).rotate_left(7)
}

/// Every job exactly once, results in job order, for many sizes and thread counts.
fn exactly_once_in_order(seed: u64, progress: &Progress) -> Check {
    let mut draw = Jitter::new(seed, 0);
    let jobs = draw.below(400) as usize;
    let workers = 1 + draw.below(8) as usize;
    // Half the runs with scheduling noise, half without: without it the workers hammer the
    // cursor back to back, which is when two of them read it at the same moment. Calls are
    // counted with atomics, not a lock, so as not to line the workers up.
    let noisy = draw.below(2) == 0;
    let calls: Vec<AtomicUsize> = (0..jobs).map(|_| AtomicUsize::new(0)).collect();
    let results = run_dynamic(jobs, workers, |i| {
        if noisy {
            Jitter::new(seed, i as u64 + 1).pause();
        }
        if let Some(c) = calls.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        expected(i)
    });
    progress.tick();
    let seen = calls
        .iter()
        .enumerate()
        .flat_map(|(i, c)| std::iter::repeat_n(i, c.load(Ordering::Relaxed)));
    exactly_once(0..jobs, seen).map_err(|mut f| {
        f.detail = format!("{jobs} jobs on {workers} workers: {}", f.detail);
        f
    })?;
    ensure(results.len() == jobs, "one result per job", || {
        format!("{jobs} jobs gave {} results", results.len())
    })?;
    let wrong = (0..jobs).find(|&i| results[i] != expected(i));
    ensure(wrong.is_none(), "results in job order", || {
        format!("result {} is not work({0})", wrong.unwrap_or_default())
    })
}

/// Job 0 finishes only when every other job is done: a static split keeps the jobs after 0 in
/// its chunk waiting forever; a shared queue lets the other worker take them all.
fn slow_job_does_not_hold_back_the_rest(progress: &Progress) -> Check {
    const JOBS: usize = 12;
    let done = Mutex::new(0usize);
    let cv = std::sync::Condvar::new();
    let results = run_dynamic(JOBS, 2, |i| {
        let mut d = done.lock().expect("done");
        if i == 0 {
            while *d < JOBS - 1 {
                d = cv.wait(d).expect("wait");
            }
        } else {
            *d += 1;
            progress.tick();
            cv.notify_all();
        }
        expected(i)
    });
    ensure(results.len() == JOBS, "one result per job", || {
        format!("{} results", results.len())
    })
}

pub fn all() -> Check {
    watchdog("exactly-once", Duration::from_secs(10), |p| {
        stress(300, |seed| exactly_once_in_order(seed, p))
    })?;
    watchdog("slow-job", Duration::from_secs(3), slow_job_does_not_hold_back_the_rest).map_err(
        |mut f| {
            f.property = "a slow job does not hold back the others".into();
            f
        },
    )?;
    ensure(run_dynamic(0, 4, expected).is_empty(), "no jobs, no results", String::new)
}
