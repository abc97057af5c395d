//! An async downloader: thousands of URLs with bounded concurrency, retries, timeouts, atomic files.
//!
//! Course section **8.2 — Programmation asynchrone avec asyncio** (clients asynchrones): the
//! `asyncio` + `aiohttp` downloader, in tokio + reqwest. Same behaviour as the threaded
//! `url-downloader`, same URL list and file names; what changes is the cost of waiting: 1,000
//! downloads in flight are 1,000 small tasks, not 1,000 threads.
//!
//! Crates: `tokio = { version = "1", features = ["rt-multi-thread", "macros", "sync", "time"] }`,
//! `tokio-util = "0.7"`, `reqwest = { version = "0.13", default-features = false, features = ["stream", "rustls"] }`,
//! `futures = "0.3"`, `rand = "0.9"`, `thiserror = "2"`
//!
//! # Concepts
//! - **Bounded concurrency** (`mod bounded`): a `Semaphore` permit is acquired *before* a task is
//!   spawned into a `JoinSet`, so at most `--concurrency` tasks exist at once; each download is
//!   its own task, spread over every core, and a panic stays inside one `JoinError`. The
//!   alternative, `stream::iter(urls).map(fetch).buffer_unordered(C)`, polls every future from
//!   *one* task: fine for I/O, a bottleneck once each download does real CPU work.
//! - **One `reqwest::Client`**: a connection pool (keep-alive), cheap to clone (an `Arc`).
//! - **Timeouts are not optional**: reqwest has *no* default timeout; a server that never
//!   answers would hold a permit forever. `--timeout` bounds each attempt, body included.
//! - **Retries** (`mod retry`): 5xx, resets, truncated bodies and timeouts, with exponential
//!   backoff and full jitter, so 1,000 clients that failed together do not retry together;
//!   4xx (except 408/429) are permanent. Every error carries its causes ("connection refused").
//! - **Cancellation**: a `CancellationToken`, cancelled by Ctrl-C or SIGTERM, is `select!`ed at
//!   every network wait, so a request waiting for headers stops at once, not at its timeout. A
//!   file write runs on the blocking pool and cannot be interrupted: it finishes, then the
//!   temporary file is deleted.
//! - **Atomic files** (`mod part_file`): write the temporary file, check the length against
//!   `Content-Length`, rename. Small bodies are written and renamed in *one* `spawn_blocking`,
//!   large ones spilled in 256 KiB pieces, at most 8 file writes at once.
//! - The harness reads the URL list (`shared::urls`, shared with `url-downloader`): bad lines
//!   (not UTF-8, not a URL) are reported with their number; each URL is saved under its last path
//!   segment made safe, unique in the run even ignoring case (`file.txt`, `file-2.txt`, never a
//!   name another line has); `.<name>.part` until complete, a name no final file can have.
//!
//! # Run
//! ```text
//! cargo run --release -p examples-async --bin async-downloader                 # local server, 200 URLs
//! cargo run --release -p examples-async --bin async-downloader -- --count 10000 --concurrency 1000 --latency 100ms --faults 0 --size 1024
//! cargo run --release -p examples-async --bin async-downloader -- --urls urls.txt --out downloads --concurrency 64
//! cargo run --release -p examples-async --bin async-downloader -- --faults 0.3 --retries 6 --json
//! cargo run --release -p examples-async --bin async-downloader -- --count 10000 --concurrency 1000 --faults 0 --size 1024 --python
//! ```
//!
//! # What to observe
//! - Wall time close to `ceil(N / concurrency) × latency` (printed as "ideal"): waiting is
//!   concurrent. `--concurrency 1` vs `1000` on 1,000 URLs: 100 s vs about 0.1 s, same CPU.
//! - Retries and their reasons in the summary; exit 0 if everything arrived, 1 if anything
//!   failed (bad lines included), 130 after Ctrl-C, which still prints the summary and leaves
//!   no `.part` file. The `cpu:` line: once "cores busy" nears the core count, more concurrency
//!   cannot help. `--python`: the course's asyncio + aiohttp (`python/async_downloader.py`) on
//!   the same URLs and names, both folders compared byte for byte, one table with the ratio.
//!
//! # Exercises
//! 1. A bounded crawler with a `JoinSet` (never more than N in flight, each page once):
//!    `cargo run -p shared --bin exercises -- check async/05`.
//! 2. Rewrite `download_all` with `buffer_unordered` and compare wall and CPU time at 10,000 URLs.
//! 3. Add a per-host limit (a `HashMap<host, Arc<Semaphore>>`) on top of the global one.
//! 4. Add a global deadline (`--deadline 10s`) that cancels the token; check no `.part` remains.

