//! A TCP line chat that holds 10,000 concurrent clients: one task per client, one broadcast ring.
//!
//! Course section 8.2 (programmation asynchrone): "serveur chat gérant 10000 connexions
//! simultanées". The asyncio version is `asyncio.start_server` + a `set` of writers; this is the
//! same shape in tokio, plus the limits a server facing the internet needs.
//!
//! # Protocol (plain text lines; `nc` or `telnet` is a complete client)
//! - On connect you get `* welcome guest7! ...` and can chat at once; every line you send reaches
//!   every *other* client as `guest7: text`.
//! - `/nick NAME` (1–32 of `A-Za-z0-9_-`, unique), `/list` (who is online, first 50 names),
//!   `/help`, `/quit`. Server notices start with `* `, errors with `error: `.
//! - Join/leave notices are coalesced: `* alice joined`, `* 42 users joined: a, b, c and 39 others`.
//! - Limits: a line longer than `--max-line` bytes gets `error: line too long` and the connection is
//!   closed (the line is never buffered whole); invalid UTF-8 is replaced by `�`; control characters
//!   (terminal escape sequences) are replaced by `?`; a client that stops reading is dropped (see
//!   "slow clients" below); beyond `--max-clients` a newcomer gets `error: server full` and is closed;
//!   a client silent for `--idle-timeout` is closed; Ctrl-C sends everyone `* server shutting down`.
//!
//! # Concepts
//! - **One task per connection**, reading *and* writing with `select!`: about 2 KiB of memory per
//!   idle client (the kernel adds ~4 KiB per socket outside the process). A reader task + a writer
//!   task + an `mpsc` per client, the textbook layout, costs 3–7 times more.
//! - **`tokio::sync::broadcast` of pre-formatted `Bytes`**: a message is formatted once and shared
//!   by reference count; the ring (`--queue` messages) *is* every client's bounded outgoing queue.
//! - **Slow clients**: a client whose socket accepts nothing for `--write-timeout`, or that falls
//!   more than `--queue` messages behind, is disconnected. `broadcast::send` never waits, so one
//!   stuck reader can neither slow the others nor grow memory.
//! - **Connection storms**: a notice per join would make N joins cost N²/2 deliveries (10,000 joins →
//!   50 million lines; tokio's own chat example needs 19 s to accept 10,000 clients for this reason).
//!   Here joins and leaves are collected and flushed every `--notice-interval` as one line.
//! - **Graceful shutdown**: [`serve`] takes a `CancellationToken`; Ctrl-C cancels it, every client
//!   task says goodbye and returns, a `TaskTracker` waits for them (bounded).
//!
//! # Run
//! ```text
//! cargo run --release -p examples-async --bin chat-server                 # 127.0.0.1:6142, until Ctrl-C
//! nc 127.0.0.1 6142                                                       # in two more terminals: chat
//! cargo run --release -p examples-async --bin chat-client -- --addr 127.0.0.1:6142
//! cargo run --release -p examples-async --bin chat-load -- --addr 127.0.0.1:6142 --clients 10000 --server-pid $(pgrep -n chat-server)
//! cargo run -p examples-async --bin chat-server -- --addr 127.0.0.1:0 --duration 10s   # stops by itself
//! cargo run -p examples-async --bin chat-server -- --max-clients 2 --idle-timeout 30s --max-line 80
//! ```
//! The first stdout line is always `chat-server listening on ADDR` (scripts and tests read it).
//!
//! # What to observe
//! - The stats line every `--stats-interval`: clients, messages/s, deliveries/s, RSS, dropped slow
//!   clients, refusals; `warning:` lines when the CPU is saturated or slow clients get dropped.
//! - Join 10,000 clients: a handful of `* N users joined` lines instead of 50 million deliveries.
//! - `nc` a client, press Ctrl-Z to stop it reading, flood from another: it is dropped after
//!   `--write-timeout`, the others never notice.
//!
//! # Exercises
//! 1. Replace the single task per client by a reader task + writer task + `mpsc::channel(256)` per
//!    client (tokio's chat example) and measure KiB per connection with `chat-load --server-pid`.
//! 2. Add rooms: `/join ROOM` with one `broadcast` per room in a `HashMap<String, Sender>`.
//!    Who removes an empty room, and when?
//! 3. Add a per-client rate limit (token bucket: 20 lines/s, burst 50) and show with `chat-load`
//!    that one flooding client no longer pushes healthy clients towards the `--queue` limit.
//! 4. Build a `new_current_thread()` runtime in `main` instead and compare the p99 of a
//!    10,000-client broadcast: why does it get worse on 2 cores?
//! 5. Make `/list` page through 10,000 names instead of truncating: what must stay bounded?
//!
//! # Resources, and what they measure (release, 2 cores, `chat-load` in another process)
//! - **Resources**: raises `RLIMIT_NOFILE` (soft → hard) and prints how many clients fit; a listen
//!   backlog of 4096 so a storm of connects does not hit SYN retries (1 s, 3 s, ...); `EMFILE` on
//!   `accept` is survived (log, pause, retry) instead of spinning or crashing.
//! - `chat-load --clients 10000 --messages 20 --server-pid PID` on idle cores: 0 connection
//!   errors, every broadcast delivered to all 9,999 others; p99 of one broadcast 72–89 ms (median
//!   of the 20), all 20 pooled 83–112 ms, the worst one 86–119 ms; 110–132 k deliveries/s; RSS
//!   grows 2.0 KiB per idle client. 19,000 clients (`--source-ips 2`): 0 errors, p99 145 ms.
//! - Where the time goes (chat-load's CPU lines): one broadcast to 10,000 clients costs the
//!   server 113–150 ms of CPU, 95–125 of it kernel: on loopback, each `write` also runs the
//!   receiver's TCP input and wakes its reader, work a remote client would do on its own machine.
//!   The load tool adds 36–45 ms. Shared by 2 cores that is 75–100 ms, the floor under the p99;
//!   with a two-thread load tool (more cross-thread wake-ups) pooled p99 was 106–128 ms.
//! - `py_chat_server.py` (asyncio) under the same `chat-load`, idle: one broadcast's p99
//!   114–115 ms, pooled 151–159 ms, 5.6 KiB per client; at 19,000 clients p99 364 ms, 2.5× ours
//!   (one thread does all the writes).

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::{Bytes, BytesMut};
use clap::Parser;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio_util::codec::{Decoder, FramedRead};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const DEFAULT_ADDR: &str = "127.0.0.1:6142";
/// Initial read buffer per client. `Framed`'s default is 8 KiB, allocated up front: with 10,000
/// idle clients that alone is 80 MiB. Chat lines are short; the buffer grows for a long one.
const READ_BUF: usize = 256;
/// Upper bound of one write when a client has several messages waiting (one syscall, not 50).
const MAX_BATCH: usize = 64 * 1024;
/// File descriptors kept for the listener, stdio, the runtime's own fds and a safety margin.
const FD_RESERVE: u64 = 64;
/// How long a goodbye or an error line may take before we close anyway.
const LAST_WORDS_TIMEOUT: Duration = Duration::from_secs(1);
/// How long shutdown waits for client tasks before giving up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// `/list` shows at most this many names: the reply stays a line, not 200 KiB.
const LIST_MAX: usize = 50;

