// A plausible wrong solution of processes/05: a window of K jobs, and a blocking `wait()` on
// the oldest one. The bound holds and every job is reported once, but in submission order: a
// slow first job holds back every result behind it, and the other K-1 places stay empty once
// their jobs are done. If the first job waits for the others (a server for its clients), this
// never ends.

use std::collections::VecDeque;
use std::io;
use std::process::{Child, ExitStatus};

pub fn run_as_completed(
    jobs: usize,
    max_in_flight: usize,
    start: &mut dyn FnMut(usize) -> io::Result<Child>,
    on_done: &mut dyn FnMut(usize, ExitStatus),
) -> io::Result<()> {
    let mut running: VecDeque<(usize, Child)> = VecDeque::new();
    let mut next = 0;
    while next < jobs || !running.is_empty() {
        while running.len() < max_in_flight.max(1) && next < jobs {
            running.push_back((next, start(next)?));
            next += 1;
        }
        if let Some((job, mut child)) = running.pop_front() {
            let status = child.wait()?;
            on_done(job, status);
        }
    }
    Ok(())
}
