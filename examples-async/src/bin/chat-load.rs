//! Load generator for line chat servers: N concurrent clients, M timestamped broadcasts, latency.
//!
//! Course section 8.2 (programmation asynchrone): measures the "10000 connexions simultanées"
//! claim instead of believing it. Works against `chat-server` *and* any line-broadcast server
//! (e.g. `/work/shared/peers/py_chat_server.py`): it only counts lines that contain its own marker
//! `@@load`, so welcome lines, nicknames and notices are ignored.
//!
//! With no `--addr` it starts the sibling `chat-server` binary (next to its own executable) on
//! `127.0.0.1:0`, runs a modest load (500 clients), and stops it: build both first
//! (`cargo build --release -p examples-async`).
//!
//! # Concepts
//! - **Thousands of sockets from one process**: one small task per client (tokio tasks are a few
//!   hundred bytes), connects bounded by `buffer_unordered(--connect-concurrency)` so the server's
//!   listen backlog does not overflow into 1 s SYN retries.
//! - **The ephemeral-port limit**: one source address has ~28,000 ports (`ip_local_port_range`);
//!   binding clients to 127.0.0.1, 127.0.0.2, ... (`--source-ips`) multiplies that. All of
//!   127.0.0.0/8 is loopback on Linux.
//! - **Measuring latency honestly**: each broadcast carries its send time (µs since a shared
//!   `Instant`, same process, same clock); every receiver computes its own latency; an
//!   `hdrhistogram` gives the pooled p50/p99/max in fixed memory, and each broadcast's own p99
//!   comes exactly from its samples, because one broadcast is what the question is about.
//! - **A barrier before measuring**: a `sync` line is repeated until every client has seen one, so
//!   "connected" means "registered by the server", not just "TCP handshake done".
//! - **Bounded wait**: after the last broadcast it waits at most `--wait`, then reports what
//!   arrived. A load tool that hangs when the server loses messages is useless.
//! - **A load tool steals from what it measures** when both share the machine: it runs on one
//!   thread (`--threads`), and it reports the CPU each side spent per broadcast (user and
//!   system, from `/proc/PID/stat`), so a latency can be read against the work behind it.
//!
//! # Run
//! ```text
//! cargo build --release -p examples-async
//! target/release/chat-load                                   # starts chat-server itself, 500 clients
//! target/release/chat-server &                               # terminal 1 (127.0.0.1:6142)
//! target/release/chat-load --addr 127.0.0.1:6142 --clients 10000 --server-pid $(pgrep -n chat-server)
//! target/release/chat-load --addr 127.0.0.1:6142 --clients 19000 --source-ips 2 --json
//! python3 /work/shared/peers/py_chat_server.py 6143 &        # the asyncio peer, same load
//! target/release/chat-load --addr 127.0.0.1:6143 --clients 10000 --server-pid $(pgrep -nf py_chat_server)
//! ```
//!
//! # What to observe
//! - Connect time and errors: 10,000 clients connect in about a second with zero errors; try
//!   `--connect-concurrency 20000` against a server with a small backlog and watch connect time.
//! - `server rss`: memory growth per idle connection (needs `--server-pid`, Linux `/proc`).
//! - p99 of one broadcast to 10,000 clients: each broadcast's own p99, their median and worst,
//!   and the p99 of all of them pooled (the worst broadcasts decide it). On 2 cores it is mostly
//!   kernel loopback work: the "CPU per broadcast" lines show the server's system time dwarfing
//!   its user time (on loopback the sender's kernel also does the receiver's TCP work).
//! - Deliveries received must equal expected; if not, the server dropped someone (see its stats).
//!
//! # Exercises
//! 1. Make every client a sender (`--senders K`): how does p99 move with the number of senders?
//! 2. Add an open-loop rate mode (`--rate 1000/s`) and find the rate where p99 explodes.
//! 3. Replace the per-client latency `Vec` by one `Mutex<Histogram>`: measure the difference.
//! 4. Stop reading in 1% of the clients (`--stuck 1`) and check the server drops only them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures::StreamExt;
use hdrhistogram::Histogram;
use shared::report::{CpuSplit, process_cpu};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

const MARKER: &str = "@@load";

