//! Image batch over worker processes: the `multiprocessing.Pool` version of `image-batch`,
//! measured against rayon threads on the same folder.
//!
//! Course section **8.1 — Threading et multiprocessing**: "Traiter chaque image d'un dossier sur
//! un cœur différent" with *processes*, as the course's Python readers do it
//! (`Pool(2).map(thumbnail, files)`; `--python` runs exactly that with Pillow,
//! `examples-threads/python/image_batch.py`). The pool is built by hand: spawn, protocol, failures.
//!
//! Crates: `serde_json = "1"`, `libc = "0.2"`
//!
//! # Concepts
//! - Workers are this very binary re-executed with `--worker`. One parent *slot* thread owns
//!   each worker and sends it one image at a time (`chunksize=1`: a big image never holds up a
//!   queue of small ones).
//! - JSON lines on the pipes: the first line carries the options, then one request and one
//!   answer per line. Lines are capped in length, so a runaway worker cannot make the parent
//!   buffer gigabytes, and a human can drive a worker by hand (see *Run*). Paths cross the pipe,
//!   never the image bytes: ~200 bytes per image.
//! - Errors as values across processes: a broken file is an answer (`{"err": …}`) and the
//!   worker lives on; a worker that *dies* on a file is replaced and the file retried once, then
//!   reported. The batch never stops and never leaves partial output.
//! - The decode budget (a weighted semaphore, `Mutex<u64>` + `Condvar`, as in `image-batch`):
//!   a slot admits an image by its estimated decoded size before sending it, so two 100 MP
//!   images are never decoded at once, even in two processes. Slots are our own threads, so
//!   unlike rayon's they may block on it.
//! - Ctrl-C or SIGTERM: slots stop taking images, the ones in flight finish, every worker gets
//!   EOF and exits, exit 130. `PR_SET_PDEATHSIG` kills workers whose parent was SIGKILLed.
//! - `RAYON_NUM_THREADS=1` in the workers: jpeg-decoder would start one thread per core in
//!   *each* process (N processes × N threads on N cores).
//!
//! # Run
//! ```text
//! cargo run --release -p examples-processes --bin image-batch-processes              # + rayon
//! cargo run --release -p examples-processes --bin image-batch-processes -- --with-broken
//! cargo run --release -p examples-processes --bin image-batch-processes -- --python  # + Pillow
//! cargo run --release -p examples-processes --bin image-batch-processes -- ~/Photos /tmp/t --recursive
//! cargo run --release -p examples-processes --bin image-batch-processes -- --samples-dir /tmp/s --json
//! printf '%s\n' '{"max_width":64,"max_height":64,"jpeg_quality":85,"png":false,"grayscale":false,"blur":null,"max_pixels":100000000,"scaled_decode":true}' \
//!   '{"id":0,"input":"/tmp/s/img-000-rgb-1500x1000.jpg","output":"/tmp/t.jpg"}' \
//!   | target/release/image-batch-processes --worker     # drive a worker by hand
//! ```
//!
//! # What to observe
//! - The comparison table: worker processes within a few % of rayon threads, and `agrees:
//!   yes` (identical bytes). For 30 ms tasks the price of processes (starting each, a pipe
//!   round trip per image) disappears, but threads needed no protocol at all.
//! - The per-worker lines: different image counts, similar megapixels (dynamic dispatch).
//! - `--with-broken`: every bad file listed with the reason the *worker* gave, exit code 1.
//! - `--python`: the course's Pool + Pillow writes the same files, with the same dimensions.
//!
//! # Exercises
//! 1. Send the image bytes through the pipe instead of the path (length-prefixed frames) and
//!    measure what copying ~2 MB per image through two pipes costs.
//! 2. Give each worker 4 images per message (`chunksize=4`): what happens to the balance?
//! 3. Make the worker `panic!` on names containing `crash`: check it is replaced, the file
//!    retried once and reported, and the batch still finishes.
//! 4. Remove `RAYON_NUM_THREADS=1` and watch `top -H`: how many threads per worker?
//! 5. Each slot takes the budget for itself, so small images may keep slipping past a big one
//!    that waits. Make admission first-come first-served (a ticket counter in the budget).

// === Lesson: copy from here ===

/// The protocol: one JSON value per line, in both directions.
mod json_lines {
    use std::io::{self, BufRead, Read as _, Write};

    /// A line longer than this is a broken peer, not a message (ours are ~300 bytes).
    pub const MAX_LINE: usize = 64 * 1024;

