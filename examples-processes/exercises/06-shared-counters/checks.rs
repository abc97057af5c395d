// Checks of processes/06, compiled against the learner's file, the solution and each wrong one.
//
// The workers are this test binary started again, running the hidden test `worker_process`
// below: it maps the segment named in its environment with `support::Segment::open`, says
// "ready", waits for "go", looks at /dev/shm, calls the variant's `tally`, and writes what it saw
// in a report file. libtest prints its own lines on stdout, so `sh` first moves the pipe to the
// parent to descriptor 3 (where the worker says "ready") and points stdout at /dev/null.

use shared::exercise::{Check, Failure, Jitter, Progress, ensure, stress, watchdog};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// What a worker process is told to do: `seed index count report-file`.
const WORKER_ENV: &str = "EXERCISE_PROCESSES_06_WORKER";
const VALUES_PER_WORKER: usize = 1_000_000;

/// This module's `worker_process` test, as libtest names it (the path without the crate).
fn worker_test() -> String {
    let module = module_path!();
    let module = module.split_once("::").map_or(module, |(_, rest)| rest);
    format!("{module}::worker_process")
}

/// The values worker `index` tallies in the run seeded `seed` (xorshift: cheap, and the same in
/// the worker and in the check).
fn values(seed: u64, index: usize, count: usize) -> Vec<u64> {
    let mut x = (seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        })
        .collect()
}

#[test]
#[ignore = "a worker process of the checks of processes/06: they start it themselves"]
fn worker_process() {
    let Ok(order) = std::env::var(WORKER_ENV) else {
        return; // Run by hand or by `--include-ignored`: nothing to do.
    };
    std::process::exit(if be_a_worker(&order).is_ok() { 0 } else { 3 });
}

fn be_a_worker(order: &str) -> io::Result<()> {
    let fields: Vec<&str> = order.split(' ').collect();
    let [seed, index, count, report] = fields[..] else {
        return Err(io::Error::other(format!("bad order {order:?}")));
    };
    let parse = |s: &str| s.parse::<u64>().map_err(io::Error::other);
    let (seed, index, count) = (parse(seed)?, parse(index)? as usize, parse(count)? as usize);
    let mut report = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(report)?;
    let result = work(seed, index, count, &mut report);
    if let Err(e) = &result {
        let _ = writeln!(report, "error: {e}");
    }
    result
}

fn work(seed: u64, index: usize, count: usize, report: &mut std::fs::File) -> io::Result<()> {
    let name = std::env::var(SEGMENT_ENV)
        .map_err(|_| io::Error::other(format!("no {SEGMENT_ENV} in its environment")))?;
    let segment = support::Segment::open(&name)
        .map_err(|e| io::Error::other(format!("cannot map the segment {name:?}: {e}")))?;
    let values = values(seed, index, count);
    writeln!(report, "mapped")?;
    std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/fd/3")?
        .write_all(b"ready\n")?;
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    if line != "go\n" {
        writeln!(report, "never told to go")?;
        return Ok(());
    }
    let present = Path::new(support::SHM_DIR).join(&name).exists();
    writeln!(
        report,
        "at go: the name is {}",
        if present { "still there" } else { "gone" }
    )?;
    let tallied = std::panic::catch_unwind(|| tally(segment.counters(), &values));
    match tallied {
        Ok(()) => writeln!(report, "done"),
        Err(p) => {
            let msg = shared::report::panic_message(p.as_ref());
            writeln!(report, "panicked: {msg}")?;
            Err(io::Error::other("tally panicked"))
        }
    }
}

/// One call of `count_in_workers`: a unique name, and a scratch folder for the reports.
struct Run {
    name: String,
    dir: PathBuf,
    seed: u64,
}

impl Run {
    fn new(seed: u64) -> Result<Run, Failure> {
        // Unique in the whole test binary: every variant's checks run at the same time.
        let tag = shared::exercise::unique_name(&format!("{seed:x}"));
        let dir = std::env::temp_dir().join(format!("processes-06-{tag}"));
        std::fs::create_dir_all(&dir).map_err(|e| Failure::property("runs", e.to_string()))?;
        Ok(Run {
            name: format!("{}{tag}", name_prefix()),
            dir,
            seed,
        })
    }

    fn report_path(&self, index: usize) -> PathBuf {
        self.dir.join(format!("worker-{index}.txt"))
    }

    fn worker(&self, index: usize, count: usize) -> Command {
        let exe = std::env::current_exe().unwrap_or_default();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", r#"exec "$0" "$@" 3>&1 >/dev/null 2>/dev/null"#])
            .arg(exe)
            .args([
                "--exact",
                &worker_test(),
                "--ignored",
                "--test-threads",
                "1",
            ])
            .env(
                WORKER_ENV,
                format!(
                    "{} {index} {count} {}",
                    self.seed,
                    self.report_path(index).display()
                ),
            );
        cmd
    }

    fn reports(&self, workers: usize) -> Vec<String> {
        (0..workers)
            .map(|i| std::fs::read_to_string(self.report_path(i)).unwrap_or_default())
            .collect()
    }

