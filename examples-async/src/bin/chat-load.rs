//! Load generator for chat servers: N TCP line clients and/or M WebSocket clients, K timestamped
//! broadcasts, the latency of each one to everybody, per protocol.
//!
//! Course section **8.2 — Programmation asynchrone avec asyncio**: measures the "10000 connexions
//! simultanées" claim instead of believing it. Works against `chat-server` and any server that
//! relays each line (or text message) to the other clients (`python/chat_server.py`, the
//! course's asyncio server, TCP and WebSocket): it counts only lines carrying its marker `@@load`.
//!
//! Crates: `tokio = { version = "1.54", features = ["rt-multi-thread", "macros", "net", "io-util", "sync", "time"] }`,
//! `tokio-util = "0.7"`, `futures = "0.3"`, `libc = "0.2"`, `anyhow = "1"`,
//! `tokio-tungstenite = { version = "0.29", default-features = false, features = ["handshake"] }`
//!
//! # Concepts
//! - **Thousands of sockets from one process**: one small task per client; connects bounded by
//!   `buffer_unordered(--connect-concurrency)` so the server's listen backlog does not overflow
//!   into 1 s SYN retries. A WebSocket client is the same TCP socket plus an HTTP upgrade.
//! - **The ephemeral-port limit**: one source address has ~28,000 ports; binding clients to
//!   127.0.0.1, 127.0.0.2, ... (`--source-ips`) multiplies that (all of 127/8 is loopback).
//! - **Measuring latency honestly**: each broadcast carries its send time (µs since a shared
//!   `Instant`, same process, same clock); every receiver records its own latency; each broadcast's
//!   p99 comes exactly from its samples, because one broadcast is what the question is about.
//! - **A barrier before measuring**: a `sync` line is repeated until every client has seen one,
//!   so "connected" means "registered by the server", not just "handshake done". One barrier per
//!   protocol, so the server's memory can be read per protocol in between.
//! - **Bounded wait**: after the last broadcast it waits at most `--wait`, then reports.
//! - **A load tool steals from what it measures**: it runs on one thread (`--threads`) and
//!   reports the CPU each side spent per broadcast (`/proc/PID/stat`).
//!
//! # Run
//! ```text
//! cargo build --release -p examples-async
//! target/release/chat-load                                    # its own chat-server, 500 TCP clients
//! target/release/chat-load --clients 0 --ws 500               # the same over WebSocket
//! target/release/chat-server &                                # 127.0.0.1:6142, page and /ws on :6143
//! target/release/chat-load --addr 127.0.0.1:6142 --clients 0 --ws 10000 --server-pid $(pgrep -n chat-server)
//! target/release/chat-load --addr 127.0.0.1:6142 --clients 5000 --ws 5000 --json
//! target/release/chat-load --clients 10000 --ws 0 --messages 20 --python   # + asyncio, one table
//! ```
//!
//! # What to observe
//! - Connect time and errors: 10,000 clients in about a second, zero errors.
//! - `server rss`: memory per idle connection, per protocol (needs `--server-pid`).
//! - Each broadcast's p99, per protocol, their median and worst; on 2 cores most of it is kernel
//!   loopback work (the CPU lines show the server's system time dwarfing its user time).
//! - Deliveries received must equal expected; if not, the server dropped someone.
//! - `--python`: the same load on `python/chat_server.py` once chat-server has stopped; one
//!   table with both servers and the ratios (p99, memory and CPU), exit 1 if either lost one.
//!
//! # Exercises
//! 1. Make every client a sender (`--senders K`): how does p99 move with the number of senders?
//! 2. Add an open-loop rate mode (`--rate 1000/s`) and find the rate where p99 explodes.
//! 3. Stop reading in 1% of the clients (`--stuck 1`) and check the server drops only them.

// === Lesson: copy from here ===

/// One simulated client: connect (TCP or WebSocket, from a chosen source address), then read
/// lines and record the latency of each measured one.
mod clients {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::os::fd::AsRawFd;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
    use std::time::Instant;

