//! Checks made for concurrent exercises: a deadlock watchdog, seeded stress runs, invariants and
//! relative throughput floors. Used by each crate's `tests/exercises.rs`; see the README's
//! *Exercises* section and `cargo run -p shared --bin exercises -- help`.
//!
//! Why these and not plain `#[test]`s: a racy solution usually passes a plain test (the window is
//! nanoseconds wide), and a deadlocked one hangs the test runner forever. Here:
//! - [`watchdog`] runs a scenario on its own thread and fails it with "no progress in N s:
//!   threads X and Y asleep on a lock or condvar" instead of hanging;
//! - [`stress`] repeats a scenario many times with seeded scheduling noise ([`Jitter`]: yields and
//!   micro-sleeps at random points of the driver threads) and prints the seed that failed, so the
//!   learner can replay it (`EXERCISE_SEED=…`);
//! - [`exactly_once`], [`Failure::property`]: invariants are named, so the learner reads *which*
//!   promise broke ("items conserved", "never more than 3 in flight"), not an `assert_eq!` dump;
//! - [`faster_than_fraction_of`]: where speed is the point, the floor is relative to the reference
//!   solution measured in the same run, far below it, so a noisy machine cannot fail a correct one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Why an exercise check failed: the promise that broke, what was seen, and how to replay it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The property, in the words of the statement: "items conserved", "no deadlock".
    pub property: String,
    /// What was observed.
    pub detail: String,
    /// The stress seed of the failing run, if any.
    pub seed: Option<u64>,
    /// The learner has not started: a `todo!()` was reached.
    pub unsolved: bool,
}

impl Failure {
    /// A broken property.
    pub fn property(property: impl Into<String>, detail: impl Into<String>) -> Self {
        Failure {
            property: property.into(),
            detail: detail.into(),
            seed: None,
            unsolved: false,
        }
    }

    fn with_seed(mut self, seed: u64) -> Self {
        self.seed.get_or_insert(seed);
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.unsolved {
            return write!(f, "not solved yet: {}", self.detail);
        }
        write!(f, "property violated: {}\n  {}", self.property, self.detail)?;
        if let Some(seed) = self.seed {
            write!(
                f,
                "\n  failing seed: {seed} (replay this run alone with EXERCISE_SEED={seed})"
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// The result of a check.
pub type Check = Result<(), Failure>;

/// Fails with `property` unless `cond` holds.
pub fn ensure(cond: bool, property: &str, detail: impl FnOnce() -> String) -> Check {
    if cond {
        Ok(())
    } else {
        Err(Failure::property(property, detail()))
    }
}

/// Turns a caught panic into a failure: `todo!()` means "not solved yet".
pub fn panic_failure(payload: &(dyn std::any::Any + Send)) -> Failure {
    let msg = crate::report::panic_message(payload);
    if msg.starts_with("not yet implemented") || msg.starts_with("not implemented") {
        Failure {
            property: "solved".into(),
            detail: format!("the exercise still reaches `todo!()` ({msg})"),
            seed: None,
            unsolved: true,
        }
    } else {
        Failure::property("no panic", format!("the code panicked: {msg}"))
    }
}

/// Progress made by a scenario, for the watchdog: tick it whenever real work completes.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<AtomicU64>);

impl Progress {
    pub fn tick(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One thread of this process, as `/proc/self/task` shows it.
#[derive(Debug, Clone)]
struct TaskState {
    name: String,
    state: char,
    wchan: String,
}

fn tasks() -> BTreeMap<u32, TaskState> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let p = entry.path();
        let name = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(p.join("stat")).unwrap_or_default();
        // The state follows the command name, which is in parentheses and may contain spaces.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .unwrap_or('?');
        let wchan = std::fs::read_to_string(p.join("wchan")).unwrap_or_default();
        out.insert(
            tid,
            TaskState {
                name: name.trim().to_string(),
                state,
                wchan: wchan.trim().to_string(),
            },
        );
    }
    out
}

/// Describes the threads that appeared since `before` and are asleep: the likely deadlock.
fn sleeping_new_threads(before: &BTreeSet<u32>) -> String {
    let sleepers: Vec<String> = tasks()
        .into_iter()
        .filter(|(tid, t)| !before.contains(tid) && t.state == 'S')
        .map(|(tid, t)| {
            let what = if t.wchan.contains("futex") {
                "a lock, condvar or channel"
            } else if t.wchan.is_empty() || t.wchan == "0" {
                "something"
            } else {
                t.wchan.as_str()
            };
            format!("'{}' (tid {tid}) waiting on {what}", t.name)
        })
        .collect();
    if sleepers.is_empty() {
        "no new thread is asleep: a busy loop, or a thread waiting without being notified".into()
    } else {
        format!("threads asleep: {}", sleepers.join(", "))
    }
}

/// Runs `scenario` on a thread of its own and waits for it. Fails with "deadlock" when no
/// [`Progress`] tick is seen for `stall`, naming the threads that are asleep, instead of hanging
/// the test runner. The stuck threads are left behind (a thread cannot be killed); the test
/// process ends when the test harness exits.
pub fn watchdog<T: Send + 'static>(
    name: &str,
    stall: Duration,
    scenario: impl FnOnce(&Progress) -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    let before: BTreeSet<u32> = tasks().into_keys().collect();
    let progress = Progress::default();
    let p = progress.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("check-{name}"))
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(&p)));
            let _ = tx.send(r);
        });
    if let Err(e) = spawned {
        return Err(Failure::property(
            "runs",
            format!("cannot start a thread: {e}"),
        ));
    }
    let mut last = progress.get();
    let mut last_change = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Ok(r)) => return r,
            Ok(Err(payload)) => return Err(panic_failure(payload.as_ref())),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Failure::property("runs", "the scenario thread vanished"));
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        let now = progress.get();
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if last_change.elapsed() >= stall {
            return Err(Failure::property(
                "no deadlock, no lost wake-up",
                format!(
                    "no progress in {:.1} s ({last} steps done): {}",
                    stall.as_secs_f64(),
                    sleeping_new_threads(&before)
                ),
            ));
        }
    }
}

