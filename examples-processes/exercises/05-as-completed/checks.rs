// Checks of processes/05, compiled against the learner's file, the solution and each wrong one.

use shared::exercise::{Check, Failure, Jitter, Progress, ensure, exactly_once, stress, watchdog};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A job. No stdio of ours: a job left running by a wrong solution must not hold the test's
/// output pipes open (whoever reads them would wait for it).
fn sh(script: &str) -> std::io::Result<Child> {
    Command::new("sh")
        .args(["-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

/// What the check saw: the jobs started, the jobs reported, the most children in flight.
#[derive(Default)]
struct Seen {
    started: Vec<usize>,
    done: Vec<(usize, Option<i32>)>,
    most_in_flight: usize,
}

impl Seen {
    fn in_flight(&self) -> usize {
        self.started.len() - self.done.len()
    }
}

fn bound_and_exactly_once(seen: &Seen, jobs: usize, max: usize, what: &str) -> Check {
    ensure(seen.most_in_flight <= max, "never more than K children in flight", || {
        format!("{what}: {} children in flight at once, K = {max}", seen.most_in_flight)
    })?;
    exactly_once(0..jobs, seen.started.iter().copied()).map_err(|mut f| {
        f.property = "every job started exactly once".into();
        f.detail = format!("{what}: {}", f.detail);
        f
    })?;
    exactly_once(0..jobs, seen.done.iter().map(|&(job, _)| job)).map_err(|mut f| {
        f.property = "every job reported exactly once".into();
        f.detail = format!("{what}: {}", f.detail);
        f
    })
}

/// Jobs of random length (0 to 20 ms), job `i` exiting with `i % 7`.
fn one_run(seed: u64, progress: &Progress) -> Check {
    let mut draw = Jitter::new(seed, 0);
    let jobs = 3 + draw.below(22) as usize;
    let max = 1 + draw.below(4) as usize;
    let naps: Vec<u64> = (0..jobs).map(|_| draw.below(21)).collect();
    let mut seen = Seen::default();
    let seen_cell = std::cell::RefCell::new(&mut seen);
    let mut start = |job: usize| {
        let mut s = seen_cell.borrow_mut();
        s.started.push(job);
        s.most_in_flight = s.most_in_flight.max(s.in_flight());
        sh(&format!("sleep 0.0{:02}; exit {}", naps[job], job % 7))
    };
    let mut on_done = |job: usize, status: std::process::ExitStatus| {
        seen_cell.borrow_mut().done.push((job, status.code()));
        progress.tick();
    };
    run_as_completed(jobs, max, &mut start, &mut on_done)
        .map_err(|e| Failure::property("runs", format!("run_as_completed: {e}")))?;
    let what = format!("{jobs} jobs, K = {max}");
    bound_and_exactly_once(&seen, jobs, max, &what)?;
    let wrong = seen.done.iter().find(|&&(job, code)| code != Some((job % 7) as i32));
    ensure(wrong.is_none(), "each job is reported with its own exit status", || {
        format!("{what}: {wrong:?}")
    })
}

fn scratch() -> PathBuf {
    shared::exercise::scratch_path("processes-05")
}

/// Job 0 ends only once every other job has been reported (it waits for a flag file that
/// `on_done` writes then; it gives up after 30 s so nothing is left behind for long).
fn slow_job_does_not_hold_back_the_rest(progress: &Progress) -> Check {
    const JOBS: usize = 8;
    const MAX: usize = 3;
    let flag = scratch();
    let mut seen = Seen::default();
    let seen_cell = std::cell::RefCell::new(&mut seen);
    let wait_for_flag = format!(
        "n=0; while [ ! -e '{}' ]; do n=$((n+1)); [ $n -gt 3000 ] && exit 9; sleep 0.01; done",
        flag.display()
    );
    let mut start = |job: usize| {
        let mut s = seen_cell.borrow_mut();
        s.started.push(job);
        s.most_in_flight = s.most_in_flight.max(s.in_flight());
        if job == 0 { sh(&wait_for_flag) } else { sh("exit 0") }
    };
    let mut on_done = |job: usize, status: std::process::ExitStatus| {
        let mut s = seen_cell.borrow_mut();
        s.done.push((job, status.code()));
        if s.done.iter().filter(|&&(j, _)| j != 0).count() == JOBS - 1 {
            let _ = std::fs::write(&flag, b"");
        }
        progress.tick();
    };
    let ran = run_as_completed(JOBS, MAX, &mut start, &mut on_done);
    let _ = std::fs::remove_file(&flag);
    ran.map_err(|e| Failure::property("runs", format!("run_as_completed: {e}")))?;
    bound_and_exactly_once(&seen, JOBS, MAX, "job 0 waits for all the others")
}

pub fn all() -> Check {
    watchdog("as-completed", Duration::from_secs(10), |progress| {
        stress(6, |seed| one_run(seed, progress))
    })?;
    watchdog("slow-job", Duration::from_secs(5), slow_job_does_not_hold_back_the_rest).map_err(
        |mut f| {
            f.property = "a slow job does not hold back the results behind it".into();
            f
        },
    )
}