    use futures::{SinkExt, StreamExt};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpSocket, TcpStream};
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
    use tokio_util::sync::CancellationToken;

    pub const MARKER: &str = "@@load";

    /// What the receivers share. Atomics only: 10,000 tasks touching one `Mutex` per line would
    /// serialise them.
    pub struct Tally {
        /// Microseconds since this `Instant` are the timestamps inside the broadcasts.
        pub epoch: Instant,
        /// Clients that have seen a `sync` line (the barrier).
        pub synced: AtomicUsize,
        /// Measured lines received, all clients together.
        pub received: AtomicU64,
        /// Per broadcast: the latest arrival, in µs after its send (for the delivery rate).
        pub span_us: Vec<AtomicU64>,
    }

    pub enum Client {
        Tcp(TcpStream),
        Ws(Box<WebSocketStream<TcpStream>>),
    }

    /// Binds to a chosen loopback source address, then connects: each source address has its
    /// own ephemeral port range.
    async fn tcp_connect(addr: SocketAddr, source: Ipv4Addr) -> std::io::Result<TcpStream> {
        let socket = TcpSocket::new_v4()?;
        // Without this, `bind(ip, 0)` picks the port at bind time, without knowing the
        // destination, and cannot reuse ports still in TIME_WAIT from the previous run. With
        // it, the port is chosen at `connect`, per (source, destination) pair. Linux only.
        let on: libc::c_int = 1;
        // SAFETY: setsockopt on a socket we own, with a pointer to a live c_int and its size.
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

    /// A TCP line client (`ws == false`) or a WebSocket client of `ws://addr/ws`.
    pub async fn connect(addr: SocketAddr, source: Ipv4Addr, ws: bool) -> anyhow::Result<Client> {
        let stream = tcp_connect(addr, source).await?;
        if !ws {
            return Ok(Client::Tcp(stream));
        }
        // tungstenite's default read buffer is 128 KiB per connection: 1.3 GB for 10,000.
        let config = WebSocketConfig::default().read_buffer_size(4096);
        let url = format!("ws://{addr}/ws");
        let (ws, _response) =
            tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
        Ok(Client::Ws(Box::new(ws)))
    }

    impl Client {
        pub async fn send_line(&mut self, line: &str) -> anyhow::Result<()> {
            match self {
                Client::Tcp(stream) => stream.write_all(format!("{line}\n").as_bytes()).await?,
                Client::Ws(ws) => ws.send(Message::text(line)).await?,
            }
            Ok(())
        }

        /// Reads until `messages` measured lines arrived or `stop` fires, then holds the
        /// connection until `stop`: 10,000 clients hanging up the moment they have the last
        /// line would load the server with disconnects while it still delivers that line, and
        /// the tail latency would be our own doing. Returns `(broadcast, µs)` pairs.
        pub async fn receive(
            self,
            tally: Arc<Tally>,
            messages: usize,
            stop: CancellationToken,
        ) -> Vec<(usize, u64)> {
            let mut probe = Probe {
                latencies: Vec::with_capacity(messages),
                synced: false,
            };
            // Pinned once: a fresh `cancelled()` per line would lock the token twice per line.
            let stopped = stop.cancelled();
            tokio::pin!(stopped);
            match self {
                Client::Tcp(stream) => {
                    // A small buffer: 10,000 default 8 KiB `BufReader`s would be 80 MiB.
                    let mut rd = BufReader::with_capacity(1024, stream);
                    let mut line = Vec::with_capacity(128);
                    while probe.latencies.len() < messages {
                        line.clear();
                        tokio::select! {
                            () = &mut stopped => break,
                            r = rd.read_until(b'\n', &mut line) => match r {
                                Ok(n) if n > 0 => probe.on_line(&line, &tally),
                                _ => break,
                            },
                        }
                    }
                    stopped.await;
                }
                Client::Ws(mut ws) => {
                    while probe.latencies.len() < messages {
                        tokio::select! {
                            () = &mut stopped => break,
                            m = ws.next() => match m {
                                Some(Ok(Message::Text(text))) => probe.on_line(text.as_bytes(), &tally),
                                Some(Ok(_)) => {}
                                _ => break,
                            },
                        }
                    }
                    stopped.await;
                }
            }
            probe.latencies
        }
    }

    struct Probe {
        latencies: Vec<(usize, u64)>,
        synced: bool,
    }

    impl Probe {
        /// `@@load sync` counts this client in the barrier; `@@load SEQ SENT_US` is measured.
        fn on_line(&mut self, line: &[u8], tally: &Tally) {
            let arrived_us = tally.epoch.elapsed().as_micros() as u64;
            let Some(pos) = line
                .windows(MARKER.len())
                .position(|w| w == MARKER.as_bytes())
            else {
                return;
            };
            let rest = std::str::from_utf8(&line[pos + MARKER.len()..]).unwrap_or("");
            let mut fields = rest.split_whitespace();
            match (fields.next(), fields.next()) {
                (Some("sync"), _) if !self.synced => {
                    self.synced = true;
                    tally.synced.fetch_add(1, Relaxed);
                }
                (Some(seq), Some(sent)) => {
                    let (Ok(seq), Ok(sent_us)) = (seq.parse::<usize>(), sent.parse::<u64>()) else {
                        return;
                    };
                    let latency = arrived_us.saturating_sub(sent_us);
                    self.latencies.push((seq, latency));
                    tally.received.fetch_add(1, Relaxed);
                    if let Some(span) = tally.span_us.get(seq) {
                        span.fetch_max(latency, Relaxed);
                    }
                }
                _ => {}
            }
        }
    }
}

