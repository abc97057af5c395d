// A plausible wrong solution of threads/06: on stop, `for job in &work` handles the rest, as
// part 1 of thread-channels reads its channel. But that loop ends only when every sender is
// gone, and a stop usually comes while producers (or anyone holding a sender) still live: the
// consumer waits for ever. It passes when the producers happen to be gone by then.
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
                for job in &work { // (wrong: blocks until every sender is dropped)
                    handle(job);
                    handled += 1;
                }
                return ConsumerReport { handled, ticks, ended: Ended::Stopped };
            },
        }
    }
}
