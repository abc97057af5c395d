//! A fault-tolerant pool of worker processes fed over pipes: `multiprocessing.Pool` and
//! `ProcessPoolExecutor` (`submit`, `as_completed`), built by hand.
//!
//! Course section **8.1 — Threading et multiprocessing** (*Processus parallèles*, *Pools de
//! workers*); the course's Python is `python/process_pool.py` (`--python`).
//!
//! Crates: `crossbeam-channel = "0.5"`, `libc = "0.2"`, `thiserror = "2"` (the harness adds
//! clap, rayon and serde to compare and report).
//!
//! # Concepts
//! - Workers are this binary re-executed in a hidden worker mode (`std::env::current_exe()`),
//!   as `multiprocessing`'s "spawn" start method does. One parent thread per worker ("slot")
//!   owns the `Child` and talks to it in length-prefixed *frames* over stdin/stdout.
//! - Fault tolerance: a worker that dies or talks garbage is reaped and replaced, and its task
//!   runs again; a "poison" task that kills every worker is reported failed after
//!   `max_attempts`. No task lost or done twice: reports are stored by index, exactly once.
//! - No orphans: a stop (Ctrl-C, SIGTERM) or an error kills and reaps every worker (a drop
//!   guard); if the parent is SIGKILLed, the kernel kills the workers (`PR_SET_PDEATHSIG`).
//! - Two APIs on the same workers: `run_batch` (a batch, results in submission order) and
//!   `Executor::submit`, which returns a `TaskHandle` at once (Python's `Future`: `wait`,
//!   `cancel`), with `as_completed` yielding results first finished first.
//!
//! # Run
//! ```text
//! cargo run --release -p examples-processes --bin process-pool
//! cargo run --release -p examples-processes --bin process-pool -- --chaos          # SIGKILL 20% of first attempts
//! cargo run --release -p examples-processes --bin process-pool -- --chaos 0.5 --poison 7
//! cargo run --release -p examples-processes --bin process-pool -- --as-completed --poison 3
//! cargo run --release -p examples-processes --bin process-pool -- --python        # + ProcessPoolExecutor
//! ```
//! While it runs, `pstree -p $(pgrep -n process-pool)` shows the workers; `kill -9` one of them
//! and watch the pool replace it.
//!
//! # What to observe
//! - N worker processes against 1, and against N threads (rayon): for tasks of ~20 ms, processes
//!   cost hardly more than threads (about 1.9× on 2 cores for both).
//! - `--chaos`: `worker 4242 failed on task 17 (attempt 1/3): … (killed by signal 9 (SIGKILL))`,
//!   then every result is still there, in order, and agrees. `--poison 7`: task 7 fails in every
//!   run (rayon cannot run it: it would abort this process), the others agree; exit code 1.
//! - `--as-completed`: the completion order is not the submission order.
//! - `--python` (1M rounds a task unless `--rounds`): the same values, two orders of magnitude
//!   slower (CPython interprets the loop). With `--poison`, Python's executor fails *every*
//!   pending task with `BrokenProcessPool`; ours replaces the worker and loses only the poison.
//! - Ctrl-C or SIGTERM: `interrupted`, exit code 130, and `pgrep -f process-pool` finds nothing.
//!
//! # Exercises
//! 1. Re-queue a failed task to *any* slot instead of the same one (hint: a retry channel that
//!    slots poll first). Send tasks in chunks of 8 per frame (`Pool.map`'s `chunksize`) and
//!    measure with `--rounds 20000`: when does the per-message cost matter?
//! 2. A per-task timeout that kills *and reaps*, checked:
//!    `cargo run -p shared --bin exercises -- check processes/03`.
//! 3. A crash-tolerant map (a worker dies mid-task: its task re-run exactly once):
//!    `cargo run -p shared --bin exercises -- check processes/04`.
//! 4. Results as completed with at most K processes in flight:
//!    `cargo run -p shared --bin exercises -- check processes/05`.
//! 5. Why is the chaos monkey's kill by pid safe only until the slot reaps the child, and how
//!    does the `Mutex<Option<u32>>` per slot in `mod pool` make `KillOnDrop` safe?

// === Lesson: copy from here ===

/// Length-prefixed frames: `[len: u32 little-endian][payload: len bytes]`.
///
/// Why not JSON lines (what `image-batch-processes` uses, to drive a worker by hand with `echo`)?
/// A length prefix tells the reader the size *before* it reads, so an absurd size is refused
/// without allocating it (a line reader must cap `read_line` itself, or a worker that never
/// prints `\n` eats all memory); payloads are binary-safe; a cut-off stream is detected exactly
/// ("got 3 of 22 bytes"). The price: not human-readable, and one wrong byte desynchronises the
/// stream for good, so the first protocol error retires the worker.
mod frame {
    use std::io::{self, Read, Write};

    /// Our messages are a few dozen bytes; anything above this cap is garbage, not a message.
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

    /// Reads one frame. `Ok(None)` is a clean end (EOF exactly between two frames); EOF anywhere
    /// else is `Truncated`.
    pub fn read_frame(r: &mut impl Read) -> Result<Option<Vec<u8>>, FrameError> {
        let mut header = [0u8; 4];
        let got = read_full(r, &mut header)?;
        if got == 0 {
            return Ok(None);
        }
        if got < header.len() {
            let want = header.len();
            return Err(FrameError::Truncated { got, want });
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

    #[cfg(test)]
    mod tests {
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
            assert!(read_frame(&mut r).unwrap().is_none(), "EOF between frames");
        }

        #[test]
        fn truncated_headers_and_payloads_are_errors_not_a_clean_end() {
            let stream = framed(b"hello world");
            let got = read_frame(&mut &stream[..2]);
            assert!(matches!(
                got,
                Err(FrameError::Truncated { got: 2, want: 4 })
            ));
            let got = read_frame(&mut &stream[..stream.len() - 3]);
            assert!(matches!(
                got,
                Err(FrameError::Truncated { got: 8, want: 11 })
            ));
        }

        #[test]
        fn oversized_frames_are_refused_before_allocating() {
            let mut r: &[u8] = b"Hello from a worker that prints on stdout\n";
            match read_frame(&mut r) {
                Err(FrameError::TooLarge(n)) => {
                    assert_eq!(n, u32::from_le_bytes(*b"Hell") as usize);
                }
                other => panic!("expected TooLarge, got {other:?}"),
            }
            let just_over = u32::try_from(MAX_FRAME + 1).unwrap().to_le_bytes();
            let got = read_frame(&mut &just_over[..]);
            assert!(matches!(got, Err(FrameError::TooLarge(_))));
            let mut sink = Vec::new();
            let refused = write_frame(&mut sink, &vec![0; MAX_FRAME + 1]);
            assert!(matches!(refused, Err(FrameError::TooLarge(_))));
            assert!(sink.is_empty(), "nothing is written for a refused frame");
            write_frame(&mut sink, &vec![0; MAX_FRAME]).unwrap();
            assert_eq!(
                read_frame(&mut &sink[..]).unwrap().unwrap().len(),
                MAX_FRAME
            );
        }
    }
}

/// One worker process, from both ends of its pipes: what the worker runs (`die_with_parent`,
/// `serve`), and the parent's handle on it (`Worker`). Every message carries the task's index
/// (8 bytes) before its body, so an answer to the wrong question is caught.
mod worker {
    use std::io::{self, BufReader, BufWriter, Read, Write};
    use std::os::unix::process::CommandExt;
    use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};

    use super::frame::{self, FrameError};

    /// How a worker learns its parent's pid (see `die_with_parent`).
    const PARENT_PID_VAR: &str = "PROCESS_POOL_PARENT_PID";

    /// Worker side: ask the kernel to SIGKILL us when our parent dies, so a SIGKILLed parent
    /// (which runs no cleanup at all) leaves no orphan spinning on CPU. Python's
    /// `multiprocessing` does not: SIGKILL a Pool's parent and its workers keep running.
    ///
    /// Two pitfalls. (1) "Parent" means the parent *thread*: if the thread that spawned us
    /// exits, we die too. The pool's slot threads outlive their workers, so that is what we
    /// want. (2) The parent may be dead already: we were re-parented and the signal will never
    /// come, so compare `getppid()` with the pid the pool put in our environment.
    pub fn die_with_parent() -> io::Result<()> {
        // SAFETY: PR_SET_PDEATHSIG takes a signal number; no pointers are passed.
        let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let expected = std::env::var(PARENT_PID_VAR).ok();
        if let Some(parent) = expected.and_then(|p| p.parse::<u32>().ok())
            && std::os::unix::process::parent_id() != parent
        {
            return Err(io::Error::other(format!(
                "parent {parent} died before we started"
            )));
        }
        Ok(())
    }