/// The run: connect each protocol's clients behind a barrier, send timestamped broadcasts from
/// one client, wait (bounded) for every delivery, and hand back the raw samples.
mod load {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
    use std::time::{Duration, Instant};

    use anyhow::{Context, bail};
    use futures::StreamExt;
    use tokio::task::JoinSet;
    use tokio_util::sync::CancellationToken;

    use super::clients::{Client, MARKER, Tally, connect};

    #[derive(Debug, Clone)]
    pub struct LoadPlan {
        /// The line server (TCP clients) and the WebSocket server (`ws://ADDR/ws`).
        pub tcp_addr: SocketAddr,
        pub ws_addr: SocketAddr,
        pub tcp_clients: usize,
        pub ws_clients: usize,
        pub messages: usize,
        pub interval: Duration,
        pub source_ips: u8,
        pub connect_concurrency: usize,
        pub wait: Duration,
    }

    /// Where the run is, for an observer that samples the server (memory, CPU) in between.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Phase {
        Start,
        /// One protocol's clients are connected and past the barrier (`true`: WebSocket).
        Ready {
            ws: bool,
        },
        Broadcasting,
        Done,
    }

    /// One protocol's clients.
    #[derive(Debug, Default)]
    pub struct Group {
        pub ws: bool,
        pub connected: usize,
        pub errors: usize,
        pub first_error: Option<String>,
        pub connect_time: Duration,
        /// Receivers (connected clients, minus the sender if it is one of ours).
        pub receivers: usize,
        /// `samples[b]`: the latency in µs of broadcast `b` at each receiver that got it.
        pub samples: Vec<Vec<u64>>,
    }

    #[derive(Debug)]
    pub struct LoadResult {
        pub groups: Vec<Group>,
        pub synced: usize,
        pub expected: u64,
        pub received: u64,
        /// Per broadcast, its last arrival in µs after it was sent.
        pub span_us: Vec<u64>,
    }

    pub async fn run_load(
        plan: &LoadPlan,
        mut observe: impl FnMut(Phase),
    ) -> anyhow::Result<LoadResult> {
        observe(Phase::Start);
        let tally = Arc::new(Tally {
            epoch: Instant::now(),
            synced: AtomicUsize::new(0),
            received: AtomicU64::new(0),
            span_us: (0..plan.messages).map(|_| AtomicU64::new(0)).collect(),
        });
        let stop = CancellationToken::new();
        let mut readers = JoinSet::new();
        let mut sender: Option<Client> = None;
        let mut groups = Vec::new();
        let mut receivers_so_far = 0;
        for (ws, n) in [(false, plan.tcp_clients), (true, plan.ws_clients)] {
            if n == 0 {
                continue;
            }
            // Connect everyone, at most `connect_concurrency` handshakes in flight.
            let addr = if ws { plan.ws_addr } else { plan.tcp_addr };
            let started = Instant::now();
            let results: Vec<anyhow::Result<Client>> = futures::stream::iter(0..n)
                .map(|i| {
                    let source =
                        Ipv4Addr::new(127, 0, 0, 1 + (i % usize::from(plan.source_ips)) as u8);
                    connect(addr, source, ws)
                })
                .buffer_unordered(plan.connect_concurrency.max(1))
                .collect()
                .await;
            let mut group = Group {
                ws,
                connect_time: started.elapsed(),
                samples: vec![Vec::new(); plan.messages],
                ..Group::default()
            };
            for r in results {
                match r {
                    Ok(client) => {
                        group.connected += 1;
                        if sender.is_none() {
                            sender = Some(client); // the first client is the one that speaks
                            continue;
                        }
                        group.receivers += 1;
                        let (tally, stop, messages) = (tally.clone(), stop.clone(), plan.messages);
                        readers.spawn(
                            async move { (ws, client.receive(tally, messages, stop).await) },
                        );
                    }
                    Err(e) => {
                        group.errors += 1;
                        group.first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            receivers_so_far += group.receivers;
            let Some(sender) = sender.as_mut() else {
                bail!(
                    "no {} client could connect to {addr}: {:?}",
                    if ws { "WebSocket" } else { "TCP" },
                    group.first_error
                );
            };
            barrier(sender, &tally, receivers_so_far).await?;
            groups.push(group);
            observe(Phase::Ready { ws });
        }
        let mut sender = sender.context("no client connected")?;
        if receivers_so_far == 0 {
            bail!("fewer than 2 clients connected");
        }

        // The measured broadcasts. Between them both sides sleep, so the CPU read around them
        // by the observer is theirs.
        observe(Phase::Broadcasting);
        for seq in 0..plan.messages {
            let now_us = tally.epoch.elapsed().as_micros();
            sender
                .send_line(&format!("{MARKER} {seq} {now_us}"))
                .await
                .context("sending a broadcast")?;
            if seq + 1 < plan.messages {
                tokio::time::sleep(plan.interval).await;
            }
        }
        let expected = (plan.messages * receivers_so_far) as u64;
        let deadline = Instant::now() + plan.wait;
        while tally.received.load(Relaxed) < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        observe(Phase::Done);
        stop.cancel();
        while let Some(joined) = readers.join_next().await {
            let (ws, latencies) = joined.context("a reader task panicked")?;
            let Some(group) = groups.iter_mut().find(|g| g.ws == ws) else {
                continue;
            };
            for (seq, us) in latencies {
                if let Some(samples) = group.samples.get_mut(seq) {
                    samples.push(us);
                }
            }
        }
        Ok(LoadResult {
            groups,
            synced: tally.synced.load(Relaxed),
            expected,
            received: tally.received.load(Relaxed),
            span_us: tally.span_us.iter().map(|s| s.load(Relaxed)).collect(),
        })
    }

    /// Repeats `sync` until `receivers` clients have seen one (servers register a connection a
    /// little after its handshake), at most 30 s.
    async fn barrier(sender: &mut Client, tally: &Tally, receivers: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while tally.synced.load(Relaxed) < receivers && Instant::now() < deadline {
            sender
                .send_line(&format!("{MARKER} sync"))
                .await
                .context("sending sync")?;
            let poll_until = Instant::now() + Duration::from_millis(500);
            while tally.synced.load(Relaxed) < receivers && Instant::now() < poll_until {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        Ok(())
    }
}

// === Harness: not part of the lesson ===

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use shared::cli;
use shared::report::{CpuSplit, process_cpu};
use shared::sibling::Sibling;

use load::{Group, LoadPlan, LoadResult, Phase, run_load};

/// Load generator for chat servers, TCP lines and WebSocket (see the file header).
#[derive(Parser, Debug)]
#[command(name = "chat-load", version)]
struct Args {
    /// Line server to load; without it (and without --ws-addr), start the sibling `chat-server`.
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// WebSocket server (`ws://ADDR/ws`) [default: --addr's port + 1, as chat-server does].
    #[arg(long)]
    ws_addr: Option<SocketAddr>,
    /// TCP line clients (one of them sends the broadcasts) [default: 500, or 0 with --ws].
    #[arg(long, value_parser = cli::usize_in(0, 200_000))]
    clients: Option<usize>,
    /// WebSocket clients, alone or next to the TCP ones.
    #[arg(long, default_value_t = 0, value_parser = cli::usize_in(0, 200_000))]
    ws: usize,
    /// Broadcasts to send (each one reaches every client but the sender).
    #[arg(long, default_value_t = 5, value_parser = cli::usize_in(1, 100_000))]
    messages: usize,
    /// Pause between broadcasts, so each one is measured on its own.
    #[arg(long, default_value = "200ms", value_parser = cli::duration_in(Duration::ZERO, Duration::from_secs(60)))]
    interval: Duration,
    /// Spread clients over 127.0.0.1 .. 127.0.0.K [default: one address per 10,000 clients].
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=254))]
    source_ips: Option<u8>,
    /// Connects in flight at once.
    #[arg(long, default_value_t = 1000, value_parser = cli::usize_in(1, 100_000))]
    connect_concurrency: usize,
    /// After the last broadcast, wait at most this long for missing deliveries.
    #[arg(long, default_value = "10s", value_parser = cli::duration_in(Duration::ZERO, Duration::from_secs(3600)))]
    wait: Duration,
    /// PID of the server, to report its memory per connection and its CPU per broadcast.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4_194_304))]
    server_pid: Option<u32>,
    /// Runtime threads of the load tool itself (1 = a current-thread runtime). More threads
    /// only help when the load tool, not the server, is the bottleneck.
    #[arg(long, default_value_t = 1, value_parser = cli::usize_in(1, 256))]
    threads: usize,
    /// Then start the course's asyncio chat server (python/chat_server.py; WebSocket clients
    /// need the `websockets` package), run the same load on it, and print both in one table.
    #[arg(long, conflicts_with_all = ["addr", "ws_addr", "server_pid"])]
    python: bool,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tcp_clients = args.clients.unwrap_or(if args.ws > 0 { 0 } else { 500 });
    if tcp_clients + args.ws < 2 {
        Args::command()
            .error(
                clap::error::ErrorKind::ValueValidation,
                "at least 2 clients in all (one sender, one receiver): raise --clients or --ws",
            )
            .exit();
    }
    // `--python`: find python3 (and websockets, for WebSocket clients) before any work;
    // missing, it is a usage error (exit 2) whose message names what to install.
    let python = match args
        .python
        .then(|| shared::python::Python::find(if args.ws > 0 { &["websockets"] } else { &[] }))
        .transpose()
    {
        Ok(python) => python,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    };
    // One thread by default: the load tool shares the cores with the server it measures, and a
    // second worker mostly adds cross-thread wake-ups, time taken from the server. Measured per
    // 10,000-client broadcast: our kernel time 38–52 ms with two workers, 24–33 ms with one.
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
    let total = tcp_clients + args.ws;
    // Our own open-file limit matters as much as the server's: one fd per client.
    let limit = shared::monitor::raise_nofile_limit().context("raising RLIMIT_NOFILE")?;
    if total as u64 + 32 > limit {
        anyhow::bail!(
            "{total} clients need {} open files, the limit is {limit}",
            total + 32
        );
    }
    let own_server = match (args.addr, args.ws_addr) {
        (None, None) => Some(
            Sibling::start(
                "chat-server",
                &["--addr", "127.0.0.1:0", "--stats-interval", "1h"],
                2,
                "cargo build --release -p examples-async (chat-load starts chat-server when given no --addr)",
            )
            .map_err(|e| e.context("no --addr given, so chat-load starts its own chat-server"))?,
        ),
        _ => None,
    };
    let (tcp_addr, ws_addr) = match &own_server {
        Some(server) => (server.addr(0)?, server.addr(1)?),
        None => {
            let base = args.addr.or(args.ws_addr).expect("one of the two is set");
            let next = SocketAddr::new(base.ip(), base.port().saturating_add(1));
            (args.addr.unwrap_or(base), args.ws_addr.unwrap_or(next))
        }
    };
    let pid = args.server_pid.or(own_server.as_ref().map(Sibling::pid));
    if let Some(server) = &own_server {
        eprintln!(
            "(started chat-server on {tcp_addr}, ws on {ws_addr}, pid {})",
            server.pid()
        );
    }
    let plan = LoadPlan {
        tcp_addr,
        ws_addr,
        tcp_clients,
        ws_clients: args.ws,
        messages: args.messages,
        interval: args.interval,
        source_ips: args
            .source_ips
            .unwrap_or_else(|| u8::try_from(total.div_ceil(10_000)).unwrap_or(u8::MAX))
            .max(1),
        connect_concurrency: args.connect_concurrency,
        wait: args.wait,
    };
    if python.is_some() && !args.json {
        println!("== chat-server (Rust, tokio) ==");
    }
    let run = rt.block_on(async {
        tokio::select! {
            r = measure(&args, &plan, pid) => r.map(Some),
            () = shared::shutdown::shutdown_signal() => Ok(None),
        }
    });
    drop(own_server); // stops it cleanly (SIGINT) and waits
    let Some(mut report) = run? else {
        eprintln!("interrupted: no report");
        std::process::exit(130);
    };
    // With `--python`, deliveries are the result both servers must agree on (alone, a
    // shortfall is a warning, as it always was).
    let mut lost = if python.is_some() {
        missing_deliveries(&report)
    } else {
        0
    };
    if let Some(py) = python {
        // The same load, the same plan, on the asyncio server, started only now: the two never
        // share the machine.
        let mut command = std::process::Command::new(&py.exe);
        command.arg(shared::python::recipe_path(
            "examples-async/python/chat_server.py".as_ref(),
        ));
        command.args(["--port", "0"]);
        if args.ws > 0 {
            command.args(["--ws-port", "0"]);
        }
        let server = Sibling::spawn(
            command,
            "python/chat_server.py",
            if args.ws > 0 { 2 } else { 1 },
        )?;
        let tcp_addr = server.addr(0)?;
        let ws_addr = if args.ws > 0 {
            server.addr(1)?
        } else {
            tcp_addr
        };
        let py_plan = LoadPlan {
            tcp_addr,
            ws_addr,
            ..plan.clone()
        };
        if !args.json {
            println!("\n== python/chat_server.py (asyncio, {}) ==", py.version);
        }
        let py_run = rt.block_on(async {
            tokio::select! {
                r = measure(&args, &py_plan, Some(server.pid())) => r.map(Some),
                () = shared::shutdown::shutdown_signal() => Ok(None),
            }
        });
        drop(server);
        let Some(mut py_report) = py_run? else {
            eprintln!("interrupted: no Python report");
            std::process::exit(130);
        };
        py_report["python"] = py.version.clone().into();
        lost += missing_deliveries(&py_report);
        if !args.json {
            print_side_by_side(&report, &py_report);
        }
        report["python"] = py_report;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).context("serialising the report")?
        );
    }
    // `--python`: every broadcast must reach every client, on both servers: anything less is a
    // different result, not a slower one.
    if lost > 0 {
        eprintln!("{lost} deliveries missing (see the deliveries lines)");
        std::process::exit(1);
    }
    Ok(())
}

