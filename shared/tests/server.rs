//! The test server seen by a real HTTP client (reqwest): bodies, latency, each fault, seeded
//! fault rates, counters, 1,000+ concurrent requests, run-time fault changes and shutdown.
//!
//! No assertion depends on speed: latencies are checked as lower bounds only, and timeouts
//! are hang guards (or the client timeout a hang fault is meant to trigger).
#![cfg(feature = "http")]
// Test helpers panic on failure like the tests themselves (clippy.toml only exempts `#[test]` fns).
#![allow(clippy::unwrap_used)]

use std::error::Error as _;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use futures::StreamExt;
use shared::server::{
    Faults, ServerConfig, StatsSnapshot, TestServer, check_body, expected_body, file_name_of,
    url_list,
};

/// Generous bound on anything that should be quick: only fails if something hangs.
const GUARD: Duration = Duration::from_secs(20);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(GUARD)
        .build()
        .expect("client")
}

/// Polls `cond` on the server's counters until it holds (or panics after `GUARD`).
async fn wait_for(server: &TestServer, what: &str, cond: impl Fn(&StatsSnapshot) -> bool) {
    let start = Instant::now();
    loop {
        let stats = server.stats();
        if cond(&stats) {
            return;
        }
        assert!(
            start.elapsed() < GUARD,
            "timed out waiting for {what}: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// True if an I/O error of `kind` is somewhere in the error's source chain.
fn has_io_kind(err: &reqwest::Error, kind: std::io::ErrorKind) -> bool {
    let mut source = err.source();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == kind
        {
            return true;
        }
        source = e.source();
    }
    false
}

#[tokio::test]
async fn file_bodies_have_the_promised_size_and_content() {
    let server = TestServer::start(ServerConfig::default().file_size(100_000))
        .await
        .unwrap();
    let client = client();

    let response = client.get(server.file_url(7)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.content_length(), Some(100_000));
    let body = response.bytes().await.unwrap();
    assert_eq!(body.len(), 100_000);
    assert!(check_body("000007.bin", &body));
    assert_eq!(body, expected_body("000007.bin", 100_000));

    // ?size= overrides the configured size, across several chunks and block wrap-arounds.
    let size = 2_500_001;
    let body = client
        .get(server.url(&format!("/files/big.bin?size={size}")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body, expected_body("big.bin", size));

    // Empty files, and the URL list helper pointing at real files.
    let urls = url_list(&server.base_url(), 3, 0);
    for url in &urls {
        let body = client.get(url).send().await.unwrap().bytes().await.unwrap();
        assert!(body.is_empty(), "{url}");
        assert!(file_name_of(url).is_some());
    }

    // Different names, different content.
    let a = client
        .get(server.file_url(1))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(!check_body("000002.bin", &a));
}

#[tokio::test]
async fn bad_requests_get_400_and_unknown_paths_404() {
    let server = TestServer::start(ServerConfig::default().max_body(1000))
        .await
        .unwrap();
    let client = client();
    for (path, status) in [
        ("/files/a.bin?size=1001", 400),
        ("/files/a.bin?size=-1", 400),
        ("/files/a.bin?fail=sometimes", 400),
        ("/status/abc", 400),
        ("/status/99", 400),
        ("/status/404", 404),
        ("/status/503", 503),
        ("/status/204", 204),
        ("/nope", 404),
        ("/health", 200),
        ("/", 200),
    ] {
        let response = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), status, "{path}");
    }
}

#[tokio::test]
async fn latency_is_honoured_configured_and_per_request() {
    let server = TestServer::start(ServerConfig::default().latency(Duration::from_millis(200)))
        .await
        .unwrap();
    let client = client();

    let start = Instant::now();
    let response = client.get(server.file_url(0)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );

    let start = Instant::now();
    let url = server.url("/files/x.bin?latency_ms=300&jitter_ms=50");
    assert_eq!(client.get(url).send().await.unwrap().status(), 200);
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn fault_500_is_a_status_not_a_transport_error() {
    let server = TestServer::start(ServerConfig::default()).await.unwrap();
    let response = client()
        .get(server.url("/files/a.bin?fail=500"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    // reqwest does not turn a 500 into an error by itself: clients must check.
    assert!(response.error_for_status().is_err());
    assert_eq!(server.stats().faults_500, 1);
    assert_eq!(server.stats().status_5xx, 1);
}

#[tokio::test]
async fn hang_is_only_ended_by_a_client_timeout() {
    let server = TestServer::start(ServerConfig::default()).await.unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = client
        .get(server.url("/files/a.bin?fail=hang"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(server.stats().faults_hang, 1);
    // When the client gives up (closes its connection), the server releases the request.
    wait_for(&server, "the abandoned request to be released", |s| {
        s.in_flight == 0 && s.connections_open == 0
    })
    .await;
    // The server does not get stuck: the next request is served.
    let ok = client.get(server.url("/health")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn truncate_is_a_body_error_after_part_of_the_body() {
    let size = 1_000_000;
    let server = TestServer::start(ServerConfig::default().file_size(size))
        .await
        .unwrap();
    let response = client()
        .get(server.url("/files/t.bin?fail=truncate"))
        .send()
        .await
        .unwrap();
    // The head looks perfect...
    assert_eq!(response.status(), 200);
    assert_eq!(response.content_length(), Some(size as u64));
    // ...the body is cut short, and the client sees an error rather than a short "ok" file.
    let mut received = Vec::new();
    let mut stream = response.bytes_stream();
    let mut error = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => received.extend_from_slice(&bytes),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let error = error.expect("a truncated body must end with an error");
    assert!(error.is_body() || error.is_decode(), "{error:?}");
    assert!(received.len() < size, "received {}", received.len());
    assert!(
        check_body("t.bin", &received),
        "what did arrive is the right prefix"
    );
    assert_eq!(server.stats().faults_truncate, 1);

    // Even an empty file is visibly truncated.
    let response = client()
        .get(server.url("/files/e.bin?size=0&fail=truncate"))
        .send()
        .await
        .unwrap();
    assert!(response.bytes().await.is_err());
}

#[tokio::test]
async fn reset_is_a_connection_error_before_any_response() {
    let server = TestServer::start(ServerConfig::default()).await.unwrap();
    let err = client()
        .get(server.url("/files/r.bin?fail=reset"))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    assert!(err.status().is_none(), "no response at all: {err:?}");
    assert!(
        has_io_kind(&err, std::io::ErrorKind::ConnectionReset),
        "expected ECONNRESET in the error chain: {err:?}"
    );
    assert_eq!(server.stats().faults_reset, 1);
    wait_for(&server, "the reset connection to close", |s| {
        s.connections_open == 0
    })
    .await;

    // The same thing with a raw socket: zero response bytes, then ECONNRESET.
    let addr = server.addr();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut socket = std::net::TcpStream::connect(addr).unwrap();
        socket.set_read_timeout(Some(GUARD)).unwrap();
        socket
            .write_all(b"GET /files/r.bin?fail=reset HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut buf = Vec::new();
        socket.read_to_end(&mut buf).map(|_| buf)
    })
    .await
    .unwrap();
    let err = outcome.expect_err("read must fail with a reset, not end cleanly");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
}

/// Sends `n` requests, 50 at a time, and counts what the client saw.
async fn run_batch(server: &TestServer, n: usize) -> (StatsSnapshot, [usize; 5]) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(500)) // ends the hangs
        .build()
        .expect("client");
    let urls = url_list(&server.base_url(), n, 2000);
    // [ok, status 500, timeout, body error, other transport error (resets)]
    let outcomes: Vec<usize> = futures::stream::iter(urls)
        .map(|url| {
            let client = client.clone();
            async move {
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 500 => 1,
                    Ok(r) => match r.bytes().await {
                        Ok(body) if check_body(file_name_of(&url).expect("a file URL"), &body) => 0,
                        Ok(_) => panic!("wrong body for {url}"),
                        Err(e) if e.is_timeout() => 2,
                        Err(_) => 3,
                    },
                    Err(e) if e.is_timeout() => 2,
                    Err(_) => 4,
                }
            }
        })
        .buffer_unordered(50)
        .collect()
        .await;
    let mut seen = [0; 5];
    for o in outcomes {
        seen[o] += 1;
    }
    (server.stats(), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_fault_rates_are_within_tolerance_and_repeatable() {
    let faults = Faults {
        error_500: 0.10,
        hang: 0.02,
        truncate: 0.05,
        reset: 0.05,
    };
    let n = 400;
    let config = ServerConfig::default().faults(faults).seed(1234);
    let first = TestServer::start(config.clone()).await.unwrap();
    let (stats, seen) = run_batch(&first, n).await;

    // Rates within ~4 standard deviations of a binomial(400, p).
    for (count, p, what) in [
        (stats.faults_500, faults.error_500, "500"),
        (stats.faults_hang, faults.hang, "hang"),
        (stats.faults_truncate, faults.truncate, "truncate"),
        (stats.faults_reset, faults.reset, "reset"),
    ] {
        let expected = p * n as f64;
        let tolerance = 4.0 * (expected * (1.0 - p)).sqrt() + 1.0;
        assert!(
            (count as f64 - expected).abs() <= tolerance,
            "{what}: {count} faults, expected {expected} ± {tolerance:.0}"
        );
    }
    // The client saw exactly what the server injected.
    assert_eq!(seen[1] as u64, stats.faults_500, "{seen:?} {stats}");
    assert_eq!(seen[2] as u64, stats.faults_hang, "{seen:?} {stats}");
    assert_eq!(seen[3] as u64, stats.faults_truncate, "{seen:?} {stats}");
    assert_eq!(seen[4] as u64, stats.faults_reset, "{seen:?} {stats}");
    assert_eq!(seen[0] as u64 + stats.faults(), n as u64);

    // Same seed, same counts, whatever the arrival order; another seed, other counts.
    let again = TestServer::start(config.clone()).await.unwrap();
    let (stats_again, _) = run_batch(&again, n).await;
    let counts = |s: &StatsSnapshot| {
        [
            s.faults_500,
            s.faults_hang,
            s.faults_truncate,
            s.faults_reset,
        ]
    };
    assert_eq!(counts(&stats), counts(&stats_again));
    let other = TestServer::start(config.seed(99)).await.unwrap();
    let (stats_other, _) = run_batch(&other, n).await;
    assert_ne!(counts(&stats), counts(&stats_other));
}

#[tokio::test]
async fn counters_add_up() {
    let size = 10_000;
    let server = TestServer::start(ServerConfig::default().file_size(size))
        .await
        .unwrap();
    let client = client();
    for i in 0..5 {
        let body = client
            .get(server.file_url(i))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(body.len(), size);
    }
    assert_eq!(
        client
            .get(server.url("/status/404"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        client
            .get(server.url("/files/x?fail=500"))
            .send()
            .await
            .unwrap()
            .status(),
        500
    );

    let stats = server.stats();
    assert_eq!(stats.requests, 7, "{stats}");
    assert_eq!(stats.status_2xx, 5);
    assert_eq!(stats.status_4xx, 1);
    assert_eq!(stats.status_5xx, 1);
    assert_eq!(stats.faults(), 1);
    assert!(stats.bytes_sent >= 5 * size as u64, "{stats}");
    assert_eq!(stats.in_flight, 0);
    assert_eq!(stats.max_in_flight, 1, "one request at a time");
    // One keep-alive connection carried all of them.
    assert_eq!(stats.connections_accepted, 1, "{stats}");
    assert_eq!(stats.connections_open, 1, "{stats}");

    // /stats serves the same counters as JSON (counting itself).
    let json: StatsSnapshot = serde_json::from_slice(
        &client
            .get(server.url("/stats"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json.requests, 8);
    assert_eq!(json.status_2xx, 5);
    assert_eq!(json.in_flight, 1, "the /stats request itself");

    server.stats_handle().reset();
    let stats = server.stats();
    assert_eq!(
        (stats.requests, stats.status_2xx, stats.bytes_sent),
        (0, 0, 0)
    );
    assert_eq!(stats.connections_open, 1, "gauges survive a reset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_more_than_a_thousand_concurrent_requests() {
    let n = 1200;
    let size = 1000;
    // The latency keeps every request in flight while the others connect.
    let server = TestServer::start(
        ServerConfig::default()
            .latency(Duration::from_secs(3))
            .file_size(size),
    )
    .await
    .unwrap();
    let client = client();
    let requests = (0..n).map(|i| {
        let client = client.clone();
        let url = server.file_url(i);
        tokio::spawn(async move {
            let body = client
                .get(&url)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            Ok::<_, reqwest::Error>(
                check_body(file_name_of(&url).expect("a file URL"), &body) && body.len() == size,
            )
        })
    });
    let results = futures::future::join_all(requests).await;
    let good = results
        .into_iter()
        .filter(|r| matches!(r, Ok(Ok(true))))
        .count();
    let stats = server.stats();
    assert_eq!(good, n, "{stats}");
    assert_eq!(stats.status_2xx, n as u64);
    assert_eq!(stats.accept_errors, 0, "{stats}");
    assert!(stats.connections_accepted >= 1000, "{stats}");
    // Lower bound only, with a wide margin: 3 s is far longer than 1,200 local connects take.
    assert!(stats.max_in_flight >= 1000, "{stats}");
}

#[tokio::test]
async fn set_faults_changes_behaviour_at_run_time() {
    let server = TestServer::start(ServerConfig::default().file_size(100))
        .await
        .unwrap();
    let client = client();
    let status = |i| {
        let client = client.clone();
        let url = server.file_url(i);
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    };
    for i in 0..10 {
        assert_eq!(status(i).await, 200);
    }
    let outage = Faults {
        error_500: 1.0,
        ..Faults::NONE
    };
    server.set_faults(outage);
    assert_eq!(server.faults(), outage);
    for i in 0..10 {
        assert_eq!(status(i).await, 500);
    }
    // `fail=none` bypasses the outage (health checks of a circuit breaker could use it).
    let forced_ok = client
        .get(server.url("/files/a?fail=none"))
        .send()
        .await
        .unwrap();
    assert_eq!(forced_ok.status(), 200);
    server.set_faults(Faults::NONE);
    for i in 0..10 {
        assert_eq!(status(i).await, 200);
    }
    assert_eq!(server.stats().faults_500, 10);
}

#[test]
#[should_panic(expected = "set_faults")]
fn set_faults_rejects_invalid_probabilities() {
    let server = TestServer::spawn(ServerConfig::default()).unwrap();
    server.set_faults(Faults {
        error_500: 2.0,
        ..Faults::NONE
    });
}

#[test]
fn start_rejects_invalid_faults() {
    let config = ServerConfig::default().faults(Faults {
        reset: 0.7,
        hang: 0.7,
        ..Faults::NONE
    });
    let err = TestServer::spawn(config).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn shutdown_does_not_wait_for_hung_requests() {
    let server = TestServer::start(ServerConfig::default()).await.unwrap();
    let url = server.url("/files/h.bin?fail=hang");
    // No client timeout: only the server's shutdown can end this request.
    let hung = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status()) });
    wait_for(&server, "the hung request", |s| s.faults_hang == 1).await;
    let stats = server.stats_handle();

    tokio::time::timeout(GUARD, server.shutdown())
        .await
        .expect("shutdown must not hang");
    // The hung request got an answer (503) or a closed connection; it is not stuck.
    let outcome = tokio::time::timeout(GUARD, hung)
        .await
        .expect("client released")
        .unwrap();
    if let Ok(status) = outcome {
        assert_eq!(status, 503);
    }
    let stats = stats.snapshot();
    assert_eq!((stats.connections_open, stats.in_flight), (0, 0), "{stats}");
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let server = TestServer::start(ServerConfig::default().latency(Duration::from_millis(300)))
        .await
        .unwrap();
    let addr = server.addr();
    let url = server.file_url(1);
    let slow = tokio::spawn(async move { reqwest::get(url).await?.bytes().await });
    wait_for(&server, "the slow request", |s| s.in_flight == 1).await;
    tokio::time::timeout(GUARD, server.shutdown())
        .await
        .unwrap();
    let body = slow
        .await
        .unwrap()
        .expect("in-flight request completes during the grace period");
    assert!(check_body("000001.bin", &body));
    // The listener is closed.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// `spawn` works from plain threads with no runtime, and `Drop` stops it even with a hung
/// request in flight.
#[test]
fn spawned_server_serves_blocking_clients_and_stops_on_drop() {
    let server = TestServer::spawn(ServerConfig::default().file_size(5000)).unwrap();
    let addr = server.addr();

    let get = |path: &str| -> Vec<u8> {
        let mut socket = std::net::TcpStream::connect(addr).unwrap();
        socket.set_read_timeout(Some(GUARD)).unwrap();
        write!(
            socket,
            "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut buf = Vec::new();
        socket.read_to_end(&mut buf).unwrap();
        buf
    };
    let response = get("/files/000003.bin");
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&response[..split]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-length: 5000"), "{head}");
    assert_eq!(response[split..], expected_body("000003.bin", 5000));
    assert!(String::from_utf8_lossy(&get("/health")).ends_with("ok\n"));

    // A hung request on another thread, then drop the server.
    let hung = std::thread::spawn(move || {
        let mut socket = std::net::TcpStream::connect(addr).unwrap();
        socket.set_read_timeout(Some(GUARD)).unwrap();
        socket
            .write_all(b"GET /files/h?fail=hang HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut buf = Vec::new();
        let _ = socket.read_to_end(&mut buf);
        buf
    });
    let stats = server.stats_handle();
    let start = Instant::now();
    while stats.snapshot().faults_hang == 0 {
        assert!(start.elapsed() < GUARD, "hung request never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(server); // joins the server thread: returns only once everything is closed
    assert_eq!(stats.snapshot().connections_open, 0);
    let answer = hung.join().unwrap();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 503"));
}

/// Starts the `test-server` binary as `command` says, stdout piped: the child, its stdout past
/// the first line, and the base URL that line announces.
fn start_binary(
    command: &mut std::process::Command,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
    String,
) {
    use std::io::BufRead;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("listening on"), "{first}");
    let base = first.trim().rsplit(' ').next().unwrap().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{first}");
    (child, stdout, base)
}

/// `GET path` on a new connection to `base` (`Connection: close`): the raw response.
fn raw_get(base: &str, path: &str) -> Vec<u8> {
    let mut socket = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    socket.set_read_timeout(Some(GUARD)).unwrap();
    write!(
        socket,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).unwrap();
    response
}

/// The `test-server` binary: `--help` lists the routes; it prints its URL, serves, writes the
/// URL list and stops on its own with `--duration`.
#[test]
fn binary_prints_its_url_serves_and_stops() {
    use std::process::Command;
    let exe = env!("CARGO_BIN_EXE_test-server");

    let help = Command::new(exe).arg("--help").output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("/files/{name}") && help.contains("--error-rate"),
        "{help}"
    );

    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("urls.txt");
    let (mut child, mut stdout, base) = start_binary(
        Command::new(exe)
            .args(["--duration", "2", "--count", "5", "--size", "123", "--urls"])
            .arg(&list),
    );

    let urls = std::fs::read_to_string(&list).unwrap();
    let urls: Vec<&str> = urls.lines().collect();
    assert_eq!(urls.len(), 5);
    assert!(urls[4].starts_with(&base) && urls[4].ends_with("/files/000004.bin?size=123"));

    let response = raw_get(&base, &urls[4][base.len()..]);
    assert!(response.starts_with(b"HTTP/1.1 200"));
    assert_eq!(
        response[response.len() - 123..],
        expected_body("000004.bin", 123)
    );

    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success());
    assert!(rest.contains("final: requests 1"), "{rest}");
}

/// SIGTERM is what `docker stop`, systemd and Kubernetes send: the binary must stop exactly as
/// on Ctrl-C (the `final:` line, exit 0), not die of the signal.
#[cfg(unix)]
#[test]
fn binary_stops_gracefully_on_sigterm() {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_test-server"));
    let (mut child, mut stdout, _) = start_binary(&mut command);
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child; no memory involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status}; stdout: {rest}");
    assert!(rest.contains("final: requests 0"), "{rest}");
}

/// `RUST_LOG` turns on the server's spans: a request logs its connection and request spans.
#[test]
fn binary_logs_requests_with_rust_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let (mut child, mut stdout, base) = start_binary(
        std::process::Command::new(env!("CARGO_BIN_EXE_test-server"))
            .args(["--duration", "2"])
            .env("RUST_LOG", "shared::server=debug")
            .env("NO_COLOR", "1")
            .stderr(std::fs::File::create(&log).unwrap()),
    );
    let response = raw_get(&base, "/files/a/x.bin?size=10&fail=500");
    assert!(response.starts_with(b"HTTP/1.1 500"));
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("conn{id=1 peer=127.0.0.1:"), "{log}");
    assert!(
        log.contains("request{method=GET path=/files/a/x.bin}"),
        "{log}"
    );
    assert!(log.contains("injected fault fault=500"), "{log}");
    assert!(log.contains("status=500"), "{log}");
}

#[tokio::test]
async fn nested_paths_are_distinct_files() {
    let server = TestServer::start(ServerConfig::default().file_size(1000))
        .await
        .unwrap();
    let client = client();
    let get = |path: &str| {
        let request = client.get(server.url(path));
        async move { request.send().await.unwrap().bytes().await.unwrap() }
    };
    let a = get("/files/a/file.txt").await;
    let b = get("/files/b/file.txt").await;
    assert_eq!(a, expected_body("a/file.txt", 1000));
    assert_eq!(b, expected_body("b/file.txt", 1000));
    assert_ne!(a, b, "same last segment, different files");
    server.shutdown().await;
}

#[tokio::test]
async fn stall_sends_half_a_body_then_nothing_until_shutdown() {
    let server = TestServer::start(ServerConfig::default().grace(Duration::from_millis(50)))
        .await
        .unwrap();
    let response = client()
        .get(server.url("/files/s.bin?size=200000&fail=stall"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.content_length(), Some(200_000));
    let mut body = response.bytes_stream();
    let mut received = 0;
    while received < 100_000 {
        let chunk = tokio::time::timeout(GUARD, body.next())
            .await
            .expect("the first half arrives")
            .expect("the body is not over")
            .expect("no error yet");
        received += chunk.len();
    }
    assert_eq!(received, 100_000);
    wait_for(&server, "the stall to be counted", |s| s.faults_hang == 1).await;
    // Nothing more comes while the server runs: the client is left holding half a file.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), body.next())
            .await
            .is_err()
    );
    server.shutdown().await;
    let end = tokio::time::timeout(GUARD, body.next())
        .await
        .expect("shutdown ends the stall");
    assert!(matches!(end, Some(Err(_)) | None), "{end:?}");
}
