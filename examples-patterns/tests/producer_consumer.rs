//! End-to-end: producer-consumer refuses bad numbers, and stops cleanly on SIGTERM (what
//! `docker stop` and systemd send) exactly as on Ctrl-C: producers stop, the queue is drained,
//! every item is still consumed exactly once.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Running, assert_refused};

const PRODUCER_CONSUMER: &str = env!("CARGO_BIN_EXE_producer-consumer");

#[test]
fn producer_consumer_refuses_bad_numbers() {
    // Before: `--stop-after -1` panicked, `--produce-rate NaN` silently meant "max speed",
    // `--items 18446744073709551615` ran for ever.
    let base = ["--items", "10"];
    for value in ["-1", "NaN", "inf", "1e30"] {
        assert_refused(PRODUCER_CONSUMER, "--stop-after", value, &base);
        assert_refused(PRODUCER_CONSUMER, "--produce-rate", value, &base);
        assert_refused(PRODUCER_CONSUMER, "--consume-rate", value, &base);
    }
    for flag in ["--producers", "--consumers", "--capacity"] {
        assert_refused(PRODUCER_CONSUMER, flag, "0", &base);
        assert_refused(PRODUCER_CONSUMER, flag, "18446744073709551615", &base);
    }
    assert_refused(PRODUCER_CONSUMER, "--items", "18446744073709551615", &[]);
}

#[test]
fn producer_consumer_stops_cleanly_on_sigterm() {
    let mut run = Running::start(
        PRODUCER_CONSUMER,
        &["--items", "100000000", "--consume-rate", "2000"],
    );
    run.wait_for_line("queue capacity");
    run.signal("TERM");
    let (status, stdout, stderr) = run.finish();
    assert!(status.success(), "exit {status:?}; stderr: {stderr}");
    assert!(stdout.contains("stopped early"), "{stdout}");
    assert!(
        stdout.contains("every item consumed exactly once"),
        "{stdout}"
    );
}

#[test]
fn producer_consumer_stops_on_sigterm_even_at_a_slow_rate() {
    // One item every 1000 s per producer: the pacing sleep must not hold up the stop.
    let mut run = Running::start(PRODUCER_CONSUMER, &["--produce-rate", "0.001"]);
    run.wait_for_line("queue capacity");
    run.signal("TERM");
    let (status, stdout, stderr) = run.finish();
    assert!(status.success(), "exit {status:?}; stderr: {stderr}");
    assert!(
        stdout.contains("every item consumed exactly once"),
        "{stdout}"
    );
}
