// A plausible wrong solution of threads/06: the work arm handles a job when there is one and
// otherwise does nothing. But once every producer has dropped its sender, `recv(work)` is
// ready at once, every time, with an `Err`: the loop spins for ever, burning a core, and never
// returns. It passes as long as every run ends with a stop, never with a closed channel.
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
            recv(work) -> job => {
                if let Ok(job) = job {
                    handle(job);
                    handled += 1;
                }
                // (wrong: an `Err` means closed, and it will be there again next turn)
            },
            recv(ticker) -> _ => {
                ticks += 1;
                on_tick(handled);
            },
            recv(stop) -> _ => {
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
