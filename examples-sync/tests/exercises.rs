//! The exercises of examples-sync, checked: each learner file, reference solution and
//! plausible wrong solution is compiled with the exercise's checks (see `shared::exercise!`).
//!
//! `cargo test -p examples-sync --test exercises` runs the stress checks;
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p examples-sync --release
//! --test exercises` runs the loom models of the exercises that have one. Both prove the checks
//! check: every reference solution passes and every wrong solution is rejected.

shared::exercise!(ex01_lock_ordering in "01-lock-ordering", loom, wrong: [source_then_destination, one_lock_at_a_time, same_account_twice]);
shared::exercise!(ex02_event in "02-event", loom, wrong: [notify_one, check_then_wait]);
shared::exercise!(ex03_bounded_queue in "03-bounded-queue", loom, wrong: [one_condvar_notify_one, if_instead_of_while]);
shared::exercise!(ex04_semaphore_timeout in "04-semaphore-timeout", loom, wrong: [if_instead_of_while, deadline_overflow]);
shared::exercise!(ex05_fair_lock in "05-fair-lock", loom, wrong: [notify_one, if_instead_of_while, notify_before_serving]);
shared::exercise!(ex06_writer_first_rwlock in "06-writer-first-rwlock", loom, wrong: [reader_preference, notify_one_reader, last_reader_forgets_writer]);
