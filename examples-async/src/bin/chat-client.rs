//! An async terminal chat client: stdin → server and server → stdout at the same time, with `select!`.
//!
//! Course section 8.2 (programmation asynchrone): the asyncio client that would use
//! `asyncio.gather(read_stdin(), read_socket())`. One task, one `select!` loop, two sources.
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

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// After `/quit`, how long we wait for the server to close before giving up.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

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
    let (addr, mut own_server, script) = match args.addr {
        Some(addr) => (addr, None, args.say),
        None => {
            let server = OwnServer::start()?;
            let script = if args.say.is_empty() {
                ["/nick demo", "/list", "hello, is anybody there?", "/help"]
                    .map(String::from)
                    .to_vec()
            } else {
                args.say
            };
            (server.addr, Some(server), script)
        }
    };
    let result = chat(addr, script).await;
    if let Some(server) = own_server.as_mut() {
        server.stop();
    }
    result
}

/// Input lines come through a bounded channel: from a script, or from a stdin thread.
fn input_lines(script: Vec<String>) -> mpsc::Receiver<String> {
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

async fn chat(addr: SocketAddr, script: Vec<String>) -> anyhow::Result<()> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    eprintln!("connected to {addr}; type lines, Ctrl-D to quit");
    let (rd, mut wr) = stream.into_split();
    let mut from_server = BufReader::new(rd).lines();
    let mut input = input_lines(script);
    let mut quitting = false;
    let mut out = tokio::io::stdout();
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

/// The `chat-server` we start for the offline demo.
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
                "no --addr given and {} does not exist; build it first: cargo build -p examples-async --bin chat-server",
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
        // Keep draining its stdout so it never blocks on a full pipe.
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        eprintln!("(demo: started {} on {addr})", server.display());
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
