//! End-to-end tests of `url-downloader` against the local test server: injected 500s, hangs,
//! truncated bodies and resets; a URL file with bad lines; Ctrl-C. They assert behaviour
//! (files, exit codes, reported failures), never timings.

// Test helpers panic on failure like the tests themselves (clippy.toml only exempts `#[test]` fns).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use shared::server::{
    ServerConfig, TestServer, check_body, check_colliding_downloads, colliding_url_list,
    url_file_with_a_non_utf8_line,
};

const BIN: &str = env!("CARGO_BIN_EXE_url-downloader");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run url-downloader: {e}"))
}

fn json(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_else(|| {
        panic!(
            "no output; stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Names in `dir`, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("the output directory exists")
        .map(|e| {
            e.expect("readable directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Every file with a final name is complete (its body is exactly the server's), and no `.part`
/// file is left.
fn assert_only_complete_files(dir: &Path) -> usize {
    let names = files(dir);
    assert!(
        names.iter().all(|n| !n.ends_with(".part")),
        "partial files left: {names:?}"
    );
    for name in &names {
        let body = std::fs::read(dir.join(name)).expect("a listed file is readable");
        assert!(
            check_body(name, &body),
            "{name} is not the server's content ({} bytes)",
            body.len()
        );
    }
    names.len()
}

#[test]
fn default_local_run_downloads_and_verifies_everything() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = run(&[
        "--count",
        "24",
        "--latency-ms",
        "20",
        "--workers",
        "6",
        "--size",
        "10000",
        "--out",
        out_dir.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["ok"], 24);
    assert_eq!(v["failed"], 0);
    assert_eq!(v["verified"], 24);
    assert_eq!(v["bytes"], 24 * 10_000);
    assert!(v["server"]["max_in_flight"].as_u64().unwrap() <= 6, "{v}");
    assert_eq!(assert_only_complete_files(&out_dir), 24);
}

#[test]
fn faults_are_retried_and_leave_no_partial_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "--count",
        "40",
        "--latency-ms",
        "5",
        "--workers",
        "8",
        "--size",
        "200000",
        "--error-rate",
        "0.15",
        "--truncate-rate",
        "0.1",
        "--hang-rate",
        "0.05",
        "--reset-rate",
        "0.05",
        "--timeout",
        "1",
        "--retries",
        "6",
        "--backoff-ms",
        "10",
        "--seed",
        "7",
        "--out",
        dir.path().to_str().unwrap(),
        "--json",
    ]);
    let v = json(&out);
    let retries = &v["retries"];
    let count = |k: &str| retries[k].as_u64().unwrap_or(0);
    // 35% of requests fail: with 40 files some of each common kind are retried.
    assert!(count("HTTP 500") > 0, "{v}");
    assert!(count("truncated") > 0, "{v}");
    assert!(count("timeout") > 0, "hangs end in client timeouts: {v}");
    let (ok, failed) = (v["ok"].as_u64().unwrap(), v["failed"].as_u64().unwrap());
    assert_eq!(ok + failed, 40, "every file is accounted for: {v}");
    assert_eq!(v["verified"].as_u64().unwrap(), ok);
    assert_eq!(
        out.status.code(),
        Some(if failed > 0 { 1 } else { 0 }),
        "{v}"
    );
    assert_eq!(assert_only_complete_files(dir.path()) as u64, ok);
}

#[test]
fn without_retries_failures_are_reported_with_reasons_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "--count",
        "30",
        "--latency-ms",
        "5",
        "--workers",
        "4",
        "--size",
        "100000",
        "--error-rate",
        "0.4",
        "--truncate-rate",
        "0.2",
        "--retries",
        "0",
        "--seed",
        "3",
        "--out",
        dir.path().to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    let failures = v["failures"].as_array().unwrap();
    assert_eq!(failures.len() as u64, v["failed"].as_u64().unwrap());
    assert!(failures.len() >= 5, "{v}");
    assert!(
        failures.iter().all(|f| f["attempts"] == 1),
        "no retries: {v}"
    );
    let reasons: Vec<&str> = failures
        .iter()
        .map(|f| f["error"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.starts_with("HTTP 500")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.starts_with("truncated body")),
        "{reasons:?}"
    );
    // A failed file is absent, not half there.
    for f in failures {
        assert!(!dir.path().join(f["name"].as_str().unwrap()).exists());
    }
    assert_eq!(
        assert_only_complete_files(dir.path()) as u64,
        v["ok"].as_u64().unwrap()
    );
    assert_eq!(v["retries"].as_object().unwrap().len(), 0);
}

#[test]
fn url_file_with_bad_lines_and_a_404() {
    let server = TestServer::spawn(ServerConfig::default().file_size(5000)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("urls.txt");
    let out_dir = dir.path().join("out");
    let text = format!(
        "# test list\n{a}\n\nnot a url\nftp://127.0.0.1/x.bin\n{b}\n{missing}\n   # indented comment\n{c}\n",
        a = server.file_url(1),
        b = server.file_url(2),
        missing = server.url("/status/404"),
        c = server.file_url(3),
    );
    std::fs::write(&list, text).unwrap();

    let out = run(&[
        "--urls",
        list.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "bad lines and a 404 make the run fail"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("skipping line 4: \"not a url\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("skipping line 5: \"ftp://127.0.0.1/x.bin\""),
        "{stderr}"
    );
    assert!(stdout.contains("downloaded 3/4 files"), "{stdout}");
    assert!(stdout.contains("line    7"), "{stdout}");
    assert!(
        stdout.contains("HTTP 404 Not Found (not retried)"),
        "{stdout}"
    );
    assert!(stdout.contains("bad lines skipped (2)"), "{stdout}");
    assert_eq!(
        files(&out_dir),
        vec!["000001.bin", "000002.bin", "000003.bin"]
    );
    assert_only_complete_files(&out_dir);
    // 3 files + one 404, asked once: a 4xx is never retried.
    assert_eq!(server.stats().status_4xx, 1);
    assert_eq!(server.stats().requests, 4);

    let v = json(&run(&[
        "--urls",
        list.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--json",
    ]));
    let bad: Vec<u64> = v["bad_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["line"].as_u64().unwrap())
        .collect();
    assert_eq!(bad, vec![4, 5]);
    assert_eq!(v["failures"][0]["line"], 7);
}

#[test]
fn sequential_flag_prints_both_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "--count",
        "8",
        "--latency-ms",
        "5",
        "--workers",
        "4",
        "--size",
        "1000",
        "--sequential",
        "--out",
        dir.path().to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success());
    let v = json(&out);
    let rows = v["table"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["name"], "sequential (1 worker)");
    assert_eq!(rows[1]["name"], "4 workers");
    assert!(v["speedup"].as_f64().unwrap() > 0.0);
    assert_eq!(v["ok"], 8);
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_cleanly_without_partial_files() {
    let dir = tempfile::tempdir().unwrap();
    // Slow enough that it is still running when the signal arrives.
    let child = Command::new(BIN)
        .args([
            "--count",
            "400",
            "--latency-ms",
            "100",
            "--workers",
            "4",
            "--size",
            "300000",
            "--out",
            dir.path().to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first complete file (hang guard: 60 s), then interrupt.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !files(dir.path()).iter().any(|n| n.ends_with(".bin")) {
        assert!(Instant::now() < deadline, "no file downloaded in 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("interrupted:"), "{stderr}");
    let done = assert_only_complete_files(dir.path());
    assert!(done < 400, "it stopped early ({done} files)");
}

/// Writes `text` as a URL file in `dir` and runs the downloader on it into `dir/out`.
fn run_list(dir: &Path, text: &[u8], extra: &[&str]) -> (Output, std::path::PathBuf) {
    let list = dir.join("urls.txt");
    std::fs::write(&list, text).unwrap();
    let out_dir = dir.join("out");
    let mut args = vec![
        "--urls",
        list.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    (run(&args), out_dir)
}

/// Issue 12, defect 1: URLs with the same last segment (in other folders, in another case) were
/// written to one file, and a numbered duplicate could take a name another line had.
#[test]
fn distinct_urls_with_the_same_file_name_are_distinct_files() {
    let server = TestServer::spawn(ServerConfig::default().file_size(3000)).unwrap();
    let (list, _) = colliding_url_list(&server.base_url());
    let dir = tempfile::tempdir().unwrap();
    let (out, out_dir) = run_list(dir.path(), list.as_bytes(), &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)["ok"], 6);
    // The rule (shared::urls): first come keeps its name; a later one gets the first number no
    // other line's name has, compared without case; `.part` is only ever a hidden temp name.
    check_colliding_downloads(&out_dir, 3000).unwrap();
}

/// Issue 12, defect 10: one non-UTF-8 byte rejected the whole list.
#[test]
fn a_line_that_is_not_utf8_is_reported_and_the_others_are_downloaded() {
    let server = TestServer::spawn(ServerConfig::default().file_size(1000)).unwrap();
    let text = url_file_with_a_non_utf8_line(&server.base_url());
    let dir = tempfile::tempdir().unwrap();
    let (out, out_dir) = run_list(dir.path(), &text, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a bad line fails the run: {stderr}"
    );
    assert!(
        stderr.contains("skipping line 2:") && stderr.contains("not UTF-8"),
        "{stderr}"
    );
    assert_eq!(files(&out_dir), vec!["000001.bin", "000002.bin"]);
    assert_only_complete_files(&out_dir);
}

#[cfg(unix)]
fn signal(child: &std::process::Child, sig: i32) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child; no memory involved.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

/// Starts the downloader on a list whose first file stalls after half its body (the worker is
/// stuck in a blocking read with a `.part` file on disk), waits for that half, and returns.
#[cfg(unix)]
fn start_stalled(dir: &Path, server: &TestServer, timeout: &str) -> std::process::Child {
    let list = dir.join("urls.txt");
    let mut text = format!(
        "{}\n",
        server.url("/files/stall.bin?size=2000000&fail=stall")
    );
    for i in 0..4 {
        text.push_str(&server.file_url(i));
        text.push('\n');
    }
    std::fs::write(&list, text).unwrap();
    let out_dir = dir.join("out");
    let child = Command::new(BIN)
        .args([
            "--urls",
            list.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ])
        .args(["--workers", "2", "--retries", "0", "--timeout", timeout])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the whole first half is on disk: from then on the worker is blocked in `read`
    // (before that it still checks the stop flag between chunks, and stops cleanly).
    let half_written = || {
        files(&out_dir).iter().any(|n| {
            n.ends_with(".part")
                && std::fs::metadata(out_dir.join(n)).is_ok_and(|m| m.len() >= 1_000_000)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !out_dir.exists() || !half_written() {
        assert!(
            Instant::now() < deadline,
            "the stalled download never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

/// Runs the stalled list of `start_stalled`, sends each signal after its pause, checks that
/// no `.part` file is left, and returns the exit code, stdout and stderr.
#[cfg(unix)]
fn stop_stalled(timeout: &str, signals: &[(Duration, i32)]) -> (Option<i32>, String, String) {
    let server =
        TestServer::spawn(ServerConfig::default().grace(Duration::from_millis(50))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let child = start_stalled(dir.path(), &server, timeout);
    for &(pause, sig) in signals {
        std::thread::sleep(pause);
        signal(&child, sig);
    }
    let out = child.wait_with_output().unwrap();
    assert_only_complete_files(&dir.path().join("out"));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// Issue 12, defect 5: under `timeout` (or any wrapper that forwards the terminal's signal), one
/// Ctrl-C arrives as two SIGINTs. They count as one press: a clean stop (the stuck read ends at
/// its 3 s timeout), no `.part` left.
#[cfg(unix)]
#[test]
fn two_sigints_a_millisecond_apart_are_one_clean_stop() {
    let twice = [
        (Duration::ZERO, libc::SIGINT),
        (Duration::from_millis(1), libc::SIGINT),
    ];
    let (code, _, stderr) = stop_stalled("3", &twice);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("interrupted:"), "clean path: {stderr}");
    assert!(!stderr.contains("second interrupt"), "{stderr}");
}

/// Issue 12, defect 5: a real second Ctrl-C (the worker is stuck in a read for two minutes)
/// forces the exit, and the forced exit still deletes every temporary file.
#[cfg(unix)]
#[test]
fn a_second_sigint_forces_the_exit_and_leaves_no_partial_file() {
    let twice = [
        (Duration::ZERO, libc::SIGINT),
        (Duration::from_millis(500), libc::SIGINT),
    ];
    let (code, _, stderr) = stop_stalled("120", &twice);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("second interrupt"), "forced path: {stderr}");
}

/// SIGTERM (docker stop, systemd, Kubernetes) takes the Ctrl-C path: summary, 130, no `.part`.
#[cfg(unix)]
#[test]
fn sigterm_stops_cleanly_like_ctrl_c() {
    let (code, stdout, stderr) = stop_stalled("3", &[(Duration::ZERO, libc::SIGTERM)]);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("interrupted:"), "{stderr}");
    assert!(stdout.contains("downloaded "), "{stdout}");
}

fn python_or_skip() -> bool {
    match shared::python::Python::find(&[]) {
        Ok(_) => true,
        Err(e) => {
            println!("SKIPPED: {e}");
            false
        }
    }
}

/// `--python`: the ThreadPoolExecutor + urllib recipe downloads the same list through the same
/// faults into the same names; the binary compares both folders byte for byte.
#[test]
fn python_saves_the_same_files_through_the_same_faults() {
    if !python_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "--count",
        "30",
        "--latency-ms",
        "2",
        "--workers",
        "6",
        "--size",
        "5000",
        "--error-rate",
        "0.1",
        "--truncate-rate",
        "0.05",
        "--reset-rate",
        "0.05",
        "--timeout",
        "2",
        "--retries",
        "10",
        "--backoff-ms",
        "5",
        "--out",
        dir.path().to_str().unwrap(),
        "--python",
        "--json",
    ]);
    let v = json(&out);
    assert!(
        out.status.success(),
        "{v}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let py = &v["python"];
    assert_eq!(v["ok"], 30, "{v}");
    assert_eq!(py["ok"], 30, "{v}");
    assert_eq!(py["bytes"], v["bytes"], "{v}");
    assert_eq!(py["same_files"], true, "{v}");
    assert_eq!(py["workers"], 6, "{v}");
    assert_eq!(assert_only_complete_files(dir.path()), 30);
}

/// The names the Rust rule gives colliding URLs reach the Python side through the job file.
#[test]
fn python_uses_the_same_names_for_colliding_urls() {
    if !python_or_skip() {
        return;
    }
    let server = TestServer::spawn(ServerConfig::default().file_size(3000)).unwrap();
    let (list, _) = colliding_url_list(&server.base_url());
    let dir = tempfile::tempdir().unwrap();
    let (out, out_dir) = run_list(dir.path(), list.as_bytes(), &["--json", "--python"]);
    let v = json(&out);
    assert!(out.status.success(), "{v}");
    assert_eq!(v["python"]["ok"], 6, "{v}");
    assert_eq!(v["python"]["same_files"], true, "{v}");
    check_colliding_downloads(&out_dir, 3000).unwrap();
}

#[test]
fn python_without_python3_says_what_to_install_and_exits_2() {
    let out = Command::new(BIN)
        .args(["--count", "1", "--python"])
        .env("PYTHON", "/nonexistent/python3")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("apt-get install python3"), "{stderr}");
}
