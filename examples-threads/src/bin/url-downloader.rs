//! A URL downloader on a fixed pool of worker threads (blocking reqwest): per-request timeouts,
//! retries with backoff and jitter, temporary files renamed when complete, a cooperative stop.
//!
//! Course section **8.1 — Threading et multiprocessing**, the "Quand utiliser" case
//! *télécharger plusieurs URLs en parallèle*: I/O-bound work, where threads spend their time
//! waiting on the network. (Python's GIL is released while waiting, so threads work there too;
//! `examples-async` does the same with tasks instead of threads.)
//!
//! Crates: `reqwest = { version = "0.13", default-features = false, features = ["blocking", "rustls"] }`,
//! `crossbeam-channel = "0.5"`, `rand = "0.9"`, `thiserror = "2"`
//!
//! # Concepts
//! - `mod pool`: `--workers` named threads take jobs from one queue (a crossbeam channel filled up
//!   front and closed) and send reports back on another; the calling thread alone owns the
//!   results. One `reqwest::blocking::Client` for all: one connection pool, keep-alive reused.
//! - `mod fetch`: a timeout on every request (the blocking client defaults to 30 s, the async one
//!   to *none*); retries with exponential backoff and jitter on timeouts, connection errors,
//!   truncated bodies and 5xx, never on 4xx; the body streamed into a temporary file, its length
//!   checked against `Content-Length`, then renamed: a final name is always a complete file.
//! - Cooperative cancellation: Ctrl-C (or SIGTERM) sets a flag; workers stop taking jobs, abandon
//!   the body they are reading (deleting its temporary file) and cut backoff sleeps short. A
//!   blocking call cannot be interrupted: a worker waiting for headers stops only when they
//!   arrive or its timeout fires, the worst case of blocking I/O and one reason async exists. A
//!   second, separate Ctrl-C exits at once (status 130), after deleting every temporary file.
//! - The harness reads the URL list (`shared::urls`, shared with `async-downloader`): a bad line
//!   (not UTF-8, not a URL, not http) is reported with its number and skipped. Each URL is saved
//!   under its last path segment made safe, unique in the run even ignoring case (`file.txt`,
//!   then `file-2.txt`, never a name another line has), the same names on every run; it is
//!   written as `.<name>.part` until complete, a name no final file can have.
//!
//! # Run
//! ```text
//! cargo run --release -p examples-threads --bin url-downloader     # local server, 200 files, 32 workers
//! cargo run --release -p examples-threads --bin url-downloader -- --sequential --count 50
//! cargo run --release -p examples-threads --bin url-downloader -- --error-rate 0.1 \
//!     --truncate-rate 0.05 --hang-rate 0.02 --reset-rate 0.03 --timeout 1
//! cargo run --release -p examples-threads --bin url-downloader -- --urls urls.txt --out downloads
//! cargo run --release -p examples-threads --bin url-downloader -- --python  # + ThreadPoolExecutor
//! ```
//!
//! # What to observe
//! - The total time against the ideal `ceil(N/workers) × latency` (within about 10%), and the
//!   `--sequential` speedup, close to the worker count while the server keeps up.
//! - The worker lines: each thread's current file and attempt; `retry in 180 ms` after a fault.
//! - The summary separates what succeeded after retries from what failed and why; exit 1 if
//!   anything failed (bad lines included), 130 if interrupted. Ctrl-C stops within about one
//!   latency and leaves no `.part` file. `--python`: the same files, byte for byte, one table.
//!
//! # Exercises
//! 1. `--retries 0 --error-rate 0.2`, count the failures; then `--retries 3`. What is the
//!    probability a file still fails (0.2⁴)? Does the count match?
//! 2. Remove the jitter (`nominal` instead of `delay`), run with `--error-rate 0.5`: the
//!    server's `max_in_flight` shows the retries arriving in synchronized waves.
//! 3. Add a per-host limit (at most 4 requests at once per host) with a `Mutex<HashMap>` of
//!    counters and a `Condvar`, like a browser does (checked: `exercises -- check threads/04`).
//! 4. Resume: if the temporary file exists, send `Range: bytes=N-` and append.
//! 5. `--python` runs the course's ThreadPoolExecutor + urllib recipe on the same URLs: for
//!    I/O-bound work Python threads are fine; where does the time go in each?

// === Lesson: copy from here ===

/// What can go wrong with one attempt, and when to try again.
mod retry {
    use std::io;
    use std::path::PathBuf;
    use std::time::Duration;

    use rand::Rng;

    /// When and how long to retry.
    #[derive(Debug, Clone, Copy)]
    pub struct RetryPolicy {
        /// Attempts after the first one.
        pub retries: u32,
        /// Delay before the first retry; doubled for each further retry.
        pub base: Duration,
        /// No delay is longer than this.
        pub cap: Duration,
    }

    impl RetryPolicy {
        /// The un-jittered delay before retry number `retry` (0 = the first retry).
        pub fn nominal(&self, retry: u32) -> Duration {
            self.base
                .saturating_mul(2u32.saturating_pow(retry))
                .min(self.cap)
        }

        /// The delay actually slept: uniform in `[nominal/2, nominal]` ("equal jitter"). Without
        /// jitter, workers that failed together (a server hiccup) retry together, in waves that
        /// can knock the server over again; the random half spreads them out while keeping a
        /// guaranteed minimum wait.
        pub fn delay(&self, retry: u32, rng: &mut impl Rng) -> Duration {
            let half = self.nominal(retry) / 2;
            half + half.mul_f64(rng.random::<f64>())
        }
    }

