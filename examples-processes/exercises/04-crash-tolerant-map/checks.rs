// Checks of processes/04, compiled against the learner's file, the solution and each wrong one.

use shared::exercise::{Check, Failure, Jitter, Progress, ensure, stress, watchdog};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn scratch(seed: u64) -> PathBuf {
    shared::exercise::scratch_path(&format!("processes-04-{seed}"))
}

/// A worker: answers `i v` with `i 2v`, logs every attempt, and SIGKILLs itself during the first
/// attempt of each task that has a `crash-<i>` file (`mkdir` is atomic: once per task, even with
/// several workers).
fn worker_script(dir: &std::path::Path) -> String {
    let d = dir.display();
    format!(
        "while read i v; do echo \"$i\" >> '{d}/attempts'; \
         if [ -e \"{d}/crash-$i\" ] && mkdir \"{d}/crashed-$i\" 2>/dev/null; then kill -9 $$; fi; \
         echo \"$i $((v * 2))\"; done"
    )
}

fn one_run(seed: u64, progress: &Progress) -> Check {
    let mut draw = Jitter::new(seed, 0);
    let tasks = 6 + draw.below(30) as usize;
    let workers = 1 + draw.below(4) as usize;
    let inputs: Vec<u64> = (0..tasks).map(|_| draw.below(1_000_000)).collect();
    let mut crash: BTreeSet<usize> = (0..tasks).filter(|_| draw.below(4) == 0).collect();
    // At least one crash, and one that is not the first task anyone runs.
    crash.insert(1 + draw.below(tasks as u64 - 1) as usize);
    let dir = scratch(seed);
    let setup = std::fs::create_dir_all(&dir)
        .and_then(|()| crash.iter().try_for_each(|i| std::fs::write(dir.join(format!("crash-{i}")), b"")));
    setup.map_err(|e| Failure::property("runs", format!("scratch folder: {e}")))?;
    let script = worker_script(&dir);
    let start = move || {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &script]);
        cmd
    };
    let answers = map_in_workers(&inputs, workers, &start);
    let log = std::fs::read_to_string(dir.join("attempts")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    let answers = answers.map_err(|e| Failure::property("runs", format!("map_in_workers: {e}")))?;
    progress.tick();
    let setting = format!("{tasks} tasks on {workers} workers, crashing on {crash:?}");
    ensure(answers.len() == tasks, "one answer per task", || {
        format!("{setting}: {} answers", answers.len())
    })?;
    let wrong = (0..tasks).find(|&i| answers[i] != inputs[i] * 2);
    ensure(wrong.is_none(), "no task lost: every answer right, in input order", || {
        let i = wrong.unwrap_or_default();
        format!("{setting}: answer {i} is {}, expected {}", answers[i], inputs[i] * 2)
    })?;
    let mut attempts = vec![0u32; tasks];
    for line in log.lines() {
        if let Some(n) = line.trim().parse::<usize>().ok().and_then(|i| attempts.get_mut(i)) {
            *n += 1;
        }
    }
    let twice = |i: usize| crash.contains(&i);
    let bad = (0..tasks).find(|&i| attempts[i] != if twice(i) { 2 } else { 1 });
    ensure(bad.is_none(), "a crashed task runs again exactly once, every other task exactly once", || {
        let i = bad.unwrap_or_default();
        let expected = if twice(i) { "2 (a crash, then a retry)" } else { "1" };
        format!("{setting}: task {i} ran {} times, expected {expected}", attempts[i])
    })
}

pub fn all() -> Check {
    watchdog("crash-tolerant-map", Duration::from_secs(10), |progress| {
        stress(8, |seed| one_run(seed, progress))
    })
}
