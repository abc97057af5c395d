// Checks of threads/04, compiled against the learner's file, the solution and each wrong one.

use shared::exercise::{Check, Failure, Jitter, Progress, ensure, exactly_once, stress, watchdog};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

const HOSTS: [&str; 3] = ["a.example", "b.example", "c.example"];

/// A fake fetch that counts requests in flight per host and remembers the most it saw.
#[derive(Default)]
struct FakeSite {
    in_flight: [AtomicUsize; 3],
    most: [AtomicUsize; 3],
    fetched: Mutex<Vec<usize>>,
}

impl FakeSite {
    fn fetch(&self, url: usize, host: usize, jitter: &mut Jitter) {
        let now = self.in_flight[host].fetch_add(1, Ordering::SeqCst) + 1;
        self.most[host].fetch_max(now, Ordering::SeqCst);
        // The request takes a little while: overlapping requests must really overlap.
        std::thread::sleep(Duration::from_micros(20 + jitter.below(80)));
        jitter.pause();
        self.in_flight[host].fetch_sub(1, Ordering::SeqCst);
        self.fetched.lock().expect("fetched").push(url);
    }
}

/// 8 workers, like url-downloader's, over 200 URLs on one to three hosts: several workers wait
/// for the same host at once, and race for each slot it frees.
fn never_over_the_limit(seed: u64, progress: &Progress) -> Check {
    let mut draw = Jitter::new(seed, 0);
    let per_host = 1 + draw.below(2) as usize;
    let hosts = 1 + draw.below(3);
    let urls: Vec<usize> = (0..200).map(|_| draw.below(hosts) as usize).collect();
    let limiter = HostLimiter::new(per_host);
    let site = FakeSite::default();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for w in 0..8u64 {
            let (limiter, site, next, urls) = (&limiter, &site, &next, &urls);
            s.spawn(move || {
                let mut jitter = Jitter::new(seed, w + 1);
                loop {
                    let url = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&host) = urls.get(url) else { break };
                    jitter.pause();
                    let _permit = limiter.acquire(HOSTS[host]);
                    site.fetch(url, host, &mut jitter);
                    progress.tick();
                }
            });
        }
    });
    for (h, host) in HOSTS.iter().enumerate() {
        let most = site.most[h].load(Ordering::SeqCst);
        ensure(
            most <= per_host,
            "never more than per_host requests in flight on a host",
            || format!("{most} requests at once on {host}, the limit is {per_host}"),
        )?;
    }
    exactly_once(0..urls.len(), site.fetched.into_inner().expect("fetched"))
}

/// Host A is full and stuck (its requests hang until released); requests to host B must go
/// through meanwhile.
fn a_stuck_host_does_not_block_the_others(progress: &Progress) -> Check {
    let limiter = Arc::new(HostLimiter::new(2));
    let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
    let (inside_tx, inside_rx) = mpsc::channel();
    let stuck: Vec<_> = (0..2)
        .map(|_| {
            let (limiter, gate, inside_tx) = (limiter.clone(), gate.clone(), inside_tx.clone());
            std::thread::spawn(move || {
                let _permit = limiter.acquire("slow.example");
                let _ = inside_tx.send(());
                let mut open = gate.0.lock().expect("gate");
                while !*open {
                    open = gate.1.wait(open).expect("gate");
                }
            })
        })
        .collect();
    drop(inside_tx);
    for _ in 0..2 {
        if inside_rx.recv().is_err() {
            // A stuck request panicked before it got in (a `todo!()`?): report its panic.
            for t in stuck {
                if let Err(payload) = t.join() {
                    std::panic::resume_unwind(payload);
                }
            }
            return Err(Failure::property("runs", "a request thread ended early"));
        }
        progress.tick();
    }
    // slow.example now has its 2 requests in flight, both hanging.
    let mut done = HashMap::new();
    for _ in 0..10 {
        let _permit = limiter.acquire("fast.example");
        *done.entry("fast").or_insert(0) += 1;
        progress.tick();
    }
    *gate.0.lock().expect("gate") = true;
    gate.1.notify_all();
    for t in stuck {
        t.join().expect("a stuck request");
    }
    ensure(
        done["fast"] == 10,
        "other hosts are never held back",
        || format!("{} of 10 requests to fast.example", done["fast"]),
    )
}

pub fn all() -> Check {
    watchdog(
        "other-hosts",
        Duration::from_secs(2),
        a_stuck_host_does_not_block_the_others,
    )
    .map_err(|mut f| {
        if f.detail.contains("no progress") {
            f.property = "other hosts are never held back".into();
            f.detail = format!(
                "a request to fast.example waited while slow.example was full: {}",
                f.detail
            );
        }
        f
    })?;
    watchdog("per-host", Duration::from_secs(5), |p| {
        stress(60, |seed| never_over_the_limit(seed, p))
    })
}