// === Lesson: copy from here ===

/// Which failures deserve another attempt, and how long to wait before it.
mod retry {
    use std::error::Error;
    use std::time::Duration;

    use rand::Rng;

    /// Why an attempt failed, and whether another attempt may help.
    #[derive(Debug, thiserror::Error)]
    pub enum AttemptError {
        #[error("{0} (retryable)")]
        Retryable(String),
        #[error("{0} (not retried)")]
        Permanent(String),
        #[error("cancelled")]
        Cancelled,
    }

    impl AttemptError {
        /// `what: error: its cause: its cause…`: reqwest's own message ("error sending request
        /// for url") hides the root cause ("Connection refused") in its sources.
        pub fn retryable(what: &str, e: &(dyn Error + 'static)) -> AttemptError {
            let causes: Vec<String> = std::iter::successors(Some(e), |&e| e.source())
                .map(ToString::to_string)
                .collect();
            AttemptError::Retryable(format!("{what}: {}", causes.join(": ")))
        }

        /// A non-success status: 5xx, 408 (Request Timeout) and 429 (Too Many Requests) may
        /// succeed later; other 4xx will not (a production client also honours `Retry-After`).
        pub fn from_status(status: reqwest::StatusCode) -> AttemptError {
            let msg = format!("HTTP {status}");
            if status.is_server_error() || matches!(status.as_u16(), 408 | 429) {
                AttemptError::Retryable(msg)
            } else {
                AttemptError::Permanent(msg)
            }
        }
    }

    /// How many attempts, and the backoff between them.
    #[derive(Clone, Copy, Debug)]
    pub struct RetryPolicy {
        /// Attempts after the first one.
        pub retries: u32,
        /// The ceiling of the first delay; doubled at each retry.
        pub base: Duration,
        /// No ceiling above this.
        pub cap: Duration,
    }

    impl RetryPolicy {
        /// Full jitter: uniform in `[0, min(cap, base · 2^retry)]`. Spreads the retries of
        /// clients that failed together the most (at the price of some very short waits).
        pub fn delay(&self, retry: u32) -> Duration {
            let ceiling = self.base.saturating_mul(1 << retry.min(16)).min(self.cap);
            let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
            Duration::from_millis(rand::rng().random_range(0..=ms))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn backoff_is_bounded_by_the_cap() {
            let policy = RetryPolicy {
                retries: 10,
                base: Duration::from_millis(100),
                cap: Duration::from_secs(2),
            };
            for retry in 0..40 {
                assert!(policy.delay(retry) <= policy.cap);
            }
            assert!(policy.delay(0) <= Duration::from_millis(100));
        }

        #[test]
        fn errors_keep_their_causes_and_statuses_their_kind() {
            let root = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
            let e = AttemptError::retryable("request failed", &root);
            assert_eq!(e.to_string(), "request failed: refused (retryable)");
            let nf = AttemptError::from_status(reqwest::StatusCode::NOT_FOUND);
            assert!(matches!(nf, AttemptError::Permanent(_)));
            let busy = AttemptError::from_status(reqwest::StatusCode::TOO_MANY_REQUESTS);
            assert!(matches!(busy, AttemptError::Retryable(_)));
        }
    }
}

/// The temporary file of one download: buffered, spilled from the blocking pool, renamed.
mod part_file {
    use std::io::Write;
    use std::path::PathBuf;

    use tokio::sync::Semaphore;

    /// A body gathered in memory up to this size is written with one blocking call; a larger one
    /// is spilled in pieces of this size (memory stays below concurrency × 256 KiB).
    /// `tokio::fs::File` would send the create, every write, the flush and the rename to the
    /// blocking pool one by one: four thread hand-offs per small file.
    const SPILL: usize = 256 * 1024;

    /// File writes in flight at once. The blocking pool would start 512 threads for 1,000
    /// finished downloads, all queuing on the same directory lock in the kernel (system time
    /// measured from 2 s to 9 s). A disk does a few things at once, not 500.
    static DISK_SLOTS: Semaphore = Semaphore::const_new(8);

    /// A body on its way to its final path.
    pub struct PartFile {
        path: PathBuf,
        /// Opened on the first spill only; small files never touch the disk until `commit`.
        file: Option<std::fs::File>,
        buf: Vec<u8>,
    }

    impl PartFile {
        pub fn new(path: PathBuf) -> Self {
            PartFile {
                path,
                file: None,
                buf: Vec::new(),
            }
        }

        pub async fn push(&mut self, chunk: &[u8]) -> std::io::Result<()> {
            self.buf.extend_from_slice(chunk);
            if self.buf.len() >= SPILL {
                self.write_out(None).await?;
            }
            Ok(())
        }

