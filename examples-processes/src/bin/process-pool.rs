//! A fault-tolerant pool of worker processes fed over pipes: `multiprocessing.Pool`, built by hand.
//!
//! Course 8.1 "Threading et multiprocessing": *Processus parallèles*, *Pools de workers*,
//! communication between processes.
//!
//! # Concepts
//! - The pool re-executes its own binary in a hidden `--worker` mode (`std::env::current_exe()`),
//!   so nothing else has to be installed: this is what `multiprocessing`'s "spawn" start method does.
//! - One parent thread per worker ("slot") owns the `Child`, writes requests to its stdin and
//!   reads answers from its stdout. Requests and answers are *frames*: a 4-byte little-endian
//!   length, then the payload (see `mod frame` for why not JSON lines).
//! - Fault tolerance: a worker that dies (EOF on its stdout, exit status) or talks garbage is
//!   reaped and replaced, and its task is run again on the new worker. A task that kills every
//!   worker it touches ("poison") is reported as failed after `--max-attempts`, never retried forever.
//! - No task is lost or done twice: a task belongs to exactly one slot thread until its outcome
//!   is sent, and the collector checks that every id arrives exactly once.
//! - No orphans: Ctrl-C or an error in the parent kills and reaps every worker (a drop guard);
//!   if the parent is SIGKILLed, the kernel kills the workers (`PR_SET_PDEATHSIG`).
//!
//! # Run
//! ```text
//! cargo run --release -p examples-processes --bin process-pool
//! cargo run --release -p examples-processes --bin process-pool -- --workers 4 --tasks 200
//! cargo run --release -p examples-processes --bin process-pool -- --chaos          # SIGKILL 20% of first attempts
//! cargo run --release -p examples-processes --bin process-pool -- --chaos 0.5 --poison 7
//! cargo run --release -p examples-processes --bin process-pool -- --json --no-compare
//! ```
//! While it runs, `pstree -p $(pgrep -n process-pool)` shows the workers; `kill -9` one of them
//! by hand and watch the pool replace it.
//!
//! # What to observe
//! - The table: N worker processes against 1 worker, and against N threads (rayon) in one process.
//!   For tasks of ~20 ms, processes cost almost nothing more than threads: the pool is started
//!   once and each task costs one small write and one small read.
//! - `--chaos`: lines such as `worker 4242 failed on task 17 (attempt 1/3): worker closed its
//!   stdout (killed by signal 9 (SIGKILL))`, then the results are still all there, in
//!   submission order, and agree with the 1-worker run.
//! - `--poison 7`: task 7 crashes its worker 3 times (SIGABRT) and is reported failed; exit code 1.
//! - Ctrl-C: `interrupted`, exit code 130, and `pgrep -f process-pool` finds nothing left.
//!
//! # Exercises
//! 1. Re-queue a failed task to *any* slot instead of retrying it on the same slot (hint: a second
//!    channel for retries that slots poll first). What does it change when one slot is slow?
//! 2. Send tasks in chunks of 8 per frame (`chunksize` in `Pool.map`) and measure with
//!    `--rounds 20000`: when does the per-message cost start to matter?
//! 3. Add a per-task timeout: a worker that does not answer within 10× the median task time is
//!    killed and the task retried (a hung C library is as common as a crashed one).
//! 4. Replace `--chaos` with an external monkey: a thread that picks a random *pid* and kills it.
//!    Why is killing by pid racy once the slot has reaped the child (pid reuse), and how does
//!    the `Mutex<Option<u32>>` per slot below avoid it?