    /// Whether the name is still in /dev/shm; removes it if so (the checks clean up).
    fn left_behind(&self) -> bool {
        std::fs::remove_file(Path::new(support::SHM_DIR).join(&self.name)).is_ok()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Our segments' names start with this, so the checks can sweep up after a hang. The pid and
/// this module's path (one per variant: the learner's file, the solution, each wrong one) keep
/// the sweep of one variant's checks from removing a segment that another variant, running at
/// the same time in another test thread, is still using.
fn name_prefix() -> String {
    let variant = module_path!().replace("::", ".");
    format!("exercise-processes-06-{}-{variant}-", std::process::id())
}

/// A worker's `tally` reached `todo!()` or panicked: say so, as for any other panic.
fn panicked(reports: &[String]) -> Option<Failure> {
    let msg = reports
        .iter()
        .find_map(|r| r.lines().find_map(|l| l.strip_prefix("panicked: ")))?;
    let unsolved = msg.starts_with("not yet implemented") || msg.starts_with("not implemented");
    Some(Failure {
        property: if unsolved { "solved" } else { "no panic" }.into(),
        detail: format!("`tally` panicked in a worker process: {msg}"),
        seed: None,
        unsolved,
    })
}

/// The worker-side errors: a worker that could not map the segment, or found no name.
fn worker_errors(reports: &[String]) -> Vec<String> {
    (reports.iter().enumerate())
        .filter_map(|(i, r)| {
            let line = r.lines().find_map(|l| l.strip_prefix("error: "))?;
            Some(format!("worker {i}: {line}"))
        })
        .collect()
}

fn one_run(seed: u64, progress: &Progress) -> Check {
    let mut draw = Jitter::new(seed, 0);
    let workers = 2 + draw.below(3) as usize;
    let buckets = 2 + draw.below(4) as usize;
    let run = Run::new(seed)?;
    let commands = (0..workers)
        .map(|i| run.worker(i, VALUES_PER_WORKER))
        .collect();
    let counted = count_in_workers(&run.name, buckets, commands);
    progress.tick();
    let left_behind = run.left_behind();
    let reports = run.reports(workers);
    if let Some(f) = panicked(&reports) {
        return Err(f);
    }
    let errors = worker_errors(&reports);
    ensure(
        errors.is_empty(),
        "every worker maps the segment: the name is there until they are all ready",
        || errors.join("; "),
    )?;
    let counts = counted.map_err(|e| {
        Failure::property(
            "the counts come back",
            format!("count_in_workers({workers} workers) failed: {e}"),
        )
    })?;
    let mut expected = vec![0u64; buckets];
    for i in 0..workers {
        for v in values(seed, i, VALUES_PER_WORKER) {
            expected[(v % buckets as u64) as usize] += 1;
        }
    }
    let (got, want): (u64, u64) = (counts.iter().sum(), expected.iter().sum());
    ensure(
        counts == expected,
        "no update lost: every count exact",
        || {
            format!(
                "{workers} processes x {VALUES_PER_WORKER} values into {buckets} shared counters: \
                 counted {counts:?}, expected {expected:?} ({} updates lost)",
                want.saturating_sub(got)
            )
        },
    )?;
    ensure(!left_behind, "nothing left in /dev/shm", || {
        format!(
            "{}/{} was still there after the call returned",
            support::SHM_DIR,
            run.name
        )
    })?;
    let late = (reports.iter().enumerate())
        .filter(|(_, r)| !r.contains("at go: the name is gone"))
        .map(|(i, _)| i)
        .collect::<Vec<_>>();
    ensure(
        late.is_empty(),
        "the name is unlinked as soon as every worker is ready, before \"go\"",
        || {
            format!(
                "workers {late:?} still found {}/{} when told to go: a crash during the work would \
                 leave it behind",
                support::SHM_DIR,
                run.name
            )
        },
    )
}

/// A worker that dies before it is ready: an error, and nothing left behind.
fn a_worker_fails_before_ready(progress: &Progress) -> Check {
    let run = Run::new(0)?;
    let mut broken = Command::new("sh");
    broken.args(["-c", "exit 7"]);
    let commands = vec![run.worker(0, 10), broken, run.worker(2, 10)];
    let counted = count_in_workers(&run.name, 3, commands);
    progress.tick();
    let left_behind = run.left_behind();
    if let Some(f) = panicked(&run.reports(3)) {
        return Err(f);
    }
    ensure(
        counted.is_err(),
        "a worker that fails before it is ready is an error",
        || format!("count_in_workers returned {counted:?} although worker 1 exited 7 at once"),
    )?;
    ensure(
        !left_behind,
        "nothing left in /dev/shm, on the error path too",
        || {
            format!(
                "worker 1 exited before it was ready, count_in_workers returned an error, and \
                 {}/{} was still there",
                support::SHM_DIR,
                run.name
            )
        },
    )
}

/// Removes whatever a hung or failed run of ours left in /dev/shm.
fn sweep() {
    let prefix = name_prefix();
    let Ok(dir) = std::fs::read_dir(support::SHM_DIR) else {
        return;
    };
    for entry in dir.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

pub fn all() -> Check {
    let result = watchdog("shared-counters", Duration::from_secs(10), |progress| {
        stress(3, |seed| one_run(seed, progress))?;
        a_worker_fails_before_ready(progress)
    });
    sweep();
    result
}
