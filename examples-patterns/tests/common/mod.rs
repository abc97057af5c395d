//! What the end-to-end tests of examples-patterns share: run a real binary with a hang guard,
//! and stop one with a signal the way `docker stop` or Ctrl-C would.
//!
//! Hang guards only: a binary still running long after it should have ended is killed and the
//! test fails. No test here asserts how long anything took.

#![allow(dead_code, clippy::unwrap_used)] // each test file uses its own part of this module

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a run may take before it counts as hung (debug build, cores shared with other builds).
pub const HANG_BOUND: Duration = Duration::from_secs(120);

/// Runs `bin args` to completion; kills it and fails if it runs past [`HANG_BOUND`].
pub fn run(bin: &str, args: &[&str]) -> Output {
    let out = wait_guarded(spawn(bin, args), bin, args);
    eprintln!("$ {bin} {}", args.join(" "));
    eprintln!("stdout:\n{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Starts `bin args` with no stdin and both outputs piped.
fn spawn(bin: &str, args: &[&str]) -> Child {
    Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"))
}

/// Runs with `--json`, expects success, parses the one JSON object on stdout.
pub fn json(bin: &str, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = run(bin, &all);
    assert!(out.status.success(), "{bin} {all:?} failed");
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

/// A bad flag value is refused by the command line: exit status 2 and a message that names the
/// flag, never a panic (101), a crash or a hang.
pub fn assert_refused(bin: &str, flag: &str, value: &str, base: &[&str]) {
    let arg = format!("{flag}={value}");
    let mut args = base.to_vec();
    args.push(&arg);
    let out = run(bin, &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{bin} {arg}: expected a usage error (exit 2), got {:?}; stderr: {err}",
        out.status
    );
    assert!(!err.contains("panicked"), "{bin} {arg}: {err}");
    assert!(
        err.contains(flag),
        "{bin} {arg}: the message does not name {flag}: {err}"
    );
}

/// Kills a process that is still running [`HANG_BOUND`] after the guard was armed.
struct HangGuard {
    done: mpsc::Sender<()>,
    killer: std::thread::JoinHandle<bool>,
}

impl HangGuard {
    fn arm(pid: u32) -> HangGuard {
        let (done, done_rx) = mpsc::channel::<()>();
        let killer = std::thread::spawn(move || {
            if done_rx.recv_timeout(HANG_BOUND).is_err() {
                // SIGKILL by pid: the child is not reaped yet, so the pid cannot be reused.
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                return true;
            }
            false
        });
        HangGuard { done, killer }
    }

    /// Call once the process has exited; `true` if the guard had to kill it.
    fn disarm(self) -> bool {
        let _ = self.done.send(());
        self.killer.join().unwrap()
    }
}

/// Waits for `child` with the hang guard, collecting its output.
fn wait_guarded(child: Child, bin: &str, args: &[&str]) -> Output {
    let guard = HangGuard::arm(child.id());
    let out = child.wait_with_output().unwrap();
    assert!(
        !guard.disarm(),
        "{bin} {args:?} hung for {HANG_BOUND:?} and was killed"
    );
    out
}

/// A running binary whose stdout is read line by line, so a test can wait for it to be under
/// way before signalling it.
pub struct Running {
    child: Child,
    /// Armed at start: a run that never prints what a test waits for is killed, not waited on.
    guard: HangGuard,
    stdout: BufReader<std::process::ChildStdout>,
    /// Every stdout line read so far.
    pub seen: String,
}

impl Running {
    pub fn start(bin: &str, args: &[&str]) -> Running {
        let mut child = spawn(bin, args);
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Running {
            guard: HangGuard::arm(child.id()),
            child,
            stdout,
            seen: String::new(),
        }
    }

    /// Reads stdout until a line containing `needle` (the program printed it, so it is past
    /// that point); fails if stdout ends first.
    pub fn wait_for_line(&mut self, needle: &str) {
        loop {
            let mut line = String::new();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(
                n > 0,
                "stdout ended before a line containing {needle:?}: {}",
                self.seen
            );
            self.seen.push_str(&line);
            if line.contains(needle) {
                return;
            }
        }
    }

    /// Sends `signal` (`TERM`, `INT`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the exit (hang guard), returns the status, the whole stdout and stderr.
    pub fn finish(mut self) -> (ExitStatus, String, String) {
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        self.seen.push_str(&rest);
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_string(&mut stderr).unwrap();
        }
        let status = self.child.wait().unwrap();
        assert!(
            !self.guard.disarm(),
            "the signalled binary hung and was killed"
        );
        eprintln!("stdout:\n{}\nstderr:\n{stderr}", self.seen);
        (status, self.seen, stderr)
    }
}
