// Checks of processes/03, compiled against the learner's file, the solution and each wrong one.

use shared::exercise::{Check, Failure, Jitter, Progress, ensure, stress, watchdog};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(1);

/// What a child is, and how it must end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Waits until the three members have started, then exits 0 (gives up after 30 s).
    Member(u32),
    /// `exec sleep 30`: killed at the deadline.
    Sleeper,
    /// Ignores SIGTERM, then sleeps: only SIGKILL stops it.
    Stubborn,
    /// `exit 3`.
    Quick,
}

fn command(kind: Kind, dir: &Path) -> Command {
    let dir = dir.display();
    let script = match kind {
        Kind::Member(i) => format!(
            "touch '{dir}/member-{i}'; n=0; \
             while [ \"$(ls '{dir}' | wc -l)\" -lt 3 ]; do \
             n=$((n+1)); [ $n -gt 3000 ] && exit 9; sleep 0.01; done; exit 0"
        ),
        Kind::Sleeper => "exec sleep 30".into(),
        Kind::Stubborn => "trap '' TERM; exec sleep 30".into(),
        Kind::Quick => "exit 3".into(),
    };
    let mut cmd = Command::new("sh");
    // No stdio of ours: a child left running by a wrong solution must not hold the test's
    // output pipes open (whoever reads them would wait for it).
    cmd.args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// `Some('Z')` for a zombie, another state for a live process, `None` once it is reaped.
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

fn scratch(seed: u64) -> PathBuf {
    shared::exercise::scratch_path(&format!("processes-03-{seed}"))
}

fn one_run(seed: u64, progress: &Progress) -> Check {
    let mut kinds = vec![
        Kind::Member(0),
        Kind::Member(1),
        Kind::Member(2),
        Kind::Sleeper,
        Kind::Stubborn,
        Kind::Quick,
    ];
    let mut draw = Jitter::new(seed, 0);
    for i in (1..kinds.len()).rev() {
        kinds.swap(i, draw.below(i as u64 + 1) as usize);
    }
    let dir = scratch(seed);
    std::fs::create_dir_all(&dir).map_err(|e| Failure::property("runs", e.to_string()))?;
    let commands = kinds.iter().map(|&k| command(k, &dir)).collect();
    let ends = run_all(commands, DEADLINE);
    let _ = std::fs::remove_dir_all(&dir);
    let ends = ends.map_err(|e| Failure::property("runs", format!("run_all failed: {e}")))?;
    progress.tick();
    ensure(ends.len() == kinds.len(), "one ending per command, in order", || {
        format!("{} commands, {} endings", kinds.len(), ends.len())
    })?;
    for end in &ends {
        let pid = end.pid;
        match state(pid) {
            None => {}
            Some('Z') => {
                return Err(Failure::property(
                    "no zombie: every killed child is reaped",
                    format!("child {pid} is a zombie: killed (or ended) but never waited for"),
                ));
            }
            Some(s) => {
                return Err(Failure::property(
                    "no child outlives the call",
                    format!("child {pid} is still there (state {s})"),
                ));
            }
        }
    }
    for (kind, end) in kinds.iter().zip(&ends) {
        let code = match end.ending {
            Ending::Exited(status) => status.code(),
            Ending::TimedOut => None,
        };
        let timed_out = end.ending == Ending::TimedOut;
        match kind {
            Kind::Member(_) => ensure(code == Some(0), "every child starts at once", || {
                format!("a child that needs the others running ended {:?}", end.ending)
            })?,
            Kind::Sleeper | Kind::Stubborn => {
                ensure(timed_out, "a child past the deadline is killed", || {
                    format!("{kind:?} ended {:?}", end.ending)
                })?
            }
            Kind::Quick => ensure(code == Some(3), "a child that ends in time keeps its status", || {
                format!("`exit 3` ended {:?}", end.ending)
            })?,
        }
    }
    Ok(())
}

pub fn all() -> Check {
    watchdog("task-timeout", Duration::from_secs(8), |progress| {
        stress(2, |seed| one_run(seed, progress))
    })
}
