//! A local HTTP server to download from: deterministic files, latency, and faults on demand.
//!
//! Every downloader, the circuit breaker and the measured comparisons of this workspace run
//! against this server instead of the Internet, so they work offline, are repeatable (seeded),
//! and can be made slow or unreliable on purpose. It is plumbing: the concurrency being taught
//! lives in the examples, not here.
//!
//! # Starting it
//!
//! ```
//! use shared::server::{Faults, ServerConfig, TestServer};
//! use std::time::Duration;
//!
//! // From plain `fn main` (threads, no runtime): the server brings its own tokio runtime.
//! let config = ServerConfig::default()
//!     .latency(Duration::from_millis(20))
//!     .file_size(16 * 1024)
//!     .faults(Faults { error_500: 0.05, ..Faults::NONE });
//! let server = TestServer::spawn(config)?;
//! let urls = shared::server::url_list(&server.base_url(), 100, 16 * 1024);
//! assert!(urls[42].ends_with("/files/000042.bin?size=16384"));
//! // ... download `urls` with threads, then:
//! println!("{}", server.stats());
//! server.shutdown_blocking(); // or just let it drop
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Inside an async program use `TestServer::start(config).await?`, which runs the server as
//! tasks of the caller's runtime, and `server.shutdown().await`.
//!
//! # Routes
//!
//! | Route | Response |
//! |---|---|
//! | `GET /files/{name}` | `file_size` bytes of content derived from `name`, the rest of the URL path (see [`expected_body`]), `Content-Length` set. Subject to latency and faults. Names may have folders: `/files/a/x.bin` and `/files/b/x.bin` are two different files with the same last segment. |
//! | `GET /files/{name}?size=N` | the same file, `N` bytes long (a prefix of the same stream; at most `max_body`). |
//! | `…?latency_ms=N&jitter_ms=N` | override the configured latency / jitter for this request. |
//! | `…?fail=500\|hang\|truncate\|reset\|stall` | force that fault on this request; `fail=none` forces success. |
//! | `GET /status/{code}` | an empty-ish response with that status (200–599), no latency, no faults: `/status/404` tests "do not retry a 4xx". |
//! | `GET /stats` | the counters of [`StatsSnapshot`] as JSON. |
//! | `GET /health` | `ok`. |
//! | `GET /` | this list, as text. |
//!
//! Query parameters can be combined, so a URL list can encode behaviour:
//! `/files/a.bin?size=1000000&latency_ms=200&fail=truncate`.
//!
//! # Faults
//!
//! Each `/files` request draws one number in `[0, 1)` from a seeded generator and picks at most
//! one fault with the probabilities of [`Faults`]. Faults happen *after* the latency, like a
//! server that breaks while working:
//!
//! - **500**: status 500 with a short text body. A client that checks the status sees it; one that
//!   does not (`urllib` raises, `reqwest` does not!) would save the error text as the file.
//! - **hang**: no response at all, until the client gives up (closes the connection) or the
//!   server shuts down (then: 503). Only a client timeout saves the client: reqwest has *no*
//!   default timeout, `urllib` none unless `timeout=` is passed, aiohttp 5 minutes.
//! - **truncate**: headers promise the full `Content-Length`, about half the body is sent, then
//!   the connection is closed. A correct client reports an error; a client that trusts EOF
//!   would keep a half file.
//! - **reset**: the TCP connection is aborted with RST (`SO_LINGER` 0) before any response byte:
//!   the client sees "connection reset by peer".
//! - **stall** (`?fail=stall` only, counted as a hang): headers and about half the body, then
//!   nothing until the client gives up or the server shuts down. The client has a half-written
//!   file open while it waits: what a downloader's Ctrl-C handling must clean up.
//!
//! The draw of the `n`-th `/files` request is a hash of the seed and `n` (splitmix64), so the
//! first `n` requests of a seeded run get exactly the same number of each fault every time,
//! whatever the concurrency. Which URL gets which fault still depends on the order in which
//! concurrent requests arrive, exactly as with a real flaky server.
//!
//! # Capacity and shutdown
//!
//! The listener has a backlog of 4096 (the kernel caps it at `net.core.somaxconn`), the open
//! files limit is raised to its hard maximum at start, keep-alive is on and bodies are zero-copy
//! slices of one shared 1 MiB block, so the server holds thousands of concurrent connections
//! without using much memory or CPU (it must not steal the cores the clients are measured on).
//! Measured on 2 cores (release): 2,000 requests in flight at once (64 KiB bodies, 2 s latency)
//! peak at 30 MiB RSS on 3 threads, and a request costs the server about 0.1–0.2 ms of CPU,
//! a new TCP connection included.
//!
//! # Logs
//!
//! Each connection runs in a `tracing` span (`conn{id, peer}`) and each request in a child span
//! (`request{method, path}`); injected faults are `info` events, requests and connections
//! `debug` events. Nothing is printed unless the program installs a subscriber: the
//! `test-server` binary does, filtered by `RUST_LOG` (`RUST_LOG=shared::server=debug`).
//!
//! # Shutdown
//!
//! Shutdown (explicit or on `Drop`) stops accepting, lets in-flight requests finish for at most
//! [`ServerConfig::grace`], answers hung requests with 503 and closes every connection. It never
//! waits for a client.

