//! An async downloader: thousands of URLs with bounded concurrency, retries, timeouts, atomic files.
//!
//! Course section 8.2 (clients asynchrones): the `asyncio` + `aiohttp` downloader, in tokio +
//! reqwest. Same behaviour as the threaded downloader: retries with exponential backoff and jitter,
//! a timeout per attempt, `.part` file then rename, bad URL lines reported with their line number,
//! a progress bar, a summary, an exit code, `--json`. What changes is the cost of waiting: 1,000
//! downloads in flight are 1,000 small tasks, not 1,000 threads.
//!
//! With no `--urls` it starts the workspace's local HTTP server (`shared::server::TestServer`,
//! 100 ms latency, a few injected faults), generates a URL list, and
//! downloads into a temporary directory that is removed at the end (`--out DIR` keeps the files).
//!
//! # Concepts
//! - **Bounded concurrency with a `Semaphore` + `JoinSet`**: a permit is acquired *before* a task
//!   is spawned, so at most `--concurrency` tasks exist at once (spawning 10,000 tasks that then
//!   wait on a semaphore also works, but allocates them all up front). Each download is its own
//!   task, so the multi-thread runtime spreads them over every core, and a panic stays inside one
//!   `JoinError`. The alternative, `stream::iter(urls).map(fetch).buffer_unordered(C)`, is shorter
//!   but polls every future from *one* task: fine for I/O, a bottleneck once each download does
//!   real CPU work (decompression, hashing).
//! - **One `reqwest::Client`** for everything: it is a connection pool (keep-alive), cheap to
//!   clone (an `Arc`), and creating one per request would redo DNS, TCP and TLS every time.
//! - **Timeouts are not optional**: reqwest has *no* default timeout; a server that never
//!   answers would hold a permit forever. `--timeout` bounds each attempt, body included.
//! - **Retries**: 5xx, resets, truncated bodies and timeouts are retried with exponential backoff
//!   and full jitter (`random(0, min(cap, base·2^n))`), so 1,000 clients that failed together do
//!   not retry together; 4xx (except 408/429) are permanent and not retried.
//! - **Cancellation**: a `CancellationToken` cancelled by Ctrl-C; each download `select!`s on it,
//!   so a request waiting for headers stops at once, not when its timeout fires.
//! - **Atomic files**: write `name.part`, check the length against `Content-Length`, rename. A
//!   reader never sees half a file, and a crash leaves only `.part` files to clean.
//!
//! # Run
//! ```text
//! cargo run --release -p examples-async --bin async-downloader                 # local server, 200 URLs
//! cargo run --release -p examples-async --bin async-downloader -- --count 10000 --concurrency 1000 --latency 100ms --faults 0 --size 1024
//! cargo run --release -p examples-async --bin async-downloader -- --urls urls.txt --out downloads --concurrency 64
//! cargo run --release -p examples-async --bin async-downloader -- --faults 0.3 --retries 6 --json
//! python3 /work/shared/peers/py_downloader.py urls.txt out --mode asyncio --concurrency 1000  # the peer
//! ```
//!
//! # What to observe
//! - Wall time ≈ `ceil(N / concurrency) × latency` (printed as "ideal"): waiting is concurrent.
//! - Retries and their reasons in the summary; a malformed line of `--urls` is reported as
//!   `line 7: ...`. Exit code 0 if everything was downloaded, 1 if anything failed (bad lines
//!   included), 130 after Ctrl-C.
//! - Ctrl-C: no new downloads start, the ones in flight are *dropped* at their next `.await`
//!   (that is how a future is cancelled), their `.part` files are removed, the summary still
//!   prints. Compare with the threaded downloader, whose workers can only stop between blocking
//!   calls.
//! - `--concurrency 1` vs `1000` on 1,000 URLs: 100 s vs ~0.1 s at 100 ms latency, same CPU time.
//! - The `cpu:` line: once "cores busy" nears the core count, more concurrency cannot help.
//!
//! # Exercises
//! 1. Rewrite `run` with `buffer_unordered` and compare wall and CPU time at 10,000 URLs.
//! 2. Add a per-host limit (a `HashMap<host, Arc<Semaphore>>`) on top of the global one.
//! 3. Resume: if `name.part` exists, send `Range: bytes=N-` and append (the local server ignores
//!    ranges: detect a `200` instead of `206` and start over).
//! 4. Add a global deadline (`--deadline 10s`) that cancels every download with a
//!    `CancellationToken` and still removes the `.part` files.
//!
//! # Design notes and measurements
//! - **Blocking file I/O in async code**: `tokio::fs` runs every call on the blocking pool, one
//!   thread hand-off each. Small bodies are buffered and written + renamed in *one*
//!   `spawn_blocking`; large ones are spilled in 256 KiB pieces; and at most 8 file writes run at
//!   once (a second `Semaphore`), because 500 blocking threads creating files in one directory
//!   spend their time on the kernel's directory lock.
//! - At 10,000 URLs and `--concurrency 1000` (2 idle cores, `--out` on tmpfs): 1.20–1.29× the
//!   ideal. The `cpu:` line says why: ~180–200 µs of CPU per URL for client, server (same
//!   process) and file together, 1.4–1.6 cores busy on average. The gap is all in the first
//!   round: 1,000 URLs at `--count 1000` take ~290 ms, because 1,000 new TCP connections (plus
//!   their buffers, allocated for the first time) cost ~340 µs of CPU each on this VM; the nine
//!   later rounds reuse the pooled connections and take 101 ms each, the ideal. The target of
//!   1.10× is missed here for that reason, and is at this VM's floor: a bare tokio client (no
//!   HTTP library, no files; a throwaway test) needs 51–69 ms to open 1,000 connections to the
//!   same server and 47–59 ms more for their first responses, the whole 100 ms budget.
//!   `--concurrency 100` gives 1.05×. Fewer connections per host (browsers open 6) or HTTP/2
//!   would remove the storm. On a disk rather than tmpfs, file creation can dominate instead
//!   (ext4 slows down after many deletes in one directory).
//! - Against the course's asyncio + aiohttp recipe on the same URL list and the same server in
//!   its own process (`test-server --latency-ms 100 --size 1024 --urls urls.txt --count 10000`,
//!   then each client with `--concurrency 1000`, files on tmpfs): 1.32–1.33 s vs 4.15–4.52 s,
//!   3.1–3.4× faster; Python burns 3.7–3.9 s of user CPU where this burns 0.7 s.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures::StreamExt;
use rand::Rng;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Download every URL of a list concurrently, with retries, timeouts and atomic files.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// File with one URL per line (blank lines and `#` comments are skipped). Default: a
    /// generated list served by a local test server.
    #[arg(long)]
    urls: Option<PathBuf>,
    /// Directory for the files (default: a temporary directory, removed at the end).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Downloads in flight at once.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Attempts after the first one, for retryable failures.
    #[arg(long, default_value_t = 4)]
    retries: u32,
    /// Limit for one attempt, body included.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// First backoff delay (doubles at each retry, capped at 2 s, with full jitter).
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    backoff: Duration,
    /// Local server only: number of URLs to generate.
    #[arg(long, default_value_t = 200)]
    count: usize,
    /// Local server only: latency of each response.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    latency: Duration,
    /// Local server only: size of each file in bytes.
    #[arg(long, default_value_t = 16 * 1024)]
    size: usize,
    /// Local server only: probability of a fault per request (500, truncated body, reset, hang).
    #[arg(long, default_value_t = 0.05)]
    faults: f64,
    /// Local server only: worker threads of its runtime (0 = one per core). It shares the
    /// machine with the downloader; every extra thread is more context switches on 2 cores.
    #[arg(long, default_value_t = 1)]
    server_threads: usize,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Cap of the exponential backoff.
