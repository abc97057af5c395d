//! Passing messages between processes through pipes versus between threads through channels, measured.
//!
//! Course 8.1 "Threading et multiprocessing": *Communication plus complexe* between processes,
//! and *Queue : communication sécurisée entre threads/processus*. A `multiprocessing.Queue` is a
//! pipe plus pickling; a `queue.Queue` is a deque plus a lock. Here are their Rust cores.
//!
//! # Concepts
//! - A channel between threads *moves* a message: the `Vec`'s pointer changes hands, the bytes
//!   are never copied, whatever their size.
//! - A pipe between processes *copies*: user buffer → kernel pipe buffer (64 KiB) → the other
//!   process's buffer, in chunks, with a system call for each, and a wake-up of the reader.
//!   Messages need framing (a length prefix here) because a pipe is a byte stream.
//! - Buffered writes (`BufWriter`) batch many small frames into one `write(2)`: throughput for
//!   streams. A request/response exchange cannot batch: each message pays a full round trip of
//!   two system calls and two context switches: latency.
//!
//! # Run
//! ```text
//! cargo run --release -p examples-processes --bin pipe-ipc
//! cargo run --release -p examples-processes --bin pipe-ipc -- --mib 512 --round-trips 100000
//! cargo run --release -p examples-processes --bin pipe-ipc -- --json
//! ```
//!
//! # What to observe
//! - Large messages (16 KiB and up): the channel moves a pointer, so its "MiB/s" is only bounded
//!   by making each message (several GiB/s); the pipe flattens around 1 GiB/s: two copies and a
//!   system call per 64 KiB pipe buffer. This is the cost `multiprocessing` pays on big results.
//! - Small messages (64 B, 1 KiB): a close race that changes from run to run. The channel pays
//!   a hand-off per message, plus a wake-up each time the consumer had caught up and parked;
//!   the buffered pipe pays one `write(2)` per 256 KiB of frames. On a quiet machine the channel
//!   usually wins; on a busy one, where each wake-up waits for a core, the batching pipe can
//!   win (exercise 1). Either way the cost is per message, not per byte.
//! - Round trip of 64 bytes: ~5 µs for a channel and ~10 µs for a pipe on a quiet machine, and
//!   both 10-20 µs, in either order, on a busy one: each round trip is two wake-ups of a sleeping
//!   thread or process, which costs far more than copying 64 bytes. A pool that sends one tiny
//!   task per message is bounded by this, whatever the transport.
//!
//! # Exercises
//! 1. Batch the channel: send `Vec<Vec<u8>>` of 256 messages at a time. Who wins at 64 bytes now?
//! 2. Remove the `BufWriter` around the pipe: how do 64-byte messages fare with one `write(2)`
//!    each?
//! 3. Replace the pipe by a Unix socket pair (`std::os::unix::net::UnixStream::pair`) passed to
//!    the child: faster or slower? (Hint: both are kernel copies.)
//! 4. Enlarge the pipe buffer with `fcntl(F_SETPIPE_SZ, 1 << 20)` and run again.
//! 5. Run the round trip with `taskset -c 0` (one core), then with `std::sync::mpsc::sync_channel`
//!    instead of crossbeam. crossbeam spins briefly before it parks a thread: when does spinning
//!    help a round trip, and when (a busy or single core) does it only burn the other side's time?

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use serde::Serialize;

/// Throughput and latency of pipes between processes vs channels between threads.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Bytes sent per message size, in MiB (capped at `--max-messages`).
    #[arg(long, default_value_t = 128)]
    mib: usize,
    /// Upper bound on the number of messages per size.
    #[arg(long, default_value_t = 400_000)]
    max_messages: usize,
    /// Request/response round trips for the latency measurement.
    #[arg(long, default_value_t = 20_000)]
    round_trips: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Hidden: be the child (`sink` counts frames, `echo` sends each frame back).
    #[arg(long, hide = true)]
    child: Option<String>,
}

const SIZES: [usize; 4] = [64, 1024, 16 * 1024, 256 * 1024];
/// Frames are `[len: u32 LE][payload]`; a length above this is a bug, not a message.
const MAX_FRAME: usize = 16 * 1024 * 1024;

#[derive(Serialize)]
struct OneWay {
    size: usize,
    messages: usize,
    channel_s: f64,
    pipe_s: f64,
    channel_mib_s: f64,
    pipe_mib_s: f64,
}

#[derive(Serialize)]
struct RoundTrip {
    size: usize,
    round_trips: usize,
    channel_us: f64,
    pipe_us: f64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.child.as_deref() {
        Some("sink") => return child_sink(),
        Some("echo") => return child_echo(),
        Some(other) => bail!("unknown child mode {other}"),
        None => {}
    }
    ensure!(
        args.mib > 0 && args.max_messages > 0 && args.round_trips > 0,
        "counts must be positive"
    );
    let exe = std::env::current_exe().context("finding our own binary")?;