    /// Worker side: answer every request frame with `handle(body)` until EOF on `input` (the
    /// parent closed our stdin: the batch is over). `output` is the protocol channel: a stray
    /// `println!` in a worker corrupts it, so workers log to stderr only.
    pub fn serve(
        input: impl Read,
        output: impl Write,
        mut handle: impl FnMut(&[u8]) -> io::Result<Vec<u8>>,
    ) -> Result<(), FrameError> {
        let (mut input, mut output) = (BufReader::new(input), BufWriter::new(output));
        while let Some(request) = frame::read_frame(&mut input)? {
            let (index, body) = split_index(&request)?;
            frame::write_frame(&mut output, &with_index(index, &handle(body)?))?;
            output.flush()?;
        }
        Ok(())
    }

    fn with_index(index: u64, body: &[u8]) -> Vec<u8> {
        [&index.to_le_bytes()[..], body].concat()
    }

    fn split_index(message: &[u8]) -> Result<(u64, &[u8]), FrameError> {
        match message.split_first_chunk::<8>() {
            Some((index, body)) => Ok((u64::from_le_bytes(*index), body)),
            None => Err(FrameError::BadMessage(format!("{} bytes", message.len()))),
        }
    }

    /// Parent side: a live worker process and our ends of its pipes.
    pub struct Worker {
        child: Child,
        pub pid: u32,
        to_worker: BufWriter<ChildStdin>,
        from_worker: BufReader<ChildStdout>,
    }

    impl Worker {
        pub fn spawn(mut cmd: Command) -> io::Result<Worker> {
            cmd.env(PARENT_PID_VAR, std::process::id().to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()) // Worker panics and logs show on our terminal.
                // Own process group: Ctrl-C in the terminal reaches us only, and we decide what
                // happens to the workers (Python's Pool workers each print a KeyboardInterrupt).
                .process_group(0);
            // std opens the pipes with O_CLOEXEC: worker B does not inherit worker A's pipe
            // ends, so when A dies we do see EOF (a bare fork() without closing fds never does).
            let mut child = cmd.spawn()?;
            let stdin = child.stdin.take().expect("stdin was piped");
            let stdout = child.stdout.take().expect("stdout was piped");
            Ok(Worker {
                pid: child.id(),
                child,
                to_worker: BufWriter::new(stdin),
                from_worker: BufReader::new(stdout),
            })
        }

        /// Sends task `index`. A dead worker makes this fail with EPIPE (Rust ignores SIGPIPE,
        /// so it is an error, not a silent death of the parent).
        pub fn send(&mut self, index: u64, body: &[u8]) -> Result<(), FrameError> {
            frame::write_frame(&mut self.to_worker, &with_index(index, body))?;
            Ok(self.to_worker.flush()?)
        }

        /// Waits for the answer to task `index`. Any error means: this worker is unusable (dead,
        /// or out of step with the protocol); retire it.
        pub fn receive(&mut self, index: u64) -> Result<Vec<u8>, FrameError> {
            let Some(answer) = frame::read_frame(&mut self.from_worker)? else {
                let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "worker closed its stdout");
                return Err(eof.into());
            };
            let (got, body) = split_index(&answer)?;
            if got != index {
                let what = format!("answer for task {got} while task {index} was running");
                return Err(FrameError::BadMessage(what));
            }
            Ok(body.to_vec())
        }

        /// Stops and reaps the worker. `graceful`: close its stdin and let it finish its loop;
        /// otherwise SIGKILL it first (it may be stuck, or talking garbage). The caller must
        /// have unregistered the pid: after `wait` the kernel may give it to another process.
        pub fn retire(mut self, graceful: bool) -> io::Result<ExitStatus> {
            if !graceful {
                let _ = self.child.kill(); // Err only if it already exited, which is fine.
            }
            drop(self.to_worker); // EOF on its stdin: a healthy worker returns from `serve`.
            self.child.wait()
        }
    }
}

/// The pool: slot threads that feed workers, replace dead ones and re-run their tasks, and a
/// collector that puts the reports back in submission order.
mod pool {
    use std::process::{Command, ExitStatus};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

    use super::frame::FrameError;
    use super::worker::Worker;

    pub struct PoolConfig {
        pub workers: usize,
        /// Attempts per task (at least 1) before it is reported failed.
        pub max_attempts: u32,
        /// How to start one worker, e.g. this binary in its worker mode:
        /// `Command::new(std::env::current_exe()?).arg("--worker")`.
        pub command: Box<dyn Fn() -> Command + Send + Sync>,
    }

    /// What the pool tells its caller while it runs (progress, logs, a chaos monkey).
    pub enum PoolEvent<'a> {
        /// Task `task` was sent to worker `pid`. Called on the slot thread before it waits for
        /// the answer: the worker cannot have been reaped yet, so `pid` is safe to signal.
        Sent { task: usize, attempt: u32, pid: u32 },
        /// A worker failed (and was reaped); its task is retried unless it was the last attempt.
        WorkerFailed(&'a WorkerFailure),
        /// One more task has its final report.
        Done,
    }

    #[derive(Debug)]
    pub struct WorkerFailure {
        /// 0 when the worker could not even be started.
        pub pid: u32,
        pub task: usize,
        pub attempt: u32,
        pub error: FrameError,
        /// How the worker ended, once reaped.
        pub status: Option<ExitStatus>,
    }

    /// The final word on one task: its answer, or the failure of its last attempt.
    #[derive(Debug)]
    pub struct TaskReport {
        pub result: Result<Vec<u8>, WorkerFailure>,
        pub attempts: u32,
    }

    #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
    pub struct PoolCounters {
        pub workers_started: u64,
        pub worker_failures: u64,
    }

    pub struct BatchReport {
        /// One report per task, in submission order.
        pub tasks: Vec<TaskReport>,
        pub counters: PoolCounters,
    }

    /// What the slots share with the collector. Both fields exist for shutdown.
    struct Shared {
        /// Raised by the drop guard (a stop, an error): slots stop taking tasks.
        halt: AtomicBool,
        /// Per slot, the pid of its live, *not yet reaped* worker. Whoever kills by pid holds
        /// the lock, and the slot clears it (under the lock) before reaping: a pid is ours
        /// until `wait()`, then the kernel may reuse it for an unrelated process.
        pids: Vec<Mutex<Option<u32>>>,
    }

    impl Shared {
        fn register(&self, slot: usize, pid: Option<u32>) {
            *self.pids[slot].lock().unwrap_or_else(|e| e.into_inner()) = pid;
        }
    }

