// Checks of threads/06, compiled against the learner's file, the solution and each wrong one.
//
// A consumer stuck for good (waiting on a sender that never goes, or spinning on a closed
// channel) is reported by the watchdog, then released: `Rescue::release` is set, and each
// scenario's waiting loop drops the senders it kept, sends the stop, or stops feeding, so no
// stuck thread outlives the check (a spinning one would slow every test after it).

use crossbeam_channel::{Receiver, Sender, unbounded};
use shared::exercise::{Check, Jitter, Progress, ensure, exactly_once, stress, watchdog};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering as Mem};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::Duration;

/// The heartbeat of the stress runs: ticks come now and then between the jobs.
const HEARTBEAT: Duration = Duration::from_millis(2);

/// Between the scenarios and `all`: what they wait for, and "the watchdog has given up".
#[derive(Default)]
struct Rescue {
    /// The scenario running, for the watchdog's report (a spinning consumer is not asleep, so
    /// the watchdog cannot name it).
    waiting_for: std::sync::Mutex<String>,
    /// Set when the watchdog has given up: the scenarios then free the consumer they wait for.
    release: AtomicBool,
}

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass, which we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// What the consumer thread hands back: the report, the jobs it handled, its CPU time.
struct Consumed {
    report: ConsumerReport,
    seen: Vec<u64>,
    cpu: Duration,
}

/// Runs `consume` on a thread named "consumer" that records each job it handles (after
/// `on_job`, which may sleep or queue more work) and its own CPU time.
fn start_consumer<'s>(
    s: &'s Scope<'s, '_>,
    work: Receiver<u64>,
    stop: Receiver<()>,
    heartbeat: Duration,
    on_job: impl Fn(u64) + Send + 's,
    on_tick: impl FnMut(u64) + Send + 's,
) -> ScopedJoinHandle<'s, Consumed> {
    std::thread::Builder::new()
        .name("consumer".into())
        .spawn_scoped(s, move || {
            let start = thread_cpu();
            let mut seen = Vec::new();
            let report = consume(
                work,
                stop,
                heartbeat,
                |job| {
                    on_job(job);
                    seen.push(job);
                },
                on_tick,
            );
            Consumed {
                report,
                seen,
                cpu: thread_cpu().saturating_sub(start),
            }
        })
        .expect("spawn the consumer")
}