    /// How one task failed, as the worker (or the slot, for a dead worker) reports it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TaskFailure {
        /// A stable name for reports: `decode`, `too_large`, `worker_crash`, …
        pub kind: String,
        pub reason: String,
    }

    /// Writes one JSON line and flushes it: the other side is waiting for exactly this line.
    /// Newlines inside strings are escaped by JSON, so a message is always one line.
    pub fn send_line(w: &mut impl Write, msg: &serde_json::Value) -> io::Result<()> {
        serde_json::to_writer(&mut *w, msg)?;
        w.write_all(b"\n")?;
        w.flush()
    }

    /// Reads one JSON line; `Ok(None)` on a clean end of stream. A line over [`MAX_LINE`] is an
    /// error, found without buffering more than `MAX_LINE` bytes of it.
    pub fn recv_line(r: &mut impl BufRead) -> io::Result<Option<serde_json::Value>> {
        let mut line = String::new();
        let n = r.take(MAX_LINE as u64 + 1).read_line(&mut line)?;
        if n == 0 {
            return Ok(None);
        }
        if !line.ends_with('\n') {
            let what = if n > MAX_LINE {
                format!("line longer than {MAX_LINE} bytes")
            } else {
                format!("stream ended inside a line ({n} bytes, no newline)")
            };
            return Err(io::Error::new(io::ErrorKind::InvalidData, what));
        }
        serde_json::from_str(&line).map(Some).map_err(|e| {
            let what = format!("not a valid message ({e}): {:?}", line.trim_end());
            io::Error::new(io::ErrorKind::InvalidData, what)
        })
    }

    #[cfg(test)]
    mod tests {
        use super::{MAX_LINE, recv_line, send_line};
        use serde_json::json;

        #[test]
        fn messages_round_trip_one_per_line() {
            let mut buf = Vec::new();
            send_line(&mut buf, &json!({"id": 4, "err": {"kind": "decode"}})).unwrap();
            send_line(&mut buf, &json!({"id": 5, "output": "o\nut.jpg"})).unwrap();
            assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), 2);
            let mut r = &buf[..];
            assert_eq!(recv_line(&mut r).unwrap().unwrap()["err"]["kind"], "decode");
            assert_eq!(recv_line(&mut r).unwrap().unwrap()["output"], "o\nut.jpg");
            assert!(recv_line(&mut r).unwrap().is_none());
        }

        #[test]
        fn oversized_truncated_and_garbage_lines_are_errors() {
            let long = vec![b'x'; MAX_LINE + 10];
            let err = |bytes: &[u8]| recv_line(&mut &bytes[..]).unwrap_err().to_string();
            assert!(err(&long).contains("longer"));
            assert!(err(b"{\"id\":1").contains("inside a line"));
            assert!(err(b"hello\n").contains("not a valid message"));
        }
    }
}

/// The worker process: one task at a time, until its stdin closes.
mod worker {
    use super::json_lines::{TaskFailure, recv_line, send_line};
    use serde_json::{Value, json};
    use std::io::{self, BufRead, Write};
    use std::path::Path;

    /// Die with the parent, even if it is SIGKILLed (no destructor runs then). The parent may
    /// die between our fork and the `prctl`: then we already have a new parent, hence the check.
    pub fn die_with_parent(parent_pid: u32) -> io::Result<()> {
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
            return Err(io::Error::last_os_error());
        }
        if std::os::unix::process::parent_id() != parent_pid {
            return Err(io::Error::other(
                "the parent died before the worker started",
            ));
        }
        Ok(())
    }

    /// The worker's loop. The first line is the options, handed to `setup` which returns the
    /// task handler; then each `{"id", "input", "output"}` line gets one answer line,
    /// `{"id", "ok": …}` or `{"id", "err": {"kind", "reason"}}`. A failed task is an answer:
    /// the worker lives on. Returns when the parent closes our stdin.
    pub fn serve<H>(
        input: &mut impl BufRead,
        output: &mut impl Write,
        setup: impl FnOnce(Value) -> io::Result<H>,
    ) -> io::Result<()>
    where
        H: FnMut(&Path, &Path) -> Result<Value, TaskFailure>,
    {
        let Some(options) = recv_line(input)? else {
            return Ok(());
        };
        let mut handle = setup(options)?;
        while let Some(request) = recv_line(input)? {
            let (Some(src), Some(dst)) = (request["input"].as_str(), request["output"].as_str())
            else {
                let what = format!("not a request: {request}");
                return Err(io::Error::new(io::ErrorKind::InvalidData, what));
            };
            let answer = match handle(Path::new(src), Path::new(dst)) {
                Ok(done) => json!({"id": request["id"], "ok": done}),
                Err(f) => json!({"id": request["id"], "err": {"kind": f.kind, "reason": f.reason}}),
            };
            send_line(output, &answer)?;
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::super::json_lines::TaskFailure;
        use super::serve;
        use serde_json::{Value, json};
        use std::path::Path;

        #[test]
        fn one_answer_per_request_and_a_failure_is_an_answer() {
            let input = concat!(
                "{\"scale\":2}\n",
                "{\"id\":0,\"input\":\"a.jpg\",\"output\":\"o/a.jpg\"}\n",
                "{\"id\":1,\"input\":\"bad.jpg\",\"output\":\"o/bad.jpg\"}\n",
            );
            let mut output = Vec::new();
            serve(&mut input.as_bytes(), &mut output, |options: Value| {
                let scale = options["scale"].as_u64().unwrap();
                Ok(move |src: &Path, _dst: &Path| {
                    if src.ends_with("bad.jpg") {
                        Err(TaskFailure {
                            kind: "decode".into(),
                            reason: "broken".into(),
                        })
                    } else {
                        Ok(json!({"scaled": scale}))
                    }
                })
            })
            .unwrap();
            let answers: Vec<Value> = output
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice(l).unwrap())
                .collect();
            assert_eq!(answers[0], json!({"id": 0, "ok": {"scaled": 2}}));
            assert_eq!(answers[1]["err"]["kind"], "decode");
            assert_eq!(answers.len(), 2);
        }
    }
}