use std::io::{BufReader, BufWriter, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use indicatif::ProgressBar;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;
use shared::report::{Row, SpeedupTable};

/// A pool of worker processes (this binary re-executed with `--worker`) over stdin/stdout pipes.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Number of worker processes (default: available cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Number of tasks in the batch.
    #[arg(long, default_value_t = 48)]
    tasks: u64,
    /// Work per task (`shared::work::cpu_task` rounds; ~1 ns each in release, so 20 ms a task).
    #[arg(long, default_value_t = 20_000_000)]
    rounds: u32,
    /// Seed for the task inputs and for the chaos monkey.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// SIGKILL the worker during the first attempt of this fraction of the tasks (`--chaos` = 0.2).
    #[arg(long, num_args = 0..=1, default_missing_value = "0.2", value_name = "FRACTION")]
    chaos: Option<f64>,
    /// Make task K a "poison" task that crashes (aborts) every worker that runs it. Repeatable.
    #[arg(long, value_name = "K")]
    poison: Vec<u64>,
    /// Attempts per task before it is reported as failed.
    #[arg(long, default_value_t = 3)]
    max_attempts: u32,
    /// Skip the 1-worker and rayon comparison runs (run the pool once).
    #[arg(long)]
    no_compare: bool,
    /// Print every result (default: the first few and a checksum).
    #[arg(long)]
    print_all: bool,
    /// Print one JSON object (results, failures, counters, timings) instead of text.
    #[arg(long)]
    json: bool,

    // ---- Hidden: the worker side, and hooks for the integration tests. ----
    /// Run as a worker: read request frames on stdin, answer on stdout.
    #[arg(long, hide = true)]
    worker: bool,
    /// (worker) Pid of the parent that started us, to close the PR_SET_PDEATHSIG race.
    #[arg(long, hide = true)]
    parent_pid: Option<u32>,
    /// (worker) Misbehave: write garbage on stdout instead of the first answer.
    #[arg(long, hide = true)]
    garbage: bool,
    /// (parent) The first worker started is told to misbehave with `--garbage`.
    #[arg(long, hide = true)]
    garbage_worker: bool,
    /// A unique string passed on to every worker's command line, so tests can find them in /proc.
    #[arg(long, hide = true)]
    marker: Option<String>,
    /// Workers skip PR_SET_PDEATHSIG (the parent passes it on): lets a test show the orphans.
    #[arg(long, hide = true)]
    no_pdeathsig: bool,
}

/// One unit of work. `poison` travels to the worker (it stands for an input that crashes it,
/// like a malformed file that makes a C library segfault); `chaos` stays in the parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Task {
    id: u64,
    seed: u64,
    rounds: u32,
    poison: bool,
    /// Parent-side only: the chaos monkey kills the worker during this task's first attempt.
    chaos: bool,
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    if args.worker {
        worker_main(&args)?;
        return Ok(ExitCode::SUCCESS);
    }
    parent_main(&args)
}

// ============================================================================================
// The wire format.
// ============================================================================================

/// Length-prefixed frames: `[len: u32 little-endian][payload: len bytes]`.
///
/// Why not JSON lines? Both work (the image batch of this crate uses JSON lines, because its
/// messages are paths and error texts and being able to drive a worker by hand with `echo` is
/// worth a lot). Here the payload is a few integers, and a length prefix gives three things:
/// the reader knows the size *before* reading, so it can refuse an absurd size without
/// allocating it (a newline-delimited reader must cap `read_line` itself or a worker that never
/// prints `\n` eats all memory); payloads are binary-safe with no escaping; and a cut-off stream
/// is detected exactly ("EOF after 3 of 22 bytes"). The price: not human-readable, and one
/// wrong byte desynchronises the stream for good; so the first protocol error retires the worker.
mod frame {
    use std::io::{self, Read, Write};

    /// Our messages are under 32 bytes; anything above this cap is garbage, not a big message.
    pub const MAX_FRAME: usize = 64 * 1024;

    #[derive(Debug, thiserror::Error)]
    pub enum FrameError {
        #[error("frame of {0} bytes is over the {MAX_FRAME}-byte limit (garbage on the pipe?)")]
        TooLarge(usize),
        #[error("stream ended inside a frame: got {got} of {want} bytes")]
        Truncated { got: usize, want: usize },
        #[error("malformed message: {0}")]
        BadMessage(String),
        #[error(transparent)]
        Io(#[from] io::Error),
    }

    /// Writes one frame. The caller flushes (a `BufWriter` makes header + payload one `write(2)`).
    pub fn write_frame(w: &mut impl Write, payload: &[u8]) -> Result<(), FrameError> {
        if payload.len() > MAX_FRAME {
            return Err(FrameError::TooLarge(payload.len()));
        }
        let len = u32::try_from(payload.len()).expect("MAX_FRAME fits in u32");
        w.write_all(&len.to_le_bytes())?;
        w.write_all(payload)?;
        Ok(())
    }