        /// Writes the buffer (creating the file if needed) on the blocking pool, then renames the
        /// file to `dest` if given: one thread hand-off per call.
        async fn write_out(&mut self, dest: Option<PathBuf>) -> std::io::Result<()> {
            let (path, file, buf) = (
                self.path.clone(),
                self.file.take(),
                std::mem::take(&mut self.buf),
            );
            let _slot = DISK_SLOTS.acquire().await.expect("never closed");
            let (file, mut buf) = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
                let mut file = match file {
                    Some(f) => f,
                    None => std::fs::File::create(&path)?,
                };
                file.write_all(&buf)?;
                match dest {
                    Some(dest) => {
                        drop(file);
                        std::fs::rename(&path, &dest)?;
                        Ok((None, buf))
                    }
                    None => Ok((Some(file), buf)),
                }
            })
            .await??; // a panic in the closure arrives as a JoinError, itself an io::Error
            buf.clear(); // keep the allocation for the next piece
            (self.file, self.buf) = (file, buf);
            Ok(())
        }

        /// Writes what is left and renames the file to `dest`: complete, or not there at all.
        pub async fn commit(mut self, dest: PathBuf) -> std::io::Result<()> {
            self.write_out(Some(dest)).await
        }

        /// Deletes the file if it was ever created. Every write has finished (each one is
        /// awaited), so nothing can create it again behind our back.
        pub async fn discard(self) {
            if let Some(file) = self.file {
                drop(file);
                let _slot = DISK_SLOTS.acquire().await.expect("never closed");
                let path = self.path;
                let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await;
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[tokio::test]
        async fn a_small_body_appears_whole_and_a_discarded_large_one_leaves_nothing() {
            let dir = std::env::temp_dir().join(format!("part-file-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let mut small = PartFile::new(dir.join(".a.part"));
            small.push(b"hello").await.unwrap();
            assert!(!dir.join(".a.part").exists(), "small bodies stay in memory");
            small.commit(dir.join("a")).await.unwrap();
            assert_eq!(std::fs::read(dir.join("a")).unwrap(), b"hello");
            assert!(!dir.join(".a.part").exists());

            let mut large = PartFile::new(dir.join(".b.part"));
            large.push(&vec![7u8; SPILL + 1]).await.unwrap();
            assert!(dir.join(".b.part").exists(), "spilled");
            large.discard().await;
            assert!(!dir.join(".b.part").exists() && !dir.join("b").exists());
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}

/// One download: attempts with backoff until success, a permanent error, no retries left, or
/// cancellation.
mod fetch {
    use std::path::PathBuf;

    use futures::StreamExt;
    use tokio_util::sync::CancellationToken;

    use super::part_file::PartFile;
    use super::retry::{AttemptError, RetryPolicy};

    /// One file to download: where from, where it ends, where it is written until complete.
    #[derive(Debug, Clone)]
    pub struct Job {
        pub url: reqwest::Url,
        pub dest: PathBuf,
        /// Never a name another job's `dest` can have (the caller's naming rule promises it).
        pub temp: PathBuf,
    }

    /// How a download ended.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum FileStatus {
        Saved {
            bytes: u64,
        },
        Failed {
            reason: String,
        },
        /// Stopped by the cancellation token.
        Cancelled,
    }

    /// Downloads `job` with retries; returns the attempts made and how it ended. Never leaves
    /// `job.temp` behind; `job.dest` exists only if the whole body arrived.
    pub async fn download(
        client: &reqwest::Client,
        job: &Job,
        policy: RetryPolicy,
        cancel: &CancellationToken,
    ) -> (u32, FileStatus) {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let error = match attempt_once(client, job, cancel).await {
                Ok(bytes) => return (attempts, FileStatus::Saved { bytes }),
                Err(e) => e,
            };
            let reason = error.to_string();
            match error {
                AttemptError::Cancelled => return (attempts, FileStatus::Cancelled),
                AttemptError::Retryable(_) if attempts <= policy.retries => {}
                AttemptError::Retryable(_) | AttemptError::Permanent(_) => {
                    return (attempts, FileStatus::Failed { reason });
                }
            }
            tokio::select! {
                biased;
                () = cancel.cancelled() => return (attempts, FileStatus::Cancelled),
                () = tokio::time::sleep(policy.delay(attempts - 1)) => {}
            }
        }
    }

    /// GET into the temporary file, check the length, rename; the temporary file is deleted on
    /// any error, cancellation included.
    async fn attempt_once(
        client: &reqwest::Client,
        job: &Job,
        cancel: &CancellationToken,
    ) -> Result<u64, AttemptError> {
        let mut part = PartFile::new(job.temp.clone());
        match fetch_into(client, &job.url, &mut part, cancel).await {
            Ok(n) => {
                let writing = |e| AttemptError::Permanent(format!("writing the file: {e}"));
                part.commit(job.dest.clone()).await.map_err(writing)?;
                Ok(n)
            }
            Err(e) => {
                part.discard().await;
                Err(e)
            }
        }
    }

    /// Streams the body of `url` into `part`. Cancellation is checked at every network wait
    /// (headers, each chunk), never in the middle of a file write.
    async fn fetch_into(
        client: &reqwest::Client,
        url: &reqwest::Url,
        part: &mut PartFile,
        cancel: &CancellationToken,
    ) -> Result<u64, AttemptError> {
        let response = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(AttemptError::Cancelled),
            r = client.get(url.clone()).send() => r,
        };
        let response = response.map_err(|e| {
            let what = if e.is_timeout() {
                "timed out"
            } else {
                "request failed"
            };
            AttemptError::retryable(what, &e)
        })?;
        // reqwest does not turn a 500 into an error: without this check the error page would be
        // saved as the file.
        if !response.status().is_success() {
            return Err(AttemptError::from_status(response.status()));
        }
        let expected = response.content_length();
        let mut body = response.bytes_stream();
        let mut received = 0u64;
        loop {
            let chunk = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(AttemptError::Cancelled),
                c = body.next() => c,
            };
            let Some(chunk) = chunk else { break };
            let chunk = chunk.map_err(|e| match expected {
                // The connection died before the promised length: say how much arrived.
                Some(n) if received < n && !e.is_timeout() => {
                    AttemptError::retryable(&format!("truncated body: {received} of {n} bytes"), &e)
                }
                _ if e.is_timeout() => AttemptError::retryable("timed out reading the body", &e),
                _ => AttemptError::retryable("body interrupted", &e),
            })?;
            received += chunk.len() as u64;
            part.push(&chunk)
                .await
                .map_err(|e| AttemptError::Permanent(format!("writing the file: {e}")))?;
        }
        // Never trust EOF alone: a server may close early without an error.
        if let Some(n) = expected.filter(|&n| n != received) {
            return Err(AttemptError::Retryable(format!(
                "truncated body: {received} of {n} bytes"
            )));
        }
        Ok(received)
    }
}

/// Bounded concurrency: a semaphore permit per task, taken before the task exists.
mod bounded {
    use std::sync::Arc;

