//! An async terminal chat client: stdin → server and server → stdout at the same time, with `select!`.
//!
//! Course section **8.2 — Programmation asynchrone avec asyncio**: the asyncio client that would
//! use `asyncio.gather(read_stdin(), read_socket())`. One task, one `select!` loop, two sources.
//!
//! Crates: `tokio = { version = "1.54", features = ["rt-multi-thread", "macros", "net", "io-util", "io-std", "sync", "time"] }`,
//! `anyhow = "1"`
//!
//! With no `--addr` it runs an offline demo: it starts the sibling `chat-server` binary on
//! `127.0.0.1:0`, plays a short script (`/nick demo`, `/list`, a line, `/quit`) and stops it.
//! With `--addr` it is interactive; `--say LINE` (repeatable) sends lines, then `/quit`.
//!
//! # Concepts
//! - **`select!` over two sources**: whichever of "a line from the keyboard" and "a line from the
//!   server" is ready first is handled; the other future is dropped, which is fine because both
//!   are *cancel-safe* (`mpsc::Receiver::recv`, `Lines::next_line` keep no half-read data).
//! - **Blocking input in an async program**: `tokio::io::stdin` reads on a blocking thread that the
//!   runtime waits for at exit, so a client that wants to quit would hang until Enter is pressed.
//!   tokio's docs recommend a dedicated OS thread for interactive input; it feeds a bounded channel.
//! - **Half-close**: at end of input we send `/quit` and keep reading until the server closes,
//!   so its last words (`* bye`) are not lost.
//!
//! # Run
//! ```text
//! cargo run -p examples-async --bin chat-client                         # offline demo, ends by itself
//! cargo run -p examples-async --bin chat-server                         # terminal 1
//! cargo run -p examples-async --bin chat-client -- --addr 127.0.0.1:6142   # terminals 2 and 3: chat
//! cargo run -p examples-async --bin chat-client -- --addr 127.0.0.1:6142 --say "/nick bot" --say "hello"
//! ```
//!
//! # What to observe
//! - Lines from others appear while you are typing: input and output are independent.
//! - Ctrl-D (end of input) sends `/quit`; the server's `* bye` is still printed.
//! - Stop the server with Ctrl-C: the client prints `* server shutting down, goodbye` and exits.
//!
//! # Exercises
//! 1. Replace the stdin thread by `tokio::io::stdin()` and find the exit hang described above.
//! 2. Reconnect with exponential backoff when the server goes away, re-sending `/nick`.
//! 3. Show a prompt `[nick] ` that survives incoming lines (hint: redraw after each line).

// === Lesson: copy from here ===

/// The client: keyboard (or script) and server in one `select!` loop.
mod client {
    use std::net::SocketAddr;
    use std::time::Duration;

    use anyhow::{Context, bail};
    use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;
    use tokio::sync::mpsc;

    /// After `/quit`, how long we wait for the server to close before giving up.
    const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

    /// Input lines come through a bounded channel: from a script, or from a stdin thread.
    pub fn input_lines(script: Vec<String>) -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::channel(16);
        if script.is_empty() {
            std::thread::spawn(move || {
                for line in std::io::stdin().lines() {
                    let Ok(line) = line else { break };
                    // `blocking_send` waits when the channel is full: typing faster than the
                    // network accepts is backpressured, not buffered without bound.
                    if tx.blocking_send(line).is_err() {
                        break; // the client is exiting
                    }
                }
            });
        } else {
            tokio::spawn(async move {
                for line in script {
                    println!("> {line}"); // echo the script, as a terminal would echo typing
                    if tx.send(line).await.is_err() {
                        break;
                    }
                    // Paced like someone typing, so replies interleave with the script readably.
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
            });
        }
        rx
    }

    /// Sends `input` to the chat server at `addr` and copies what it says to `out`, until the
    /// server closes the connection (after our `/quit`, or its own shutdown).
    pub async fn chat(
        addr: SocketAddr,
        mut input: mpsc::Receiver<String>,
        mut out: impl AsyncWrite + Unpin,
    ) -> anyhow::Result<()> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        eprintln!("connected to {addr}; type lines, Ctrl-D to quit");
        let (rd, mut wr) = stream.into_split();
        let mut from_server = BufReader::new(rd).lines();
        let mut quitting = false;
        loop {
            tokio::select! {
                line = input.recv(), if !quitting => {
                    let line = match line {
                        Some(line) => line,
                        None => "/quit".to_string(), // end of input: leave politely
                    };
                    quitting |= line.trim() == "/quit";
                    wr.write_all(format!("{line}\n").as_bytes()).await.context("sending to the server")?;
                }
                line = from_server.next_line() => match line.context("reading from the server")? {
                    Some(line) => {
                        out.write_all(format!("{line}\n").as_bytes()).await.context("writing stdout")?;
                        out.flush().await.context("flushing stdout")?;
                    }
                    None => break,
                },
                () = tokio::time::sleep(CLOSE_TIMEOUT), if quitting => {
                    bail!("the server did not close the connection within {CLOSE_TIMEOUT:?} after /quit");
                }
            }
        }
        eprintln!("disconnected");
        Ok(())
    }
}

// === Harness: not part of the lesson ===

use std::net::SocketAddr;

use clap::Parser;
use shared::sibling::Sibling;

/// An async terminal client for chat-server (see the file header).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Server to join; without it, run an offline demo against our own chat-server.
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Send this line instead of reading stdin (repeatable); `/quit` follows automatically.
    #[arg(long)]
    say: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (addr, own_server, script) = match args.addr {
        Some(addr) => (addr, None, args.say),
        None => {
            let server = Sibling::start(
                "chat-server",
                &[
                    "--addr",
                    "127.0.0.1:0",
                    "--no-http",
                    "--stats-interval",
                    "1h",
                ],
                1,
                "cargo build -p examples-async --bin chat-server",
            )?;
            let addr = server.addr(0)?;
            eprintln!("(demo: started chat-server on {addr})");
            let script = if args.say.is_empty() {
                ["/nick demo", "/list", "hello, is anybody there?", "/help"]
                    .map(String::from)
                    .to_vec()
            } else {
                args.say
            };
            (addr, Some(server), script)
        }
    };
    let result = client::chat(addr, client::input_lines(script), tokio::io::stdout()).await;
    drop(own_server); // stops it (SIGINT) and waits
    result
}