/// A TCP line chat for many clients (see the file header for the protocol).
#[derive(Parser, Debug, Clone)]
#[command(version)]
struct Args {
    /// Address to listen on; port 0 picks a free one (the first stdout line says which).
    #[arg(long, default_value = DEFAULT_ADDR)]
    addr: SocketAddr,
    /// Most clients at once; newcomers beyond it get `error: server full` (default: what the
    /// open-file limit allows, minus a reserve).
    #[arg(long)]
    max_clients: Option<usize>,
    /// Longest line in bytes; a longer one is an error and closes that connection.
    #[arg(long, default_value_t = 4096)]
    max_line: usize,
    /// Broadcast ring capacity: how many messages a client may fall behind before it is dropped.
    #[arg(long, default_value_t = 1024)]
    queue: usize,
    /// Drop a client whose socket accepts nothing for this long (it stopped reading).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    write_timeout: Duration,
    /// Close a client that sends nothing for this long.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
    /// Join/leave notices are collected and sent as one line this often.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    notice_interval: Duration,
    /// Print a stats line this often.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    stats_interval: Duration,
    /// Stop by itself after this long (default: run until Ctrl-C).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
}

/// The limits every client task obeys.
#[derive(Debug, Clone)]
struct Config {
    max_clients: usize,
    max_line: usize,
    write_timeout: Duration,
    idle_timeout: Duration,
    notice_interval: Duration,
}