    /// Kills every worker when the collector leaves without disarming it (stop, error, panic).
    struct KillOnDrop<'a>(&'a Shared, bool);

    impl Drop for KillOnDrop<'_> {
        fn drop(&mut self) {
            if self.1 {
                // Halt first: a slot that registers a pid after our loop then sees the flag.
                self.0.halt.store(true, Ordering::SeqCst);
                for slot in &self.0.pids {
                    let pid = slot.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(pid) = *pid {
                        let pid = libc::pid_t::try_from(pid).expect("pids fit in pid_t");
                        // SAFETY: kill(2) takes integers; holding the lock guarantees the pid is
                        // an unreaped child of ours, so it cannot name another process.
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
        }
    }

    type Event<'e> = &'e (dyn Fn(PoolEvent<'_>) + Sync);

    /// Runs every task on `cfg.workers` processes. `None` if `stop` was raised: then every worker
    /// has been killed and reaped before this returns.
    pub fn run_batch(
        tasks: &[Vec<u8>],
        cfg: &PoolConfig,
        stop: &AtomicBool,
        on_event: Event<'_>,
    ) -> Option<BatchReport> {
        let workers = cfg.workers.max(1);
        let shared = Shared {
            halt: AtomicBool::new(false),
            pids: (0..workers).map(|_| Mutex::new(None)).collect(),
        };
        // The batch is in memory, so the queue takes it all and is closed. For a stream, use a
        // small capacity and a feeder thread: it blocks when the workers fall behind.
        let (task_tx, task_rx) = crossbeam_channel::bounded(tasks.len().max(1));
        for index in 0..tasks.len() {
            task_tx.send(index).expect("room for the whole batch");
        }
        drop(task_tx);
        let (report_tx, report_rx) = crossbeam_channel::unbounded();
        std::thread::scope(|scope| {
            let mut guard = KillOnDrop(&shared, true);
            let slots: Vec<_> = (0..workers)
                .map(|slot| {
                    let (shared, task_rx, report_tx) =
                        (&shared, task_rx.clone(), report_tx.clone());
                    std::thread::Builder::new()
                        .name(format!("slot-{slot}"))
                        .spawn_scoped(scope, move || {
                            run_slot(slot, tasks, cfg, shared, &task_rx, &report_tx, on_event)
                        })
                        .expect("spawning a slot thread")
                })
                .collect();
            drop(report_tx); // The slots hold the only senders: `recv` says when all are done.
            let mut by_index: Vec<Option<TaskReport>> = (0..tasks.len()).map(|_| None).collect();
            loop {
                match report_rx.recv_timeout(Duration::from_millis(50)) {
                    Ok((index, report)) => {
                        let place = &mut by_index[index];
                        // The invariant the whole design exists for.
                        assert!(place.is_none(), "task {index} finished twice");
                        *place = Some(report);
                        on_event(PoolEvent::Done);
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                    Err(RecvTimeoutError::Timeout) => {}
                }
                if stop.load(Ordering::Acquire) {
                    drop(guard); // Kill every worker; the scope then joins the slots.
                    return None;
                }
            }
            guard.1 = false;
            let mut counters = PoolCounters::default();
            for s in slots {
                let c = s.join().expect("a slot thread panicked");
                counters.workers_started += c.workers_started;
                counters.worker_failures += c.worker_failures;
            }
            let reports = by_index.into_iter().collect::<Option<_>>();
            let tasks = reports.expect("every slot reported every task it took");
            Some(BatchReport { tasks, counters })
        })
    }

    /// One slot: takes tasks from the queue, runs each on its worker, replaces the worker when
    /// it fails, and sends exactly one report per task it took.
    fn run_slot(
        slot: usize,
        tasks: &[Vec<u8>],
        cfg: &PoolConfig,
        shared: &Shared,
        queue: &Receiver<usize>,
        reports: &Sender<(usize, TaskReport)>,
        on_event: Event<'_>,
    ) -> PoolCounters {
        let mut counters = PoolCounters::default();
        let mut worker: Option<Worker> = None;
        'tasks: for task in queue.iter() {
            let mut attempts = 0;
            let result = 'attempts: loop {
                attempts += 1;
                let ready = match worker.take() {
                    Some(w) => Ok(w),
                    None => Worker::spawn((cfg.command)()).inspect(|w| {
                        // Registered first, halt checked second: a concurrent `KillOnDrop`
                        // either sees this pid or we see its flag.
                        shared.register(slot, Some(w.pid));
                        counters.workers_started += 1;
                    }),
                };
                let (pid, error, status) = 'attempt: {
                    let mut w = match ready {
                        Ok(w) if shared.halt.load(Ordering::SeqCst) => {
                            worker = Some(w); // Killed and reaped below.
                            break 'tasks;
                        }
                        Ok(w) => w,
                        Err(spawn_error) => break 'attempt (0, FrameError::Io(spawn_error), None),
                    };
                    let (pid, attempt) = (w.pid, attempts);
                    let answer = w.send(task as u64, &tasks[task]).and_then(|()| {
                        on_event(PoolEvent::Sent { task, attempt, pid });
                        w.receive(task as u64)
                    });
                    match answer {
                        Ok(answer) => {
                            worker = Some(w);
                            break 'attempts Ok(answer);
                        }
                        Err(error) => {
                            shared.register(slot, None); // Unregister, then reap.
                            (pid, error, w.retire(false).ok())
                        }
                    }
                };
                if shared.halt.load(Ordering::SeqCst) {
                    break 'tasks; // Killed by our own shutdown: not a failure to report.
                }
                counters.worker_failures += 1;
                let failure = WorkerFailure {
                    pid,
                    task,
                    attempt: attempts,
                    error,
                    status,
                };
                on_event(PoolEvent::WorkerFailed(&failure));
                if attempts >= cfg.max_attempts {
                    break Err(failure);
                }
            };
            let report = TaskReport { result, attempts };
            if reports.send((task, report)).is_err() {
                break; // The collector is gone.
            }
        }
        if let Some(w) = worker.take() {
            shared.register(slot, None);
            let _ = w.retire(!shared.halt.load(Ordering::SeqCst));
        }
        counters
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::sync::atomic::AtomicUsize;

        /// Workers are small shell programs here: `cat` echoes every frame, so a task's answer
        /// is its own request.
        fn shell_pool(workers: usize, max_attempts: u32, script: &'static str) -> PoolConfig {
            let command = Box::new(move || {
                let mut cmd = Command::new("sh");
                cmd.args(["-c", script]);
                cmd
            });
            PoolConfig {
                workers,
                max_attempts,
                command,
            }
        }

        /// Bodies of 5 bytes each (`job 0` … `job 9`).
        fn jobs(n: usize) -> Vec<Vec<u8>> {
            (0..n).map(|i| format!("job {i}").into_bytes()).collect()
        }

        fn run(tasks: &[Vec<u8>], cfg: &PoolConfig) -> BatchReport {
            run_batch(tasks, cfg, &AtomicBool::new(false), &|_| {}).expect("nobody stops it")
        }

        #[test]
        fn every_task_is_answered_once_in_submission_order() {
            let tasks = jobs(10);
            let done = AtomicUsize::new(0);
            let count_done = |e: PoolEvent<'_>| {
                if let PoolEvent::Done = e {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            };
            let stop = AtomicBool::new(false);
            let report = run_batch(&tasks, &shell_pool(3, 1, "exec cat"), &stop, &count_done);
            let report = report.expect("nobody stops it");
            let answers: Vec<Vec<u8>> = report
                .tasks
                .into_iter()
                .map(|r| r.result.unwrap())
                .collect();
            assert_eq!(answers, tasks);
            assert_eq!(done.load(Ordering::Relaxed), 10);
            assert_eq!(report.counters.worker_failures, 0);
            assert!((1..=3).contains(&report.counters.workers_started));
        }

        #[test]
        fn a_worker_that_dies_is_replaced_and_its_task_run_again() {
            // Each worker echoes one frame (4 + 8 + 5 bytes) and exits: from the second task on,
            // every first attempt meets a dead worker, and the second attempt a fresh one.
            let tasks = jobs(6);
            let report = run(&tasks, &shell_pool(1, 2, "exec head -c 17"));
            for (report, task) in report.tasks.iter().zip(&tasks) {
                assert_eq!(report.result.as_ref().unwrap(), task);
            }
            let expected = PoolCounters {
                workers_started: 6,
                worker_failures: 5,
            };
            assert_eq!(report.counters, expected);
        }

        #[test]
        fn a_task_that_kills_every_worker_fails_after_the_retry_limit() {
            let report = run(&jobs(2), &shell_pool(2, 3, "exit 7"));
            for task in &report.tasks {
                assert_eq!(task.attempts, 3, "retried up to the limit, not forever");
                let failure = task.result.as_ref().unwrap_err();
                assert_eq!(failure.status.and_then(|s| s.code()), Some(7));
            }
            assert_eq!(report.counters.worker_failures, 6);
        }

        #[test]
        fn a_worker_talking_garbage_is_a_protocol_error_not_a_crash() {
            let chatty = "echo Hello from a worker that prints on stdout; exec cat";
            let report = run(&jobs(1), &shell_pool(1, 2, chatty));
            let failure = report.tasks[0].result.as_ref().unwrap_err();
            assert!(
                matches!(failure.error, FrameError::TooLarge(_)),
                "{failure:?}"
            );
            assert_eq!(report.counters.worker_failures, 2);
        }

        #[test]
        fn a_stop_kills_and_reaps_every_worker() {
            // Workers that never answer; the stop comes as soon as a task is sent.
            let stop = AtomicBool::new(false);
            let pids = Mutex::new(Vec::new());
            let stop_on_send = |e: PoolEvent<'_>| {
                if let PoolEvent::Sent { pid, .. } = e {
                    pids.lock().unwrap().push(pid);
                    stop.store(true, Ordering::Release);
                }
            };
            let cfg = shell_pool(2, 1, "exec sleep 60");
            assert!(run_batch(&jobs(4), &cfg, &stop, &stop_on_send).is_none());
            for pid in pids.into_inner().unwrap() {
                let gone = !std::path::Path::new(&format!("/proc/{pid}")).exists();
                assert!(gone, "worker {pid} is still there (or a zombie)");
            }
        }
    }
}

/// Python's `Future` and `as_completed`, for any result type: a one-shot cell that a worker
/// thread fills (`Promise`) and a caller waits on (`TaskHandle`). `as_completed` watches many
/// cells through one channel by installing a *waiter* in each, as CPython does.
mod handle {
    use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
    use std::time::Duration;

    use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

    /// The task never ran: its executor was shut down with `cancel`, or its promise was dropped.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Cancelled;

    pub type Outcome<T> = Result<T, Cancelled>;

    struct Cell<T> {
        state: Mutex<State<T>>,
        filled: Condvar,
    }

    struct State<T> {
        /// Set by `Promise::start`: from then on, `cancel` fails (as in Python).
        running: bool,
        /// Set once, by the first `set`; `outcome` is then taken by `wait`.
        done: bool,
        outcome: Option<Outcome<T>>,
        /// `as_completed`'s channel, and this task's position in its list.
        waiter: Option<(Sender<usize>, usize)>,
    }

    impl<T> Cell<T> {
        fn lock(&self) -> MutexGuard<'_, State<T>> {
            self.state.lock().unwrap_or_else(PoisonError::into_inner)
        }

        fn set(&self, outcome: Outcome<T>) {
            self.set_locked(&mut self.lock(), outcome);
        }

