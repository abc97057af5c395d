//! End-to-end: actor refuses bad numbers with a usage error instead of a runtime error or a
//! panic (a stock near `u32::MAX` overflowed on the first restock).

mod common;

use common::assert_refused;

const ACTOR: &str = env!("CARGO_BIN_EXE_actor");

#[test]
fn actor_refuses_bad_numbers() {
    let base = ["--customers", "100"];
    for value in ["0", "18446744073709551615"] {
        assert_refused(ACTOR, "--mailbox", value, &base);
    }
    // Before: accepted, and the 50th customer's restock overflowed the u32 stock (a panic in
    // a debug build, a silently wrapped stock in a release build).
    assert_refused(ACTOR, "--stock", "4294967295", &base);
    assert_refused(ACTOR, "--customers", "18446744073709551615", &[]);
}
