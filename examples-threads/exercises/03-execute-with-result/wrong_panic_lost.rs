// A plausible wrong solution of threads/03: no `catch_unwind` in the job ("the pool already
// catches panics"). It does, but only after the panic has unwound through the job and dropped
// `tx`: the caller's `recv()` sees a closed channel, not the panic. The value path works, so a
// test without a panicking job passes.

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
    pub fn execute_with_result<T, F>(&self, f: F) -> Receiver<thread::Result<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.execute(move || {
            let value = f();
            let _ = tx.send(Ok(value));
        });
        rx
    }
}
