// A plausible wrong solution of processes/06: the name is removed when the work is over, on
// every path, errors included. Every count is right and /dev/shm is empty afterwards, so it
// looks clean. But during the whole run the name sits in /dev/shm: if this process is killed
// (kill -9, the OOM killer, a power cut) while the workers count, nobody ever removes it.
// Unlinked once every worker is ready, it cannot be left behind.
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
    let counted = run_workers(&segment, workers);
    let unlinked = segment.unlink(); // (wrong: only now, after the work)
    let counts = counted?;
    unlinked?;
    Ok(counts)
}

fn run_workers(segment: &Segment, workers: Vec<Command>) -> io::Result<Vec<u64>> {
    let workers = workers
        .into_iter()
        .map(|mut worker| {
            worker.env(SEGMENT_ENV, segment.name());
            worker
        })
        .collect();
    let mut team = Team::start(workers)?;
    team.go()?;
    team.wait_all()?;
    Ok(segment
        .counters()
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect())
}
