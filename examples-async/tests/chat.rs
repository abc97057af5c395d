//! End-to-end tests of `chat-server` (and `chat-load`, `chat-client`) through real TCP clients.
//!
//! Each test starts the real binary on `127.0.0.1:0` and reads the bound address from its first
//! stdout line. Nothing here asserts on elapsed time: timeouts are hang guards only.

// Test helpers panic on failure like the tests themselves (clippy.toml only exempts `#[test]` fns).
#![allow(clippy::unwrap_used)]

mod chat_support;

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::time::Duration;

use chat_support::{Client, GUARD, Server};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn two_clients_exchange_messages_and_the_author_is_skipped() {
    let server = Server::start(&[]);
    let mut a = Client::join(server.addr).await;
    let mut b = Client::join(server.addr).await;
    a.send("hello from a").await;
    let want = format!("{}: hello from a", a.nick);
    b.expect("a's line", |l| l == want).await;
    b.send("hi a").await;
    let want = format!("{}: hi a", b.nick);
    let (_, skipped) = a.expect("b's line", |l| l == want).await;
    assert!(
        skipped.iter().all(|l| !l.contains("hello from a")),
        "a got its own line back: {skipped:?}"
    );
}

#[tokio::test]
async fn nick_list_help_and_quit() {
    let server = Server::start(&[]);
    let mut a = Client::join(server.addr).await;
    let mut b = Client::join(server.addr).await;
    let old = a.nick.clone();
    a.send("/nick alice").await;
    a.expect("rename confirmation", |l| l == "* you are now alice")
        .await;
    b.expect("rename notice", |l| l == format!("* {old} is now alice"))
        .await;
    b.send("/nick alice").await;
    b.expect("nick taken", |l| {
        l.starts_with("error: nick alice is taken")
    })
    .await;
    b.send("/nick not valid!").await;
    b.expect("invalid nick", |l| l.starts_with("error: a nick is"))
        .await;
    b.send("/list").await;
    let (list, _) = b.expect("list", |l| l.starts_with("* 2 online: ")).await;
    assert!(list.contains("alice") && list.contains(&b.nick), "{list}");
    b.send("/help").await;
    b.expect("help", |l| {
        l.starts_with("* commands:") && l.contains("/nick")
    })
    .await;
    b.send("/frobnicate").await;
    b.expect("unknown command", |l| {
        l.starts_with("error: unknown command /frobnicate")
    })
    .await;
    a.send("hi from alice").await;
    b.expect("a's line under its new nick", |l| {
        l == "alice: hi from alice"
    })
    .await;
    b.send("/quit").await;
    assert_eq!(
        b.expect_closed().await.last().map(String::as_str),
        Some("* bye")
    );
    let bnick = b.nick.clone();
    a.expect("leave notice", |l| l == format!("* {bnick} left"))
        .await;
}

#[tokio::test]
async fn overlong_line_closes_only_that_client() {
    let server = Server::start(&["--max-line", "1024"]);
    let mut a = Client::join(server.addr).await;
    let mut b = Client::join(server.addr).await;
    let mut c = Client::join(server.addr).await;
    // 256 KiB without a newline: the server must answer long before it could have buffered it.
    let _ = a.wr.write_all(&vec![b'x'; 256 * 1024]).await;
    let seen = a.expect_closed().await;
    assert!(
        seen.iter().any(|l| l == "error: line too long, closing"),
        "{seen:?}"
    );
    let anick = a.nick.clone();
    b.expect("leave notice", |l| {
        l.contains(&anick) && l.contains("line too long") && l.contains("left")
    })
    .await;
    b.send("still here").await;
    let want = format!("{}: still here", b.nick);
    c.expect("b's line", |l| l == want).await;
}