/// Expected deliveries that never arrived.
fn missing_deliveries(report: &serde_json::Value) -> u64 {
    let n = |k: &str| report[k].as_u64().unwrap_or(0);
    n("deliveries_expected").saturating_sub(n("deliveries_received"))
}

/// chat-server and the asyncio server under the same load, one row each, and the ratios.
fn print_side_by_side(rust: &serde_json::Value, python: &serde_json::Value) {
    let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(0.0);
    let cpu = |v: &serde_json::Value| {
        let c = &v["server_cpu_ms_per_broadcast"];
        c["user"].as_f64().unwrap_or(0.0) + c["system"].as_f64().unwrap_or(0.0)
    };
    println!(
        "\n{} TCP + {} WebSocket clients, {} broadcasts, the same load on each server",
        rust["tcp_clients"], rust["ws_clients"], rust["messages"]
    );
    println!(
        "{:<34} {:>6} {:>19} {:>12} {:>12} {:>9} {:>12}",
        "server", "errors", "deliveries", "p99 median", "p99 worst", "KiB/conn", "CPU/bcast"
    );
    println!("{}", "-".repeat(112));
    for (name, v) in [
        ("chat-server (tokio)", rust),
        ("python/chat_server.py (asyncio)", python),
    ] {
        println!(
            "{name:<34} {:>6} {:>19} {:>9.1} ms {:>9.1} ms {:>9.2} {:>9.1} ms",
            v["connect_errors"].as_u64().unwrap_or(0),
            format!("{}/{}", v["deliveries_received"], v["deliveries_expected"]),
            f(v, "broadcast_p99_median_ms"),
            f(v, "broadcast_p99_worst_ms"),
            f(v, "server_rss_kib_per_conn"),
            cpu(v),
        );
    }
    let ratio = |k: &str| f(python, k) / f(rust, k).max(1e-9);
    println!(
        "asyncio / chat-server: p99 of one broadcast {:.2}x (worst {:.2}x), memory per \
         connection {:.2}x, server CPU per broadcast {:.2}x",
        ratio("broadcast_p99_median_ms"),
        ratio("broadcast_p99_worst_ms"),
        ratio("server_rss_kib_per_conn"),
        cpu(python) / cpu(rust).max(1e-9)
    );
}