    /// Why one attempt failed.
    #[derive(Debug, thiserror::Error)]
    pub enum FetchError {
        #[error("HTTP {0}")]
        Status(reqwest::StatusCode),
        #[error("timed out")]
        Timeout,
        #[error("connection failed: {0}")]
        Connect(String),
        #[error("transfer failed: {0}")]
        Transport(String),
        #[error("truncated body: {got} of {expected} bytes")]
        Truncated { got: u64, expected: u64 },
        #[error("cannot write {path}: {source}")]
        Write { path: PathBuf, source: io::Error },
        #[error("cancelled")]
        Cancelled,
    }

    impl FetchError {
        /// Worth another attempt? Transient failures yes; client errors (4xx), local disk errors
        /// and cancellation no. 429 (Too Many Requests) and 408 (Request Timeout) are the 4xx
        /// that mean "later": a production client would also honour `Retry-After`.
        pub fn retryable(&self) -> bool {
            match self {
                FetchError::Status(s) => {
                    s.is_server_error() || s.as_u16() == 429 || s.as_u16() == 408
                }
                FetchError::Timeout
                | FetchError::Connect(_)
                | FetchError::Transport(_)
                | FetchError::Truncated { .. } => true,
                FetchError::Write { .. } | FetchError::Cancelled => false,
            }
        }

        /// A short label to count failures by kind.
        pub fn kind(&self) -> String {
            match self {
                FetchError::Status(s) => format!("HTTP {}", s.as_u16()),
                FetchError::Timeout => "timeout".into(),
                FetchError::Connect(_) => "connect".into(),
                FetchError::Transport(_) => "connection".into(),
                FetchError::Truncated { .. } => "truncated".into(),
                FetchError::Write { .. } => "write".into(),
                FetchError::Cancelled => "cancelled".into(),
            }
        }

        pub fn from_reqwest(e: reqwest::Error) -> FetchError {
            if e.is_timeout() {
                FetchError::Timeout
            } else if e.is_connect() {
                FetchError::Connect(error_chain(&e))
            } else {
                // Connection reset, closed before the response, malformed response...
                FetchError::Transport(error_chain(&e))
            }
        }

        /// An error while reading the body: the blocking `Read` impl wraps reqwest's error in
        /// an `io::Error`, so look inside for a timeout.
        pub fn from_body_read(e: io::Error) -> FetchError {
            let timed_out = e.kind() == io::ErrorKind::TimedOut
                || e.get_ref()
                    .and_then(|inner| inner.downcast_ref::<reqwest::Error>())
                    .is_some_and(reqwest::Error::is_timeout);
            if timed_out {
                FetchError::Timeout
            } else {
                FetchError::Transport(error_chain(&e))
            }
        }
    }

    /// `error: cause: root cause` on one line (reqwest's top-level message alone is vague:
    /// "error sending request").
    fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            let msg = cause.to_string();
            if !text.contains(&msg) {
                text.push_str(": ");
                text.push_str(&msg);
            }
            source = cause.source();
        }
        text
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::collections::HashSet;

        #[test]
        fn backoff_doubles_is_capped_and_jittered() {
            let policy = RetryPolicy {
                retries: 10,
                base: Duration::from_millis(100),
                cap: Duration::from_secs(5),
            };
            let nominal: Vec<u128> = (0..8).map(|r| policy.nominal(r).as_millis()).collect();
            assert_eq!(nominal, vec![100, 200, 400, 800, 1600, 3200, 5000, 5000]);
            assert_eq!(
                policy.nominal(u32::MAX),
                Duration::from_secs(5),
                "no overflow"
            );
            let mut rng = rand::rng();
            for retry in 0..8 {
                let n = policy.nominal(retry);
                let delays: Vec<Duration> =
                    (0..200).map(|_| policy.delay(retry, &mut rng)).collect();
                assert!(
                    delays.iter().all(|d| *d >= n / 2 && *d <= n),
                    "retry {retry}"
                );
                // Jitter really spreads the delays (not all equal).
                let distinct: HashSet<Duration> = delays.into_iter().collect();
                assert!(distinct.len() > 100, "retry {retry}: {}", distinct.len());
            }
        }

        #[test]
        fn only_transient_failures_are_retried() {
            use reqwest::StatusCode;
            assert!(FetchError::Status(StatusCode::INTERNAL_SERVER_ERROR).retryable());
            assert!(FetchError::Status(StatusCode::SERVICE_UNAVAILABLE).retryable());
            assert!(FetchError::Status(StatusCode::TOO_MANY_REQUESTS).retryable());
            assert!(!FetchError::Status(StatusCode::NOT_FOUND).retryable());
            assert!(!FetchError::Status(StatusCode::FORBIDDEN).retryable());
            assert!(FetchError::Timeout.retryable());
            assert!(FetchError::Connect("refused".into()).retryable());
            assert!(
                FetchError::Truncated {
                    got: 1,
                    expected: 2
                }
                .retryable()
            );
            assert!(!FetchError::Cancelled.retryable());
            let write = FetchError::Write {
                path: "x".into(),
                source: io::Error::other("disk full"),
            };
            assert!(!write.retryable());
        }
    }
}

/// One download, with retries: what a worker does with each job.
mod fetch {
    use std::fs::{self, File};
    use std::io::{self, Read, Write};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread;
    use std::time::{Duration, Instant};