use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::path::Path as FsPath;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::thread;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{Service as _, service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

/// Listen backlog: connections the kernel queues before `accept`. The default of `std` (128)
/// makes a burst of 1,000 connects fail or retry with SYN timeouts (1 s, 3 s ...).
pub const LISTEN_BACKLOG: i32 = 4096;

/// Size of each body chunk handed to hyper.
const CHUNK: usize = 64 * 1024;

/// Length of the shared pseudo-random block every file body is a (rotated) view of.
const BLOCK_LEN: usize = 1 << 20;

// ------------------------------------------------------------------------------------------------
// Configuration
// ------------------------------------------------------------------------------------------------

/// Probability of each fault, per `/files` request. Each in `[0, 1]`, their sum at most 1.
///
/// Build one with struct update syntax: `Faults { error_500: 0.1, hang: 0.01, ..Faults::NONE }`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Answer `500 Internal Server Error`.
    pub error_500: f64,
    /// Never answer (until the client closes the connection or the server shuts down).
    pub hang: f64,
    /// Promise the full `Content-Length`, send about half of it, close the connection.
    pub truncate: f64,
    /// Abort the TCP connection with RST before any response byte.
    pub reset: f64,
}

/// The four fault-rate flags of a program that runs a test server (`test-server`, the
/// downloaders): `#[command(flatten)] faults: FaultFlags`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct FaultFlags {
    /// Probability that a /files request gets a 500.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = crate::cli::probability)]
    pub error_rate: f64,
    /// Probability that a /files request never gets an answer (a client needs a timeout).
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = crate::cli::probability)]
    pub hang_rate: f64,
    /// Probability that a /files body is cut after about half (connection closed early).
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = crate::cli::probability)]
    pub truncate_rate: f64,
    /// Probability that a /files request gets its TCP connection reset.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = crate::cli::probability)]
    pub reset_rate: f64,
}

impl FaultFlags {
    /// The faults. Each rate is in `[0, 1]` (its value parser checked it); a sum over 1 is a
    /// usage error of the command `A`, reported like any other bad value: clap's message and
    /// exit status 2.
    pub fn faults<A: clap::CommandFactory>(&self) -> Faults {
        let faults = Faults {
            error_500: self.error_rate,
            hang: self.hang_rate,
            truncate: self.truncate_rate,
            reset: self.reset_rate,
        };
        if let Err(e) = faults.validate() {
            A::command()
                .error(clap::error::ErrorKind::ValueValidation, e)
                .exit();
        }
        faults
    }
}

/// Why a [`Faults`] value was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid fault probabilities ({faults}): {reason}")]
pub struct InvalidFaults {
    /// The rejected value.
    pub faults: Faults,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Faults {
    /// No faults: every request succeeds.
    pub const NONE: Faults = Faults {
        error_500: 0.0,
        hang: 0.0,
        truncate: 0.0,
        reset: 0.0,
    };

    /// Probability that a request gets some fault.
    pub fn total(&self) -> f64 {
        self.error_500 + self.hang + self.truncate + self.reset
    }

    /// Checks that each probability is in `[0, 1]` and that they sum to at most 1.
    pub fn validate(&self) -> Result<(), InvalidFaults> {
        let all = [self.error_500, self.hang, self.truncate, self.reset];
        let reason = if all.iter().any(|p| !(0.0..=1.0).contains(p)) {
            "each probability must be in [0, 1]"
        } else if self.total() > 1.0 + 1e-9 {
            "the probabilities must sum to at most 1"
        } else {
            return Ok(());
        };
        Err(InvalidFaults {
            faults: *self,
            reason,
        })
    }

    /// Maps a uniform draw in `[0, 1)` to at most one fault (cumulative probabilities).
    fn pick(&self, u: f64) -> Option<Fault> {
        let mut edge = 0.0;
        for (p, fault) in [
            (self.error_500, Fault::Error500),
            (self.hang, Fault::Hang),
            (self.truncate, Fault::Truncate),
            (self.reset, Fault::Reset),
        ] {
            edge += p;
            if u < edge {
                return Some(fault);
            }
        }
        None
    }
}

impl fmt::Display for Faults {
    /// `none`, or the non-zero probabilities: `500 10%, hang 2%`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = [
            ("500", self.error_500),
            ("hang", self.hang),
            ("truncate", self.truncate),
            ("reset", self.reset),
        ]
        .iter()
        .filter(|(_, p)| *p != 0.0)
        .map(|(name, p)| format!("{name} {}%", (p * 1000.0).round() / 10.0))
        .collect();
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// One kind of injected failure (the values of `?fail=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Fault {
    /// `?fail=500`
    #[serde(rename = "500")]
    Error500,
    /// `?fail=hang`
    #[serde(rename = "hang")]
    Hang,
    /// `?fail=truncate`
    #[serde(rename = "truncate")]
    Truncate,
    /// `?fail=reset`
    #[serde(rename = "reset")]
    Reset,
    /// `?fail=stall` (never drawn at random: headers and half the body, then nothing)
    #[serde(rename = "stall")]
    Stall,
}

impl Fault {
    /// The spelling used in `?fail=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Error500 => "500",
            Fault::Hang => "hang",
            Fault::Truncate => "truncate",
            Fault::Reset => "reset",
            Fault::Stall => "stall",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "500" => Ok(Fault::Error500),
            "hang" => Ok(Fault::Hang),
            "truncate" => Ok(Fault::Truncate),
            "reset" => Ok(Fault::Reset),
            "stall" => Ok(Fault::Stall),
            other => Err(format!(
                "unknown fault {other:?}: expected 500, hang, truncate, reset, stall or none"
            )),
        }
    }
}

