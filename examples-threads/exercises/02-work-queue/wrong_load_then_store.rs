// A plausible wrong solution of threads/02: the cursor is read, then written back, in two steps.
// Between the `load` and the `store` another thread can load the same index: that job runs
// twice, and (when the stores cross) a later one is skipped.

use std::sync::atomic::{AtomicUsize, Ordering};

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
                        let i = next.load(Ordering::SeqCst);
                        next.store(i + 1, Ordering::SeqCst);
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