    use reqwest::Url;
    use reqwest::blocking::Client;

    pub use super::retry::{FetchError, RetryPolicy};

    /// One file to download: where from, where it ends, where it is written until complete.
    #[derive(Debug, Clone)]
    pub struct Job {
        pub url: Url,
        pub dest: PathBuf,
        /// Never a name another job's `dest` can have (the caller's naming rule promises it).
        pub temp: PathBuf,
    }

    /// What happened to one job.
    #[derive(Debug, Clone, Default)]
    pub struct FileReport {
        pub bytes: u64,
        pub attempts: u32,
        /// The kind of each failed attempt, in order ("HTTP 500", "timeout", ...).
        pub failed_attempts: Vec<String>,
        /// Why the file is missing; `None` when it was downloaded.
        pub error: Option<String>,
        pub cancelled: bool,
    }

    /// What a download is doing, for whoever watches (a progress line).
    pub enum Progress<'a> {
        Attempt(u32),
        Backoff {
            error: &'a FetchError,
            delay: Duration,
        },
    }

    /// Download `job` with retries. Never leaves `job.temp` behind; `job.dest` exists only if
    /// the whole body arrived.
    pub fn download(
        client: &Client,
        job: &Job,
        policy: RetryPolicy,
        stop: &AtomicBool,
        mut on_progress: impl FnMut(Progress<'_>),
    ) -> FileReport {
        let mut report = FileReport::default();
        let mut rng = rand::rng();
        loop {
            let retry = report.attempts; // retries so far = attempts so far
            report.attempts += 1;
            on_progress(Progress::Attempt(report.attempts));
            let error = match fetch_once(client, &job.url, &job.temp, stop)
                .and_then(|bytes| rename(&job.temp, &job.dest).map(|()| bytes))
            {
                Ok(bytes) => {
                    report.bytes = bytes;
                    return report;
                }
                Err(e) => e,
            };
            // Whatever went wrong, the partial file goes: it must never be mistaken for a result.
            let _ = fs::remove_file(&job.temp);
            if matches!(error, FetchError::Cancelled) {
                report.cancelled = true;
                report.error = Some(error.to_string());
                return report;
            }
            report.failed_attempts.push(error.kind());
            if !error.retryable() || retry == policy.retries {
                let n = report.attempts;
                report.error = Some(if error.retryable() {
                    format!(
                        "{error} (gave up after {n} attempt{})",
                        if n == 1 { "" } else { "s" }
                    )
                } else {
                    format!("{error} (not retried)")
                });
                return report;
            }
            let delay = policy.delay(retry, &mut rng);
            on_progress(Progress::Backoff {
                error: &error,
                delay,
            });
            if !sleep_unless_stopped(delay, stop) {
                report.cancelled = true;
                report.error = Some(FetchError::Cancelled.to_string());
                return report;
            }
        }
    }

    fn rename(from: &Path, to: &Path) -> Result<(), FetchError> {
        fs::rename(from, to).map_err(|source| FetchError::Write {
            path: to.to_owned(),
            source,
        })
    }

    /// One attempt: GET `url`, stream the body into `temp`, check its length. Returns the bytes.
    fn fetch_once(
        client: &Client,
        url: &Url,
        temp: &Path,
        stop: &AtomicBool,
    ) -> Result<u64, FetchError> {
        if stop.load(Ordering::Relaxed) {
            return Err(FetchError::Cancelled);
        }
        // Blocks until the response headers arrive (or the timeout fires): not interruptible.
        let mut response = client
            .get(url.clone())
            .send()
            .map_err(FetchError::from_reqwest)?;
        if !response.status().is_success() {
            // reqwest does not turn 4xx/5xx into errors: check, or you save the error page.
            return Err(FetchError::Status(response.status()));
        }
        let expected = response.content_length();
        let write_err = |source| FetchError::Write {
            path: temp.to_owned(),
            source,
        };
        let mut file = File::create(temp).map_err(write_err)?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0u64;
        loop {
            // Between chunks: the cancellation points of blocking code are where we put them.
            if stop.load(Ordering::Relaxed) {
                return Err(FetchError::Cancelled);
            }
            let n = match response.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(match FetchError::from_body_read(e) {
                        // The connection died before the promised length: say so.
                        FetchError::Transport(_) if expected.is_some_and(|len| got < len) => {
                            let expected = expected.unwrap_or(0);
                            FetchError::Truncated { got, expected }
                        }
                        other => other,
                    });
                }
            };
            file.write_all(&buf[..n]).map_err(write_err)?;
            got += n as u64;
        }
        // hyper already reports a body shorter than Content-Length as an error; this check also
        // covers servers that lie, and makes the rule explicit: never trust EOF alone.
        if let Some(expected) = expected.filter(|&len| len != got) {
            return Err(FetchError::Truncated { got, expected });
        }
        // Production code would `file.sync_all()` here (then rename, then fsync the directory)
        // to survive a power cut; "a complete name means a complete file" after a crash of this
        // process only needs the rename after the last write.
        file.flush().map_err(write_err)?;
        Ok(got)
    }

    /// Sleep for `d` in short slices; `false` (early) if `stop` is set.
    pub fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) -> bool {
        let deadline = Instant::now() + d;
        loop {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            thread::sleep((deadline - now).min(Duration::from_millis(25)));
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn sleep_unless_stopped_returns_early_when_stopped() {
            let stop = AtomicBool::new(true);
            assert!(!sleep_unless_stopped(Duration::from_secs(3600), &stop));
            let stop = AtomicBool::new(false);
            assert!(sleep_unless_stopped(Duration::from_millis(1), &stop));
        }

        #[test]
        fn a_refused_connection_is_reported_with_its_cause_and_leaves_no_file() {
            let dir = std::env::temp_dir().join(format!("fetch-test-{}", std::process::id()));
            fs::create_dir_all(&dir).unwrap();
            // Port 1 on loopback: nothing listens there, the kernel refuses at once.
            let job = Job {
                url: Url::parse("http://127.0.0.1:1/x.bin").unwrap(),
                dest: dir.join("x.bin"),
                temp: dir.join(".x.bin.part"),
            };
            let policy = RetryPolicy {
                retries: 1,
                base: Duration::from_millis(1),
                cap: Duration::from_millis(1),
            };
            let mut seen = Vec::new();
            let report = download(&Client::new(), &job, policy, &AtomicBool::new(false), |p| {
                if let Progress::Attempt(n) = p {
                    seen.push(n);
                }
            });
            assert_eq!(seen, vec![1, 2]);
            assert_eq!(report.failed_attempts, vec!["connect", "connect"]);
            let error = report.error.unwrap();
            assert!(error.to_lowercase().contains("refused"), "{error}");
            assert!(!job.dest.exists() && !job.temp.exists());
            let _ = fs::remove_dir_all(&dir);
        }
    }
}

