// A plausible wrong solution of async/03: return at the first error and let the `JoinSet` drop.
// Dropping it aborts every task, so this looks right. But `abort` only asks: the tasks are
// dropped later, when the runtime next gets to them, after `run_group` has returned. Whatever
// their cleanup does (release a connection, delete a temporary file) has not happened when the
// caller goes on, and on a multi-thread runtime a task may even finish its work meanwhile.

use tokio::task::JoinSet;

use support::{Job, JobError};

pub async fn run_group(jobs: Vec<Job>) -> Result<Vec<u64>, JobError> {
    let mut set = JoinSet::new();
    let n = jobs.len();
    for (index, job) in jobs.into_iter().enumerate() {
        set.spawn(async move { (index, job.run().await) });
    }
    let mut results = vec![0; n];
    while let Some(joined) = set.join_next().await {
        let (index, result) = joined.expect("a job panicked");
        match result {
            Ok(value) => results[index] = value,
            Err(e) => return Err(e),
        }
    }
    Ok(results)
}