/// The parent's side of one worker process: its pipes, a call, its end.
mod worker_process {
    use super::json_lines::{recv_line, send_line};
    use serde_json::Value;
    use std::io::{self, BufReader, BufWriter};
    use std::os::unix::process::CommandExt;
    use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

    pub struct WorkerProcess {
        child: Child,
        to_worker: BufWriter<ChildStdin>,
        from_worker: BufReader<ChildStdout>,
    }

    impl WorkerProcess {
        /// Starts `command` with piped stdin and stdout, and sends it `options` as its first line.
        pub fn spawn(mut command: Command, options: &Value) -> io::Result<WorkerProcess> {
            let mut child = command
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                // Its own process group: Ctrl-C reaches the parent only, which decides.
                .process_group(0)
                .spawn()?;
            let mut to_worker = BufWriter::new(child.stdin.take().expect("stdin is piped"));
            let from_worker = BufReader::new(child.stdout.take().expect("stdout is piped"));
            send_line(&mut to_worker, options)?;
            Ok(WorkerProcess {
                child,
                to_worker,
                from_worker,
            })
        }

        /// Sends one request and waits for its answer; `Ok(None)` if the worker closed its stdout.
        pub fn call(&mut self, request: &Value) -> io::Result<Option<Value>> {
            send_line(&mut self.to_worker, request)?;
            recv_line(&mut self.from_worker)
        }

        /// Ends the worker and reaps it (no zombie), and says how it ended. A healthy worker
        /// exits on EOF; a broken one is killed first.
        pub fn retire(mut self, healthy: bool) -> String {
            if !healthy {
                let _ = self.child.kill();
            }
            drop(self.to_worker); // EOF: a healthy worker leaves its loop and exits 0
            match self.child.wait() {
                Ok(status) => status.to_string(),
                Err(e) => format!("could not be reaped: {e}"),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::WorkerProcess;
        use serde_json::json;
        use std::process::Command;

        /// `sh` as a worker: echoes each request line back, after the options line.
        fn echo_worker() -> Command {
            let mut c = Command::new("sh");
            c.args([
                "-c",
                "read -r options; while read -r line; do echo \"$line\"; done",
            ]);
            c
        }

        #[test]
        fn a_call_is_one_line_out_and_one_line_back_and_eof_ends_the_worker() {
            let mut w = WorkerProcess::spawn(echo_worker(), &json!({"size": 64})).unwrap();
            let answer = w.call(&json!({"id": 7})).unwrap().unwrap();
            assert_eq!(answer, json!({"id": 7}));
            assert_eq!(w.retire(true), "exit status: 0");
        }

        #[test]
        fn a_dead_worker_is_an_empty_answer_and_a_broken_one_is_killed() {
            let mut quits = Command::new("sh");
            quits.args(["-c", "read -r options; exit 0"]);
            let mut w = WorkerProcess::spawn(quits, &json!({})).unwrap();
            assert!(matches!(w.call(&json!({"id": 1})), Ok(None) | Err(_)));
            w.retire(false);
            let mut stuck = Command::new("sleep");
            stuck.arg("60");
            let w = WorkerProcess::spawn(stuck, &json!({})).unwrap();
            assert!(
                w.retire(false).contains("SIGKILL"),
                "killed, not waited for"
            );
        }
    }
}

/// The pool: one slot thread per worker process, one shared queue, retries on a dead worker.
mod process_pool {
    use super::decode_budget::DecodeBudget;
    use super::json_lines::TaskFailure;
    use super::worker_process::WorkerProcess;
    use serde_json::{Value, json};
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::thread;

    /// Attempts per task: a worker that dies on a task is replaced and the task retried once.
    pub const MAX_ATTEMPTS: u32 = 2;

    /// One file to process, and what the decode budget admits it by.
    pub struct Task {
        pub input: PathBuf,
        pub output: PathBuf,
        pub cost: u64,
    }

    #[derive(Debug, Clone, PartialEq)]
    pub enum TaskResult {
        /// The worker's `ok` value; `slot`: which slot's worker did it.
        Done {
            answer: Value,
            slot: usize,
        },
        Failed(TaskFailure),
        /// Stopped before it started.
        Cancelled,
    }

    /// What steers the pool besides its tasks.
    pub struct PoolControl<'a> {
        pub budget: &'a DecodeBudget,
        /// Set by Ctrl-C: tasks not started are cancelled, the ones in flight finish.
        pub stop: &'a AtomicBool,
        pub on_task_done: &'a (dyn Fn() + Sync),
        /// A worker died (with what happened): a human wants to know at once.
        pub on_worker_lost: &'a (dyn Fn(&str) + Sync),
    }

