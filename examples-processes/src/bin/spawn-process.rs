//! Starting and steering child processes with `std::process::Command`: Python's `subprocess`.
//!
//! Course section **8.1 — Threading et multiprocessing** (*Processus parallèles*): the building
//! block under every process pool; the course's Python is `python/spawn_process.py` (`--python`).
//!
//! Crates: `anyhow = "1"`, `libc = "0.2"` (the harness adds clap).
//!
//! # Concepts
//! - `Command`: arguments (no shell, no quoting bugs), environment, working directory.
//! - `output()` captures stdout and stderr; `ExitStatus` tells an exit code from a signal.
//! - A child that outlives its deadline is killed *and reaped* (`kill` then `wait`): an unreaped
//!   child stays a zombie, a killed-but-unwaited one too.
//! - Pipelines: the `ls | wc -l` shape, one child's stdout becoming the next one's stdin.
//! - Feeding a child's stdin from a thread while reading its stdout, the classic deadlock avoided.
//! - Re-executing the current binary in a hidden mode (`--child ...`): the portable way to run
//!   "a function in another process" (what `multiprocessing` does), nothing to install.
//!
//! # Run
//! ```text
//! cargo run -p examples-processes --bin spawn-process
//! cargo run -p examples-processes --bin spawn-process -- --timeout-ms 50 --dir /usr/bin
//! cargo run -p examples-processes --bin spawn-process -- --stdin-mib 64
//! cargo run -p examples-processes --bin spawn-process -- --python   # the same steps in subprocess
//! ```
//!
//! # What to observe
//! - Step 1: the child sees the arguments, the variable and the directory we gave it, and
//!   its stderr is captured separately from its stdout. `exit 3` is `code 3`, not an error.
//! - Step 2: `killed by signal 15 (SIGTERM)`: `status.code()` is `None` for a signal death.
//! - Step 3: `sleep 30` is killed after the deadline and reaped; the total time is the deadline.
//! - Step 4: `ls | wc -l` counts the same entries as `read_dir` in Rust.
//! - Step 5: megabytes go through `cat` and back without a deadlock, because a thread writes
//!   while the main thread reads.
//! - `--python`: a table, step by step, Rust against `subprocess` (`run`, `Popen`, `wait(timeout)`,
//!   `communicate`): the same endings and counts; Python's `returncode` is negative for a signal.
//!
//! # Exercises
//! 1. Describe how a child ended, code or signal (`exit 300`? a core dump?), checked:
//!    `cargo run -p shared --bin exercises -- check processes/01`.
//! 2. Step 5 without the deadlock (write everything first and 1 MiB hangs: pipe buffers are
//!    64 KiB), checked: `cargo run -p shared --bin exercises -- check processes/02`.
//! 3. Step 3 for many children at once, a child that ignores SIGTERM included, with no zombie
//!    left: `cargo run -p shared --bin exercises -- check processes/03`.
//! 4. Replace the polling loop of step 3 by a thread that sleeps until the deadline and kills the
//!    child: why must that thread not call `kill` after the main thread has reaped the child?
//! 5. Build `ls | sort | uniq -c` with three `Command`s and check that every child is waited for.

// === Lesson: copy from here ===

/// How a child ended. On Unix a process either returns a code (0-255) or is ended by a signal,
/// and then it has no code at all: `status.code()` is `None`, `status.signal()` says which.
mod status {
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    /// Human words for an exit status: "exited with code 3", "killed by signal 9 (SIGKILL)".
    pub fn describe(status: ExitStatus) -> String {
        if let Some(code) = status.code() {
            return format!("exited with code {code}");
        }
        let Some(sig) = status.signal() else {
            return "ended without a code or a signal".into(); // Not on Linux; be honest.
        };
        let name = match sig {
            libc::SIGKILL => "SIGKILL",
            libc::SIGTERM => "SIGTERM",
            libc::SIGINT => "SIGINT",
            libc::SIGABRT => "SIGABRT",
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGPIPE => "SIGPIPE",
            _ => "?",
        };
        format!("killed by signal {sig} ({name})")
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn codes_and_signals_are_told_apart() {
            // The raw wait(2) status: a code sits in the second byte, a signal in the first.
            assert_eq!(describe(ExitStatus::from_raw(3 << 8)), "exited with code 3");
            let killed = ExitStatus::from_raw(libc::SIGKILL);
            assert_eq!(killed.code(), None);
            assert_eq!(describe(killed), "killed by signal 9 (SIGKILL)");
        }
    }
}

