//! End-to-end tests of `map-reduce-distributed` (built with `--features distributed`): the real
//! binary starting its own processes on 127.0.0.1, checked against rayon and against
//! `map-reduce`; a process killed mid-run; SIGTERM; bad input.
//!
//! No timing assertions. The runs that must be interrupted mid-run are slowed with `--pace-ms`
//! (seconds of work left when the processes say they are connected), and every wait has a
//! generous hang guard.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const DISTRIBUTED: &str = env!("CARGO_BIN_EXE_map-reduce-distributed");
const MAP_REDUCE: &str = env!("CARGO_BIN_EXE_map-reduce");

/// Generous bound on any run (debug build, shared cores): a hang guard, not a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(180);

/// Waits for `child`, killing it (and failing) past the hang guard.
fn wait_guarded(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the run hung for {HANG_GUARD:?} and was killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run(bin: &str, args: &[&str]) -> Output {
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain both pipes while waiting, so a chatty run never blocks on a full pipe.
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let read_all = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            r.read_to_end(&mut v).unwrap();
            v
        })
    };
    let (out, err) = (read_all(Box::new(out)), read_all(Box::new(err)));
    let status = wait_guarded(&mut child);
    let output = Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    eprintln!("$ {bin} {}", args.join(" "));
    eprintln!("stdout:\n{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("stderr:\n{}", String::from_utf8_lossy(&output.stderr));
    output
}

fn json(bin: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = run(bin, &all);
    assert!(out.status.success(), "{bin} {all:?} failed");
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Every (word, count), from a JSON `top` list long enough to hold them all.
fn all_counts(top: &Value) -> Vec<(String, u64)> {
    top.as_array()
        .unwrap()
        .iter()
        .map(|e| (e[0].as_str().unwrap().to_string(), e[1].as_u64().unwrap()))
        .collect()
}

/// Is `pid` still a process? (`kill(pid, 0)` checks without sending anything.)
fn alive(pid: i32) -> bool {
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a pid we started and have not reaped yet: not a reused pid.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
}

#[test]
fn two_processes_count_exactly_like_rayon_and_map_reduce() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = write(
        dir.path(),
        "corpus.txt",
        &shared::corpus::generate_with_vocabulary(300_000, 3, 20_000),
    );
    let path = corpus.to_str().unwrap();
    let all = ["--top", "1000000"];
    let d = json(
        DISTRIBUTED,
        &[
            path,
            "--processes",
            "2",
            "--workers",
            "1",
            "--range-size",
            "8KiB",
            all[0],
            all[1],
        ],
    );
    assert_eq!(
        d["agrees"], true,
        "merged == rayon (words, distinct, checksum, top)"
    );
    // Both processes read and own a share.
    let shares = d["shares"].as_array().unwrap();
    assert_eq!(shares.len(), 2);
    for s in shares {
        let w = &s["workers"][0];
        assert!(w["bytes_read"].as_u64().unwrap() > 0, "{s}");
        assert!(w["distinct_owned"].as_u64().unwrap() > 0, "{s}");
    }
    // The same counts as map-reduce, word for word: every word is in this `top`.
    let m = json(MAP_REDUCE, &[path, all[0], all[1]]);
    assert_eq!(d["merged"]["words"], m["words"]);
    assert_eq!(d["merged"]["distinct"], m["distinct"]);
    let (dist, single) = (all_counts(&d["merged"]["top"]), all_counts(&m["top"]));
    assert_eq!(dist.len() as u64, m["distinct"].as_u64().unwrap());
    assert_eq!(dist, single, "every (word, count) equal, in the same order");
}

#[test]
fn one_process_with_two_workers_and_edge_case_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut long = b"a ".to_vec();
    long.extend(std::iter::repeat_n(b'z', 40_000)); // one word over many ranges
    long.extend_from_slice(b" b\n");
    let files = [
        write(dir.path(), "empty.txt", b""),
        write(dir.path(), "long-word.txt", &long),
        write(
            dir.path(),
            "utf8.txt",
            "Été été\u{a0}ÉTÉ caf\u{e9} \u{feff}x\n".as_bytes(),
        ),
        write(
            dir.path(),
            "words.txt",
            "alpha beta gamma ".repeat(3000).as_bytes(),
        ),
    ];
    let mut args: Vec<&str> = files.iter().map(|p| p.to_str().unwrap()).collect();
    args.extend([
        "--processes",
        "1",
        "--workers",
        "2",
        "--range-size",
        "1KiB",
        "--top",
        "1000",
    ]);
    let d = json(DISTRIBUTED, &args);
    assert_eq!(d["agrees"], true);
    let mut m_args: Vec<&str> = files.iter().map(|p| p.to_str().unwrap()).collect();
    m_args.extend(["--top", "1000", "--chunk-size", "100"]);
    let m = json(MAP_REDUCE, &m_args);
    assert_eq!(d["merged"]["words"], m["words"]);
    assert_eq!(all_counts(&d["merged"]["top"]), all_counts(&m["top"]));
}

