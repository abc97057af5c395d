// A plausible wrong solution of async/03: spawn every job, then await the handles in job order
// and stop at the first error found that way. It reports the first failing job *in the list*,
// which may fail long after another one did, and it cancels nothing: dropping a `JoinHandle`
// detaches its task, which keeps running after the group has returned.

use support::{Job, JobError};

pub async fn run_group(jobs: Vec<Job>) -> Result<Vec<u64>, JobError> {
    let handles: Vec<_> = jobs
        .into_iter()
        .map(|job| tokio::spawn(job.run()))
        .collect();
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.expect("a job panicked")?);
    }
    Ok(results)
}