const BACKOFF_CAP: Duration = Duration::from_secs(2);

/// One line of the URL file that is a URL we can fetch.
#[derive(Debug, Clone)]
struct Job {
    line: usize,
    url: reqwest::Url,
    file: String,
}

/// How one URL ended.
#[derive(Debug)]
struct Outcome {
    job: Job,
    attempts: u32,
    /// `Err(None)`: cancelled by Ctrl-C; `Err(Some(why))`: failed.
    result: Result<u64, Option<String>>,
}

/// Why an attempt failed, and whether another attempt may help.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("{0} (retryable)")]
    Retryable(String),
    #[error("{0} (not retried)")]
    Permanent(String),
}

#[derive(serde::Serialize)]
struct Summary {
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
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    // Each download in flight holds a socket (and briefly a file): 1,000 need more than the
    // usual soft limit of 1024 open files.
    shared::monitor::raise_nofile_limit().context("raising RLIMIT_NOFILE")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the runtime")?;
    let code = rt.block_on(async_main(args))?;
    drop(rt);
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

async fn async_main(args: Args) -> anyhow::Result<i32> {
    // The local server, when no URL file is given. It runs on its own runtime thread so its
    // work is not counted as ours and cannot starve our tasks.
    let mut server = None;
    let (url_text, source) = match &args.urls {
        Some(path) => {
            let text = tokio::fs::read_to_string(path)
                .await
                .with_context(|| format!("reading {}", path.display()))?;
            (text, path.display().to_string())
        }
        None => {
            let faults = shared::server::Faults {
                error_500: args.faults * 0.4,
                truncate: args.faults * 0.3,
                reset: args.faults * 0.2,
                hang: args.faults * 0.1,
            };
            faults
                .validate()
                .map_err(|e| anyhow::anyhow!("--faults: {e}"))?;
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
            let text = urls.join("\n");
            server = Some(s);
            (
                text,
                format!("{} generated URLs on the local test server", args.count),
            )
        }
    };

    let (jobs, bad_lines) = parse_url_list(&url_text);
    for (line, why) in &bad_lines {
        eprintln!("warning: line {line}: {why}");
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
    if !args.json {
        println!(
            "downloading {} URLs from {source} into {} ({} at a time, {} retries, {:?} timeout)",
            jobs.len(),
            out.display(),
            args.concurrency,
            args.retries,
            args.timeout
        );
    }

    // Ctrl-C cancels the token; a second Ctrl-C exits at once (130, like the shell expects).
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("ctrl-c: stopping (again to quit at once)");
            trigger.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });

