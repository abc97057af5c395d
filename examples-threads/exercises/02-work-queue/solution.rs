// Reference solution of threads/02 (see exercise.rs for the statement).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `work(i)` for each `i` in `0..jobs` on `workers` threads pulling from a shared cursor;
/// returns `[work(0), work(1), …]`.
pub fn run_dynamic<F>(jobs: usize, workers: usize, work: F) -> Vec<u64>
where
    F: Fn(usize) -> u64 + Sync,
{
    let next = AtomicUsize::new(0);
    let mut results = vec![0u64; jobs];
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers.max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        // Claim and advance in one step: no other thread can get this index.
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= jobs {
                            break mine;
                        }
                        mine.push((i, work(i)));
                    }
                })
            })
            .collect();
        for h in handles {
            for (i, v) in h.join().expect("work does not panic") {
                results[i] = v;
            }
        }
    });
    results
}