    use tokio::sync::Semaphore;
    use tokio::task::{JoinError, JoinSet};
    use tokio_util::sync::CancellationToken;

    use super::fetch::{self, FileStatus, Job};
    use super::retry::RetryPolicy;

    /// How one job ended.
    #[derive(Debug, Clone)]
    pub struct FileReport {
        /// Its index in the job list.
        pub job: usize,
        pub attempts: u32,
        pub status: FileStatus,
    }

    /// Downloads `jobs` with at most `concurrency` in flight; calls `on_done` as each one ends
    /// and returns the reports in completion order. Jobs not started when `cancel` fires have
    /// no report. Fails only if a download task panicked.
    pub async fn download_all(
        client: &reqwest::Client,
        jobs: Vec<Job>,
        concurrency: usize,
        policy: RetryPolicy,
        cancel: &CancellationToken,
        mut on_done: impl FnMut(&FileReport),
    ) -> Result<Vec<FileReport>, JoinError> {
        let limit = Arc::new(Semaphore::new(concurrency.max(1)));
        let mut set = JoinSet::new();
        let mut reports = Vec::with_capacity(jobs.len());
        for (index, job) in jobs.into_iter().enumerate() {
            // Wait for a free slot *before* spawning: at most `concurrency` tasks exist.
            // `biased`: once cancelled, start nothing more, even if a slot is free too.
            let permit = tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                permit = Arc::clone(&limit).acquire_owned() => permit.expect("never closed"),
            };
            // Meanwhile collect finished ones, so the JoinSet does not grow either.
            while let Some(done) = set.try_join_next() {
                let report = done?;
                on_done(&report);
                reports.push(report);
            }
            let (client, cancel) = (client.clone(), cancel.clone());
            set.spawn(async move {
                let (attempts, status) = fetch::download(&client, &job, policy, &cancel).await;
                drop(permit); // the slot frees when the download, retries included, is over
                FileReport {
                    job: index,
                    attempts,
                    status,
                }
            });
        }
        while let Some(done) = set.join_next().await {
            let report = done?;
            on_done(&report);
            reports.push(report);
        }
        Ok(reports)
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::time::Duration;

