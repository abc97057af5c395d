//! A URL downloader on a fixed pool of worker threads (blocking reqwest): timeouts, retries with
//! backoff and jitter, `.part` files renamed when complete, Ctrl-C, progress bars, a summary.
//!
//! Course section **8.1 — Threading et multiprocessing**, the "Quand utiliser" case
//! *télécharger plusieurs URLs en parallèle*: I/O-bound work, where threads spend their time
//! waiting on the network. (Python's GIL is released while waiting, so threads work there too;
//! `examples-async` does the same with tasks instead of threads.)
//!
//! # Concepts
//! - A fixed pool: `--workers` named threads take jobs from one queue (a crossbeam channel, filled
//!   up front and closed) and send outcomes back on another; the main thread owns the summary.
//!   With 32 workers and 100 ms per file, 200 files take ceil(200/32) × 100 ms = 700 ms.
//! - One `reqwest::blocking::Client` shared by every thread (it is an `Arc` inside): one
//!   connection pool, keep-alive reused across jobs.
//! - Failure handling that production needs: a timeout on every request (reqwest's blocking
//!   client defaults to 30 s, the async one to *none*); retries with exponential backoff and
//!   jitter on connection errors, timeouts, truncated bodies and 5xx; never on 4xx (asking again
//!   will not make a missing page appear).
//! - Atomic results: each body is streamed into `name.part`, its length checked against
//!   `Content-Length`, then renamed to `name`. A file with its final name is always complete.
//! - Cooperative cancellation: Ctrl-C sets a flag; workers stop taking jobs, abandon the body
//!   they are reading (deleting its `.part`) and cut their backoff sleeps short. A blocking call
//!   cannot be interrupted, so a worker waiting for response headers stops only when they
//!   arrive or its timeout fires: that is the worst-case stop latency of blocking I/O, and one
//!   reason async exists. A second Ctrl-C exits at once (status 130).
//! - Input validation: a bad line of the URL file (not a URL, not http/https) is reported with
//!   its line number and skipped; the others are downloaded.
//!
//! # Run
//! ```text
//! # The demo: a local server (100 ms latency), 200 files, 32 workers.
//! cargo run --release -p examples-threads --bin url-downloader
//! # Against the same list one file at a time, then with the pool, and the speedup:
//! cargo run --release -p examples-threads --bin url-downloader -- --sequential --count 50
//! # A flaky server: watch the retries, then read the summary.
//! cargo run --release -p examples-threads --bin url-downloader -- --error-rate 0.1 \
//!     --truncate-rate 0.05 --hang-rate 0.02 --reset-rate 0.03 --timeout 1
//! # Real use: one URL per line, `#` comments.
//! cargo run --release -p examples-threads --bin url-downloader -- --urls urls.txt --out downloads
//! ```
//! Press Ctrl-C during a run: it stops within about one latency and leaves no `.part` file.
//!
//! # What to observe
//! - The total time against the ideal `ceil(N/workers) × latency` (within ~10%), and the
//!   `--sequential` speedup (close to the worker count while the server keeps up).
//! - The worker lines: each thread's current file and attempt; `retry in 180 ms` after a fault.
//! - The summary separates what succeeded after retries from what failed and why; the exit code
//!   is 1 if anything failed (bad lines included), 130 if interrupted.
//!
//! # Exercises
//! 1. Set `--retries 0 --error-rate 0.2` and count the failures; then `--retries 3`. What is the
//!    probability a file still fails (0.2⁴)? Does the count match?
//! 2. Remove the jitter (`delay` instead of the randomised value) and run with 32 workers and
//!    `--error-rate 0.5`. Watch the server's `max_in_flight`: retries arrive in synchronized waves.
//! 3. Add a per-host limit (at most 4 requests at once to the same host) with a `Mutex<HashMap>`
//!    of counters and a `Condvar`, like a browser does.
//! 4. Support resuming: if `name.part` exists, send `Range: bytes=N-` and append.
//! 5. Run `/work/shared/peers/py_downloader.py` (ThreadPoolExecutor) on the same URL file and
//!    compare: for I/O-bound work, Python threads are fine; where does the time go in each?

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use crossbeam_channel::{Receiver, Sender};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use rand::Rng;
use reqwest::Url;
use reqwest::blocking::Client;
use serde::Serialize;
use shared::report::{Row, SpeedupTable, fmt_bytes, fmt_duration, fmt_rate, print_json};
use shared::server::{Faults, ServerConfig, TestServer};

