// A plausible wrong solution of threads/06: no `select!`, three `try_recv`s in a loop. Every
// job is handled, the drain is right, a closed channel ends it: each answer is correct. But
// `try_recv` never sleeps, so while nothing comes the loop asks again and again, millions of
// times a second: a whole core burnt to wait (and taken from the threads doing real work).
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

use crossbeam_channel::TryRecvError;

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
        match stop.try_recv() {
            Ok(()) | Err(TryRecvError::Disconnected) => {
                let queued = work.len();
                for job in work.try_iter().take(queued) {
                    handle(job);
                    handled += 1;
                }
                return ConsumerReport {
                    handled,
                    ticks,
                    ended: Ended::Stopped,
                };
            }
            Err(TryRecvError::Empty) => {}
        }
        match work.try_recv() {
            Ok(job) => {
                handle(job);
                handled += 1;
            }
            Err(TryRecvError::Disconnected) => {
                return ConsumerReport {
                    handled,
                    ticks,
                    ended: Ended::Closed,
                };
            }
            Err(TryRecvError::Empty) => {} // (wrong: and round again, at once)
        }
        if ticker.try_recv().is_ok() {
            ticks += 1;
            on_tick(handled);
        }
    }
}
