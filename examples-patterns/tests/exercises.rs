//! The exercises of examples-patterns, checked: each learner file, reference solution and
//! plausible wrong solution is compiled with the exercise's checks (see `shared::exercise!`).
//!
//! `cargo test -p examples-patterns --test exercises` proves the checks check: every reference
//! solution passes and every wrong solution is rejected. The learner's own files are the ignored
//! `…::check` tests: `cargo run -p shared --bin exercises -- list patterns` shows their status.

shared::exercise!(ex01_close_the_channel in "01-close-the-channel", wrong: [stop_when_empty, sender_kept]);
shared::exercise!(ex02_bounded_stage in "02-bounded-stage", wrong: [unbounded_output, collect_then_send]);
shared::exercise!(ex03_probe_budget in "03-probe-budget", wrong: [no_drop_guard, no_probe_limit, late_result_frees_slot]);
shared::exercise!(ex04_shuffle in "04-shuffle", wrong: [random_state, round_robin, merge_overwrites]);
shared::exercise!(ex05_idempotent_charge in "05-idempotent-charge", wrong: [check_then_charge, no_release_on_failure, no_release_on_panic]);
shared::exercise!(ex06_inventory_actor in "06-inventory-actor", support, wrong: [shared_mutex, actor_keeps_a_sender, awaits_in_the_loop]);
shared::exercise!(ex07_fifo_token_bucket in "07-fifo-token-bucket", wrong: [check_then_sleep, fixed_tick_refill, integer_refill]);
