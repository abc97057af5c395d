// Reference solution of processes/06 (see exercise.rs for the statement).

use std::io;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use support::{Segment, Team};

/// The environment variable that gives a worker the segment's name.
pub const SEGMENT_ENV: &str = "COUNTERS_SEGMENT";

/// The worker's part: one more in `counters[v % counters.len()]` for each `v` of `values`.
pub fn tally(counters: &[AtomicU64], values: &[u64]) {
    if counters.is_empty() {
        return;
    }
    let len = counters.len() as u64;
    for &v in values {
        // Read, add and write back in one instruction (`lock xadd` on x86-64): no other process
        // can slip in between. Relaxed: a count needs no ordering with anything else.
        counters[(v % len) as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// The parent's part: `buckets` counters in the segment `name`, counted by `workers`.
pub fn count_in_workers(name: &str, buckets: usize, workers: Vec<Command>) -> io::Result<Vec<u64>> {
    let mut segment = Segment::create(name, buckets)?;
    let counted = run_workers(&mut segment, workers);
    // Every path passes here: if the workers failed before the name was unlinked, it goes now.
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
    // Returns once every worker has mapped the segment (or fails, and kills the others).
    let mut team = Team::start(workers)?;
    // The name has served: the mappings keep the memory alive, and from now on a crash of
    // anyone leaves nothing behind in /dev/shm.
    segment.unlink()?;
    team.go()?;
    team.wait_all()?;
    // Relaxed is enough: each worker's exit, reaped by `wait`, orders its updates before us.
    Ok(segment
        .counters()
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect())
}