/// How the server behaves. `ServerConfig::default()` is fast and reliable: no latency, 64 KiB
/// files, no faults. Chain the setters to change it:
/// `ServerConfig::default().latency(Duration::from_millis(50)).seed(7)`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:0` (a free port; read it back with
    /// [`TestServer::addr`]).
    pub addr: SocketAddr,
    /// Delay before each `/files` response (headers included). Default 0.
    pub latency: Duration,
    /// Extra delay drawn uniformly in `[0, jitter)` and added to `latency`. Default 0.
    pub jitter: Duration,
    /// Body size of `/files/{name}` when the URL has no `?size=`. Default 64 KiB.
    pub file_size: usize,
    /// Fault probabilities at start; change them at run time with [`TestServer::set_faults`].
    pub faults: Faults,
    /// Seed of the fault and jitter draws. Default 42.
    pub seed: u64,
    /// Largest body a `?size=` may ask for (larger: 400). Default 1 GiB.
    pub max_body: usize,
    /// How long shutdown lets in-flight requests finish before closing their connections.
    /// Default 1 s.
    pub grace: Duration,
    /// Worker threads of the runtime [`TestServer::spawn`] creates (0: one per core). Ignored
    /// by [`TestServer::start`], which uses the caller's runtime. Default 0.
    pub worker_threads: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            file_size: 64 * 1024,
            faults: Faults::NONE,
            seed: 42,
            max_body: 1 << 30,
            grace: Duration::from_secs(1),
            worker_threads: 0,
        }
    }
}

impl ServerConfig {
    /// Sets [`ServerConfig::addr`].
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }
    /// Sets [`ServerConfig::latency`].
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }
    /// Sets [`ServerConfig::jitter`].
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }
    /// Sets [`ServerConfig::file_size`].
    pub fn file_size(mut self, bytes: usize) -> Self {
        self.file_size = bytes;
        self
    }
    /// Sets [`ServerConfig::faults`].
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }
    /// Sets [`ServerConfig::seed`].
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Sets [`ServerConfig::max_body`].
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }
    /// Sets [`ServerConfig::grace`].
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }
    /// Sets [`ServerConfig::worker_threads`].
    pub fn worker_threads(mut self, n: usize) -> Self {
        self.worker_threads = n;
        self
    }
}

// ------------------------------------------------------------------------------------------------
// Statistics
// ------------------------------------------------------------------------------------------------

/// Live counters, updated by the server with relaxed atomics (each counter is exact; a
/// snapshot is not one consistent instant across counters, which is fine for reporting).
///
/// Read them with [`ServerStats::snapshot`]; get a handle that outlives the server borrow with
/// [`TestServer::stats_handle`].
#[derive(Debug, Default)]
pub struct ServerStats {
    requests: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    status_2xx: AtomicU64,
    status_4xx: AtomicU64,
    status_5xx: AtomicU64,
    faults_500: AtomicU64,
    faults_hang: AtomicU64,
    faults_truncate: AtomicU64,
    faults_reset: AtomicU64,
    bytes_sent: AtomicU64,
    connections_accepted: AtomicU64,
    connections_open: AtomicU64,
    accept_errors: AtomicU64,
}

/// A copy of the [`ServerStats`] counters (also what `GET /stats` returns as JSON).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// Requests received, every route included (`/stats` too).
    pub requests: u64,
    /// Requests being handled now: from the request head until the response body is fully
    /// handed to hyper (or the request is abandoned).
    pub in_flight: u64,
    /// Highest `in_flight` seen: how many requests the clients really had in flight at once.
    pub max_in_flight: u64,
    /// Responses sent with a 2xx status (truncated responses included: their head was a 200).
    pub status_2xx: u64,
    /// Responses sent with a 4xx status.
    pub status_4xx: u64,
    /// Responses sent with a 5xx status (injected 500s, and 503s to hung requests at shutdown).
    pub status_5xx: u64,
    /// Injected 500 errors.
    pub faults_500: u64,
    /// Injected hangs.
    pub faults_hang: u64,
    /// Injected truncated bodies.
    pub faults_truncate: u64,
    /// Injected connection resets.
    pub faults_reset: u64,
    /// Response body bytes handed to hyper (what reached the socket, give or take the last
    /// chunk of an aborted response).
    pub bytes_sent: u64,
    /// TCP connections accepted.
    pub connections_accepted: u64,
    /// TCP connections open now.
    pub connections_open: u64,
    /// Failed `accept` calls (typically "too many open files").
    pub accept_errors: u64,
}

impl ServerStats {
    /// Copies every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.requests.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            max_in_flight: self.max_in_flight.load(Relaxed),
            status_2xx: self.status_2xx.load(Relaxed),
            status_4xx: self.status_4xx.load(Relaxed),
            status_5xx: self.status_5xx.load(Relaxed),
            faults_500: self.faults_500.load(Relaxed),
            faults_hang: self.faults_hang.load(Relaxed),
            faults_truncate: self.faults_truncate.load(Relaxed),
            faults_reset: self.faults_reset.load(Relaxed),
            bytes_sent: self.bytes_sent.load(Relaxed),
            connections_accepted: self.connections_accepted.load(Relaxed),
            connections_open: self.connections_open.load(Relaxed),
            accept_errors: self.accept_errors.load(Relaxed),
        }
    }

    /// Zeroes the cumulative counters, so one server can measure several runs in turn. The
    /// gauges (`in_flight`, `connections_open`) keep their value and `max_in_flight` restarts
    /// from the current `in_flight`.
    pub fn reset(&self) {
        for counter in [
            &self.requests,
            &self.status_2xx,
            &self.status_4xx,
            &self.status_5xx,
            &self.faults_500,
            &self.faults_hang,
            &self.faults_truncate,
            &self.faults_reset,
            &self.bytes_sent,
            &self.connections_accepted,
            &self.accept_errors,
        ] {
            counter.store(0, Relaxed);
        }
        self.max_in_flight
            .store(self.in_flight.load(Relaxed), Relaxed);
    }

    fn count_fault(&self, fault: Fault) {
        let counter = match fault {
            Fault::Error500 => &self.faults_500,
            Fault::Hang | Fault::Stall => &self.faults_hang,
            Fault::Truncate => &self.faults_truncate,
            Fault::Reset => &self.faults_reset,
        };
        counter.fetch_add(1, Relaxed);
    }

    fn count_status(&self, status: StatusCode) {
        let counter = match status.as_u16() {
            200..=299 => &self.status_2xx,
            400..=499 => &self.status_4xx,
            500..=599 => &self.status_5xx,
            _ => return,
        };
        counter.fetch_add(1, Relaxed);
    }
}

