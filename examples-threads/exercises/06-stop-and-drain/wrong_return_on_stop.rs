// A plausible wrong solution of threads/06: the stop arm returns at once. When the stop and
// some jobs are both ready, `select!` picks one of them at random, so the jobs still queued
// (sent before the stop) are dropped with the receiver. It passes whenever the consumer keeps
// up: the queue is empty by the time the stop arrives.
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
            // (wrong: the jobs already queued are lost)
            recv(stop) -> _ => return ConsumerReport { handled, ticks, ended: Ended::Stopped },
        }
    }
}
