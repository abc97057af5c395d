// A plausible wrong solution of processes/06: the count is read, then written back plus one, in
// two steps. Each step is atomic, the pair is not: between this worker's `load` and its
// `store`, another process adds its own updates, and the `store` overwrites them. It is
// `counter.value += 1` on a `multiprocessing.Value` without `get_lock()`. With one worker,
// or workers that happen not to overlap, every count is right.
use std::io;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use support::{Segment, Team};

pub const SEGMENT_ENV: &str = "COUNTERS_SEGMENT";

pub fn tally(counters: &[AtomicU64], values: &[u64]) {
    if counters.is_empty() {
        return;
    }
    let len = counters.len() as u64;
    for &v in values {
        let counter = &counters[(v % len) as usize];
        let now = counter.load(Ordering::SeqCst);
        counter.store(now + 1, Ordering::SeqCst);
    }
}

pub fn count_in_workers(name: &str, buckets: usize, workers: Vec<Command>) -> io::Result<Vec<u64>> {
    let mut segment = Segment::create(name, buckets)?;
    let counted = run_workers(&mut segment, workers);
    let unlinked = segment.unlink();
    let counts = counted?;
    unlinked?;
    Ok(counts)
}

fn run_workers(segment: &mut Segment, workers: Vec<Command>) -> io::Result<Vec<u64>> {
    let workers = workers
        .into_iter()
        .map(|mut worker| {
            worker.env(SEGMENT_ENV, segment.name());
            worker
        })
        .collect();
    let mut team = Team::start(workers)?;
    segment.unlink()?;
    team.go()?;
    team.wait_all()?;
    Ok(segment
        .counters()
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect())
}
