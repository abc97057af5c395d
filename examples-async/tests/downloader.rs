//! Fault-injection tests of `async-downloader` against the workspace's local test server.
//!
//! The server (`shared::server::TestServer`) runs in the test process; the downloader is the real
//! binary. Failures are forced per URL (`?fail=...`) or drawn from a seeded generator, so the
//! outcomes are deterministic. No assertion depends on elapsed time.

// Test helpers panic on failure like the tests themselves (clippy.toml only exempts `#[test]` fns).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use shared::server::{
    Faults, ServerConfig, TestServer, check_body, check_colliding_downloads, colliding_url_list,
    file_name, url_file_with_a_non_utf8_line, url_list,
};

fn download(urls: &str, out: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let list = out.parent().unwrap().join("urls.txt");
    std::fs::write(&list, urls).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_async-downloader"))
        .arg("--urls")
        .arg(&list)
        .arg("--out")
        .arg(out)
        .args(["--json", "--backoff", "10ms"])
        .args(extra)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)));
    (output, json)
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect()
}

#[test]
fn flaky_server_every_file_arrives_intact_thanks_to_retries() {
    let faults = Faults {
        error_500: 0.15,
        truncate: 0.1,
        reset: 0.1,
        ..Faults::NONE
    };
    let server = TestServer::spawn(ServerConfig::default().faults(faults).seed(7)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let urls = url_list(&server.base_url(), 40, 20_000).join("\n");
    let (output, json) = download(&urls, &out, &["--retries", "20", "--concurrency", "8"]);
    assert!(
        output.status.success(),
        "{json}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(json["ok"], 40, "{json}");
    assert!(
        json["retries"].as_u64().unwrap() > 0,
        "faults were injected, so some retries happened: {json}"
    );
    for i in 0..40 {
        let name = file_name(i);
        let body = std::fs::read(out.join(&name)).unwrap();
        assert_eq!(body.len(), 20_000, "{name}");
        assert!(check_body(&name, &body), "{name} has the wrong content");
    }
    assert!(leftovers(&out).is_empty());
    let stats = server.stats();
    assert!(stats.faults() > 0, "{stats}");
}

#[test]
fn bad_lines_and_4xx_are_reported_and_not_retried() {
    let server = TestServer::spawn(ServerConfig::default()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let urls = format!(
        "{}\nnot a url\n{}\n\n# a comment\nftp://example.com/x\n",
        server.file_url(1),
        server.url("/status/404")
    );
    let (output, json) = download(&urls, &out, &[]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "one download failed: exit code 1"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 2:") && stderr.contains("line 6:"),
        "{stderr}"
    );
    assert_eq!(json["ok"], 1);
    assert_eq!(json["failed"], 1);
    assert_eq!(json["bad_lines"], 2);
    let failure = json["failures"][0].as_str().unwrap();
    assert!(
        failure.starts_with("line 3:")
            && failure.contains("404")
            && failure.contains("after 1 attempts"),
        "{failure}"
    );
    assert_eq!(server.stats().status_4xx, 1, "a 404 must not be retried");
    assert!(out.join(file_name(1)).exists());
}

#[test]
fn a_hanging_server_is_cut_by_the_timeout_and_leaves_no_part_file() {
    let server =
        TestServer::spawn(ServerConfig::default().grace(Duration::from_millis(100))).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let urls = format!("{}?fail=hang\n{}\n", server.file_url(1), server.file_url(2));
    let (output, json) = download(&urls, &out, &["--timeout", "500ms", "--retries", "1"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json["ok"], 1);
    let failure = json["failures"][0].as_str().unwrap();
    assert!(
        failure.contains("timed out") && failure.contains("after 2 attempts"),
        "{failure}"
    );
    assert!(leftovers(&out).is_empty());
}

#[test]
fn truncated_bodies_and_resets_fail_cleanly_without_retries() {
    let server = TestServer::spawn(ServerConfig::default()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let urls = format!(
        "{}?fail=truncate\n{}?fail=reset\n{}?fail=500\n",
        server.file_url(1),
        server.file_url(2),
        server.file_url(3)
    );
    let (output, json) = download(&urls, &out, &["--retries", "0"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json["failed"], 3, "{json}");
    assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
    for i in 1..=3 {
        assert!(
            !out.join(file_name(i)).exists(),
            "a failed download left {}",
            file_name(i)
        );
    }
    let text = json["failures"].to_string();
    assert!(text.contains("HTTP 500"), "{text}");
}

#[test]
fn default_run_uses_its_own_server_and_ends() {
    let output = Command::new(env!("CARGO_BIN_EXE_async-downloader"))
        .args([
            "--count",
            "30",
            "--latency",
            "10ms",
            "--faults",
            "0",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["ok"], 30);
    assert_eq!(json["bad_lines"], 0);
    // The ideal is known for its own server: 30 URLs at the default concurrency of 50 = 1 round.
    assert_eq!(json["ideal_s"].as_f64(), Some(0.01), "{json}");
    assert!(json["ratio_to_ideal"].as_f64().unwrap() >= 1.0, "{json}");
    // CPU is reported, split in user and system time.
    for part in ["cpu_user_s", "cpu_system_s", "cores_busy"] {
        assert!(json[part].as_f64().unwrap() >= 0.0, "{part}: {json}");
    }
}

#[test]
fn ctrl_c_stops_downloads_in_flight_and_leaves_no_part_file() {
    // Every response takes 60 s: without cancellation the run would last minutes.
    let server = TestServer::spawn(
        ServerConfig::default()
            .latency(Duration::from_secs(60))
            .grace(Duration::from_millis(100)),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let list = tmp.path().join("urls.txt");
    std::fs::write(&list, url_list(&server.base_url(), 20, 1000).join("\n")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_async-downloader"))
        .arg("--urls")
        .arg(&list)
        .arg("--out")
        .arg(&out)
        .args(["--json", "--concurrency", "4", "--timeout", "120s"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the downloads are really in flight (hang guard, not a timing assertion).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while server.stats().in_flight < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "downloads never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child; no memory involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["ok"], 0, "{json}");
    assert_eq!(json["cancelled"], 20, "{json}");
    assert!(leftovers(&out).is_empty());
}

/// Issue 12, defect 1: URLs with the same last segment (in other folders, in another case) were
/// written to one file ("11 ok", 8 files), and `k.bin.part` clobbered the temporary file of
/// `k.bin`.
#[test]
fn distinct_urls_with_the_same_file_name_are_distinct_files() {
    let server = TestServer::spawn(ServerConfig::default().file_size(3000)).unwrap();
    let (list, _) = colliding_url_list(&server.base_url());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let (output, json) = download(&list, &out, &[]);
    assert!(output.status.success(), "{json}");
    assert_eq!(json["ok"], 6, "{json}");
    // The rule (shared::urls), the same as url-downloader's.
    check_colliding_downloads(&out, 3000).unwrap();
}

/// Issue 12, defect 10: one non-UTF-8 byte rejected the whole list.
#[test]
fn a_line_that_is_not_utf8_is_reported_and_the_others_are_downloaded() {
    let server = TestServer::spawn(ServerConfig::default().file_size(1000)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let list = tmp.path().join("urls.txt");
    std::fs::write(&list, url_file_with_a_non_utf8_line(&server.base_url())).unwrap();
    let out = tmp.path().join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_async-downloader"))
        .arg("--urls")
        .arg(&list)
        .arg("--out")
        .arg(&out)
        .arg("--json")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a bad line fails the run: {stderr}"
    );
    assert!(
        stderr.contains("line 2:") && stderr.contains("not UTF-8"),
        "{stderr}"
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["ok"], 2, "{json}");
    assert_eq!(json["bad_lines"], 1, "{json}");
    assert!(out.join(file_name(1)).exists() && out.join(file_name(2)).exists());
}

/// Issue 12, defect 10: errors said "request failed" without the root cause.
#[test]
fn failures_name_their_root_cause() {
    let server = TestServer::spawn(ServerConfig::default()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // Port 1 on loopback: nothing listens there, the kernel refuses the connection.
    let urls = format!(
        "http://127.0.0.1:1/refused.bin\n{}\n",
        server.url("/files/cut.bin?size=100000&fail=truncate")
    );
    let (output, json) = download(&urls, &out, &["--retries", "0"]);
    assert_eq!(output.status.code(), Some(1));
    let failures = json["failures"].as_array().unwrap();
    let text = |line: &str| {
        failures
            .iter()
            .map(|f| f.as_str().unwrap())
            .find(|f| f.starts_with(line))
            .unwrap_or_else(|| panic!("no failure for {line}: {json}"))
            .to_string()
    };
    let refused = text("line 1:");
    assert!(
        refused.to_lowercase().contains("connection refused"),
        "{refused}"
    );
    let cut = text("line 2:");
    assert!(
        cut.contains("truncated body: 50000 of 100000 bytes"),
        "{cut}"
    );
}

/// Starts the downloader on `stalled` files that stall after half their body (300 KB, of which
/// 256 KiB are already spilled to each `.part` file) and a few good ones; returns once every
/// stalled download has its `.part` file on disk.
#[cfg(unix)]
fn start_stalled(out: &Path, server: &TestServer, stalled: usize) -> std::process::Child {
    let list = out.parent().unwrap().join("urls.txt");
    let mut urls = String::new();
    for i in 0..stalled {
        urls.push_str(&server.url(&format!("/files/stall-{i}.bin?size=600000&fail=stall\n")));
    }
    for i in 0..4 {
        urls.push_str(&server.file_url(i));
        urls.push('\n');
    }
    std::fs::write(&list, urls).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_async-downloader"))
        .arg("--urls")
        .arg(&list)
        .arg("--out")
        .arg(out)
        .args(["--json", "--timeout", "120s"])
        .args(["--concurrency", &(stalled + 1).to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !out.exists() || leftovers(out).len() < stalled {
        assert!(
            std::time::Instant::now() < deadline,
            "the stalled downloads never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

/// Runs `start_stalled` with `stalled` stalling files, sends each signal after its pause, checks
/// that no `.part` file is left, and returns the exit code, the JSON summary (if printed) and
/// stderr.
#[cfg(unix)]
fn stop_stalled(
    stalled: usize,
    signals: &[(Duration, i32)],
) -> (Option<i32>, Option<serde_json::Value>, String) {
    let server =
        TestServer::spawn(ServerConfig::default().grace(Duration::from_millis(50))).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let child = start_stalled(&out, &server, stalled);
    for &(pause, sig) in signals {
        std::thread::sleep(pause);
        // The process may be gone already (the clean stop won): ignore that error.
        // SAFETY: kill(2) on our own child; no memory involved.
        let _ = unsafe { libc::kill(i32::try_from(child.id()).unwrap(), sig) };
    }
    let output = child.wait_with_output().unwrap();
    assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
    let json = serde_json::from_slice(&output.stdout).ok();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), json, stderr)
}

/// The stalled downloads were cancelled; the good ones may have finished first.
fn assert_cancelled_at_least(json: &serde_json::Value, stalled: u64) {
    let n = |k: &str| json[k].as_u64().unwrap();
    assert!(n("cancelled") >= stalled, "{json}");
    assert_eq!(n("ok") + n("cancelled"), n("urls"), "{json}");
}

/// Issue 12, defect 5: one Ctrl-C forwarded twice (under `timeout`) exited at once and cut the
/// clean stop short (here 200 downloads in flight: deleting their `.part` files takes a few
/// milliseconds). Two SIGINTs 1 ms apart are one press: a clean stop with its summary.
#[cfg(unix)]
#[test]
fn two_sigints_a_millisecond_apart_are_one_clean_stop() {
    let twice = [
        (Duration::ZERO, libc::SIGINT),
        (Duration::from_millis(1), libc::SIGINT),
    ];
    let (code, json, stderr) = stop_stalled(200, &twice);
    assert_eq!(code, Some(130), "{stderr}");
    let json = json.unwrap_or_else(|| panic!("no summary: a clean stop prints one; {stderr}"));
    assert_cancelled_at_least(&json, 200);
}

/// Issue 12, defect 5: a separate second Ctrl-C forces the exit (130) if the clean stop is not
/// over yet, and still leaves no `.part` file (the forced-exit cleanup deletes every
/// temporary name).
#[cfg(unix)]
#[test]
fn a_second_sigint_forces_the_exit_and_leaves_no_partial_file() {
    let twice = [
        (Duration::ZERO, libc::SIGINT),
        (Duration::from_millis(500), libc::SIGINT),
    ];
    let (code, _, stderr) = stop_stalled(200, &twice);
    assert_eq!(code, Some(130), "{stderr}");
}

/// SIGTERM (docker stop, systemd, Kubernetes) takes the Ctrl-C path: summary, 130, no `.part`.
#[cfg(unix)]
#[test]
fn sigterm_stops_cleanly_like_ctrl_c() {
    let (code, json, stderr) = stop_stalled(1, &[(Duration::ZERO, libc::SIGTERM)]);
    assert_eq!(code, Some(130), "{stderr}");
    let json = json.unwrap_or_else(|| panic!("no summary; {stderr}"));
    assert_cancelled_at_least(&json, 1);
}

fn python_or_skip() -> bool {
    match shared::python::Python::find(&["aiohttp"]) {
        Ok(_) => true,
        Err(e) => {
            println!("SKIPPED: {e}");
            false
        }
    }
}

/// `--python`: the asyncio + aiohttp recipe downloads the same list, through the same faults,
/// into the same names: both folders are compared byte for byte by the binary itself.
#[test]
fn python_saves_the_same_files_through_the_same_faults() {
    if !python_or_skip() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_async-downloader"))
        .args(["--count", "40", "--size", "3000", "--latency", "1ms"])
        .args(["--faults", "0.1", "--timeout", "1s", "--retries", "8"])
        .args([
            "--backoff",
            "10ms",
            "--concurrency",
            "8",
            "--python",
            "--json",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)));
    assert!(
        output.status.success(),
        "{json}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let py = &json["python"];
    assert_eq!(json["ok"], 40, "{json}");
    assert_eq!(py["ok"], 40, "{json}");
    assert_eq!(py["bytes"], json["bytes"], "{json}");
    assert_eq!(py["same_files"], true, "{json}");
    assert_eq!(py["concurrency"], 8, "{json}");
    // The scratch folder of the Python run is gone, ours is complete.
    assert!(leftovers(&out).is_empty());
    for i in 0..40 {
        let name = file_name(i);
        assert!(check_body(&name, &std::fs::read(out.join(&name)).unwrap()));
    }
}

/// The names the Rust rule gives colliding URLs reach the Python side through the job file.
#[test]
fn python_uses_the_same_names_for_colliding_urls() {
    if !python_or_skip() {
        return;
    }
    let server = TestServer::spawn(ServerConfig::default().file_size(3000)).unwrap();
    let (list, _) = colliding_url_list(&server.base_url());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let (output, json) = download(&list, &out, &["--python"]);
    assert!(output.status.success(), "{json}");
    assert_eq!(json["python"]["ok"], 6, "{json}");
    assert_eq!(json["python"]["same_files"], true, "{json}");
    check_colliding_downloads(&out, 3000).unwrap();
}

#[test]
fn python_without_aiohttp_says_what_to_install_and_exits_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_async-downloader"))
        .args(["--count", "1", "--python"])
        .env("PYTHON", "/nonexistent/python3")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("apt-get install python3"), "{stderr}");
}
