//! End-to-end tests of `url-downloader` against the local test server: injected 500s, hangs,
//! truncated bodies and resets; a URL file with bad lines; Ctrl-C. They assert behaviour
//! (files, exit codes, reported failures), never timings.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use shared::server::{ServerConfig, TestServer, check_body};

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
