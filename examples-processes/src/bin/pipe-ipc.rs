//! Passing messages between processes through pipes versus between threads through channels, measured.
//!
//! Course section **8.1 — Threading et multiprocessing** (*Communication plus complexe*, *Queue :
//! communication sécurisée entre threads/processus*). A `multiprocessing.Queue` is a pipe plus
//! pickling; a `queue.Queue` is a deque plus a lock. Here are their Rust cores; the course's
//! Python (`multiprocessing.Pipe` and `Queue`) is `python/pipe_ipc.py` (`--python`).
//!
//! Crates: `anyhow = "1"`, `crossbeam-channel = "0.5"` (the harness adds clap and serde).
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
//! cargo run --release -p examples-processes --bin pipe-ipc -- --python --mib 32 --max-messages 100000
//! ```
//!
//! # What to observe
//! - Large messages (16 KiB and up): the channel moves a pointer, so its "MiB/s" is only bounded
//!   by making each message; the pipe flattens several times lower: two copies and a system call
//!   per 64 KiB pipe buffer. This is the cost `multiprocessing` pays on big results.
//! - Small messages (64 B, 1 KiB): a close race that changes from run to run. The channel pays
//!   a hand-off per message, plus a wake-up each time the consumer had caught up and parked;
//!   the buffered pipe pays one `write(2)` per 256 KiB of frames. On a quiet machine the channel
//!   usually wins; on a busy one, where each wake-up waits for a core, the batching pipe can
//!   win (exercise 1). Either way the cost is per message, not per byte.
//! - Round trip of 64 bytes: microseconds either way, the pipe about twice the channel on a quiet
//!   machine, both alike on a busy one: each round trip is two wake-ups of a sleeping thread or
//!   process, which costs far more than copying 64 bytes. A pool that sends one tiny task per
//!   message is bounded by this, whatever the transport. Figures: the crate README, *Measured*.
//! - `--python`: the same messages, every one counted alike. `Pipe.send_bytes` is the same OS
//!   pipe plus a Python call per message (tens to hundreds of times ours at 64 B, a few times at
//!   16 KiB and up, where copying dominates); `Queue` adds pickling and a feeder thread.
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

// === Lesson: copy from here ===

/// Length-prefixed frames, `[len: u32 LE][payload]`: a pipe is a byte stream, so messages need
/// framing (the same shape as `process-pool`'s codec, repeated so this file stands alone).
mod frame {
    use std::io::{self, Read, Write};

    /// A length above this is a bug or garbage, not a message.
    pub const MAX_FRAME: usize = 16 * 1024 * 1024;

    pub fn write_frame(w: &mut impl Write, payload: &[u8]) -> io::Result<()> {
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|&n| n as usize <= MAX_FRAME)
            .ok_or_else(|| {
                io::Error::other(format!("{} bytes is over the limit", payload.len()))
            })?;
        w.write_all(&len.to_le_bytes())?;
        w.write_all(payload)
    }

    /// Reads one frame into `buf` (reused between calls); `false` on a clean EOF.
    pub fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<bool> {
        let mut header = [0u8; 4];
        match r.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(e),
        }
        let len = u32::from_le_bytes(header) as usize;
        if len > MAX_FRAME {
            return Err(io::Error::other(format!(
                "frame of {len} bytes is over the limit"
            )));
        }
        buf.resize(len, 0);
        r.read_exact(buf)?; // EOF here is a truncated frame: an error, not a clean end.
        Ok(true)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn frames_round_trip_and_a_cut_frame_is_an_error() {
            let mut stream = Vec::new();
            write_frame(&mut stream, b"one").unwrap();
            write_frame(&mut stream, &[9; 300]).unwrap();
            let (mut r, mut buf) = (&stream[..], Vec::new());
            assert!(read_frame(&mut r, &mut buf).unwrap());
            assert_eq!(buf, b"one");
            assert!(read_frame(&mut r, &mut buf).unwrap());
            assert_eq!(buf, [9; 300]);
            assert!(!read_frame(&mut r, &mut buf).unwrap(), "clean EOF");
            let cut = &stream[..5];
            assert!(
                read_frame(&mut &cut[..], &mut buf).is_err(),
                "truncated payload"
            );
            let huge = u32::MAX.to_le_bytes();
            assert!(
                read_frame(&mut &huge[..], &mut buf).is_err(),
                "refused before allocating"
            );
        }
    }
}

/// The two transports, one way (a stream of messages) and as request/response round trips.
/// The process side re-executes this binary as `--child sink` or `--child echo`.
mod transport {
    use std::io::{BufRead, BufReader, BufWriter, Write};
    use std::path::Path;
    use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
    use std::time::{Duration, Instant};

    use anyhow::{Context, ensure};

    use super::frame::{read_frame, write_frame};