        fn set_locked(&self, state: &mut State<T>, outcome: Outcome<T>) {
            if state.done {
                return; // The first outcome stays (a fulfilled promise is dropped next).
            }
            state.done = true;
            state.outcome = Some(outcome);
            if let Some((waiter, position)) = state.waiter.take() {
                let _ = waiter.send(position); // `as_completed` may be gone: nobody to tell.
            }
            self.filled.notify_all();
        }
    }

    /// A new task `id`: the side that fills it, and the side that waits for it.
    pub fn pair<T>(id: usize) -> (Promise<T>, TaskHandle<T>) {
        let state = State {
            running: false,
            done: false,
            outcome: None,
            waiter: None,
        };
        let cell = Arc::new(Cell {
            state: Mutex::new(state),
            filled: Condvar::new(),
        });
        (
            Promise {
                cell: Arc::clone(&cell),
            },
            TaskHandle { id, cell },
        )
    }

    /// The filling side. Dropped unfulfilled (never run, or its thread died), it answers
    /// `Cancelled`: no handle ever waits forever.
    pub struct Promise<T> {
        cell: Arc<Cell<T>>,
    }

    impl<T> Promise<T> {
        /// Python's `set_running_or_notify_cancel`: `false` if the task was cancelled (skip
        /// it), otherwise it is now running and can no longer be cancelled.
        pub fn start(&self) -> bool {
            let mut state = self.cell.lock();
            state.running = !state.done;
            state.running
        }

        pub fn fulfil(self, value: T) {
            self.cell.set(Ok(value));
        }
    }

    impl<T> Drop for Promise<T> {
        fn drop(&mut self) {
            self.cell.set(Err(Cancelled));
        }
    }

    /// Python's `Future`: `wait` for it, or give it to `as_completed`.
    pub struct TaskHandle<T> {
        /// The submission number, from 0.
        pub id: usize,
        cell: Arc<Cell<T>>,
    }

    // `is_done` and `cancel` complete Python's API; the harness only waits (its tests use them).
    #[allow(dead_code)]
    impl<T> TaskHandle<T> {
        /// `future.done()`.
        pub fn is_done(&self) -> bool {
            self.cell.lock().done
        }

        /// `future.cancel()`: `true` if the task had not started (it never will).
        pub fn cancel(&self) -> bool {
            let mut state = self.cell.lock();
            if state.running {
                return false; // Running or finished: too late.
            }
            self.cell.set_locked(&mut state, Err(Cancelled));
            true
        }

        /// `future.result()`: blocks until the task is done (or cancelled).
        pub fn wait(self) -> Outcome<T> {
            let mut state = self.cell.lock();
            loop {
                if let Some(outcome) = state.outcome.take() {
                    return outcome;
                }
                state = self
                    .cell
                    .filled
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
    }

    /// `as_completed(futures)`: yields `(id, outcome)` for every handle, first finished first.
    pub fn as_completed<T>(handles: Vec<TaskHandle<T>>) -> AsCompleted<T> {
        let (finished, arrivals) = crossbeam_channel::unbounded();
        for (position, handle) in handles.iter().enumerate() {
            let mut state = handle.cell.lock();
            if state.done {
                let _ = finished.send(position);
            } else {
                state.waiter = Some((finished.clone(), position));
            }
        }
        // Our own sender drops here: once every waiter has fired, `recv` says "no more".
        AsCompleted {
            handles: handles.into_iter().map(Some).collect(),
            arrivals,
        }
    }

    pub struct AsCompleted<T> {
        handles: Vec<Option<TaskHandle<T>>>,
        arrivals: Receiver<usize>,
    }

    impl<T> AsCompleted<T> {
        /// The next finished task, waiting at most `timeout` (`as_completed(fs, timeout)`);
        /// `Ok(None)` once every task has been yielded.
        pub fn next_within(
            &mut self,
            timeout: Duration,
        ) -> Result<Option<(usize, Outcome<T>)>, RecvTimeoutError> {
            match self.arrivals.recv_timeout(timeout) {
                Ok(position) => Ok(self.take(position)),
                Err(RecvTimeoutError::Disconnected) => Ok(None),
                Err(timeout) => Err(timeout),
            }
        }

        fn take(&mut self, position: usize) -> Option<(usize, Outcome<T>)> {
            let handle = self.handles.get_mut(position)?.take()?;
            Some((handle.id, handle.wait())) // Done already: `wait` returns at once.
        }
    }

    impl<T> Iterator for AsCompleted<T> {
        type Item = (usize, Outcome<T>);

        fn next(&mut self) -> Option<Self::Item> {
            let position = self.arrivals.recv().ok()?;
            self.take(position)
        }
    }
    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_handle_waits_for_its_promise_across_threads() {
            let (promise, handle) = pair::<u32>(7);
            assert!(!handle.is_done());
            assert_eq!(handle.id, 7);
            let filler = std::thread::spawn(move || promise.fulfil(42));
            assert_eq!(handle.wait(), Ok(42));
            filler.join().unwrap();
        }

        #[test]
        fn a_dropped_promise_is_cancelled_and_a_started_one_cannot_be() {
            let (promise, handle) = pair::<u32>(0);
            drop(promise); // Its thread died, or its executor stopped: never run.
            assert_eq!(handle.wait(), Err(Cancelled));

            let (promise, handle) = pair::<u32>(1);
            assert!(handle.cancel());
            assert!(!promise.start(), "a cancelled task is skipped");
            promise.fulfil(5);
            assert_eq!(handle.wait(), Err(Cancelled), "the first outcome stays");

            let (promise, handle) = pair::<u32>(2);
            assert!(promise.start());
            assert!(!handle.cancel(), "too late: it is running");
            promise.fulfil(9);
            assert!(handle.is_done());
            assert_eq!(handle.wait(), Ok(9));
        }

        #[test]
        fn as_completed_yields_first_finished_first() {
            let (promises, handles): (Vec<_>, Vec<_>) = (0..4).map(pair::<usize>).unzip();
            let mut promises: Vec<_> = promises.into_iter().map(Some).collect();
            // Task 2 is done before anyone watches; the others finish in the order 3, 0, 1,
            // each on a thread of its own.
            promises[2].take().unwrap().fulfil(20);
            let mut done = as_completed(handles);
            assert_eq!(done.next(), Some((2, Ok(20))));
            let nothing = done.next_within(Duration::from_millis(1));
            assert_eq!(nothing, Err(RecvTimeoutError::Timeout));
            for id in [3, 0, 1] {
                let promise = promises[id].take().unwrap();
                std::thread::spawn(move || promise.fulfil(id * 10));
                assert_eq!(done.next(), Some((id, Ok(id * 10))));
            }
            assert_eq!(done.next(), None);
            assert_eq!(done.next_within(Duration::from_millis(1)), Ok(None));
        }
    }
}

/// `concurrent.futures.ProcessPoolExecutor` on the same workers and retries as `pool`: `submit`
/// returns a `TaskHandle` at once, and results can be taken as they complete. `run_batch` stays
/// the simpler tool for a batch known up front; this one is for tasks that arrive over time, or
/// results you act on as they come (progress, stopping at the first failure).
mod executor {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::thread::JoinHandle;

    use crossbeam_channel::{Receiver, Sender};

    use super::handle::{Promise, TaskHandle};
    use super::pool::{PoolConfig, PoolCounters, WorkerFailure};
    use super::worker::Worker;

    /// A task's answer, or the failure of its last attempt.
    pub type TaskResult = Result<Vec<u8>, WorkerFailure>;

    /// A submitted task on its way to a slot.
    struct Job {
        id: usize,
        body: Vec<u8>,
        promise: Promise<TaskResult>,
    }

    pub struct Executor {
        /// `None` once shut down: the slots see the queue close and finish.
        queue: Option<Sender<Job>>,
        /// Set by `shutdown(cancel = true)`: slots drop the jobs they have not started.
        cancel: Arc<AtomicBool>,
        slots: Vec<JoinHandle<PoolCounters>>,
        next_id: AtomicUsize,
    }

    impl Executor {
        /// Starts `cfg.workers` slot threads; each starts its worker process on its first task.
        pub fn new(cfg: PoolConfig) -> std::io::Result<Executor> {
            let cfg = Arc::new(cfg);
            // Unbounded, like Python's executor: `submit` never blocks. A producer that can
            // outrun the workers for long should bound it (and block) instead.
            let (queue, jobs) = crossbeam_channel::unbounded::<Job>();
            let cancel = Arc::new(AtomicBool::new(false));
            let slots = (0..cfg.workers.max(1))
                .map(|n| {
                    let (cfg, jobs, cancel) = (Arc::clone(&cfg), jobs.clone(), Arc::clone(&cancel));
                    std::thread::Builder::new()
                        .name(format!("executor-{n}"))
                        .spawn(move || run_slot(&cfg, &jobs, &cancel))
                })
                .collect::<std::io::Result<_>>()?;
            let next_id = AtomicUsize::new(0);
            Ok(Executor {
                queue: Some(queue),
                cancel,
                slots,
                next_id,
            })
        }

        /// `executor.submit(fn, arg)`: queues `body` and returns at once.
        pub fn submit(&self, body: Vec<u8>) -> TaskHandle<TaskResult> {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let (promise, handle) = super::handle::pair(id);
            if let Some(queue) = &self.queue {
                // Fails only if every slot is gone: the job is dropped, its handle `Cancelled`.
                let _ = queue.send(Job { id, body, promise });
            }
            handle
        }

