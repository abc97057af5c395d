// A plausible wrong solution of threads/01: each thread gets `len / workers` items by index.
// The division rounds down, so the last `len % workers` items belong to no thread: 10 items on
// 3 threads sum items 0..9 and never item 9. It passes whenever the length happens to be a
// multiple of the worker count (a test with 1000 items on 4 threads).

pub fn parallel_sum<F>(data: &[u64], workers: usize, f: F) -> u64
where
    F: Fn(u64) -> u64 + Sync,
{
    let workers = workers.max(1);
    let size = data.len() / workers;
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|i| {
                let part = &data[i * size..(i + 1) * size];
                s.spawn(move || part.iter().fold(0u64, |acc, &x| acc.wrapping_add(f(x))))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("f does not panic"))
            .fold(0u64, u64::wrapping_add)
    })
}
