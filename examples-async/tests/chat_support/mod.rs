//! What the chat tests share: the real `chat-server` binary on `127.0.0.1:0`, and a TCP line
//! client. Nothing here asserts on elapsed time: timeouts are hang guards only.

#![allow(dead_code)] // each test file uses its own part of this module
#![allow(clippy::unwrap_used)] // helpers panic on failure like the tests themselves

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Hang guard for anything a test waits for.
pub const GUARD: Duration = Duration::from_secs(30);

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// The page and `/ws` (second stdout line).
    pub http: SocketAddr,
    /// Every stdout line after the first, collected by a thread so the pipe never fills up.
    pub output: Arc<Mutex<Vec<String>>>,
    collector: Option<std::thread::JoinHandle<()>>,
}

fn last_word_addr(line: &str) -> SocketAddr {
    line.trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

impl Server {
    pub fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .args(["--addr", "127.0.0.1:0", "--notice-interval", "100ms"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start chat-server");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let addr = last_word_addr(&first);
        // `chat-server http on ADDR` (every test server serves the page too).
        let mut second = String::new();
        out.read_line(&mut second).unwrap();
        assert!(second.starts_with("chat-server http on "), "{second:?}");
        let http = last_word_addr(&second);
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = output.clone();
        let collector = std::thread::spawn(move || {
            for line in out.lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Server {
            child,
            addr,
            http,
            output,
            collector: Some(collector),
        }
    }

    /// Send SIGINT (what Ctrl-C does) and wait for the exit; returns the collected stdout.
    pub fn interrupt(&mut self) -> (std::process::ExitStatus, Vec<String>) {
        self.signal(libc::SIGINT)
    }

    /// Send `sig` and wait for the exit; returns the collected stdout.
    pub fn signal(&mut self, sig: i32) -> (std::process::ExitStatus, Vec<String>) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) with a pid we own; no memory is involved.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
        let status = self.child.wait().unwrap();
        self.collector.take().unwrap().join().unwrap();
        (status, self.output.lock().unwrap().clone())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Client {
    pub lines: tokio::io::Lines<tokio::io::BufReader<OwnedReadHalf>>,
    pub wr: OwnedWriteHalf,
    pub nick: String,
}

impl Client {
    /// Connect and read the welcome line (after which every broadcast reaches this client).
    pub async fn join(addr: SocketAddr) -> Client {
        Client::from_stream(TcpStream::connect(addr).await.unwrap()).await
    }

    pub async fn from_stream(stream: TcpStream) -> Client {
        let (rd, wr) = stream.into_split();
        let mut client = Client {
            lines: tokio::io::BufReader::new(rd).lines(),
            wr,
            nick: String::new(),
        };
        let welcome = client.next_line().await.expect("welcome line");
        assert!(welcome.starts_with("* welcome "), "{welcome:?}");
        client.nick = welcome["* welcome ".len()..]
            .split('!')
            .next()
            .unwrap()
            .to_string();
        client
    }

    pub async fn send(&mut self, line: &str) {
        self.wr
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }

    /// The next line, or `None` at end of stream (or on a reset).
    pub async fn next_line(&mut self) -> Option<String> {
        tokio::time::timeout(GUARD, self.lines.next_line())
            .await
            .expect("hang guard: no line")
            .unwrap_or(None)
    }

    /// Skip lines until one satisfies `pred`; returns it and the lines skipped.
    pub async fn expect(
        &mut self,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> (String, Vec<String>) {
        let mut skipped = Vec::new();
        loop {
            match self.next_line().await {
                Some(line) if pred(&line) => return (line, skipped),
                Some(line) => skipped.push(line),
                None => panic!("connection closed while waiting for {what}; got {skipped:?}"),
            }
        }
    }

    /// Read until the server closes the connection; returns the lines read.
    pub async fn expect_closed(&mut self) -> Vec<String> {
        let mut seen = Vec::new();
        while let Some(line) = self.next_line().await {
            seen.push(line);
        }
        seen
    }
}