/// The pool: worker threads around one job queue, one report channel and a stop flag.
mod pool {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread;
    use std::time::Duration;

    use reqwest::blocking::Client;

    use super::fetch::{self, FetchError, FileReport, Job, Progress, RetryPolicy};

    /// What happens during a run, for whoever watches (progress bars, logs).
    pub enum PoolEvent<'a> {
        /// Worker `worker` starts attempt `attempt` of job `job` (on the worker's thread).
        Attempt {
            worker: usize,
            job: usize,
            attempt: u32,
        },
        /// Worker `worker` waits `delay` before retrying job `job` (on the worker's thread).
        Backoff {
            worker: usize,
            job: usize,
            error: &'a FetchError,
            delay: Duration,
        },
        /// Worker `worker` has no more jobs (on the worker's thread).
        WorkerDone { worker: usize },
        /// Job `job` is over (on the calling thread).
        Finished { job: usize, report: &'a FileReport },
    }

    /// Download every job on `workers` threads; returns each job's report, in job order. Jobs
    /// never started (after `stop` was set) have no report.
    ///
    /// The job queue is a channel filled up front and closed (dropping its sender), so workers
    /// stop by themselves when it is empty; reports come back on a second channel to the calling
    /// thread, which alone owns the results: no lock anywhere.
    pub fn run_pool(
        client: &Client,
        jobs: &[Job],
        workers: usize,
        policy: RetryPolicy,
        stop: &AtomicBool,
        on_event: &(dyn Fn(PoolEvent<'_>) + Sync),
    ) -> Vec<(usize, FileReport)> {
        let workers = workers.clamp(1, jobs.len().max(1));
        // Capacity = the whole list: the jobs already exist in memory, so bounding this queue
        // would save nothing. (A crawler that *discovers* URLs would bound it; see
        // thread-channels.)
        let (job_tx, job_rx) = crossbeam_channel::bounded::<usize>(jobs.len().max(1));
        for index in 0..jobs.len() {
            job_tx
                .send(index)
                .expect("the queue has room for every job");
        }
        drop(job_tx);
        let (report_tx, report_rx) = crossbeam_channel::unbounded::<(usize, FileReport)>();
        let mut reports = Vec::with_capacity(jobs.len());
        thread::scope(|s| {
            for worker in 0..workers {
                let (job_rx, report_tx) = (job_rx.clone(), report_tx.clone());
                let spawned = thread::Builder::new()
                    .name(format!("download-{worker:02}"))
                    .spawn_scoped(s, move || {
                        for job in job_rx.iter() {
                            if stop.load(Ordering::Relaxed) {
                                break; // leave the rest of the queue untouched
                            }
                            let report = fetch::download(client, &jobs[job], policy, stop, |p| {
                                on_event(match p {
                                    Progress::Attempt(attempt) => PoolEvent::Attempt {
                                        worker,
                                        job,
                                        attempt,
                                    },
                                    Progress::Backoff { error, delay } => PoolEvent::Backoff {
                                        worker,
                                        job,
                                        error,
                                        delay,
                                    },
                                });
                            });
                            if report_tx.send((job, report)).is_err() {
                                break;
                            }
                        }
                        on_event(PoolEvent::WorkerDone { worker });
                    });
                // Out of threads or memory: carry on with those we have. The closure, with its
                // channel ends, was dropped, so nothing waits for it.
                if let Err(e) = spawned {
                    eprintln!("could start only {worker} of {workers} workers: {e}");
                    break;
                }
            }
            // Our copy must go, or the loop below would never see the end of the reports.
            drop(report_tx);
            for (job, report) in report_rx.iter() {
                on_event(PoolEvent::Finished {
                    job,
                    report: &report,
                });
                reports.push((job, report));
            }
        });
        reports.sort_by_key(|(job, _)| *job);
        reports
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::sync::Mutex;

        #[test]
        fn a_stopped_pool_starts_nothing_and_reports_nothing() {
            let jobs: Vec<Job> = (0..5)
                .map(|i| Job {
                    url: reqwest::Url::parse(&format!("http://127.0.0.1:1/{i}")).unwrap(),
                    dest: format!("/nonexistent/{i}").into(),
                    temp: format!("/nonexistent/.{i}.part").into(),
                })
                .collect();
            let policy = RetryPolicy {
                retries: 0,
                base: Duration::ZERO,
                cap: Duration::ZERO,
            };
            let events = Mutex::new(Vec::new());
            let on_event = |e: PoolEvent<'_>| {
                if let PoolEvent::WorkerDone { worker } = e {
                    events.lock().unwrap().push(worker);
                }
            };
            let stop = AtomicBool::new(true);
            let reports = run_pool(&Client::new(), &jobs, 3, policy, &stop, &on_event);
            assert!(reports.is_empty());
            let mut done = events.into_inner().unwrap();
            done.sort_unstable();
            assert_eq!(done, vec![0, 1, 2], "every worker ends");
        }
    }
}

// === Harness: not part of the lesson ===

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use fetch::{FileReport, Job, RetryPolicy};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use pool::{PoolEvent, run_pool};
use reqwest::blocking::Client;
use serde::Serialize;
use shared::cli;
use shared::report::{Row, SpeedupTable, fmt_bytes, fmt_duration, fmt_rate, print_json};
use shared::server::{FaultFlags, ServerConfig, TestServer};
use shared::urls::{BadLine, UrlJob, UrlList};

/// Download many URLs on a fixed pool of threads, with timeouts, retries and atomic files.
#[derive(Parser, Debug)]
#[command(name = "url-downloader", version)]
struct Args {
    /// File of URLs, one per line (`#` starts a comment line). Default: a local test server.
    #[arg(long)]
    urls: Option<PathBuf>,
    /// Directory to save into (created if missing).
    #[arg(long, default_value = "out-downloads")]
    out: PathBuf,
    /// Worker threads.
    #[arg(long, default_value_t = 32, value_parser = cli::usize_in(1, 1024))]
    workers: usize,
    /// Per-request timeout in seconds: connect + response headers, and each read of the body.
    #[arg(long, default_value = "10", value_parser = cli::seconds_in(0.001, 3600.0))]
    timeout: Duration,
    /// Retries after the first attempt, on timeouts, connection errors, truncated bodies, 5xx.
    #[arg(long, default_value_t = 3, value_parser = cli::u32_in(0, 100))]
    retries: u32,
    /// First backoff delay in milliseconds; doubles on each retry (capped at 5 s), with jitter.
    #[arg(long, default_value_t = 100, value_parser = cli::u64_in(0, 60_000))]
    backoff_ms: u64,
    /// Run the list one file at a time first, then with the pool, and print the speedup.
    #[arg(long)]
    sequential: bool,
    /// Also download the same list with the course's ThreadPoolExecutor + urllib recipe
    /// (examples-threads/python/url_downloader.py, same worker count, same names), compare both
    /// folders byte for byte and print both runs in one table.
    #[arg(long)]
    python: bool,
    /// Print the figures as one JSON object (no progress bars).
    #[arg(long)]
    json: bool,