/// Download many URLs on a fixed pool of threads, with timeouts, retries and atomic files.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// File of URLs, one per line (`#` starts a comment line). Default: a local test server.
    #[arg(long)]
    urls: Option<PathBuf>,
    /// Directory to save into (created if missing).
    #[arg(long, default_value = "out-downloads")]
    out: PathBuf,
    /// Worker threads.
    #[arg(long, default_value_t = 32)]
    workers: usize,
    /// Per-request timeout in seconds: connect + response headers, and each read of the body.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Retries after the first attempt, on timeouts, connection errors, truncated bodies, 5xx.
    #[arg(long, default_value_t = 3)]
    retries: u32,
    /// First backoff delay in milliseconds; doubles on each retry (capped at 5 s), with jitter.
    #[arg(long, default_value_t = 100)]
    backoff_ms: u64,
    /// Run the list one file at a time first, then with the pool, and print the speedup.
    #[arg(long)]
    sequential: bool,
    /// Print the figures as one JSON object (no progress bars).
    #[arg(long)]
    json: bool,

    // --- The local test server (used when --urls is not given) ---
    /// Local server: number of files.
    #[arg(long, default_value_t = 200, help_heading = "Local test server")]
    count: usize,
    /// Local server: bytes per file.
    #[arg(long, default_value_t = 64 * 1024, help_heading = "Local test server")]
    size: usize,
    /// Local server: latency of each response, in milliseconds.
    #[arg(long, default_value_t = 100, help_heading = "Local test server")]
    latency_ms: u64,
    /// Local server: probability that a request gets a 500.
    #[arg(long, default_value_t = 0.0, help_heading = "Local test server")]
    error_rate: f64,
    /// Local server: probability that a request never gets an answer (needs --timeout).
    #[arg(long, default_value_t = 0.0, help_heading = "Local test server")]
    hang_rate: f64,
    /// Local server: probability that a body is cut in half (connection closed early).
    #[arg(long, default_value_t = 0.0, help_heading = "Local test server")]
    truncate_rate: f64,
    /// Local server: probability that the connection is reset before the response.
    #[arg(long, default_value_t = 0.0, help_heading = "Local test server")]
    reset_rate: f64,
    /// Local server: seed of the fault draws (same seed, same fault rate).
    #[arg(long, default_value_t = 42, help_heading = "Local test server")]
    seed: u64,
}

// ------------------------------------------------------------------------------------------------
// Input: the URL list
// ------------------------------------------------------------------------------------------------

/// One URL to download, with where it came from and where it goes.
#[derive(Debug, Clone, PartialEq)]
struct Job {
    /// 1-based line in the URL file (or position in the generated list).
    line: usize,
    url: Url,
    /// File name in the output directory (unique within the run).
    name: String,
}

/// A line of the URL file that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct BadLine {
    line: usize,
    text: String,
    reason: String,
}

/// Parse a URL file: one URL per line, blank lines and `#` comments ignored. Bad lines are
/// returned with their line numbers instead of failing the whole file: one typo should not
/// cancel a thousand good downloads.
fn parse_url_list(text: &str) -> (Vec<Job>, Vec<BadLine>) {
    let mut jobs = Vec::new();
    let mut bad = Vec::new();
    let mut taken = HashSet::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let reject = |reason: String| BadLine {
            line,
            text: trimmed.to_owned(),
            reason,
        };
        match Url::parse(trimmed) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {
                let name = file_name_for(&url, line, &mut taken);
                jobs.push(Job { line, url, name });
            }
            Ok(url) => bad.push(reject(format!(
                "unsupported scheme {:?} (only http and https)",
                url.scheme()
            ))),
            Err(e) => bad.push(reject(format!("not a URL: {e}"))),
        }
    }
    (jobs, bad)
}