    /// Runs every task on `workers` processes started by `command` (each gets `options` first);
    /// results in task order.
    pub fn run_on_workers(
        tasks: &[Task],
        workers: usize,
        command: &(dyn Fn() -> Command + Sync),
        options: &Value,
        control: &PoolControl<'_>,
    ) -> Vec<TaskResult> {
        // The whole batch is known up front: the queue is an index into it, and a slot stops
        // when the index runs past the end.
        let next = AtomicUsize::new(0);
        let (result_tx, result_rx) = mpsc::channel();
        let start = || WorkerProcess::spawn(command(), options);
        thread::scope(|s| {
            for slot in 0..workers {
                let (next, result_tx, start) = (&next, result_tx.clone(), &start);
                thread::Builder::new()
                    .name(format!("slot-{slot}"))
                    .spawn_scoped(s, move || {
                        let mut worker = None;
                        loop {
                            // Relaxed: the counter only hands out distinct indices.
                            let id = next.fetch_add(1, Ordering::Relaxed);
                            let Some(task) = tasks.get(id) else { break };
                            let result = if control.stop.load(Ordering::Acquire) {
                                TaskResult::Cancelled
                            } else {
                                // Held until the answer is in, across a retry.
                                let _permit = control.budget.acquire(task.cost);
                                run_task(slot, id, task, &mut worker, start, control)
                            };
                            (control.on_task_done)();
                            if result_tx.send((id, result)).is_err() {
                                break;
                            }
                        }
                        if let Some(w) = worker {
                            w.retire(true);
                        }
                    })
                    .expect("spawning a slot thread");
            }
        });
        drop(result_tx);
        let mut results: Vec<TaskResult> = tasks.iter().map(|_| TaskResult::Cancelled).collect();
        for (id, result) in result_rx {
            results[id] = result;
        }
        results
    }