    // --- The local test server (used when --urls is not given) ---
    /// Local server: number of files.
    #[arg(long, default_value_t = 200, help_heading = "Local test server", value_parser = cli::usize_in(1, 1_000_000))]
    count: usize,
    /// Local server: bytes per file (at most 1 GiB).
    #[arg(long, default_value_t = 64 * 1024, help_heading = "Local test server", value_parser = cli::usize_in(0, 1 << 30))]
    size: usize,
    /// Local server: latency of each response, in milliseconds (at most a minute).
    #[arg(long, default_value_t = 100, help_heading = "Local test server", value_parser = cli::u64_in(0, 60_000))]
    latency_ms: u64,
    #[command(flatten, next_help_heading = "Local test server")]
    rates: FaultFlags,
    /// Local server: seed of the fault draws (same seed, same fault rate).
    #[arg(long, default_value_t = 42, help_heading = "Local test server")]
    seed: u64,
}

/// One run over the whole list: each started job's report, in job order.
struct RunReport {
    files: Vec<(usize, FileReport)>,
    wall: Duration,
    workers: usize,
}

impl RunReport {
    fn ok(&self) -> usize {
        self.files.iter().filter(|(_, f)| f.error.is_none()).count()
    }
    fn failed(&self) -> impl Iterator<Item = &(usize, FileReport)> {
        self.files
            .iter()
            .filter(|(_, f)| f.error.is_some() && !f.cancelled)
    }
    fn bytes(&self) -> u64 {
        self.files.iter().map(|(_, f)| f.bytes).sum()
    }
    fn retries_by_kind(&self) -> BTreeMap<String, usize> {
        let mut kinds = BTreeMap::new();
        for (_, f) in &self.files {
            // A failed attempt followed by another attempt is a retry.
            let retried = f
                .failed_attempts
                .len()
                .min(f.attempts.saturating_sub(1) as usize);
            for kind in &f.failed_attempts[..retried] {
                *kinds.entry(kind.clone()).or_insert(0) += 1;
            }
        }
        kinds
    }
}

/// A failed file in the `--json` output (the fields scripts read).
#[derive(Serialize)]
struct FailedFile<'a> {
    line: usize,
    url: &'a str,
    name: &'a str,
    error: Option<&'a str>,
    bytes: u64,
    attempts: u32,
    failed_attempts: &'a [String],
    cancelled: bool,
}