        fn jobs(n: usize) -> Vec<Job> {
            let dir = std::env::temp_dir();
            (0..n)
                .map(|i| Job {
                    // Port 1 on loopback: nothing listens, the kernel refuses at once.
                    url: reqwest::Url::parse(&format!("http://127.0.0.1:1/{i}")).unwrap(),
                    dest: dir.join(format!("bounded-{i}")),
                    temp: dir.join(format!(".bounded-{i}.part")),
                })
                .collect()
        }

        const NO_RETRY: RetryPolicy = RetryPolicy {
            retries: 0,
            base: Duration::ZERO,
            cap: Duration::ZERO,
        };

        #[tokio::test]
        async fn every_job_is_reported_once_with_its_root_cause() {
            let client = reqwest::Client::new();
            let mut seen = Vec::new();
            let reports = download_all(
                &client,
                jobs(5),
                2,
                NO_RETRY,
                &CancellationToken::new(),
                |r| seen.push(r.job),
            )
            .await
            .unwrap();
            seen.sort_unstable();
            assert_eq!(seen, vec![0, 1, 2, 3, 4]);
            for r in reports {
                let FileStatus::Failed { reason } = r.status else {
                    panic!("{r:?}")
                };
                assert!(reason.to_lowercase().contains("refused"), "{reason}");
            }
        }