/// The tour: each step is one thing `Command` does, printed as it happens.
mod tour {
    use std::io::{self, Read, Write};
    use std::os::unix::process::ExitStatusExt;
    use std::path::Path;
    use std::process::{Child, Command, ExitStatus, Stdio};
    use std::time::{Duration, Instant};

    use anyhow::{Context, bail, ensure};

    use super::status::describe;

    /// The child of step 1 (this binary re-executed with `--child`): report what the parent set
    /// up, then fail on purpose.
    pub fn child_main(args: &[String]) -> anyhow::Result<()> {
        let cwd = std::env::current_dir().context("reading our working directory")?;
        let greeting = std::env::var("GREETING").unwrap_or_else(|_| "(unset)".into());
        println!("child pid {}: args {args:?}", std::process::id());
        println!("child: GREETING={greeting}, cwd={}", cwd.display());
        let home = std::env::var_os("HOME").map_or("cleared", |_| "set");
        println!("child: HOME is {home}");
        eprintln!("child: this line goes to stderr");
        std::process::exit(3);
    }

    /// Returns the child's exit code (3).
    pub fn step1_args_env_cwd() -> anyhow::Result<i32> {
        println!("== 1. arguments, environment, working directory, captured output ==");
        let exe = std::env::current_exe().context("finding our own binary")?;
        // Each `.arg` is one argv entry, passed as is: no shell parses it, so spaces, quotes
        // and `$(rm -rf ~)` are just characters. (Python: `subprocess.run([...])`, never
        // `shell=True`.)
        let out = Command::new(&exe)
            .arg("--child")
            .arg("--")
            .args(["two words", "$(not expanded)"])
            .env("GREETING", "bonjour")
            .env_remove("HOME") // The child inherits our environment unless told otherwise.
            .current_dir(std::env::temp_dir())
            .output() // Pipes stdout and stderr, waits, collects both (without deadlocking).
            .context("running the child")?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!("captured stderr: {:?}", stderr.trim_end());
        let (status, success) = (describe(out.status), out.status.success());
        println!("status: {status} (success: {success})");
        // A non-zero exit is a *result*, not an `Err`: `output()` only fails if the child could
        // not be started at all. Check the status yourself (Python's `check=True`).
        ensure!(out.status.code() == Some(3), "the child should exit with 3");
        Ok(3)
    }

    /// The scripts of step 2, each with how it ended.
    pub const STEP2_SCRIPTS: [&str; 4] = ["exit 0", "exit 42", "kill -TERM $$", "kill -KILL $$"];

    /// Returns how each of `STEP2_SCRIPTS` ended, in words.
    pub fn step2_signals() -> anyhow::Result<Vec<String>> {
        println!("\n== 2. exit codes and signals ==");
        let mut endings = Vec::new();
        for script in STEP2_SCRIPTS {
            let status = Command::new("sh")
                .args(["-c", script])
                .status()
                .context("running sh")?;
            println!("sh -c {script:<16} -> {}", describe(status));
            endings.push(describe(status));
        }
        Ok(endings)
    }