#[tokio::test]
async fn invalid_utf8_and_escape_sequences_are_neutralised() {
    let server = Server::start(&[]);
    let mut a = Client::join(server.addr).await;
    let mut b = Client::join(server.addr).await;
    a.wr.write_all(b"bad \xff\xfe bytes \x1b[2J here\n")
        .await
        .unwrap();
    a.send("after").await;
    // `lines()` would fail on invalid UTF-8; the server must have replaced it.
    let want = format!("{}: bad \u{fffd}\u{fffd} bytes ?[2J here", a.nick);
    b.expect("sanitised line", |l| l == want).await;
    b.expect("next line", |l| l.ends_with(": after")).await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_while_others_keep_receiving() {
    let server = Server::start(&["--write-timeout", "1s"]);
    // A tiny receive buffer so the stuck client's side fills quickly.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stuck = Client::from_stream(socket.connect(server.addr).await.unwrap()).await;
    stuck.send("/nick stuck").await;
    stuck.expect("rename", |l| l == "* you are now stuck").await;
    let mut sender = Client::join(server.addr).await;
    let mut healthy = Client::join(server.addr).await;

    // Flood in lockstep (a batch, then wait until `healthy` has it all), so the healthy reader is
    // never more than one batch behind, whatever the machine's speed. `stuck` never reads.
    let payload = "x".repeat(1000);
    let prefix = format!("{}: ", sender.nick);
    let mut sent = 0u64;
    let mut received = 0u64;
    let mut dropped = false;
    for _batch in 0..400 {
        for i in 0..50 {
            sender.send(&format!("{sent}-{i} {payload}")).await;
        }
        sent += 50;
        while received < sent {
            let line = healthy
                .next_line()
                .await
                .expect("healthy client was disconnected");
            if line.starts_with(&prefix) {
                received += 1;
            } else if line.contains("stuck (too slow) left") {
                dropped = true;
            }
        }
        if dropped {
            break;
        }
    }
    if !dropped {
        healthy
            .expect("slow-client notice", |l| {
                l.contains("stuck (too slow) left")
            })
            .await;
    }
    assert_eq!(received, sent, "the healthy client lost lines");
    // The stuck client now finds its buffered lines and then the end of the stream.
    let drained = tokio::time::timeout(GUARD, async {
        let mut buf = vec![0u8; 64 * 1024];
        let mut rd = stuck.lines.into_inner();
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the stuck client was never disconnected");
}

#[tokio::test]
async fn beyond_max_clients_newcomers_are_refused_politely() {
    let server = Server::start(&["--max-clients", "2"]);
    let mut a = Client::join(server.addr).await;
    let _b = Client::join(server.addr).await;
    let refused = TcpStream::connect(server.addr).await.unwrap();
    let mut lines = tokio::io::BufReader::new(refused).lines();
    let line = tokio::time::timeout(GUARD, lines.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        line.as_deref(),
        Some("error: server full (2 clients), try again later")
    );
    assert_eq!(
        tokio::time::timeout(GUARD, lines.next_line())
            .await
            .unwrap()
            .unwrap(),
        None
    );
    // Once a seat is free, a newcomer gets in (retry: the seat frees when a's task has ended).
    a.send("/quit").await;
    a.expect_closed().await;
    let joined = tokio::time::timeout(GUARD, async {
        loop {
            let stream = TcpStream::connect(server.addr).await.unwrap();
            let mut lines = tokio::io::BufReader::new(stream).lines();
            if let Ok(Some(line)) = lines.next_line().await
                && line.starts_with("* welcome")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(joined.is_ok(), "no seat freed after a client quit");
}

#[tokio::test]
async fn idle_clients_are_closed_and_abrupt_disconnects_are_noticed() {
    let server = Server::start(&["--idle-timeout", "1s"]);
    let mut idle = Client::join(server.addr).await;
    let seen = idle.expect_closed().await;
    assert_eq!(
        seen.last().map(String::as_str),
        Some("* idle timeout, bye"),
        "{seen:?}"
    );

    let server = Server::start(&[]);
    let mut watcher = Client::join(server.addr).await;
    let gone = Client::join(server.addr).await;
    let nick = gone.nick.clone();
    // A reset rather than a clean close: linger 0 makes close(2) send RST.
    let stream = gone
        .wr
        .reunite(gone.lines.into_inner().into_inner())
        .unwrap();
    stream.set_zero_linger().unwrap();
    drop(stream);
    watcher
        .expect("leave notice", |l| l.contains(&nick) && l.contains("left"))
        .await;
    let mut other = Client::join(server.addr).await;
    watcher.send("still serving").await;
    other
        .expect("line after the reset", |l| l.ends_with(": still serving"))
        .await;
}

#[tokio::test]
async fn ctrl_c_says_goodbye_to_every_client_and_exits_cleanly() {
    let mut server = Server::start(&[]);
    let mut a = Client::join(server.addr).await;
    let mut b = Client::join(server.addr).await;
    a.send("before shutdown").await;
    b.expect("a's line", |l| l.ends_with(": before shutdown"))
        .await;
    let (status, output) = server.interrupt();
    assert!(status.success(), "{status:?}");
    for c in [&mut a, &mut b] {
        let seen = c.expect_closed().await;
        assert_eq!(
            seen.last().map(String::as_str),
            Some("* server shutting down, goodbye"),
            "{seen:?}"
        );
    }
    let summary = output
        .iter()
        .find(|l| l.starts_with("stopped after"))
        .expect("summary line");
    assert!(summary.contains("2 clients accepted"), "{summary}");
}

/// Sends `line` and returns the first reply to it that is not someone else's broadcast.
async fn ask(client: &mut Client, line: &str) -> String {
    client.send(line).await;
    let (reply, _) = client
        .expect("a reply", |l| {
            l.starts_with("error: ") || l.starts_with("* you are")
        })
        .await;
    reply
}

/// The names in a `/list` reply (`* 3 online: a, b, c`).
async fn names_online(client: &mut Client) -> Vec<String> {
    client.send("/list").await;
    let (list, _) = client
        .expect("list", |l| l.starts_with("* ") && l.contains(" online: "))
        .await;
    list.split_once(" online: ")
        .unwrap()
        .1
        .split(", ")
        .map(String::from)
        .collect()
}

fn guest_number(nick: &str) -> u64 {
    nick.strip_prefix("guest").unwrap().parse().unwrap()
}

#[tokio::test]
async fn guest_names_cannot_be_taken_so_no_two_clients_share_one() {
    let server = Server::start(&[]);
    let mut a = Client::join(server.addr).await;
    // The next client will be called guest{n+1}: taking that name first made two of them.
    let next = format!("guest{}", guest_number(&a.nick) + 1);
    let reply = ask(&mut a, &format!("/nick {next}")).await;
    assert!(reply.starts_with("error: "), "{reply}");
    let b = Client::join(server.addr).await;
    assert_eq!(b.nick, next);
    let mut names = names_online(&mut a).await;
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[tokio::test]
async fn nicknames_are_unique_ignoring_case() {
    let server = Server::start(&[]);
    let mut a = Client::join(server.addr).await;
    let mut b = Client::join(server.addr).await;
    assert_eq!(ask(&mut a, "/nick alice").await, "* you are now alice");
    assert_eq!(
        ask(&mut b, "/nick ALICE").await,
        "error: nick ALICE is taken"
    );
    // Its holder may change its case.
    assert_eq!(ask(&mut a, "/nick Alice").await, "* you are now Alice");
}

#[tokio::test]
async fn a_leaving_client_never_frees_a_name_another_client_holds() {
    let server = Server::start(&[]);
    let mut a = Client::join(server.addr).await;
    // Before the fix: a took the next guest's name, b joined under it, b left and freed it
    // while a still used it, and d could take it too.
    let next = format!("guest{}", guest_number(&a.nick) + 1);
    let _ = ask(&mut a, &format!("/nick {next}")).await;
    let mut b = Client::join(server.addr).await;
    b.send("/quit").await;
    b.expect_closed().await;
    a.send("/list").await; // a round trip: b's task has ended once a's reply arrives
    a.expect("list", |l| l.contains(" online: ")).await;
    let mut d = Client::join(server.addr).await;
    let mine = names_online(&mut a)
        .await
        .into_iter()
        .find(|n| *n != d.nick)
        .unwrap();
    let reply = ask(&mut d, &format!("/nick {mine}")).await;
    assert!(
        reply.starts_with("error: "),
        "d took {mine}, held by a: {reply}"
    );
}

#[tokio::test]
async fn a_line_of_exactly_max_line_bytes_passes_however_tcp_splits_its_crlf() {
    let server = Server::start(&["--max-line", "16"]);
    let mut a = Client::join(server.addr).await;
    let mut b = Client::join(server.addr).await;
    let line = "x".repeat(16);
    // `\r` and `\n` in two segments (Nagle is off, and the pause lets the server read the
    // first alone). Before the fix, 16 bytes + `\r` with no `\n` yet was "too long".
    a.wr.as_ref().set_nodelay(true).unwrap();
    a.wr.write_all(format!("{line}\r").as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.wr.write_all(b"\n").await.unwrap();
    a.wr.write_all(format!("{line}\r\n").as_bytes())
        .await
        .unwrap();
    let want = format!("{}: {line}", a.nick);
    b.expect("the split line", |l| l == want).await;
    b.expect("the whole line", |l| l == want).await;
    // One byte more is too long, however it arrives.
    a.send(&"y".repeat(17)).await;
    let seen = a.expect_closed().await;
    assert!(
        seen.iter().any(|l| l == "error: line too long, closing"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn bidi_controls_are_neutralised_like_escape_sequences() {
    let server = Server::start(&[]);
    let mut a = Client::join(server.addr).await;
    let mut b = Client::join(server.addr).await;
    // U+202E turns `annexe.txt` into what reads as `annexetxt.exe` ("Trojan Source").
    a.send("see \u{202E}exe.txt\u{202C} \u{2066}x\u{2069} \u{200E}\u{200F}\u{061C} ok")
        .await;
    let want = format!("{}: see ?exe.txt? ?x? ??? ok", a.nick);
    b.expect("the neutralised line", |l| l == want).await;
}

#[tokio::test]
async fn sigterm_says_goodbye_to_every_client_like_ctrl_c() {
    let mut server = Server::start(&[]);
    let mut a = Client::join(server.addr).await;
    let mut b = Client::join(server.addr).await;
    a.send("before shutdown").await;
    b.expect("a's line", |l| l.ends_with(": before shutdown"))
        .await;
    let (status, output) = server.signal(libc::SIGTERM);
    assert!(status.success(), "{status:?}");
    for c in [&mut a, &mut b] {
        let seen = c.expect_closed().await;
        assert_eq!(
            seen.last().map(String::as_str),
            Some("* server shutting down, goodbye"),
            "{seen:?}"
        );
    }
    assert!(
        output.iter().any(|l| l.starts_with("stopped after")),
        "{output:?}"
    );
}

#[test]
fn chat_load_against_the_server_counts_every_delivery() {
    let server = Server::start(&[]);
    let out = Command::new(env!("CARGO_BIN_EXE_chat-load"))
        .args([
            "--addr",
            &server.addr.to_string(),
            "--clients",
            "40",
            "--messages",
            "3",
            "--source-ips",
            "2",
            "--threads",
            "2",
        ])
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["connect_errors"], 0, "{v}");
    assert_eq!(v["deliveries_expected"], 3 * 39, "{v}");
    assert_eq!(v["deliveries_received"], 3 * 39, "{v}");
}

#[test]
fn chat_load_without_address_runs_its_own_server() {
    let out = Command::new(env!("CARGO_BIN_EXE_chat-load"))
        .args(["--clients", "20", "--messages", "2", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["deliveries_received"], 2 * 19, "{v}");
    // One p99 per broadcast, and the CPU of both sides (it knows its own server's pid).
    let p99s = v["per_broadcast_p99_ms"].as_array().unwrap();
    assert_eq!(p99s.len(), 2, "{v}");
    assert!(p99s.iter().all(|p| p.as_f64().unwrap() > 0.0), "{v}");
    let worst = v["broadcast_p99_worst_ms"].as_f64().unwrap();
    assert!(
        v["broadcast_p99_median_ms"].as_f64().unwrap() <= worst,
        "{v}"
    );
    for side in ["server_cpu_ms_per_broadcast", "load_cpu_ms_per_broadcast"] {
        for part in ["user", "system"] {
            let ms = v[side][part].as_f64().unwrap_or(-1.0);
            assert!(ms >= 0.0, "{side}.{part} missing: {v}");
        }
    }
}

#[test]
fn chat_load_drives_websocket_and_tcp_clients_and_reports_each_protocol() {
    let out = Command::new(env!("CARGO_BIN_EXE_chat-load"))
        .args(["--clients", "15", "--ws", "15", "--messages", "2", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // One TCP client sends; 14 TCP + 15 WebSocket clients receive each broadcast.
    assert_eq!(v["deliveries_expected"], 2 * 29, "{v}");
    assert_eq!(v["deliveries_received"], 2 * 29, "{v}");
    assert_eq!(v["per_protocol"]["tcp"]["deliveries"], 2 * 14, "{v}");
    assert_eq!(v["per_protocol"]["ws"]["deliveries"], 2 * 15, "{v}");
    for proto in ["tcp", "ws"] {
        let p = &v["per_protocol"][proto];
        assert_eq!(p["connect_errors"], 0, "{v}");
        assert!(p["kib_per_conn"].is_number(), "{proto}: {v}");
        assert_eq!(
            p["per_broadcast_p99_ms"].as_array().unwrap().len(),
            2,
            "{v}"
        );
    }
    // WebSocket clients alone: the first of them sends.
    let out = Command::new(env!("CARGO_BIN_EXE_chat-load"))
        .args(["--ws", "10", "--messages", "2", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["deliveries_received"], 2 * 9, "{v}");
    assert!(v["per_protocol"]["tcp"].is_null(), "{v}");
}

/// `chat-load --python`: the same load on chat-server, then on the course's asyncio server
/// (python/chat_server.py, TCP and WebSocket clients in one room): every broadcast reaches
/// every client on both, and both reports are in the JSON.
#[test]
fn chat_load_python_runs_the_same_load_on_the_asyncio_server() {
    let imports: &[&str] = &["websockets"];
    if let Err(e) = shared::python::Python::find(imports) {
        println!("SKIPPED: {e}");
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_chat-load"))
        .args(["--clients", "12", "--ws", "8", "--messages", "2"])
        .args(["--python", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let py = &v["python"];
    // One TCP client sends; 11 TCP + 8 WebSocket clients receive each broadcast, on both.
    for report in [&v, py] {
        assert_eq!(report["deliveries_expected"], 2 * 19, "{v}");
        assert_eq!(report["deliveries_received"], 2 * 19, "{v}");
        assert_eq!(report["per_protocol"]["tcp"]["deliveries"], 2 * 11, "{v}");
        assert_eq!(report["per_protocol"]["ws"]["deliveries"], 2 * 8, "{v}");
        assert_eq!(report["connect_errors"], 0, "{v}");
        assert!(report["server_rss_kib_per_conn"].is_number(), "{v}");
    }
    assert!(
        py["python"].as_str().unwrap().starts_with("Python 3"),
        "{v}"
    );
    assert_ne!(py["addr"], v["addr"], "two servers: {v}");
    // --python starts both servers itself.
    let out = Command::new(env!("CARGO_BIN_EXE_chat-load"))
        .args(["--python", "--addr", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn chat_client_scripted_session_talks_to_the_server() {
    let server = Server::start(&[]);
    let watcher = std::net::TcpStream::connect(server.addr).unwrap();
    watcher.set_read_timeout(Some(GUARD)).unwrap();
    let mut rd = BufReader::new(watcher.try_clone().unwrap());
    let mut line = String::new();
    rd.read_line(&mut line).unwrap();
    assert!(line.starts_with("* welcome"), "{line}");
    let out = Command::new(env!("CARGO_BIN_EXE_chat-client"))
        .args([
            "--addr",
            &server.addr.to_string(),
            "--say",
            "/nick tester",
            "--say",
            "hello there",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("* you are now tester"), "{stdout}");
    loop {
        line.clear();
        assert!(
            rd.read_line(&mut line).unwrap() > 0,
            "watcher closed before the line arrived"
        );
        if line.trim_end() == "tester: hello there" {
            break;
        }
    }
    drop(watcher);
}

#[test]
fn every_binary_answers_help() {
    for exe in [
        env!("CARGO_BIN_EXE_chat-server"),
        env!("CARGO_BIN_EXE_chat-client"),
        env!("CARGO_BIN_EXE_chat-load"),
        env!("CARGO_BIN_EXE_async-basics"),
        env!("CARGO_BIN_EXE_event-loop"),
        env!("CARGO_BIN_EXE_sensor-stream"),
        env!("CARGO_BIN_EXE_async-downloader"),
    ] {
        let out = Command::new(exe).arg("--help").output().unwrap();
        assert!(out.status.success(), "{exe} --help failed");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{exe}"
        );
    }
}
