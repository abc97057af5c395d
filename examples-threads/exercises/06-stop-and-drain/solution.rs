// Reference solution of threads/06 (see exercise.rs for the statement).

use crossbeam_channel::{Receiver, select, tick};
use std::time::Duration;

/// Why `consume` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The stop fired; the jobs queued at that moment were handled first.
    Stopped,
    /// Every work sender was dropped and the queue was empty: nothing more can come.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerReport {
    pub handled: u64,
    pub ticks: u64,
    pub ended: Ended,
}

/// Handles `work` until `stop` fires (then drains what is queued) or `work` is closed, calling
/// `on_tick` at every heartbeat.
pub fn consume<T>(
    work: Receiver<T>,
    stop: Receiver<()>,
    heartbeat: Duration,
    mut handle: impl FnMut(T),
    mut on_tick: impl FnMut(u64),
) -> ConsumerReport {
    let ticker = tick(heartbeat);
    let (mut handled, mut ticks) = (0u64, 0u64);
    loop {
        // Sleeps until one arm is ready; when several are, runs one of them at random.
        select! {
            recv(work) -> job => match job {
                Ok(job) => {
                    handle(job);
                    handled += 1;
                }
                // Every sender is gone and the queue is empty: nothing more can come. (Ignored,
                // this `Err` would be ready again at once, for ever: a spin.)
                Err(_) => return ConsumerReport { handled, ticks, ended: Ended::Closed },
            },
            recv(ticker) -> _ => {
                ticks += 1;
                on_tick(handled);
            },
            // A message or a dropped sender: both mean stop.
            recv(stop) -> _ => {
                // Every job sent before the stop is queued now: handle those, and only those
                // (producers that keep sending would make "until empty" last for ever).
                let queued = work.len();
                for job in work.try_iter().take(queued) {
                    handle(job);
                    handled += 1;
                }
                return ConsumerReport { handled, ticks, ended: Ended::Stopped };
            },
        }
    }
}
