// Reference solution of processes/01 (see exercise.rs for the statement).

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// "exited with code 3", "killed by signal 9 (SIGKILL)".
pub fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with code {code}");
    }
    match status.signal() {
        Some(signal) => format!("killed by signal {signal} ({})", signal_name(signal)),
        // Stopped or continued (only with WUNTRACED/WCONTINUED, which `wait` never asks for).
        None => "ended without a code or a signal".into(),
    }
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
