//! Image batch over worker processes: the `multiprocessing.Pool` version of `image-batch`, measured against it.
//!
//! Course section **8.1 — Threading et multiprocessing**: "Traiter chaque image d'un dossier sur
//! un cœur différent" with *processes*, the way the course's Python readers do it
//! (`Pool(2).map(thumbnail, files)`). `examples-threads`' `image-batch` does the same job with
//! rayon threads; this example builds the process version by hand, runs both on the same folder,
//! checks they wrote byte-identical thumbnails, and prints what the processes cost.
//!
//! # Concepts
//! - The per-image work is the very same function, `shared::thumbnail::thumbnail_file`: only
//!   the way the work is spread over the cores differs.
//! - Worker processes are this binary re-executed with `--worker`. Each parent "slot" thread owns
//!   one worker, sends it one image at a time (`chunksize=1`, so a big image does not hold up a
//!   queue of small ones), and reads the answer.
//! - JSON lines on the pipes, unlike `process-pool`'s binary frames: the messages are paths and
//!   error texts, and a human can drive a worker by hand (see *Run*). Lines are capped in
//!   length (a runaway worker cannot make the parent buffer gigabytes).
//! - The image bytes never cross the pipe: workers read and write the files themselves. Only
//!   ~200 bytes per image travel, so the pipes cost nothing next to a 30 ms image.
//! - Errors as values across processes: a broken file is an answer (`{"err": ...}`), the worker
//!   lives on; a worker that *crashes* on a file is replaced and the file retried once, then
//!   reported. The batch never stops, never leaves partial output, exits 1 with the list.
//! - `RAYON_NUM_THREADS=1` in the workers: `jpeg-decoder` would otherwise start a rayon pool of
//!   one thread per core in *each* process (N processes × N threads on N cores).
//!
//! # Run
//! ```text
//! cargo run --release -p examples-processes --bin image-batch-processes                   # 50 samples, + rayon comparison
//! cargo run --release -p examples-processes --bin image-batch-processes -- --with-broken  # bad files: exit 1
//! cargo run --release -p examples-processes --bin image-batch-processes -- --workers 1
//! cargo run --release -p examples-processes --bin image-batch-processes -- ~/Photos /tmp/thumbs --recursive
//! cargo run --release -p examples-processes --bin image-batch-processes -- --samples-dir /tmp/samples --json
//! cargo run --release -p examples-threads --bin image-batch -- /tmp/samples --sequential   # the threaded peer
//! python3 shared/peers/py_image_batch.py /tmp/samples /tmp/py-thumbs --workers 2           # the Pillow peer
//! # Drive a worker by hand (one JSON line per message):
//! printf '%s\n' '{"max_width":64,"max_height":64,"jpeg_quality":85,"png":false,"grayscale":false,"blur":null,"max_pixels":100000000,"scaled_decode":true}' \
//!   '{"id":0,"input":"/tmp/samples/img-000-rgb-1500x1000.jpg","output":"/tmp/t.jpg"}' \
//!   | target/release/image-batch-processes --worker
//! ```
//!
//! # What to observe
//! - The comparison table: worker processes within a few % of rayon threads on the same
//!   images, and `same result: yes` (identical bytes). For 30 ms tasks the price of processes
//!   (start-up ~1 ms each, ~20 µs of pipe per image) disappears; the Python lesson "processes
//!   for CPU work" costs Rust almost nothing here, but threads needed no protocol at all.
//! - The per-worker lines: different image counts, similar megapixels (dynamic dispatch).
//! - `--with-broken`: every bad file listed with the reason the *worker* gave, exit code 1.
//!
//! # Exercises
//! 1. Send the image bytes over the pipe instead of the path (`shared::thumbnail::thumbnail_bytes`),
//!    with length-prefixed frames, and measure what copying ~2 MB per image through two pipes costs.
//! 2. Give each worker 4 images per message (`chunksize=4`): what happens to the balance when the
//!    biggest images sit in the same chunk?
//! 3. Make a worker `panic!` on files whose name contains `crash`: check it is replaced, the file
//!    retried once and reported, and the batch still finishes.
//! 4. Remove `RAYON_NUM_THREADS=1` and watch `top -H`: how many threads per worker?

