//! End-to-end tests of the pattern examples: each real binary with small flags, checking its
//! output, its exit code and the invariant it prints. No timing assertions.
#![allow(clippy::unwrap_used)]

mod common;

use common::{json, run};
use std::path::Path;

const PRODUCER_CONSUMER: &str = env!("CARGO_BIN_EXE_producer-consumer");
const WORKER_POOL: &str = env!("CARGO_BIN_EXE_worker-pool");
const PIPELINE: &str = env!("CARGO_BIN_EXE_pipeline");
const CIRCUIT_BREAKER: &str = env!("CARGO_BIN_EXE_circuit-breaker");
const ACTOR: &str = env!("CARGO_BIN_EXE_actor");
const RATE_LIMITER: &str = env!("CARGO_BIN_EXE_rate-limiter");

#[test]
fn every_binary_has_help() {
    for bin in [
        PRODUCER_CONSUMER,
        WORKER_POOL,
        PIPELINE,
        CIRCUIT_BREAKER,
        ACTOR,
        RATE_LIMITER,
    ] {
        let out = run(bin, &["--help"]);
        assert!(out.status.success(), "{bin} --help");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"));
    }
}

#[test]
fn producer_consumer_conserves_items() {
    let v = json(
        PRODUCER_CONSUMER,
        &[
            "--items",
            "200",
            "--produce-rate",
            "0",
            "--consume-rate",
            "0",
        ],
    );
    assert_eq!(v["exactly_once"], true);
    assert_eq!(v["check"]["consumed"], 400);
    assert_eq!(v["check"]["duplicates"], 0);
    // Early stop with a slow consumer: the queue is drained, still exactly once.
    let v = json(
        PRODUCER_CONSUMER,
        &[
            "--items",
            "1000000",
            "--consume-rate",
            "2000",
            "--stop-after",
            "0.3",
            "--capacity",
            "100",
        ],
    );
    assert_eq!(v["stopped_early"], true);
    assert_eq!(v["exactly_once"], true);
    assert_eq!(v["check"]["produced"], v["check"]["consumed"]);
}

#[test]
fn producer_consumer_text_output_names_the_check() {
    let out = run(
        PRODUCER_CONSUMER,
        &["--items", "100", "--produce-rate", "0"],
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("every item consumed exactly once"), "{text}");
    assert!(text.contains("bottleneck:"));
}

#[test]
fn worker_pool_accounts_for_every_order() {
    let v = json(WORKER_POOL, &["--orders", "60", "--rate", "1000"]);
    assert_eq!(v["accounted"], true);
    assert_eq!(v["double_charges"], 0);
    assert_eq!(v["mails_match_completed"], true);
    assert_eq!(v["submitted"], 60);
    assert_eq!(v["not_processed"], 0);
    assert!(
        v["failed_validate"].as_u64().unwrap() > 0,
        "the seeded orders include invalid ones"
    );
}

#[test]
fn worker_pool_graceful_stop_reports_unprocessed_orders() {
    // One slow worker, fast arrivals, stop early: orders are left in the queue and reported.
    let v = json(
        WORKER_POOL,
        &[
            "--orders",
            "400",
            "--rate",
            "2000",
            "--workers",
            "1",
            "--stop-after",
            "0.3",
        ],
    );
    assert_eq!(v["stopped_early"], true);
    assert_eq!(v["accounted"], true);
    assert!(v["not_processed"].as_u64().unwrap() > 0);
    assert_eq!(v["mails_match_completed"], true);
}

#[test]
fn pipeline_conserves_counts_and_writes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.csv");
    let v = json(
        PIPELINE,
        &[
            "--files",
            "30",
            "--rows",
            "20",
            "--read-us",
            "0",
            "--transform-us",
            "0",
            "--readers",
            "2",
            "--transformers",
            "3",
            "--out",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(v["ok"], true);
    assert_eq!(v["rows"], 600);
    for stage in v["stages"].as_array().unwrap() {
        assert_eq!(stage["items_in"], 30, "{stage}");
        assert_eq!(stage["items_out"], 30, "{stage}");
    }
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(text.starts_with("region,product,rows,qty,revenue_eur,large_orders\n"));
    let rows: u64 = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(rows, 600, "every parsed row is in the report");
}

#[test]
fn pipeline_stage_panic_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.csv");
    let out = run(
        PIPELINE,
        &[
            "--files",
            "60",
            "--rows",
            "10",
            "--read-us",
            "0",
            "--transform-us",
            "0",
            "--panic-at",
            "5",
            "--out",
            report.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("panicked") && err.contains("sales-0005.csv"),
        "{err}"
    );
    assert!(!report.exists(), "no report after a failed run");
}

#[test]
fn pipeline_stage_error_names_the_file() {
    let out = run(
        PIPELINE,
        &[
            "--files",
            "20",
            "--rows",
            "10",
            "--read-us",
            "0",
            "--fail-at",
            "3",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stage parse failed") && err.contains("sales-0003.csv"),
        "{err}"
    );
}

#[test]
fn circuit_breaker_opens_during_the_outage_and_fails_fast() {
    let v = json(
        CIRCUIT_BREAKER,
        &[
            "--rate",
            "100",
            "--duration",
            "1.5",
            "--outage-start",
            "0.2",
            "--outage-len",
            "0.6",
            "--timeout-ms",
            "100",
            "--cool-down-ms",
            "100",
        ],
    );
    let (without, with) = (&v["without"], &v["with"]);
    assert_eq!(without["rejected"], 0, "no breaker, no rejection");
    assert!(
        without["failed"].as_u64().unwrap() >= 5,
        "the outage causes failures"
    );
    assert!(
        with["rejected"].as_u64().unwrap() > 0,
        "the breaker failed some calls fast"
    );
    let to: Vec<&str> = with["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap())
        .collect();
    assert_eq!(to.first(), Some(&"open"), "{to:?}");
    assert!(to.contains(&"half-open"), "{to:?}");
    for r in [without, with] {
        let n = r["ok"].as_u64().unwrap()
            + r["failed"].as_u64().unwrap()
            + r["rejected"].as_u64().unwrap();
        assert_eq!(
            r["requests"].as_u64().unwrap(),
            n,
            "every request has one outcome"
        );
    }
}

#[test]
fn actor_never_oversells() {
    let v = json(ACTOR, &["--customers", "400", "--stock", "50"]);
    assert_eq!(v["conserved"], true);
    assert!(
        v["rejected"].as_u64().unwrap() > 0,
        "stock is short: some are refused"
    );
    assert_eq!(
        v["granted"].as_u64().unwrap() + v["rejected"].as_u64().unwrap(),
        400,
        "one answer per customer"
    );
}

#[test]
fn rate_limiter_never_exceeds_its_budget() {
    let v = json(
        RATE_LIMITER,
        &["--duration", "0.5", "--rate", "40", "--burst", "5"],
    );
    let calls = v["calls"].as_f64().unwrap();
    assert!(calls <= v["max_allowed"].as_f64().unwrap() + 1.0, "{v}");
    assert!(v["accepted"].as_u64().unwrap() > 0 && v["rejected"].as_u64().unwrap() > 0);
}

#[test]
fn readme_lists_every_binary() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    for bin in [
        "compare",
        "producer-consumer",
        "worker-pool",
        "pipeline",
        "map-reduce",
        "circuit-breaker",
        "actor",
        "rate-limiter",
    ] {
        assert!(
            readme.contains(&format!("`{bin}`")),
            "README.md does not list {bin}"
        );
    }
}