    /// Reads one frame. `Ok(None)` is a clean end of stream (EOF exactly between two frames);
    /// EOF anywhere else is `Truncated`.
    pub fn read_frame(r: &mut impl Read) -> Result<Option<Vec<u8>>, FrameError> {
        let mut header = [0u8; 4];
        let got = read_full(r, &mut header)?;
        if got == 0 {
            return Ok(None);
        }
        if got < header.len() {
            return Err(FrameError::Truncated {
                got,
                want: header.len(),
            });
        }
        let len = u32::from_le_bytes(header) as usize;
        if len > MAX_FRAME {
            // Check before allocating: "Hell" read as a length is 1.8 GB.
            return Err(FrameError::TooLarge(len));
        }
        let mut payload = vec![0u8; len];
        let got = read_full(r, &mut payload)?;
        if got < len {
            return Err(FrameError::Truncated { got, want: len });
        }
        Ok(Some(payload))
    }

    /// Like `read_exact`, but says how many bytes arrived before EOF instead of failing.
    fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match r.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
    }
}

use frame::FrameError;

const TAG_REQUEST: u8 = b'Q';
const TAG_ANSWER: u8 = b'A';

fn encode_request(t: &Task) -> Vec<u8> {
    let mut p = Vec::with_capacity(22);
    p.push(TAG_REQUEST);
    p.extend_from_slice(&t.id.to_le_bytes());
    p.extend_from_slice(&t.seed.to_le_bytes());
    p.extend_from_slice(&t.rounds.to_le_bytes());
    p.push(u8::from(t.poison));
    p
}

fn decode_request(p: &[u8]) -> Result<Task, FrameError> {
    if p.len() != 22 || p[0] != TAG_REQUEST {
        return Err(FrameError::BadMessage(format!(
            "request of {} bytes",
            p.len()
        )));
    }
    Ok(Task {
        id: u64::from_le_bytes(p[1..9].try_into().expect("8 bytes")),
        seed: u64::from_le_bytes(p[9..17].try_into().expect("8 bytes")),
        rounds: u32::from_le_bytes(p[17..21].try_into().expect("4 bytes")),
        poison: p[21] != 0,
        chaos: false,
    })
}

fn encode_answer(id: u64, value: u64) -> Vec<u8> {
    let mut p = Vec::with_capacity(17);
    p.push(TAG_ANSWER);
    p.extend_from_slice(&id.to_le_bytes());
    p.extend_from_slice(&value.to_le_bytes());
    p
}

fn decode_answer(p: &[u8]) -> Result<(u64, u64), FrameError> {
    if p.len() != 17 || p[0] != TAG_ANSWER {
        return Err(FrameError::BadMessage(format!(
            "answer of {} bytes",
            p.len()
        )));
    }
    let id = u64::from_le_bytes(p[1..9].try_into().expect("8 bytes"));
    let value = u64::from_le_bytes(p[9..17].try_into().expect("8 bytes"));
    Ok((id, value))
}

// ============================================================================================
// The worker process.
// ============================================================================================

fn worker_main(args: &Args) -> anyhow::Result<()> {
    if !args.no_pdeathsig {
        die_with_parent(args.parent_pid)?;
    }
    let mut input = BufReader::new(std::io::stdin().lock());
    let mut output = BufWriter::new(std::io::stdout().lock());
    let mut misbehave = args.garbage;
    // Stdout is the protocol channel: anything else printed there (a debug `println!`, a chatty
    // library) corrupts it. Workers log to stderr only.
    while let Some(payload) = frame::read_frame(&mut input).context("reading a request")? {
        let task = decode_request(&payload)?;
        if task.poison {
            // Stands for a real crash (segfault in a C decoder, an `abort` in an assertion).
            eprintln!(
                "worker {}: task {} is poison, aborting",
                std::process::id(),
                task.id
            );
            std::process::abort();
        }
        let value = shared::work::cpu_task(task.seed, task.rounds);
        if misbehave {
            misbehave = false;
            output.write_all(b"Hello from a worker that prints debug output on stdout!\n")?;
        } else {
            frame::write_frame(&mut output, &encode_answer(task.id, value))?;
        }
        output.flush().context("answering the parent")?;
    }
    // EOF on stdin: the parent closed our pipe, the batch is over.
    Ok(())
}

/// Ask the kernel to SIGKILL us when our parent dies, so a SIGKILLed parent (which runs no
/// cleanup code at all) leaves no orphan workers spinning on CPU.
///
/// Two pitfalls: (1) "parent" means the parent *thread*: if the thread that spawned us exits,
/// we are killed even if the process lives on. Here each slot thread lives as long as its
/// worker, so that is what we want. (2) The parent may already be dead by the time we get
/// here; then we were re-parented (to init or a subreaper) and the signal will never come, so
/// we compare `getppid()` with the pid the parent gave us. Python's `multiprocessing` does not
/// do this: SIGKILL a Pool's parent and its workers keep running.
fn die_with_parent(expected_parent: Option<u32>) -> anyhow::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number; no pointers are passed.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("prctl(PR_SET_PDEATHSIG)");
    }
    if let Some(parent) = expected_parent
        && std::os::unix::process::parent_id() != parent
    {
        bail!("parent {parent} died before the worker started");
    }
    Ok(())
}