/// One chat line on its way to every client. Formatted once by the sender; `Bytes` clones are a
/// reference-count increment, so 10,000 receivers share one allocation.
#[derive(Clone, Debug)]
struct Msg {
    /// Client id of the author (0 = the server), so the author can skip its own line.
    from: u64,
    line: Bytes,
}

/// Counters for the stats line. Relaxed atomics: each is an independent tally, nothing else is
/// published through them.
#[derive(Default)]
struct Stats {
    connected: AtomicUsize,
    accepted: AtomicU64,
    refused: AtomicU64,
    messages: AtomicU64,
    deliveries: AtomicU64,
    dropped_slow: AtomicU64,
}

/// Joins and leaves waiting for the next notice flush. Only the first few names are kept, so a
/// storm of 10,000 joins costs three strings and a counter, not a 10,000-entry queue.
#[derive(Default, Debug)]
struct Notices {
    joined: Vec<String>,
    joined_count: usize,
    left: Vec<String>,
    left_count: usize,
}

const NOTICE_NAMES: usize = 3;

impl Notices {
    fn join(&mut self, nick: &str) {
        self.joined_count += 1;
        if self.joined.len() < NOTICE_NAMES {
            self.joined.push(nick.to_string());
        }
    }

    fn leave(&mut self, nick: &str, why: &str) {
        self.left_count += 1;
        if self.left.len() < NOTICE_NAMES {
            self.left.push(if why.is_empty() {
                nick.to_string()
            } else {
                format!("{nick} ({why})")
            });
        }
    }

    /// The lines to broadcast for everything collected since the last call, and reset.
    fn take_lines(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for (names, count, verb) in [
            (&mut self.joined, &mut self.joined_count, "joined"),
            (&mut self.left, &mut self.left_count, "left"),
        ] {
            match *count {
                0 => {}
                1 => out.push(format!("* {} {verb}\n", names[0])),
                n => {
                    let shown = names.join(", ");
                    let more = n - names.len();
                    let tail = if more > 0 {
                        format!(" and {more} others")
                    } else {
                        String::new()
                    };
                    out.push(format!("* {n} users {verb}: {shown}{tail}\n"));
                }
            }
            names.clear();
            *count = 0;
        }
        out
    }
}

/// Everything the client tasks share. Locks are `std::sync::Mutex`: they are held for a few
/// microseconds and never across an `.await`, which is exactly when tokio recommends std's mutex.
struct Shared {
    tx: broadcast::Sender<Msg>,
    /// Nicknames in use, for uniqueness and `/list`.
    nicks: Mutex<HashSet<String>>,
    notices: Mutex<Notices>,
    stats: Stats,
    config: Config,
}

