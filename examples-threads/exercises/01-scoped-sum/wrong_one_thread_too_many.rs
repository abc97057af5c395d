// A plausible wrong solution of threads/01: chunks of `len / workers` items (at least 1). Every
// item is summed, but the remainder becomes a chunk of its own: 10 items on 3 workers make
// 3 + 3 + 3 + 1, four threads where three were asked for (and 5 items on 4 workers make five).
// The sum is right, so a test that only checks the sum passes.

pub fn parallel_sum<F>(data: &[u64], workers: usize, f: F) -> u64
where
    F: Fn(u64) -> u64 + Sync,
{
    let workers = workers.max(1);
    if data.is_empty() {
        return 0;
    }
    let chunk = (data.len() / workers).max(1);
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