    /// Child `sink`: counts frames and bytes until EOF, then reports them on one line.
    pub fn child_sink() -> anyhow::Result<()> {
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

    /// Child `echo`: sends every frame straight back.
    pub fn child_echo() -> anyhow::Result<()> {
        let mut out = BufWriter::new(std::io::stdout().lock());
        let mut input = BufReader::new(std::io::stdin().lock());
        let mut buf = Vec::new();
        while read_frame(&mut input, &mut buf)? {
            write_frame(&mut out, &buf)?;
            out.flush()?; // One answer per request: nothing to batch.
        }
        Ok(())
    }

    fn spawn_child(exe: &Path, mode: &str) -> anyhow::Result<(Child, ChildStdin, ChildStdout)> {
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

    /// `messages` messages of `size` bytes from one thread to another.
    pub fn channel_one_way(size: usize, messages: usize) -> anyhow::Result<Duration> {
        let template = vec![0xA5u8; size];
        // Bounded like every queue here; 64 in flight keeps both threads busy (a deeper queue
        // changes nothing but memory).
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
            // Making the message (allocate + fill) is part of the cost, as copying it into the
            // pipe is on the other side. Sending moves 24 bytes (ptr, len, cap), never the data.
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

    /// The same through a pipe into a `sink` child process.
    pub fn pipe_one_way(exe: &Path, size: usize, messages: usize) -> anyhow::Result<Duration> {
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
        let expected = format!("{messages} {}", messages * size);
        ensure!(
            line.trim() == expected,
            "sink counted {line:?}, sent {expected}"
        );
        Ok(elapsed)
    }

    /// `n` request/response exchanges of `size` bytes with an echo thread.
    pub fn channel_round_trip(size: usize, n: usize) -> anyhow::Result<Duration> {
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

    /// The same with an `echo` child process.
    pub fn pipe_round_trip(exe: &Path, size: usize, n: usize) -> anyhow::Result<Duration> {
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

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn channels_deliver_every_message_and_every_round_trip() {
            channel_one_way(1000, 500).unwrap();
            channel_round_trip(64, 200).unwrap();
        }

        #[test]
        fn a_child_that_is_not_a_sink_is_detected() {
            // `true` exits at once: no "ready" line, so the parent reports it instead of hanging.
            let err = pipe_one_way(Path::new("true"), 64, 10).unwrap_err();
            assert!(format!("{err:#}").contains("without answering"), "{err:#}");
        }
    }
}

// === Harness: not part of the lesson ===

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use clap::builder::PossibleValuesParser;
use serde::Serialize;
use shared::cli;
use shared::python::Python;
use transport::{channel_one_way, channel_round_trip, pipe_one_way, pipe_round_trip};

/// Throughput and latency of pipes between processes vs channels between threads.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Bytes sent per message size, in MiB (capped at `--max-messages`).
    #[arg(long, default_value_t = 128, value_parser = cli::usize_in(1, 4096))]
    mib: usize,
    /// Upper bound on the number of messages per size.
    #[arg(long, default_value_t = 400_000, value_parser = cli::usize_in(1, 10_000_000))]
    max_messages: usize,
    /// Request/response round trips for the latency measurement.
    #[arg(long, default_value_t = 20_000, value_parser = cli::usize_in(1, 1_000_000))]
    round_trips: usize,
    /// Also run the course's Python version (python/pipe_ipc.py: `multiprocessing.Pipe` and
    /// `Queue`) on the same sizes and counts: two more columns, every count checked.
    #[arg(long)]
    python: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Hidden: be the child (`sink` counts frames, `echo` sends each frame back).
    #[arg(long, hide = true, value_parser = PossibleValuesParser::new(["sink", "echo"]))]
    child: Option<String>,
}

const SIZES: [usize; 4] = [64, 1024, 16 * 1024, 256 * 1024];

/// The course's version (`multiprocessing.Pipe` and `Queue`), run by `--python`.
const PYTHON_RECIPE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/pipe_ipc.py");

/// One message size as `python/pipe_ipc.py` measured it.
#[derive(Serialize, Debug)]
struct PythonOneWay {
    size: usize,
    messages: usize,
    pipe_s: f64,
    queue_s: f64,
    /// Every message arrived, with every byte, through both.
    counts_agree: bool,
}

#[derive(Serialize, Debug)]
struct PythonIpc {
    version: String,
    one_way: Vec<PythonOneWay>,
    round_trip_us: f64,
}

/// Runs the recipe with our settings and checks that it moved the same messages we did.
fn run_python(py: &Python, args: &Args, ours: &[OneWay]) -> anyhow::Result<PythonIpc> {
    let (mib, max, trips) = (
        args.mib.to_string(),
        args.max_messages.to_string(),
        args.round_trips.to_string(),
    );
    let recipe_args = [
        "--mib",
        &mib,
        "--max-messages",
        &max,
        "--round-trips",
        &trips,
    ];
    let json = py.run_recipe(PYTHON_RECIPE, &recipe_args)?.json;
    let rows = json["one_way"]
        .as_array()
        .context("no one_way list in the recipe's output")?;
    anyhow::ensure!(
        rows.len() == ours.len(),
        "the recipe measured {} sizes",
        rows.len()
    );
    let mut one_way = Vec::new();
    for (row, ours) in rows.iter().zip(ours) {
        let secs = |key: &str| row[key].as_f64().filter(|s| s.is_finite() && *s > 0.0);
        let (Some(pipe_s), Some(queue_s)) = (secs("pipe_s"), secs("queue_s")) else {
            anyhow::bail!("the recipe's times are missing or not positive: {row}");
        };
        let expected = serde_json::json!([ours.messages, ours.messages * ours.size]);
        let counts_agree = row["size"] == ours.size
            && row["messages"] == ours.messages
            && row["pipe_received"] == expected
            && row["queue_received"] == expected;
        one_way.push(PythonOneWay {
            size: ours.size,
            messages: ours.messages,
            pipe_s,
            queue_s,
            counts_agree,
        });
    }
    let round_trip_us = json["round_trip"]["pipe_us"]
        .as_f64()
        .filter(|us| us.is_finite() && *us > 0.0)
        .context("the recipe's round trip time is missing")?;
    Ok(PythonIpc {
        version: py.version.clone(),
        one_way,
        round_trip_us,
    })
}

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

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    match args.child.as_deref() {
        Some("sink") => return transport::child_sink().map(|()| ExitCode::SUCCESS),
        Some(_) => return transport::child_echo().map(|()| ExitCode::SUCCESS),
        None => {}
    }
    // A missing python3 is a usage error (exit 2) that names the fix, found before measuring.
    let python = match args.python.then(|| Python::find(&[])).transpose() {
        Ok(python) => python,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
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
    let per_trip = |d: Duration| d.as_secs_f64() * 1e6 / args.round_trips as f64;
    let round_trip = RoundTrip {
        size: 64,
        round_trips: args.round_trips,
        channel_us: per_trip(channel_round_trip(64, args.round_trips)?),
        pipe_us: per_trip(pipe_round_trip(&exe, 64, args.round_trips)?),
    };

    let python = match &python {
        Some(py) => Some(run_python(py, &args, &one_way)?),
        None => None,
    };
    let agree = python
        .as_ref()
        .is_none_or(|p| p.one_way.iter().all(|r| r.counts_agree));

    if args.json {
        shared::report::print_json(&serde_json::json!({
            "one_way": one_way,
            "round_trip": round_trip,
            "python": python,
            "agree": agree,
        }));
    } else {
        print_tables(&one_way, &round_trip, python.as_ref());
    }
    if !agree {
        eprintln!("Python's messages or bytes differ from ours: see counts_agree in --json");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_tables(one_way: &[OneWay], round_trip: &RoundTrip, python: Option<&PythonIpc>) {
    println!("one way, streaming: a producer sends, a consumer receives and counts");
    let rate = |bytes: usize, secs: f64| {
        let mib_s = bytes as f64 / (1024.0 * 1024.0) / secs;
        let time = shared::report::fmt_duration(Duration::from_secs_f64(secs));
        format!("{mib_s:>6.0} MiB/s {time:>9}")
    };
    let mut header = format!(
        "{:>9} {:>9} | {:>22} | {:>22} | {:>17}",
        "size", "messages", "channel (threads)", "pipe (processes)", "time pipe/channel"
    );
    if python.is_some() {
        header.push_str(&format!(
            " | {:>22} | {:>22} | {:>16}",
            "Python Pipe", "Python Queue", "Python Pipe/ours"
        ));
    }
    println!("{header}");
    for (i, r) in one_way.iter().enumerate() {
        let bytes = r.size * r.messages;
        let mut line = format!(
            "{:>9} {:>9} | {:>22} | {:>22} | {:>16.2}x",
            shared::report::fmt_bytes(r.size as u64),
            r.messages,
            rate(bytes, r.channel_s),
            rate(bytes, r.pipe_s),
            r.pipe_s / r.channel_s
        );
        if let Some(p) = python.and_then(|p| p.one_way.get(i)) {
            let same = if p.counts_agree {
                ""
            } else {
                " DIFFERENT COUNTS"
            };
            line.push_str(&format!(
                " | {:>22} | {:>22} | {:>15.1}x{same}",
                rate(bytes, p.pipe_s),
                rate(bytes, p.queue_s),
                p.pipe_s / r.pipe_s
            ));
        }
        println!("{line}");
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
    if let Some(p) = python {
        println!(
            "{} multiprocessing.Pipe: {:.2} µs ({:.1}x our pipe); every message and byte counted alike: {}",
            p.version,
            p.round_trip_us,
            p.round_trip_us / round_trip.pipe_us,
            if p.one_way.iter().all(|r| r.counts_agree) {
                "yes"
            } else {
                "NO"
            }
        );
    }
    println!();
    println!("Big messages: a channel moves ownership (no copy); a pipe copies every byte twice");
    println!(
        "through the kernel. Small messages: what counts is how many wake-ups and system calls"
    );
    println!("each message costs, so batch them. For a process pool: few messages, each worth it.");
    if python.is_some() {
        println!(
            "Python pays pickling (Queue) or a Python call per message on top of the same pipe."
        );
    }
}