impl Shared {
    fn broadcast(&self, from: u64, line: String) {
        self.stats.messages.fetch_add(1, Relaxed);
        // `send` fails only when nobody is subscribed, which is fine: nobody to tell.
        let _ = self.tx.send(Msg {
            from,
            line: Bytes::from(line),
        });
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The multi-thread runtime (one worker per core) lets both cores write to sockets during a
    // broadcast; a current-thread runtime measured 30–40% worse p99 at 10,000 clients.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    rt.block_on(async_main(args))
}

async fn async_main(args: Args) -> anyhow::Result<()> {
    let old_limit = nofile_soft_limit();
    let limit = shared::monitor::raise_nofile_limit().context("raising RLIMIT_NOFILE")?;
    let capacity = usize::try_from(limit.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
    let max_clients = args.max_clients.unwrap_or(capacity);

    let listener = bind(args.addr).with_context(|| format!("binding {}", args.addr))?;
    let local = listener.local_addr().context("reading the bound address")?;
    println!("chat-server listening on {local}");
    println!(
        "open files: soft limit {old_limit} -> {limit}, so up to {capacity} clients; accepting {max_clients} (--max-clients)"
    );
    println!(
        "try: nc {} {}   (/help for commands; Ctrl-C stops the server)",
        local.ip(),
        local.port()
    );

    let config = Config {
        max_clients,
        max_line: args.max_line,
        write_timeout: args.write_timeout,
        idle_timeout: args.idle_timeout,
        notice_interval: args.notice_interval,
    };
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    let duration = args.duration;
    tokio::spawn(async move {
        let stop_after = async {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => println!("ctrl-c: shutting down"),
            () = stop_after => println!("--duration elapsed: shutting down"),
        }
        trigger.cancel();
    });

    let started = Instant::now();
    let shared = serve(listener, config, args.queue, args.stats_interval, shutdown).await;
    let s = &shared.stats;
    println!(
        "stopped after {:.1} s: {} clients accepted, {} refused, {} messages, {} deliveries, {} slow clients dropped",
        started.elapsed().as_secs_f64(),
        s.accepted.load(Relaxed),
        s.refused.load(Relaxed),
        s.messages.load(Relaxed),
        s.deliveries.load(Relaxed),
        s.dropped_slow.load(Relaxed),
    );
    Ok(())
}

/// `TcpListener::bind` uses a backlog of 1024; a storm of 10,000 connects overflows it and the
/// kernel drops SYNs, which clients retry only after 1 s, 3 s, 7 s. Ask for 4096 (the kernel caps
/// it at `net.core.somaxconn`).
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

fn nofile_soft_limit() -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct we pass, which lives for the whole call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    if rc == 0 { rl.rlim_cur } else { 0 }
}

/// The server: accept loop, notice flusher, stats printer. Returns when `shutdown` is cancelled
/// and the client tasks have said goodbye (or `DRAIN_TIMEOUT` passed).
async fn serve(
    listener: TcpListener,
    config: Config,
    queue: usize,
    stats_interval: Duration,
    shutdown: CancellationToken,
) -> Arc<Shared> {
    let (tx, _) = broadcast::channel(queue.max(1));
    let shared = Arc::new(Shared {
        tx,
        nicks: Mutex::new(HashSet::new()),
        notices: Mutex::new(Notices::default()),
        stats: Stats::default(),
        config,
    });
    let tracker = TaskTracker::new();
    tracker.spawn(flush_notices(shared.clone(), shutdown.clone()));
    tracker.spawn(print_stats(
        shared.clone(),
        stats_interval,
        shutdown.clone(),
    ));

    let mut next_id: u64 = 1;
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        let (stream, _peer) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                // EMFILE/ENFILE (out of file descriptors) and ECONNABORTED are per-connection
                // troubles, not reasons to stop serving. Without the pause, an EMFILE loop spins
                // at 100% CPU because the pending connection stays in the backlog.
                eprintln!("accept failed: {e}; pausing 100 ms");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let stats = &shared.stats;
        stats.accepted.fetch_add(1, Relaxed);
        // Nagle's algorithm would hold a small line back while an earlier one is unacknowledged.
        let _ = stream.set_nodelay(true);
        if stats.connected.load(Relaxed) >= shared.config.max_clients {
            stats.refused.fetch_add(1, Relaxed);
            let max = shared.config.max_clients;
            tracker.spawn(async move {
                let line = format!("error: server full ({max} clients), try again later\n");
                last_words(stream, line.as_bytes()).await;
            });
            continue;
        }
        stats.connected.fetch_add(1, Relaxed);
        let id = next_id;
        next_id += 1;
        tracker.spawn(client(shared.clone(), stream, id, shutdown.clone()));
    }