// ============================================================================================
// The parent: the pool.
// ============================================================================================

#[derive(Clone, Debug, Serialize)]
struct Outcome {
    id: u64,
    seed: u64,
    /// `Some(result)` or `None` when the task failed.
    value: Option<u64>,
    error: Option<String>,
    attempts: u32,
}

/// Counters over one run of the pool.
#[derive(Default, Debug, Serialize, Clone, Copy)]
struct Stats {
    workers_started: u64,
    worker_failures: u64,
    chaos_kills: u64,
    protocol_errors: u64,
}

struct PoolConfig {
    exe: PathBuf,
    workers: usize,
    max_attempts: u32,
    marker: Option<String>,
    no_pdeathsig: bool,
    /// The next worker started gets `--garbage` (taken once, by whichever slot spawns first).
    garbage_pending: AtomicBool,
}

/// What the slots share with the collector. Every field exists for shutdown.
struct PoolState {
    /// Set by Ctrl-C, or by the drop guard when the parent bails out with an error.
    stop: Arc<AtomicBool>,
    /// Per slot: pid of its live, *not yet reaped* worker. A pid stays ours until we `wait()`
    /// for it; after that the kernel may give it to an unrelated process. So whoever kills by
    /// pid holds this lock, and the slot clears it (under the lock) before reaping.
    pids: Vec<Mutex<Option<u32>>>,
    started: AtomicU64,
}

impl PoolState {
    /// SIGKILL every live worker. The slot threads then see EOF, reap them and stop.
    fn kill_all(&self) {
        for slot in &self.pids {
            let pid = slot.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(pid) = *pid {
                let pid = libc::pid_t::try_from(pid).expect("pids fit in pid_t");
                // SAFETY: kill(2) takes plain integers; the pid is an unreaped child of ours
                // (guaranteed by holding the lock), so it cannot name another process.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// Kills every worker if the collector leaves early (an error, a panic). Disarmed on success.
struct KillOnDrop<'a> {
    state: &'a PoolState,
    armed: bool,
}

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.state.stop.store(true, Ordering::SeqCst);
            self.state.kill_all();
        }
    }
}

/// A live worker process and our ends of its pipes.
struct Worker {
    child: Child,
    pid: u32,
    to_worker: BufWriter<ChildStdin>,
    from_worker: BufReader<ChildStdout>,
}

impl Worker {
    fn spawn(cfg: &PoolConfig) -> anyhow::Result<Worker> {
        let mut cmd = Command::new(&cfg.exe);
        cmd.arg("--worker")
            .arg("--parent-pid")
            .arg(std::process::id().to_string());
        if let Some(marker) = &cfg.marker {
            cmd.arg("--marker").arg(marker);
        }
        if cfg.no_pdeathsig {
            cmd.arg("--no-pdeathsig");
        }
        if cfg.garbage_pending.swap(false, Ordering::SeqCst) {
            cmd.arg("--garbage");
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Worker panics and logs show up on our terminal.
            .stderr(Stdio::inherit())
            // Own process group: Ctrl-C in the terminal goes to the foreground group, i.e. to us
            // only; the parent decides what happens to its workers. (Python's Pool workers get
            // the SIGINT too, and each one prints a KeyboardInterrupt traceback.)
            .process_group(0);
        // std creates the pipes with O_CLOEXEC: worker B does not inherit worker A's pipe ends,
        // so when A dies we really see EOF. (With a bare fork() and no close_fds, EOF never comes.)
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting worker {}", cfg.exe.display()))?;
        let pid = child.id();
        let stdin = child.stdin.take().expect("stdin was piped");
        let stdout = child.stdout.take().expect("stdout was piped");
        Ok(Worker {
            child,
            pid,
            to_worker: BufWriter::new(stdin),
            from_worker: BufReader::new(stdout),
        })
    }

    /// Sends one task and waits for its answer. Any error means: this worker is unusable (dead,
    /// or out of sync with the protocol); replace it.
    fn run(&mut self, task: &Task, chaos_delay: Option<Duration>) -> Result<u64, FrameError> {
        let send = frame::write_frame(&mut self.to_worker, &encode_request(task))
            .and_then(|()| self.to_worker.flush().map_err(FrameError::from));
        // A dead worker makes the write fail with EPIPE (Rust ignores SIGPIPE, so it is an error,
        // not a silent death of the parent). Its exit status is more useful than "broken pipe".
        send?;
        if let Some(delay) = chaos_delay {
            // The chaos monkey strikes mid-task. It goes through the owner of the `Child`, so the
            // pid cannot have been reaped and reused (see exercise 4).
            std::thread::sleep(delay);
            let _ = self.child.kill();
        }
        let answer = match frame::read_frame(&mut self.from_worker) {
            Ok(Some(payload)) => payload,
            Ok(None) => {
                return Err(FrameError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "worker closed its stdout",
                )));
            }
            Err(e) => return Err(e),
        };
        let (id, value) = decode_answer(&answer)?;
        if id != task.id {
            return Err(FrameError::BadMessage(format!(
                "answer for task {id} while task {} was running",
                task.id
            )));
        }
        Ok(value)
    }
}