/// A safe, unique file name for `url`: its last path segment with anything but
/// `[A-Za-z0-9._-]` replaced by `_` (no `..`, no `/`: a URL must not write outside `--out`).
/// Empty names become `download-LINE`; a name already taken gets `-LINE` before its extension.
fn file_name_for(url: &Url, line: usize, taken: &mut HashSet<String>) -> String {
    let last = url
        .path_segments()
        .and_then(|mut segments| segments.next_back())
        .unwrap_or("");
    let mut name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.trim_matches('.').is_empty() || name.ends_with(".part") {
        name = format!("download-{line}");
    }
    if taken.contains(&name) {
        name = match name.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => format!("{stem}-{line}.{ext}"),
            _ => format!("{name}-{line}"),
        };
    }
    taken.insert(name.clone());
    name
}

// ------------------------------------------------------------------------------------------------
// Retries
// ------------------------------------------------------------------------------------------------

/// When and how long to retry.
#[derive(Debug, Clone, Copy)]
struct RetryPolicy {
    /// Attempts after the first one.
    retries: u32,
    /// Delay before the first retry; doubled for each further retry.
    base: Duration,
    /// No delay is longer than this.
    cap: Duration,
}

impl RetryPolicy {
    /// The un-jittered delay before retry number `retry` (0 = the first retry).
    fn nominal(&self, retry: u32) -> Duration {
        self.base
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.cap)
    }

    /// The delay actually slept: uniform in `[nominal/2, nominal]` ("equal jitter"). Without
    /// jitter, workers that failed together (a server hiccup) retry together, in waves that
    /// can knock the server over again; the random half spreads them out while keeping a
    /// guaranteed minimum wait.
    fn delay(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let nominal = self.nominal(retry);
        let half = nominal / 2;
        half + half.mul_f64(rng.random::<f64>())
    }
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
enum FetchError {
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
    fn retryable(&self) -> bool {
        match self {
            FetchError::Status(s) => s.is_server_error() || s.as_u16() == 429 || s.as_u16() == 408,
            FetchError::Timeout
            | FetchError::Connect(_)
            | FetchError::Transport(_)
            | FetchError::Truncated { .. } => true,
            FetchError::Write { .. } | FetchError::Cancelled => false,
        }
    }

