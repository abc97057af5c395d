//! Local HTTP test server: deterministic files, latency and faults on demand (curl it, or point
//! the downloaders and the Python peers at it).
//!
//! Course section 8.3 (I/O-bound work: threads vs asyncio) and 8.4 (retries, timeouts, circuit
//! breaker). It is plumbing: the examples start the same server in-process
//! (`shared::server::TestServer`); this binary runs it on its own so you can poke at it.
//! Crates: none to copy (plumbing, not a lesson: hyper and tokio behind `shared::server`).
//!
//! *Concepts*: what a slow or broken server looks like from the client side — latency, HTTP
//! 500, a request that never answers, a body cut short, a connection reset — and why a client
//! needs a timeout, a status check and a length check to tell them from success.
//!
//! *Run* (terminal 1, the server; it prints its URL, example commands, then a stats line
//! whenever something happened):
//!
//! ```text
//! cargo run -p shared --bin test-server -- --port 8080
//! cargo run -p shared --bin test-server -- --port 8080 --latency-ms 100 --jitter-ms 50
//! cargo run -p shared --bin test-server -- --port 8080 --error-rate 0.1 --hang-rate 0.02 --truncate-rate 0.02 --reset-rate 0.02
//! cargo run -p shared --bin test-server -- --port 8080 --urls /tmp/urls.txt --count 1000 --size 100000
//! RUST_LOG=shared::server=debug cargo run -p shared --bin test-server -- --port 8080   # logs
//! ```
//!
//! **Logs**: `RUST_LOG=shared::server=info` prints each injected fault in its connection and
//! request spans (`conn{id=3 …}:request{… path=/files/a.bin}: injected fault fault=500`);
//! `=debug` adds every request, response status and connection.
//! Terminal 2, the client:
//!
//! ```text
//! curl -sS -o /dev/null -w '%{http_code} %{size_download} bytes in %{time_total} s\n' http://127.0.0.1:8080/files/000001.bin
//! curl -i 'http://127.0.0.1:8080/files/a.bin?size=16&latency_ms=500'
//! curl -i 'http://127.0.0.1:8080/files/a.bin?fail=500'
//! curl --max-time 2 'http://127.0.0.1:8080/files/a.bin?fail=hang'
//! curl -sS -o /dev/null 'http://127.0.0.1:8080/files/a.bin?fail=truncate'
//! curl -sS 'http://127.0.0.1:8080/files/a.bin?fail=reset'
//! curl -sS -o /dev/null --max-time 2 'http://127.0.0.1:8080/files/a.bin?fail=stall'
//! curl -s http://127.0.0.1:8080/stats
//! python3 examples-async/python/async_downloader.py /tmp/urls.txt /tmp/out --concurrency 64
//! ```
//!
//! Stop with Ctrl-C, SIGTERM or `--duration SECS` (in-flight requests get 1 s); see `--help`.
//!
//! *What to observe*:
//! - `fail=500` prints a body like any other: curl (and reqwest) only report it if asked
//!   (`curl -f`, `error_for_status()`).
//! - `fail=hang` never returns; `--max-time` is what ends it ("Operation timed out").
//! - `fail=truncate` sends `Content-Length: 65536` and half the bytes: curl says "(18) transfer
//!   closed with 32768 bytes remaining"; a client that reads to EOF unchecked keeps half a file.
//! - `fail=reset` gets "(56) Recv failure: Connection reset by peer": no HTTP response at all.
//! - With `--latency-ms 100`, 1,000 files take ~100 s one at a time and ~1 s with 100 in
//!   flight: the stats line shows `max` in flight, i.e. how concurrent the client really was.
//!
//! *Exercises* (the course's recipes: `examples-threads/python/url_downloader.py`, threads, and
//! `examples-async/python/async_downloader.py`, asyncio; both take `URLS OUT`):
//! 1. Run the threaded one with `--workers 8`, then 64, against `--latency-ms 100`; compare the
//!    seconds with the `max` in-flight figure of each run.
//! 2. Add `--hang-rate 0.01`: which one notices, after how long (`--timeout`)? Change it, measure.
//! 3. With `--truncate-rate 0.05`, are truncated files counted ok? Check the sizes on disk.
//! 4. `ulimit -n 256` in the server's shell, then run a client with 1,000 connections: watch
//!    `accept errors` appear in the stats line, and the client's connect errors or stalls.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser};
use shared::cli;
use shared::server::{
    FaultFlags, Faults, ROUTES, ServerConfig, TestServer, url_list, write_url_file,
};

/// Default address: loopback only. `--host 0.0.0.0` exposes it to the network (do that only
/// on a network you trust: it serves anything to anyone).
const DEFAULT_HOST: &str = "127.0.0.1";

/// The longest latency or jitter a flag accepts: one hour, in milliseconds.
const MAX_DELAY_MS: u64 = 3_600_000;

/// The largest `--size`: [`ServerConfig::max_body`]'s default, 1 GiB.
const MAX_SIZE: usize = 1 << 30;

/// How to turn the logs on, printed by `--help` after the routes.
const LOGS_HELP: &str = "Logs (stderr): RUST_LOG=shared::server=info prints each injected fault in its
connection and request spans; RUST_LOG=shared::server=debug adds every request, status and connection.";

