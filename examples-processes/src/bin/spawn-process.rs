//! Starting and steering child processes with `std::process::Command`: Python's `subprocess`.
//!
//! Course 8.1 "Threading et multiprocessing": *Processus parallèles*, the building block under
//! every process pool.
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
//!
//! # Exercises
//! 1. In step 5, write the whole input from the main thread *before* reading: with
//!    `--stdin-mib 1` it hangs (pipe buffers are 64 KiB). Explain why, then restore the thread.
//! 2. Replace the polling loop of step 3 by a thread that sleeps until the deadline and kills the
//!    child: why must that thread not call `kill` after the main thread has reaped the child?
//! 3. Build `ls | sort | uniq -c` with three `Command`s and check that every child is waited for.
//! 4. Add a step that runs `sh -c "exit 300"`: what code comes back, and why?

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Parser;

/// A tour of `std::process::Command`: args, env, cwd, capture, status, timeout, pipes, stdin.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Deadline for the slow child of step 3, in milliseconds.
    #[arg(long, default_value_t = 300)]
    timeout_ms: u64,
    /// Directory listed by the `ls | wc -l` pipeline of step 4.
    #[arg(long, default_value = "/")]
    dir: PathBuf,
    /// MiB pushed through `cat` in step 5.
    #[arg(long, default_value_t = 8)]
    stdin_mib: usize,
    /// Hidden: run as the child of step 1 (print what we were given).
    #[arg(long, hide = true)]
    child: bool,
    /// Hidden: arguments given to the child.
    #[arg(hide = true)]
    rest: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.child {
        return child_main(&args);
    }
    step1_args_env_cwd()?;
    step2_signals()?;
    step3_timeout(Duration::from_millis(args.timeout_ms))?;
    step4_pipeline(&args.dir)?;
    step5_stdin(args.stdin_mib)?;
    println!("\nall children were waited for: none is left as a zombie or an orphan");
    Ok(())
}

/// The hidden child mode: report what the parent set up, then fail on purpose.
fn child_main(args: &Args) -> anyhow::Result<()> {
    let cwd = std::env::current_dir().context("reading our working directory")?;
    let greeting = std::env::var("GREETING").unwrap_or_else(|_| "(unset)".into());
    println!("child pid {}: args {:?}", std::process::id(), args.rest);
    println!("child: GREETING={greeting}, cwd={}", cwd.display());
    println!(
        "child: HOME is {}",
        if std::env::var_os("HOME").is_some() {
            "set"
        } else {
            "cleared"
        }
    );
    eprintln!("child: this line goes to stderr");
    std::process::exit(3);
}

/// Human words for an exit status: "exited with code 3", "killed by signal 9 (SIGKILL)".
fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with code {code}");
    }
    let sig = status.signal().expect("no code means a signal on Unix");
    let name = match sig {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGABRT => "SIGABRT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        _ => "?",
    };
    format!("killed by signal {sig} ({name})")
}

fn step1_args_env_cwd() -> anyhow::Result<()> {
    println!("== 1. arguments, environment, working directory, captured output ==");
    let exe = std::env::current_exe().context("finding our own binary")?;
    let dir = std::env::temp_dir();
    // Each `.arg` is one argv entry, passed as is: no shell parses it, so spaces, quotes and
    // `$(rm -rf ~)` are just characters. (Python: `subprocess.run([...])`, never `shell=True`.)
    let out = Command::new(&exe)
        .arg("--child")
        .arg("--")
        .args(["two words", "$(not expanded)"])
        .env("GREETING", "bonjour")
        .env_remove("HOME") // The child inherits our environment unless told otherwise.
        .current_dir(&dir)
        .output() // Pipes stdout and stderr, waits, collects both (in two threads' worth of care).
        .context("running the child")?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    println!(
        "captured stderr: {:?}",
        String::from_utf8_lossy(&out.stderr).trim_end()
    );
    println!(
        "status: {} (success: {})",
        describe(out.status),
        out.status.success()
    );
    // A non-zero exit is a *result*, not an `Err`: `output()` only fails if the child could not
    // be started at all. Check the status yourself (Python's `check=True`).
    ensure!(out.status.code() == Some(3), "the child should exit with 3");
    Ok(())
}