    /// A short label to count failures by kind.
    fn kind(&self) -> String {
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

    fn from_reqwest(e: reqwest::Error) -> FetchError {
        if e.is_timeout() {
            FetchError::Timeout
        } else if e.is_connect() {
            FetchError::Connect(error_chain(&e))
        } else {
            // Connection reset, closed before the response, malformed response...
            FetchError::Transport(error_chain(&e))
        }
    }

    /// An error while reading the body: the blocking `Read` impl wraps reqwest's error in an
    /// `io::Error`, so look inside for a timeout.
    fn from_body_read(e: io::Error) -> FetchError {
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

// ------------------------------------------------------------------------------------------------
// One download
// ------------------------------------------------------------------------------------------------

/// Everything a worker needs, shared by reference by all of them.
struct Ctx<'a> {
    client: &'a Client,
    out: &'a Path,
    policy: RetryPolicy,
    stop: &'a AtomicBool,
    /// Overall bar: position = files finished, message = bytes and rate.
    overall: &'a ProgressBar,
}

/// What happened to one job.
#[derive(Debug, Clone, Serialize)]
struct Outcome {
    line: usize,
    url: String,
    name: String,
    /// `None` when the file was downloaded.
    error: Option<String>,
    bytes: u64,
    attempts: u32,
    /// The kind of each failed attempt, in order ("HTTP 500", "timeout", ...).
    failed_attempts: Vec<String>,
    cancelled: bool,
}

/// Download `job` with retries. Never leaves `name.part` behind; `name` exists only if the
/// whole body arrived.
fn download(ctx: &Ctx, job: &Job, line: &ProgressBar) -> Outcome {
    let mut outcome = Outcome {
        line: job.line,
        url: job.url.to_string(),
        name: job.name.clone(),
        error: None,
        bytes: 0,
        attempts: 0,
        failed_attempts: Vec::new(),
        cancelled: false,
    };
    let part = ctx.out.join(format!("{}.part", job.name));
    let done = ctx.out.join(&job.name);
    let mut rng = rand::rng();
    for retry in 0..=ctx.policy.retries {
        outcome.attempts += 1;
        line.set_message(format!("{} (try {})", job.name, outcome.attempts));
        let result = fetch_once(ctx, &job.url, &part).and_then(|bytes| {
            fs::rename(&part, &done)
                .map(|()| bytes)
                .map_err(|source| FetchError::Write {
                    path: done.clone(),
                    source,
                })
        });
        let error = match result {
            Ok(bytes) => {
                outcome.bytes = bytes;
                return outcome;
            }
            Err(e) => e,
        };
        // Whatever went wrong, the partial file goes: it must never be mistaken for a result.
        let _ = fs::remove_file(&part);
        if matches!(error, FetchError::Cancelled) {
            outcome.cancelled = true;
            outcome.error = Some(error.to_string());
            return outcome;
        }
        outcome.failed_attempts.push(error.kind());
        if !error.retryable() || retry == ctx.policy.retries {
            outcome.error = Some(if error.retryable() {
                format!(
                    "{error} (gave up after {} attempt{})",
                    outcome.attempts,
                    if outcome.attempts == 1 { "" } else { "s" }
                )
            } else {
                format!("{error} (not retried)")
            });
            return outcome;
        }
        let delay = ctx.policy.delay(retry, &mut rng);
        line.set_message(format!(
            "{}: {} → retry in {}",
            job.name,
            error.kind(),
            fmt_duration(delay)
        ));
        if !sleep_unless_stopped(delay, ctx.stop) {
            outcome.cancelled = true;
            outcome.error = Some("cancelled".into());
            return outcome;
        }
    }
    unreachable!("the loop returns on its last attempt")
}

/// One attempt: GET `url`, stream the body into `part`, check its length. Returns the bytes.
fn fetch_once(ctx: &Ctx, url: &Url, part: &Path) -> Result<u64, FetchError> {
    if ctx.stop.load(Ordering::Relaxed) {
        return Err(FetchError::Cancelled);
    }
    // Blocks until the response headers arrive (or the timeout fires): not interruptible.
    let mut response = ctx
        .client
        .get(url.clone())
        .send()
        .map_err(FetchError::from_reqwest)?;
    let status = response.status();
    if !status.is_success() {
        // reqwest does not turn 4xx/5xx into errors by itself: check, or you save the error page.
        return Err(FetchError::Status(status));
    }
    let expected = response.content_length();
    let write_err = |source| FetchError::Write {
        path: part.to_owned(),
        source,
    };
    let mut file = File::create(part).map_err(write_err)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0u64;
    loop {
        // Check between chunks: the cancellation points of blocking code are where we put them.
        if ctx.stop.load(Ordering::Relaxed) {
            return Err(FetchError::Cancelled);
        }
        let n = match response.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(match FetchError::from_body_read(e) {
                    // The connection died before the promised length: name it for what it is.
                    FetchError::Transport(_) if expected.is_some_and(|len| got < len) => {
                        FetchError::Truncated {
                            got,
                            expected: expected.unwrap_or(0),
                        }
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
    if let Some(expected) = expected
        && got != expected
    {
        return Err(FetchError::Truncated { got, expected });
    }
    // Production code would `file.sync_all()` here (then rename, then fsync the directory) to
    // survive a power cut; we only need "a complete name means a complete file" for crashes of
    // this process, which `rename` after the last write already gives.
    file.flush().map_err(write_err)?;
    Ok(got)
}

/// Sleep for `d` in short slices, returning `false` early if `stop` is set.
fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) -> bool {
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

// ------------------------------------------------------------------------------------------------
// The pool
// ------------------------------------------------------------------------------------------------

/// The result of one run over the whole list.
struct RunReport {
    outcomes: Vec<Outcome>,
    wall: Duration,
    workers: usize,
}

impl RunReport {
    fn ok(&self) -> usize {
        self.outcomes.iter().filter(|o| o.error.is_none()).count()
    }
    fn failed(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes
            .iter()
            .filter(|o| o.error.is_some() && !o.cancelled)
    }
    fn bytes(&self) -> u64 {
        self.outcomes.iter().map(|o| o.bytes).sum()
    }
    fn retries_by_kind(&self) -> BTreeMap<String, usize> {
        let mut kinds = BTreeMap::new();
        for o in &self.outcomes {
            // A failed attempt followed by another attempt is a retry.
            let retried = o
                .failed_attempts
                .len()
                .min(o.attempts.saturating_sub(1) as usize);
            for kind in &o.failed_attempts[..retried] {
                *kinds.entry(kind.clone()).or_insert(0) += 1;
            }
        }
        kinds
    }
}

/// Download every job on `workers` threads. The job queue is a channel filled up front and
/// closed (dropping its sender), so workers stop by themselves when it is empty; outcomes come
/// back on a second channel to this thread, which alone owns the results (no lock needed).
fn run_pool(jobs: &[Job], workers: usize, ctx: &Ctx, mp: &MultiProgress) -> RunReport {
    let workers = workers.clamp(1, jobs.len().max(1));
    let start = Instant::now();
    // Capacity = the whole list: the jobs already exist in memory, so bounding this queue
    // would save nothing. (A crawler that *discovers* URLs would bound it; see thread-channels.)
    let (job_tx, job_rx) = crossbeam_channel::bounded::<&Job>(jobs.len().max(1));
    for job in jobs {
        job_tx.send(job).expect("the queue has room for every job");
    }
    drop(job_tx);
    let (out_tx, out_rx) = crossbeam_channel::unbounded::<Outcome>();
    let mut outcomes = Vec::with_capacity(jobs.len());
    thread::scope(|s| {
        for id in 0..workers {
            let (job_rx, out_tx): (Receiver<&Job>, Sender<Outcome>) =
                (job_rx.clone(), out_tx.clone());
            let line = shared::progress::worker_line(mp, &format!("worker-{id:02}"));
            let spawned = thread::Builder::new()
                .name(format!("download-{id:02}"))
                .spawn_scoped(s, move || {
                    for job in job_rx.iter() {
                        if ctx.stop.load(Ordering::Relaxed) {
                            break; // leave the rest of the queue untouched
                        }
                        let outcome = download(ctx, job, &line);
                        if out_tx.send(outcome).is_err() {
                            break;
                        }
                    }
                    line.finish_and_clear();
                });
            // Out of threads or memory (try `--workers 100000`): carry on with those we have.
            // The closure, with its channel ends, was dropped, so nothing waits for it.
            if let Err(e) = spawned {
                eprintln!("could start only {id} of {workers} workers: {e}");
                break;
            }
        }
        // Our copies must go, or the loop below would never see the end of the results.
        drop(out_tx);
        let mut bytes = 0u64;
        for outcome in out_rx.iter() {
            bytes += outcome.bytes;
            ctx.overall.inc(1);
            ctx.overall.set_message(format!(
                "{} {}",
                fmt_bytes(bytes),
                fmt_rate(bytes as f64 / (1024.0 * 1024.0), start.elapsed(), "MiB")
            ));
            if let Some(err) = &outcome.error
                && !outcome.cancelled
            {
                ctx.overall.println(format!(
                    "FAILED line {} {}: {err}",
                    outcome.line, outcome.url
                ));
            }
            outcomes.push(outcome);
        }
    });
    outcomes.sort_by_key(|o| o.line);
    RunReport {
        outcomes,
        wall: start.elapsed(),
        workers,
    }
}

// ------------------------------------------------------------------------------------------------
// main
// ------------------------------------------------------------------------------------------------

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.workers > 0, "--workers must be at least 1");
    anyhow::ensure!(
        args.timeout.is_finite() && args.timeout > 0.0,
        "--timeout must be a positive number of seconds"
    );
    let stop = shared::shutdown::stop_flag_on_ctrl_c().context("installing the Ctrl-C handler")?;

    // The job list: from a file, or from a local server started here.
    let faults = Faults {
        error_500: args.error_rate,
        hang: args.hang_rate,
        truncate: args.truncate_rate,
        reset: args.reset_rate,
    };
    let (server, jobs, bad_lines) = match &args.urls {
        Some(path) => {
            if faults.total() > 0.0 {
                eprintln!("note: fault rates apply to the local server only; ignored with --urls");
            }
            let text = fs::read_to_string(path)
                .with_context(|| format!("reading the URL file {}", path.display()))?;
            let (jobs, bad) = parse_url_list(&text);
            (None, jobs, bad)
        }
        None => {
            faults.validate().context("fault rates")?;
            let server = TestServer::spawn(
                ServerConfig::default()
                    .latency(Duration::from_millis(args.latency_ms))
                    .file_size(args.size)
                    .faults(faults)
                    .seed(args.seed),
            )
            .context("starting the local test server")?;
            let urls = shared::server::url_list(&server.base_url(), args.count, args.size);
            let (jobs, bad) = parse_url_list(&urls.join("\n"));
            (Some(server), jobs, bad)
        }
    };
    for b in &bad_lines {
        eprintln!("skipping line {}: {:?}: {}", b.line, b.text, b.reason);
    }
    fs::create_dir_all(&args.out)
        .with_context(|| format!("creating the output directory {}", args.out.display()))?;

    let client = Client::builder()
        .timeout(Duration::from_secs_f64(args.timeout))
        .connect_timeout(Duration::from_secs_f64(args.timeout))
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
    let ideal = server.as_ref().map(|_| {
        Duration::from_millis(args.latency_ms) * jobs.len().div_ceil(args.workers.max(1)) as u32
    });

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
    let run = |workers: usize, label: &str| -> RunReport {
        let mp = shared::progress::multi(args.json);
        let overall = mp.add(shared::progress::bar(jobs.len() as u64, args.json));
        overall.set_style(overall_style());
        overall.set_prefix(label.to_owned());
        let ctx = Ctx {
            client: &client,
            out: &args.out,
            policy,
            stop: &stop,
            overall: &overall,
        };
        let report = run_pool(&jobs, workers, &ctx, &mp);
        overall.finish_and_clear();
        report
    };

    let sequential = if args.sequential && !jobs.is_empty() {
        let r = run(1, "sequential");
        table.push(
            Row::new("sequential (1 worker)", r.wall)
                .ideal(Duration::from_millis(args.latency_ms) * jobs.len() as u32)
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
            outcomes: Vec::new(),
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
            .outcomes
            .iter()
            .filter(|o| o.error.is_none())
            .filter(|o| {
                fs::read(args.out.join(&o.name))
                    .is_ok_and(|body| shared::server::check_body(&o.name, &body))
            })
            .count()
    });
    let server_stats = server.as_ref().map(TestServer::stats);
    drop(server);

    let interrupted = stop.load(Ordering::Relaxed);
    let not_done = jobs.len() - report.ok() - report.failed().count();
    let failed: Vec<&Outcome> = report.failed().collect();
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
            "ratio_to_ideal": ideal.map(|d| report.wall.as_secs_f64() / d.as_secs_f64()),
            "retries": retries,
            "failures": failed,
            "verified": verified,
            "sequential_wall_s": sequential.as_ref().map(|s| s.wall.as_secs_f64()),
            "speedup": sequential.as_ref().map(|_| table.speedup(1)),
            "server": server_stats,
            "table": table.to_json(),
        }));
    } else {
        print_summary(
            &args, &report, &failed, &bad_lines, &retries, ideal, verified,
        );
        if sequential.is_some() {
            println!();
            table.print();
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
    if !failed.is_empty() || !bad_lines.is_empty() {
        std::process::exit(1);
    }
    Ok(())
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
    failed: &[&Outcome],
    bad_lines: &[BadLine],
    retries: &BTreeMap<String, usize>,
    ideal: Option<Duration>,
    verified: Option<usize>,
) {
    let secs = report.wall.as_secs_f64().max(1e-9);
    println!(
        "downloaded {}/{} files, {} in {} with {} workers ({}, {}) into {}",
        report.ok(),
        report.outcomes.len().max(report.ok()),
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
            secs / ideal.as_secs_f64()
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
        for o in failed {
            println!(
                "  line {:>4}  {}: {}",
                o.line,
                o.url,
                o.error.as_deref().unwrap_or("?")
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn url_file_reports_bad_lines_with_their_numbers() {
        let text = "# my downloads\n\
                    http://example.com/a.txt\n\
                    \n\
                    not a url\n\
                    ftp://example.com/b.txt\n\
                    https://example.com/dir/c.tar.gz?x=1\n\
                    \t  # indented comment\n\
                    mailto:someone@example.com\n\
                    https://example.com/a.txt\n";
        let (jobs, bad) = parse_url_list(text);
        let lines: Vec<(usize, &str)> = jobs.iter().map(|j| (j.line, j.name.as_str())).collect();
        assert_eq!(lines, vec![(2, "a.txt"), (6, "c.tar.gz"), (9, "a-9.txt")]);
        let bad_lines: Vec<usize> = bad.iter().map(|b| b.line).collect();
        assert_eq!(bad_lines, vec![4, 5, 8]);
        assert!(bad[0].reason.starts_with("not a URL"), "{:?}", bad[0]);
        assert!(bad[1].reason.contains("\"ftp\""), "{:?}", bad[1]);
        assert!(bad[2].reason.contains("\"mailto\""), "{:?}", bad[2]);
    }

    #[test]
    fn file_names_are_safe_and_unique() {
        let mut taken = HashSet::new();
        let mut name = |u: &str, line| file_name_for(&Url::parse(u).unwrap(), line, &mut taken);
        assert_eq!(name("http://h/", 1), "download-1");
        assert_eq!(name("http://h/x/..", 2), "download-2"); // the URL parser already resolves `..`
        assert_eq!(name("http://h/%2e%2e", 3), "download-3");
        assert_eq!(name("http://h/a%2Fb", 4), "a_2Fb");
        assert_eq!(name("http://h/y/file.bin", 5), "file.bin");
        assert_eq!(name("http://h/z/file.bin", 6), "file-6.bin");
        assert_eq!(name("http://h/evil.part", 7), "download-7");
        assert_eq!(name("http://h/README", 8), "README");
        assert_eq!(name("http://h/README", 9), "README-9");
    }

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
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for retry in 0..8 {
            let n = policy.nominal(retry);
            let delays: Vec<Duration> = (0..200).map(|_| policy.delay(retry, &mut rng)).collect();
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

    #[test]
    fn sleep_unless_stopped_returns_early_when_stopped() {
        let stop = AtomicBool::new(true);
        assert!(!sleep_unless_stopped(Duration::from_secs(3600), &stop));
        let stop = AtomicBool::new(false);
        assert!(sleep_unless_stopped(Duration::from_millis(1), &stop));
    }
}
