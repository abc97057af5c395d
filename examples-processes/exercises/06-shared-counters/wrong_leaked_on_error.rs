// A plausible wrong solution of processes/06: the name is unlinked at the right moment, once
// every worker is ready, but a worker that fails to start makes `Team::start(..)?` return
// early, past the `unlink`: the name stays in /dev/shm for good. Every run where all the
// workers start is perfect; the leak waits for the day one does not.
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
        counters[(v % len) as usize].fetch_add(1, Ordering::Relaxed);
    }
}

pub fn count_in_workers(name: &str, buckets: usize, workers: Vec<Command>) -> io::Result<Vec<u64>> {
    let mut segment = Segment::create(name, buckets)?;
    let workers = workers
        .into_iter()
        .map(|mut worker| {
            worker.env(SEGMENT_ENV, segment.name());
            worker
        })
        .collect();
    let mut team = Team::start(workers)?; // (wrong: an error here returns before the unlink)
    segment.unlink()?;
    team.go()?;
    team.wait_all()?;
    Ok(segment
        .counters()
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect())
}