#[test]
fn a_killed_process_fails_the_run_cleanly_and_nothing_is_left_running() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = write(
        dir.path(),
        "corpus.txt",
        &shared::corpus::generate(200_000, 5),
    );
    // 25 ranges of 8 KiB, 12 per process, 400 ms before each: ~5 s of map left when connected.
    let mut launcher = Command::new(DISTRIBUTED)
        .args([
            corpus.to_str().unwrap(),
            "--range-size",
            "8KiB",
            "--pace-ms",
            "400",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(launcher.stderr.take().unwrap()).lines();
    let mut pids = Vec::new();
    let mut connected = 0;
    let mut seen = Vec::new();
    while connected < 2 {
        let line = lines.next().expect("the launcher ended early").unwrap();
        if let Some(rest) = line.strip_prefix("[launcher] started process ") {
            let pid = rest.split("pid ").nth(1).unwrap().trim_end_matches(')');
            pids.push(pid.parse::<i32>().unwrap());
        }
        if line.contains("] connected: process") {
            connected += 1;
        }
        seen.push(line);
    }
    assert_eq!(pids.len(), 2, "{seen:?}");
    signal(pids[1], libc::SIGKILL);
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = wait_guarded(&mut launcher);
    let err = rest.join("\n");
    eprintln!("{}\n{err}", seen.join("\n"));
    assert_eq!(status.code(), Some(1), "{status:?}");
    assert!(
        err.contains("the distributed run failed")
            && err.contains("killed by signal 9 (SIGKILL)")
            && err.contains("lost the connection to another process"),
        "{err}"
    );
    // The killed one is named first (the cause), then the one that stopped because of it.
    let cause = err.find(&format!("process 1 (pid {})", pids[1])).unwrap();
    let effect = err.rfind(&format!("process 0 (pid {})", pids[0])).unwrap();
    assert!(cause < effect, "{err}");
    for pid in pids {
        assert!(!alive(pid), "process {pid} is still running");
    }
}

#[test]
fn sigterm_stops_the_launcher_and_its_processes() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = write(
        dir.path(),
        "corpus.txt",
        &shared::corpus::generate(100_000, 6),
    );
    let mut launcher = Command::new(DISTRIBUTED)
        .args([
            corpus.to_str().unwrap(),
            "--range-size",
            "4KiB",
            "--pace-ms",
            "500",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(launcher.stderr.take().unwrap()).lines();
    let mut pids = Vec::new();
    let mut connected = 0;
    while connected < 2 {
        let line = lines.next().expect("the launcher ended early").unwrap();
        if let Some(rest) = line.strip_prefix("[launcher] started process ") {
            let pid = rest.split("pid ").nth(1).unwrap().trim_end_matches(')');
            pids.push(pid.parse::<i32>().unwrap());
        }
        connected += usize::from(line.contains("] connected: process"));
    }
    signal(launcher.id() as i32, libc::SIGTERM);
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = wait_guarded(&mut launcher);
    assert_eq!(status.code(), Some(130), "{status:?}: {rest:?}");
    assert!(rest.iter().any(|l| l.contains("interrupted")), "{rest:?}");
    for pid in pids {
        assert!(!alive(pid), "process {pid} is still running");
    }
}

#[test]
fn bad_input_fails_the_whole_run_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.txt", b"some words here\n");
    let binary = write(dir.path(), "image.bin", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    let missing = dir.path().join("missing.txt");
    for (bad, expected) in [
        (binary.to_str().unwrap(), "image.bin: a binary file"),
        (missing.to_str().unwrap(), "missing.txt"),
        (dir.path().to_str().unwrap(), "not a regular file"),
    ] {
        let out = run(DISTRIBUTED, &[good.to_str().unwrap(), bad]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(stderr(&out).contains(expected), "{bad}");
        assert!(out.stdout.is_empty(), "no partial report for {bad}");
        assert!(
            !stderr(&out).contains("started process"),
            "fails before starting processes"
        );
    }
    // An empty file has no words: a run, not an error (as with map-reduce and wc).
    let empty = write(dir.path(), "empty.txt", b"");
    let d = json(DISTRIBUTED, &[empty.to_str().unwrap()]);
    assert_eq!(
        (d["merged"]["words"].as_u64(), d["agrees"].as_bool()),
        (Some(0), Some(true))
    );
}

#[test]
fn a_member_whose_peers_never_come_gives_up_after_the_connect_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let text = write(dir.path(), "t.txt", b"a b c\n");
    // Process 1 of 2 connects to process 0, which nobody started: a port with nothing on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hosts = write(
        dir.path(),
        "hosts.txt",
        format!("127.0.0.1:{port}\n127.0.0.1:{free}\n").as_bytes(),
    );
    let out = run(
        DISTRIBUTED,
        &[
            text.to_str().unwrap(),
            "--process",
            "1",
            "--hostfile",
            hosts.to_str().unwrap(),
            "--connect-timeout",
            "2",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{:?}", out.status);
    assert!(
        stderr(&out).contains("did not all connect within 2"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_scaling_table_checks_every_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = write(dir.path(), "c.txt", &shared::corpus::generate(150_000, 8));
    let v = json(
        DISTRIBUTED,
        &[
            corpus.to_str().unwrap(),
            "--scaling",
            "--range-size",
            "4KiB",
        ],
    );
    assert_eq!(v["agrees"], true);
    let rows = v["rows"].as_array().unwrap();
    let shapes: Vec<(u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["processes"].as_u64().unwrap(),
                r["workers"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(shapes, [(1, 1), (1, 2), (2, 1), (2, 2)]);
}

#[test]
fn numeric_flags_refuse_hostile_values() {
    for (flag, value) in [
        ("--processes", "0"),
        ("--processes", "1e30"),
        ("--workers", "-1"),
        ("--range-size", "NaN"),
        ("--pace-ms", "18446744073709551615"),
        ("--connect-timeout", "inf"),
    ] {
        let out = run(DISTRIBUTED, &[&format!("{flag}={value}")]);
        assert_eq!(out.status.code(), Some(2), "{flag}={value}");
    }
    // A cluster member needs its hostfile, and the other way round.
    assert_eq!(run(DISTRIBUTED, &["--process", "0"]).status.code(), Some(2));
}
