// Exercise processes/06 — Counters shared by worker processes, and a name unlinked in time
//
// Concept: processes share nothing until they map the same pages. A file in /dev/shm, mapped
// `MAP_SHARED` by every worker, is one array of `AtomicU64` for all of them: `fetch_add` is as
// atomic between processes as between threads, while a `load` then a `store` loses the updates
// another process made in between (Python's `counter.value += 1` without its lock). The name in
// /dev/shm is a file: it outlives every process unless someone removes it. Remove it too early
// and the workers cannot map it; too late (or never) and a crash leaves it behind for good. The
// right moment is as soon as every worker has mapped it: the memory lives on until the last
// mapping goes. This is examples-processes' shared-memory in small.
//
// Goal: write `tally(counters, values)`, the worker's part: add 1 to `counters[v % len]` for
// each value `v`, while other processes do the same on the same counters. And write
// `count_in_workers(name, buckets, workers)`, the parent's part: create the segment `name`
// with `buckets` counters, start the workers with the name in their environment (`SEGMENT_ENV`),
// unlink the name once every worker is ready (it has mapped the segment), tell them to go, wait
// for them, and return the counters. On every path, errors included, nothing is left in /dev/shm.
//
// Hint: `support::Segment` is shared-memory.rs's segment, but dropping it only unmaps (Python's
// `close()`): `unlink()` is yours to call, and calling it twice is harmless. `support::Team`
// starts the workers and returns once each said "ready". Run the middle part in a helper
// function, and unlink after it whatever it returned.
//
// Checked by: 3 seeded runs of 2 to 4 worker processes (the checks' test binary, started
// again) each tallying a million values into 2 to 5 shared counters: every count exact, /dev/shm
// empty afterwards, and each worker, told to go, finds the name already gone; then a worker that
// fails before it is ready: an error, and /dev/shm still empty. A watchdog fails a hang in 10 s.
// Every wrong solution is caught on every run (20/20).
// Run: cargo run -p shared --bin exercises -- check processes/06

use std::io;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use support::{Segment, Team};

/// The environment variable that gives a worker the segment's name.
pub const SEGMENT_ENV: &str = "COUNTERS_SEGMENT";

/// The worker's part: one more in `counters[v % counters.len()]` for each `v` of `values`.
pub fn tally(counters: &[AtomicU64], values: &[u64]) {
    todo!("for each value, add 1 to its counter in one indivisible step")
}

/// The parent's part: `buckets` counters in the segment `name`, counted by `workers`.
pub fn count_in_workers(name: &str, buckets: usize, workers: Vec<Command>) -> io::Result<Vec<u64>> {
    todo!(
        "create the segment, start the team with SEGMENT_ENV set, unlink once all are ready, go, \
         wait, read the counters; unlink on the error paths too"
    )
}
