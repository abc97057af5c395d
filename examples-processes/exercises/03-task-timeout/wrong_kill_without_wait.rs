// A plausible wrong solution of processes/03: past the deadline the child is killed, and the
// job looks done: it is dead, after all. But nobody waits for it, so it stays a zombie in the
// process table until this (long-running) process exits. Every result returned is right; only
// `ps` (or /proc) shows the leak, which is why it survives code review.

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
                child.kill()?;
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
