// Checks of async/03, compiled against the learner's file, the solution and each wrong one.

use shared::exercise::{Check, Failure, Jitter, ensure, stress, watchdog};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::support::{Job, JobError, Log};

/// `n` distinct durations (multiples of 10 ms), shuffled by the seed.
fn durations(draw: &mut Jitter, n: usize) -> Vec<Duration> {
    let mut ms: Vec<u64> = (1..=n as u64)
        .map(|i| i * 10 * (1 + draw.below(3)))
        .collect();
    ms.sort_unstable();
    ms.dedup();
    while ms.len() < n {
        ms.push(ms.last().copied().unwrap_or(0) + 10);
    }
    for i in (1..ms.len()).rev() {
        ms.swap(i, draw.below(i as u64 + 1) as usize);
    }
    ms.into_iter().map(Duration::from_millis).collect()
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| Failure::property("runs", format!("cannot build a runtime: {e}")))
}

/// Runs a group; returns its result, its virtual duration, and the log right after it
/// returned and again once every job would have ended.
async fn run(
    takes: &[Duration],
    fails: &[bool],
) -> (Result<Vec<u64>, JobError>, Duration, Log, Log) {
    let log = Arc::new(Mutex::new(Log::default()));
    let jobs: Vec<Job> = takes
        .iter()
        .zip(fails)
        .enumerate()
        .map(|(id, (&t, &f))| Job::new(id, t, f, &log))
        .collect();
    let started = tokio::time::Instant::now();
    let result = run_group(jobs).await;
    let took = started.elapsed();
    let snapshot = |log: &Arc<Mutex<Log>>| {
        let log = log.lock().unwrap_or_else(PoisonError::into_inner);
        Log {
            finished: log.finished.clone(),
            cancelled: log.cancelled.clone(),
        }
    };
    // Read before anything else runs: what the caller can rely on when run_group returns.
    let at_return = snapshot(&log);
    let longest = takes.iter().max().copied().unwrap_or_default();
    tokio::time::sleep(longest + Duration::from_millis(10)).await;
    (result, took, at_return, snapshot(&log))
}

async fn all_succeed(takes: &[Duration]) -> Check {
    let fails = vec![false; takes.len()];
    let (result, took, _, _) = run(takes, &fails).await;
    let expected: Vec<u64> = (0..takes.len() as u64).map(|i| i * 10).collect();
    ensure(
        result.as_ref() == Ok(&expected),
        "every result, in job order",
        || format!("{} jobs that all succeed gave {result:?}", takes.len()),
    )?;
    let longest = takes.iter().max().copied().unwrap_or_default();
    ensure(
        took == longest,
        "the jobs run concurrently: the time of the slowest",
        || format!("took {took:?}; the jobs take {takes:?}"),
    )
}

async fn some_fail(takes: &[Duration], fails: &[bool]) -> Check {
    let first = (0..takes.len())
        .filter(|&i| fails[i])
        .min_by_key(|&i| takes[i])
        .expect("the scenario has a failing job");
    let (result, took, at_return, later) = run(takes, fails).await;
    let scenario = format!("jobs taking {takes:?}, failing: {fails:?}");
    ensure(
        result == Err(JobError { job: first }),
        "the error of the first job to fail (in time)",
        || format!("{scenario}: got {result:?}, job {first} fails first"),
    )?;
    ensure(
        took == takes[first],
        "the group returns as soon as a job fails",
        || {
            format!(
                "{scenario}: took {took:?}, job {first} failed at {:?}",
                takes[first]
            )
        },
    )?;
    let mut unfinished: Vec<usize> = (0..takes.len())
        .filter(|&i| takes[i] > takes[first])
        .collect();
    let mut cancelled = at_return.cancelled.clone();
    unfinished.sort_unstable();
    cancelled.sort_unstable();
    ensure(
        cancelled == unfinished,
        "when the group returns, every unfinished job has been cancelled and dropped",
        || {
            format!(
                "{scenario}: jobs {unfinished:?} were still running at the failure; when \
                 run_group returned, the cancelled ones were {cancelled:?}"
            )
        },
    )?;
    ensure(
        later.finished.len() == at_return.finished.len(),
        "no job keeps running after the group has failed",
        || {
            format!(
                "{scenario}: jobs finished after run_group returned: {:?}",
                &later.finished[at_return.finished.len()..]
            )
        },
    )
}

fn one_run(seed: u64) -> Check {
    let mut draw = Jitter::new(seed, 0);
    let n = 2 + draw.below(7) as usize;
    let takes = durations(&mut draw, n);
    // Failures: at least one, never only the slowest job (otherwise waiting for everything
    // would look right), and some random others.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| takes[i]);
    let mut fails = vec![false; n];
    fails[order[draw.below(n as u64 - 1) as usize]] = true;
    for f in &mut fails {
        *f |= draw.below(4) == 0;
    }
    let rt = runtime()?;
    rt.block_on(async {
        all_succeed(&takes).await?;
        some_fail(&takes, &fails).await
    })
}

pub fn all() -> Check {
    watchdog("task-group", Duration::from_secs(10), |progress| {
        stress(20, |seed| {
            let r = one_run(seed);
            progress.tick();
            r
        })
    })
}
