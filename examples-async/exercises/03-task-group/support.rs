// Test support of async/03, seen by the exercise as `support::{Job, JobError}`: jobs that take
// a known time on tokio's clock (paused in the checks), some of which fail, and a log of what
// each one did: finished, or cancelled (dropped before it finished).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Why a job failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobError {
    pub job: usize,
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "job {} failed", self.job)
    }
}

impl std::error::Error for JobError {}

/// What happened to every job, in order of events.
#[derive(Debug, Default)]
pub struct Log {
    pub finished: Vec<usize>,
    pub cancelled: Vec<usize>,
}

/// One job: runs for `takes`, then returns `id * 10` or fails.
pub struct Job {
    pub id: usize,
    pub takes: Duration,
    pub fails: bool,
    log: Arc<Mutex<Log>>,
}

/// Logs a cancellation when a job's future is dropped before the end.
struct Probe {
    id: usize,
    log: Arc<Mutex<Log>>,
    done: bool,
}

impl Drop for Probe {
    fn drop(&mut self) {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        if self.done {
            log.finished.push(self.id);
        } else {
            log.cancelled.push(self.id);
        }
    }
}

impl Job {
    pub fn new(id: usize, takes: Duration, fails: bool, log: &Arc<Mutex<Log>>) -> Job {
        Job {
            id,
            takes,
            fails,
            log: Arc::clone(log),
        }
    }

    /// Runs the job: `Ok(id * 10)` after `takes`, or `Err` if it fails.
    pub async fn run(self) -> Result<u64, JobError> {
        let mut probe = Probe {
            id: self.id,
            log: self.log,
            done: false,
        };
        tokio::time::sleep(self.takes).await;
        probe.done = true;
        if self.fails {
            Err(JobError { job: self.id })
        } else {
            Ok(self.id as u64 * 10)
        }
    }
}