    let started = Instant::now();
    let cpu_before = shared::report::process_cpu(std::process::id()).unwrap_or_default();
    let n = jobs.len();
    let outcomes = run(jobs, &out, &args, &cancel).await?;
    let wall = started.elapsed();
    let cpu = shared::report::process_cpu(std::process::id())
        .unwrap_or_default()
        .since(cpu_before);

    let ok = outcomes.iter().filter(|o| o.result.is_ok()).count();
    let failed = outcomes
        .iter()
        .filter(|o| matches!(o.result, Err(Some(_))))
        .count();
    let bytes: u64 = outcomes.iter().filter_map(|o| o.result.as_ref().ok()).sum();
    let retries: u64 = outcomes
        .iter()
        .map(|o| u64::from(o.attempts.saturating_sub(1)))
        .sum();
    let failures: Vec<String> = outcomes
        .iter()
        .filter_map(|o| {
            o.result.as_ref().err().and_then(Option::as_ref).map(|e| {
                format!(
                    "line {}: {} after {} attempts: {e}",
                    o.job.line, o.job.url, o.attempts
                )
            })
        })
        .collect();
    // The ideal only makes sense for the local server, whose latency we know.
    let ideal = server
        .as_ref()
        .map(|_| args.latency * u32::try_from(n.div_ceil(args.concurrency)).unwrap_or(u32::MAX));
    let summary = Summary {
        urls: n,
        ok,
        failed,
        cancelled: n - ok - failed,
        bad_lines: bad_lines.len(),
        retries,
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
    };
    if let Some(s) = server.take() {
        if !args.json {
            println!("server: {}", s.stats());
        }
        tokio::task::spawn_blocking(move || s.shutdown_blocking())
            .await
            .context("stopping the test server")?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&summary).context("serialising the summary")?
        );
    } else {
        print_summary(&summary, wall);
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
    // Exit code: 130 if interrupted, 1 if anything failed (bad lines included), else 0.
    Ok(if cancel.is_cancelled() {
        130
    } else if summary.failed > 0 || summary.bad_lines > 0 {
        1
    } else {
        0
    })
}

fn print_summary(s: &Summary, wall: Duration) {
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

/// Valid jobs, and `(line number, reason)` for every line that is not a fetchable URL.
fn parse_url_list(text: &str) -> (Vec<Job>, Vec<(usize, String)>) {
    let mut jobs = Vec::new();
    let mut bad = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match reqwest::Url::parse(line) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                let file = file_name_for(&url, i + 1);
                jobs.push(Job {
                    line: i + 1,
                    url,
                    file,
                });
            }
            Ok(url) => bad.push((i + 1, format!("unsupported URL {url} (http or https only)"))),
            Err(e) => bad.push((i + 1, format!("not a URL ({e}): {line:?}"))),
        }
    }
    (jobs, bad)
}

/// The last path segment, made safe for a file name; the line number when there is none.
fn file_name_for(url: &reqwest::Url, line: usize) -> String {
    let last = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or("");
    let clean: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() || clean.starts_with('.') {
        format!("line-{line}.bin")
    } else {
        clean
    }
}

