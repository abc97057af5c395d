// Exercise threads/01 — A scoped parallel sum, remainder included
//
// Concept: `std::thread::scope` lets threads borrow a local slice (no `Arc`, no copy) because
// every thread is joined before the scope returns (hello-threads, part 4). Splitting the slice is
// where the bugs hide: `len / workers` rounds down, so 10 items on 3 threads become 3 + 3 + 3 and
// item 9 is never summed; chunks of `len / workers` items make 3 + 3 + 3 + 1, one thread more
// than asked.
//
// Goal: write `parallel_sum(data, workers, f)`: the sum of `f(x)` over every `x` of `data`,
// wrapping on overflow (`u64::wrapping_add`), computed on at most `workers` scoped threads that
// each sum one contiguous chunk. `f` runs exactly once per element, and only on those threads.
// An empty slice spawns no thread and sums to 0.
//
// Hint: `data.chunks(data.len().div_ceil(workers))` yields at most `workers` chunks and keeps
// the remainder (the last chunk is the short one); `chunks(0)` panics, so handle an empty slice
// first. Spawn one thread per chunk with `s.spawn(move || …)`, then join every handle and add.
//
// Checked by: every length from 0 to 40 on 1 to 9 workers, then 200 seeded stress runs with
// jitter inside `f`: each element seen exactly once, the sum equal to a plain loop's, never more
// than `workers` threads calling `f`, and more than one when there is more than one element and
// more than one worker (a sequential loop is not the exercise). Deterministic: a wrong split is
// caught on every run.
// Run: cargo run -p shared --bin exercises -- check threads/01

/// `f(x)` summed over `data` (wrapping) on at most `workers` scoped threads, one contiguous chunk
/// each.
pub fn parallel_sum<F>(data: &[u64], workers: usize, f: F) -> u64
where
    F: Fn(u64) -> u64 + Sync,
{
    let workers = workers.max(1);
    todo!("split `data` into at most `workers` chunks, sum each on a scoped thread, add the sums")
}
