// A plausible wrong solution of threads/02: a static split. Each thread gets one contiguous
// chunk up front. Every job runs exactly once, but a slow job holds back every job queued
// behind it in its chunk, even while other threads are idle.

pub fn run_dynamic<F>(jobs: usize, workers: usize, work: F) -> Vec<u64>
where
    F: Fn(usize) -> u64 + Sync,
{
    let indexes: Vec<usize> = (0..jobs).collect();
    let chunk = jobs.div_ceil(workers.max(1)).max(1);
    std::thread::scope(|s| {
        let work = &work;
        let handles: Vec<_> = indexes
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(|&i| work(i)).collect::<Vec<u64>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("work does not panic"))
            .collect()
    })
}
