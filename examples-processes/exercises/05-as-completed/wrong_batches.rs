// A plausible wrong solution of processes/05: K jobs at a time, then wait for the whole batch
// before starting the next. The bound holds, and within a batch results come back as they end;
// but the slowest job of each batch keeps the other K-1 places idle, and a job that waits for a
// later one never ends.

use std::io;
use std::process::{Child, ExitStatus};
use std::time::Duration;

pub fn run_as_completed(
    jobs: usize,
    max_in_flight: usize,
    start: &mut dyn FnMut(usize) -> io::Result<Child>,
    on_done: &mut dyn FnMut(usize, ExitStatus),
) -> io::Result<()> {
    let mut next = 0;
    while next < jobs {
        let mut batch: Vec<(usize, Child)> = Vec::new();
        while batch.len() < max_in_flight.max(1) && next < jobs {
            batch.push((next, start(next)?));
            next += 1;
        }
        while !batch.is_empty() {
            let mut i = 0;
            while i < batch.len() {
                if let Some(status) = batch[i].1.try_wait()? {
                    let (job, _) = batch.swap_remove(i);
                    on_done(job, status);
                } else {
                    i += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(())
}
