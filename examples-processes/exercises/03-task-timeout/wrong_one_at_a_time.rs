// A plausible wrong solution of processes/03: each command gets the deadline, one after the
// other: start it, wait for it (or kill and reap it), then start the next. Every child is
// reaped and every status right, but the batch takes the sum of the timeouts instead of one,
// and children that need each other (a pipeline, a client and its server) never run together.

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
    let mut ends = Vec::new();
    for mut command in commands {
        let start = Instant::now();
        let mut child: Child = command.spawn()?;
        let ending = loop {
            if let Some(status) = child.try_wait()? {
                break Ending::Exited(status);
            }
            if start.elapsed() >= deadline {
                child.kill()?;
                child.wait()?;
                break Ending::TimedOut;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        ends.push(TaskEnd {
            pid: child.id(),
            ending,
        });
    }
    Ok(ends)
}