        #[tokio::test]
        async fn a_cancelled_token_starts_nothing() {
            let cancel = CancellationToken::new();
            cancel.cancel();
            let client = reqwest::Client::new();
            let reports = download_all(&client, jobs(5), 2, NO_RETRY, &cancel, |_| {})
                .await
                .unwrap();
            assert!(reports.is_empty());
        }
    }
}

// === Harness: not part of the lesson ===

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use bounded::{FileReport, download_all};
use clap::Parser;
use fetch::{FileStatus, Job};
use retry::RetryPolicy;
use shared::cli;
use shared::urls::UrlList;

/// Download every URL of a list concurrently, with retries, timeouts and atomic files.
#[derive(Parser, Debug)]
#[command(name = "async-downloader", version)]
struct Args {
    /// File with one URL per line (blank lines and `#` comments are skipped). Default: a
    /// generated list served by a local test server.
    #[arg(long)]
    urls: Option<PathBuf>,
    /// Directory for the files (default: a temporary directory, removed at the end).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Downloads in flight at once.
    #[arg(long, default_value_t = 50, value_parser = cli::usize_in(1, 100_000))]
    concurrency: usize,
    /// Attempts after the first one, for retryable failures.
    #[arg(long, default_value_t = 4, value_parser = cli::u32_in(0, 100))]
    retries: u32,
    /// Limit for one attempt, body included.
    #[arg(long, default_value = "2s", value_parser = cli::duration_in(Duration::from_millis(1), Duration::from_secs(3600)))]
    timeout: Duration,
    /// First backoff delay (doubles at each retry, capped at 2 s, with full jitter).
    #[arg(long, default_value = "100ms", value_parser = cli::duration_in(Duration::ZERO, Duration::from_secs(60)))]
    backoff: Duration,
    /// Local server only: number of URLs to generate.
    #[arg(long, default_value_t = 200, value_parser = cli::usize_in(1, 1_000_000))]
    count: usize,
    /// Local server only: latency of each response.
    #[arg(long, default_value = "100ms", value_parser = cli::duration_in(Duration::ZERO, Duration::from_secs(60)))]
    latency: Duration,
    /// Local server only: size of each file in bytes (at most 1 GiB).
    #[arg(long, default_value_t = 16 * 1024, value_parser = cli::usize_in(0, 1 << 30))]
    size: usize,
    /// Local server only: probability of a fault per request (500, truncated body, reset, hang).
    #[arg(long, default_value_t = 0.05, value_parser = cli::probability)]
    faults: f64,
    /// Local server only: worker threads of its runtime (0 = one per core). It shares the
    /// machine with the downloader; every extra thread is more context switches on 2 cores.
    #[arg(long, default_value_t = 1, value_parser = cli::usize_in(0, 64))]
    server_threads: usize,
    /// Also download the same list with the course's asyncio + aiohttp recipe
    /// (python/async_downloader.py, same concurrency, same names), compare both folders byte
    /// for byte and print both runs in one table.
    #[arg(long)]
    python: bool,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Cap of the exponential backoff.
const BACKOFF_CAP: Duration = Duration::from_secs(2);

/// The figures of one run (`--json` prints it as is).
#[derive(serde::Serialize)]
struct DownloadReport {
    urls: usize,
    ok: usize,
    failed: usize,
    /// Not downloaded because of Ctrl-C (interrupted or never started).
    cancelled: usize,
    bad_lines: usize,
    retries: u64,
    bytes: u64,
    concurrency: usize,
    wall_s: f64,
    ideal_s: Option<f64>,
    ratio_to_ideal: Option<f64>,
    /// CPU of this whole process during the downloads (the local server's thread included).
    cpu_user_s: f64,
    cpu_system_s: f64,
    /// CPU time over wall time: 2.0 means two cores busy the whole time.
    cores_busy: f64,
    failures: Vec<String>,
    /// `--python`: the recipe's own figures, and how its files compare with ours.
    #[serde(skip_serializing_if = "Option::is_none")]
    python: Option<serde_json::Value>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // `--python`: find python3 and aiohttp before any work; missing, it is a usage error (exit 2)
    // whose message names what to install.
    let python = match args
        .python
        .then(|| shared::python::Python::find(&["aiohttp"]))
        .transpose()
    {
        Ok(python) => python,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    };
    // Read the URL file before anything starts: an unreadable file is an error, a bad line is not.
    let file_list = match &args.urls {
        Some(path) => Some(
            shared::urls::read_url_file(path)
                .with_context(|| format!("reading {}", path.display()))?,
        ),
        None => None,
    };
    // Each download in flight holds a socket (and briefly a file): 1,000 need more than the
    // usual soft limit of 1024 open files.
    shared::monitor::raise_nofile_limit().context("raising RLIMIT_NOFILE")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the runtime")?;
    let code = rt.block_on(async_main(args, file_list, python))?;
    drop(rt);
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

async fn async_main(
    args: Args,
    file_list: Option<UrlList>,
    python: Option<shared::python::Python>,
) -> anyhow::Result<i32> {
    // Ctrl-C and SIGTERM cancel the token; a second, separate signal deletes every temporary
    // file and exits (130). Registered first, so a signal during start-up is handled too.
    let cancel = shared::shutdown::cancel_on_ctrl_c();
    // The local server, when no URL file is given, on its own runtime thread so its work
    // cannot starve our tasks.
    let mut server = None;
    let (list, source) = match file_list {
        Some(list) => (
            list,
            args.urls
                .as_ref()
                .map_or(String::new(), |p| p.display().to_string()),
        ),
        None => {
            let faults = shared::server::Faults {
                error_500: args.faults * 0.4,
                truncate: args.faults * 0.3,
                reset: args.faults * 0.2,
                hang: args.faults * 0.1,
            };
            let config = shared::server::ServerConfig::default()
                .latency(args.latency)
                .file_size(args.size)
                .faults(faults)
                .worker_threads(args.server_threads);
            let s = tokio::task::spawn_blocking(move || shared::server::TestServer::spawn(config))
                .await
                .context("starting the test server")?
                .context("starting the test server")?;
            let urls = shared::server::url_list(&s.base_url(), args.count, args.size);
            server = Some(s);
            let source = format!("{} generated URLs on the local test server", args.count);
            (shared::urls::url_list_of(&urls), source)
        }
    };
    for b in &list.bad_lines {
        eprintln!("warning: line {}: {}: {:?}", b.line, b.reason, b.text);
    }
    let (out, temporary) = match &args.out {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!("async-downloader-{}", std::process::id())),
            true,
        ),
    };
    tokio::fs::create_dir_all(&out)
        .await
        .with_context(|| format!("creating {}", out.display()))?;
    // Even a forced exit (a second Ctrl-C) leaves no `.part` file: every name is known now.
    shared::urls::remove_temp_files_on_forced_exit(&list.jobs, &out);
    if temporary {
        let dir = out.clone(); // nor a temporary folder nobody asked to keep
        shared::shutdown::on_forced_exit(move || {
            let _ = std::fs::remove_dir_all(&dir);
        });
    }
    if !args.json {
        println!(
            "downloading {} URLs from {source} into {} ({} at a time, {} retries, {:?} timeout)",
            list.jobs.len(),
            out.display(),
            args.concurrency,
            args.retries,
            args.timeout
        );
    }

    let client = reqwest::Client::builder()
        .timeout(args.timeout)
        .connect_timeout(args.timeout)
        .build()
        .context("building the HTTP client")?;
    let policy = RetryPolicy {
        retries: args.retries,
        base: args.backoff,
        cap: BACKOFF_CAP,
    };
    let jobs: Vec<Job> = list
        .jobs
        .iter()
        .map(|j| Job {
            url: j.url.clone(),
            dest: j.final_path(&out),
            temp: j.temp_path(&out),
        })
        .collect();
    let n = jobs.len();
    let bar = shared::progress::bar(n as u64, args.json);
    let started = Instant::now();
    let cpu_before = shared::report::process_cpu(std::process::id()).unwrap_or_default();
    let reports = download_all(&client, jobs, args.concurrency, policy, &cancel, |_| {
        bar.inc(1)
    })
    .await
    .context("a download task panicked")?;
    let wall = started.elapsed();
    let cpu = shared::report::process_cpu(std::process::id())
        .unwrap_or_default()
        .since(cpu_before);
    bar.finish_and_clear();