/// Download every job with at most `--concurrency` in flight; outcomes in completion order.
async fn run(
    jobs: Vec<Job>,
    out: &Path,
    args: &Args,
    cancel: &CancellationToken,
) -> anyhow::Result<Vec<Outcome>> {
    let client = reqwest::Client::builder()
        .timeout(args.timeout)
        .connect_timeout(args.timeout)
        .build()
        .context("building the HTTP client")?;
    let bar = shared::progress::bar(jobs.len() as u64, args.json);
    let limit = Arc::new(Semaphore::new(args.concurrency));
    let mut set = JoinSet::new();
    let mut outcomes = Vec::with_capacity(jobs.len());
    let policy = Retry {
        retries: args.retries,
        base: args.backoff,
    };
    for job in jobs {
        // Wait for a free slot *before* spawning: at most `concurrency` tasks exist. Meanwhile
        // collect finished ones so the JoinSet does not grow either.
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => permit.context("the semaphore is never closed")?,
            () = cancel.cancelled() => break, // the jobs not started are counted as cancelled
        };
        while let Some(done) = set.try_join_next() {
            outcomes.push(done.context("a download task panicked")?);
            bar.inc(1);
        }
        let (client, out, cancel) = (client.clone(), out.to_path_buf(), cancel.clone());
        set.spawn(async move {
            let outcome = download(&client, job, &out, policy, &cancel).await;
            drop(permit); // the slot frees when the download (retries included) is over
            outcome
        });
    }
    while let Some(done) = set.join_next().await {
        outcomes.push(done.context("a download task panicked")?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(outcomes)
}

#[derive(Clone, Copy, Debug)]
struct Retry {
    retries: u32,
    base: Duration,
}

impl Retry {
    /// Full jitter: uniform in `[0, min(cap, base · 2^attempt)]`.
    fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1 << attempt.min(16))
            .min(BACKOFF_CAP);
        let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=ms))
    }
}

/// One URL: attempts with backoff until success, a permanent error, no retries left, or Ctrl-C.
async fn download(
    client: &reqwest::Client,
    job: Job,
    out: &Path,
    policy: Retry,
    cancel: &CancellationToken,
) -> Outcome {
    let mut attempts = 0;
    let result = loop {
        // Whichever comes first: the attempt, or the cancellation. When the token wins, the
        // attempt future is dropped where it stands (waiting for headers, mid-body, or in a
        // blocking file write that finishes on its own thread), and we clean up after it.
        let result = tokio::select! {
            r = attempt_once(client, &job, out) => r,
            () = cancel.cancelled() => {
                let part = out.join(format!("{}.part", job.file));
                let _ = tokio::fs::remove_file(part).await; // may not exist
                break Err(None);
            }
        };
        attempts += 1;
        match result {
            Ok(bytes) => break Ok(bytes),
            Err(e @ AttemptError::Permanent(_)) => break Err(Some(e.to_string())),
            Err(e @ AttemptError::Retryable(_)) if attempts > policy.retries => {
                break Err(Some(e.to_string()));
            }
            Err(AttemptError::Retryable(_)) => {
                tokio::select! {
                    () = tokio::time::sleep(policy.delay(attempts - 1)) => {}
                    () = cancel.cancelled() => break Err(None),
                }
            }
        }
    };
    Outcome {
        job,
        attempts,
        result,
    }
}

/// GET the URL into `file.part`, check the length, rename to `file`. Removes the `.part` on error.
async fn attempt_once(
    client: &reqwest::Client,
    job: &Job,
    out: &Path,
) -> Result<u64, AttemptError> {
    let mut part = PartFile::new(out.join(format!("{}.part", job.file)));
    match fetch_into(client, &job.url, &mut part).await {
        Ok(n) => {
            part.commit(out.join(&job.file)).await?;
            Ok(n)
        }
        Err(e) => {
            part.discard().await;
            Err(e)
        }
    }
}