    /// Waits for `child` until `deadline`, then kills *and reaps* it: a killed child that is
    /// not waited for stays a zombie. std has no `wait_timeout`, so this polls `try_wait` (one
    /// `waitpid(WNOHANG)`); production code waits on a pidfd with poll(2), or uses the
    /// `wait-timeout` crate, to avoid the polling latency.
    pub fn wait_or_kill(child: &mut Child, deadline: Duration) -> io::Result<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if start.elapsed() >= deadline {
                child.kill()?; // SIGKILL; SIGTERM first, then SIGKILL, is politer.
                return child.wait(); // Without this: a zombie.
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Returns how `sleep 30` ended, and when.
    pub fn step3_timeout(deadline: Duration) -> anyhow::Result<(String, Duration)> {
        println!("\n== 3. a child that outlives its deadline is killed and reaped ==");
        let start = Instant::now();
        let mut child = Command::new("sleep")
            .arg("30")
            .spawn()
            .context("starting sleep")?;
        let status = wait_or_kill(&mut child, deadline).context("waiting for sleep")?;
        let (pid, elapsed) = (child.id(), start.elapsed());
        let how = describe(status);
        println!("sleep 30 (pid {pid}) {how} after {elapsed:?} (deadline {deadline:?})");
        ensure!(
            status.signal() == Some(libc::SIGKILL),
            "the child should have been killed"
        );
        Ok((how, elapsed))
    }

    /// `ls -A dir | wc -l`: two children connected by a kernel pipe.
    pub fn count_with_ls_wc(dir: &Path) -> anyhow::Result<usize> {
        let mut ls = Command::new("ls")
            .arg("-A")
            .arg(dir)
            .stdout(Stdio::piped())
            .spawn()
            .context("starting ls")?;
        // Hand ls's stdout to wc as its stdin: the two run at the same time and our process
        // never sees the bytes. `take()` moves the pipe out of `ls`, so our copy of the read
        // end is closed once wc has it: otherwise wc would never see EOF.
        let ls_out = ls.stdout.take().expect("stdout was piped");
        let wc = Command::new("wc")
            .arg("-l")
            .stdin(Stdio::from(ls_out))
            .stdout(Stdio::piped())
            .spawn()
            .context("starting wc")?;
        let wc_out = wc.wait_with_output().context("waiting for wc")?;
        let ls_status = ls.wait().context("waiting for ls")?; // Every child is waited for.
        if !ls_status.success() || !wc_out.status.success() {
            let (ls, wc) = (describe(ls_status), describe(wc_out.status));
            bail!("pipeline failed: ls {ls}, wc {wc}");
        }
        let text = String::from_utf8_lossy(&wc_out.stdout);
        text.trim().parse().context("parsing wc's output")
    }

    /// Returns what `ls -A dir | wc -l` counted.
    pub fn step4_pipeline(dir: &Path) -> anyhow::Result<usize> {
        println!("\n== 4. a pipeline: ls -A {} | wc -l ==", dir.display());
        let counted = count_with_ls_wc(dir)?;
        let listing =
            std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
        let entries = listing.count();
        println!("wc -l says {counted}, std::fs::read_dir says {entries}");
        // Not `ensure!`: a name with a newline in it makes `ls | wc -l` lie (a real pitfall of
        // shell pipelines that `read_dir` does not have).
        if counted != entries {
            println!(
                "they differ: a file name contains a newline, or the directory changed meanwhile"
            );
        }
        Ok(counted)
    }

    /// Pushes `input` through `cat` and reads it back, with no deadlock whatever its size.
    pub fn echo_through_cat(input: &[u8]) -> anyhow::Result<(Vec<u8>, ExitStatus)> {
        let mut cat = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting cat")?;
        let mut stdin = cat.stdin.take().expect("stdin was piped");
        let mut stdout = cat.stdout.take().expect("stdout was piped");
        // The deadlock to avoid: if we write everything first, cat fills its stdout pipe (64
        // KiB), blocks writing, stops reading its stdin, and our write blocks forever. So one
        // thread writes while this one reads. Dropping `stdin` at the end of the thread closes
        // the pipe: that EOF is what tells cat to finish.
        let echoed = std::thread::scope(|s| -> anyhow::Result<Vec<u8>> {
            let writer = s.spawn(move || stdin.write_all(input));
            let mut echoed = Vec::new();
            stdout
                .read_to_end(&mut echoed)
                .context("reading cat's output")?;
            let written = writer.join().expect("the writer thread panicked");
            written.context("writing to cat")?;
            Ok(echoed)
        })?;
        Ok((echoed, cat.wait().context("waiting for cat")?))
    }

    /// Returns how many bytes came back through `cat`, identical, and how long it took.
    pub fn step5_stdin(mib: usize) -> anyhow::Result<(usize, Duration)> {
        println!("\n== 5. writing to a child's stdin while reading its stdout ==");
        let input: Vec<u8> = (0..mib * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        let start = Instant::now();
        let (echoed, status) = echo_through_cat(&input)?;
        ensure!(echoed == input, "cat changed the bytes");
        let (elapsed, status) = (start.elapsed(), describe(status));
        println!("{mib} MiB through cat and back in {elapsed:?}, identical, cat {status}");
        Ok((echoed.len(), elapsed))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_child_past_its_deadline_is_killed_and_reaped() {
            let mut child = Command::new("sleep").arg("30").spawn().unwrap();
            let status = wait_or_kill(&mut child, Duration::from_millis(20)).unwrap();
            assert_eq!(status.signal(), Some(libc::SIGKILL));
            let quick = Command::new("true").spawn();
            let status = wait_or_kill(&mut quick.unwrap(), Duration::from_secs(60)).unwrap();
            assert!(status.success(), "a child that ends in time is not killed");
        }

        #[test]
        fn the_pipeline_counts_the_entries_of_a_folder() {
            let dir = std::env::temp_dir().join(format!("spawn-process-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            for name in ["a", "b", ".hidden"] {
                std::fs::write(dir.join(name), b"").unwrap();
            }
            let counted = count_with_ls_wc(&dir);
            std::fs::remove_dir_all(&dir).unwrap();
            assert_eq!(counted.unwrap(), 3);
        }

        #[test]
        fn more_than_a_pipe_buffer_goes_through_cat_without_deadlock() {
            let input: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
            let (echoed, status) = echo_through_cat(&input).unwrap();
            assert!(status.success());
            assert!(echoed == input, "cat changed the bytes");
        }
    }
}

// === Harness: not part of the lesson ===

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use shared::cli;
use shared::python::Python;

/// The course's version (`subprocess`), run by `--python`.
const PYTHON_RECIPE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/spawn_process.py");

/// A tour of `std::process::Command`: args, env, cwd, capture, status, timeout, pipes, stdin.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Deadline for the slow child (`sleep 30`) of step 3, in milliseconds.
    #[arg(long, default_value_t = 300, value_parser = cli::u64_in(1, 10_000))]
    timeout_ms: u64,
    /// Directory listed by the `ls | wc -l` pipeline of step 4.
    #[arg(long, default_value = "/")]
    dir: PathBuf,
    /// MiB pushed through `cat` in step 5 (held twice in memory).
    #[arg(long, default_value_t = 8, value_parser = cli::usize_in(1, 256))]
    stdin_mib: usize,
    /// Also run the course's Python version (python/spawn_process.py: `subprocess.run`,
    /// `Popen`, `communicate`) on the same steps, and compare each step's result.
    #[arg(long)]
    python: bool,
    /// Hidden: run as the child of step 1 (print what we were given).
    #[arg(long, hide = true)]
    child: bool,
    /// Hidden: arguments given to the child.
    #[arg(hide = true)]
    rest: Vec<String>,
}

/// What the tour found, step by step (the Python recipe reports the same).
struct TourResults {
    step1_code: i32,
    step2: Vec<String>,
    step3: String,
    step3_elapsed: Duration,
    step4: usize,
    step5_bytes: usize,
    step5_elapsed: Duration,
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    if args.child {
        tour::child_main(&args.rest)?;
        return Ok(ExitCode::SUCCESS);
    }
    let python = match args.python.then(|| Python::find(&[])).transpose() {
        Ok(python) => python,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let step1_code = tour::step1_args_env_cwd()?;
    let step2 = tour::step2_signals()?;
    let (step3, step3_elapsed) = tour::step3_timeout(Duration::from_millis(args.timeout_ms))?;
    let step4 = tour::step4_pipeline(&args.dir)?;
    let (step5_bytes, step5_elapsed) = tour::step5_stdin(args.stdin_mib)?;
    println!("\nall children were waited for: none is left as a zombie or an orphan");
    let ours = TourResults {
        step1_code,
        step2,
        step3,
        step3_elapsed,
        step4,
        step5_bytes,
        step5_elapsed,
    };
    let Some(py) = python else {
        return Ok(ExitCode::SUCCESS);
    };
    let (timeout, dir, mib) = (
        args.timeout_ms.to_string(),
        args.dir.to_string_lossy().into_owned(),
        args.stdin_mib.to_string(),
    );
    let recipe_args = ["--timeout-ms", &timeout, "--dir", &dir, "--stdin-mib", &mib];
    let theirs = py.run_recipe(PYTHON_RECIPE, &recipe_args)?.json;
    let all_same = compare_with_python(&ours, &theirs, &py.version);
    if !all_same {
        eprintln!("Python's subprocess saw something else: see the table");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints one table, step by step, Rust against Python; true when every step agrees.
fn compare_with_python(ours: &TourResults, theirs: &serde_json::Value, version: &str) -> bool {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_owned();
    let secs = |v: &serde_json::Value| {
        let s = v.as_f64().filter(|s| s.is_finite() && *s >= 0.0);
        s.map_or_else(
            || "?".into(),
            |s| shared::report::fmt_duration(Duration::from_secs_f64(s)),
        )
    };
    let mut rows: Vec<(String, String, String, bool)> = Vec::new();
    let code = theirs["step1_code"].as_i64();
    let same = code == Some(i64::from(ours.step1_code));
    rows.push((
        "1. child's exit code".into(),
        ours.step1_code.to_string(),
        code.map_or_else(|| "?".into(), |c| c.to_string()),
        same,
    ));
    for (i, script) in tour::STEP2_SCRIPTS.iter().enumerate() {
        let python = text(&theirs["step2"][i]);
        let same = python == ours.step2[i];
        rows.push((
            format!("2. sh -c '{script}'"),
            ours.step2[i].clone(),
            python,
            same,
        ));
    }
    let python = text(&theirs["step3"]["status"]);
    rows.push((
        "3. sleep 30 past its deadline".into(),
        format!(
            "{}, after {}",
            ours.step3,
            shared::report::fmt_duration(ours.step3_elapsed)
        ),
        format!("{python}, after {}", secs(&theirs["step3"]["elapsed_s"])),
        python == ours.step3,
    ));
    let count = theirs["step4"].as_u64();
    rows.push((
        "4. ls -A | wc -l".into(),
        ours.step4.to_string(),
        count.map_or_else(|| "?".into(), |c| c.to_string()),
        count == Some(ours.step4 as u64),
    ));
    let bytes = theirs["step5"]["bytes"].as_u64();
    let identical = theirs["step5"]["identical"] == true;
    rows.push((
        "5. stdin through cat".into(),
        format!(
            "{} bytes in {}",
            ours.step5_bytes,
            shared::report::fmt_duration(ours.step5_elapsed)
        ),
        format!(
            "{} bytes in {}",
            bytes.unwrap_or(0),
            secs(&theirs["step5"]["wall_s"])
        ),
        identical && bytes == Some(ours.step5_bytes as u64),
    ));
    println!("\nthe same steps with Python's subprocess ({version}, python/spawn_process.py):");
    println!(
        "{:<31} | {:<44} | {:<44} | same",
        "step", "Rust (std::process)", "Python (subprocess)"
    );
    println!("{}", "-".repeat(134));
    for (step, rust, python, same) in &rows {
        let same = if *same { "yes" } else { "NO" };
        println!("{step:<31} | {rust:<44} | {python:<44} | {same}");
    }
    println!(
        "Python's returncode is negative for a signal (-9); described here in the same words."
    );
    rows.iter().all(|r| r.3)
}
