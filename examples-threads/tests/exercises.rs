//! The exercises of examples-threads, checked: each learner file, reference solution and
//! plausible wrong solution is compiled with the exercise's checks (see `shared::exercise!`).
//!
//! `cargo test -p examples-threads --test exercises` proves the checks check: every reference
//! solution passes and every wrong solution is rejected. The learner's own files are the ignored
//! `…::check` tests: `cargo run -p shared --bin exercises -- list` shows their status.

shared::exercise!(ex02_work_queue in "02-work-queue", wrong: [load_then_store, static_chunks]);
