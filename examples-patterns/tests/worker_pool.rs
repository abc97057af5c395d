//! End-to-end: worker-pool refuses bad numbers instead of panicking or hanging, and stops
//! cleanly on SIGTERM (what `docker stop` and systemd send) exactly as on Ctrl-C.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Running, assert_refused, json};

const WORKER_POOL: &str = env!("CARGO_BIN_EXE_worker-pool");

#[test]
fn worker_pool_refuses_bad_numbers_without_panic_or_hang() {
    // Before the fix: `--rate 0`, `NaN` and `-1` panicked in the main thread and the process
    // then hung forever (the monitor thread never learnt the run was over); `--stop-after`
    // `-1`, `NaN` and `1e30` panicked; `--fail-rate 2`, `-1` and `--max-attempts 0` ran.
    let base = ["--orders", "20"];
    for value in ["0", "NaN", "-1", "inf"] {
        assert_refused(WORKER_POOL, "--rate", value, &base);
    }
    for value in ["-1", "NaN", "1e30", "inf"] {
        assert_refused(WORKER_POOL, "--stop-after", value, &base);
    }
    for value in ["2", "-1", "NaN"] {
        assert_refused(WORKER_POOL, "--fail-rate", value, &base);
    }
    assert_refused(WORKER_POOL, "--max-attempts", "0", &base);
    for flag in ["--workers", "--queue", "--orders"] {
        assert_refused(WORKER_POOL, flag, "18446744073709551615", &[]);
    }
}

#[test]
fn worker_pool_bounds_are_usable() {
    // The edges of the accepted ranges run and balance their books.
    let v = json(
        WORKER_POOL,
        &[
            "--orders",
            "10",
            "--rate",
            "1000",
            "--fail-rate",
            "1",
            "--max-attempts",
            "1",
            "--stop-after",
            "0",
        ],
    );
    assert_eq!(v["accounted"], true, "{v}");
    assert_eq!(v["double_charges"], 0, "{v}");
}

/// Starts worker-pool with `args`, sends SIGTERM once it runs, and checks the Ctrl-C path was
/// taken: exit 0, no panic, every order accounted for, nobody charged twice.
fn stops_cleanly_on_sigterm(args: &[&str]) {
    let mut run = Running::start(WORKER_POOL, args);
    run.wait_for_line("orders at");
    run.signal("TERM");
    let (status, stdout, stderr) = run.finish();
    assert!(status.success(), "exit {status:?}; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stdout.contains("every order accounted for: yes"),
        "{stdout}"
    );
    assert!(stdout.contains("charged twice: 0"), "{stdout}");
}

#[test]
fn worker_pool_stops_cleanly_on_sigterm() {
    // Many slow orders: the run would last minutes. SIGTERM must take the Ctrl-C path: stop
    // taking orders, finish the ones in the workers' hands, report the rest, exit 0.
    stops_cleanly_on_sigterm(&["--orders", "100000", "--rate", "200", "--workers", "2"]);
}

#[test]
fn worker_pool_stops_on_sigterm_even_between_slow_orders() {
    // The slowest accepted rate, one order every 10 s: the storefront notices the stop while it
    // waits for the next order (it used to sleep the whole interval first).
    stops_cleanly_on_sigterm(&["--orders", "5", "--rate", "0.1"]);
}
