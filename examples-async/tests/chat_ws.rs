//! `chat-server`'s web side, end to end: WebSocket clients (tokio-tungstenite) and TCP line
//! clients in one room, every limit applied to both, and the bad input a hostile browser (or
//! script) sends. Each test starts the real binary; nothing asserts on elapsed time.

#![allow(clippy::unwrap_used)]

mod chat_support;

use std::net::SocketAddr;
use std::time::Duration;

use chat_support::{Client, GUARD, Server};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};
use tokio_tungstenite::tungstenite::{self, Message};

type Ws = WebSocketStream<TcpStream>;

/// A small read buffer: the burst test holds 10,000 of these.
fn client_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(1024)
}

async fn ws_connect_stream(stream: TcpStream, http: SocketAddr) -> Ws {
    let url = format!("ws://{http}/ws");
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(client_config()))
        .await
        .unwrap();
    ws
}

/// How a WebSocket session ended, and the text messages before that.
#[derive(Debug)]
struct Ended {
    texts: Vec<String>,
    close: Option<CloseFrame>,
}

struct WsClient {
    ws: Ws,
    nick: String,
}

impl WsClient {
    async fn join(http: SocketAddr) -> WsClient {
        let stream = TcpStream::connect(http).await.unwrap();
        WsClient::welcome(ws_connect_stream(stream, http).await).await
    }

    async fn welcome(ws: Ws) -> WsClient {
        let mut client = WsClient {
            ws,
            nick: String::new(),
        };
        let welcome = client.next_text().await.expect("welcome");
        assert!(welcome.starts_with("* welcome "), "{welcome:?}");
        client.nick = welcome["* welcome ".len()..]
            .split('!')
            .next()
            .unwrap()
            .to_string();
        client
    }

    async fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// The next message of any kind; `None` at the end of the stream (or on an error).
    async fn next(&mut self) -> Option<Message> {
        match tokio::time::timeout(GUARD, self.ws.next()).await {
            Ok(Some(Ok(m))) => Some(m),
            Ok(_) => None,
            Err(_) => panic!("hang guard: nothing from the server"),
        }
    }