    /// One task on this slot's worker (started if needed), with a retry on a fresh worker if
    /// the first one dies.
    fn run_task(
        slot: usize,
        id: usize,
        task: &Task,
        worker: &mut Option<WorkerProcess>,
        start: &dyn Fn() -> std::io::Result<WorkerProcess>,
        control: &PoolControl<'_>,
    ) -> TaskResult {
        let failed = |kind: &str, reason: String| {
            TaskResult::Failed(TaskFailure {
                kind: kind.into(),
                reason,
            })
        };
        // JSON strings are UTF-8; a Unix path need not be. Refuse it here rather than blame
        // the worker. (A binary protocol would carry raw bytes.)
        let (Some(input), Some(output)) = (task.input.to_str(), task.output.to_str()) else {
            let why = "the path is not UTF-8 and cannot travel in a JSON message";
            return failed("path", why.into());
        };
        let request = json!({"id": id, "input": input, "output": output});
        let mut attempt = 0;
        loop {
            attempt += 1;
            let w = match worker {
                Some(w) => w,
                None => match start() {
                    Ok(w) => worker.insert(w),
                    Err(e) => return failed("worker_start", format!("starting a worker: {e}")),
                },
            };
            let what = match w.call(&request) {
                Ok(Some(answer)) if answer["id"] == id => {
                    return match (answer.get("ok"), answer.get("err")) {
                        (Some(done), _) => TaskResult::Done {
                            answer: done.clone(),
                            slot,
                        },
                        (None, Some(err)) => failed(
                            err["kind"].as_str().unwrap_or("unknown"),
                            err["reason"].as_str().unwrap_or_default().to_owned(),
                        ),
                        (None, None) => failed("protocol", format!("odd answer: {answer}")),
                    };
                }
                Ok(Some(answer)) => format!("answer {answer} while task {id} was running"),
                Ok(None) => "the worker closed its stdout".to_owned(),
                Err(e) => e.to_string(),
            };
            // Whatever went wrong, this worker is done for: kill it, reap it, start another.
            let status = worker.take().expect("the worker just called").retire(false);
            let msg = format!(
                "worker died on {input} (attempt {attempt}/{MAX_ATTEMPTS}): {what} ({status})"
            );
            (control.on_worker_lost)(&msg);
            if attempt == MAX_ATTEMPTS || control.stop.load(Ordering::Acquire) {
                return failed("worker_crash", msg);
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::super::decode_budget::DecodeBudget;
        use super::{PoolControl, Task, TaskResult, run_on_workers};
        use std::process::Command;
        use std::sync::Mutex;
        use std::sync::atomic::AtomicBool;

        /// A stand-in worker in sh: reads the options, then answers each request with its own
        /// pid, and exits with code 3 (dies) on any request that mentions `crash`.
        fn sh_worker() -> Command {
            let script = r#"read -r options
                while read -r line; do
                  case "$line" in *crash*) exit 3 ;; esac
                  id=$(printf '%s' "$line" | sed 's/^{"id":\([0-9]*\).*/\1/')
                  printf '{"id":%s,"ok":{"pid":%s}}\n' "$id" "$$"
                done"#;
            let mut c = Command::new("sh");
            c.args(["-c", script]);
            c
        }

        fn tasks(names: &[&str]) -> Vec<Task> {
            names
                .iter()
                .map(|n| Task {
                    input: n.into(),
                    output: format!("out/{n}").into(),
                    cost: 1,
                })
                .collect()
        }

        fn run(names: &[&str], workers: usize, stop: bool) -> (Vec<TaskResult>, Vec<String>) {
            let budget = DecodeBudget::new(100);
            let lost = Mutex::new(Vec::new());
            let on_worker_lost = |m: &str| lost.lock().unwrap().push(m.to_owned());
            let control = PoolControl {
                budget: &budget,
                stop: &AtomicBool::new(stop),
                on_task_done: &|| {},
                on_worker_lost: &on_worker_lost,
            };
            let options = serde_json::json!({});
            let results = run_on_workers(&tasks(names), workers, &sh_worker, &options, &control);
            (results, lost.into_inner().unwrap())
        }

        #[test]
        fn every_task_is_answered_in_task_order() {
            let names: Vec<String> = (0..20).map(|i| format!("img-{i}.jpg")).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let (results, lost) = run(&names, 3, false);
            assert!(lost.is_empty(), "{lost:?}");
            for r in &results {
                assert!(
                    matches!(r, TaskResult::Done { slot, answer } if *slot < 3 && answer["pid"].is_u64())
                );
            }
        }

        #[test]
        fn a_worker_that_dies_is_replaced_and_the_task_retried_once() {
            let (results, lost) = run(&["a.jpg", "crash.jpg", "b.jpg", "c.jpg"], 1, false);
            match &results[1] {
                TaskResult::Failed(f) => {
                    assert_eq!(f.kind, "worker_crash");
                    assert!(f.reason.contains("attempt 2/2"), "{}", f.reason);
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(lost.len(), 2, "two workers died on it: {lost:?}");
            assert!(lost[0].contains("exit status: 3"), "{lost:?}");
            // The tasks after it ran on a third worker.
            assert!(matches!(results[3], TaskResult::Done { .. }));
        }

        #[test]
        fn a_stop_before_the_start_cancels_everything() {
            let (results, lost) = run(&["a.jpg", "b.jpg"], 2, true);
            assert!(results.iter().all(|r| *r == TaskResult::Cancelled));
            assert!(lost.is_empty());
        }
    }
}

/// Admission by memory: a weighted semaphore counted in bytes (the same as `image-batch`'s).
mod decode_budget {
    use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

    /// At most `capacity` bytes admitted at once. A request larger than the whole budget takes
    /// all of it: it waits until nothing else is admitted, then runs alone.
    pub struct DecodeBudget {
        capacity: u64,
        usage: Mutex<Usage>,
        /// Signalled whenever bytes are released: waiters check again whether they fit.
        released: Condvar,
    }

    struct Usage {
        admitted: u64,
        stats: BudgetStats,
    }

    /// What the budget saw, for the report.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct BudgetStats {
        pub capacity: u64,
        /// Most bytes admitted at once: never over `capacity`.
        pub peak: u64,
        /// Admissions that had to wait for others to finish.
        pub waits: u64,
        /// Requests larger than the whole budget (each ran alone).
        pub oversized: u64,
    }

    /// Bytes admitted until this is dropped.
    #[must_use = "the bytes are released as soon as the permit is dropped"]
    pub struct Permit<'a> {
        budget: &'a DecodeBudget,
        bytes: u64,
    }

    impl DecodeBudget {
        pub fn new(capacity: u64) -> DecodeBudget {
            let capacity = capacity.max(1);
            DecodeBudget {
                capacity,
                usage: Mutex::new(Usage {
                    admitted: 0,
                    stats: BudgetStats {
                        capacity,
                        ..BudgetStats::default()
                    },
                }),
                released: Condvar::new(),
            }
        }

        /// Blocks until `bytes` fit in the budget, then admits them.
        pub fn acquire(&self, bytes: u64) -> Permit<'_> {
            let mut usage = self.lock();
            if bytes > self.capacity {
                // Refusing it would be the other policy (a hard limit); here it runs alone.
                usage.stats.oversized += 1;
            }
            let bytes = bytes.min(self.capacity);
            if usage.admitted + bytes > self.capacity {
                usage.stats.waits += 1;
            }
            // A loop, not an `if`: wake-ups may be spurious, and another waiter may have taken
            // the bytes first.
            while usage.admitted + bytes > self.capacity {
                usage = self
                    .released
                    .wait(usage)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            usage.admitted += bytes;
            usage.stats.peak = usage.stats.peak.max(usage.admitted);
            Permit {
                budget: self,
                bytes,
            }
        }

        pub fn stats(&self) -> BudgetStats {
            self.lock().stats
        }

        /// The counters are updated in single statements, so a panic elsewhere cannot leave
        /// them half-changed: a poisoned lock is safe to keep using.
        fn lock(&self) -> MutexGuard<'_, Usage> {
            self.usage.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }

    impl Drop for Permit<'_> {
        fn drop(&mut self) {
            self.budget.lock().admitted -= self.bytes;
            // notify_all, not notify_one: waiters want different amounts, and the one
            // notify_one picks may not fit while another would.
            self.budget.released.notify_all();
        }
    }