impl<'a> FailedFile<'a> {
    fn new(job: &'a UrlJob, f: &'a FileReport) -> Self {
        FailedFile {
            line: job.line,
            url: job.url.as_str(),
            name: &job.file_name,
            error: f.error.as_deref(),
            bytes: f.bytes,
            attempts: f.attempts,
            failed_attempts: &f.failed_attempts,
            cancelled: f.cancelled,
        }
    }
}

/// Everything a run needs besides the worker count (the `--sequential` comparison runs twice).
struct Downloads<'a> {
    client: &'a Client,
    list: &'a UrlList,
    jobs: &'a [Job],
    policy: RetryPolicy,
    stop: &'a AtomicBool,
    json: bool,
}

impl Downloads<'_> {
    /// Runs the pool with progress bars: one line per worker, one overall bar.
    fn run(&self, workers: usize, label: &str) -> RunReport {
        let Downloads {
            client,
            list,
            jobs,
            policy,
            stop,
            json,
        } = *self;
        let mp: MultiProgress = shared::progress::multi(json);
        let overall = mp.add(shared::progress::bar(jobs.len() as u64, json));
        overall.set_style(overall_style());
        overall.set_prefix(label.to_owned());
        let lines: Vec<ProgressBar> = (0..workers.clamp(1, jobs.len().max(1)))
            .map(|id| shared::progress::worker_line(&mp, &format!("worker-{id:02}")))
            .collect();
        let bytes = AtomicU64::new(0);
        let start = Instant::now();
        let name = |job: usize| list.jobs[job].file_name.as_str();
        let on_event = |event: PoolEvent<'_>| match event {
            PoolEvent::Attempt {
                worker,
                job,
                attempt,
            } => {
                lines[worker].set_message(format!("{} (try {attempt})", name(job)));
            }
            PoolEvent::Backoff {
                worker,
                job,
                error,
                delay,
            } => {
                lines[worker].set_message(format!(
                    "{}: {} → retry in {}",
                    name(job),
                    error.kind(),
                    fmt_duration(delay)
                ));
            }
            PoolEvent::WorkerDone { worker } => lines[worker].finish_and_clear(),
            PoolEvent::Finished { job, report } => {
                let total = bytes.fetch_add(report.bytes, Ordering::Relaxed) + report.bytes;
                overall.inc(1);
                overall.set_message(format!(
                    "{} {}",
                    fmt_bytes(total),
                    fmt_rate(total as f64 / (1024.0 * 1024.0), start.elapsed(), "MiB")
                ));
                if let Some(err) = &report.error
                    && !report.cancelled
                {
                    let j = &list.jobs[job];
                    overall.println(format!("FAILED line {} {}: {err}", j.line, j.url));
                }
            }
        };
        let files = run_pool(client, jobs, workers, policy, stop, &on_event);
        overall.finish_and_clear();
        RunReport {
            files,
            wall: start.elapsed(),
            workers: workers.clamp(1, jobs.len().max(1)),
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let faults = args.rates.faults::<Args>();
    // `--python`: find python3 before any work; missing, it is a usage error (exit 2) whose
    // message names what to install.
    let python = match args
        .python
        .then(|| shared::python::Python::find(&[]))
        .transpose()
    {
        Ok(python) => python,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    };
    // SIGTERM too: a second, separate signal runs the forced-exit cleanups and exits (130).
    let stop = shared::shutdown::stop_flag_on_ctrl_c().context("installing the Ctrl-C handler")?;

    // The job list: from a file, or from a local server started here.
    let (server, list) = match &args.urls {
        Some(path) => {
            if faults.total() > 0.0 {
                eprintln!("note: fault rates apply to the local server only; ignored with --urls");
            }
            let list = shared::urls::read_url_file(path)
                .with_context(|| format!("reading the URL file {}", path.display()))?;
            (None, list)
        }
        None => {
            let server = TestServer::spawn(
                ServerConfig::default()
                    .latency(Duration::from_millis(args.latency_ms))
                    .file_size(args.size)
                    .faults(faults)
                    .seed(args.seed),
            )
            .context("starting the local test server")?;
            let urls = shared::server::url_list(&server.base_url(), args.count, args.size);
            (Some(server), shared::urls::url_list_of(&urls))
        }
    };
    let bad_lines = &list.bad_lines;
    for b in bad_lines {
        eprintln!("skipping line {}: {:?}: {}", b.line, b.text, b.reason);
    }
    fs::create_dir_all(&args.out)
        .with_context(|| format!("creating the output directory {}", args.out.display()))?;
    let jobs: Vec<Job> = list
        .jobs
        .iter()
        .map(|j| Job {
            url: j.url.clone(),
            dest: j.final_path(&args.out),
            temp: j.temp_path(&args.out),
        })
        .collect();
    // Even a forced exit (a second Ctrl-C while a worker is stuck in a read) leaves no `.part`.
    shared::urls::remove_temp_files_on_forced_exit(&list.jobs, &args.out);

    let client = Client::builder()
        .timeout(args.timeout)
        .connect_timeout(args.timeout)
        // Keep one idle connection per worker, so the next job reuses it (no new handshake).
        .pool_max_idle_per_host(args.workers)
        .user_agent(concat!("url-downloader/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")?;
    let policy = RetryPolicy {
        retries: args.retries,
        base: Duration::from_millis(args.backoff_ms),
        cap: Duration::from_secs(5),
    };
    let latency = Duration::from_millis(args.latency_ms);
    let rounds = |workers: usize| u32::try_from(jobs.len().div_ceil(workers)).unwrap_or(u32::MAX);
    let ideal = server
        .as_ref()
        .map(|_| latency.saturating_mul(rounds(args.workers)));

    let mut table = SpeedupTable::new(format!(
        "{} files, {} workers{}",
        jobs.len(),
        args.workers,
        if server.is_some() {
            format!(", local server with {} ms latency", args.latency_ms)
        } else {
            String::new()
        }
    ));
    let downloads = Downloads {
        client: &client,
        list: &list,
        jobs: &jobs,
        policy,
        stop: &stop,
        json: args.json,
    };
    let run = |workers: usize, label: &str| downloads.run(workers, label);

    let sequential = if args.sequential && !jobs.is_empty() {
        let r = run(1, "sequential");
        table.push(
            Row::new("sequential (1 worker)", r.wall)
                .ideal(latency.saturating_mul(rounds(1)))
                .note(format!("{} ok", r.ok())),
        );
        if let Some(server) = &server {
            server.stats_handle().reset();
        }
        Some(r)
    } else {
        None
    };
    let report = if stop.load(Ordering::Relaxed) {
        RunReport {
            files: Vec::new(),
            wall: Duration::ZERO,
            workers: args.workers,
        }
    } else {
        run(args.workers, "download")
    };
    let mut row = Row::new(format!("{} workers", report.workers), report.wall)
        .note(format!("{} ok", report.ok()));
    if let Some(ideal) = ideal {
        row = row.ideal(ideal);
    }
    table.push(row);

    // Verify the local server's files byte for byte: the content of each is known.
    let verified = server.as_ref().map(|_| {
        report
            .files
            .iter()
            .filter(|(_, f)| f.error.is_none())
            .filter(|(job, _)| {
                let j = &list.jobs[*job];
                let served = shared::server::file_name_of(j.url.as_str()).unwrap_or_default();
                fs::read(j.final_path(&args.out))
                    .is_ok_and(|body| shared::server::check_body(served, &body))
            })
            .count()
    });
    let server_stats = server.as_ref().map(TestServer::stats);
    // `--python` runs on the same server, still up, after ours: the same list, the same names.
    let python_run = match python {
        Some(py) if !stop.load(Ordering::Relaxed) => {
            Some(run_python(&py, &list, &args).context("running the Python recipe")?)
        }
        _ => None,
    };
    drop(server);
    let python_differs = python_run
        .as_ref()
        .is_some_and(|p| !p.differences.is_empty());

    let interrupted = stop.load(Ordering::Relaxed);
    let failed: Vec<FailedFile> = report
        .failed()
        .map(|(job, f)| FailedFile::new(&list.jobs[*job], f))
        .collect();
    let not_done = jobs.len() - report.ok() - failed.len();
    let retries = report.retries_by_kind();

    if args.json {
        print_json(&serde_json::json!({
            "example": "url-downloader",
            "urls": jobs.len(),
            "workers": report.workers,
            "ok": report.ok(),
            "failed": failed.len(),
            "not_done": not_done,
            "interrupted": interrupted,
            "bad_lines": bad_lines,
            "bytes": report.bytes(),
            "wall_s": report.wall.as_secs_f64(),
            "files_per_s": report.ok() as f64 / report.wall.as_secs_f64().max(1e-9),
            "bytes_per_s": report.bytes() as f64 / report.wall.as_secs_f64().max(1e-9),
            "ideal_s": ideal.map(|d| d.as_secs_f64()),
            "ratio_to_ideal": ideal.map(|d| report.wall.as_secs_f64() / d.as_secs_f64().max(1e-9)),
            "retries": retries,
            "failures": failed,
            "verified": verified,
            "sequential_wall_s": sequential.as_ref().map(|s| s.wall.as_secs_f64()),
            "speedup": sequential.as_ref().map(|_| table.speedup(1)),
            "server": server_stats,
            "table": table.to_json(),
            "python": python_run.as_ref().map(PythonRun::to_json),
        }));
    } else {
        print_summary(
            &args, &report, &failed, bad_lines, &retries, ideal, verified,
        );
        if sequential.is_some() {
            println!();
            table.print();
        }
        if let Some(p) = &python_run {
            print_python_table(&report, p, ideal);
        }
        if let Some(stats) = server_stats {
            println!(
                "server: {} requests, max {} in flight at once; injected faults: {} × 500, {} hang, {} truncated, {} reset",
                stats.requests,
                stats.max_in_flight,
                stats.faults_500,
                stats.faults_hang,
                stats.faults_truncate,
                stats.faults_reset
            );
        }
    }
    if interrupted {
        eprintln!("interrupted: {not_done} file(s) not downloaded; no .part file left behind");
        std::process::exit(130);
    }
    if !failed.is_empty() || !bad_lines.is_empty() || python_differs {
        std::process::exit(1);
    }
    Ok(())
}

/// What `--python` found: the recipe's JSON, and the files that differ from ours.
struct PythonRun {
    json: serde_json::Value,
    differences: Vec<String>,
}

impl PythonRun {
    fn to_json(&self) -> serde_json::Value {
        let mut json = self.json.clone();
        json["same_files"] = self.differences.is_empty().into();
        json["differences"] = self.differences.clone().into();
        json
    }
}

/// Runs examples-threads/python/url_downloader.py on the same jobs (URL and final name each)
/// into a scratch folder, then compares its files with ours, name by name and byte for byte.
fn run_python(
    py: &shared::python::Python,
    list: &UrlList,
    args: &Args,
) -> anyhow::Result<PythonRun> {
    let scratch =
        std::env::temp_dir().join(format!("url-downloader-python-{}", std::process::id()));
    let py_out = scratch.join("out");
    fs::create_dir_all(&py_out).with_context(|| format!("creating {}", py_out.display()))?;
    let dir = scratch.clone();
    shared::shutdown::on_forced_exit(move || {
        let _ = fs::remove_dir_all(&dir);
    });
    let jobs_file = scratch.join("jobs.tsv");
    shared::urls::write_job_file(&jobs_file, &list.jobs).context("writing the job file")?;
    if !args.json {
        println!(
            "\nrunning python/url_downloader.py ({}) on the same {} URLs into {}",
            py.version,
            list.jobs.len(),
            py_out.display()
        );
    }
    let (jobs_arg, out_arg) = (
        jobs_file.display().to_string(),
        py_out.display().to_string(),
    );
    let (workers, timeout, retries, backoff) = (
        args.workers.to_string(),
        args.timeout.as_secs_f64().to_string(),
        args.retries.to_string(),
        args.backoff_ms.to_string(),
    );
    let json = py
        .run_recipe(
            "examples-threads/python/url_downloader.py",
            &[
                &jobs_arg,
                &out_arg,
                "--workers",
                &workers,
                "--timeout",
                &timeout,
                "--retries",
                &retries,
                "--backoff-ms",
                &backoff,
            ],
        )?
        .json;
    let differences = shared::urls::compare_downloads(&list.jobs, &args.out, &py_out);
    fs::remove_dir_all(&scratch).with_context(|| format!("removing {}", scratch.display()))?;
    Ok(PythonRun { json, differences })
}

/// Both runs in one table: the course's ThreadPoolExecutor first (the baseline), then ours.
fn print_python_table(report: &RunReport, p: &PythonRun, ideal: Option<Duration>) {
    let py = &p.json;
    let mut table = SpeedupTable::new(format!(
        "\n{} URLs, {} threads each, the same server, the same file names",
        py["urls"], report.workers
    ));
    let wall = Duration::from_secs_f64(py["wall_s"].as_f64().unwrap_or(0.0).max(0.0));
    let cpu = Duration::from_secs_f64(py["cpu_s"].as_f64().unwrap_or(0.0).max(0.0));
    let mut python_row = Row::new(
        format!("ThreadPoolExecutor({}) + urllib", report.workers),
        wall,
    )
    .cpu(cpu)
    .note(format!(
        "{} ok, {} retries; Python {}",
        py["ok"],
        py["retries"],
        py["python"].as_str().unwrap_or("?")
    ));
    let mut rust_row = Row::new(
        format!("{} threads + blocking reqwest", report.workers),
        report.wall,
    )
    .agrees(p.differences.is_empty())
    .note(format!("{} ok", report.ok()));
    if let Some(ideal) = ideal {
        python_row = python_row.ideal(ideal);
        rust_row = rust_row.ideal(ideal);
    }
    table.push(python_row);
    table.push(rust_row);
    table.print();
    if p.differences.is_empty() {
        println!("same files: every name, size and byte identical in both folders");
    } else {
        println!("DIFFERENT files ({} shown):", p.differences.len());
        for d in &p.differences {
            println!("  {d}");
        }
    }
}

fn overall_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix:10} [{elapsed_precise}] [{wide_bar:.cyan/blue}] {pos}/{len} files  {msg}",
    )
    .expect("the template is valid")
    .progress_chars("=> ")
}

