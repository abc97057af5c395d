// A plausible wrong solution of processes/04: each slot takes a fixed share of the tasks, and
// when its worker dies it starts the share over on a fresh worker: the simplest recovery, and
// every answer comes out right. But every task of the share that had already run before the
// crash runs again: a task that charges a card, sends an e-mail or appends to a file does it
// twice. Only a count of the attempts shows it.

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

pub fn map_in_workers(inputs: &[u64], workers: usize, start: &StartWorker) -> io::Result<Vec<u64>> {
    let workers = workers.max(1);
    let share = inputs.len().div_ceil(workers).max(1);
    let mut answers = vec![0; inputs.len()];
    std::thread::scope(|s| -> io::Result<()> {
        let slots: Vec<_> = (0..inputs.len())
            .step_by(share)
            .map(|first| {
                s.spawn(move || -> io::Result<Vec<(usize, u64)>> {
                    let mut worker = Worker::start(start)?;
                    'share: loop {
                        let mut mine = Vec::new();
                        for index in first..(first + share).min(inputs.len()) {
                            match worker.run(index, inputs[index]) {
                                Some(answer) => mine.push((index, answer)),
                                None => {
                                    worker.replace(start)?;
                                    continue 'share; // Start the share over.
                                }
                            }
                        }
                        return Ok(mine);
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