/// What the observer saw of the server and of us at each phase.
#[derive(Default)]
struct Samples {
    rss_start: Option<u64>,
    rss_ready: Vec<(bool, Option<u64>)>,
    cpu_before: (Option<CpuSplit>, Option<CpuSplit>),
    cpu_after: (Option<CpuSplit>, Option<CpuSplit>),
}

async fn measure(
    args: &Args,
    plan: &LoadPlan,
    pid: Option<u32>,
) -> anyhow::Result<serde_json::Value> {
    let say = |s: String| {
        if !args.json {
            println!("{s}");
        }
    };
    say(format!(
        "chat-load: {} TCP clients -> {}, {} WebSocket clients -> ws://{}/ws, from 127.0.0.1..{}; {} broadcasts every {:?}",
        plan.tcp_clients,
        plan.tcp_addr,
        plan.ws_clients,
        plan.ws_addr,
        plan.source_ips,
        plan.messages,
        plan.interval
    ));
    let own_pid = std::process::id();
    let mut samples = Samples::default();
    let result = run_load(plan, |phase| match phase {
        Phase::Start => samples.rss_start = pid.and_then(rss_kib),
        Phase::Ready { ws } => samples.rss_ready.push((ws, pid.and_then(rss_kib))),
        Phase::Broadcasting => {
            samples.cpu_before = (pid.and_then(process_cpu), process_cpu(own_pid))
        }
        Phase::Done => samples.cpu_after = (pid.and_then(process_cpu), process_cpu(own_pid)),
    })
    .await?;
    Ok(report(args, plan, &result, &samples, &say))
}