        /// `executor.shutdown(wait=True, cancel_futures=cancel)`: no more tasks; with `cancel`,
        /// tasks not started yet end `Cancelled`, running ones finish. Every worker is then
        /// stopped and reaped; returns the pool's counters.
        pub fn shutdown(mut self, cancel: bool) -> PoolCounters {
            self.stop(cancel)
        }

        fn stop(&mut self, cancel: bool) -> PoolCounters {
            if cancel {
                self.cancel.store(true, Ordering::Release);
            }
            drop(self.queue.take());
            let mut total = PoolCounters::default();
            for slot in self.slots.drain(..) {
                let c = slot.join().expect("a slot thread panicked");
                total.workers_started += c.workers_started;
                total.worker_failures += c.worker_failures;
            }
            total
        }
    }

    impl Drop for Executor {
        /// Like leaving Python's `with ProcessPoolExecutor() as ex:` block: waits for the tasks.
        fn drop(&mut self) {
            self.stop(false);
        }
    }

    /// One slot: runs jobs on its worker, replacing it (and retrying the task) when it fails.
    fn run_slot(cfg: &PoolConfig, jobs: &Receiver<Job>, cancel: &AtomicBool) -> PoolCounters {
        let mut counters = PoolCounters::default();
        let mut worker: Option<Worker> = None;
        for Job {
            id: task,
            body,
            promise,
        } in jobs.iter()
        {
            if cancel.load(Ordering::Acquire) || !promise.start() {
                continue; // Cancelled: `promise` drops unfulfilled, its handle says so.
            }
            let mut attempt = 0;
            let result = loop {
                attempt += 1;
                let spawned = match worker.take() {
                    Some(w) => Ok(w),
                    None => {
                        Worker::spawn((cfg.command)()).inspect(|_| counters.workers_started += 1)
                    }
                };
                let failure = match spawned {
                    Err(e) => WorkerFailure {
                        pid: 0,
                        task,
                        attempt,
                        error: e.into(),
                        status: None,
                    },
                    Ok(mut w) => match w
                        .send(task as u64, &body)
                        .and_then(|()| w.receive(task as u64))
                    {
                        Ok(answer) => {
                            worker = Some(w);
                            break Ok(answer);
                        }
                        Err(error) => {
                            let (pid, status) = (w.pid, w.retire(false).ok());
                            WorkerFailure {
                                pid,
                                task,
                                attempt,
                                error,
                                status,
                            }
                        }
                    },
                };
                counters.worker_failures += 1;
                if attempt >= cfg.max_attempts {
                    break Err(failure);
                }
            };
            promise.fulfil(result);
        }
        if let Some(w) = worker {
            let _ = w.retire(true);
        }
        counters
    }
    #[cfg(test)]
    mod tests {
        use super::super::handle::{Cancelled, as_completed};
        use super::*;
        use std::path::{Path, PathBuf};
        use std::process::Command;
        use std::time::Duration;

        /// Shell workers: the first one started runs `first`, every other one `rest`.
        fn shell_executor(workers: usize, max_attempts: u32, first: &str, rest: &str) -> Executor {
            let (first, rest, started) = (first.to_owned(), rest.to_owned(), AtomicUsize::new(0));
            let command = Box::new(move || {
                let first_one = started.fetch_add(1, Ordering::Relaxed) == 0;
                let mut cmd = Command::new("sh");
                cmd.args(["-c", if first_one { &first } else { &rest }]);
                cmd
            });
            let cfg = PoolConfig {
                workers,
                max_attempts,
                command,
            };
            Executor::new(cfg).unwrap()
        }

        fn jobs(n: usize) -> Vec<Vec<u8>> {
            (0..n).map(|i| format!("job {i}").into_bytes()).collect()
        }

        fn scratch(name: &str) -> PathBuf {
            std::env::temp_dir().join(format!("executor-{}-{name}", std::process::id()))
        }

        /// A worker that touches `started`, then waits (30 s at most) for `go` before it echoes.
        fn held_until(started: &Path, go: &Path) -> String {
            let (s, g) = (started.display(), go.display());
            format!(
                "touch '{s}'; i=0; while [ ! -e '{g}' ] && [ $i -lt 3000 ]; do \
                 sleep 0.01; i=$((i+1)); done; exec cat"
            )
        }

        fn wait_for_file(path: &Path) {
            for _ in 0..3000 {
                if path.exists() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("{} never appeared", path.display());
        }

        #[test]
        fn every_submitted_task_comes_back_once_with_its_own_answer() {
            let ex = shell_executor(3, 1, "exec cat", "exec cat");
            let handles: Vec<_> = jobs(20).into_iter().map(|j| ex.submit(j)).collect();
            let mut seen = [false; 20];
            for (id, outcome) in as_completed(handles) {
                assert!(
                    !std::mem::replace(&mut seen[id], true),
                    "task {id} came back twice"
                );
                assert_eq!(outcome.unwrap().unwrap(), format!("job {id}").into_bytes());
            }
            assert!(seen.iter().all(|&s| s), "every task came back");
            assert_eq!(ex.shutdown(false).worker_failures, 0);
        }

        #[test]
        fn results_come_back_as_they_complete_not_in_submission_order() {
            // The first worker holds its task until the four others are back: waiting in
            // submission order would wait for it forever (30 s, then the script gives up).
            let (started, go) = (scratch("order-started"), scratch("order-go"));
            let ex = shell_executor(2, 1, &held_until(&started, &go), "exec cat");
            let handles: Vec<_> = jobs(5).into_iter().map(|j| ex.submit(j)).collect();
            let mut done = as_completed(handles);
            let first_four: Vec<usize> = done.by_ref().take(4).map(|(id, _)| id).collect();
            std::fs::write(&go, b"").unwrap();
            let (last, outcome) = done.next().unwrap();
            assert!(!first_four.contains(&last), "{first_four:?} then {last}");
            assert_eq!(
                outcome.unwrap().unwrap(),
                format!("job {last}").into_bytes()
            );
            drop(ex);
            let _ = (std::fs::remove_file(started), std::fs::remove_file(go));
        }

        #[test]
        fn a_dead_worker_is_replaced_and_its_task_run_again() {
            // Each worker echoes one frame (4 + 8 + 5 bytes) and exits.
            let ex = shell_executor(1, 2, "exec head -c 17", "exec head -c 17");
            let handles: Vec<_> = jobs(4).into_iter().map(|j| ex.submit(j)).collect();
            for (h, job) in handles.into_iter().zip(jobs(4)) {
                assert_eq!(h.wait().unwrap().unwrap(), job);
            }
            let expected = PoolCounters {
                workers_started: 4,
                worker_failures: 3,
            };
            assert_eq!(ex.shutdown(false), expected);
        }

        #[test]
        fn a_task_not_started_can_be_cancelled_a_running_one_cannot() {
            let (started, go) = (scratch("cancel-started"), scratch("cancel-go"));
            let ex = shell_executor(1, 1, &held_until(&started, &go), "exec cat");
            let first = ex.submit(b"first".to_vec());
            let (second, third) = (ex.submit(b"second".to_vec()), ex.submit(b"third".to_vec()));
            wait_for_file(&started); // The only slot is running `first`.
            assert!(!first.cancel(), "running: too late to cancel");
            assert!(second.cancel());
            std::fs::write(&go, b"").unwrap();
            assert!(matches!(second.wait(), Err(Cancelled)));
            assert_eq!(third.wait().unwrap().unwrap(), b"third");
            assert_eq!(first.wait().unwrap().unwrap(), b"first");
            ex.shutdown(false);
            let _ = (std::fs::remove_file(started), std::fs::remove_file(go));
        }
    }
}

// === Harness: not part of the lesson ===

use std::io::Write as _;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;
use shared::cli;
use shared::report::{Row, SpeedupTable, Timed, describe_exit};

use frame::FrameError;
use handle::Cancelled;
use pool::{BatchReport, PoolConfig, PoolCounters, PoolEvent, WorkerFailure};
use shared::python::Python;

/// The course's version (`ProcessPoolExecutor`), run by `--python`.
const PYTHON_RECIPE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/process_pool.py");

/// A pool of worker processes (this binary re-executed with `--worker`) over stdin/stdout pipes.
#[derive(Parser, Debug)]
#[command(name = "process-pool", version)]
struct Args {
    /// Number of worker processes [default: available cores].
    #[arg(long, value_parser = cli::usize_in(1, 256))]
    workers: Option<usize>,
    /// Number of tasks in the batch.
    #[arg(long, default_value_t = 48, value_parser = cli::u64_in(1, 100_000))]
    tasks: u64,
    /// Work per task (`shared::work::cpu_task` rounds; ~1 ns each in release, so 20 ms a task)
    /// [default: 20000000, or 1000000 with --python: CPython takes ~250 ns a round].
    #[arg(long, value_parser = cli::u32_in(1, u32::MAX))]
    rounds: Option<u32>,
    /// Seed for the task inputs and for the chaos monkey.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// SIGKILL the worker during the first attempt of this fraction of the tasks (`--chaos` = 0.2).
    #[arg(long, num_args = 0..=1, default_missing_value = "0.2", value_name = "FRACTION",
          value_parser = cli::probability)]
    chaos: Option<f64>,
    /// Make task K a "poison" task that crashes (aborts) every worker that runs it. Repeatable.
    #[arg(long, value_name = "K", value_parser = cli::u64_in(0, 100_000))]
    poison: Vec<u64>,
    /// Attempts per task before it is reported as failed.
    #[arg(long, default_value_t = 3, value_parser = cli::u32_in(1, 100))]
    max_attempts: u32,
    /// Skip the 1-worker and rayon comparison runs (run the pool once).
    #[arg(long)]
    no_compare: bool,
    /// Run the measured pool through `mod executor` (`submit` every task, take the results with
    /// `as_completed`, as `ProcessPoolExecutor` does) instead of `run_batch`.
    #[arg(long, conflicts_with_all = ["chaos", "garbage_worker"])]
    as_completed: bool,
    /// Also run the course's Python version (python/process_pool.py: `ProcessPoolExecutor`,
    /// `submit` + `as_completed`) on the same tasks; its row joins the table, its results are
    /// checked against ours.
    #[arg(long)]
    python: bool,
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