/// Waits for the consumer to return; if the watchdog gives up first, runs `free` (which
/// unblocks it) and then waits. A panic in `consume` (a `todo!()`) goes on to the watchdog.
fn wait(
    consumer: ScopedJoinHandle<'_, Consumed>,
    rescue: &Rescue,
    what: &str,
    free: impl FnOnce(),
) -> Consumed {
    if let Ok(mut w) = rescue.waiting_for.lock() {
        *w = what.to_string();
    }
    let mut free = Some(free);
    while !consumer.is_finished() {
        if rescue.release.load(Mem::SeqCst)
            && let Some(free) = free.take()
        {
            free();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    consumer
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finish {
    /// `stop.send(())`.
    StopSent,
    /// The stop's sender dropped.
    StopDropped,
    /// Every work sender dropped; the stop never fires.
    WorkClosed,
}

fn one_run(seed: u64, progress: &Progress, rescue: &Rescue) -> Check {
    let mut draw = Jitter::new(seed, 0);
    let producers = 1 + draw.below(3);
    let finish = match draw.below(6) {
        0 | 1 => Finish::WorkClosed,
        2 => Finish::StopDropped,
        _ => Finish::StopSent,
    };
    // Now and then, every job and the stop are queued before the consumer starts: then the stop
    // and the work are both ready from the first turn.
    let queued_first = finish != Finish::WorkClosed && draw.below(3) == 0;
    let per_producer = if queued_first {
        10 + draw.below(100)
    } else {
        draw.below(300)
    };
    let expected: Vec<u64> = (0..producers)
        .flat_map(|p| (0..per_producer).map(move |i| p * 1_000_000 + i))
        .collect();
    let (work_tx, work_rx) = unbounded::<u64>();
    let (stop_tx, stop_rx) = unbounded::<()>();
    // While it stands, the work channel cannot close: only the stop can end the loop.
    let mut keep_open = (finish != Finish::WorkClosed).then(|| work_tx.clone());
    let mut stop_tx = Some(stop_tx);
    let signal = |stop_tx: &mut Option<Sender<()>>| match finish {
        Finish::StopSent => {
            let _ = stop_tx.as_ref().map(|tx| tx.send(()));
        }
        Finish::StopDropped => drop(stop_tx.take()),
        Finish::WorkClosed => {}
    };
    let what = format!(
        "{producers} producers x {per_producer} jobs, {}, {}",
        match finish {
            Finish::StopSent => "then a stop sent",
            Finish::StopDropped => "then the stop's sender dropped",
            Finish::WorkClosed => "then every work sender dropped (no stop)",
        },
        if queued_first {
            "all queued before the consumer started"
        } else {
            "the consumer running"
        }
    );
    let consumed = std::thread::scope(|s| {
        if queued_first {
            for &job in &expected {
                let _ = work_tx.send(job);
            }
            signal(&mut stop_tx);
        }
        let slow = |job: u64| {
            Jitter::new(seed, job.wrapping_add(7)).pause(); // a consumer slower than producers
            progress.tick();
        };
        let consumer = start_consumer(s, work_rx, stop_rx, HEARTBEAT, slow, |_| {});
        if !queued_first {
            let handles: Vec<_> = (0..producers)
                .map(|p| {
                    let tx = work_tx.clone();
                    s.spawn(move || {
                        let mut j = Jitter::new(seed, 100 + p);
                        for i in 0..per_producer {
                            j.pause();
                            let _ = tx.send(p * 1_000_000 + i);
                        }
                    })
                })
                .collect();
            for h in handles {
                let _ = h.join();
            }
            signal(&mut stop_tx);
        }
        drop(work_tx);
        wait(consumer, rescue, &what, || {
            drop(keep_open.take());
            if let Some(tx) = stop_tx.take() {
                let _ = tx.send(());
            }
        })
    });
    exactly_once(expected.iter().copied(), consumed.seen.iter().copied()).map_err(|mut f| {
        f.property = "every job sent before the stop is handled, exactly once".into();
        f.detail = format!("{what}: {}", f.detail);
        f
    })?;
    let ended = if finish == Finish::WorkClosed {
        Ended::Closed
    } else {
        Ended::Stopped
    };
    ensure(consumed.report.ended == ended, "the right ending", || {
        format!("{what}: consume returned {:?}", consumed.report.ended)
    })?;
    ensure(
        consumed.report.handled == consumed.seen.len() as u64,
        "the report counts the jobs handled",
        || {
            format!(
                "{what}: handled {} jobs, reported {}",
                consumed.seen.len(),
                consumed.report.handled
            )
        },
    )
}

/// Every job queues a follow-up: the queue never empties. The drain must take the jobs sent
/// before the stop, not chase the follow-ups for ever.
fn the_drain_ends(progress: &Progress, rescue: &Rescue) -> Check {
    const FIRST: u64 = 50;
    let (work_tx, work_rx) = unbounded::<u64>();
    let (stop_tx, stop_rx) = unbounded::<()>();
    for job in 0..FIRST {
        let _ = work_tx.send(job);
    }
    let _ = stop_tx.send(());
    let feeding = AtomicBool::new(true);
    let consumed = std::thread::scope(|s| {
        let follow_up = |job: u64| {
            if job < FIRST {
                progress.tick(); // Only the first jobs are progress: the follow-ups never end.
            }
            if feeding.load(Mem::SeqCst) {
                let _ = work_tx.send(job + 1_000);
            }
        };
        let consumer = start_consumer(s, work_rx, stop_rx, HEARTBEAT, follow_up, |_| {});
        wait(
            consumer,
            rescue,
            &format!("{FIRST} jobs then a stop, each job queueing a follow-up"),
            || feeding.store(false, Mem::SeqCst),
        )
    });
    let first = consumed.seen.iter().copied().filter(|&j| j < FIRST);
    exactly_once(0..FIRST, first).map_err(|mut f| {
        f.property = "every job sent before the stop is handled, exactly once".into();
        f.detail = format!(
            "{FIRST} jobs then a stop, each job queueing a follow-up: {}",
            f.detail
        );
        f
    })?;
    ensure(
        consumed.report.ended == Ended::Stopped,
        "the right ending",
        || {
            format!(
                "a stop was sent, consume returned {:?}",
                consumed.report.ended
            )
        },
    )
}

/// No work for twenty heartbeats: the consumer must tick, and sleep in between. Its CPU time is
/// compared with a thread spinning over the same time, in the same run (a busy machine slows
/// both alike).
fn an_idle_consumer_sleeps(progress: &Progress, rescue: &Rescue) -> Check {
    const TICKS: u64 = 20;
    let (work_tx, work_rx) = unbounded::<u64>();
    let (stop_tx, stop_rx) = unbounded::<()>();
    let (tick_tx, tick_rx) = unbounded::<u64>();
    let stopping = AtomicBool::new(false);
    let (ticks, consumed, spinner_cpu) = std::thread::scope(|s| {
        let spinner = std::thread::Builder::new()
            .name("spinning-yardstick".into())
            .spawn_scoped(s, || {
                let start = thread_cpu();
                while !stopping.load(Mem::Relaxed) {
                    std::hint::spin_loop();
                }
                thread_cpu().saturating_sub(start)
            })
            .expect("spawn the spinner");
        let on_tick = |n: u64| {
            if !stopping.load(Mem::SeqCst) {
                progress.tick();
            }
            let _ = tick_tx.send(n);
        };
        let consumer = start_consumer(
            s,
            work_rx,
            stop_rx,
            Duration::from_millis(10),
            |_| {},
            on_tick,
        );
        let mut ticks = 0;
        while ticks < TICKS && !consumer.is_finished() && !rescue.release.load(Mem::SeqCst) {
            if tick_rx.recv_timeout(Duration::from_millis(20)).is_ok() {
                ticks += 1;
            }
        }
        stopping.store(true, Mem::SeqCst);
        let _ = stop_tx.send(());
        let consumed = wait(consumer, rescue, "no work, then a stop", || drop(work_tx));
        (ticks, consumed, spinner.join().unwrap_or_default())
    });
    ensure(
        ticks >= TICKS,
        "the heartbeat ticks while no work comes",
        || {
            format!(
                "{ticks} ticks, then consume returned {:?} before any stop",
                consumed.report.ended
            )
        },
    )?;
    ensure(
        consumed.cpu * 10 <= spinner_cpu,
        "no busy loop: an idle consumer sleeps",
        || {
            format!(
                "while idle for {TICKS} heartbeats of 10 ms, the consumer used {:.1} ms of CPU; a \
                 thread spinning over the same time got {:.1} ms",
                consumed.cpu.as_secs_f64() * 1e3,
                spinner_cpu.as_secs_f64() * 1e3
            )
        },
    )
}

pub fn all() -> Check {
    let rescue = Arc::new(Rescue::default());
    let r = Arc::clone(&rescue);
    let result = watchdog("stop-and-drain", Duration::from_secs(3), move |progress| {
        stress(60, |seed| one_run(seed, progress, &r))?;
        the_drain_ends(progress, &r)?;
        an_idle_consumer_sleeps(progress, &r)
    });
    // Free whatever the watchdog left behind (the scenario threads then finish on their own).
    rescue.release.store(true, Mem::SeqCst);
    result.map_err(|mut f| {
        let what = rescue
            .waiting_for
            .lock()
            .map(|w| w.clone())
            .unwrap_or_default();
        if f.detail.starts_with("no progress") && !what.is_empty() {
            f.detail = format!("{}\n  consume had not returned: {what}", f.detail);
        }
        f
    })
}
