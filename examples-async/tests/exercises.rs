//! The exercises of examples-async, checked: each learner file, reference solution and
//! plausible wrong solution is compiled with the exercise's checks (see `shared::exercise!`).
//!
//! `cargo test -p examples-async --test exercises` proves the checks check: every reference
//! solution passes and every wrong solution is rejected. Every check runs on tokio's paused
//! clock, so timing properties ("the time is the slowest page, not the sum") are exact and never
//! depend on the machine. The learner's own files are the ignored `…::check` tests:
//! `cargo run -p shared --bin exercises -- list async` shows their status.

shared::exercise!(ex01_join_fetches in "01-join-fetches", support, wrong: [sequential, futures_are_lazy]);
shared::exercise!(ex02_timeout_cleanup in "02-timeout-cleanup", support, wrong: [count_out_after_await, count_out_after_timeout]);
shared::exercise!(ex03_task_group in "03-task-group", support, wrong: [wait_for_all, no_drain, in_order]);
shared::exercise!(ex04_rate_limit in "04-rate-limit", wrong: [one_bucket, lock_across_sleep, no_burst_cap]);
shared::exercise!(ex05_crawler in "05-crawler", support, wrong: [unbounded, visited_after_fetch]);
shared::exercise!(ex06_chat_rooms in "06-chat-rooms", wrong: [broadcast_to_all, echo_to_sender, rooms_never_removed]);