impl StatsSnapshot {
    /// Faults of every kind.
    pub fn faults(&self) -> u64 {
        self.faults_500 + self.faults_hang + self.faults_truncate + self.faults_reset
    }
}

impl fmt::Display for StatsSnapshot {
    /// One line: `requests 1200 (in flight 3, max 512) | 2xx 1180 4xx 0 5xx 20 | faults 500:20
    /// hang:0 truncate:0 reset:0 | 75.0 MiB sent | connections 512 open, 530 accepted`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "requests {} (in flight {}, max {}) | 2xx {} 4xx {} 5xx {} | faults 500:{} hang:{} \
             truncate:{} reset:{} | {:.1} MiB sent | connections {} open, {} accepted",
            self.requests,
            self.in_flight,
            self.max_in_flight,
            self.status_2xx,
            self.status_4xx,
            self.status_5xx,
            self.faults_500,
            self.faults_hang,
            self.faults_truncate,
            self.faults_reset,
            self.bytes_sent as f64 / (1024.0 * 1024.0),
            self.connections_open,
            self.connections_accepted,
        )?;
        if self.accept_errors > 0 {
            write!(f, ", {} accept errors", self.accept_errors)?;
        }
        Ok(())
    }
}

/// Counts one request in flight for as long as it lives (request head → end of body).
struct InFlight {
    stats: Arc<ServerStats>,
}

impl InFlight {
    fn enter(stats: &Arc<ServerStats>) -> Self {
        stats.requests.fetch_add(1, Relaxed);
        let now = stats.in_flight.fetch_add(1, Relaxed) + 1;
        stats.max_in_flight.fetch_max(now, Relaxed);
        InFlight {
            stats: Arc::clone(stats),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.stats.in_flight.fetch_sub(1, Relaxed);
    }
}

/// Counts one open connection for as long as it lives.
struct OpenConnection {
    stats: Arc<ServerStats>,
}

impl OpenConnection {
    fn enter(stats: &Arc<ServerStats>) -> Self {
        stats.connections_accepted.fetch_add(1, Relaxed);
        stats.connections_open.fetch_add(1, Relaxed);
        OpenConnection {
            stats: Arc::clone(stats),
        }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.stats.connections_open.fetch_sub(1, Relaxed);
    }
}

// ------------------------------------------------------------------------------------------------
// File contents
// ------------------------------------------------------------------------------------------------

/// The name of the `i`-th file of [`url_list`]: `000042.bin`.
pub fn file_name(i: usize) -> String {
    format!("{i:06}.bin")
}

/// `n` URLs `{base_url}/files/000000.bin?size={size}` … with predictable names, so a client can
/// check each body with [`check_body`] and save it under its name.
pub fn url_list(base_url: &str, n: usize, size: usize) -> Vec<String> {
    let base = base_url.trim_end_matches('/');
    (0..n)
        .map(|i| format!("{base}/files/{}?size={size}", file_name(i)))
        .collect()
}

/// Writes `urls` one per line (the format the Python peers and the downloaders read).
pub fn write_url_file(path: impl AsRef<FsPath>, urls: &[String]) -> io::Result<()> {
    let mut text = String::with_capacity(urls.iter().map(|u| u.len() + 1).sum());
    for url in urls {
        text.push_str(url);
        text.push('\n');
    }
    std::fs::write(path, text)
}

/// A URL list that exercises the downloaders' output-name rule (`shared::urls`): one last
/// segment in two folders, the same in another case, a name a numbered duplicate would take, a
/// `.part` suffix. Returns the list (one URL per line) and, per line, the file name the rule
/// gives it and the `{name}` its body comes from.
pub fn colliding_url_list(base_url: &str) -> (String, [(&'static str, &'static str); 6]) {
    let expected = [
        ("file.txt", "a/file.txt"),
        ("file-3.txt", "b/file.txt"),
        ("file-2.txt", "ok/file-2.txt"),
        ("FILE-4.TXT", "c/FILE.TXT"),
        ("k.bin", "k.bin"),
        ("k.bin.part", "k.bin.part"),
    ];
    let base = base_url.trim_end_matches('/');
    let list = expected
        .iter()
        .map(|(_, served)| format!("{base}/files/{served}\n"))
        .collect();
    (list, expected)
}

/// Checks that `dir` holds exactly the files of [`colliding_url_list`], each with its own body
/// of `size` bytes; the error says what is wrong.
pub fn check_colliding_downloads(dir: &FsPath, size: usize) -> Result<(), String> {
    let (_, expected) = colliding_url_list("");
    let mut want: Vec<&str> = expected.iter().map(|(name, _)| *name).collect();
    want.sort_unstable();
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    found.sort_unstable();
    if found != want {
        return Err(format!("files {found:?}, expected {want:?}"));
    }
    for (name, served) in expected {
        let body = std::fs::read(dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
        if body.len() != size || !check_body(served, &body) {
            return Err(format!("{name} does not hold /files/{served}"));
        }
    }
    Ok(())
}

/// A URL file whose line 2 is not UTF-8 (`caf\xE9`) between the URLs of files 1 and 2: the
/// downloaders must report that line and download the others.
pub fn url_file_with_a_non_utf8_line(base_url: &str) -> Vec<u8> {
    let base = base_url.trim_end_matches('/');
    let mut text = format!("{base}/files/{}\n", file_name(1)).into_bytes();
    text.extend_from_slice(b"http://127.0.0.1/caf\xE9.bin\n");
    text.extend_from_slice(format!("{base}/files/{}\n", file_name(2)).as_bytes());
    text
}

/// The `{name}` of a `…/files/{name}?…` URL, if it is one.
pub fn file_name_of(url: &str) -> Option<&str> {
    let path = url.split(['?', '#']).next()?;
    let (_, name) = path.rsplit_once("/files/")?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// The body `GET /files/{name}?size={size}` returns: `size` bytes, a deterministic function of
/// `name` (the server's seed and config do not change it).
pub fn expected_body(name: &str, size: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(size);
    let start = name_offset(name);
    let block = block();
    while body.len() < size {
        let from = (start + body.len()) % BLOCK_LEN;
        let len = (size - body.len()).min(BLOCK_LEN);
        body.extend_from_slice(&block[from..from + len]);
    }
    body
}

/// True if `body` is exactly what the server sends for `name` at that length, without
/// allocating a copy. Use it to verify downloads: `check_body("000042.bin", &bytes)`.
pub fn check_body(name: &str, body: &[u8]) -> bool {
    let start = name_offset(name);
    let block = block();
    body.chunks(BLOCK_LEN).enumerate().all(|(i, chunk)| {
        let from = (start + i * BLOCK_LEN) % BLOCK_LEN;
        chunk == &block[from..from + chunk.len()]
    })
}

/// Where in the block the file `name` starts (FNV-1a hash of the name).
fn name_offset(name: &str) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % BLOCK_LEN as u64) as usize
}

/// One pseudo-random block, stored twice in a row so that any window of up to `BLOCK_LEN`
/// bytes starting anywhere in the first copy is one contiguous slice. Bodies are `Bytes`
/// slices of it: no per-request allocation, no copy, no CPU spent generating data.
fn block() -> &'static Bytes {
    static BLOCK: OnceLock<Bytes> = OnceLock::new();
    BLOCK.get_or_init(|| {
        let mut state = 0x5eed_b10c_u64;
        let mut once = Vec::with_capacity(BLOCK_LEN);
        while once.len() < BLOCK_LEN {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            once.extend_from_slice(&mix64(state).to_le_bytes());
        }
        let mut twice = once.clone();
        twice.extend_from_slice(&once);
        Bytes::from(twice)
    })
}

