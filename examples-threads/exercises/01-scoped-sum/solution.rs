// Reference solution of threads/01 (see exercise.rs for the statement).

/// `f(x)` summed over `data` (wrapping) on at most `workers` scoped threads, one contiguous chunk
/// each.
pub fn parallel_sum<F>(data: &[u64], workers: usize, f: F) -> u64
where
    F: Fn(u64) -> u64 + Sync,
{
    let workers = workers.max(1);
    if data.is_empty() {
        return 0; // `chunks(0)` would panic, and there is nothing to spawn a thread for
    }
    // Rounding *up* keeps the remainder: at most `workers` chunks, the last one shorter.
    let chunk = data.len().div_ceil(workers);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = data
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().fold(0u64, |acc, &x| acc.wrapping_add(f(x)))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("f does not panic"))
            .fold(0u64, u64::wrapping_add)
    })
}
