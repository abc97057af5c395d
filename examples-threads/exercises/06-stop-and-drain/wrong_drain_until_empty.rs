// A plausible wrong solution of threads/06: on stop, `while let Ok(job) = work.try_recv()`
// handles jobs until the queue is empty. That is more than what was sent before the stop: if
// jobs keep coming (producers still running, or jobs that queue follow-up jobs, as a crawler's
// pages queue links), the queue is never empty and the stop never takes effect.
use crossbeam_channel::{Receiver, select, tick};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Stopped,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerReport {
    pub handled: u64,
    pub ticks: u64,
    pub ended: Ended,
}

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
        select! {
            recv(work) -> job => match job {
                Ok(job) => {
                    handle(job);
                    handled += 1;
                }
                Err(_) => return ConsumerReport { handled, ticks, ended: Ended::Closed },
            },
            recv(ticker) -> _ => {
                ticks += 1;
                on_tick(handled);
            },
            recv(stop) -> _ => {
                while let Ok(job) = work.try_recv() { // (wrong: also takes what comes after)
                    handle(job);
                    handled += 1;
                }
                return ConsumerReport { handled, ticks, ended: Ended::Stopped };
            },
        }
    }
}
