// A plausible wrong solution of async/03: every task is joined and the first error is kept for
// the end. The result is right, but a failure no longer stops anything: the caller waits for
// the slowest job, and every other job runs to its end (charging cards, sending e-mails...) after
// the group has already failed.

use tokio::task::JoinSet;

use support::{Job, JobError};

pub async fn run_group(jobs: Vec<Job>) -> Result<Vec<u64>, JobError> {
    let mut set = JoinSet::new();
    let n = jobs.len();
    for (index, job) in jobs.into_iter().enumerate() {
        set.spawn(async move { (index, job.run().await) });
    }
    let mut results = vec![0; n];
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        let (index, result) = joined.expect("a job panicked");
        match result {
            Ok(value) => results[index] = value,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(results),
    }
}
