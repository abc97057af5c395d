// A plausible wrong solution of processes/06: the segment is created, used and dropped, and
// dropping it closes the mapping, nothing more: the name stays in /dev/shm, with its memory,
// after every run and after the program itself has ended, until the machine reboots. Python's
// `SharedMemory` has the same trap (`close()` without `unlink()`; its resource tracker then
// warns about "leaked shared_memory objects"). Every count is right.
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
    let segment = Segment::create(name, buckets)?;
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
