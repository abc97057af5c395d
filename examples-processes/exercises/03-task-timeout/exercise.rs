// Exercise processes/03 — A per-task timeout that kills AND reaps
//
// Concept: a child that hangs (a stuck C library, a network call with no timeout) must be
// stopped, and stopping it takes two steps. `kill` sends SIGKILL, the one signal a process can
// neither catch nor ignore (SIGTERM is a request: a program may ignore it, and some do). Then
// `wait` *reaps* it: until its parent waits for it, a dead process stays in the process table as
// a zombie (`Z` in `ps`), holding its pid. A supervisor that kills without waiting fills the table
// with zombies; one that waits without a deadline hangs with its child. Python's
// `subprocess.run(timeout=…)` does both steps for you (`kill()`, then `communicate()`).
//
// Goal: write `run_all(commands, deadline)`: start every command at once; each one still running
// `deadline` after the start is killed and reaped (`Ending::TimedOut`), the others are reaped when
// they end (`Ending::Exited(status)`). Return one `TaskEnd` per command, in order, once every
// child is gone: none left running, none left a zombie.
//
// Hint: std has no `wait_timeout`: poll each child with `try_wait()` (a `waitpid(WNOHANG)`),
// sleeping a few milliseconds between rounds; past the deadline, `kill()` then `wait()`.
//
// Checked by: 2 seeded runs of 6 children (order shuffled): three that each wait until all three
// have started, `exec sleep 30`, one that ignores SIGTERM, and `exit 3`; after the call, every pid
// is looked up in /proc (a zombie or a survivor fails); a watchdog fails a hang in 8 s. Every
// wrong solution is caught on every run (20/20).
// Run: cargo run -p shared --bin exercises -- check processes/03

use std::io;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Ended on its own in time, reaped.
    Exited(ExitStatus),
    /// Still running at the deadline: killed, then reaped.
    TimedOut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskEnd {
    pub pid: u32,
    pub ending: Ending,
}

/// Runs every command at once; kills and reaps those still running `deadline` after the start.
pub fn run_all(commands: Vec<Command>, deadline: Duration) -> io::Result<Vec<TaskEnd>> {
    let start = Instant::now();
    todo!("spawn them all, then poll with try_wait; past the deadline: kill, then wait")
}
