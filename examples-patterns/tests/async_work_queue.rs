//! End-to-end: async-work-queue handles every job once with any worker count and capacity,
//! refuses bad numbers with a usage error, and stops on SIGTERM like on Ctrl-C.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Running, assert_refused, json};

const QUEUE: &str = env!("CARGO_BIN_EXE_async-work-queue");

#[test]
fn every_job_is_handled_once_and_join_returns_before_the_workers_end() {
    for (workers, capacity) in [("1", "1"), ("5", "2"), ("64", "1000")] {
        let v = json(
            QUEUE,
            &[
                "--jobs",
                "150",
                "--workers",
                workers,
                "--capacity",
                capacity,
                "--job-ms",
                "0",
            ],
        );
        assert_eq!(v["exactly_once"], true, "{v}");
        assert_eq!(v["handled"], 150);
        let per: u64 = v["per_worker"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(per, 150, "{v}");
        assert!(
            v["joined_s"].as_f64().unwrap() <= v["wall_s"].as_f64().unwrap(),
            "{v}"
        );
    }
    let v = json(QUEUE, &["--jobs", "0"]);
    assert_eq!(
        (v["handled"].as_u64(), v["exactly_once"].as_bool()),
        (Some(0), Some(true))
    );
}

#[test]
fn bad_numbers_are_refused() {
    for flag in ["--workers", "--capacity"] {
        assert_refused(QUEUE, flag, "0", &[]);
    }
    for value in ["-1", "NaN", "18446744073709551615"] {
        assert_refused(QUEUE, "--job-ms", value, &[]);
        assert_refused(QUEUE, "--jobs", value, &[]);
    }
}

#[test]
fn sigterm_stops_it_like_ctrl_c() {
    let mut run = Running::start(QUEUE, &["--jobs", "1000000", "--job-ms", "1000"]);
    run.wait_for_line("worker tasks");
    run.signal("TERM");
    let (status, _stdout, stderr) = run.finish();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
}