    #[cfg(test)]
    mod tests {
        use super::DecodeBudget;
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::thread;

        /// Slot threads taking permits of different sizes never hold more than the budget, and
        /// an oversized request gets in alone without deadlocking them.
        #[test]
        fn never_over_budget_and_an_oversized_request_runs_alone() {
            let budget = DecodeBudget::new(100);
            let held = AtomicU64::new(0);
            let most = AtomicU64::new(0);
            thread::scope(|s| {
                for t in 0..4u64 {
                    let (budget, held, most) = (&budget, &held, &most);
                    s.spawn(move || {
                        for i in 0..50u64 {
                            let bytes = if t == 0 && i == 25 { 500 } else { 20 + i % 30 };
                            let _permit = budget.acquire(bytes);
                            let now = held.fetch_add(bytes, Ordering::SeqCst) + bytes;
                            most.fetch_max(now, Ordering::SeqCst);
                            if bytes > 100 {
                                assert_eq!(now, bytes, "the oversized request was not alone");
                            }
                            thread::yield_now();
                            held.fetch_sub(bytes, Ordering::SeqCst);
                        }
                    });
                }
            });
            let stats = budget.stats();
            assert!(stats.peak <= 100, "{stats:?}");
            assert_eq!(stats.oversized, 1);
        }
    }
}

// === Harness: not part of the lesson ===

use std::io::{BufReader, BufWriter};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use clap::Parser;
use decode_budget::DecodeBudget;
use indicatif::ProgressBar;
use json_lines::TaskFailure;
use process_pool::{PoolControl, Task, TaskResult, run_on_workers};
use serde::{Deserialize, Serialize};
use shared::batch::{
    self, BatchArgs, BatchFolders, BatchJob, BatchReport, BudgetFigures, ItemDone, ItemResult,
    JobOrder, Lanes, PreparedBatch, PythonBatch,
};
use shared::report::{Row, SpeedupTable, print_json, timed};
use shared::thumbnail::{self, OutputFormat, ThumbOptions};

/// Make a thumbnail of every JPEG/PNG of a folder on worker processes, skipping broken files,
/// and compare with rayon threads on the same folder.
///
/// Without IN_DIR, generates a seeded folder of photo-like sample images first.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    #[command(flatten)]
    batch: BatchArgs,
    /// Worker processes (default: one per core).
    #[arg(long, visible_alias = "threads", value_parser = shared::cli::usize_in(1, 256))]
    workers: Option<usize>,
    /// Skip the comparison run on rayon threads.
    #[arg(long)]
    no_compare: bool,

    /// Hidden: run as a worker (options on the first stdin line, then one job per line).
    #[arg(long, hide = true)]
    worker: bool,
    /// Hidden: (worker) the parent's pid, to close the PR_SET_PDEATHSIG race.
    #[arg(long, hide = true)]
    parent_pid: Option<u32>,
}

/// `ThumbOptions` as it travels (the shared type is not `Serialize`, and the wire format should
/// not change whenever a library type does).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WireOptions {
    max_width: u32,
    max_height: u32,
    jpeg_quality: u8,
    png: bool,
    grayscale: bool,
    blur: Option<f32>,
    max_pixels: u64,
    scaled_decode: bool,
}

impl WireOptions {
    fn from_options(o: &ThumbOptions) -> WireOptions {
        let (jpeg_quality, png) = match o.format {
            OutputFormat::Jpeg { quality } => (quality, false),
            OutputFormat::Png => (85, true),
        };
        WireOptions {
            max_width: o.max_width,
            max_height: o.max_height,
            jpeg_quality,
            png,
            grayscale: o.grayscale,
            blur: o.blur,
            max_pixels: o.max_pixels,
            scaled_decode: o.scaled_decode,
        }
    }

