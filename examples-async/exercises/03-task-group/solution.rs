// Reference solution of async/03 (see exercise.rs for the statement).

use tokio::task::JoinSet;

use support::{Job, JobError};

/// Runs the jobs as tasks; all results in job order, or the first failure with the rest cancelled.
pub async fn run_group(jobs: Vec<Job>) -> Result<Vec<u64>, JobError> {
    let mut set = JoinSet::new();
    let n = jobs.len();
    for (index, job) in jobs.into_iter().enumerate() {
        set.spawn(async move { (index, job.run().await) });
    }
    let mut results = vec![0; n];
    while let Some(joined) = set.join_next().await {
        // A job cannot panic; if one did, its panic goes on to our caller.
        let (index, result) = joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        match result {
            Ok(value) => results[index] = value,
            Err(e) => {
                set.abort_all();
                // Wait for every aborted task to be dropped: their cleanup has run when we return.
                while set.join_next().await.is_some() {}
                return Err(e);
            }
        }
    }
    Ok(results)
}
