//! The exercises of examples-sync, checked: each learner file, reference solution and
//! plausible wrong solution is compiled with the exercise's checks (see `shared::exercise!`).
//!
//! `cargo test -p examples-sync --test exercises` runs the stress checks;
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p examples-sync --release
//! --test exercises` runs the loom models of the exercises that have one. Both prove the checks
//! check: every reference solution passes and every wrong solution is rejected.

shared::exercise!(ex03_bounded_queue in "03-bounded-queue", loom, wrong: [one_condvar_notify_one, if_instead_of_while]);
