// A plausible wrong solution of processes/05: start every job, then report them as they end.
// Results do come back as they complete, and on a test with 4 jobs nobody notices the bound is
// ignored; with 10,000 jobs, 10,000 processes start at once (memory, the process table, the
// open files limit).

use std::io;
use std::process::{Child, ExitStatus};
use std::time::Duration;

pub fn run_as_completed(
    jobs: usize,
    max_in_flight: usize,
    start: &mut dyn FnMut(usize) -> io::Result<Child>,
    on_done: &mut dyn FnMut(usize, ExitStatus),
) -> io::Result<()> {
    let mut running: Vec<(usize, Child)> = Vec::new();
    for job in 0..jobs {
        running.push((job, start(job)?));
    }
    while !running.is_empty() {
        let mut i = 0;
        while i < running.len() {
            if let Some(status) = running[i].1.try_wait()? {
                let (job, _) = running.swap_remove(i);
                on_done(job, status);
            } else {
                i += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}