    fn to_options(&self) -> ThumbOptions {
        ThumbOptions {
            max_width: self.max_width,
            max_height: self.max_height,
            format: if self.png {
                OutputFormat::Png
            } else {
                OutputFormat::Jpeg {
                    quality: self.jpeg_quality.clamp(1, 100),
                }
            },
            grayscale: self.grayscale,
            // The same bounds as the parent's flags: a hand-driven worker gets no more.
            blur: self
                .blur
                .filter(|b| b.is_finite())
                .map(|b| b.clamp(0.0, 100.0)),
            max_pixels: self.max_pixels.min(1_000_000_000),
            scaled_decode: self.scaled_decode,
        }
    }
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    if args.worker {
        worker_main(args.parent_pid)?;
        return Ok(ExitCode::SUCCESS);
    }
    // `--python`: find python3 and Pillow before any work; missing, it is a usage error (exit 2)
    // whose message says what to install.
    let python = match args.batch.python.then(PythonBatch::find).transpose() {
        Ok(python) => python,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let opts = args.batch.thumb_options();
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let PreparedBatch {
        stop,
        folders,
        plan,
    } = PreparedBatch::prepare(&args.batch, "image-batch-processes", JobOrder::LargestFirst)?;
    // (A forced exit leaves the workers to PR_SET_PDEATHSIG, and their temporary files to the
    // cleanup registered by `prepare`.)
    let budget_bytes = args.batch.memory_budget_bytes();
    let processes = timed(|| {
        run_processes(
            &plan.jobs,
            workers,
            &folders,
            &opts,
            budget_bytes,
            &stop,
            args.batch.json,
        )
    });
    let (results, budget) = processes.value?;
    let interrupted = stop.load(Ordering::Acquire);

    // --- The threaded comparison on the same folder, into a scratch folder.
    let mut table = SpeedupTable::new(format!(
        "{} images, {workers} workers, same folder",
        plan.jobs.len()
    ));
    let mut identical = None;
    if !args.no_compare && !interrupted {
        let scratch = tempfile::Builder::new()
            .prefix("image-batch-rayon-")
            .tempdir()
            .context("creating a scratch folder for the rayon run")?;
        let threads = timed(|| {
            run_rayon(
                &plan.jobs,
                workers,
                scratch.path(),
                &opts,
                budget_bytes,
                args.batch.json,
            )
        });
        let thread_results = threads.value?;
        let same = batch::same_results(
            &plan.jobs,
            &thread_results,
            scratch.path(),
            &results,
            &folders.out_dir,
        )?;
        identical = Some(same);
        table.push(
            Row::new(format!("rayon, {workers} threads"), threads.wall)
                .cpu(threads.cpu)
                .note("image-batch's way"),
        );
        table.push(
            Row::new(format!("{workers} worker processes"), processes.wall)
                .cpu(processes.cpu)
                .agrees(same)
                .note("Pool.map(chunksize=1)'s way"),
        );
    }

    // --- The course's own Pool + Pillow on the same folder, with as many workers.
    let python_run = match &python {
        Some(py) if !interrupted => {
            if !args.batch.json {
                println!(
                    "running the Python version ({}) on the same folder…",
                    py.version
                );
            }
            let run = PythonBatch::run(py, &args.batch, &folders, &plan, &results, workers)?;
            if table.rows().is_empty() {
                // --no-compare: our processes are the baseline row.
                table.push(
                    Row::new(format!("{workers} worker processes"), processes.wall)
                        .cpu(processes.cpu),
                );
            }
            table.push(run.row(processes.wall));
            run.print_differences();
            Some(run)
        }
        _ => None,
    };

    // --- Report.
    let lanes = Lanes {
        count: workers,
        count_key: "workers",
        per_lane_key: "per_worker",
        label: "worker slot-",
    };
    let report = BatchReport::new(&plan, &results, lanes, processes.wall, processes.cpu);
    if args.batch.json {
        let mut v = report.to_json(&folders);
        v["comparison"] = if table.rows().is_empty() {
            serde_json::Value::Null
        } else {
            table.to_json()
        };
        v["identical"] = serde_json::json!(identical);
        v["python"] = python_run
            .as_ref()
            .map_or(serde_json::Value::Null, |p| p.to_json(processes.wall));
        v["memory_budget"] = budget.to_json();
        print_json(&v);
    } else {
        report.print(&folders);
        println!("(cpu includes the workers, once reaped)");
        budget.print();
        if let (Some(_), [threads, processes, ..]) = (identical, table.rows()) {
            println!();
            table.print();
            let ratio = processes.wall.as_secs_f64() / threads.wall.as_secs_f64();
            println!(
                "worker processes took {:.0}% {} than threads on the same images{}",
                (ratio - 1.0).abs() * 100.0,
                if ratio >= 1.0 { "longer" } else { "less time" },
                if identical == Some(true) {
                    ", and wrote byte-identical thumbnails."
                } else {
                    "."
                }
            );
            if identical == Some(false) {
                println!("processes and threads wrote DIFFERENT outputs (see above)");
            }
        } else if python_run.is_some() {
            println!();
            table.print();
        }
        if let Some(p) = &python_run {
            println!(
                "Python wrote {}: {:.2}x the time of our {workers} worker processes.",
                if p.agrees() {
                    "the same files, with the same dimensions"
                } else {
                    "DIFFERENT files or dimensions (see above)"
                },
                p.wall.as_secs_f64() / processes.wall.as_secs_f64().max(1e-9),
            );
        }
    }
    if interrupted {
        eprintln!("interrupted: the images in flight were finished, every worker was reaped");
    }
    // Any comparison that was made must agree: threads vs processes, Python vs Rust.
    let agrees = match (identical, &python_run) {
        (None, None) => None,
        (same, python) => Some(same != Some(false) && python.as_ref().is_none_or(|p| p.agrees())),
    };
    Ok(batch::exit_code(interrupted, &report, agrees))
}

/// The worker process: the lesson's loop around `shared::thumbnail::thumbnail_file`, the very
/// function image-batch calls on its rayon threads.
fn worker_main(parent_pid: Option<u32>) -> anyhow::Result<()> {
    if let Some(parent) = parent_pid {
        worker::die_with_parent(parent).context("tying the worker to its parent")?;
    }
    let mut input = BufReader::new(std::io::stdin().lock());
    let mut output = BufWriter::new(std::io::stdout().lock());
    worker::serve(&mut input, &mut output, |options| {
        let wire: WireOptions = serde_json::from_value(options)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let opts = wire.to_options();
        Ok(move |src: &Path, dst: &Path| {
            thumbnail::thumbnail_file(src, dst, &opts)
                .map(|info| serde_json::json!(ItemDone::from(&info)))
                .map_err(|e| TaskFailure {
                    kind: e.kind().into(),
                    reason: e.reason(),
                })
        })
    })
    .context("serving the parent")
}

/// The lesson's pool on the thumbnail jobs, with a progress bar; results in the shared
/// harness's terms.
fn run_processes(
    jobs: &[BatchJob],
    workers: usize,
    folders: &BatchFolders,
    opts: &ThumbOptions,
    budget_bytes: u64,
    stop: &AtomicBool,
    json: bool,
) -> anyhow::Result<(Vec<ItemResult>, BudgetFigures)> {
    let exe = std::env::current_exe().context("finding our own binary to re-execute")?;
    let parent = std::process::id().to_string();
    let command = || {
        let mut c = Command::new(&exe);
        c.args(["--worker", "--parent-pid", &parent])
            // One core per worker: N processes, N cores (see the header).
            .env("RAYON_NUM_THREADS", "1");
        c
    };
    let options = serde_json::to_value(WireOptions::from_options(opts))?;
    let tasks: Vec<Task> = jobs
        .iter()
        .map(|j| Task {
            input: j.input.clone(),
            output: folders.out_dir.join(&j.rel_output),
            cost: j.decode_bytes,
        })
        .collect();
    let bar = shared::progress::bar(jobs.len() as u64, json);
    bar.set_message("worker processes");
    let budget = DecodeBudget::new(budget_bytes);
    let on_task_done = || bar.inc(1);
    let on_worker_lost = |msg: &str| bar.suspend(|| eprintln!("{msg}"));
    let control = PoolControl {
        budget: &budget,
        stop,
        on_task_done: &on_task_done,
        on_worker_lost: &on_worker_lost,
    };
    let results = run_on_workers(&tasks, workers, &command, &options, &control);
    bar.finish_and_clear();
    let results = results
        .into_iter()
        .map(|r| match r {
            TaskResult::Done { answer, slot } => match serde_json::from_value(answer) {
                Ok(done) => ItemResult::Done { done, lane: slot },
                Err(e) => ItemResult::Failed {
                    kind: "protocol".into(),
                    reason: format!("unreadable answer: {e}"),
                },
            },
            TaskResult::Failed(f) => ItemResult::Failed {
                kind: f.kind,
                reason: f.reason,
            },
            TaskResult::Cancelled => ItemResult::Cancelled,
        })
        .collect();
    let stats = budget.stats();
    let figures = BudgetFigures {
        capacity_bytes: stats.capacity,
        peak_bytes: stats.peak,
        waits: stats.waits,
        oversized: stats.oversized,
    };
    Ok((results, figures))
}

/// The threaded peer, in-process: the same jobs on a rayon pool of the same size, admitted by
/// the same budget (what examples-threads' image-batch does; see its lesson for why the
/// submitting thread, not a pool thread, waits for the budget).
fn run_rayon(
    jobs: &[BatchJob],
    threads: usize,
    out_dir: &Path,
    opts: &ThumbOptions,
    budget_bytes: u64,
    json: bool,
) -> anyhow::Result<Vec<ItemResult>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("building the rayon pool")?;
    let bar: ProgressBar = shared::progress::bar(jobs.len() as u64, json);
    bar.set_message("rayon threads");
    let budget = DecodeBudget::new(budget_bytes);
    let mut results: Vec<ItemResult> = jobs.iter().map(|_| ItemResult::Cancelled).collect();
    pool.in_place_scope(|scope| {
        for (job, slot) in jobs.iter().zip(results.iter_mut()) {
            let permit = budget.acquire(job.decode_bytes);
            let bar = &bar;
            scope.spawn(move |_| {
                let output = out_dir.join(&job.rel_output);
                *slot = match thumbnail::thumbnail_file(&job.input, &output, opts) {
                    Ok(info) => ItemResult::Done {
                        done: ItemDone::from(&info),
                        lane: rayon::current_thread_index().unwrap_or(0),
                    },
                    Err(e) => ItemResult::Failed {
                        kind: e.kind().into(),
                        reason: e.reason(),
                    },
                };
                drop(permit);
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    Ok(results)
}