/// Bytes `[pos, pos + len)` of the file that starts at `start` in the block (`len <= BLOCK_LEN`).
fn file_slice(start: usize, pos: usize, len: usize) -> Bytes {
    let from = (start + pos) % BLOCK_LEN;
    block().slice(from..from + len)
}

/// The chunks of bytes `[0, len)` of the file that starts at `start` in the block.
fn file_chunks(start: usize, len: usize) -> impl Iterator<Item = Bytes> + Send + 'static {
    (0..len)
        .step_by(CHUNK)
        .map(move |pos| file_slice(start, pos, CHUNK.min(len - pos)))
}

/// splitmix64's finaliser: a good 64-bit mix, enough for test data and fault draws.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Uniform draw in `[0, 1)` number `n` of stream `stream` for `seed`. A counter-based
/// generator (a hash of seed and sequence number) needs no lock, unlike one shared RNG.
fn draw(seed: u64, n: u64, stream: u64) -> f64 {
    let bits = mix64(seed ^ mix64(n.wrapping_mul(2).wrapping_add(stream)));
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

// ------------------------------------------------------------------------------------------------
// Request handling
// ------------------------------------------------------------------------------------------------

/// State shared by every connection of one server.
struct Shared {
    latency: Duration,
    jitter: Duration,
    file_size: usize,
    seed: u64,
    max_body: usize,
    grace: Duration,
    /// Read on every `/files` request, written by `set_faults`; a read lock costs a few ns.
    faults: RwLock<Faults>,
    /// Sequence number of the next fault/jitter draw.
    draws: AtomicU64,
    stats: Arc<ServerStats>,
    /// Cancelled when the server shuts down.
    shutdown: CancellationToken,
}

/// Per-connection handle given to handlers (as a request extension): cancelling `reset` makes
/// the connection task abort the TCP connection with RST.
#[derive(Clone)]
struct ConnControl {
    reset: CancellationToken,
}

#[derive(Debug, Deserialize)]
struct FileQuery {
    size: Option<usize>,
    latency_ms: Option<u64>,
    jitter_ms: Option<u64>,
    fail: Option<String>,
}

/// The routes, as printed by `GET /` and `test-server --help`.
pub const ROUTES: &str = "\
Routes:
  GET /files/{name}                 deterministic body of the configured size (Content-Length set);
                                    names may have folders: /files/a/x.bin and /files/b/x.bin differ
      ?size=N                       ... N bytes instead
      ?latency_ms=N&jitter_ms=N     ... this latency (+ uniform jitter) instead of the configured one
      ?fail=500|hang|truncate|reset ... force that fault (fail=none: force success)
      ?fail=stall                   ... headers and half the body, then nothing until shutdown
  GET /status/{code}                respond with that status (200-599)
  GET /stats                        counters as JSON
  GET /health                       ok
";

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(|| async { ROUTES }))
        .route("/health", get(|| async { "ok\n" }))
        .route("/stats", get(stats_route))
        .route("/status/{code}", get(status_route))
        .route("/files/{*name}", get(file_route))
        .fallback(|| async { (StatusCode::NOT_FOUND, format!("not found\n\n{ROUTES}")) })
        .with_state(shared)
}

async fn stats_route(State(shared): State<Arc<Shared>>) -> Json<StatsSnapshot> {
    Json(shared.stats.snapshot())
}

