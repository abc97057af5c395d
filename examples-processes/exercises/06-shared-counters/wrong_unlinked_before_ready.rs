// A plausible wrong solution of processes/06: "the memory lives on until the last mapping
// goes", so the name is removed at once, to be safe. But only this process has mapped it yet:
// the workers, started next, look for the name to map it, and it is gone. It would work with
// `fork()` (a child inherits its parent's mappings), not with workers that attach by name.
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
    segment.unlink()?; // (wrong: no worker has mapped it yet)
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