/// Load generator for line chat servers (see the file header).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Server to load; without it, start the sibling `chat-server` binary on 127.0.0.1:0.
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Concurrent clients (one of them sends the broadcasts).
    #[arg(long, default_value_t = 500)]
    clients: usize,
    /// Broadcasts to send (each one reaches clients - 1 receivers).
    #[arg(long, default_value_t = 5)]
    messages: usize,
    /// Pause between broadcasts, so each one is measured on its own.
    #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Spread clients over 127.0.0.1 .. 127.0.0.K (default: one address per 10,000 clients).
    #[arg(long)]
    source_ips: Option<u8>,
    /// Connects in flight at once.
    #[arg(long, default_value_t = 1000)]
    connect_concurrency: usize,
    /// After the last broadcast, wait at most this long for missing deliveries.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    wait: Duration,
    /// PID of the server, to report its memory growth per connection (from /proc/PID/status).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Runtime threads of the load tool itself (1 = a current-thread runtime). More threads
    /// only help when the load tool, not the server, is the bottleneck.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

/// What the receivers share. Atomics only: 10,000 tasks touching one `Mutex` per line would
/// serialise them.
struct Tally {
    /// Microseconds since this `Instant` are the timestamps inside the broadcasts.
    epoch: Instant,
    /// Clients that have seen a `sync` line (the barrier).
    synced: AtomicUsize,
    /// Measured lines received, all clients together.
    received: AtomicU64,
    /// Per broadcast: the latest arrival, in µs after its send (for the delivery rate).
    span_us: Vec<AtomicU64>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.clients < 2 {
        bail!("--clients must be at least 2 (one sender, one receiver)");
    }
    // One thread by default: the load tool shares the cores with the server it measures, and a
    // second worker mostly adds cross-thread wake-ups, time taken from the server. Measured per
    // 10,000-client broadcast: our kernel time 38–52 ms with two workers, 24–33 ms with one;
    // the server's pooled p99 106–128 ms against 83–112 ms.
    let rt = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .context("building the runtime")?;
    // Our own open-file limit matters as much as the server's: one fd per client.
    let limit = shared::monitor::raise_nofile_limit().context("raising RLIMIT_NOFILE")?;
    if args.clients as u64 + 32 > limit {
        bail!(
            "{} clients need {} open files, the limit is {limit}",
            args.clients,
            args.clients + 32
        );
    }
    let mut own_server = match args.addr {
        Some(_) => None,
        None => Some(OwnServer::start()?),
    };
    let addr = args
        .addr
        .or(own_server.as_ref().map(|s| s.addr))
        .expect("an address or our own server");
    let pid = args
        .server_pid
        .or(own_server.as_ref().map(|s| s.child.id()));
    let result = rt.block_on(run(&args, addr, pid));
    if let Some(server) = own_server.as_mut() {
        server.stop();
    }
    let report = result?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).context("serialising the report")?
        );
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct Report {
    addr: String,
    clients: usize,
    source_ips: u8,
    connect_s: f64,
    connect_errors: usize,
    synced: usize,
    messages: usize,
    deliveries_expected: u64,
    deliveries_received: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    deliveries_per_s: f64,
    /// The last arrival of each broadcast, in ms after it was sent.
    per_broadcast_ms: Vec<f64>,
    /// Each broadcast's own p99, in ms: how one broadcast fares, without the worst of M deciding.
    per_broadcast_p99_ms: Vec<f64>,
    broadcast_p99_median_ms: f64,
    broadcast_p99_worst_ms: f64,
    server_rss_kib_per_conn: Option<f64>,
    /// CPU the server spent per broadcast (needs `--server-pid`), user and system, in ms.
    server_cpu_ms_per_broadcast: Option<CpuMs>,
    /// CPU this load tool spent per broadcast, user and system, in ms.
    load_cpu_ms_per_broadcast: Option<CpuMs>,
}

#[derive(serde::Serialize, Clone, Copy)]
struct CpuMs {
    user: f64,
    system: f64,
}

impl CpuMs {
    fn per(spent: CpuSplit, broadcasts: usize) -> CpuMs {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0 / broadcasts.max(1) as f64;
        CpuMs {
            user: ms(spent.user),
            system: ms(spent.system),
        }
    }
}

