// Reference solution of processes/05 (see exercise.rs for the statement).

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
    while next < jobs || !running.is_empty() {
        while running.len() < max_in_flight.max(1) && next < jobs {
            running.push((next, start(next)?));
            next += 1;
        }
        let mut reaped = false;
        let mut i = 0;
        while i < running.len() {
            if let Some(status) = running[i].1.try_wait()? {
                let (job, _) = running.swap_remove(i); // Reaped by `try_wait`.
                on_done(job, status);
                reaped = true;
            } else {
                i += 1;
            }
        }
        if !reaped {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(())
}