    let mut one_way = Vec::new();
    for size in SIZES {
        let messages = (args.mib * 1024 * 1024 / size).clamp(1, args.max_messages);
        let channel = channel_one_way(size, messages)?;
        let pipe = pipe_one_way(&exe, size, messages)?;
        let mib = (size * messages) as f64 / (1024.0 * 1024.0);
        one_way.push(OneWay {
            size,
            messages,
            channel_s: channel.as_secs_f64(),
            pipe_s: pipe.as_secs_f64(),
            channel_mib_s: mib / channel.as_secs_f64(),
            pipe_mib_s: mib / pipe.as_secs_f64(),
        });
    }
    let round_trip = RoundTrip {
        size: 64,
        round_trips: args.round_trips,
        channel_us: channel_round_trip(64, args.round_trips)?.as_secs_f64() * 1e6
            / args.round_trips as f64,
        pipe_us: pipe_round_trip(&exe, 64, args.round_trips)?.as_secs_f64() * 1e6
            / args.round_trips as f64,
    };

    if args.json {
        shared::report::print_json(
            &serde_json::json!({ "one_way": one_way, "round_trip": round_trip }),
        );
        return Ok(());
    }
    println!("one way, streaming: a producer sends, a consumer receives and counts");
    println!(
        "{:>9} {:>9} | {:>22} | {:>22} | {:>17}",
        "size", "messages", "channel (threads)", "pipe (processes)", "time pipe/channel"
    );
    for r in &one_way {
        let rate = |mib_s: f64, secs: f64| {
            format!(
                "{:>6.0} MiB/s {:>9}",
                mib_s,
                shared::report::fmt_duration(Duration::from_secs_f64(secs))
            )
        };
        println!(
            "{:>9} {:>9} | {:>22} | {:>22} | {:>16.2}x",
            shared::report::fmt_bytes(r.size as u64),
            r.messages,
            rate(r.channel_mib_s, r.channel_s),
            rate(r.pipe_mib_s, r.pipe_s),
            r.pipe_s / r.channel_s
        );
    }
    println!();
    println!(
        "round trip of a {}-byte message, {} times: channel {:.2} µs, pipe {:.2} µs ({:.1}x)",
        round_trip.size,
        round_trip.round_trips,
        round_trip.channel_us,
        round_trip.pipe_us,
        round_trip.pipe_us / round_trip.channel_us
    );
    println!();
    println!("Big messages: a channel moves ownership (no copy); a pipe copies every byte twice");
    println!(
        "through the kernel. Small messages: what counts is how many wake-ups and system calls"
    );
    println!("each message costs, so batch them. For a process pool: few messages, each worth it.");
    Ok(())
}

// ---- Framing (the same shape as process-pool's codec, inlined to keep this file standalone). -

fn write_frame(w: &mut impl Write, payload: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(payload.len()).expect("messages are under 4 GiB");
    w.write_all(&len.to_le_bytes())?;
    w.write_all(payload)
}

/// Reads one frame into `buf` (reused between calls); `false` on a clean EOF.
fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> anyhow::Result<bool> {
    let mut header = [0u8; 4];
    match r.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e).context("reading a frame header"),
    }
    let len = u32::from_le_bytes(header) as usize;
    ensure!(len <= MAX_FRAME, "frame of {len} bytes is over the limit");
    buf.resize(len, 0);
    r.read_exact(buf).context("truncated frame")?;
    Ok(true)
}

// ---- The child processes. ----------------------------------------------------------------

/// Counts frames and bytes until EOF, then reports them: one line on stdout.
fn child_sink() -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?; // Lets the parent start its clock after our start-up.
    out.flush()?;
    let mut input = BufReader::with_capacity(256 * 1024, std::io::stdin().lock());
    let (mut messages, mut bytes, mut buf) = (0usize, 0usize, Vec::new());
    while read_frame(&mut input, &mut buf)? {
        messages += 1;
        bytes += buf.len();
    }
    writeln!(out, "{messages} {bytes}")?;
    Ok(())
}

/// Sends every frame straight back.
fn child_echo() -> anyhow::Result<()> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut input = BufReader::new(std::io::stdin().lock());
    let mut buf = Vec::new();
    while read_frame(&mut input, &mut buf)? {
        write_frame(&mut out, &buf)?;
        out.flush()?; // One answer per request: nothing to batch.
    }
    Ok(())
}

