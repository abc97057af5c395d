// Checks of threads/03, compiled against the learner's file, the solution and each wrong one.

use shared::exercise::{Check, Failure, Jitter, Progress, ensure, stress, watchdog};
use shared::report::panic_message;
use std::time::Duration;

/// 60 jobs submitted before any result is read, on 2 workers and a queue of 4.
fn all_values_come_back(seed: u64, progress: &Progress) -> Check {
    let pool = ThreadPool::new(2, 4).expect("spawning the pool");
    let receivers: Vec<_> = (0..60u64)
        .map(|i| {
            pool.execute_with_result(move || {
                Jitter::new(seed, i + 1).pause();
                let name = std::thread::current().name().unwrap_or("").to_owned();
                (i * i, name)
            })
        })
        .collect();
    // Read them in reverse order: each receiver is its own job's, whatever the order.
    for (i, rx) in receivers.iter().enumerate().rev() {
        let got = rx.recv().map_err(|_| {
            Failure::property(
                "every result comes back",
                format!("job {i}'s channel closed without a result"),
            )
        })?;
        let (value, thread) = got.map_err(|p| {
            Failure::property(
                "every result comes back",
                format!("job {i} did not panic, got Err({})", panic_message(&*p)),
            )
        })?;
        ensure(
            value == (i * i) as u64,
            "each receiver gets its own job's value",
            || format!("job {i} returned {value}, not {}", i * i),
        )?;
        ensure(
            thread.starts_with("pool-worker-"),
            "jobs run on the pool's workers",
            || format!("job {i} ran on thread {thread:?}"),
        )?;
        progress.tick();
    }
    Ok(())
}

/// On one worker: a panicking job, then a normal one. The panic arrives as an `Err` carrying its
/// message, and the worker survived to run the next job.
fn a_panic_is_delivered(progress: &Progress) -> Check {
    let pool = ThreadPool::new(1, 4).expect("spawning the pool");
    let boom = pool.execute_with_result(|| -> u32 { panic!("job 7 fails on purpose") });
    let next = pool.execute_with_result(|| 42u32);
    match boom.recv() {
        Ok(Err(payload)) => ensure(
            panic_message(&*payload).contains("job 7 fails on purpose"),
            "a panic is delivered as Err(payload)",
            || format!("the payload says {:?}", panic_message(&*payload)),
        )?,
        Ok(Ok(v)) => {
            return Err(Failure::property(
                "a panic is delivered as Err(payload)",
                format!("got Ok({v}) from a job that panicked"),
            ));
        }
        Err(_) => {
            return Err(Failure::property(
                "a panic is delivered as Err(payload)",
                "the channel closed without a result: the panic unwound past the sender and \
                 dropped it (catch it inside the job)",
            ));
        }
    }
    progress.tick();
    ensure(
        matches!(next.recv(), Ok(Ok(42))),
        "the worker survives a panicking job",
        || "the job after the panic did not return 42".into(),
    )
}

pub fn all() -> Check {
    watchdog("all-values", Duration::from_secs(3), |p| {
        stress(30, |seed| all_values_come_back(seed, p))
    })?;
    watchdog("panic", Duration::from_secs(3), a_panic_is_delivered)
}