    // The ideal only makes sense for the local server, whose latency we know.
    let rounds = u32::try_from(n.div_ceil(args.concurrency)).unwrap_or(u32::MAX);
    let ideal = server.as_ref().map(|_| args.latency.saturating_mul(rounds));
    let mut report = download_report(&list, &reports, &args, wall, ideal, cpu);
    // `--python` runs on the same server, still up, after ours: the same list, the same names.
    let python_run = match python {
        Some(py) if !cancel.is_cancelled() => Some(run_python(py, &list, &out, &args).await?),
        _ => None,
    };
    if let Some(s) = server.take() {
        if !args.json {
            println!("server: {}", s.stats());
        }
        tokio::task::spawn_blocking(move || s.shutdown_blocking())
            .await
            .context("stopping the test server")?;
    }
    let python_differs = python_run
        .as_ref()
        .is_some_and(|p| !p.differences.is_empty());
    if let Some(p) = &python_run {
        let mut json = p.json.clone();
        json["same_files"] = (!python_differs).into();
        json["differences"] = p.differences.clone().into();
        report.python = Some(json);
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).context("serialising the report")?
        );
    } else {
        print_report(&report, wall);
        if let Some(p) = &python_run {
            print_python_table(&report, p, ideal, wall, cpu.total());
        }
    }
    if temporary {
        tokio::fs::remove_dir_all(&out)
            .await
            .with_context(|| format!("removing {}", out.display()))?;
        if !args.json {
            println!(
                "(removed {}; pass --out DIR to keep the files)",
                out.display()
            );
        }
    }
    // Exit code: 130 if interrupted, 1 if anything failed (bad lines included) or if the
    // Python run saved different files, else 0.
    Ok(if cancel.is_cancelled() {
        130
    } else if report.failed > 0 || report.bad_lines > 0 || python_differs {
        1
    } else {
        0
    })
}

fn download_report(
    list: &UrlList,
    reports: &[FileReport],
    args: &Args,
    wall: Duration,
    ideal: Option<Duration>,
    cpu: shared::report::CpuSplit,
) -> DownloadReport {
    let n = list.jobs.len();
    let ok = reports
        .iter()
        .filter(|r| matches!(r.status, FileStatus::Saved { .. }))
        .count();
    let bytes = reports
        .iter()
        .map(|r| match r.status {
            FileStatus::Saved { bytes } => bytes,
            _ => 0,
        })
        .sum();
    let failures: Vec<String> = reports
        .iter()
        .filter_map(|r| match &r.status {
            FileStatus::Failed { reason } => {
                let job = &list.jobs[r.job];
                Some(format!(
                    "line {}: {} after {} attempts: {reason}",
                    job.line, job.url, r.attempts
                ))
            }
            _ => None,
        })
        .collect();
    DownloadReport {
        urls: n,
        ok,
        failed: failures.len(),
        cancelled: n - ok - failures.len(),
        bad_lines: list.bad_lines.len(),
        retries: reports
            .iter()
            .map(|r| u64::from(r.attempts.saturating_sub(1)))
            .sum(),
        bytes,
        concurrency: args.concurrency,
        wall_s: wall.as_secs_f64(),
        ideal_s: ideal.map(|d| d.as_secs_f64()),
        ratio_to_ideal: ideal
            .filter(|d| !d.is_zero())
            .map(|d| wall.as_secs_f64() / d.as_secs_f64()),
        cpu_user_s: cpu.user.as_secs_f64(),
        cpu_system_s: cpu.system.as_secs_f64(),
        cores_busy: cpu.total().as_secs_f64() / wall.as_secs_f64().max(1e-9),
        failures,
        python: None,
    }
}