/// The q quantile of `samples` by nearest rank (0 for none); sorts them in place.
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

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Latency figures of a set of groups (all of them pooled, or one protocol's).
fn latency_figures(groups: &[&Group], messages: usize) -> serde_json::Value {
    let mut pooled: Vec<u64> = groups
        .iter()
        .flat_map(|g| g.samples.iter().flatten().copied())
        .collect();
    let per_broadcast_p99: Vec<f64> = (0..messages)
        .map(|b| {
            let mut s: Vec<u64> = groups
                .iter()
                .flat_map(|g| g.samples[b].iter().copied())
                .collect();
            ms(percentile(&mut s, 0.99))
        })
        .collect();
    let worst = per_broadcast_p99.iter().copied().fold(0.0, f64::max);
    serde_json::json!({
        "deliveries": pooled.len(),
        "p50_ms": ms(percentile(&mut pooled, 0.50)),
        "p99_ms": ms(percentile(&mut pooled, 0.99)),
        "max_ms": ms(pooled.last().copied().unwrap_or(0)),
        "per_broadcast_p99_ms": per_broadcast_p99,
        "broadcast_p99_median_ms": median(&per_broadcast_p99),
        "broadcast_p99_worst_ms": worst,
    })
}

fn cpu_ms(
    before: Option<CpuSplit>,
    after: Option<CpuSplit>,
    broadcasts: usize,
) -> Option<serde_json::Value> {
    let spent = after?.since(before?);
    let per = |d: Duration| d.as_secs_f64() * 1000.0 / broadcasts.max(1) as f64;
    Some(serde_json::json!({ "user": per(spent.user), "system": per(spent.system) }))
}

fn report(
    args: &Args,
    plan: &LoadPlan,
    result: &LoadResult,
    samples: &Samples,
    say: &dyn Fn(String),
) -> serde_json::Value {
    let mut per_protocol = serde_json::Map::new();
    let mut rss_prev = samples.rss_start;
    let mut rss_per_conn_all = 0.0;
    for (group, (_, rss)) in result.groups.iter().zip(&samples.rss_ready) {
        let name = if group.ws { "ws" } else { "tcp" };
        say(format!(
            "{name} connect: {} ok, {} errors in {:.2} s{}",
            group.connected,
            group.errors,
            group.connect_time.as_secs_f64(),
            group
                .first_error
                .as_ref()
                .map(|e| format!(" (first error: {e})"))
                .unwrap_or_default()
        ));
        let kib = match (rss_prev, *rss) {
            (Some(before), Some(after)) if group.connected > 0 => {
                Some(after.saturating_sub(before) as f64 / group.connected as f64)
            }
            _ => None,
        };
        if let (Some(kib), Some(before), Some(after)) = (kib, rss_prev, rss) {
            say(format!(
                "{name} server rss: {before} KiB -> {after} KiB, +{kib:.2} KiB per connection"
            ));
            rss_per_conn_all += kib * group.connected as f64;
        }
        rss_prev = *rss;
        let mut figures = latency_figures(&[group], plan.messages);
        say(format!(
            "{name} latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; p99 of each broadcast: median {:.1} ms, worst {:.1} ms",
            figures["p50_ms"].as_f64().unwrap_or(0.0),
            figures["p99_ms"].as_f64().unwrap_or(0.0),
            figures["max_ms"].as_f64().unwrap_or(0.0),
            figures["broadcast_p99_median_ms"].as_f64().unwrap_or(0.0),
            figures["broadcast_p99_worst_ms"].as_f64().unwrap_or(0.0),
        ));
        figures["clients"] = group.connected.into();
        figures["connect_errors"] = group.errors.into();
        figures["kib_per_conn"] = kib.into();
        per_protocol.insert(name.to_string(), figures);
    }
    let all: Vec<&Group> = result.groups.iter().collect();
    let pooled = latency_figures(&all, plan.messages);
    let connected: usize = result.groups.iter().map(|g| g.connected).sum();
    let errors: usize = result.groups.iter().map(|g| g.errors).sum();
    let busy_us: u64 = result.span_us.iter().sum();
    let rate = if busy_us > 0 {
        result.received as f64 / (busy_us as f64 / 1e6)
    } else {
        0.0
    };
    say(format!(
        "deliveries: {} / {} expected ({:.1}%); {rate:.0} deliveries/s while a broadcast was in flight",
        result.received,
        result.expected,
        100.0 * result.received as f64 / result.expected.max(1) as f64
    ));
    let server_cpu = cpu_ms(samples.cpu_before.0, samples.cpu_after.0, plan.messages);
    let load_cpu = cpu_ms(samples.cpu_before.1, samples.cpu_after.1, plan.messages);
    for (who, cpu) in [("server", &server_cpu), ("chat-load", &load_cpu)] {
        if let Some(c) = cpu {
            let (u, s) = (
                c["user"].as_f64().unwrap_or(0.0),
                c["system"].as_f64().unwrap_or(0.0),
            );
            say(format!(
                "{who} CPU per broadcast: {:.1} ms ({u:.1} user + {s:.1} system)",
                u + s
            ));
        }
    }
    if result.received < result.expected {
        say(
            "warning: deliveries are missing; check the server's stats for dropped slow clients"
                .into(),
        );
    }
    let rss_all =
        (samples.rss_start.is_some() && connected > 0).then(|| rss_per_conn_all / connected as f64);
    serde_json::json!({
        "addr": plan.tcp_addr.to_string(),
        "ws_addr": plan.ws_addr.to_string(),
        "clients": connected + errors,
        "tcp_clients": plan.tcp_clients,
        "ws_clients": plan.ws_clients,
        "source_ips": plan.source_ips,
        "connect_s": result.groups.iter().map(|g| g.connect_time.as_secs_f64()).sum::<f64>(),
        "connect_errors": errors,
        "synced": result.synced,
        "messages": args.messages,
        "deliveries_expected": result.expected,
        "deliveries_received": result.received,
        "p50_ms": pooled["p50_ms"],
        "p99_ms": pooled["p99_ms"],
        "max_ms": pooled["max_ms"],
        "deliveries_per_s": rate,
        "per_broadcast_ms": result.span_us.iter().map(|&us| ms(us)).collect::<Vec<_>>(),
        "per_broadcast_p99_ms": pooled["per_broadcast_p99_ms"],
        "broadcast_p99_median_ms": pooled["broadcast_p99_median_ms"],
        "broadcast_p99_worst_ms": pooled["broadcast_p99_worst_ms"],
        "server_rss_kib_per_conn": rss_all,
        "server_cpu_ms_per_broadcast": server_cpu,
        "load_cpu_ms_per_broadcast": load_cpu,
        "per_protocol": per_protocol,
    })
}

/// Resident memory of another process, from `/proc/PID/status` (Linux).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
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

    #[test]
    fn flags_refuse_nonsense() {
        for (flag, bad) in [
            ("--messages", "0"),
            ("--connect-concurrency", "0"),
            ("--source-ips", "0"),
            ("--threads", "0"),
            ("--server-pid", "0"),
            ("--clients", "1e30"),
            ("--interval", "-1s"),
        ] {
            assert!(
                Args::try_parse_from(["chat-load", flag, bad]).is_err(),
                "{flag} {bad}"
            );
        }
    }
}
