//! End-to-end: rate-limiter refuses bad numbers with a usage error (exit 2), never a panic.

mod common;

use common::{assert_refused, run};

const RATE_LIMITER: &str = env!("CARGO_BIN_EXE_rate-limiter");

#[test]
fn rate_limiter_refuses_bad_numbers() {
    let base = ["--duration", "0.2"];
    // Before: `--rate 0` was a runtime error (exit 1), `--duration NaN` and `-1` panicked.
    for value in ["0", "-1", "NaN", "inf"] {
        assert_refused(RATE_LIMITER, "--rate", value, &base);
    }
    for value in ["-1", "NaN", "inf", "1e30"] {
        assert_refused(RATE_LIMITER, "--duration", value, &[]);
    }
    for flag in ["--burst", "--clients", "--window-ms"] {
        assert_refused(RATE_LIMITER, flag, "0", &base);
        assert_refused(RATE_LIMITER, flag, "18446744073709551615", &base);
    }
}

#[test]
fn rate_limiter_refuses_a_timeline_too_long_to_print() {
    // One line per window: a 1 ms window over an hour would print 3.6 million lines.
    let out = run(RATE_LIMITER, &["--duration", "3600", "--window-ms", "1"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("windows"));
}
