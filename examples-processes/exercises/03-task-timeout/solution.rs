// Reference solution of processes/03 (see exercise.rs for the statement).

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
    let mut children: Vec<Child> = Vec::with_capacity(commands.len());
    for mut command in commands {
        match command.spawn() {
            Ok(child) => children.push(child),
            Err(e) => {
                for child in &mut children {
                    let _ = child.kill(); // Leave nothing behind on the way out.
                    let _ = child.wait();
                }
                return Err(e);
            }
        }
    }
    let mut endings: Vec<Option<Ending>> = vec![None; children.len()];
    while endings.iter().any(Option::is_none) {
        let late = start.elapsed() >= deadline;
        for (child, ending) in children.iter_mut().zip(&mut endings) {
            if ending.is_some() {
                continue;
            }
            if let Some(status) = child.try_wait()? {
                *ending = Some(Ending::Exited(status)); // `try_wait` reaped it.
            } else if late {
                child.kill()?; // SIGKILL: cannot be caught or ignored.
                child.wait()?; // Reap: without this, a zombie.
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
            ending: ending.expect("the loop ends when every child has ended"),
        })
        .collect())
}
