// A plausible wrong solution of processes/03: the polite stop, SIGTERM, then `wait()`. Most
// programs exit on SIGTERM, so every test with `sleep` passes. A program that ignores SIGTERM
// (or is stuck where it cannot handle it) keeps running, and the blocking `wait()` hangs with
// it: the timeout never fires. Production code sends SIGTERM, waits a grace period, then SIGKILL.

use std::io;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Exited(ExitStatus),
    TimedOut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskEnd {
    pub pid: u32,
    pub ending: Ending,
}

pub fn run_all(commands: Vec<Command>, deadline: Duration) -> io::Result<Vec<TaskEnd>> {
    let start = Instant::now();
    let mut children: Vec<Child> = Vec::new();
    for mut command in commands {
        children.push(command.spawn()?);
    }
    let mut endings: Vec<Option<Ending>> = vec![None; children.len()];
    while endings.iter().any(Option::is_none) {
        let late = start.elapsed() >= deadline;
        for (child, ending) in children.iter_mut().zip(&mut endings) {
            if ending.is_some() {
                continue;
            }
            if let Some(status) = child.try_wait()? {
                *ending = Some(Ending::Exited(status));
            } else if late {
                let pid = child.id() as libc::pid_t;
                // SAFETY: kill(2) with the pid of our own unreaped child.
                unsafe { libc::kill(pid, libc::SIGTERM) };
                child.wait()?;
                *ending = Some(Ending::TimedOut);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(children
        .iter()
        .zip(endings)
        .map(|(child, ending)| TaskEnd {
            pid: child.id(),
            ending: ending.expect("every child ended"),
        })
        .collect())
}