    drop(listener); // stop accepting at once: new connects are refused by the kernel
    tracker.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait())
        .await
        .is_err()
    {
        eprintln!(
            "{} client tasks still running after {DRAIN_TIMEOUT:?}; leaving them",
            tracker.len()
        );
    }
    shared
}

/// Write one line, then close, without waiting forever on a client that does not read.
async fn last_words(mut stream: TcpStream, line: &[u8]) {
    let _ = tokio::time::timeout(LAST_WORDS_TIMEOUT, async {
        stream.write_all(line).await?;
        stream.shutdown().await
    })
    .await;
}

/// Why a client task ended; the reason goes into the leave notice.
#[derive(Debug, PartialEq)]
enum Leave {
    Quit,
    Closed,
    TooLong,
    Idle,
    Slow,
    Shutdown,
    Error,
}

impl Leave {
    fn why(&self) -> &'static str {
        match self {
            Leave::Quit | Leave::Closed | Leave::Shutdown => "",
            Leave::TooLong => "line too long",
            Leave::Idle => "idle",
            Leave::Slow => "too slow",
            Leave::Error => "connection error",
        }
    }
}

/// One client: read its lines, write everyone's lines to it, until it leaves or we stop.
async fn client(shared: Arc<Shared>, mut stream: TcpStream, id: u64, shutdown: CancellationToken) {
    // Subscribe before the welcome line: everything broadcast after the client sees "welcome"
    // reaches it. Each receiver is a cursor into the one shared ring (16 bytes), not a queue.
    let mut rx = shared.tx.subscribe();
    let mut nick = format!("guest{id}");
    shared
        .nicks
        .lock()
        .expect("nicks lock poisoned")
        .insert(nick.clone());
    shared
        .notices
        .lock()
        .expect("notices lock poisoned")
        .join(&nick);

    let cfg = &shared.config;
    let (rd, mut wr) = stream.split();
    let mut lines = FramedRead::with_capacity(rd, LineCodec::new(cfg.max_line), READ_BUF);

    let leave = 'session: {
        // Built, sent and dropped here: a `String` still alive across the loop's `.await`s below
        // would stay allocated in every idle client's task, 10,000 times over.
        let online = shared.stats.connected.load(Relaxed);
        let welcome = format!("* welcome {nick}! {online} online; /help for commands\n");
        let sent = write_timed(&mut wr, welcome.as_bytes(), cfg.write_timeout).await;
        drop(welcome);
        if sent.is_err() {
            break 'session Leave::Error;
        }
        let idle = tokio::time::sleep(cfg.idle_timeout);
        tokio::pin!(idle);
        // Created once, outside the loop: a `cancelled()` future registers itself with the token
        // (a lock shared by every client) when first polled and unregisters when dropped; inside
        // `select!` that would be two lock operations per message per client.
        let stopping = shutdown.cancelled();
        tokio::pin!(stopping);
        loop {
            // `biased`: check shutdown first, then drain outgoing messages before reading more
            // input, so a client's queue stays short. Every branch is cancel-safe: `recv`,
            // `FramedRead::next` and `cancelled` keep their state when another branch wins.
            tokio::select! {
                biased;
                () = &mut stopping => {
                    let _ = write_timed(&mut wr, b"* server shutting down, goodbye\n", LAST_WORDS_TIMEOUT).await;
                    break 'session Leave::Shutdown;
                }
                msg = rx.recv() => match msg {
                    Ok(msg) => match deliver(msg, &mut rx, &mut wr, id, cfg.write_timeout).await {
                        Ok(n) => { shared.stats.deliveries.fetch_add(n, Relaxed); }
                        Err(leave) => break 'session leave,
                    },
                    Err(RecvError::Lagged(_)) => break 'session Leave::Slow,
                    Err(RecvError::Closed) => break 'session Leave::Shutdown,
                },
                frame = lines.next() => {
                    let line = match frame {
                        None => break 'session Leave::Closed,
                        Some(Ok(line)) => line,
                        Some(Err(LineError::TooLong)) => {
                            let _ = write_timed(&mut wr, b"error: line too long, closing\n", LAST_WORDS_TIMEOUT).await;
                            break 'session Leave::TooLong;
                        }
                        Some(Err(LineError::Io)) => break 'session Leave::Error,
                    };
                    idle.as_mut().reset(tokio::time::Instant::now() + cfg.idle_timeout);
                    let reply = match command(&shared, id, &mut nick, &line) {
                        Reply::None => continue,
                        Reply::Quit => {
                            let _ = write_timed(&mut wr, b"* bye\n", LAST_WORDS_TIMEOUT).await;
                            break 'session Leave::Quit;
                        }
                        Reply::Line(reply) => reply,
                    };
                    match write_timed(&mut wr, reply.as_bytes(), cfg.write_timeout).await {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::TimedOut => break 'session Leave::Slow,
                        Err(_) => break 'session Leave::Error,
                    }
                }
                () = &mut idle => {
                    let _ = write_timed(&mut wr, b"* idle timeout, bye\n", LAST_WORDS_TIMEOUT).await;
                    break 'session Leave::Idle;
                }
            }
        }
    };

    if leave == Leave::Slow {
        shared.stats.dropped_slow.fetch_add(1, Relaxed);
    }
    shared
        .nicks
        .lock()
        .expect("nicks lock poisoned")
        .remove(&nick);
    if leave != Leave::Shutdown {
        shared
            .notices
            .lock()
            .expect("notices lock poisoned")
            .leave(&nick, leave.why());
    }
    shared.stats.connected.fetch_sub(1, Relaxed);
    // `stream` is dropped here: the socket closes (with a RST if unread input is pending).
}

