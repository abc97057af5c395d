// Exercise threads/03 — A Future for the hand-built pool
//
// Concept: thread-pool's `ThreadPool::execute` is fire-and-forget: a job's value, or its panic,
// never reaches the caller. Python's `executor.submit(f)` returns a `Future`: `result()` gives the
// value, or raises the job's exception in the caller. The Rust version is a one-shot channel per
// job: the job sends `Ok(value)`, or `Err(panic payload)` caught by `catch_unwind`, and the caller
// keeps the `Receiver`. A panic must arrive as an `Err` the caller can read, never as a result
// that silently does not come.
//
// Goal: write `execute_with_result(f)`: run `f` on the pool's workers and return a
// `Receiver<std::thread::Result<T>>` that yields `Ok(f())`, or `Err(payload)` if `f` panicked (the
// worker lives on). A caller may submit many jobs before reading any result: the workers must
// never wait for the caller to read.
//
// Hint: `crossbeam_channel::bounded(1)`: room for the one result, so the worker's `send` never
// blocks (`bounded(0)` would make it wait for the caller). Wrap `f` in
// `catch_unwind(AssertUnwindSafe(f))` inside the job and send what it returns.
//
// Checked by: 30 seeded stress runs of 60 jobs submitted before any result is read (values in
// the right receivers, under a watchdog: a worker blocked on its send stalls the pool), a panic
// read back as an `Err` with its message on a 1-worker pool that then runs the next job, and
// every job on a `pool-worker-` thread. Deterministic.
// Run: cargo run -p shared --bin exercises -- check threads/03

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender};

/// The pool of thread-pool's lesson, as it is: a bounded queue of boxed jobs, named workers that
/// survive a panicking job, shutdown in `Drop`.
pub struct ThreadPool {
    sender: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

type Job = Box<dyn FnOnce() + Send + 'static>;

impl ThreadPool {
    pub fn new(size: usize, queue_capacity: usize) -> std::io::Result<ThreadPool> {
        let (sender, receiver) = crossbeam_channel::bounded::<Job>(queue_capacity);
        let workers = (0..size.max(1))
            .map(|id| {
                let receiver = receiver.clone();
                thread::Builder::new()
                    .name(format!("pool-worker-{id}"))
                    .spawn(move || {
                        while let Ok(job) = receiver.recv() {
                            // A job's panic must not kill its worker.
                            let _ = catch_unwind(AssertUnwindSafe(job));
                        }
                    })
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(ThreadPool {
            sender: Some(sender),
            workers,
        })
    }

    /// Queues `job`; blocks while the queue is full.
    pub fn execute<F: FnOnce() + Send + 'static>(&self, job: F) {
        self.sender
            .as_ref()
            .expect("the sender is only taken in Drop")
            .send(Box::new(job))
            .expect("workers outlive the pool's sender");
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        drop(self.sender.take());
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl ThreadPool {
    /// Runs `f` on a worker; the receiver yields `Ok(value)`, or `Err(payload)` if `f` panicked.
    pub fn execute_with_result<T, F>(&self, f: F) -> Receiver<thread::Result<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        todo!("a channel for the one result; a job that runs f under catch_unwind and sends it")
    }
}
