// A plausible wrong solution of processes/01: the shell's convention, 128 + the signal number,
// as an exit code. SIGKILL becomes "exited with code 137", which is also what a program that
// really calls `exit(137)` gives: the two cannot be told apart any more.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

pub fn describe(status: ExitStatus) -> String {
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    format!("exited with code {code}")
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