/// Write `first` and whatever else is already waiting in the ring as one batch. Returns how many
/// lines went out; `Err` says why the client must go.
async fn deliver(
    first: Msg,
    rx: &mut broadcast::Receiver<Msg>,
    wr: &mut (impl AsyncWriteExt + Unpin),
    id: u64,
    write_timeout: Duration,
) -> Result<u64, Leave> {
    let mut first = (first.from != id).then_some(first.line);
    let mut batch = BytesMut::new();
    let mut count = u64::from(first.is_some());
    loop {
        let msg = match rx.try_recv() {
            Ok(msg) => msg,
            Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            Err(TryRecvError::Lagged(_)) => return Err(Leave::Slow),
        };
        if msg.from == id {
            continue;
        }
        // Only now, with a second line waiting, is a copy worth it: one write instead of two.
        if let Some(line) = first.take() {
            batch.extend_from_slice(&line);
        }
        batch.extend_from_slice(&msg.line);
        count += 1;
        if batch.len() >= MAX_BATCH {
            break;
        }
    }
    // The common case, one line: write the shared `Bytes` itself, no copy, no allocation.
    let bytes: &[u8] = match &first {
        Some(line) => line,
        None => &batch,
    };
    if !bytes.is_empty() {
        write_timed(wr, bytes, write_timeout)
            .await
            .map_err(|e| match e.kind() {
                // The socket buffer stayed full for `write_timeout`: the client stopped reading.
                // Drop it rather than wait, because a waiting task falls behind the ring anyway.
                io::ErrorKind::TimedOut => Leave::Slow,
                _ => Leave::Error,
            })?;
    }
    Ok(count)
}

async fn write_timed(
    wr: &mut (impl AsyncWriteExt + Unpin),
    bytes: &[u8],
    limit: Duration,
) -> io::Result<()> {
    match tokio::time::timeout(limit, wr.write_all(bytes)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
    }
}

/// What a line asks the client task to do.
enum Reply {
    None,
    Line(String),
    Quit,
}

const HELP: &str = "* commands: /nick NAME (rename), /list (who is online), /quit (leave), /help; anything else is said to everyone\n";