    /// The next text message; `None` once the server closes.
    async fn next_text(&mut self) -> Option<String> {
        loop {
            match self.next().await? {
                Message::Text(t) => return Some(t.to_string()),
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    async fn expect(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let mut skipped = Vec::new();
        loop {
            match self.next_text().await {
                Some(line) if pred(&line) => return line,
                Some(line) => skipped.push(line),
                None => panic!("closed while waiting for {what}; got {skipped:?}"),
            }
        }
    }

    /// Reads until the close frame (or the end of the stream).
    async fn expect_end(&mut self) -> Ended {
        let mut texts = Vec::new();
        loop {
            match self.next().await {
                Some(Message::Text(t)) => texts.push(t.to_string()),
                Some(Message::Close(close)) => return Ended { texts, close },
                Some(_) => {}
                None => return Ended { texts, close: None },
            }
        }
    }
}

fn close_code(ended: &Ended) -> Option<CloseCode> {
    ended.close.as_ref().map(|c| c.code)
}

#[tokio::test]
async fn websocket_and_tcp_clients_share_one_room() {
    let server = Server::start(&[]);
    let mut nc = Client::join(server.addr).await;
    let mut browser = WsClient::join(server.http).await;
    // The online count the page shows comes after each batch of join/leave notices.
    browser.expect("online count", |l| l == "* 2 online").await;
    browser.send("/nick webby").await;
    browser
        .expect("rename", |l| l == "* you are now webby")
        .await;
    nc.send("hello from nc").await;
    let want = format!("{}: hello from nc", nc.nick);
    browser.expect("nc's line", |l| l == want).await;
    browser.send("hello from the browser").await;
    nc.expect("the browser's line", |l| {
        l == "webby: hello from the browser"
    })
    .await;
    browser.send("/list").await;
    let list = browser
        .expect("list", |l| l.starts_with("* 2 online: "))
        .await;
    assert!(list.contains("webby") && list.contains(&nc.nick), "{list}");
}

#[tokio::test]
async fn an_oversized_message_closes_that_client_only() {
    let server = Server::start(&["--max-line", "64"]);
    let mut big = WsClient::join(server.http).await;
    let mut other = WsClient::join(server.http).await;
    let mut nc = Client::join(server.addr).await;
    // Exactly the limit passes.
    big.send(&"x".repeat(64)).await;
    let want = format!("{}: {}", big.nick, "x".repeat(64));
    nc.expect("a line of exactly --max-line", |l| l == want)
        .await;
    big.send(&"y".repeat(65)).await;
    let ended = big.expect_end().await;
    assert_eq!(close_code(&ended), Some(CloseCode::Size), "{ended:?}");
    assert!(
        ended
            .texts
            .iter()
            .any(|t| t == "error: line too long, closing"),
        "{ended:?}"
    );
    let nick = big.nick.clone();
    nc.expect("leave notice", |l| {
        l.contains(&nick) && l.contains("line too long")
    })
    .await;
    nc.send("still here").await;
    let want = format!("{}: still here", nc.nick);
    other
        .expect("a line after the oversized one", |l| l == want)
        .await;
}

#[tokio::test]
async fn binary_frames_are_refused_politely_and_the_client_stays() {
    let server = Server::start(&[]);
    let mut browser = WsClient::join(server.http).await;
    let mut nc = Client::join(server.addr).await;
    browser
        .ws
        .send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    browser
        .expect("a refusal", |l| {
            l == "error: binary messages are not supported; send text"
        })
        .await;
    browser.send("text is fine").await;
    let want = format!("{}: text is fine", browser.nick);
    nc.expect("the text after the binary frame", |l| l == want)
        .await;
}

#[tokio::test]
async fn a_text_frame_that_is_not_utf8_closes_with_1007() {
    let server = Server::start(&[]);
    let mut bad = WsClient::join(server.http).await;
    let mut nc = Client::join(server.addr).await;
    let frame = Frame::message(&b"bad \xff\xfe bytes"[..], OpCode::Data(Data::Text), true);
    bad.ws.send(Message::Frame(frame)).await.unwrap();
    let ended = bad.expect_end().await;
    assert_eq!(close_code(&ended), Some(CloseCode::Invalid), "{ended:?}");
    let nick = bad.nick.clone();
    nc.expect("leave notice", |l| {
        l.contains(&nick) && l.contains("invalid UTF-8")
    })
    .await;
}

#[tokio::test]
async fn fragmented_messages_are_one_line_and_count_whole_against_the_limit() {
    let server = Server::start(&["--max-line", "16"]);
    let mut frag = WsClient::join(server.http).await;
    let mut nc = Client::join(server.addr).await;
    let parts: [(&[u8], OpCode, bool); 3] = [
        (b"hel", OpCode::Data(Data::Text), false),
        (b"lo ", OpCode::Data(Data::Continue), false),
        (b"world", OpCode::Data(Data::Continue), true),
    ];
    for (data, op, fin) in parts {
        frag.ws
            .send(Message::Frame(Frame::message(data, op, fin)))
            .await
            .unwrap();
    }
    let want = format!("{}: hello world", frag.nick);
    nc.expect("the reassembled line", |l| l == want).await;
    // Three fragments of 8 bytes: each is small, the message (24 bytes) is over the limit.
    for (i, fin) in [false, false, true].into_iter().enumerate() {
        let op = if i == 0 { Data::Text } else { Data::Continue };
        let frame = Frame::message(&b"abcdefgh"[..], OpCode::Data(op), fin);
        if frag.ws.send(Message::Frame(frame)).await.is_err() {
            break; // the server may already have closed
        }
    }
    let ended = frag.expect_end().await;
    assert_eq!(close_code(&ended), Some(CloseCode::Size), "{ended:?}");
}

#[tokio::test]
async fn a_ping_flood_neither_stalls_the_room_nor_grows_without_bound() {
    let server = Server::start(&[]);
    let mut flooder = WsClient::join(server.http).await;
    let mut a = Client::join(server.addr).await;
    let mut b = WsClient::join(server.http).await;
    // 20,000 pings, never reading the pongs: tungstenite keeps only the latest pong to send,
    // so the server's memory for this client stays bounded whatever the rate.
    for i in 0u32..20_000 {
        let sent = flooder
            .ws
            .feed(Message::Ping(i.to_be_bytes().to_vec().into()))
            .await;
        if sent.is_err() {
            break;
        }
    }
    let _ = flooder.ws.flush().await;
    a.send("during the flood").await;
    let want = format!("{}: during the flood", a.nick);
    b.expect("a's line", |l| l == want).await;
    // The flooder gets a pong (or, at worst, is closed): it is answered, not left hanging (the
    // hang guard in `next` fails the test otherwise).
    while !matches!(
        flooder.next().await,
        Some(Message::Pong(_) | Message::Close(_)) | None
    ) {}
    // And the server still takes newcomers.
    let mut c = WsClient::join(server.http).await;
    a.send("after the flood").await;
    c.expect("a line after the flood", |l| {
        l.ends_with(": after the flood")
    })
    .await;
}

#[tokio::test]
async fn a_websocket_client_that_never_reads_is_dropped_while_others_keep_receiving() {
    let server = Server::start(&["--write-timeout", "1s"]);
    // A tiny receive buffer, so the stuck client's side fills quickly.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.http).await.unwrap();
    let mut stuck = WsClient::welcome(ws_connect_stream(stream, server.http).await).await;
    stuck.send("/nick stuck").await;
    stuck.expect("rename", |l| l == "* you are now stuck").await;
    let mut sender = Client::join(server.addr).await;
    let mut healthy = WsClient::join(server.http).await;

    // Flood in lockstep (a batch, then wait until `healthy` has all of it), so the healthy
    // reader is never more than one batch behind, whatever the machine's speed.
    let payload = "x".repeat(1000);
    let prefix = format!("{}: ", sender.nick);
    let (mut sent, mut received, mut dropped) = (0u64, 0u64, false);
    for _batch in 0..400 {
        for i in 0..50 {
            sender.send(&format!("{sent}-{i} {payload}")).await;
        }
        sent += 50;
        while received < sent {
            let line = healthy
                .next_text()
                .await
                .expect("the healthy client was disconnected");
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
    // The stuck client now finds what was buffered, then the end.
    let drained = tokio::time::timeout(GUARD, async {
        while let Some(Ok(_)) = stuck.ws.next().await {}
    })
    .await;
    assert!(drained.is_ok(), "the stuck client was never disconnected");
}

#[tokio::test]
async fn shutdown_closes_browsers_with_1001_and_says_goodbye_to_tcp() {
    let mut server = Server::start(&[]);
    let mut browser = WsClient::join(server.http).await;
    let mut nc = Client::join(server.addr).await;
    browser.send("before shutdown").await;
    nc.expect("the browser's line", |l| l.ends_with(": before shutdown"))
        .await;
    let (status, _) = server.signal(libc::SIGTERM);
    assert!(status.success(), "{status:?}");
    let ended = browser.expect_end().await;
    assert_eq!(close_code(&ended), Some(CloseCode::Away), "{ended:?}");
    assert_eq!(
        ended.texts.last().map(String::as_str),
        Some("* server shutting down, goodbye"),
        "{ended:?}"
    );
    let seen = nc.expect_closed().await;
    assert_eq!(
        seen.last().map(String::as_str),
        Some("* server shutting down, goodbye")
    );
}

#[tokio::test]
async fn an_abrupt_close_without_a_close_frame_is_a_leave() {
    let server = Server::start(&[]);
    let mut watcher = Client::join(server.addr).await;
    let gone = WsClient::join(server.http).await;
    let nick = gone.nick.clone();
    // A reset, no close frame: linger 0 makes close(2) send RST.
    let stream = gone.ws.into_inner();
    stream.set_zero_linger().unwrap();
    drop(stream);
    watcher
        .expect("leave notice", |l| l.contains(&nick) && l.contains("left"))
        .await;
    let mut other = WsClient::join(server.http).await;
    watcher.send("still serving").await;
    other
        .expect("a line after the reset", |l| l.ends_with(": still serving"))
        .await;
}

#[tokio::test]
async fn websocket_clients_obey_max_clients_idle_timeout_and_nick_rules() {
    let server = Server::start(&["--max-clients", "2"]);
    let mut nc = Client::join(server.addr).await;
    let mut browser = WsClient::join(server.http).await;
    // Full: a third client, on either protocol, is told so.
    let stream = TcpStream::connect(server.http).await.unwrap();
    let mut refused = WsClient {
        ws: ws_connect_stream(stream, server.http).await,
        nick: String::new(),
    };
    let ended = refused.expect_end().await;
    assert_eq!(close_code(&ended), Some(CloseCode::Again), "{ended:?}");
    assert_eq!(
        ended.texts,
        vec!["error: server full (2 clients), try again later"]
    );
    // Nicknames: one namespace for both protocols, case-insensitive, guestN reserved.
    nc.send("/nick alice").await;
    nc.expect("rename", |l| l == "* you are now alice").await;
    browser.send("/nick ALICE").await;
    browser
        .expect("taken", |l| l == "error: nick ALICE is taken")
        .await;
    browser.send("/nick guest99").await;
    browser
        .expect("reserved", |l| l == "error: guest99 is reserved for guests")
        .await;
    // Control and bidi characters are neutralised for browsers' lines too.
    browser.send("a\u{1b}[2J\u{202E}b").await;
    let want = format!("{}: a?[2J?b", browser.nick);
    nc.expect("sanitised line", |l| l == want).await;

    let idle_server = Server::start(&["--idle-timeout", "1s"]);
    let mut idle = WsClient::join(idle_server.http).await;
    let ended = idle.expect_end().await;
    assert_eq!(close_code(&ended), Some(CloseCode::Normal), "{ended:?}");
    assert_eq!(
        ended.texts.last().map(String::as_str),
        Some("* idle timeout, bye")
    );
}

#[tokio::test]
async fn the_page_is_served_and_cross_origin_sockets_are_refused() {
    let server = Server::start(&[]);
    let base = format!("http://{}", server.http);
    let page = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers()["content-type"].to_str().unwrap(),
        "text/html; charset=utf-8"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("<title>chat</title>") && html.contains("new WebSocket("));
    assert_eq!(
        reqwest::get(format!("{base}/nope")).await.unwrap().status(),
        404
    );
    let post = reqwest::Client::new()
        .post(format!("{base}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    // A page on another site must not open a socket in its visitor's name.
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(format!(
        "ws://{}/ws",
        server.http
    ))
    .unwrap();
    request
        .headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    let stream = TcpStream::connect(server.http).await.unwrap();
    match tokio_tungstenite::client_async(request, stream).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("cross-origin upgrade not refused: {:?}", other.map(|_| ())),
    }
    // The same origin is fine.
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(format!(
        "ws://{}/ws",
        server.http
    ))
    .unwrap();
    let origin = format!("http://{}", server.http);
    request
        .headers_mut()
        .insert("origin", origin.parse().unwrap());
    let stream = TcpStream::connect(server.http).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    WsClient::welcome(ws).await;
}

/// How many WebSocket clients connect at once in the burst test (`CHAT_BURST` to change it).
fn burst_size() -> usize {
    std::env::var("CHAT_BURST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_websocket_connects_in_a_burst_are_all_served() {
    let n = burst_size();
    let limit = shared::monitor::raise_nofile_limit().unwrap();
    // One descriptor per client here (the server, another process, has its own limit).
    assert!(
        n as u64 + 200 <= limit,
        "{n} connects need {} open files, the limit is {limit}: raise it (ulimit -n) or set CHAT_BURST",
        n + 200
    );
    let server = Server::start(&[]);
    let mut watcher = Client::join(server.addr).await;
    let http = server.http;
    let clients: Vec<Ws> = futures::stream::iter(0..n)
        .map(|_| async move {
            let stream = TcpStream::connect(http).await.unwrap();
            let mut ws = ws_connect_stream(stream, http).await;
            // Welcomed: the server has seated this client.
            loop {
                match tokio::time::timeout(GUARD, ws.next()).await {
                    Ok(Some(Ok(Message::Text(t)))) if t.starts_with("* welcome ") => break,
                    Ok(Some(Ok(_))) => {}
                    other => panic!("no welcome: {other:?}"),
                }
            }
            ws
        })
        .buffer_unordered(1000)
        .collect()
        .await;
    assert_eq!(clients.len(), n);
    // Joins are coalesced: a few notice lines, not one per client (let alone one per pair).
    let mut notices = 0;
    let mut joined = 0usize;
    while joined < n {
        let line = watcher.next_line().await.expect("watcher closed");
        if let Some(rest) = line.strip_prefix("* ") {
            if let Some((count, _)) = rest.split_once(" users joined") {
                joined += count.parse::<usize>().unwrap();
                notices += 1;
            } else if rest.ends_with(" joined") {
                joined += 1;
                notices += 1;
            }
        }
    }
    assert!(notices < n / 10, "{notices} join notices for {n} clients");
    watcher.send("/list").await;
    let want = format!("* {} online: ", n + 1);
    watcher
        .expect("everyone online", |l| l.starts_with(&want))
        .await;
    drop(clients);
    tokio::time::sleep(Duration::from_millis(10)).await;
}