fn print_report(s: &DownloadReport, wall: Duration) {
    println!(
        "{} ok, {} failed, {} cancelled, {} bad lines, {} retries, {} in {}",
        s.ok,
        s.failed,
        s.cancelled,
        s.bad_lines,
        s.retries,
        shared::report::fmt_bytes(s.bytes),
        shared::report::fmt_duration(wall)
    );
    println!(
        "rate: {}",
        shared::report::fmt_rate(s.urls as f64, wall, "files")
    );
    let cpu = s.cpu_user_s + s.cpu_system_s;
    println!(
        "cpu: {:.2} s ({:.2} user + {:.2} system), {:.0} µs per URL, {:.1} cores busy on average",
        cpu,
        s.cpu_user_s,
        s.cpu_system_s,
        cpu * 1e6 / s.urls.max(1) as f64,
        s.cores_busy
    );
    if let (Some(ideal), Some(ratio)) = (s.ideal_s, s.ratio_to_ideal) {
        println!(
            "ideal ceil(N/C) x latency = {}: {ratio:.2}x the ideal{}",
            shared::report::fmt_duration(Duration::from_secs_f64(ideal)),
            if s.retries > 0 {
                " (retries, backoff and timeouts of the injected faults included; --faults 0 to compare)"
            } else {
                ""
            }
        );
    }
    for f in s.failures.iter().take(10) {
        println!("failed: {f}");
    }
    if s.failures.len() > 10 {
        println!("... and {} more failures", s.failures.len() - 10);
    }
}

/// What `--python` found: the recipe's JSON, and the files that differ from ours.
struct PythonRun {
    json: serde_json::Value,
    differences: Vec<String>,
}

/// Runs python/async_downloader.py on the same jobs (URL and final name each) into a scratch
/// folder, then compares its files with ours, name by name and byte for byte.
async fn run_python(
    py: shared::python::Python,
    list: &UrlList,
    out: &std::path::Path,
    args: &Args,
) -> anyhow::Result<PythonRun> {
    let scratch =
        std::env::temp_dir().join(format!("async-downloader-python-{}", std::process::id()));
    let py_out = scratch.join("out");
    tokio::fs::create_dir_all(&py_out)
        .await
        .with_context(|| format!("creating {}", py_out.display()))?;
    let dir = scratch.clone();
    shared::shutdown::on_forced_exit(move || {
        let _ = std::fs::remove_dir_all(&dir);
    });
    let jobs_file = scratch.join("jobs.tsv");
    shared::urls::write_job_file(&jobs_file, &list.jobs).context("writing the job file")?;
    if !args.json {
        println!(
            "\nrunning python/async_downloader.py ({}) on the same {} URLs into {}",
            py.version,
            list.jobs.len(),
            py_out.display()
        );
    }
    let recipe_args: Vec<String> = vec![
        jobs_file.display().to_string(),
        py_out.display().to_string(),
        "--concurrency".into(),
        args.concurrency.to_string(),
        "--timeout".into(),
        args.timeout.as_secs_f64().to_string(),
        "--retries".into(),
        args.retries.to_string(),
        "--backoff-ms".into(),
        args.backoff.as_millis().to_string(),
    ];
    // A child process we wait for: blocking, so on the blocking pool.
    let json = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = recipe_args.iter().map(String::as_str).collect();
        py.run_recipe("examples-async/python/async_downloader.py", &refs)
    })
    .await
    .context("the Python runner panicked")??
    .json;
    let jobs = list.jobs.clone();
    let (ours, theirs) = (out.to_path_buf(), py_out.clone());
    let differences =
        tokio::task::spawn_blocking(move || shared::urls::compare_downloads(&jobs, &ours, &theirs))
            .await
            .context("the comparison panicked")?;
    tokio::fs::remove_dir_all(&scratch)
        .await
        .with_context(|| format!("removing {}", scratch.display()))?;
    Ok(PythonRun { json, differences })
}

/// Both runs in one table: the course's asyncio + aiohttp first (the baseline), then ours.
fn print_python_table(
    s: &DownloadReport,
    p: &PythonRun,
    ideal: Option<Duration>,
    wall: Duration,
    cpu: Duration,
) {
    let py = &p.json;
    let mut table = shared::report::SpeedupTable::new(format!(
        "\n{} URLs, {} at a time, the same server, the same file names",
        s.urls, s.concurrency
    ));
    let secs = |k: &str| Duration::from_secs_f64(py[k].as_f64().unwrap_or(0.0).max(0.0));
    let mut python_row = shared::report::Row::new(
        format!("asyncio + aiohttp, Semaphore({})", s.concurrency),
        secs("wall_s"),
    )
    .cpu(secs("cpu_s"))
    .note(format!(
        "{} ok, {} retries; Python {}, aiohttp {}",
        py["ok"],
        py["retries"],
        py["python"].as_str().unwrap_or("?"),
        py["aiohttp"].as_str().unwrap_or("?")
    ));
    let mut rust_row =
        shared::report::Row::new(format!("tokio + reqwest, {} tasks", s.concurrency), wall)
            .cpu(cpu)
            .agrees(p.differences.is_empty())
            .note(format!(
                "{} ok, {} retries; CPU includes the local server (same process)",
                s.ok, s.retries
            ));
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