fn step2_signals() -> anyhow::Result<()> {
    println!("\n== 2. exit codes and signals ==");
    for script in ["exit 0", "exit 42", "kill -TERM $$", "kill -KILL $$"] {
        let status = Command::new("sh")
            .args(["-c", script])
            .status()
            .context("running sh")?;
        println!("sh -c {script:<16} -> {}", describe(status));
    }
    Ok(())
}

fn step3_timeout(deadline: Duration) -> anyhow::Result<()> {
    println!("\n== 3. a child that outlives its deadline is killed and reaped ==");
    let start = Instant::now();
    let mut child = Command::new("sleep")
        .arg("30")
        .spawn()
        .context("starting sleep")?;
    // std has no `wait_timeout`; poll `try_wait` (cheap: one waitpid(WNOHANG)). Production code
    // uses a pidfd with poll(2), or the `wait-timeout` crate, to avoid the polling latency.
    let status = loop {
        if let Some(status) = child.try_wait().context("polling the child")? {
            break status;
        }
        if start.elapsed() >= deadline {
            child.kill().context("killing the child")?; // SIGKILL; SIGTERM first is politer.
            break child.wait().context("reaping the child")?; // Without this: a zombie.
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    println!(
        "sleep 30 (pid {}) {} after {:?} (deadline {deadline:?})",
        child.id(),
        describe(status),
        start.elapsed()
    );
    ensure!(
        status.signal() == Some(libc::SIGKILL),
        "the child should have been killed"
    );
    Ok(())
}

fn step4_pipeline(dir: &std::path::Path) -> anyhow::Result<()> {
    println!("\n== 4. a pipeline: ls -A {} | wc -l ==", dir.display());
    let mut ls = Command::new("ls")
        .arg("-A")
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting ls")?;
    // Hand ls's stdout to wc as its stdin: the two run at the same time, connected by a kernel
    // pipe; our process never sees the bytes. `take()` moves the pipe out of `ls`, so our copy
    // of the read end is closed once wc has it: otherwise wc would never see EOF.
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
        bail!(
            "pipeline failed: ls {}, wc {}",
            describe(ls_status),
            describe(wc_out.status)
        );
    }
    let counted: usize = String::from_utf8_lossy(&wc_out.stdout)
        .trim()
        .parse()
        .context("parsing wc's output")?;
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .count();
    println!("wc -l says {counted}, std::fs::read_dir says {entries}");
    // Not `ensure!`: a name with a newline in it makes `ls | wc -l` lie (a real pitfall of shell
    // pipelines that `read_dir` does not have).
    if counted != entries {
        println!("they differ: a file name contains a newline, or the directory changed meanwhile");
    }
    Ok(())
}

fn step5_stdin(mib: usize) -> anyhow::Result<()> {
    println!("\n== 5. writing to a child's stdin while reading its stdout ==");
    let input: Vec<u8> = (0..mib * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut cat = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting cat")?;
    let mut stdin = cat.stdin.take().expect("stdin was piped");
    let mut stdout = cat.stdout.take().expect("stdout was piped");
    let start = Instant::now();
    // The deadlock to avoid: if we write everything first, cat fills its stdout pipe (64 KiB),
    // blocks writing, stops reading its stdin, and our write blocks forever. So one thread
    // writes while this one reads. Dropping `stdin` at the end of the thread closes the pipe:
    // that EOF is what tells cat to finish.
    let echoed = std::thread::scope(|s| -> anyhow::Result<Vec<u8>> {
        let writer = s.spawn(move || stdin.write_all(&input).map(|()| input));
        let mut echoed = Vec::with_capacity(mib * 1024 * 1024);
        stdout
            .read_to_end(&mut echoed)
            .context("reading cat's output")?;
        let input = writer
            .join()
            .expect("the writer thread panicked")
            .context("writing to cat")?;
        ensure!(echoed == input, "cat changed the bytes");
        Ok(echoed)
    })?;
    let status = cat.wait().context("waiting for cat")?;
    println!(
        "{} MiB through cat and back in {:?}, identical, cat {}",
        echoed.len() / (1024 * 1024),
        start.elapsed(),
        describe(status)
    );
    Ok(())
}