fn spawn_child(
    exe: &std::path::Path,
    mode: &str,
) -> anyhow::Result<(Child, ChildStdin, ChildStdout)> {
    let mut child = Command::new(exe)
        .args(["--child", mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning the {mode} child"))?;
    let stdin = child.stdin.take().expect("stdin was piped");
    let stdout = child.stdout.take().expect("stdout was piped");
    Ok((child, stdin, stdout))
}

// ---- One way. ------------------------------------------------------------------------------

fn channel_one_way(size: usize, messages: usize) -> anyhow::Result<Duration> {
    let template = vec![0xA5u8; size];
    // Bounded like every queue in this workspace; 64 messages in flight is plenty to keep both
    // threads busy (a deeper queue changes nothing but memory).
    let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(64);
    let start = Instant::now();
    let consumer = std::thread::spawn(move || {
        let (mut n, mut bytes) = (0usize, 0usize);
        for msg in rx {
            n += 1;
            bytes += msg.len();
        } // Each message is freed here, by the consumer: the allocator's cross-thread path.
        (n, bytes)
    });
    for _ in 0..messages {
        // Making the message (allocate + fill) is part of the cost, as it is on the pipe side
        // (copy into the pipe). Sending it moves 24 bytes (ptr, len, capacity), never the data.
        tx.send(template.clone()).context("consumer hung up")?;
    }
    drop(tx);
    let (n, bytes) = consumer.join().expect("the consumer cannot panic");
    let elapsed = start.elapsed();
    ensure!(
        n == messages && bytes == messages * size,
        "channel lost messages"
    );
    Ok(elapsed)
}

fn pipe_one_way(exe: &std::path::Path, size: usize, messages: usize) -> anyhow::Result<Duration> {
    let (mut child, stdin, stdout) = spawn_child(exe, "sink")?;
    let mut reply = BufReader::new(stdout);
    let mut line = String::new();
    read_line(&mut reply, &mut line)?; // "ready"
    let template = vec![0xA5u8; size];
    let start = Instant::now();
    let mut w = BufWriter::with_capacity(256 * 1024, stdin);
    for _ in 0..messages {
        write_frame(&mut w, &template).context("writing to the sink")?;
    }
    drop(w.into_inner().context("flushing to the sink")?); // Close the pipe: EOF for the child.
    line.clear();
    read_line(&mut reply, &mut line)?;
    let elapsed = start.elapsed();
    let status = child.wait().context("reaping the sink")?;
    ensure!(status.success(), "sink failed: {status}");
    ensure!(
        line.trim() == format!("{messages} {}", messages * size),
        "sink counted {line:?}"
    );
    Ok(elapsed)
}

// ---- Round trips. -----------------------------------------------------------------------------

fn channel_round_trip(size: usize, n: usize) -> anyhow::Result<Duration> {
    let (to_tx, to_rx) = crossbeam_channel::bounded::<Vec<u8>>(1);
    let (back_tx, back_rx) = crossbeam_channel::bounded::<Vec<u8>>(1);
    let echo = std::thread::spawn(move || {
        for msg in to_rx {
            if back_tx.send(msg).is_err() {
                break;
            }
        }
    });
    let mut msg = vec![1u8; size];
    let start = Instant::now();
    for _ in 0..n {
        to_tx.send(msg).context("echo thread hung up")?;
        msg = back_rx.recv().context("echo thread hung up")?;
    }
    let elapsed = start.elapsed();
    drop(to_tx);
    echo.join().expect("the echo thread cannot panic");
    Ok(elapsed)
}

fn pipe_round_trip(exe: &std::path::Path, size: usize, n: usize) -> anyhow::Result<Duration> {
    let (mut child, stdin, stdout) = spawn_child(exe, "echo")?;
    let mut w = BufWriter::new(stdin);
    let mut r = BufReader::new(stdout);
    let msg = vec![1u8; size];
    let mut buf = Vec::with_capacity(size);
    // One untimed exchange: the child has started and both sides are warm.
    write_frame(&mut w, &msg)?;
    w.flush()?;
    ensure!(read_frame(&mut r, &mut buf)?, "echo child quit");
    let start = Instant::now();
    for _ in 0..n {
        write_frame(&mut w, &msg).context("writing to the echo child")?;
        w.flush().context("writing to the echo child")?;
        ensure!(read_frame(&mut r, &mut buf)?, "echo child quit");
    }
    let elapsed = start.elapsed();
    ensure!(buf == msg, "echo changed the message");
    drop(w);
    let status = child.wait().context("reaping the echo child")?;
    ensure!(status.success(), "echo child failed: {status}");
    Ok(elapsed)
}

/// `read_line` that treats EOF as an error (the child died before answering).
fn read_line(r: &mut impl BufRead, line: &mut String) -> anyhow::Result<()> {
    let n = r.read_line(line).context("reading from the child")?;
    ensure!(n > 0, "the child closed its stdout without answering");
    Ok(())
}