async fn run(args: &Args, addr: SocketAddr, pid: Option<u32>) -> anyhow::Result<Report> {
    let n = args.clients;
    let ips = args
        .source_ips
        .unwrap_or_else(|| u8::try_from(n.div_ceil(10_000)).unwrap_or(u8::MAX))
        .max(1);
    let say = |s: String| {
        if !args.json {
            println!("{s}");
        }
    };
    say(format!(
        "chat-load: {n} clients from 127.0.0.1..{ips} -> {addr}, {} broadcasts every {:?}",
        args.messages, args.interval
    ));
    let rss_before = pid.and_then(rss_kib);

    // Phase 1: connect everyone, at most `connect_concurrency` handshakes in flight.
    let started = Instant::now();
    let results: Vec<std::io::Result<TcpStream>> = futures::stream::iter(0..n)
        .map(|i| {
            connect(
                addr,
                Ipv4Addr::new(127, 0, 0, 1 + (i % usize::from(ips)) as u8),
            )
        })
        .buffer_unordered(args.connect_concurrency.max(1))
        .collect()
        .await;
    let connect_time = started.elapsed();
    let mut streams = Vec::with_capacity(n);
    let mut errors = 0;
    let mut first_error = None;
    for r in results {
        match r {
            Ok(s) => streams.push(s),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    say(format!(
        "connect: {} ok, {errors} errors in {:.2} s{}",
        streams.len(),
        connect_time.as_secs_f64(),
        first_error
            .map(|e| format!(" (first error: {e})"))
            .unwrap_or_default()
    ));
    if streams.len() < 2 {
        bail!("fewer than 2 clients connected to {addr}");
    }

    // Phase 2: one reader task per client; the first client is also the sender.
    let tally = Arc::new(Tally {
        epoch: Instant::now(),
        synced: AtomicUsize::new(0),
        received: AtomicU64::new(0),
        span_us: (0..args.messages).map(|_| AtomicU64::new(0)).collect(),
    });
    let stop = CancellationToken::new();
    let mut sender = None;
    let mut readers = tokio::task::JoinSet::new();
    for (i, stream) in streams.into_iter().enumerate() {
        let (rd, wr) = stream.into_split();
        if i == 0 {
            sender = Some(wr);
        } else {
            // Keep the write half alive: dropping it would half-close the connection.
            readers.spawn(receive(rd, wr, tally.clone(), args.messages, stop.clone()));
        }
    }
    let mut sender = sender.expect("at least one client connected");
    let receivers = readers.len();

    // Phase 3: the barrier. Repeat `sync` until every receiver has seen one (servers register a
    // connection a little after the handshake completes), at most 30 s.
    let barrier_deadline = Instant::now() + Duration::from_secs(30);
    while tally.synced.load(Relaxed) < receivers && Instant::now() < barrier_deadline {
        sender
            .write_all(format!("{MARKER} sync\n").as_bytes())
            .await
            .context("sending sync")?;
        let poll_until = Instant::now() + Duration::from_millis(500);
        while tally.synced.load(Relaxed) < receivers && Instant::now() < poll_until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let synced = tally.synced.load(Relaxed);
    if synced < receivers {
        say(format!(
            "warning: only {synced} of {receivers} receivers saw the sync line"
        ));
    }
    let rss_kib_per_conn = match (rss_before, pid.and_then(rss_kib)) {
        (Some(before), Some(after)) => {
            let per = after.saturating_sub(before) as f64 / n as f64;
            say(format!(
                "server rss: {} KiB -> {} KiB, +{:.2} KiB per connection (pid {})",
                before,
                after,
                per,
                pid.unwrap_or(0)
            ));
            Some(per)
        }
        _ => None,
    };

    // Phase 4: the measured broadcasts. CPU is read around them, so the connect storm is not
    // billed to the broadcasts; between broadcasts both processes sleep, so the sums are theirs.
    let own_pid = std::process::id();
    let cpu_before = (pid.and_then(process_cpu), process_cpu(own_pid));
    for seq in 0..args.messages {
        let now_us = tally.epoch.elapsed().as_micros();
        sender
            .write_all(format!("{MARKER} {seq} {now_us}\n").as_bytes())
            .await
            .context("sending a broadcast")?;
        if seq + 1 < args.messages {
            tokio::time::sleep(args.interval).await;
        }
    }
    let expected = (args.messages * receivers) as u64;
    let deadline = Instant::now() + args.wait;
    while tally.received.load(Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cpu_after = (pid.and_then(process_cpu), process_cpu(own_pid));
    stop.cancel();
    let cpu_per = |before: Option<CpuSplit>, after: Option<CpuSplit>| {
        Some(CpuMs::per(after?.since(before?), args.messages))
    };
    let server_cpu = cpu_per(cpu_before.0, cpu_after.0);
    let load_cpu = cpu_per(cpu_before.1, cpu_after.1);

    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).context("histogram bounds")?;
    // Per broadcast, the raw samples (8 bytes each, as many as the deliveries): one histogram per
    // broadcast would be ~140 KiB each, 140 MiB for `--messages 1000`.
    let mut per_seq: Vec<Vec<u64>> = vec![Vec::new(); args.messages];
    while let Some(joined) = readers.join_next().await {
        for (seq, us) in joined.context("a reader task panicked")? {
            hist.saturating_record(us.max(1));
            if let Some(samples) = per_seq.get_mut(seq) {
                samples.push(us);
            }
        }
    }
    drop(sender);
    let received = tally.received.load(Relaxed);
    let busy_us: u64 = tally.span_us.iter().map(|s| s.load(Relaxed)).sum();
    let rate = if busy_us > 0 {
        received as f64 / (busy_us as f64 / 1e6)
    } else {
        0.0
    };
    let ms = |us: u64| us as f64 / 1000.0;
    let (p50, p99, max) = if hist.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            ms(hist.value_at_quantile(0.50)),
            ms(hist.value_at_quantile(0.99)),
            ms(hist.max()),
        )
    };
    say(format!(
        "deliveries: {received} / {expected} expected ({:.1}%)",
        100.0 * received as f64 / expected.max(1) as f64
    ));
    say(format!(
        "latency: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms"
    ));
    say(format!(
        "rate: {rate:.0} deliveries/s while a broadcast was in flight"
    ));
    let per_broadcast: Vec<f64> = tally.span_us.iter().map(|s| ms(s.load(Relaxed))).collect();
    say(format!(
        "last arrival of each broadcast (ms): {per_broadcast:.1?}"
    ));
    let per_broadcast_p99: Vec<f64> = per_seq
        .iter_mut()
        .map(|samples| ms(percentile(samples, 0.99)))
        .collect();
    let p99_median = median(&per_broadcast_p99);
    let p99_worst = per_broadcast_p99.iter().copied().fold(0.0, f64::max);
    say(format!(
        "p99 of each broadcast: median {p99_median:.1} ms, worst {p99_worst:.1} ms {per_broadcast_p99:.1?}"
    ));
    let show_cpu = |who: &str, cpu: Option<CpuMs>| {
        if let Some(c) = cpu {
            say(format!(
                "{who} CPU per broadcast: {:.1} ms ({:.1} user + {:.1} system)",
                c.user + c.system,
                c.user,
                c.system
            ));
        }
    };
    show_cpu("server", server_cpu);
    show_cpu("chat-load", load_cpu);
    if received < expected {
        say(
            "warning: deliveries are missing; check the server's stats for dropped slow clients"
                .into(),
        );
    }
    Ok(Report {
        addr: addr.to_string(),
        clients: n,
        source_ips: ips,
        connect_s: connect_time.as_secs_f64(),
        connect_errors: errors,
        synced,
        messages: args.messages,
        deliveries_expected: expected,
        deliveries_received: received,
        p50_ms: p50,
        p99_ms: p99,
        max_ms: max,
        deliveries_per_s: rate,
        per_broadcast_ms: per_broadcast,
        per_broadcast_p99_ms: per_broadcast_p99,
        broadcast_p99_median_ms: p99_median,
        broadcast_p99_worst_ms: p99_worst,
        server_rss_kib_per_conn: rss_kib_per_conn,
        server_cpu_ms_per_broadcast: server_cpu,
        load_cpu_ms_per_broadcast: load_cpu,
    })
}

/// The `q` quantile of `samples` by nearest rank (0 for none); sorts them in place.
fn percentile(samples: &mut [u64], q: f64) -> u64 {
    if samples.is_empty() {
        return 0;
    }
    samples.sort_unstable();
    let rank = (q * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

/// Median of a few values (0 for none).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Bind to a chosen loopback source address, then connect: each source address has its own
/// ephemeral port range.
async fn connect(addr: SocketAddr, source: Ipv4Addr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    // Without this, `bind(ip, 0)` picks the port at bind time, without knowing the destination,
    // and cannot reuse ports still in TIME_WAIT from the previous run: a second 10,000-client
    // run within a minute then crawls through SYN retries. With it, the port is chosen at
    // `connect`, per (source, destination) pair. Linux only.
    let on: libc::c_int = 1;
    // SAFETY: setsockopt on a socket we own, with a pointer to a live c_int and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&raw const on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// One client's reader: record the latency of every measured line until `messages` arrived or
/// `stop` fires. Returns `(broadcast number, latency in µs)` pairs.
async fn receive(
    rd: tokio::net::tcp::OwnedReadHalf,
    _wr: tokio::net::tcp::OwnedWriteHalf,
    tally: Arc<Tally>,
    messages: usize,
    stop: CancellationToken,
) -> Vec<(usize, u64)> {
    // A small buffer: 10,000 default 8 KiB `BufReader`s would be 80 MiB in the load tool.
    let mut rd = BufReader::with_capacity(1024, rd);
    let mut line = Vec::with_capacity(128);
    let mut latencies = Vec::with_capacity(messages);
    let mut synced = false;
    // Pinned once: a fresh `cancelled()` per line would lock the token's waiter list twice.
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    while latencies.len() < messages {
        line.clear();
        let n = tokio::select! {
            () = &mut stopped => break,
            r = rd.read_until(b'\n', &mut line) => match r {
                Ok(n) => n,
                Err(_) => break,
            },
        };
        if n == 0 {
            break;
        }
        let arrived_us = tally.epoch.elapsed().as_micros() as u64;
        let Some(pos) = find(&line, MARKER.as_bytes()) else {
            continue;
        };
        let mut fields = std::str::from_utf8(&line[pos + MARKER.len()..])
            .unwrap_or("")
            .split_whitespace();
        match (fields.next(), fields.next()) {
            (Some("sync"), _) if !synced => {
                synced = true;
                tally.synced.fetch_add(1, Relaxed);
            }
            (Some("sync"), _) => {}
            (Some(seq), Some(sent)) => {
                let (Ok(seq), Ok(sent_us)) = (seq.parse::<usize>(), sent.parse::<u64>()) else {
                    continue;
                };
                let latency = arrived_us.saturating_sub(sent_us);
                latencies.push((seq, latency));
                tally.received.fetch_add(1, Relaxed);
                if let Some(span) = tally.span_us.get(seq) {
                    span.fetch_max(latency, Relaxed);
                }
            }
            _ => {}
        }
    }
    // Hold the connection until everyone is done: 10,000 clients hanging up the moment they have
    // the last line would load the server with disconnects while it is still delivering that
    // line to the others, and the tail latency measured would be our own doing.
    stopped.await;
    latencies
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Resident memory of another process, from `/proc/PID/status` (Linux).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The `chat-server` we start when no `--addr` is given.
struct OwnServer {
    child: Child,
    addr: SocketAddr,
}

impl OwnServer {
    fn start() -> anyhow::Result<OwnServer> {
        let exe = std::env::current_exe().context("locating our own executable")?;
        let server: PathBuf = exe.with_file_name("chat-server");
        if !server.exists() {
            bail!(
                "no --addr given and {} does not exist; build it first: cargo build -p examples-async --bin chat-server (add --release for measurements)",
                server.display()
            );
        }
        let mut child = Command::new(&server)
            .args(["--addr", "127.0.0.1:0", "--stats-interval", "1h"])
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", server.display()))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        let first = lines
            .next()
            .context("chat-server exited before printing its address")??;
        let addr = first
            .rsplit(' ')
            .next()
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("no address in chat-server's first line {first:?}"))?;
        // Keep draining its stdout: a child blocked on a full pipe would stall the whole test.
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        eprintln!(
            "(started {} on {addr}, pid {})",
            server.display(),
            child.id()
        );
        Ok(OwnServer { child, addr })
    }

    fn stop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on our own child's pid; no memory involved.
            unsafe { libc::kill(pid, libc::SIGINT) };
        }
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_by_nearest_rank() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(percentile(&mut v, 0.99), 99);
        assert_eq!(percentile(&mut v, 0.50), 50);
        assert_eq!(percentile(&mut v, 1.0), 100);
        assert_eq!(percentile(&mut [7], 0.99), 7);
        assert_eq!(percentile(&mut [], 0.99), 0);
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