/// Human words for an exit status: "exited with code 101", "killed by signal 9 (SIGKILL)".
fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with code {code}");
    }
    let sig = status.signal().unwrap_or(0);
    let name = match sig {
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGPIPE => "SIGPIPE",
        _ => "?",
    };
    format!("killed by signal {sig} ({name})")
}

/// The slot's side of unregister-then-reap. `graceful`: close stdin and let the worker exit;
/// otherwise SIGKILL it first (it may be stuck or talking garbage).
fn retire(state: &PoolState, slot: usize, mut worker: Worker, graceful: bool) -> String {
    *state.pids[slot].lock().unwrap_or_else(|e| e.into_inner()) = None;
    if !graceful {
        let _ = worker.child.kill(); // Err only if it already exited, which is fine.
    }
    drop(worker.to_worker); // EOF on the worker's stdin: a healthy worker returns from its loop.
    match worker.child.wait() {
        Ok(status) => describe(status),
        Err(e) => format!("could not be reaped: {e}"),
    }
}

/// One parent thread per worker: takes tasks from the queue, runs each on its worker, replaces
/// the worker when it fails, and sends exactly one `Outcome` per task it took.
fn run_slot(
    slot: usize,
    cfg: &PoolConfig,
    state: &PoolState,
    tasks: &Receiver<Task>,
    outcomes: &Sender<Outcome>,
    log: &ProgressBar,
) -> Stats {
    let mut stats = Stats::default();
    let mut worker: Option<Worker> = None;
    'tasks: for task in tasks.iter() {
        let mut attempt = 0;
        let result = loop {
            if state.stop.load(Ordering::SeqCst) {
                break 'tasks;
            }
            attempt += 1;
            if worker.is_none() {
                match Worker::spawn(cfg) {
                    Ok(w) => {
                        *state.pids[slot].lock().unwrap_or_else(|e| e.into_inner()) = Some(w.pid);
                        stats.workers_started += 1;
                        state.started.fetch_add(1, Ordering::Relaxed);
                        worker = Some(w);
                        // Registered first, checked second: a concurrent `kill_all` either sees
                        // this pid or we see its stop flag.
                        if state.stop.load(Ordering::SeqCst) {
                            break 'tasks;
                        }
                    }
                    Err(e) => break Err(format!("{e:#}")),
                }
            }
            let w = worker.as_mut().expect("a worker was just ensured");
            let chaos = (task.chaos && attempt == 1).then(|| chaos_delay(&task));
            match w.run(&task, chaos) {
                Ok(value) => break Ok(value),
                Err(err) => {
                    let dead = worker.take().expect("the worker that just failed");
                    let pid = dead.pid;
                    let status = retire(state, slot, dead, false);
                    if state.stop.load(Ordering::SeqCst) {
                        break 'tasks; // Killed by our own shutdown, not a failure to report.
                    }
                    stats.worker_failures += 1;
                    stats.chaos_kills += u64::from(chaos.is_some());
                    if matches!(err, FrameError::TooLarge(_) | FrameError::BadMessage(_)) {
                        stats.protocol_errors += 1;
                    }
                    let what = format!(
                        "worker {pid} failed on task {} (attempt {attempt}/{}): {err} ({status})",
                        task.id, cfg.max_attempts
                    );
                    log.suspend(|| eprintln!("{what}"));
                    if attempt >= cfg.max_attempts {
                        break Err(format!("gave up after {attempt} attempts; last: {what}"));
                    }
                }
            }
        };
        let (value, error) = match result {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(e)),
        };
        let outcome = Outcome {
            id: task.id,
            seed: task.seed,
            value,
            error,
            attempts: attempt,
        };
        if outcomes.send(outcome).is_err() {
            break; // The collector is gone (shutting down).
        }
    }
    if let Some(w) = worker.take() {
        let graceful = !state.stop.load(Ordering::SeqCst);
        retire(state, slot, w, graceful);
    }
    stats
}