/// Interpret one line from client `id`: a command, or a chat line to broadcast.
fn command(shared: &Shared, id: u64, nick: &mut String, raw: &[u8]) -> Reply {
    let text = sanitize(raw);
    let text = text.trim_end();
    let (cmd, arg) = match text.split_once(' ') {
        Some((c, a)) => (c, a.trim()),
        None => (text, ""),
    };
    match cmd {
        "" => Reply::None,
        "/quit" => Reply::Quit,
        "/help" => Reply::Line(HELP.to_string()),
        "/list" => {
            let nicks = shared.nicks.lock().expect("nicks lock poisoned");
            let mut names: Vec<&str> = nicks.iter().map(String::as_str).collect();
            let total = names.len();
            // Sort a bounded selection only: `select_nth_unstable` is O(n), a full sort O(n log n)
            // under the lock with 10,000 names.
            if names.len() > LIST_MAX {
                names.select_nth_unstable(LIST_MAX);
                names.truncate(LIST_MAX);
            }
            names.sort_unstable();
            let more = if total > names.len() {
                format!(" (and {} more)", total - names.len())
            } else {
                String::new()
            };
            Reply::Line(format!("* {total} online: {}{more}\n", names.join(", ")))
        }
        "/nick" => {
            if !valid_nick(arg) {
                return Reply::Line(
                    "error: a nick is 1-32 characters of A-Z a-z 0-9 _ -\n".to_string(),
                );
            }
            if arg == nick {
                return Reply::Line(format!("* you are already {arg}\n"));
            }
            {
                let mut nicks = shared.nicks.lock().expect("nicks lock poisoned");
                if !nicks.insert(arg.to_string()) {
                    return Reply::Line(format!("error: nick {arg} is taken\n"));
                }
                nicks.remove(nick.as_str());
            }
            shared.broadcast(id, format!("* {nick} is now {arg}\n"));
            *nick = arg.to_string();
            Reply::Line(format!("* you are now {arg}\n"))
        }
        c if c.starts_with('/') => {
            Reply::Line(format!("error: unknown command {c}; /help lists them\n"))
        }
        _ => {
            shared.broadcast(id, format!("{nick}: {text}\n"));
            Reply::None
        }
    }
}

fn valid_nick(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Bytes from the network are not text: invalid UTF-8 becomes `�` and control characters become
/// `?`, so nobody can send terminal escape sequences (clear screen, fake prompts) to the others.
fn sanitize(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
        .collect()
}

/// Flush the collected join/leave notices every `notice_interval`, as one line each.
async fn flush_notices(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(shared.config.notice_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let lines = shared
            .notices
            .lock()
            .expect("notices lock poisoned")
            .take_lines();
        for line in lines {
            shared.broadcast(0, line);
        }
    }
}

/// One stats line every `every`, plus warnings when the machine is saturated.
async fn print_stats(shared: Arc<Shared>, every: Duration, shutdown: CancellationToken) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let limits = shared::monitor::Thresholds {
        cpu_percent: 90.0 * cores as f64,
        rss_kib: 4 * 1024 * 1024,
    };
    let mut sampler = shared::monitor::Sampler::new();
    let mut tick = tokio::time::interval(every);
    tick.tick().await; // the first tick is immediate
    let s = &shared.stats;
    let (mut last_msgs, mut last_deliv, mut last_dropped) = (0, 0, 0);
    let mut last = Instant::now();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let secs = last.elapsed().as_secs_f64().max(1e-9);
        last = Instant::now();
        let (msgs, deliv, dropped) = (
            s.messages.load(Relaxed),
            s.deliveries.load(Relaxed),
            s.dropped_slow.load(Relaxed),
        );
        let sample = sampler.sample();
        println!(
            "stats: {} clients | {:.1} msg/s | {:.0} deliveries/s | rss {:.1} MiB | cpu {:.0}% | {dropped} slow dropped | {} refused",
            s.connected.load(Relaxed),
            (msgs - last_msgs) as f64 / secs,
            (deliv - last_deliv) as f64 / secs,
            sample.rss_kib as f64 / 1024.0,
            sample.cpu_percent,
            s.refused.load(Relaxed),
        );
        if let Some(warning) = limits.check(&sample) {
            println!("warning: {warning}: latency will grow; shed load or add cores");
        }
        if dropped > last_dropped {
            println!(
                "warning: dropped {} slow clients in the last {secs:.0} s",
                dropped - last_dropped
            );
        }
        (last_msgs, last_deliv, last_dropped) = (msgs, deliv, dropped);
    }
}