use std::collections::HashMap;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use shared::images::{self, SampleSpec};
use shared::report::{Row, SpeedupTable, fmt_bytes, fmt_duration, fmt_rate, print_json, timed};
use shared::thumbnail::{self, OutputFormat, ThumbOptions};

/// Make a thumbnail of every JPEG/PNG of a folder on worker processes, skipping broken files,
/// and compare with rayon threads on the same folder.
///
/// Without IN_DIR, generates a seeded folder of photo-like sample images first.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Folder of images (default: generate sample images into a temporary folder).
    in_dir: Option<PathBuf>,
    /// Where thumbnails go, with the same relative paths (default: a new temporary folder,
    /// kept). Must not be IN_DIR and must not contain it.
    out_dir: Option<PathBuf>,
    /// Also process sub-folders.
    #[arg(long)]
    recursive: bool,
    /// Thumbnail box: `256` (square) or `WxH`; aspect ratio is kept, images are never enlarged.
    #[arg(long, default_value = "256", value_parser = parse_size)]
    size: (u32, u32),
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Jpeg)]
    format: Format,
    /// JPEG quality (1-100).
    #[arg(long, default_value_t = 85, value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: u8,
    /// Convert to grayscale.
    #[arg(long)]
    grayscale: bool,
    /// Gaussian blur of the thumbnail (sigma, in thumbnail pixels).
    #[arg(long, value_name = "SIGMA")]
    blur: Option<f32>,
    /// Decode JPEGs in full instead of at 1/4 or 1/8 scale.
    #[arg(long)]
    full_decode: bool,
    /// Refuse images with more megapixels than this (checked from the header, before decoding).
    #[arg(long, default_value_t = 100.0)]
    max_megapixels: f64,
    /// Worker processes (default: one per core).
    #[arg(long, visible_alias = "threads")]
    workers: Option<usize>,
    /// Skip the comparison run on rayon threads.
    #[arg(long)]
    no_compare: bool,
    /// Generate the sample images into this folder and keep them. Ignored when IN_DIR is given.
    #[arg(long, visible_alias = "keep-samples", value_name = "DIR")]
    samples_dir: Option<PathBuf>,
    /// Number of sample images to generate.
    #[arg(long, default_value_t = 50)]
    count: usize,
    /// Seed of the sample images.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Add broken files to the generated samples (empty, truncated, text, huge dimensions).
    #[arg(long)]
    with_broken: bool,
    /// Print the results as one JSON object (no progress bar).
    #[arg(long)]
    json: bool,

    /// Hidden: run as a worker (options on the first stdin line, then one job per line).
    #[arg(long, hide = true)]
    worker: bool,
    /// Hidden: (worker) the parent's pid, to close the PR_SET_PDEATHSIG race.
    #[arg(long, hide = true)]
    parent_pid: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Jpeg,
    Png,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let parse = |v: &str| match v.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{s}`: expected a size like 256 or 320x200")),
    };
    match s.split_once(['x', 'X']) {
        Some((w, h)) => Ok((parse(w)?, parse(h)?)),
        None => parse(s).map(|n| (n, n)),
    }
}

// ============================================================================================
// The protocol: JSON lines. First line parent → worker: the options; then one `Request` per
// line, one `Answer` per line back, in order.
// ============================================================================================

/// A line longer than this is a broken worker, not a message (ours are ~300 bytes).
const MAX_LINE: usize = 64 * 1024;

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
    fn to_options(&self) -> ThumbOptions {
        ThumbOptions {
            max_width: self.max_width,
            max_height: self.max_height,
            format: if self.png {
                OutputFormat::Png
            } else {
                OutputFormat::Jpeg {
                    quality: self.jpeg_quality,
                }
            },
            grayscale: self.grayscale,
            blur: self.blur,
            max_pixels: self.max_pixels,
            scaled_decode: self.scaled_decode,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    id: usize,
    input: PathBuf,
    output: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Done {
    src_w: u32,
    src_h: u32,
    decoded_w: u32,
    bytes_in: u64,
    bytes_out: u64,
}

impl Done {
    fn megapixels(&self) -> f64 {
        f64::from(self.src_w) * f64::from(self.src_h) / 1e6
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Failure {
    /// `ThumbError::kind()` (`decode`, `too_large`…) or `worker_crash`.
    kind: String,
    reason: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    id: usize,
    #[serde(flatten)]
    result: WireResult,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum WireResult {
    Ok(Done),
    Err(Failure),
}

/// Writes one JSON line and flushes it (the other side is waiting for exactly this line).
fn send_line(w: &mut impl Write, msg: &impl Serialize) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *w, msg).context("encoding a message")?;
    w.write_all(b"\n")?;
    w.flush()?;
    Ok(())
}

/// Reads one JSON line; `Ok(None)` on a clean EOF. A line over `MAX_LINE` is an error, found
/// without buffering more than `MAX_LINE` bytes of it.
fn recv_line<T: for<'de> Deserialize<'de>>(r: &mut impl BufRead) -> anyhow::Result<Option<T>> {
    let mut line = String::new();
    let n = r
        .take(MAX_LINE as u64 + 1)
        .read_line(&mut line)
        .context("reading a line")?;
    if n == 0 {
        return Ok(None);
    }
    if !line.ends_with('\n') {
        if n > MAX_LINE {
            bail!("line longer than {MAX_LINE} bytes");
        }
        bail!("stream ended inside a line ({n} bytes, no newline)");
    }
    serde_json::from_str(&line)
        .with_context(|| format!("not a valid message: {:?}", line.trim_end()))
}

// ============================================================================================
// The worker process.
// ============================================================================================

fn worker_main(parent_pid: Option<u32>) -> anyhow::Result<()> {
    // Die with the parent even if it is SIGKILLed (see process-pool.rs for the two pitfalls).
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
    if let Some(parent) = parent_pid
        && std::os::unix::process::parent_id() != parent
    {
        bail!("parent {parent} died before the worker started");
    }
    let mut input = BufReader::new(std::io::stdin().lock());
    let mut output = BufWriter::new(std::io::stdout().lock());
    let Some(wire): Option<WireOptions> = recv_line(&mut input)? else {
        return Ok(());
    };
    let opts = wire.to_options();
    while let Some(req) = recv_line::<Request>(&mut input)? {
        // The very function image-batch calls on its rayon threads.
        let result = match thumbnail::thumbnail_file(&req.input, &req.output, &opts) {
            Ok(info) => WireResult::Ok(Done {
                src_w: info.src_w,
                src_h: info.src_h,
                decoded_w: info.decoded_w,
                bytes_in: info.bytes_in,
                bytes_out: info.bytes_out,
            }),
            Err(e) => WireResult::Err(Failure {
                kind: e.kind().into(),
                reason: e.reason(),
            }),
        };
        send_line(&mut output, &Answer { id: req.id, result })?;
    }
    Ok(())
}

// ============================================================================================
// The parent: one slot thread per worker process.
// ============================================================================================

#[derive(Debug, Clone)]
struct Job {
    input: PathBuf,
    /// Output path relative to the output folder.
    rel_output: PathBuf,
}

#[derive(Debug, Clone)]
enum Outcome {
    Done { done: Done, worker: usize },
    Failed(Failure),
    Cancelled,
}

struct Worker {
    child: Child,
    to_worker: BufWriter<ChildStdin>,
    from_worker: BufReader<ChildStdout>,
}

/// Shared by the slots and the collector, for shutdown: the pid of each slot's live, unreaped
/// worker (killing by pid is only safe before the reap; see process-pool.rs).
struct PoolState {
    stop: Arc<AtomicBool>,
    pids: Vec<Mutex<Option<u32>>>,
}

impl PoolState {
    fn kill_all(&self) {
        for slot in &self.pids {
            let pid = slot.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(pid) = *pid {
                // SAFETY: kill(2) takes integers; the pid is an unreaped child (we hold the lock).
                unsafe { libc::kill(libc::pid_t::try_from(pid).expect("pid fits"), libc::SIGKILL) };
            }
        }
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "ended".into(),
    }
}

fn spawn_worker(exe: &Path, wire: &WireOptions) -> anyhow::Result<Worker> {
    let mut child = Command::new(exe)
        .arg("--worker")
        .arg("--parent-pid")
        .arg(std::process::id().to_string())
        .env("RAYON_NUM_THREADS", "1") // One core per worker: N processes, N cores.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0) // Ctrl-C reaches the parent only; it decides for its workers.
        .spawn()
        .with_context(|| format!("starting worker {}", exe.display()))?;
    let mut to_worker = BufWriter::new(child.stdin.take().expect("stdin was piped"));
    let from_worker = BufReader::new(child.stdout.take().expect("stdout was piped"));
    send_line(&mut to_worker, wire).context("sending the options to a new worker")?;
    Ok(Worker {
        child,
        to_worker,
        from_worker,
    })
}

fn retire(state: &PoolState, slot: usize, mut w: Worker, graceful: bool) -> String {
    *state.pids[slot].lock().unwrap_or_else(|e| e.into_inner()) = None;
    if !graceful {
        let _ = w.child.kill();
    }
    drop(w.to_worker); // EOF: a healthy worker leaves its loop and exits 0.
    w.child
        .wait()
        .map_or_else(|e| format!("could not be reaped: {e}"), describe)
}

struct SlotCtx<'a> {
    exe: &'a Path,
    wire: &'a WireOptions,
    out_dir: &'a Path,
    state: &'a PoolState,
    bar: ProgressBar,
}

/// Attempts per image: a worker that dies on an image is replaced and the image retried once.
const MAX_ATTEMPTS: u32 = 2;

fn run_slot(
    slot: usize,
    cx: &SlotCtx,
    jobs: &Receiver<(usize, Job)>,
    outcomes: &Sender<(usize, Outcome)>,
) {
    let mut worker: Option<Worker> = None;
    'jobs: for (id, job) in jobs.iter() {
        let output = cx.out_dir.join(&job.rel_output);
        if job.input.to_str().is_none() || output.to_str().is_none() {
            // JSON strings are UTF-8; a Unix path need not be. Refuse it here rather than
            // fail to encode it and blame the worker. (A binary protocol would carry raw bytes.)
            let reason = "the path is not UTF-8 and cannot travel in a JSON message".to_owned();
            let _ = outcomes.send((
                id,
                Outcome::Failed(Failure {
                    kind: "path".into(),
                    reason,
                }),
            ));
            continue;
        }
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            if cx.state.stop.load(Ordering::SeqCst) {
                break Outcome::Cancelled;
            }
            if worker.is_none() {
                match spawn_worker(cx.exe, cx.wire) {
                    Ok(w) => {
                        *cx.state.pids[slot]
                            .lock()
                            .unwrap_or_else(|e| e.into_inner()) = Some(w.child.id());
                        worker = Some(w);
                        if cx.state.stop.load(Ordering::SeqCst) {
                            break Outcome::Cancelled;
                        }
                    }
                    Err(e) => {
                        break Outcome::Failed(Failure {
                            kind: "worker_start".into(),
                            reason: format!("{e:#}"),
                        });
                    }
                }
            }
            let w = worker.as_mut().expect("a worker was just ensured");
            let req = Request {
                id,
                input: job.input.clone(),
                output: output.clone(),
            };
            let answer = send_line(&mut w.to_worker, &req)
                .and_then(|()| recv_line::<Answer>(&mut w.from_worker));
            match answer {
                Ok(Some(a)) if a.id == id => {
                    break match a.result {
                        WireResult::Ok(done) => Outcome::Done { done, worker: slot },
                        WireResult::Err(f) => Outcome::Failed(f),
                    };
                }
                other => {
                    let what = match other {
                        Ok(Some(a)) => {
                            format!("answer for job {} while job {id} was running", a.id)
                        }
                        Ok(None) => "worker closed its stdout".into(),
                        Err(e) => format!("{e:#}"),
                    };
                    let status = retire(
                        cx.state,
                        slot,
                        worker.take().expect("the failed worker"),
                        false,
                    );
                    if cx.state.stop.load(Ordering::SeqCst) {
                        break Outcome::Cancelled;
                    }
                    let msg = format!(
                        "worker died on {} (attempt {attempt}/{MAX_ATTEMPTS}): {what} ({status})",
                        job.input.display()
                    );
                    cx.bar.suspend(|| eprintln!("{msg}"));
                    if attempt >= MAX_ATTEMPTS {
                        break Outcome::Failed(Failure {
                            kind: "worker_crash".into(),
                            reason: msg,
                        });
                    }
                }
            }
        };
        let cancelled = matches!(outcome, Outcome::Cancelled);
        if outcomes.send((id, outcome)).is_err() || cancelled {
            break 'jobs;
        }
        cx.bar.inc(1);
    }
    if let Some(w) = worker.take() {
        let graceful = !cx.state.stop.load(Ordering::SeqCst);
        retire(cx.state, slot, w, graceful);
    }
}

/// The concurrent part: every job on `workers` processes; outcomes in job order.
fn run_processes(
    jobs: &[Job],
    workers: usize,
    out_dir: &Path,
    wire: &WireOptions,
    stop: &Arc<AtomicBool>,
    json: bool,
) -> anyhow::Result<Vec<Outcome>> {
    let exe = std::env::current_exe().context("finding our own binary to re-execute")?;
    let state = PoolState {
        stop: Arc::clone(stop),
        pids: (0..workers).map(|_| Mutex::new(None)).collect(),
    };
    // The whole batch is known: the queue holds it and is closed, so slots stop when it is empty.
    let (job_tx, job_rx) = crossbeam_channel::bounded(jobs.len().max(1));
    for (i, j) in jobs.iter().enumerate() {
        job_tx
            .send((i, j.clone()))
            .expect("the queue holds the whole batch");
    }
    drop(job_tx);
    let (out_tx, out_rx) = crossbeam_channel::unbounded();
    let bar = shared::progress::bar(jobs.len() as u64, json);
    bar.set_message("worker processes");
    let cx = SlotCtx {
        exe: &exe,
        wire,
        out_dir,
        state: &state,
        bar: bar.clone(),
    };
    let mut outcomes: Vec<Option<Outcome>> = vec![None; jobs.len()];
    std::thread::scope(|s| {
        for slot in 0..workers {
            let (cx, job_rx, out_tx) = (&cx, job_rx.clone(), out_tx.clone());
            std::thread::Builder::new()
                .name(format!("slot-{slot}"))
                .spawn_scoped(s, move || run_slot(slot, cx, &job_rx, &out_tx))
                .expect("spawning a slot thread");
        }
        drop(out_tx);
        // If this loop is left by Ctrl-C, kill the workers so the slots stop at once; the
        // scope then joins them (they reap their workers first).
        loop {
            match out_rx.recv_timeout(Duration::from_millis(50)) {
                Ok((id, o)) => {
                    assert!(outcomes[id].is_none(), "job {id} answered twice");
                    outcomes[id] = Some(o);
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if stop.load(Ordering::SeqCst) {
                state.kill_all();
            }
        }
    });
    bar.finish_and_clear();
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::Cancelled))
        .collect())
}

/// The threaded peer, in-process: the same jobs on a rayon pool of the same size (this is what
/// `examples-threads`' image-batch does).
fn run_rayon(
    jobs: &[Job],
    threads: usize,
    out_dir: &Path,
    opts: &ThumbOptions,
    json: bool,
) -> anyhow::Result<Vec<Outcome>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("building the rayon pool")?;
    let bar = shared::progress::bar(jobs.len() as u64, json);
    bar.set_message("rayon threads");
    let outcomes = pool.install(|| {
        jobs.par_iter()
            .map(|job| {
                let o = match thumbnail::thumbnail_file(
                    &job.input,
                    &out_dir.join(&job.rel_output),
                    opts,
                ) {
                    Ok(info) => Outcome::Done {
                        done: Done {
                            src_w: info.src_w,
                            src_h: info.src_h,
                            decoded_w: info.decoded_w,
                            bytes_in: info.bytes_in,
                            bytes_out: info.bytes_out,
                        },
                        worker: rayon::current_thread_index().unwrap_or(0),
                    },
                    Err(e) => Outcome::Failed(Failure {
                        kind: e.kind().into(),
                        reason: e.reason(),
                    }),
                };
                bar.inc(1);
                o
            })
            .collect()
    });
    bar.finish_and_clear();
    Ok(outcomes)
}

// ============================================================================================
// main: inputs, plan, runs, report.
// ============================================================================================

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    if args.worker {
        worker_main(args.parent_pid)?;
        return Ok(ExitCode::SUCCESS);
    }
    let wire = WireOptions {
        max_width: args.size.0,
        max_height: args.size.1,
        jpeg_quality: args.quality,
        png: args.format == Format::Png,
        grayscale: args.grayscale,
        blur: args.blur,
        max_pixels: (args.max_megapixels * 1e6) as u64,
        scaled_decode: !args.full_decode,
    };
    let opts = wire.to_options();
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if workers == 0 {
        bail!("--workers must be at least 1");
    }

    // --- Inputs: a real folder, or seeded samples (the TempDir guard deletes them at the end).
    let mut _samples_guard = None;
    let in_dir = match (&args.in_dir, &args.samples_dir) {
        (Some(dir), _) => dir.clone(),
        (None, kept) => {
            let dir = match kept {
                Some(d) => d.clone(),
                None => {
                    let t = tempfile::Builder::new()
                        .prefix("image-batch-samples-")
                        .tempdir()
                        .context("creating a temporary folder for the samples")?;
                    let p = t.path().to_path_buf();
                    _samples_guard = Some(t);
                    p
                }
            };
            let spec = SampleSpec {
                count: args.count,
                seed: args.seed,
                ..SampleSpec::default()
            };
            let generated = timed(|| images::generate_folder(&dir, &spec));
            let mut files = generated.value?;
            if args.with_broken {
                files.extend(images::write_broken_files(&dir)?);
            }
            if !args.json {
                println!(
                    "generated {} sample images (seed {}) in {} [{}]",
                    files.len(),
                    args.seed,
                    dir.display(),
                    fmt_duration(generated.wall)
                );
            }
            dir
        }
    };
    let in_dir = in_dir
        .canonicalize()
        .with_context(|| format!("input folder {}", in_dir.display()))?;
    if !in_dir.is_dir() {
        bail!("{} is not a folder", in_dir.display());
    }
    let out_dir = match &args.out_dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.canonicalize()
                .with_context(|| format!("output folder {}", d.display()))?
        }
        None => tempfile::Builder::new()
            .prefix("image-batch-processes-thumbs-")
            .tempdir()
            .context("creating a temporary output folder")?
            .keep(),
    };
    check_no_overlap(&in_dir, &out_dir)?;
    let mut inputs = thumbnail::find_images(&in_dir, args.recursive)
        .with_context(|| format!("listing {}", in_dir.display()))?;
    inputs.retain(|p| !p.starts_with(&out_dir)); // Never take our own outputs as inputs.
    let (jobs, collisions) = plan_jobs(&in_dir, &inputs, opts.format);

    let stop = shared::shutdown::stop_flag_on_ctrl_c()?;
    let run = timed(|| run_processes(&jobs, workers, &out_dir, &wire, &stop, args.json));
    let outcomes = run.value?;
    let interrupted = stop.load(Ordering::SeqCst);

    // --- The threaded comparison on the same folder, into a scratch folder.
    let mut table = SpeedupTable::new(format!(
        "{} images, {workers} workers, same folder",
        jobs.len()
    ));
    let mut identical = None;
    if !args.no_compare && !interrupted {
        let scratch = tempfile::Builder::new()
            .prefix("image-batch-rayon-")
            .tempdir()
            .context("creating a scratch folder for the rayon run")?;
        let threads = timed(|| run_rayon(&jobs, workers, scratch.path(), &opts, args.json));
        let thread_outcomes = threads.value?;
        let same = same_results(&jobs, &thread_outcomes, scratch.path(), &outcomes, &out_dir)?;
        identical = Some(same);
        table.push(
            Row::new(format!("rayon, {workers} threads"), threads.wall)
                .cpu(threads.cpu)
                .note("image-batch's way"),
        );
        table.push(
            Row::new(format!("{workers} worker processes"), run.wall)
                .cpu(run.cpu)
                .agrees(same)
                .note("Pool.map(chunksize=1)'s way"),
        );
    }

    // --- Report.
    let summary = Summary::new(&jobs, &collisions, &outcomes, workers);
    let failed = summary.failures.len();
    if args.json {
        let secs = run.wall.as_secs_f64().max(1e-9);
        print_json(&serde_json::json!({
            "in_dir": in_dir,
            "out_dir": out_dir,
            "workers": workers,
            "images": jobs.len() + collisions.len(),
            "ok": summary.ok.len(),
            "failed": failed,
            "cancelled": summary.cancelled,
            "megapixels": summary.megapixels(),
            "wall_s": run.wall.as_secs_f64(),
            "cpu_s": run.cpu.as_secs_f64(),
            "images_per_s": summary.ok.len() as f64 / secs,
            "per_worker": summary.per_worker.iter().map(|(n, mp)| serde_json::json!({"images": n, "megapixels": mp})).collect::<Vec<_>>(),
            "failures": summary.failures.iter().map(|(p, f)| serde_json::json!({"path": p, "kind": f.kind, "reason": f.reason})).collect::<Vec<_>>(),
            "comparison": if table.rows().is_empty() { serde_json::Value::Null } else { table.to_json() },
            "identical": identical,
        }));
    } else {
        summary.print(&in_dir, &out_dir, run.wall, run.cpu);
        if !table.rows().is_empty() {
            println!();
            table.print();
            let ratio = table.rows()[1].wall.as_secs_f64() / table.rows()[0].wall.as_secs_f64();
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
        }
    }
    Ok(if interrupted {
        eprintln!("interrupted: every worker was killed and reaped");
        ExitCode::from(130)
    } else if failed > 0 || identical == Some(false) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Refuses output folders that could overwrite an input (same rule as image-batch).
fn check_no_overlap(in_dir: &Path, out_dir: &Path) -> anyhow::Result<()> {
    if in_dir == out_dir {
        bail!(
            "refusing to write thumbnails into the input folder {} (choose another OUT_DIR)",
            in_dir.display()
        );
    }
    if in_dir.starts_with(out_dir) {
        bail!(
            "refusing OUT_DIR {}: it contains the input folder {}, outputs could overwrite inputs",
            out_dir.display(),
            in_dir.display()
        );
    }
    Ok(())
}

/// Maps every input to its output path; inputs that would write the same output are reported.
fn plan_jobs(
    in_dir: &Path,
    inputs: &[PathBuf],
    format: OutputFormat,
) -> (Vec<Job>, Vec<(PathBuf, Failure)>) {
    let rel = |input: &Path| thumbnail::output_path(in_dir, Path::new(""), input, format);
    let mut by_output: HashMap<PathBuf, usize> = HashMap::new();
    for input in inputs {
        *by_output.entry(rel(input)).or_default() += 1;
    }
    let (mut jobs, mut collisions) = (Vec::new(), Vec::new());
    for input in inputs {
        let rel_output = rel(input);
        if by_output[&rel_output] == 1 {
            jobs.push(Job {
                input: input.clone(),
                rel_output,
            });
        } else {
            let reason = format!(
                "output {} would be written for several inputs",
                rel_output.display()
            );
            collisions.push((
                input.clone(),
                Failure {
                    kind: "collision".into(),
                    reason,
                },
            ));
        }
    }
    (jobs, collisions)
}

/// True if both runs succeeded and failed on the same images and wrote the same bytes.
fn same_results(
    jobs: &[Job],
    a: &[Outcome],
    a_dir: &Path,
    b: &[Outcome],
    b_dir: &Path,
) -> anyhow::Result<bool> {
    let mut same = true;
    for ((job, x), y) in jobs.iter().zip(a).zip(b) {
        match (x, y) {
            (Outcome::Done { .. }, Outcome::Done { .. }) => {
                let read = |d: &Path| {
                    let p = d.join(&job.rel_output);
                    std::fs::read(&p).with_context(|| format!("reading {}", p.display()))
                };
                if read(a_dir)? != read(b_dir)? {
                    eprintln!("differs: {}", job.rel_output.display());
                    same = false;
                }
            }
            (Outcome::Failed(f1), Outcome::Failed(f2)) if f1.kind == f2.kind => {}
            (Outcome::Cancelled, _) | (_, Outcome::Cancelled) => {}
            _ => {
                eprintln!("different outcome: {}", job.input.display());
                same = false;
            }
        }
    }
    Ok(same)
}

struct Summary<'a> {
    ok: Vec<&'a Done>,
    failures: Vec<(PathBuf, Failure)>,
    cancelled: usize,
    per_worker: Vec<(usize, f64)>,
}

impl<'a> Summary<'a> {
    fn new(
        jobs: &[Job],
        collisions: &[(PathBuf, Failure)],
        outcomes: &'a [Outcome],
        workers: usize,
    ) -> Self {
        let mut s = Summary {
            ok: Vec::new(),
            failures: collisions.to_vec(),
            cancelled: 0,
            per_worker: vec![(0, 0.0); workers],
        };
        for (job, o) in jobs.iter().zip(outcomes) {
            match o {
                Outcome::Done { done, worker } => {
                    s.ok.push(done);
                    if let Some(w) = s.per_worker.get_mut(*worker) {
                        w.0 += 1;
                        w.1 += done.megapixels();
                    }
                }
                Outcome::Failed(f) => s.failures.push((job.input.clone(), f.clone())),
                Outcome::Cancelled => s.cancelled += 1,
            }
        }
        s.failures.sort_by(|a, b| a.0.cmp(&b.0));
        s
    }

    fn megapixels(&self) -> f64 {
        self.ok.iter().map(|d| d.megapixels()).sum()
    }

    fn print(&self, in_dir: &Path, out_dir: &Path, wall: Duration, cpu: Duration) {
        let rel = |p: &Path| p.strip_prefix(in_dir).unwrap_or(p).display().to_string();
        if !self.failures.is_empty() {
            println!(
                "{} file(s) FAILED (skipped, no output written):",
                self.failures.len()
            );
            let width = self
                .failures
                .iter()
                .map(|f| rel(&f.0).len())
                .max()
                .unwrap_or(0);
            for (path, f) in &self.failures {
                println!("  {:width$}  {}", rel(path), f.reason);
            }
        }
        let bytes_in: u64 = self.ok.iter().map(|d| d.bytes_in).sum();
        let bytes_out: u64 = self.ok.iter().map(|d| d.bytes_out).sum();
        println!(
            "ok {}  failed {}{}  |  {:.1} MP in {}  |  {}  {}  |  cpu {} (workers included once reaped)",
            self.ok.len(),
            self.failures.len(),
            if self.cancelled > 0 {
                format!("  cancelled {}", self.cancelled)
            } else {
                String::new()
            },
            self.megapixels(),
            fmt_duration(wall),
            fmt_rate(self.ok.len() as f64, wall, "images"),
            fmt_rate(self.megapixels(), wall, "MP"),
            fmt_duration(cpu),
        );
        println!(
            "read {}, wrote {} of thumbnails to {}",
            fmt_bytes(bytes_in),
            fmt_bytes(bytes_out),
            out_dir.display()
        );
        for (i, (n, mp)) in self.per_worker.iter().enumerate() {
            println!("  worker slot-{i}: {n:3} images, {mp:7.1} MP");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_round_trip() {
        let mut buf = Vec::new();
        let answer = Answer {
            id: 4,
            result: WireResult::Err(Failure {
                kind: "decode".into(),
                reason: "bad".into(),
            }),
        };
        send_line(&mut buf, &answer).unwrap();
        send_line(
            &mut buf,
            &Request {
                id: 5,
                input: "a b.jpg".into(),
                output: "o\nut.jpg".into(),
            },
        )
        .unwrap();
        assert_eq!(
            buf.iter().filter(|&&b| b == b'\n').count(),
            2,
            "newlines inside strings are escaped"
        );
        let mut r = &buf[..];
        let a: Answer = recv_line(&mut r).unwrap().unwrap();
        assert!(matches!(a.result, WireResult::Err(ref f) if f.kind == "decode"));
        let q: Request = recv_line(&mut r).unwrap().unwrap();
        assert_eq!(q.output, PathBuf::from("o\nut.jpg"));
        assert!(recv_line::<Request>(&mut r).unwrap().is_none());
    }

    #[test]
    fn oversized_truncated_and_garbage_lines_are_errors() {
        let long = vec![b'x'; MAX_LINE + 10];
        assert!(
            recv_line::<Answer>(&mut &long[..])
                .unwrap_err()
                .to_string()
                .contains("longer")
        );
        assert!(
            recv_line::<Answer>(&mut &b"{\"id\":1"[..])
                .unwrap_err()
                .to_string()
                .contains("inside a line")
        );
        assert!(recv_line::<Answer>(&mut &b"hello\n"[..]).is_err());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("256"), Ok((256, 256)));
        assert_eq!(parse_size("320x200"), Ok((320, 200)));
        assert!(parse_size("0").is_err());
    }
}
