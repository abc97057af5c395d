//! End-to-end: circuit-breaker refuses bad numbers, bounds its work whatever the flags, and can
//! be pointed at a real address (here a dead port: every call fails fast, the breaker opens).
#![allow(clippy::unwrap_used)]

mod common;

use common::{assert_refused, json};

const CIRCUIT_BREAKER: &str = env!("CARGO_BIN_EXE_circuit-breaker");

#[test]
fn circuit_breaker_refuses_bad_numbers() {
    // Before the fix each of these panicked (exit 101) in `Duration::from_secs_f64`.
    let base = ["--duration", "0.3"];
    for value in ["0", "-1", "NaN"] {
        assert_refused(CIRCUIT_BREAKER, "--rate", value, &base);
    }
    for value in ["-1", "NaN"] {
        assert_refused(CIRCUIT_BREAKER, "--duration", value, &[]);
    }
    assert_refused(CIRCUIT_BREAKER, "--outage-len", "-1", &base);
    assert_refused(CIRCUIT_BREAKER, "--outage-start", "NaN", &base);
}

#[test]
fn circuit_breaker_refuses_a_rate_it_cannot_keep() {
    // Before the fix, `--rate 1e9 --duration 0.5` ran for more than 30 s and grew to 550 MB:
    // one task per tick, as fast as the loop could spawn them. The rate is now capped.
    assert_refused(CIRCUIT_BREAKER, "--rate", "1e9", &["--duration", "0.5"]);
}

#[test]
fn circuit_breaker_at_its_highest_rate_stays_bounded() {
    // The highest accepted rate, with every call hanging until its timeout: the in-flight cap
    // sheds what does not fit instead of piling up tasks, and every arrival has one outcome.
    let v = json(
        CIRCUIT_BREAKER,
        &[
            "--rate",
            "5000",
            "--duration",
            "0.5",
            "--outage-start",
            "0",
            "--outage-len",
            "1",
            "--timeout-ms",
            "1000",
            "--max-in-flight",
            "100",
        ],
    );
    for run in ["without", "with"] {
        let r = &v[run];
        let n = ["ok", "failed", "rejected", "shed"]
            .iter()
            .map(|k| r[k].as_u64().unwrap_or_else(|| panic!("{run}.{k}: {r}")))
            .sum::<u64>();
        assert_eq!(r["requests"].as_u64(), Some(n), "{run}: {r}");
        assert!(r["max_in_flight"].as_u64().unwrap() <= 100, "{run}: {r}");
    }
    assert!(v["without"]["shed"].as_u64().unwrap() > 0, "{v}");
    assert!(
        v["peak_rss_kib"].as_u64().unwrap() < 300 * 1024,
        "memory is bounded by the in-flight cap: {v}"
    );
}

#[test]
fn circuit_breaker_against_a_dead_port_fails_fast_and_opens() {
    // A port nobody listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let target = format!("http://127.0.0.1:{port}/health");
    let v = json(
        CIRCUIT_BREAKER,
        &[
            "--target",
            &target,
            "--rate",
            "100",
            "--duration",
            "0.5",
            "--threshold",
            "3",
        ],
    );
    let (without, with) = (&v["without"], &v["with"]);
    assert_eq!(without["ok"], 0, "{without}");
    assert_eq!(
        without["failed"], without["requests"],
        "every call fails: {without}"
    );
    assert_eq!(with["ok"], 0, "{with}");
    assert!(with["rejected"].as_u64().unwrap() > 0, "{with}");
    assert_eq!(
        with["transitions"][0]["to"], "open",
        "the breaker opens: {with}"
    );
    assert_eq!(v["target"], target.as_str());
}