/// How long the monkey waits before striking: a few ms, so it lands while the task computes.
fn chaos_delay(task: &Task) -> Duration {
    let mut rng = ChaCha8Rng::seed_from_u64(task.seed ^ 0xC4A05);
    Duration::from_micros(rng.random_range(0..2_000))
}

struct PoolRun {
    outcomes: Vec<Outcome>,
    stats: Stats,
    interrupted: bool,
}

/// Runs the whole batch on `cfg.workers` processes; outcomes come back in submission order.
fn run_pool(
    tasks: &[Task],
    cfg: &PoolConfig,
    stop: &Arc<AtomicBool>,
    json: bool,
) -> anyhow::Result<PoolRun> {
    let state = PoolState {
        stop: Arc::clone(stop),
        pids: (0..cfg.workers).map(|_| Mutex::new(None)).collect(),
        started: AtomicU64::new(0),
    };
    // The whole batch is already in memory, so the queue is filled up front and closed; its
    // capacity is the batch. For a stream of tasks, use a small capacity and a feeder thread:
    // the producer then blocks when the workers fall behind (back-pressure).
    let (task_tx, task_rx) = crossbeam_channel::bounded::<Task>(tasks.len().max(1));
    for t in tasks {
        task_tx.send(*t).expect("the queue holds the whole batch");
    }
    drop(task_tx);
    let (out_tx, out_rx) = crossbeam_channel::unbounded::<Outcome>();
    let bar = shared::progress::bar(tasks.len() as u64, json);

    std::thread::scope(|scope| {
        let mut guard = KillOnDrop {
            state: &state,
            armed: true,
        };
        let slots: Vec<_> = (0..cfg.workers)
            .map(|slot| {
                let (state, task_rx, out_tx, bar) =
                    (&state, task_rx.clone(), out_tx.clone(), bar.clone());
                std::thread::Builder::new()
                    .name(format!("slot-{slot}"))
                    .spawn_scoped(scope, move || {
                        run_slot(slot, cfg, state, &task_rx, &out_tx, &bar)
                    })
                    .expect("spawning a slot thread")
            })
            .collect();
        drop(out_tx); // The slots hold the only senders: when they all finish, `recv` says so.

        // Collect in any order, store by id: results are returned in submission order.
        let mut by_id: Vec<Option<Outcome>> = vec![None; tasks.len()];
        let mut interrupted = false;
        loop {
            match out_rx.recv_timeout(Duration::from_millis(50)) {
                Ok(o) => {
                    let slot = &mut by_id[usize::try_from(o.id).expect("task ids index the batch")];
                    // The invariant the whole design exists for.
                    assert!(slot.is_none(), "task {} finished twice", o.id);
                    *slot = Some(o);
                    bar.inc(1);
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if stop.load(Ordering::SeqCst) {
                interrupted = true;
                break; // The guard kills the workers; the scope then joins the slot threads.
            }
        }
        if !interrupted {
            guard.armed = false;
        }
        drop(guard);
        let mut stats = Stats::default();
        for s in slots {
            let s = s.join().expect("a slot thread panicked");
            stats.workers_started += s.workers_started;
            stats.worker_failures += s.worker_failures;
            stats.chaos_kills += s.chaos_kills;
            stats.protocol_errors += s.protocol_errors;
        }
        bar.finish_and_clear();
        if interrupted {
            return Ok(PoolRun {
                outcomes: by_id.into_iter().flatten().collect(),
                stats,
                interrupted,
            });
        }
        let outcomes = by_id
            .into_iter()
            .enumerate()
            .map(|(i, o)| o.with_context(|| format!("task {i} has no outcome")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(PoolRun {
            outcomes,
            stats,
            interrupted,
        })
    })
}

fn make_tasks(args: &Args) -> Vec<Task> {
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let chaos = args.chaos.unwrap_or(0.0);
    (0..args.tasks)
        .map(|id| Task {
            id,
            seed: rng.random(),
            rounds: args.rounds,
            poison: args.poison.contains(&id),
            chaos: rng.random::<f64>() < chaos,
        })
        .collect()
}

fn parent_main(args: &Args) -> anyhow::Result<ExitCode> {
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    if let Some(c) = args.chaos
        && !(0.0..=1.0).contains(&c)
    {
        bail!("--chaos takes a fraction between 0 and 1, got {c}");
    }
    if args.max_attempts == 0 {
        bail!("--max-attempts must be at least 1");
    }
    let stop = shared::shutdown::stop_flag_on_ctrl_c()?;
    let exe = std::env::current_exe().context("finding our own binary to re-execute")?;
    let tasks = make_tasks(args);
    let config = |workers, garbage| PoolConfig {
        exe: exe.clone(),
        workers,
        max_attempts: args.max_attempts,
        marker: args.marker.clone(),
        no_pdeathsig: args.no_pdeathsig,
        garbage_pending: AtomicBool::new(garbage),
    };
    if !args.json {
        println!(
            "process-pool: {} tasks × {} rounds on {workers} worker processes (this binary with --worker)",
            tasks.len(),
            args.rounds
        );
    }

    let mut table = SpeedupTable::new(format!(
        "{} CPU-bound tasks, {} rounds each",
        tasks.len(),
        args.rounds
    ));
    let mut baseline: Option<Vec<Outcome>> = None;
    if !args.no_compare {
        let calm: Vec<Task> = tasks.iter().map(|t| Task { chaos: false, ..*t }).collect();
        let run = shared::report::timed(|| run_pool(&calm, &config(1, false), &stop, args.json));
        let pool = run.value?;
        if pool.interrupted {
            return interrupted(&stop);
        }
        table.push(
            Row::new("1 worker process", run.wall)
                .cpu(run.cpu)
                .note("baseline"),
        );
        baseline = Some(pool.outcomes);
    }

    let run = shared::report::timed(|| {
        run_pool(
            &tasks,
            &config(workers, args.garbage_worker),
            &stop,
            args.json,
        )
    });
    let pool = run.value?;
    if pool.interrupted {
        return interrupted(&stop);
    }
    let values = |os: &[Outcome]| os.iter().map(|o| o.value).collect::<Vec<_>>();
    let mut row = Row::new(format!("{workers} worker processes"), run.wall)
        .cpu(run.cpu)
        .note(format!(
            "{} workers started, {} failures",
            pool.stats.workers_started, pool.stats.worker_failures
        ));
    if let Some(base) = &baseline {
        row = row
            .ideal(table.rows()[0].wall / workers as u32)
            .agrees(values(base) == values(&pool.outcomes));
    }
    table.push(row);

    if !args.no_compare {
        // The same work on threads in this process: what the pool costs over rayon.
        let threads = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .build()?;
        let run = shared::report::timed(|| {
            threads.install(|| {
                tasks
                    .par_iter()
                    .map(|t| (!t.poison).then(|| shared::work::cpu_task(t.seed, t.rounds)))
                    .collect::<Vec<_>>()
            })
        });
        let agrees = run.value == values(&pool.outcomes);
        table.push(
            Row::new(format!("{workers} threads (rayon)"), run.wall)
                .cpu(run.cpu)
                .agrees(agrees)
                .note("same tasks, one process"),
        );
    }

    let failed: Vec<&Outcome> = pool.outcomes.iter().filter(|o| o.value.is_none()).collect();
    let checksum = pool
        .outcomes
        .iter()
        .filter_map(|o| o.value)
        .fold(0u64, |a, v| a.rotate_left(5) ^ v);
    if args.json {
        shared::report::print_json(&serde_json::json!({
            "workers": workers,
            "tasks": tasks.len(),
            "rounds": args.rounds,
            "results": pool.outcomes,
            "failed": failed.iter().map(|o| o.id).collect::<Vec<_>>(),
            "stats": pool.stats,
            "checksum": checksum,
            "table": table.to_json(),
        }));
    } else {
        let shown = if args.print_all {
            pool.outcomes.len()
        } else {
            6
        };
        println!("results, in submission order:");
        for o in pool.outcomes.iter().take(shown) {
            match (&o.value, &o.error) {
                (Some(v), _) => println!("  task {:>3}: {v:#018x}", o.id),
                (None, e) => println!(
                    "  task {:>3}: FAILED: {}",
                    o.id,
                    e.as_deref().unwrap_or("?")
                ),
            }
        }
        if shown < pool.outcomes.len() {
            println!(
                "  … {} more (--print-all), checksum {checksum:#018x}",
                pool.outcomes.len() - shown
            );
        }
        let s = pool.stats;
        println!(
            "workers started: {}, worker failures: {} (chaos kills {}, protocol errors {})",
            s.workers_started, s.worker_failures, s.chaos_kills, s.protocol_errors
        );
        println!();
        table.print();
        println!();
        println!("Every task ran to completion exactly once or is listed as failed: the collector");
        println!(
            "stores outcomes by id and would panic on a duplicate. Dead workers were reaped and replaced."
        );
    }
    if !failed.is_empty() {
        eprintln!(
            "failed tasks: {:?}",
            failed.iter().map(|o| o.id).collect::<Vec<_>>()
        );
        for o in &failed {
            eprintln!("  task {}: {}", o.id, o.error.as_deref().unwrap_or("?"));
        }
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn interrupted(stop: &AtomicBool) -> anyhow::Result<ExitCode> {
    debug_assert!(stop.load(Ordering::SeqCst));
    eprintln!("interrupted: every worker was killed and reaped");
    Ok(ExitCode::from(130))
}

#[cfg(test)]
mod tests {
    use super::frame::{FrameError, MAX_FRAME, read_frame, write_frame};
    use super::*;

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        write_frame(&mut buf, payload).unwrap();
        buf
    }

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let mut stream = framed(b"first");
        stream.extend(framed(b""));
        stream.extend(framed(&[7u8; 1000]));
        let mut r = &stream[..];
        assert_eq!(read_frame(&mut r).unwrap().unwrap(), b"first");
        assert_eq!(read_frame(&mut r).unwrap().unwrap(), b"");
        assert_eq!(read_frame(&mut r).unwrap().unwrap(), vec![7u8; 1000]);
        assert!(
            read_frame(&mut r).unwrap().is_none(),
            "EOF between frames is a clean end"
        );
    }

    #[test]
    fn truncated_header_is_an_error_not_a_clean_end() {
        let stream = framed(b"hello");
        let mut r = &stream[..2];
        assert!(matches!(
            read_frame(&mut r),
            Err(FrameError::Truncated { got: 2, want: 4 })
        ));
    }

    #[test]
    fn truncated_payload_is_detected() {
        let stream = framed(b"hello world");
        let mut r = &stream[..stream.len() - 3];
        assert!(matches!(
            read_frame(&mut r),
            Err(FrameError::Truncated { got: 8, want: 11 })
        ));
    }

    #[test]
    fn oversized_frames_are_refused_before_allocating() {
        let mut r: &[u8] = b"Hello from a worker that prints on stdout\n";
        match read_frame(&mut r) {
            Err(FrameError::TooLarge(n)) => assert_eq!(n, u32::from_le_bytes(*b"Hell") as usize),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        let just_over = u32::try_from(MAX_FRAME + 1).unwrap().to_le_bytes();
        assert!(matches!(
            read_frame(&mut &just_over[..]),
            Err(FrameError::TooLarge(_))
        ));
        let mut sink = Vec::new();
        assert!(matches!(
            write_frame(&mut sink, &vec![0; MAX_FRAME + 1]),
            Err(FrameError::TooLarge(_))
        ));
        assert!(sink.is_empty(), "nothing is written for a refused frame");
        write_frame(&mut sink, &vec![0; MAX_FRAME]).unwrap();
        assert_eq!(
            read_frame(&mut &sink[..]).unwrap().unwrap().len(),
            MAX_FRAME
        );
    }

    #[test]
    fn messages_round_trip_and_reject_the_wrong_kind() {
        let t = Task {
            id: 9,
            seed: u64::MAX - 3,
            rounds: 77,
            poison: true,
            chaos: false,
        };
        assert_eq!(decode_request(&encode_request(&t)).unwrap(), t);
        assert_eq!(decode_answer(&encode_answer(9, 123)).unwrap(), (9, 123));
        assert!(decode_answer(&encode_request(&t)).is_err());
        assert!(decode_request(&encode_answer(9, 123)).is_err());
        assert!(decode_answer(&encode_answer(9, 123)[..16]).is_err());
    }
}