impl Args {
    fn rounds(&self) -> u32 {
        let default = if self.python { 1_000_000 } else { 20_000_000 };
        self.rounds.unwrap_or(default)
    }
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

impl Task {
    /// The request body: seed, rounds, poison (the pool adds the task's index).
    fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(13);
        body.extend_from_slice(&self.seed.to_le_bytes());
        body.extend_from_slice(&self.rounds.to_le_bytes());
        body.push(u8::from(self.poison));
        body
    }
}

/// The worker's view of a request: `(seed, rounds, poison)`.
fn decode_request(body: &[u8]) -> std::io::Result<(u64, u32, bool)> {
    let bad = || std::io::Error::other(format!("request body of {} bytes", body.len()));
    let (seed, rest) = body.split_first_chunk::<8>().ok_or_else(bad)?;
    let (rounds, rest) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
    match rest {
        [poison] => Ok((
            u64::from_le_bytes(*seed),
            u32::from_le_bytes(*rounds),
            *poison != 0,
        )),
        _ => Err(bad()),
    }
}

fn decode_answer(body: &[u8]) -> Result<u64, String> {
    let bytes: [u8; 8] = body
        .try_into()
        .map_err(|_| format!("answer of {} bytes", body.len()))?;
    Ok(u64::from_le_bytes(bytes))
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    if args.worker {
        worker_main(&args)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(k) = args.poison.iter().find(|&&k| k >= args.tasks) {
        Args::command()
            .error(
                clap::error::ErrorKind::ValueValidation,
                format!(
                    "--poison {k}: there are {} tasks, numbered 0 to {}",
                    args.tasks,
                    args.tasks - 1
                ),
            )
            .exit();
    }
    parent_main(&args)
}

/// The worker process: the lesson's `serve`, with a handler that computes (or crashes on poison).
fn worker_main(args: &Args) -> anyhow::Result<()> {
    if !args.no_pdeathsig {
        worker::die_with_parent().context("prctl(PR_SET_PDEATHSIG)")?;
    }
    let (mut input, mut output) = (std::io::stdin().lock(), std::io::stdout().lock());
    if args.garbage {
        // A worker with a stray debug print on stdout: the parent must retire it, not crash.
        frame::read_frame(&mut input).context("reading a request")?;
        output.write_all(b"Hello from a worker that prints debug output on stdout!\n")?;
        output.flush()?;
    }
    worker::serve(input, output, |body| {
        let (seed, rounds, poison) = decode_request(body)?;
        if poison {
            // Stands for a real crash (segfault in a C decoder, an `abort` in an assertion).
            eprintln!("worker {}: poison task, aborting", std::process::id());
            std::process::abort();
        }
        Ok(shared::work::cpu_task(seed, rounds).to_le_bytes().to_vec())
    })
    .context("serving the parent")
}

/// What one run (pool, 1-worker baseline, rayon) made of each task: its value, or why not.
type TaskValues = Vec<Result<u64, String>>;

/// One task's final report, for `--json` and the listing.
#[derive(Clone, Debug, Serialize)]
struct TaskResult {
    id: u64,
    seed: u64,
    /// `Some(result)` or `None` when the task failed.
    value: Option<u64>,
    error: Option<String>,
    /// `None` for a success through `executor`, which does not count the attempts it took.
    attempts: Option<u32>,
}

/// Counters of the measured pool run (`chaos_kills` is the harness's own: the monkey's hits).
#[derive(Default, Debug, Serialize, Clone, Copy)]
struct RunCounters {
    workers_started: u64,
    worker_failures: u64,
    chaos_kills: u64,
    protocol_errors: u64,
}

/// A failure of any run, in the listing and in `--json`'s `failures`.
#[derive(Debug, Serialize)]
struct RunFailure {
    run: String,
    id: u64,
    error: String,
}

/// "worker 4242 failed on task 17 (attempt 1/3): worker closed its stdout (killed by signal 9 (SIGKILL))".
fn describe_failure(f: &WorkerFailure, max_attempts: u32) -> String {
    let status = f.status.map_or_else(|| "not reaped".into(), describe_exit);
    let worker = if f.pid == 0 {
        "a worker that could not start".to_owned()
    } else {
        format!("worker {}", f.pid)
    };
    format!(
        "{worker} failed on task {} (attempt {}/{max_attempts}): {} ({status})",
        f.task, f.attempt, f.error
    )
}

/// How long the monkey waits before striking: a few ms, so it lands while the task computes.
fn chaos_delay(task: &Task) -> Duration {
    let mut rng = ChaCha8Rng::seed_from_u64(task.seed ^ 0xC4A05);
    Duration::from_micros(rng.random_range(0..2_000))
}

/// One pool run: `None` when interrupted. Logs worker failures, drives the progress bar and,
/// for the tasks marked `chaos`, kills the worker during their first attempt.
fn run_pool(
    tasks: &[Task],
    cfg: &PoolConfig,
    stop: &AtomicBool,
    json: bool,
) -> Option<(Vec<TaskResult>, RunCounters)> {
    let bodies: Vec<Vec<u8>> = tasks.iter().map(Task::encode).collect();
    let bar = shared::progress::bar(tasks.len() as u64, json);
    let (chaos_kills, protocol_errors) = (AtomicU64::new(0), AtomicU64::new(0));
    let on_event = |event: PoolEvent<'_>| match event {
        PoolEvent::Sent { task, attempt, pid } if tasks[task].chaos && attempt == 1 => {
            // The lesson promises the pid is not reaped while we are in here: safe to kill.
            std::thread::sleep(chaos_delay(&tasks[task]));
            let pid = libc::pid_t::try_from(pid).expect("pids fit in pid_t");
            // SAFETY: kill(2) takes integers; the pid is a live child of ours (see above).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        PoolEvent::Sent { .. } => {}
        PoolEvent::WorkerFailed(f) => {
            let t = &tasks[f.task];
            chaos_kills.fetch_add(u64::from(t.chaos && f.attempt == 1), Ordering::Relaxed);
            let protocol = matches!(f.error, FrameError::TooLarge(_) | FrameError::BadMessage(_));
            protocol_errors.fetch_add(u64::from(protocol), Ordering::Relaxed);
            bar.suspend(|| eprintln!("{}", describe_failure(f, cfg.max_attempts)));
        }
        PoolEvent::Done => bar.inc(1),
    };
    let report = pool::run_batch(&bodies, cfg, stop, &on_event);
    bar.finish_and_clear();
    let BatchReport {
        tasks: reports,
        counters,
    } = report?;
    let PoolCounters {
        workers_started,
        worker_failures,
    } = counters;
    let counters = RunCounters {
        workers_started,
        worker_failures,
        chaos_kills: chaos_kills.into_inner(),
        protocol_errors: protocol_errors.into_inner(),
    };
    let results = tasks
        .iter()
        .zip(reports)
        .map(|(t, r)| {
            let result = match r.result {
                Ok(answer) => decode_answer(&answer),
                Err(last) => Err(format!(
                    "gave up after {} attempts; last: {}",
                    r.attempts,
                    describe_failure(&last, cfg.max_attempts)
                )),
            };
            TaskResult {
                id: t.id,
                seed: t.seed,
                value: result.as_ref().ok().copied(),
                error: result.err(),
                attempts: Some(r.attempts),
            }
        })
        .collect();
    Some((results, counters))
}

/// The measured run through `mod executor`: every task submitted at once, results taken as they
/// complete (Python's `as_completed`), then put back in submission order to be compared. `None`
/// when interrupted: tasks not started are cancelled, running ones finish, workers are reaped.
fn run_executor(
    tasks: &[Task],
    cfg: PoolConfig,
    stop: &AtomicBool,
    json: bool,
) -> anyhow::Result<Option<PoolRun>> {
    let max_attempts = cfg.max_attempts;
    let executor = executor::Executor::new(cfg).context("starting the executor's threads")?;
    let handles = tasks.iter().map(|t| executor.submit(t.encode())).collect();
    let bar = shared::progress::bar(tasks.len() as u64, json);
    let mut results: Vec<Option<TaskResult>> = vec![None; tasks.len()];
    let mut completion_order = Vec::with_capacity(tasks.len());
    let mut done = handle::as_completed(handles);
    loop {
        if stop.load(Ordering::Acquire) {
            drop(done);
            executor.shutdown(true);
            bar.finish_and_clear();
            return Ok(None);
        }
        let (id, outcome) = match done.next_within(Duration::from_millis(50)) {
            Ok(Some(next)) => next,
            Ok(None) => break,
            Err(_) => continue, // Nothing finished yet: look at `stop` again.
        };
        let t = &tasks[id]; // Submitted in order to a new executor: its ids are our indexes.
        let (result, attempts) = match outcome {
            Ok(Ok(answer)) => (decode_answer(&answer), None),
            Ok(Err(last)) => {
                let why = describe_failure(&last, max_attempts);
                let error = format!("gave up after {} attempts; last: {why}", last.attempt);
                bar.suspend(|| eprintln!("{why}"));
                (Err(error), Some(last.attempt))
            }
            Err(Cancelled) => (Err("cancelled".to_owned()), Some(0)),
        };
        results[id] = Some(TaskResult {
            id: t.id,
            seed: t.seed,
            value: result.as_ref().ok().copied(),
            error: result.err(),
            attempts,
        });
        completion_order.push(t.id);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let PoolCounters {
        workers_started,
        worker_failures,
    } = executor.shutdown(false);
    let results = results.into_iter().collect::<Option<Vec<_>>>();
    let results = results.context("as_completed yielded every task")?;
    let counters = RunCounters {
        workers_started,
        worker_failures,
        ..RunCounters::default()
    };
    Ok(Some(PoolRun {
        results,
        counters,
        completion_order: Some(completion_order),
    }))
}

/// The measured pool run, whichever API ran it.
struct PoolRun {
    /// In submission order.
    results: Vec<TaskResult>,
    counters: RunCounters,
    /// Task ids in the order their results came back (`--as-completed` only).
    completion_order: Option<Vec<u64>>,
}

/// What `python/process_pool.py` reported.
struct PythonRun {
    version: String,
    wall: Duration,
    cpu: Duration,
    values: TaskValues,
    json: serde_json::Value,
}

/// Runs the course's `ProcessPoolExecutor` on the same tasks (seeds, rounds, poison) and
/// `workers` processes. The tasks go through a file: thousands of seeds do not fit on a
/// command line.
fn run_python(py: &Python, tasks: &[Task], workers: usize) -> anyhow::Result<PythonRun> {
    let spec = serde_json::json!({
        "rounds": tasks.first().map_or(0, |t| t.rounds),
        "seeds": tasks.iter().map(|t| t.seed).collect::<Vec<_>>(),
        "poison": tasks.iter().filter(|t| t.poison).map(|t| t.id).collect::<Vec<_>>(),
    });
    let file = tempfile::NamedTempFile::new().context("creating the task file for Python")?;
    serde_json::to_writer(&file, &spec).context("writing the task file for Python")?;
    let path = file.path().to_string_lossy().into_owned();
    let workers = workers.to_string();
    let out = py.run_recipe(
        PYTHON_RECIPE,
        &["--tasks-file", &path, "--workers", &workers],
    )?;
    let json = out.json;
    let secs = |key: &str| {
        let s = json[key].as_f64().filter(|s| s.is_finite() && *s >= 0.0);
        s.map(Duration::from_secs_f64)
            .with_context(|| format!("the recipe's {key:?} is not a duration: {}", json[key]))
    };
    let (wall, cpu) = (secs("wall_s")?, secs("cpu_s")?);
    let values = json["values"]
        .as_array()
        .filter(|v| v.len() == tasks.len())
        .context("the recipe did not report one value per task")?;
    let values = (0..tasks.len())
        .zip(values)
        .map(|(id, v)| {
            v.as_u64().ok_or_else(|| {
                let error = &json["errors"][id.to_string()];
                error.as_str().unwrap_or("no value").to_owned()
            })
        })
        .collect();
    Ok(PythonRun {
        version: py.version.clone(),
        wall,
        cpu,
        values,
        json,
    })
}

fn values_of(results: &[TaskResult]) -> TaskValues {
    results
        .iter()
        .map(|r| r.value.ok_or_else(|| r.error.clone().unwrap_or_default()))
        .collect()
}

/// How a run compares with the baseline. Only tasks that both runs computed are comparable:
/// a task that failed (or could not run) in either says nothing about agreement, and is listed
/// as a failure of its run instead.
#[derive(Debug, PartialEq, Eq)]
struct Agreement {
    compared: usize,
    total: usize,
    /// Ids of the comparable tasks whose values differ.
    mismatched: Vec<u64>,
}

impl Agreement {
    fn between(base: &TaskValues, other: &TaskValues) -> Agreement {
        let mut compared = 0;
        let mut mismatched = Vec::new();
        for (id, (a, b)) in (0u64..).zip(base.iter().zip(other)) {
            if let (Ok(a), Ok(b)) = (a, b) {
                compared += 1;
                if a != b {
                    mismatched.push(id);
                }
            }
        }
        Agreement {
            compared,
            total: base.len(),
            mismatched,
        }
    }

    fn note(&self) -> String {
        let mut note = format!("compared {} of {} tasks", self.compared, self.total);
        if self.compared < self.total {
            let failed = self.total - self.compared;
            note.push_str(&format!(" ({failed} failed in a run: not comparable)"));
        }
        if !self.mismatched.is_empty() {
            note.push_str(&format!("; DIFFER on {:?}", self.mismatched));
        }
        note
    }
}

fn make_tasks(args: &Args) -> Vec<Task> {
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let chaos = args.chaos.unwrap_or(0.0);
    (0..args.tasks)
        .map(|id| Task {
            id,
            seed: rng.random(),
            rounds: args.rounds(),
            poison: args.poison.contains(&id),
            chaos: rng.random::<f64>() < chaos,
        })
        .collect()
}

fn pool_config(args: &Args, workers: usize, garbage: bool) -> anyhow::Result<PoolConfig> {
    let exe = std::env::current_exe().context("finding our own binary to re-execute")?;
    let (marker, no_pdeathsig) = (args.marker.clone(), args.no_pdeathsig);
    // The next worker started gets `--garbage` (taken once, by whichever slot spawns first).
    let garbage_pending = AtomicBool::new(garbage);
    let command = move || {
        let mut cmd = Command::new(&exe);
        cmd.arg("--worker");
        if let Some(marker) = &marker {
            cmd.arg("--marker").arg(marker);
        }
        if no_pdeathsig {
            cmd.arg("--no-pdeathsig");
        }
        if garbage_pending.swap(false, Ordering::SeqCst) {
            cmd.arg("--garbage");
        }
        cmd
    };
    Ok(PoolConfig {
        workers,
        max_attempts: args.max_attempts,
        command: Box::new(command),
    })
}

fn parent_main(args: &Args) -> anyhow::Result<ExitCode> {
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get().min(256)));
    // Find python3 before measuring anything: a missing interpreter is a usage error (exit 2)
    // whose message says what to install.
    let python = match args.python.then(|| Python::find(&[])).transpose() {
        Ok(python) => python,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let stop = shared::shutdown::stop_flag_on_ctrl_c()?;
    let tasks = make_tasks(args);
    if !args.json {
        println!(
            "process-pool: {} tasks × {} rounds on {workers} worker processes (this binary with --worker)",
            tasks.len(),
            args.rounds()
        );
    }
    let mut table = SpeedupTable::new(format!(
        "{} CPU-bound tasks, {} rounds each",
        tasks.len(),
        args.rounds()
    ));
    // Every failure of every run: a failed task is never only a `false` in a column.
    let mut failures: Vec<RunFailure> = Vec::new();
    let mut list_failures = |run: &str, values: &TaskValues| {
        for (id, v) in (0u64..).zip(values) {
            if let Err(error) = v {
                let (run, error) = (run.to_owned(), error.clone());
                failures.push(RunFailure { run, id, error });
            }
        }
    };

    let mut baseline: Option<(TaskValues, Duration)> = None;
    if !args.no_compare {
        // The same tasks, poison included, without the chaos monkey, on one worker.
        let calm: Vec<Task> = tasks.iter().map(|t| Task { chaos: false, ..*t }).collect();
        let cfg = pool_config(args, 1, false)?;
        let run = shared::report::timed(|| run_pool(&calm, &cfg, &stop, args.json));
        let Some((results, _)) = run.value else {
            return Ok(interrupted());
        };
        let name = "1 worker process";
        table.push(Row::new(name, run.wall).cpu(run.cpu).note("baseline"));
        let values = values_of(&results);
        list_failures(name, &values);
        baseline = Some((values, run.wall));
    }

    let cfg = pool_config(args, workers, args.garbage_worker)?;
    let run = shared::report::timed(|| {
        if args.as_completed {
            run_executor(&tasks, cfg, &stop, args.json)
        } else {
            let run = run_pool(&tasks, &cfg, &stop, args.json);
            Ok(run.map(|(results, counters)| PoolRun {
                results,
                counters,
                completion_order: None,
            }))
        }
    });
    let Some(pool_run) = run.value? else {
        return Ok(interrupted());
    };
    let (results, counters) = (&pool_run.results, pool_run.counters);
    let pool_values = values_of(results);
    let name = if args.as_completed {
        format!("{workers} worker processes, as_completed")
    } else {
        format!("{workers} worker processes")
    };
    list_failures(&name, &pool_values);
    let mut note = format!(
        "{} workers started, {} failures",
        counters.workers_started, counters.worker_failures
    );
    let mut row = Row::new(&name, run.wall).cpu(run.cpu);
    if let Some((base, base_wall)) = &baseline {
        let agreement = Agreement::between(base, &pool_values);
        note = format!("{note}; {}", agreement.note());
        row = row
            .ideal(base_wall.div_f64(workers as f64))
            .agrees(agreement.mismatched.is_empty());
    }
    let row = row.note(note);
    table.push(row);

    if let Some((base, _)) = &baseline {
        let rayon_run = compare_with_rayon(&tasks, workers)?;
        let name = format!("{workers} threads (rayon)");
        list_failures(&name, &rayon_run.value);
        let agreement = Agreement::between(base, &rayon_run.value);
        table.push(
            Row::new(name, rayon_run.wall)
                .cpu(rayon_run.cpu)
                .agrees(agreement.mismatched.is_empty())
                .note(format!("same tasks, one process; {}", agreement.note())),
        );
    }

    let python_run = match &python {
        Some(py) => Some(run_python(py, &tasks, workers)?),
        None => None,
    };
    if let Some(p) = &python_run {
        let name = format!("Python ProcessPoolExecutor({workers})");
        list_failures(&name, &p.values);
        let agreement = Agreement::between(&pool_values, &p.values);
        let ratio = p.wall.as_secs_f64() / run.wall.as_secs_f64().max(1e-9);
        table.push(
            Row::new(name, p.wall)
                .cpu(p.cpu)
                .agrees(agreement.mismatched.is_empty())
                .note(format!(
                    "{}, submit + as_completed: {ratio:.1}x the Rust pool's time; vs the Rust pool: {}",
                    p.version,
                    agreement.note()
                )),
        );
    }

    report(
        args,
        workers,
        &tasks,
        &pool_run,
        &table,
        &failures,
        python_run.as_ref(),
    );
    if !failures.is_empty() || !table.all_agree() {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The same work on threads in this process: what the pool costs over rayon. A poison task
/// cannot run here: its abort would end this whole process (see `isolation`).
fn compare_with_rayon(tasks: &[Task], workers: usize) -> anyhow::Result<Timed<TaskValues>> {
    let threads = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()?;
    Ok(shared::report::timed(|| {
        threads.install(|| {
            tasks
                .par_iter()
                .map(|t| {
                    if t.poison {
                        Err("not run: a poison task would abort this whole process".into())
                    } else {
                        Ok(shared::work::cpu_task(t.seed, t.rounds))
                    }
                })
                .collect()
        })
    }))
}

fn report(
    args: &Args,
    workers: usize,
    tasks: &[Task],
    run: &PoolRun,
    table: &SpeedupTable,
    failures: &[RunFailure],
    python: Option<&PythonRun>,
) {
    let (results, counters) = (&run.results, run.counters);
    let failed: Vec<u64> = results
        .iter()
        .filter(|r| r.value.is_none())
        .map(|r| r.id)
        .collect();
    let checksum = results
        .iter()
        .filter_map(|r| r.value)
        .fold(0u64, |a, v| a.rotate_left(5) ^ v);
    if args.json {
        shared::report::print_json(&serde_json::json!({
            "workers": workers,
            "tasks": tasks.len(),
            "rounds": args.rounds(),
            "results": results,
            "failed": failed,
            "failures": failures,
            "stats": counters,
            "checksum": checksum,
            "agree": table.all_agree(),
            "table": table.to_json(),
            "completion_order": run.completion_order,
            "python": python.map(|p| serde_json::json!({
                "version": p.version,
                "wall_s": p.wall.as_secs_f64(),
                "cpu_s": p.cpu.as_secs_f64(),
                "checksum": p.json["checksum"],
                "completion_order": p.json["completion_order"],
                "errors": p.json["errors"],
            })),
        }));
    } else {
        let shown = if args.print_all { results.len() } else { 6 };
        println!("results, in submission order:");
        for r in results.iter().take(shown) {
            match (&r.value, &r.error) {
                (Some(v), _) => println!("  task {:>3}: {v:#018x}", r.id),
                (None, e) => println!(
                    "  task {:>3}: FAILED: {}",
                    r.id,
                    e.as_deref().unwrap_or("?")
                ),
            }
        }
        if shown < results.len() {
            println!(
                "  … {} more (--print-all), checksum {checksum:#018x}",
                results.len() - shown
            );
        }
        let c = counters;
        println!(
            "workers started: {}, worker failures: {} (chaos kills {}, protocol errors {})",
            c.workers_started, c.worker_failures, c.chaos_kills, c.protocol_errors
        );
        if let Some(order) = &run.completion_order {
            let first: Vec<String> = order.iter().take(16).map(u64::to_string).collect();
            let more = if order.len() > 16 { " …" } else { "" };
            println!("completion order (as_completed): {}{more}", first.join(" "));
        }
        if let Some(p) = python {
            let same = if table.all_agree() {
                "same"
            } else {
                "DIFFERENT"
            };
            let checksum = p.json["checksum"].as_u64().unwrap_or_default();
            println!(
                "Python ({}): checksum {checksum:#018x}, {same} values as the Rust pool",
                p.version
            );
        }
        println!();
        table.print();
        println!();
        if run.completion_order.is_some() {
            println!(
                "Every task came back exactly once or is listed as failed: as_completed yields"
            );
            println!("each handle once, and its result is put back at the task's index.");
        } else {
            println!(
                "Every task ran to completion exactly once or is listed as failed: the collector"
            );
            println!(
                "stores reports by index and would panic on a duplicate. Dead workers were reaped and replaced."
            );
        }
    }
    // Stderr in both modes: the failures of every run, not only of the measured one.
    if !failures.is_empty() {
        eprintln!("failed tasks, by run:");
        for f in failures {
            eprintln!("  {}: task {}: {}", f.run, f.id, f.error);
        }
    }
    if !table.all_agree() {
        eprintln!("the runs DISAGREE on tasks that every run computed: see the table's notes");
    }
}

fn interrupted() -> ExitCode {
    eprintln!("interrupted: every worker was killed and reaped");
    ExitCode::from(130)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_round_trip_and_reject_the_wrong_size() {
        let t = Task {
            id: 9,
            seed: u64::MAX - 3,
            rounds: 77,
            poison: true,
            chaos: false,
        };
        assert_eq!(
            decode_request(&t.encode()).unwrap(),
            (u64::MAX - 3, 77, true)
        );
        assert!(decode_request(&t.encode()[..12]).is_err());
        assert!(decode_request(&[t.encode(), vec![0]].concat()).is_err());
        assert_eq!(decode_answer(&123u64.to_le_bytes()), Ok(123));
        assert!(decode_answer(&[0; 7]).is_err());
    }

    #[test]
    fn only_results_that_both_runs_computed_are_compared() {
        let base: TaskValues = vec![Ok(1), Err("lost".into()), Ok(3), Ok(4)];
        let same = vec![Ok(1), Ok(2), Ok(3), Err("poison".into())];
        let agreement = Agreement::between(&base, &same);
        assert_eq!(
            agreement,
            Agreement {
                compared: 2,
                total: 4,
                mismatched: vec![]
            }
        );
        assert!(
            agreement.note().contains("compared 2 of 4"),
            "{}",
            agreement.note()
        );
        let wrong = vec![Ok(1), Ok(2), Ok(30), Ok(4)];
        let agreement = Agreement::between(&base, &wrong);
        assert_eq!(agreement.mismatched, vec![2]);
        assert!(agreement.note().contains("DIFFER on [2]"));
    }

    #[test]
    fn numeric_flags_refuse_out_of_range_values() {
        assert!(Args::try_parse_from(["x", "--workers", "0"]).is_err());
        assert!(Args::try_parse_from(["x", "--chaos", "NaN"]).is_err());
        assert!(Args::try_parse_from(["x", "--max-attempts", "0"]).is_err());
        assert!(Args::try_parse_from(["x", "--tasks", "1e30"]).is_err());
        let ok = Args::try_parse_from(["x", "--chaos"]).unwrap();
        assert_eq!(ok.chaos, Some(0.2));
    }
}
