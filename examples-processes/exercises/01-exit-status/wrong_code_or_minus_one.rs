// A plausible wrong solution of processes/01: every ending becomes a code, -1 when there is
// none (Python's habit of one integer). A worker killed by SIGKILL reads "exited with code -1":
// the signal, the one fact that explains the death, is gone. Passes every test that only
// tries `exit N`.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

pub fn describe(status: ExitStatus) -> String {
    format!("exited with code {}", status.code().unwrap_or(-1))
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
