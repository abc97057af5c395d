// Exercise processes/01 — How did the child end: an exit code, or a signal?
//
// Concept: on Unix a process ends in one of two ways. It exits with a code (`exit 3`, returning
// from `main`; only the low 8 bits survive, so `exit 300` is 44), or a signal ends it (SIGKILL
// from `kill -9` or the OOM killer, SIGSEGV on a bad pointer, SIGABRT from `abort()`). A signal
// death has no exit code at all: `status.code()` is `None`, and `status.signal()` (from
// `std::os::unix::process::ExitStatusExt`) says which signal. Python's `returncode` folds both
// into one int (negative for a signal); shells print 128 + the signal number. A supervisor that
// cannot tell "exited with 137" from "killed by SIGKILL" restarts an OOM-killed worker as if it
// had failed cleanly, or the other way round.
//
// Goal: write `describe(status)`: "exited with code N" for an exit, "killed by signal N (NAME)"
// for a signal death, with NAME from `signal_name` (given). It is what `spawn-process`'s
// `mod status` does, and what `process-pool` prints for every dead worker.
//
// Hint: ask `status.code()` first; when it is `None`, `status.signal()`. Never invent a code
// for a signal, and do not decode the raw wait(2) status by hand: the high bit of its low byte
// says "core dumped", not "signal 128 + n".
//
// Checked by: real children (`sh -c 'exit 3'`, `kill -KILL $$`, `exit 300`, …) and raw wait(2)
// statuses (a core dump, an exit code of 137), each compared with the exact expected words.
// The checks are deterministic: every wrong solution is caught on every run (20/20).
// Run: cargo run -p shared --bin exercises -- check processes/01

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// "exited with code 3", "killed by signal 9 (SIGKILL)".
pub fn describe(status: ExitStatus) -> String {
    todo!("an exit code (status.code()) or a signal (status.signal())?")
}

/// The usual name of the signals that end workers.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        _ => "?",
    }
}
