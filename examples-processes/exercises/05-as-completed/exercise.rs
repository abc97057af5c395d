// Exercise processes/05 — Results as they complete, with at most K processes in flight
//
// Concept: `ProcessPoolExecutor(max_workers=K)` with `as_completed` gives two promises at once:
// never more than K processes at a time (memory, CPU, file descriptors are finite), and each
// result handed over as soon as it exists, not in submission order: one slow job must not hold
// back the results of fast jobs submitted after it, nor keep the other K-1 places empty. Here each
// job is a process of its own (a `Command`), the shape of a build tool or a test runner.
//
// Goal: write `run_as_completed(jobs, max_in_flight, start, on_done)`: start job `i` with
// `start(i)`; never have more than `max_in_flight` children started and not yet reaped; as soon
// as one ends, reap it and call `on_done(i, status)` before starting the next job. Return once
// every job is done; each job is started and reported exactly once.
//
// Hint: keep the running children in a `Vec<(usize, Child)>`; poll them all with `try_wait()`,
// sleeping a millisecond when none has ended (std cannot wait for "whichever of these ends
// first"). Never call `waitpid(-1)`: it reaps children that belong to other code (here, the
// children of other tests).
//
// Checked by: 6 seeded stress runs (3 to 24 jobs of random length, K from 1 to 4): the number
// of children in flight at each start (never over K), every job reported exactly once with its
// own exit status; and a watchdog scenario where job 0 ends only after all the others have been
// reported: waiting in submission order, or by batches, never gets there ("no progress in 5 s").
// Every wrong solution is caught on every run (20/20).
// Run: cargo run -p shared --bin exercises -- check processes/05

use std::io;
use std::process::{Child, ExitStatus};
use std::time::Duration;

/// Runs jobs `0..jobs`, at most `max_in_flight` at once, reporting each as it ends.
pub fn run_as_completed(
    jobs: usize,
    max_in_flight: usize,
    start: &mut dyn FnMut(usize) -> io::Result<Child>,
    on_done: &mut dyn FnMut(usize, ExitStatus),
) -> io::Result<()> {
    let mut running: Vec<(usize, Child)> = Vec::new();
    let mut next = 0;
    todo!("fill up to max_in_flight; reap whichever child ends first, report it, start the next")
}
