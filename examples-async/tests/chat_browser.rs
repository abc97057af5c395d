//! The chat page in a real browser: two headless Chromium pages and one TCP client in one room,
//! driven through chromedriver (WebDriver) with fantoccini. The test reads each page's DOM, saves
//! a screenshot, restarts the server and watches the pages reconnect on their own.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them the
//! test prints `SKIPPED` and why, and passes: the WebSocket side is still covered by chat_ws.rs.
//! `CHAT_SCREENSHOT=path.png` also copies the screenshot there (the README's picture).

#![allow(clippy::unwrap_used)]

mod chat_support;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chat_support::{Client, GUARD, Server};
use fantoccini::key::Key;
use fantoccini::{ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

/// The first `name` on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Written straight to stderr, past the test harness's output capture: a skip must be seen.
fn say(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start(exe: &PathBuf) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(exe)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + GUARD;
        while reqwest::get(format!("{url}/status")).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver never answered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Driver { child, url }
    }

    /// A new browser: its own Chromium, its own fresh profile.
    async fn page(&self, chromium: &PathBuf, profile: &tempfile::TempDir) -> fantoccini::Client {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            // Without these, Chromium's own background connections are refused here and it
            // stalls; a test browser has no business calling home anyway.
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            // About a phone's viewport: the page must be readable there.
            "--window-size=420,760",
        ]
        .map(String::from)
        .into_iter()
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let caps = serde_json::json!({
            "goog:chromeOptions": { "binary": chromium, "args": args }
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `script` (a JS expression) in `page` until it is true.
async fn wait_for(page: &fantoccini::Client, what: &str, script: &str) {
    let deadline = Instant::now() + GUARD;
    loop {
        let v = page
            .execute(&format!("return Boolean({script});"), vec![])
            .await
            .unwrap();
        if v == serde_json::Value::Bool(true) {
            return;
        }
        if Instant::now() > deadline {
            let log = page
                .execute("return document.body.innerText;", vec![])
                .await
                .unwrap();
            panic!("the page never showed {what}; it shows: {log}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The lines in the page's message list.
async fn log_lines(page: &fantoccini::Client) -> Vec<String> {
    let v = page
        .execute(
            "return [...document.querySelectorAll('#log li')].map(li => li.textContent);",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(v).unwrap()
}

async fn text_of(page: &fantoccini::Client, id: &str) -> String {
    page.find(Locator::Id(id))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn type_line(page: &fantoccini::Client, line: &str) {
    let input = page.find(Locator::Id("text")).await.unwrap();
    input
        .send_keys(&format!("{line}{}", char::from(Key::Enter)))
        .await
        .unwrap();
}

/// Opens the page and waits until it is connected and knows its nickname.
async fn open(page: &fantoccini::Client, http: SocketAddr) {
    page.goto(&format!("http://{http}/")).await.unwrap();
    wait_for(
        page,
        "connected",
        "document.getElementById('status').textContent === 'connected' && document.getElementById('nick').textContent.startsWith('guest')",
    )
    .await;
}

fn js_log_has(line: &str) -> String {
    format!(
        "[...document.querySelectorAll('#log li')].some(li => li.textContent === {})",
        serde_json::Value::String(line.to_string())
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pages_and_a_tcp_client_chat_in_headless_chromium() {
    let (Some(chromium), Some(chromedriver)) = (which("chromium"), which("chromedriver")) else {
        say(
            "SKIPPED two_pages_and_a_tcp_client_chat_in_headless_chromium: `chromium` and \
             `chromedriver` are not both on PATH (Debian: apt-get install chromium chromium-driver)",
        );
        return;
    };
    let server = Server::start(&[]);
    let driver = Driver::start(&chromedriver).await;
    let (profile_a, profile_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = driver.page(&chromium, &profile_a).await;
    let bob = driver.page(&chromium, &profile_b).await;
    open(&alice, server.http).await;
    open(&bob, server.http).await;
    let mut nc = Client::join(server.addr).await;

    // Names: typed in the page, shown in its header.
    type_line(&alice, "/nick alice").await;
    wait_for(
        &alice,
        "its new name",
        "document.getElementById('nick').textContent === 'alice'",
    )
    .await;
    type_line(&bob, "/nick bob").await;
    wait_for(
        &bob,
        "its new name",
        "document.getElementById('nick').textContent === 'bob'",
    )
    .await;
    nc.send("/nick carol").await;
    nc.expect("rename", |l| l == "* you are now carol").await;

    // A page to the other page and to nc.
    type_line(&alice, "hello from the browser").await;
    wait_for(
        &bob,
        "alice's line",
        &js_log_has("alice: hello from the browser"),
    )
    .await;
    nc.expect("alice's line", |l| l == "alice: hello from the browser")
        .await;
    // nc to both pages.
    nc.send("hi from nc, the terminal").await;
    for page in [&alice, &bob] {
        wait_for(
            page,
            "nc's line",
            &js_log_has("carol: hi from nc, the terminal"),
        )
        .await;
    }
    // The other page back; its own line shows on its own page too (the server does not echo).
    type_line(&bob, "hi alice, hi carol").await;
    wait_for(&alice, "bob's line", &js_log_has("bob: hi alice, hi carol")).await;
    wait_for(&bob, "its own line", &js_log_has("bob: hi alice, hi carol")).await;
    nc.expect("bob's line", |l| l == "bob: hi alice, hi carol")
        .await;
    // Join notices and the online count, from the server's notices.
    wait_for(
        &alice,
        "3 online",
        "document.getElementById('online').textContent === '3'",
    )
    .await;
    let lines = log_lines(&alice).await;
    assert!(lines.iter().any(|l| l.contains("is now bob")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("joined")), "{lines:?}");
    assert_eq!(text_of(&alice, "nick").await, "alice");

    // A screenshot for the README (and for whoever debugs this test).
    let png = alice.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("chat-page.png");
    std::fs::write(&shot, &png).unwrap();
    say(&format!("screenshot: {}", shot.display()));
    if let Some(copy) = std::env::var_os("CHAT_SCREENSHOT") {
        std::fs::write(&copy, &png).unwrap();
    }

    // The server restarts on the same port: the pages say so, come back with backoff, and
    // take their names back.
    let http = server.http;
    drop(server); // killed: an abrupt end (1006), the harshest case for the pages
    wait_for(
        &alice,
        "the disconnection",
        "document.getElementById('status').textContent.startsWith('disconnected')",
    )
    .await;
    let restarted = Server::start(&["--http-addr", &http.to_string()]);
    for (page, name) in [(&alice, "alice"), (&bob, "bob")] {
        wait_for(
            page,
            "the reconnection under its old name",
            &format!("document.getElementById('status').textContent === 'connected' && document.getElementById('nick').textContent === '{name}'"),
        )
        .await;
    }
    let mut nc = Client::join(restarted.addr).await;
    type_line(&alice, "back again").await;
    wait_for(
        &bob,
        "alice's line after the restart",
        &js_log_has("alice: back again"),
    )
    .await;
    nc.expect("alice's line after the restart", |l| {
        l == "alice: back again"
    })
    .await;

    alice.close().await.unwrap();
    bob.close().await.unwrap();
}