async fn status_route(Path(code): Path<String>) -> Response {
    match code.parse::<u16>().ok().filter(|c| (200..=599).contains(c)) {
        Some(code) => {
            let status = StatusCode::from_u16(code).expect("200..=599 are valid status codes");
            (status, format!("status {code}\n")).into_response()
        }
        None => (
            StatusCode::BAD_REQUEST,
            format!("bad status code {code:?}: expected 200-599\n"),
        )
            .into_response(),
    }
}

async fn file_route(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<ConnControl>,
    Path(name): Path<String>,
    Query(query): Query<FileQuery>,
) -> Response {
    let size = query.size.unwrap_or(shared.file_size);
    if size > shared.max_body {
        let msg = format!("size {size} is larger than max_body {}\n", shared.max_body);
        return (StatusCode::BAD_REQUEST, msg).into_response();
    }
    // `Some(None)`: forced success; `None`: draw.
    let forced: Option<Option<Fault>> = match query.fail.as_deref() {
        None => None,
        Some("none") => Some(None),
        Some(other) => match other.parse() {
            Ok(fault) => Some(Some(fault)),
            Err(msg) => return (StatusCode::BAD_REQUEST, msg + "\n").into_response(),
        },
    };
    let n = shared.draws.fetch_add(1, Relaxed);
    let fault = forced.unwrap_or_else(|| {
        let faults = *shared.faults.read().unwrap_or_else(PoisonError::into_inner);
        faults.pick(draw(shared.seed, n, 0))
    });
    let latency = query
        .latency_ms
        .map_or(shared.latency, Duration::from_millis);
    let jitter = query.jitter_ms.map_or(shared.jitter, Duration::from_millis);
    let delay = latency + jitter.mul_f64(draw(shared.seed, n, 1));
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    if let Some(fault) = fault {
        shared.stats.count_fault(fault);
        tracing::info!(%fault, "injected fault");
    }
    let start = name_offset(&name);
    match fault {
        None => file_response(
            size,
            Body::from_stream(stream::iter(
                file_chunks(start, size).map(Ok::<_, Infallible>),
            )),
        ),
        Some(Fault::Error500) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "injected fault: 500\n").into_response()
        }
        Some(Fault::Hang) => {
            // Hold the request until shutdown; then answer so the connection can close cleanly.
            // If the client gives up first, hyper sees its connection close and drops this future.
            shared.shutdown.cancelled().await;
            (StatusCode::SERVICE_UNAVAILABLE, "server shutting down\n").into_response()
        }
        Some(Fault::Truncate) => {
            // Promise at least one byte so even an empty file is visibly cut short.
            let promised = size.max(1);
            let sent = file_chunks(start, size / 2).map(Ok::<_, io::Error>);
            // The pause lets hyper flush the half body before the error closes the connection;
            // without it the client might see only the headers.
            let cut = stream::once(async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "injected fault: truncate",
                ))
            });
            file_response(promised, Body::from_stream(stream::iter(sent).chain(cut)))
        }
        Some(Fault::Stall) => {
            // Half the body, then silence until shutdown (or until the client hangs up, which
            // drops this body and its connection).
            let promised = size.max(1);
            let sent = file_chunks(start, size / 2).map(Ok::<_, io::Error>);
            let shutdown = shared.shutdown.clone();
            let silence = stream::once(async move {
                shutdown.cancelled().await;
                Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "server shutting down during a stall",
                ))
            });
            file_response(
                promised,
                Body::from_stream(stream::iter(sent).chain(silence)),
            )
        }
        Some(Fault::Reset) => {
            // The connection task sees the token, sets SO_LINGER 0 and drops the socket: the
            // kernel sends RST. This future is dropped with the connection, never completing.
            conn.reset.cancel();
            std::future::pending().await
        }
    }
}

fn file_response(content_length: usize, body: Body) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, content_length)
        .body(body)
        .expect("static headers and a number are a valid response head")
}

// ------------------------------------------------------------------------------------------------
// Accept loop and connections
// ------------------------------------------------------------------------------------------------

