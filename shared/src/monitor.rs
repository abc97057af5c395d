//! Monitoring: CPU% and memory of this process over time, an overload check, and the file
//! descriptor limit that servers must raise before they can hold thousands of sockets.
//!
//! It reads `/proc` and `getrusage` directly (Linux): a server that prints a stats line every few
//! seconds should not pull in a system-information crate that scans every process on the machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One reading of the process.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Sample {
    /// CPU used since the previous sample, in percent of one core (200 = two cores busy).
    pub cpu_percent: f64,
    /// Resident memory now, KiB.
    pub rss_kib: u64,
    /// OS threads in the process now.
    pub threads: u64,
}

/// Takes [`Sample`]s; CPU% is measured between two consecutive calls to [`Sampler::sample`].
#[derive(Debug)]
pub struct Sampler {
    last_at: Instant,
    last_cpu: Duration,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    pub fn new() -> Self {
        Sampler {
            last_at: Instant::now(),
            last_cpu: crate::report::self_cpu_time(),
        }
    }

    pub fn sample(&mut self) -> Sample {
        let now = Instant::now();
        let cpu = crate::report::self_cpu_time();
        let wall = now.duration_since(self.last_at).as_secs_f64();
        let used = cpu.saturating_sub(self.last_cpu).as_secs_f64();
        self.last_at = now;
        self.last_cpu = cpu;
        Sample {
            cpu_percent: if wall > 0.0 { 100.0 * used / wall } else { 0.0 },
            rss_kib: crate::report::current_rss_kib(),
            threads: crate::report::proc_status_field("Threads:"),
        }
    }
}

/// Limits past which a stats line turns into an overload warning.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// Percent of one core; e.g. 90% of all cores = `0.9 * 100 * cores`.
    pub cpu_percent: f64,
    pub rss_kib: u64,
}

impl Thresholds {
    /// 90% of every core, and `rss_mib` of memory.
    pub fn default_for_machine(rss_mib: u64) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Thresholds {
            cpu_percent: 90.0 * cores as f64,
            rss_kib: rss_mib * 1024,
        }
    }

    /// `Some(reason)` when `s` is past a threshold.
    pub fn check(&self, s: &Sample) -> Option<String> {
        let mut reasons = Vec::new();
        if s.cpu_percent > self.cpu_percent {
            reasons.push(format!(
                "cpu {:.0}% > {:.0}%",
                s.cpu_percent, self.cpu_percent
            ));
        }
        if s.rss_kib > self.rss_kib {
            reasons.push(format!(
                "rss {} MiB > {} MiB",
                s.rss_kib / 1024,
                self.rss_kib / 1024
            ));
        }
        (!reasons.is_empty()).then(|| format!("overload: {}", reasons.join(", ")))
    }
}

/// A background thread that calls `f` with a fresh [`Sample`] every `interval` until dropped.
///
/// For thread-based pools; an async server would use [`Sampler`] in a `tokio::time::interval`.
pub struct Reporter {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Reporter {
    pub fn spawn(interval: Duration, mut f: impl FnMut(Sample) + Send + 'static) -> Reporter {
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("monitor".into())
            .spawn(move || {
                let mut sampler = Sampler::new();
                // Sleep in small steps so dropping the reporter never waits a whole interval.
                let step = interval.min(Duration::from_millis(50));
                let mut next = Instant::now() + interval;
                while !s.load(Ordering::Acquire) {
                    std::thread::sleep(step);
                    if Instant::now() >= next {
                        f(sampler.sample());
                        next += interval;
                    }
                }
            })
            .expect("spawning the monitor thread");
        Reporter {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Raise the soft `RLIMIT_NOFILE` (open files, sockets included) to the hard limit and return the
/// new soft limit. Servers call it at start: the default soft limit (often 1024) caps how many
/// clients they can hold long before memory does.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        let new = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `new` is a valid rlimit; raising the soft limit up to the hard one is allowed
        // for unprivileged processes.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        lim = new;
    }
    Ok(lim.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_thread_shows_up_as_cpu() {
        let mut s = Sampler::new();
        let t0 = Instant::now();
        let mut x = 0u64;
        while t0.elapsed() < Duration::from_millis(200) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let sample = s.sample();
        assert!(sample.cpu_percent > 10.0, "{sample:?}");
        assert!(sample.rss_kib > 0);
        assert!(sample.threads >= 1);
    }

    #[test]
    fn thresholds_name_what_is_exceeded() {
        let t = Thresholds {
            cpu_percent: 150.0,
            rss_kib: 1024,
        };
        let calm = Sample {
            cpu_percent: 20.0,
            rss_kib: 512,
            threads: 3,
        };
        assert_eq!(t.check(&calm), None);
        let hot = Sample {
            cpu_percent: 190.0,
            rss_kib: 4096,
            threads: 3,
        };
        let msg = t.check(&hot).expect("over both limits");
        assert!(msg.contains("cpu 190% > 150%"), "{msg}");
        assert!(msg.contains("rss 4 MiB > 1 MiB"), "{msg}");
    }

    #[test]
    fn reporter_reports_then_stops_on_drop() {
        let (tx, rx) = std::sync::mpsc::channel();
        let r = Reporter::spawn(Duration::from_millis(10), move |s| {
            let _ = tx.send(s);
        });
        let first = rx.recv_timeout(Duration::from_secs(10)).expect("a sample");
        assert!(first.rss_kib > 0);
        drop(r);
        // After drop the thread is joined, so the sender is gone and the channel closes.
        while rx.recv_timeout(Duration::from_secs(10)).is_ok() {}
    }

    #[test]
    fn nofile_limit_is_raised_to_the_hard_limit() {
        let soft = raise_nofile_limit().expect("getrlimit works on Linux");
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: valid, writable rlimit.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(soft, lim.rlim_cur);
        assert_eq!(lim.rlim_cur, lim.rlim_max);
    }
}
