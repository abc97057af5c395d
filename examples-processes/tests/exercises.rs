//! The exercises of examples-processes, checked: each learner file, reference solution and
//! plausible wrong solution is compiled with the exercise's checks (see `shared::exercise!`).
//!
//! `cargo test -p examples-processes --test exercises` proves the checks check: every reference
//! solution passes and every wrong solution is rejected. Workers are small `sh` scripts. The
//! learner's own files are the ignored `…::check` tests: `cargo run -p shared --bin exercises --
//! list processes` shows their status.

shared::exercise!(ex01_exit_status in "01-exit-status", wrong: [code_or_minus_one, shell_convention, raw_bits]);
shared::exercise!(ex02_feed_stdin in "02-feed-stdin", wrong: [write_all_then_read, stdin_never_closed, broken_pipe_is_an_error]);
shared::exercise!(ex03_task_timeout in "03-task-timeout", wrong: [kill_without_wait, sigterm_then_wait, one_at_a_time]);
shared::exercise!(ex04_crash_tolerant_map in "04-crash-tolerant-map", wrong: [skip_crashed_task, restart_whole_share]);
shared::exercise!(ex05_as_completed in "05-as-completed", wrong: [spawn_all, wait_in_order, batches]);
shared::exercise!(ex06_shared_counters in "06-shared-counters", support, wrong: [load_then_store, never_unlinked, unlinked_before_ready, unlinked_at_the_end, leaked_on_error]);
