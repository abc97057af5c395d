// Exercise processes/04 — A crash-tolerant map over worker processes
//
// Concept: a worker process can die in the middle of a task (a segfault in a C library, the OOM
// killer, `kill -9`). Python's `multiprocessing.Pool` then waits forever for the lost result, and
// `ProcessPoolExecutor` fails every pending task with `BrokenProcessPool`. A pool that owns its
// workers does better: it notices the death (EOF on the worker's stdout), reaps the dead worker,
// starts a new one, and runs the lost task again, once, while every other task still runs
// exactly once. This is `process-pool`'s `mod pool` in small.
//
// Goal: write `map_in_workers(inputs, workers, start)`: run task `i` (value `inputs[i]`) on
// `workers` worker processes that take tasks from one shared queue, and return the answers in
// input order. A worker that dies during a task is replaced and that same task re-run on the new
// worker; no task is lost, and no task runs twice unless its worker died under it.
//
// Hint: one scoped thread per worker ("slot") owning its `Worker`, claiming task indexes from a
// shared cursor (`fetch_add`) until none is left; when `Worker::run` returns `None`, `replace`
// the worker and run the *same* task again. Collect `(index, answer)` pairs and place them at
// the end. (A task that kills *every* worker would loop forever: `process-pool` caps attempts.)
//
// Checked by: 8 seeded stress runs (the inputs, the number of workers and which tasks kill their
// worker, once each, change every run), checked against a log of every attempt the workers
// made: every answer right and in input order, each crashed task run exactly twice, every other
// task exactly once; a watchdog fails a hang in 10 s. Both wrong solutions are caught on every
// run of the check (20/20).
// Run: cargo run -p shared --bin exercises -- check processes/04

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
    todo!("one scoped thread per worker claiming indexes from `next`; on a dead worker, replace it and re-run the same task")
}