/// A line decoder with a hard length limit. `LinesCodec` would do, but it rejects invalid UTF-8
/// and, past its limit, silently discards until the next newline; a chat server wants to tell
/// the client and hang up, and to decide itself what to do with bad bytes.
struct LineCodec {
    max: usize,
    /// Where to resume the newline search: bytes before it were already scanned.
    scanned: usize,
}

#[derive(Debug)]
enum LineError {
    TooLong,
    /// A reset or another socket error: the connection is gone, the details do not matter here.
    Io,
}

impl From<io::Error> for LineError {
    fn from(_: io::Error) -> Self {
        LineError::Io
    }
}

impl LineCodec {
    fn new(max: usize) -> Self {
        LineCodec { max, scanned: 0 }
    }
}

impl Decoder for LineCodec {
    type Item = BytesMut;
    type Error = LineError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, LineError> {
        let start = self.scanned.min(buf.len());
        match buf[start..].iter().position(|&b| b == b'\n') {
            Some(pos) => {
                self.scanned = 0;
                let mut line = buf.split_to(start + pos + 1);
                line.truncate(line.len() - 1);
                if line.last() == Some(&b'\r') {
                    line.truncate(line.len() - 1); // telnet sends CRLF
                }
                if line.len() > self.max {
                    Err(LineError::TooLong)
                } else {
                    Ok(Some(line))
                }
            }
            // No newline yet and already too long: fail now, before the buffer grows further.
            None if buf.len() > self.max => Err(LineError::TooLong),
            None => {
                self.scanned = buf.len();
                Ok(None)
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, LineError> {
        match self.decode(buf)? {
            Some(line) => Ok(Some(line)),
            // `printf hi | nc` sends a last line without newline: keep it.
            None if !buf.is_empty() => {
                self.scanned = 0;
                Ok(Some(buf.split()))
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storm_of_joins_is_one_line() {
        let mut n = Notices::default();
        for i in 0..42 {
            n.join(&format!("guest{i}"));
        }
        n.leave("bob", "too slow");
        let lines = n.take_lines();
        assert_eq!(
            lines,
            vec![
                "* 42 users joined: guest0, guest1, guest2 and 39 others\n",
                "* bob (too slow) left\n"
            ]
        );
        assert!(n.take_lines().is_empty(), "flushing resets the counters");
    }

    #[test]
    fn codec_splits_lines_and_enforces_the_limit() {
        let mut codec = LineCodec::new(5);
        let mut buf = BytesMut::from(&b"hi\r\nhello\nab"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), &b"hi"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), &b"hello"[..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert_eq!(codec.decode_eof(&mut buf).unwrap().unwrap(), &b"ab"[..]);
        let mut long = BytesMut::from(&b"abcdefgh"[..]);
        assert!(matches!(codec.decode(&mut long), Err(LineError::TooLong)));
    }

    #[test]
    fn sanitize_replaces_bad_bytes_and_escapes() {
        assert_eq!(sanitize(b"a\xffb\x1b[2Jc\td"), "a\u{fffd}b?[2Jc\td");
    }

    #[test]
    fn duration_flags_take_units_and_refuse_nonsense() {
        use clap::Parser as _;
        let args = Args::try_parse_from(["chat-server", "--idle-timeout", "1h 30m"]).unwrap();
        assert_eq!(args.idle_timeout, Duration::from_secs(5400));
        let args = Args::try_parse_from(["chat-server", "--write-timeout", "250ms"]).unwrap();
        assert_eq!(args.write_timeout, Duration::from_millis(250));
        assert_eq!(
            Args::try_parse_from(["chat-server"]).unwrap().idle_timeout,
            Duration::from_secs(600)
        );
        assert!(Args::try_parse_from(["chat-server", "--idle-timeout", "5 parsecs"]).is_err());
        // A bare number is refused rather than guessed (seconds? milliseconds?).
        assert!(Args::try_parse_from(["chat-server", "--idle-timeout", "2"]).is_err());
    }
}