/// Seeded scheduling noise for the threads a check drives: at random points, yield or sleep a
/// few microseconds, so that interleavings a quiet machine never produces happen in a few runs.
#[derive(Debug)]
pub struct Jitter {
    rng: ChaCha8Rng,
}

impl Jitter {
    /// The noise of driver thread `index` in the run seeded `seed`.
    pub fn new(seed: u64, index: u64) -> Self {
        Jitter {
            rng: ChaCha8Rng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        }
    }

    /// Maybe yield (1 in 4) or sleep up to 50 µs (1 in 32).
    pub fn pause(&mut self) {
        match self.rng.random_range(0..32u32) {
            0 => std::thread::sleep(Duration::from_micros(self.rng.random_range(1..50))),
            1..=8 => std::thread::yield_now(),
            _ => {}
        }
    }

    /// A number from the run's seed, for scenarios that draw their inputs too.
    pub fn below(&mut self, n: u64) -> u64 {
        self.rng.random_range(0..n.max(1))
    }
}

/// The seed of this stress session: `EXERCISE_SEED` replays one run, otherwise a fresh one.
fn base_seed() -> (u64, bool) {
    if let Some(seed) = std::env::var("EXERCISE_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        return (seed, true);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (nanos ^ u64::from(std::process::id()).rotate_left(32), false)
}

/// Runs `scenario(seed)` `runs` times with different seeds (or once, with `EXERCISE_SEED`) and
/// returns the first failure, stamped with its seed. The scenario builds its [`Jitter`]s from
/// the seed, so a failing seed replays the same noise (the OS scheduler adds its own, so a replay
/// fails with a high probability, not always).
pub fn stress(runs: u32, mut scenario: impl FnMut(u64) -> Check) -> Check {
    let (base, replay) = base_seed();
    let runs = if replay { 1 } else { runs.max(1) };
    for i in 0..u64::from(runs) {
        let seed = if replay {
            base
        } else {
            base.wrapping_add(i.wrapping_mul(0x2545_F491_4F6C_DD1D))
        };
        scenario(seed).map_err(|f| f.with_seed(seed))?;
    }
    Ok(())
}

/// Every item of `expected` was seen exactly once in `seen`, and nothing else was.
pub fn exactly_once<K: Ord + fmt::Debug + Clone>(
    expected: impl IntoIterator<Item = K>,
    seen: impl IntoIterator<Item = K>,
) -> Check {
    let mut counts: BTreeMap<K, i64> = BTreeMap::new();
    for k in expected {
        *counts.entry(k).or_default() -= 1;
    }
    for k in seen {
        *counts.entry(k).or_default() += 1;
    }
    let lost: Vec<&K> = counts
        .iter()
        .filter(|(_, c)| **c < 0)
        .map(|(k, _)| k)
        .collect();
    let dup: Vec<&K> = counts
        .iter()
        .filter(|(_, c)| **c > 0)
        .map(|(k, _)| k)
        .collect();
    if lost.is_empty() && dup.is_empty() {
        return Ok(());
    }
    let show = |v: &[&K]| {
        let mut s = format!("{:?}", &v[..v.len().min(8)]);
        if v.len() > 8 {
            s.push_str(&format!(" and {} more", v.len() - 8));
        }
        s
    };
    Err(Failure::property(
        "exactly once",
        format!(
            "{} lost {}, {} seen too often {}",
            lost.len(),
            show(&lost),
            dup.len(),
            show(&dup)
        ),
    ))
}

/// A name no other check uses, in this process or another: `{prefix}-{pid}-{n}`, `n` counted
/// across the whole test binary. The checks of one exercise are compiled once per variant (the
/// learner's file, the solution, every wrong one), so a counter declared in `checks.rs` is one
/// counter *per variant*, and variants run at the same time in libtest's threads: two of them
/// would build the same scratch path and see each other's files. This counter lives here, once.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// A path under the temporary directory named by [`unique_name`].
pub fn scratch_path(prefix: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(unique_name(prefix))
}

/// Times `f` (best of `reps`): the fastest run is the least disturbed by other processes.
pub fn best_time(reps: u32, mut f: impl FnMut()) -> Duration {
    (0..reps.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// Where speed is the point: `candidate` must take at most `1 / fraction` of the time of
/// `reference` (the reference solution, measured in the same run). With a fraction far below 1
/// (say 0.5 for a "twice as fast" lesson), a busy machine slows both and cannot fail a correct
/// solution, while a solution that does not parallelise at all is still caught.
pub fn faster_than_fraction_of(
    property: &str,
    fraction: f64,
    reps: u32,
    reference: impl FnMut(),
    candidate: impl FnMut(),
) -> Check {
    let r = best_time(reps, reference);
    let c = best_time(reps, candidate);
    let limit = r.as_secs_f64() / fraction;
    ensure(c.as_secs_f64() <= limit, property, || {
        format!(
            "took {:.1} ms; the reference solution took {:.1} ms in the same run, and the \
             floor is {:.1} ms ({:.0}% of its speed)",
            c.as_secs_f64() * 1e3,
            r.as_secs_f64() * 1e3,
            limit * 1e3,
            fraction * 100.0
        )
    })
}

/// Asserts a check passed, printing the failure the way a learner should read it.
pub fn assert_passes(exercise: &str, check: Check) {
    if let Err(f) = check {
        panic!("{exercise}: {f}");
    }
}

/// Asserts a check failed (a wrong solution must be rejected), and returns the failure.
pub fn assert_rejected(exercise: &str, variant: &str, check: Check) -> Failure {
    match check {
        Ok(()) => panic!(
            "{exercise}: the wrong solution `{variant}` passed every check: the checks do not catch it"
        ),
        Err(f) => {
            println!("{exercise}: `{variant}` rejected as expected: {f}");
            f
        }
    }
}

/// Declares one exercise of a crate's `tests/exercises.rs`: its learner file, reference solution
/// and plausible wrong solutions, each compiled as its own module with the exercise's checks.
///
/// ```text
/// shared::exercise!(ex02_work_queue in "02-work-queue", wrong: [load_then_store, static_chunks]);
/// shared::exercise!(ex03_bounded_queue in "03-bounded-queue", loom, wrong: [one_condvar_notify_one]);
/// shared::exercise!(ex04_crawler in "04-crawler", support, wrong: [no_limit]);
/// ```
///
/// reads `exercises/<dir>/{exercise.rs, solution.rs, wrong_<name>.rs, checks.rs}` of the calling
/// crate (and `support.rs` with `support`: test-support code every variant sees as `support::…`).
/// `checks.rs` is written as if it sat at the end of the exercise file (it sees the exercise's
/// items through `use super::*`) and defines `pub fn all() -> Check`; with `loom` it also defines,
/// under `cfg(loom)`, `pub fn model()` that runs `loom::model` and panics on a bad interleaving.
///
/// Tests, the same names in both builds:
/// - `<name>::check`: the learner's file (ignored by `cargo test`: the learner runs it with
///   `cargo run -p shared --bin exercises -- check …`; CI asserts it fails untouched);
/// - `<name>::solution_passes`: the reference solution passes every check;
/// - `<name>::rejects::<wrong>`: each wrong solution is rejected. Under loom, a failing model
///   cannot be caught in-process (loom aborts after reporting a deadlock), so the model of a
///   wrong solution runs in a child process: this same test binary, filtered to one hidden test.
#[macro_export]
macro_rules! exercise {
    ($name:ident in $dir:literal, support, loom, wrong: [$($wrong:ident),+ $(,)?] $(,)?) => {
        $crate::exercise!(@all $name, $dir, [
            include!(concat!(env!("CARGO_MANIFEST_DIR"), "/exercises/", $dir, "/support.rs"));
        ], loom, [$($wrong),+]);
    };
    ($name:ident in $dir:literal, support, wrong: [$($wrong:ident),+ $(,)?] $(,)?) => {
        $crate::exercise!(@all $name, $dir, [
            include!(concat!(env!("CARGO_MANIFEST_DIR"), "/exercises/", $dir, "/support.rs"));
        ], noloom, [$($wrong),+]);
    };
    ($name:ident in $dir:literal, loom, wrong: [$($wrong:ident),+ $(,)?] $(,)?) => {
        $crate::exercise!(@all $name, $dir, [], loom, [$($wrong),+]);
    };
    ($name:ident in $dir:literal, wrong: [$($wrong:ident),+ $(,)?] $(,)?) => {
        $crate::exercise!(@all $name, $dir, [], noloom, [$($wrong),+]);
    };
    (@all $name:ident, $dir:literal, $support:tt, $loom:ident, [$($wrong:ident),+]) => {
        // Without a loom model, an exercise does not exist in the `--cfg loom` build: its code
        // may use the crate's loom-switched types outside a model.
        #[cfg_attr(loom, cfg($loom))]
        pub mod $name {
            /// The learner's file (the skeleton until they work on it).
            #[allow(unused, dead_code, clippy::all, clippy::unwrap_used)]
            pub mod learner {
                include!(concat!(env!("CARGO_MANIFEST_DIR"), "/exercises/", $dir, "/exercise.rs"));
                $crate::exercise!(@checks $dir, $support);
            }
            /// The reference solution.
            #[allow(clippy::unwrap_used)]
            pub mod solution {
                include!(concat!(env!("CARGO_MANIFEST_DIR"), "/exercises/", $dir, "/solution.rs"));
                $crate::exercise!(@checks $dir, $support);
            }
            /// Plausible wrong solutions: the bugs learners really write.
            pub mod wrong {
                $(
                    #[allow(unused, dead_code, clippy::all, clippy::unwrap_used)]
                    pub mod $wrong {
                        include!(concat!(
                            env!("CARGO_MANIFEST_DIR"), "/exercises/", $dir, "/wrong_", stringify!($wrong), ".rs"
                        ));
                        $crate::exercise!(@checks $dir, $support);

                        #[cfg(loom)]
                        #[test]
                        #[ignore = "run in a child process by its `rejects` test"]
                        fn loom_model() {
                            checks::model();
                        }
                    }
                )+
            }

            #[test]
            #[ignore = "the learner's exercise: cargo run -p shared --bin exercises -- check"]
            fn check() {
                #[cfg(not(loom))]
                $crate::exercise::assert_passes(stringify!($name), learner::checks::all());
                #[cfg(loom)]
                learner::checks::model();
            }

            #[test]
            fn solution_passes() {
                #[cfg(not(loom))]
                $crate::exercise::assert_passes(
                    concat!(stringify!($name), " (reference solution)"),
                    solution::checks::all(),
                );
                #[cfg(loom)]
                solution::checks::model();
            }

            pub mod rejects {
                $(
                    #[test]
                    fn $wrong() {
                        #[cfg(not(loom))]
                        $crate::exercise::assert_rejected(
                            stringify!($name),
                            stringify!($wrong),
                            super::wrong::$wrong::checks::all(),
                        );
                        #[cfg(loom)]
                        $crate::exercise::assert_rejected(
                            stringify!($name),
                            stringify!($wrong),
                            $crate::exercise::run_in_child(concat!(
                                stringify!($name), "::wrong::", stringify!($wrong), "::loom_model"
                            )),
                        );
                    }
                )+
            }
        }
    };
    (@checks $dir:literal, []) => {
        pub mod checks {
            #[allow(unused_imports)]
            use super::*;
            include!(concat!(env!("CARGO_MANIFEST_DIR"), "/exercises/", $dir, "/checks.rs"));
        }
    };
    (@checks $dir:literal, [$($support:tt)+]) => {
        $crate::exercise!(@checks $dir, []);
        #[allow(unused, dead_code, clippy::unwrap_used)]
        pub mod support {
            $($support)+
        }
    };
}

/// Runs one (ignored) test of this test binary in a child process, and turns its failure into a
/// [`Failure`]: how a loom model of a wrong solution is checked (loom aborts the process after a
/// deadlock, so it cannot be caught in-process).
pub fn run_in_child(test: &str) -> Check {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return Err(Failure::property("runs", format!("current_exe: {e}"))),
    };
    let out = match std::process::Command::new(exe)
        .args([
            "--exact",
            test,
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env("RUST_BACKTRACE", "0")
        .output()
    {
        Ok(o) => o,
        Err(e) => return Err(Failure::property("runs", format!("cannot run {test}: {e}"))),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !text.contains("running 1 test") {
        return Err(Failure::property("runs", format!("no test named {test}")));
    }
    if out.status.success() {
        return Ok(());
    }
    // The first panic message is loom's verdict ("deadlock; threads = …" or the assertion).
    let verdict = text
        .lines()
        .skip_while(|l| !l.contains("panicked at"))
        .nth(1)
        .unwrap_or("the model failed")
        .to_string();
    let property = if verdict.contains("deadlock") {
        "no deadlock, no lost wake-up (loom found an interleaving where every thread sleeps)"
    } else {
        "correct in every interleaving (loom)"
    };
    Err(Failure::property(property, format!("loom: {verdict}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Condvar, Mutex};

    #[test]
    fn the_watchdog_reports_a_deadlock_instead_of_hanging() {
        let r = watchdog("deadlock", Duration::from_millis(300), |progress| {
            progress.tick();
            let a = Arc::new(Mutex::new(()));
            let b = Arc::new(Mutex::new(()));
            let (a2, b2) = (Arc::clone(&a), Arc::clone(&b));
            let barrier = Arc::new(std::sync::Barrier::new(2));
            let bar2 = Arc::clone(&barrier);
            let t = std::thread::Builder::new()
                .name("locks-b-then-a".into())
                .spawn(move || {
                    let _gb = b2.lock();
                    bar2.wait();
                    let _ga = a2.lock();
                })
                .expect("spawn");
            let _ga = a.lock();
            barrier.wait();
            let _gb = b.lock();
            drop(t);
            Ok(())
        });
        let f = r.expect_err("a deadlock must fail");
        assert_eq!(f.property, "no deadlock, no lost wake-up");
        assert!(f.detail.contains("locks-b-then-a"), "{}", f.detail);
    }

    #[test]
    fn the_watchdog_passes_results_and_turns_todo_into_unsolved() {
        assert_eq!(watchdog("ok", Duration::from_secs(5), |_| Ok(7)), Ok(7));
        let f = watchdog::<()>("todo", Duration::from_secs(5), |_| todo!()).unwrap_err();
        assert!(f.unsolved, "{f}");
        let f = watchdog::<()>("boom", Duration::from_secs(5), |_| panic!("boom")).unwrap_err();
        assert!(!f.unsolved && f.detail.contains("boom"), "{f}");
    }

    #[test]
    fn a_lost_wake_up_is_no_progress() {
        let f = watchdog("lost", Duration::from_millis(300), |_| {
            let pair = (Mutex::new(false), Condvar::new());
            // Waits for a notification that never comes.
            let mut g = pair.0.lock().expect("lock");
            while !*g {
                g = pair.1.wait(g).expect("wait");
            }
            Ok(())
        })
        .unwrap_err();
        assert!(f.detail.contains("no progress"), "{f}");
    }

    #[test]
    fn stress_stamps_the_failing_seed() {
        let mut seen = 0;
        let f = stress(50, |seed| {
            seen += 1;
            ensure(seen < 3, "fails on the third run", || {
                format!("seed {seed}")
            })
        })
        .unwrap_err();
        let seed = f.seed.expect("seed recorded");
        assert!(f.detail.contains(&seed.to_string()));
        assert!(f.to_string().contains("EXERCISE_SEED="));
    }

    #[test]
    fn exactly_once_names_lost_and_duplicated_items() {
        assert!(exactly_once(0..5, [4, 3, 2, 1, 0]).is_ok());
        let f = exactly_once(0..5, [0, 1, 1, 2, 3]).unwrap_err();
        assert!(f.detail.contains("1 lost [4]"), "{}", f.detail);
        assert!(f.detail.contains("1 seen too often [1]"), "{}", f.detail);
    }

    #[test]
    fn jitter_is_reproducible_from_its_seed() {
        let mut a = Jitter::new(42, 1);
        let mut b = Jitter::new(42, 1);
        let xs: Vec<u64> = (0..10).map(|_| a.below(1000)).collect();
        let ys: Vec<u64> = (0..10).map(|_| b.below(1000)).collect();
        assert_eq!(xs, ys);
        let mut c = Jitter::new(43, 1);
        assert_ne!(xs, (0..10).map(|_| c.below(1000)).collect::<Vec<_>>());
    }
}