/// Accepts connections until shutdown, then waits for every connection task to end.
///
/// A hand-driven loop instead of `axum::serve` because a handler must be able to abort its own
/// TCP connection (the reset fault), which needs the socket, and because we count connections.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let router = router(Arc::clone(&shared));
    let tracker = TaskTracker::new();
    let mut next_id = 0u64;
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                next_id += 1;
                // Every event of this connection, its requests' included, carries `conn{id, peer}`.
                let span = tracing::info_span!("conn", id = next_id, %peer);
                tracker.spawn(
                    serve_connection(stream, Arc::clone(&shared), router.clone()).instrument(span),
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                // Usually EMFILE (out of file descriptors) or a connection aborted while queued.
                // Back off instead of spinning on an error that repeats until a socket closes.
                shared.stats.accept_errors.fetch_add(1, Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    drop(listener); // new connects are refused from here on
    tracker.close();
    tracker.wait().await;
}

enum Ended {
    Done,
    Reset,
    Shutdown,
}

/// Serves one keep-alive connection until the client closes it, a handler asks for a reset,
/// or the server shuts down.
async fn serve_connection(stream: TcpStream, shared: Arc<Shared>, router: Router) {
    let _open = OpenConnection::enter(&shared.stats);
    tracing::debug!("connection opened");
    // Small responses must not wait for Nagle's algorithm (a 40 ms stall with delayed ACKs).
    let _ = stream.set_nodelay(true);
    let control = ConnControl {
        reset: CancellationToken::new(),
    };
    let stats = Arc::clone(&shared.stats);
    let per_request = control.clone();
    let service = service_fn(move |mut request: hyper::Request<Incoming>| {
        let in_flight = InFlight::enter(&stats);
        let span = tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path()
        );
        request.extensions_mut().insert(per_request.clone());
        let response = {
            let _entered = span.enter(); // the router's synchronous part runs in the span too
            TowerToHyperService::new(router.clone()).call(request)
        };
        let stats = Arc::clone(&stats);
        async move {
            let response = response.await?;
            tracing::debug!(status = response.status().as_u16(), "response");
            stats.count_status(response.status());
            // The body carries the in-flight guard (so a request counts until its last byte)
            // and counts the bytes as hyper pulls them.
            Ok::<_, Infallible>(response.map(move |body| {
                body.map_frame(move |frame| {
                    if let Some(data) = frame.data_ref() {
                        in_flight
                            .stats
                            .bytes_sent
                            .fetch_add(data.len() as u64, Relaxed);
                    }
                    frame
                })
            }))
        }
        .instrument(span)
    });
    let mut conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);

    // Errors of a connection (client went away, bad request) are the client's business: the
    // server logs nothing and keeps serving the others.
    let ended = tokio::select! {
        _ = &mut conn => Ended::Done,
        _ = control.reset.cancelled() => Ended::Reset,
        _ = shared.shutdown.cancelled() => Ended::Shutdown,
    };
    let ended = match ended {
        Ended::Shutdown => {
            // Finish the request in progress (if any), then close; idle connections close now.
            Pin::new(&mut conn).graceful_shutdown();
            tokio::select! {
                _ = &mut conn => Ended::Done,
                _ = control.reset.cancelled() => Ended::Reset,
                _ = tokio::time::sleep(shared.grace) => Ended::Done, // dropped: closed with FIN
            }
        }
        other => other,
    };
    tracing::debug!(
        ended = match ended {
            Ended::Done => "closed",
            Ended::Reset => "reset",
            Ended::Shutdown => "shutdown",
        },
        "connection ended"
    );
    if let Ended::Reset = ended {
        let stream = conn.into_parts().io.into_inner();
        // SO_LINGER 0 turns close() into an abort: the kernel discards unsent data and sends
        // RST instead of FIN. (Tokio deprecates SO_LINGER with a timeout because close would
        // block; a zero linger never blocks.)
        let _ = stream.set_zero_linger();
        drop(stream);
    }
}

// ------------------------------------------------------------------------------------------------
// The server handle
// ------------------------------------------------------------------------------------------------

/// A running test server. Stops on [`TestServer::shutdown`], [`TestServer::shutdown_blocking`]
/// or `Drop`.
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Cancelled once the accept loop and every connection have ended.
    stopped: CancellationToken,
    /// The thread that owns the runtime of a [`TestServer::spawn`]ed server.
    thread: Option<thread::JoinHandle<()>>,
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .field("own_runtime", &self.thread.is_some())
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// Starts the server as tasks of the current tokio runtime (call it from async code).
    ///
    /// Works on a current-thread runtime too (`#[tokio::test]`), but then the server shares
    /// that one thread with the client.
    pub async fn start(config: ServerConfig) -> io::Result<TestServer> {
        let (listener, shared) = prepare(&config)?;
        let listener = TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        let stopped = CancellationToken::new();
        let done = stopped.clone();
        let task_shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let _done = done.drop_guard();
            accept_loop(listener, task_shared).await;
        });
        Ok(TestServer {
            addr,
            shared,
            stopped,
            thread: None,
        })
    }

    /// Starts the server on its own multi-thread tokio runtime, on a background thread named
    /// `test-server`. For programs without a runtime (plain `fn main`, std threads, blocking
    /// clients); the listener is bound before this returns, so the URL works at once.
    pub fn spawn(config: ServerConfig) -> io::Result<TestServer> {
        let (listener, shared) = prepare(&config)?;
        let addr = listener.local_addr()?;
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if config.worker_threads > 0 {
            builder.worker_threads(config.worker_threads);
        }
        let runtime = builder.thread_name("test-server").enable_all().build()?;
        let listener = {
            let _guard = runtime.enter(); // registers the socket with this runtime's reactor
            TcpListener::from_std(listener)
        };
        let listener = match listener {
            Ok(listener) => listener,
            Err(e) => {
                // Dropping a runtime inside another one panics; this never blocks.
                runtime.shutdown_background();
                return Err(e);
            }
        };
        let stopped = CancellationToken::new();
        let done = stopped.clone();
        let task_shared = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("test-server".into())
            .spawn(move || {
                let _done = done.drop_guard();
                runtime.block_on(accept_loop(listener, task_shared));
            })?;
        Ok(TestServer {
            addr,
            shared,
            stopped,
            thread: Some(thread),
        })
    }

    /// The address it listens on (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `base_url` + `path` (a leading `/` is added if missing): `server.url("/status/404")`.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with('/') {
            format!("http://{}{path}", self.addr)
        } else {
            format!("http://{}/{path}", self.addr)
        }
    }

    /// `http://127.0.0.1:PORT/files/000042.bin` (configured size; see [`file_name`]).
    pub fn file_url(&self, i: usize) -> String {
        format!("http://{}/files/{}", self.addr, file_name(i))
    }

    /// A copy of the counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// The live counters, to read from another thread or task (or to [`ServerStats::reset`]).
    pub fn stats_handle(&self) -> Arc<ServerStats> {
        Arc::clone(&self.shared.stats)
    }

    /// The fault probabilities in force.
    pub fn faults(&self) -> Faults {
        *self
            .shared
            .faults
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the fault probabilities for the requests that arrive from now on (a circuit
    /// breaker demo turns an outage on and off while clients run).
    ///
    /// # Panics
    /// If `faults` is invalid (see [`Faults::validate`]; call it first on user input).
    pub fn set_faults(&self, faults: Faults) {
        if let Err(e) = faults.validate() {
            panic!("set_faults: {e}");
        }
        *self
            .shared
            .faults
            .write()
            .unwrap_or_else(PoisonError::into_inner) = faults;
    }

    /// Stops the server and waits until every connection is closed: at most about
    /// [`ServerConfig::grace`] after in-flight requests, hung requests included.
    pub async fn shutdown(self) {
        self.shared.shutdown.cancel();
        self.stopped.cancelled().await;
        // Drop joins the runtime thread of a spawned server; it has finished or is finishing.
    }

    /// [`TestServer::shutdown`] for code without a runtime. For a [`TestServer::spawn`]ed
    /// server it blocks until the server has stopped. For a [`TestServer::start`]ed one it
    /// cannot wait (blocking would stall the runtime the server runs on): it only signals the
    /// stop, like `Drop`.
    pub fn shutdown_blocking(self) {
        drop(self);
    }
}

impl Drop for TestServer {
    /// Signals the stop; for a spawned server also joins its thread (at most about `grace`).
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
        if let Some(thread) = self.thread.take() {
            // A panic in the server thread has already been printed; nothing to add here.
            let _ = thread.join();
        }
    }
}

