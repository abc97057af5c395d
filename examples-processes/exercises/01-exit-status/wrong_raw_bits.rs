// A plausible wrong solution of processes/01: the raw wait(2) status decoded by hand, the way
// half-remembered C does it: low byte zero means an exit (code in the next byte), otherwise the
// low byte is the signal. It forgets that bit 7 of the low byte means "core dumped": a SIGSEGV
// that dumps core (raw 0x8b) reads as signal 139. Right for every signal that dumps no core, so
// it passes `kill -KILL` and `kill -TERM` and fails in production, on the crash that matters.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

pub fn describe(status: ExitStatus) -> String {
    let raw = status.into_raw();
    if raw & 0xff == 0 {
        format!("exited with code {}", (raw >> 8) & 0xff)
    } else {
        let signal = raw & 0xff;
        format!("killed by signal {signal} ({})", signal_name(signal))
    }
}

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