/// Local HTTP test server: deterministic files, latency and faults on demand.
#[derive(Debug, Parser)]
#[command(name = "test-server", version)]
struct Args {
    /// Port to listen on (0: a free port, printed at start).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = DEFAULT_HOST)]
    host: IpAddr,
    /// Delay before each /files response, in milliseconds (at most an hour).
    #[arg(long, value_name = "MS", default_value_t = 0, value_parser = cli::u64_in(0, MAX_DELAY_MS))]
    latency_ms: u64,
    /// Extra random delay in [0, jitter) added to the latency, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0, value_parser = cli::u64_in(0, MAX_DELAY_MS))]
    jitter_ms: u64,
    /// Size of /files bodies in bytes (when the URL has no ?size=), at most 1 GiB.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024, value_parser = cli::usize_in(0, MAX_SIZE))]
    size: usize,
    #[command(flatten)]
    rates: FaultFlags,

    /// Seed of the fault and jitter draws (same seed, same fault rates).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Write a list of --count file URLs (one per line) to this file, for the downloaders.
    #[arg(long, value_name = "FILE")]
    urls: Option<PathBuf>,
    /// Number of URLs written by --urls (at most a million).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = cli::usize_in(1, 1_000_000))]
    count: usize,
    /// Print a stats line at most every SECS seconds, when something changed (0: never).
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = cli::u64_in(0, 86_400))]
    stats_every: u64,
    /// Stop after SECS seconds (0: run until Ctrl-C or SIGTERM; at most 30 days).
    #[arg(long, value_name = "SECS", default_value_t = 0, value_parser = cli::u64_in(0, 30 * 86_400))]
    duration: u64,
}

impl Args {
    /// The command line, with the routes and the logs line after the flags in `--help`.
    fn parse_with_help() -> Args {
        use clap::FromArgMatches as _;
        let command = Args::command().after_help(format!("{ROUTES}\n{LOGS_HELP}"));
        let mut matches = command.get_matches();
        Args::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.exit())
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse_with_help();
    let faults = args.rates.faults::<Args>();
    // Logs go to stderr, off unless RUST_LOG asks: stdout stays the URL, the tips and the stats.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the runtime")?
        .block_on(serve(args, faults))
}

async fn serve(args: Args, faults: Faults) -> anyhow::Result<()> {
    let config = ServerConfig::default()
        .addr(SocketAddr::new(args.host, args.port))
        .latency(Duration::from_millis(args.latency_ms))
        .jitter(Duration::from_millis(args.jitter_ms))
        .file_size(args.size)
        .faults(faults)
        .seed(args.seed);
    let server = TestServer::start(config)
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let base = server.base_url();
    // SIGTERM (docker stop, systemd, Kubernetes) takes the same graceful path as Ctrl-C; a second,
    // separate signal forces the exit. Registered before the first line is printed, so a script
    // that signals as soon as it reads the URL never meets the default action (death).
    let stop = shared::shutdown::cancel_on_ctrl_c();
    // Written before the first line is printed, so a script that waits for the URL can use
    // the file at once.
    if let Some(path) = &args.urls {
        let urls = url_list(&base, args.count, args.size);
        write_url_file(path, &urls)
            .with_context(|| format!("cannot write the URL list {}", path.display()))?;
    }
    println!("test-server listening on {base}");
    println!(
        "  files {} bytes, latency {} ms + jitter [0, {}) ms, faults: {faults}, seed {}",
        args.size, args.latency_ms, args.jitter_ms, args.seed
    );
    if let Some(path) = &args.urls {
        println!("  wrote {} URLs to {}", args.count, path.display());
    }
    println!("Try:");
    println!(
        "  curl -sS -o /dev/null -w '%{{http_code}} %{{size_download}} bytes in %{{time_total}} s\\n' {}",
        server.file_url(1)
    );
    println!("  curl -i '{base}/files/a.bin?size=16&latency_ms=500'");
    println!("  curl -i '{base}/files/a.bin?fail=500'");
    println!("  curl --max-time 2 '{base}/files/a.bin?fail=hang'");
    println!("  curl -sS -o /dev/null '{base}/files/a.bin?fail=truncate'");
    println!("  curl -sS '{base}/files/a.bin?fail=reset'");
    println!("  curl -s {base}/stats");
    println!(
        "{}",
        if args.duration > 0 {
            "Stopping after --duration."
        } else {
            "Ctrl-C (or SIGTERM) to stop."
        }
    );

    let started = Instant::now();
    let stop_after = async {
        if args.duration > 0 {
            tokio::time::sleep(Duration::from_secs(args.duration)).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(stop_after);

    // `interval` with a zero period panics; a year stands for "never" (`--stats-every` is at
    // most a day, so `now + period` cannot overflow).
    let period = match args.stats_every {
        0 => Duration::from_secs(365 * 86_400),
        secs => Duration::from_secs(secs),
    };
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = server.stats();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = &mut stop_after => break,
            _ = ticks.tick() => {
                let now = server.stats();
                if now != last {
                    let rate = (now.requests - last.requests.min(now.requests)) as f64
                        / period.as_secs_f64();
                    println!("[{:>6.1} s] {rate:.0} req/s | {now}", started.elapsed().as_secs_f64());
                    last = now;
                }
            }
        }
    }

    println!("shutting down (in-flight requests get up to 1 s)...");
    let stats = server.stats_handle(); // outlives `server`, which `shutdown` consumes
    server.shutdown().await;
    println!("final: {}", stats.snapshot());
    Ok(())
}