/// Validates the config, raises the open-files limit and binds the listener (synchronously,
/// so bind errors are returned to the caller and the port is known before anything runs).
fn prepare(config: &ServerConfig) -> io::Result<(StdTcpListener, Arc<Shared>)> {
    config
        .faults
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // Best effort: thousands of connections need thousands of descriptors; the default soft
    // limit is often 1024. If it fails we still run, and accept errors show it in the stats.
    let _ = crate::monitor::raise_nofile_limit();
    let listener = bind(config.addr)?;
    let shared = Arc::new(Shared {
        latency: config.latency,
        jitter: config.jitter,
        file_size: config.file_size,
        seed: config.seed,
        max_body: config.max_body,
        grace: config.grace,
        faults: RwLock::new(config.faults),
        draws: AtomicU64::new(0),
        stats: Arc::new(ServerStats::default()),
        shutdown: CancellationToken::new(),
    });
    Ok((listener, shared))
}

/// A non-blocking listener with a large backlog (`std` and tokio both use 128).
fn bind(addr: SocketAddr) -> io::Result<StdTcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Restarting the binary on a fixed --port must not fail on connections in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_follows_cumulative_probabilities() {
        let f = Faults {
            error_500: 0.1,
            hang: 0.2,
            truncate: 0.3,
            reset: 0.1,
        };
        assert_eq!(f.pick(0.05), Some(Fault::Error500));
        assert_eq!(f.pick(0.15), Some(Fault::Hang));
        assert_eq!(f.pick(0.45), Some(Fault::Truncate));
        assert_eq!(f.pick(0.65), Some(Fault::Reset));
        assert_eq!(f.pick(0.75), None);
        assert_eq!(Faults::NONE.pick(0.0), None);
        assert_eq!(Faults::NONE.to_string(), "none");
        let some = Faults {
            error_500: 0.1,
            reset: 0.025,
            ..Faults::NONE
        };
        assert_eq!(some.to_string(), "500 10%, reset 2.5%");
    }

    #[test]
    fn validate_rejects_bad_probabilities() {
        assert!(Faults::NONE.validate().is_ok());
        let too_much = Faults {
            error_500: 0.6,
            reset: 0.6,
            ..Faults::NONE
        };
        assert!(too_much.validate().is_err());
        let negative = Faults {
            hang: -0.1,
            ..Faults::NONE
        };
        assert!(negative.validate().is_err());
        let nan = Faults {
            truncate: f64::NAN,
            ..Faults::NONE
        };
        assert!(nan.validate().is_err());
    }

    #[test]
    fn draws_are_uniform_enough_and_seeded() {
        let n = 100_000;
        let mean: f64 = (0..n).map(|i| draw(7, i, 0)).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
        assert!((0..n).all(|i| (0.0..1.0).contains(&draw(7, i, 0))));
        assert_eq!(draw(7, 3, 0), draw(7, 3, 0));
        assert_ne!(draw(7, 3, 0), draw(8, 3, 0));
        assert_ne!(draw(7, 3, 0), draw(7, 3, 1));
    }

    #[test]
    fn bodies_are_deterministic_prefixes_and_differ_by_name() {
        let a = expected_body("a.bin", 3 * BLOCK_LEN + 17);
        assert_eq!(a.len(), 3 * BLOCK_LEN + 17);
        assert_eq!(expected_body("a.bin", 1000), a[..1000]);
        assert_ne!(expected_body("b.bin", 1000), a[..1000]);
        assert!(check_body("a.bin", &a));
        assert!(check_body("a.bin", &a[..5]));
        assert!(check_body("a.bin", &[]));
        assert!(!check_body("b.bin", &a));
        let mut corrupt = a.clone();
        corrupt[BLOCK_LEN + 3] ^= 1;
        assert!(!check_body("a.bin", &corrupt));
        // The chunks the server streams are the same bytes.
        let streamed: Vec<u8> = file_chunks(name_offset("a.bin"), a.len())
            .flat_map(|b| b.to_vec())
            .collect();
        assert_eq!(streamed, a);
    }

    #[test]
    fn url_helpers() {
        let urls = url_list("http://127.0.0.1:9/", 3, 10);
        assert_eq!(urls[2], "http://127.0.0.1:9/files/000002.bin?size=10");
        assert_eq!(file_name_of(&urls[2]), Some("000002.bin"));
        assert_eq!(file_name_of("http://h/files/x.bin"), Some("x.bin"));
        assert_eq!(file_name_of("http://h/status/404"), None);
        assert_eq!(file_name_of("http://h/files/"), None);
    }

    #[test]
    fn fault_names_round_trip() {
        for f in [Fault::Error500, Fault::Hang, Fault::Truncate, Fault::Reset] {
            assert_eq!(f.as_str().parse::<Fault>(), Ok(f));
        }
        assert!("nope".parse::<Fault>().is_err());
    }
}
