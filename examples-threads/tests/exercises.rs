//! The exercises of examples-threads, checked: each learner file, reference solution and
//! plausible wrong solution is compiled with the exercise's checks (see `shared::exercise!`).
//!
//! `cargo test -p examples-threads --test exercises` proves the checks check: every reference
//! solution passes and every wrong solution is rejected. The learner's own files are the ignored
//! `…::check` tests: `cargo run -p shared --bin exercises -- list` shows their status.

shared::exercise!(ex01_scoped_sum in "01-scoped-sum", wrong: [remainder_dropped, one_thread_too_many]);
shared::exercise!(ex02_work_queue in "02-work-queue", wrong: [load_then_store, static_chunks]);
shared::exercise!(ex03_execute_with_result in "03-execute-with-result", wrong: [panic_lost, rendezvous, thread_per_call]);
shared::exercise!(ex04_per_host_limit in "04-per-host-limit", wrong: [check_then_increment, global_limit]);
shared::exercise!(ex05_weighted_budget in "05-weighted-budget", wrong: [notify_one, if_not_while, no_clamp]);
shared::exercise!(ex06_stop_and_drain in "06-stop-and-drain", wrong: [return_on_stop, try_recv_spin, closed_channel_ignored, drain_with_for, drain_until_empty]);
