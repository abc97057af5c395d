// Reference solution of processes/04 (see exercise.rs for the statement).

use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How to start one worker (the check gives a small shell script that answers `i v` with
/// `i 2v`, and dies during the tasks it was told to crash on).
pub type StartWorker = dyn Fn() -> Command + Sync;

/// One worker process and our ends of its pipes. Given: the protocol is not the exercise.
pub struct Worker {
    child: Child,
    to_worker: ChildStdin,
    from_worker: BufReader<ChildStdout>,
}

impl Worker {
    pub fn start(start: &StartWorker) -> io::Result<Worker> {
        let mut child = start().stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        let to_worker = child.stdin.take().expect("stdin was piped");
        let from_worker = BufReader::new(child.stdout.take().expect("stdout was piped"));
        Ok(Worker { child, to_worker, from_worker })
    }

    /// Runs task `index` on `value`: `Some(answer)`, or `None` if the worker died first (it is
    /// then useless: `replace` it).
    pub fn run(&mut self, index: usize, value: u64) -> Option<u64> {
        writeln!(self.to_worker, "{index} {value}").ok()?;
        self.to_worker.flush().ok()?;
        let mut line = String::new();
        if self.from_worker.read_line(&mut line).ok()? == 0 {
            return None; // EOF: the worker is gone.
        }
        let (echoed, answer) = line.trim().split_once(' ')?;
        (echoed.parse::<usize>().ok()? == index).then_some(())?;
        answer.parse().ok()
    }

    /// Reaps this worker (dead, or killed now) and starts a fresh one in its place.
    pub fn replace(&mut self, start: &StartWorker) -> io::Result<()> {
        let _ = self.child.kill();
        self.child.wait()?;
        *self = Worker::start(start)?;
        Ok(())
    }
}

impl Drop for Worker {
    /// Workers keep no state worth saving: kill and reap, so none is left behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs every task on `workers` worker processes; answers in input order.
pub fn map_in_workers(inputs: &[u64], workers: usize, start: &StartWorker) -> io::Result<Vec<u64>> {
    let next = AtomicUsize::new(0);
    let mut answers = vec![0; inputs.len()];
    std::thread::scope(|s| -> io::Result<()> {
        let slots: Vec<_> = (0..workers.max(1))
            .map(|_| {
                s.spawn(|| -> io::Result<Vec<(usize, u64)>> {
                    let mut worker = Worker::start(start)?;
                    let mut mine = Vec::new();
                    loop {
                        // Claim a task: the cursor moves in one step, so no two slots get it.
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&value) = inputs.get(index) else {
                            return Ok(mine);
                        };
                        let answer = loop {
                            match worker.run(index, value) {
                                Some(answer) => break answer,
                                // Died under this task: a new worker, the same task again.
                                None => worker.replace(start)?,
                            }
                        };
                        mine.push((index, answer));
                    }
                })
            })
            .collect();
        for slot in slots {
            for (index, answer) in slot.join().expect("a slot thread panicked")? {
                answers[index] = answer;
            }
        }
        Ok(())
    })?;
    Ok(answers)
}