async fn fetch_into(
    client: &reqwest::Client,
    url: &reqwest::Url,
    part: &mut PartFile,
) -> Result<u64, AttemptError> {
    let retryable =
        |what: &str, e: &dyn std::fmt::Display| AttemptError::Retryable(format!("{what}: {e}"));
    let response = client.get(url.clone()).send().await.map_err(|e| {
        if e.is_timeout() {
            retryable("timed out", &e)
        } else {
            retryable("request failed", &e)
        }
    })?;
    let status = response.status();
    // reqwest does not turn a 500 into an error: without this check the error page would be
    // saved as the file. 408 and 429 are the 4xx worth retrying.
    if !status.is_success() {
        let msg = format!("HTTP {status}");
        return Err(
            if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
                AttemptError::Retryable(msg)
            } else {
                AttemptError::Permanent(msg)
            },
        );
    }
    let expected = response.content_length();
    let mut body = response.bytes_stream();
    let mut received = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            if e.is_timeout() {
                retryable("timed out reading the body", &e)
            } else {
                retryable("body interrupted", &e)
            }
        })?;
        received += chunk.len() as u64;
        part.push(&chunk).await?;
    }
    if let Some(n) = expected.filter(|&n| n != received) {
        return Err(AttemptError::Retryable(format!(
            "truncated body: {received} of {n} bytes"
        )));
    }
    Ok(received)
}

/// A body gathered in memory up to this size is written with one blocking call; a larger one is
/// spilled to the `.part` file in pieces of this size (so memory stays below concurrency × 256
/// KiB). `tokio::fs::File` would send the create, every write, the flush and the rename to the
/// blocking pool one by one: four thread hand-offs per small file, measured as the largest CPU
/// cost of a 10,000-file run.
const SPILL: usize = 256 * 1024;

/// File writes in flight at once. The blocking pool would happily start 512 threads for 1,000
/// finished downloads; they would all queue on the same directory lock in the kernel, and the
/// system time measured went from 2 s to 9 s. A disk does a few things at once, not 500.
const DISK_CONCURRENCY: usize = 8;
static DISK_SLOTS: Semaphore = Semaphore::const_new(DISK_CONCURRENCY);

/// `name.part` on its way to `name`: buffered, spilled to disk when large, renamed when complete.
struct PartFile {
    path: PathBuf,
    /// Opened on the first spill only; small files never touch the disk until `commit`.
    file: Option<std::fs::File>,
    buf: Vec<u8>,
}

impl PartFile {
    fn new(path: PathBuf) -> Self {
        PartFile {
            path,
            file: None,
            buf: Vec::new(),
        }
    }

    async fn push(&mut self, chunk: &[u8]) -> Result<(), AttemptError> {
        self.buf.extend_from_slice(chunk);
        if self.buf.len() >= SPILL {
            self.write_out(None).await?;
        }
        Ok(())
    }

    /// Write the buffer (creating the file if needed) on the blocking pool, then rename to
    /// `dest` if given. std's blocking file API inside `spawn_blocking`: one hand-off per call.
    async fn write_out(&mut self, dest: Option<PathBuf>) -> Result<(), AttemptError> {
        let (path, file, buf) = (
            self.path.clone(),
            self.file.take(),
            std::mem::take(&mut self.buf),
        );
        let _slot = DISK_SLOTS
            .acquire()
            .await
            .expect("DISK_SLOTS is never closed");
        let done = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            use std::io::Write;
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
        .await
        .map_err(|e| AttemptError::Permanent(format!("file task failed: {e}")))?;
        let (file, mut buf) = done.map_err(|e| {
            AttemptError::Permanent(format!("writing {}: {e}", self.path.display()))
        })?;
        buf.clear(); // keep the allocation for the next piece
        (self.file, self.buf) = (file, buf);
        Ok(())
    }

    async fn commit(mut self, dest: PathBuf) -> Result<(), AttemptError> {
        self.write_out(Some(dest)).await
    }

    async fn discard(self) {
        if self.file.is_some() {
            drop(self.file);
            let path = self.path;
            let _slot = DISK_SLOTS
                .acquire()
                .await
                .expect("DISK_SLOTS is never closed");
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_list_reports_bad_lines_with_numbers() {
        let text = "http://a/files/x.bin\n\n# comment\nnot a url\nftp://h/f\nhttps://b/c/?q=1\n";
        let (jobs, bad) = parse_url_list(text);
        assert_eq!(jobs.iter().map(|j| j.line).collect::<Vec<_>>(), vec![1, 6]);
        assert_eq!(jobs[0].file, "x.bin");
        assert_eq!(jobs[1].file, "line-6.bin");
        assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), vec![4, 5]);
    }

    #[test]
    fn backoff_is_bounded_by_the_cap() {
        let r = Retry {
            retries: 10,
            base: Duration::from_millis(100),
        };
        for attempt in 0..40 {
            assert!(r.delay(attempt) <= BACKOFF_CAP);
        }
        assert!(r.delay(0) <= Duration::from_millis(100));
    }
}