fn print_summary(
    args: &Args,
    report: &RunReport,
    failed: &[FailedFile],
    bad_lines: &[BadLine],
    retries: &BTreeMap<String, usize>,
    ideal: Option<Duration>,
    verified: Option<usize>,
) {
    let secs = report.wall.as_secs_f64().max(1e-9);
    println!(
        "downloaded {}/{} files, {} in {} with {} workers ({}, {}) into {}",
        report.ok(),
        report.files.len().max(report.ok()),
        fmt_bytes(report.bytes()),
        fmt_duration(report.wall),
        report.workers,
        fmt_rate(report.ok() as f64, report.wall, "files"),
        fmt_rate(
            report.bytes() as f64 / (1024.0 * 1024.0),
            report.wall,
            "MiB"
        ),
        args.out.display()
    );
    if let Some(ideal) = ideal {
        println!(
            "ideal ceil(N/workers) × latency = {} → took {:.2}× the ideal",
            fmt_duration(ideal),
            secs / ideal.as_secs_f64().max(1e-9)
        );
    }
    if let Some(v) = verified {
        println!(
            "verified: {v}/{} files match the server's content",
            report.ok()
        );
    }
    if retries.is_empty() {
        println!("retries: none");
    } else {
        let list: Vec<String> = retries.iter().map(|(k, n)| format!("{n} × {k}")).collect();
        println!(
            "retries: {} ({})",
            retries.values().sum::<usize>(),
            list.join(", ")
        );
    }
    if !failed.is_empty() {
        println!("failed ({}):", failed.len());
        for f in failed {
            println!(
                "  line {:>4}  {}: {}",
                f.line,
                f.url,
                f.error.unwrap_or("?")
            );
        }
    }
    if !bad_lines.is_empty() {
        println!("bad lines skipped ({}):", bad_lines.len());
        for b in bad_lines {
            println!("  line {:>4}  {:?}: {}", b.line, b.text, b.reason);
        }
    }
}
