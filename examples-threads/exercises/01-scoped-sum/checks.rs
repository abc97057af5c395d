// Checks of threads/01, compiled against the learner's file, the solution and each wrong one.

use shared::exercise::{Check, Jitter, Progress, ensure, exactly_once, stress, watchdog};
use std::collections::HashSet;
use std::sync::Mutex;
use std::thread::ThreadId;
use std::time::Duration;

/// Large enough that the sum wraps: `+` instead of `wrapping_add` panics in a debug build.
fn weight(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1
}

/// `parallel_sum` over `0..len` on `workers`, with `f` recording who saw what.
fn one_run(len: u64, workers: usize, seed: Option<u64>, progress: &Progress) -> Check {
    let data: Vec<u64> = (0..len).collect();
    let seen = Mutex::new(Vec::new());
    let threads = Mutex::new(HashSet::<ThreadId>::new());
    let caller = std::thread::current().id();
    let sum = parallel_sum(&data, workers, |x| {
        if let Some(seed) = seed {
            Jitter::new(seed, x + 1).pause();
        }
        seen.lock().expect("seen").push(x);
        threads
            .lock()
            .expect("threads")
            .insert(std::thread::current().id());
        weight(x)
    });
    progress.tick();
    let case = format!("{len} elements on {workers} workers");
    exactly_once(0..len, seen.into_inner().expect("seen")).map_err(|mut f| {
        f.property = "every element summed exactly once".into();
        f.detail = format!("{case}: {}", f.detail);
        f
    })?;
    let expected = data.iter().fold(0u64, |a, &x| a.wrapping_add(weight(x)));
    ensure(sum == expected, "the sum of f over every element", || {
        format!("{case}: got {sum:#x}, a plain loop gives {expected:#x}")
    })?;
    let threads = threads.into_inner().expect("threads");
    ensure(
        threads.len() <= workers,
        "at most `workers` threads",
        || format!("{case}: f ran on {} threads", threads.len()),
    )?;
    ensure(
        !threads.contains(&caller),
        "f runs on the scoped threads",
        || format!("{case}: f ran on the calling thread"),
    )?;
    ensure(
        len < 2 || workers < 2 || threads.len() >= 2,
        "the work is split between threads",
        || format!("{case}: everything ran on one thread"),
    )
}

pub fn all() -> Check {
    watchdog("scoped-sum", Duration::from_secs(10), |p| {
        for len in 0..=40 {
            for workers in 1..=9 {
                one_run(len, workers, None, p)?;
            }
        }
        stress(200, |seed| {
            let mut draw = Jitter::new(seed, 0);
            let len = draw.below(3_000);
            let workers = 1 + draw.below(12) as usize;
            one_run(len, workers, Some(seed), p)
        })
    })
}
