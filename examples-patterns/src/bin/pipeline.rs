//! Pipeline: read → parse → transform → aggregate, threads per stage, bounded queues, a visible
//! bottleneck, and totals that are exact or not printed at all.
//!
//! Course section **8.4 Patterns de concurrence — Pipeline de traitement** (the course's "data
//! analysis / report generation" case). Sales files (CSV) are read, parsed, converted to euros
//! and scored, then aggregated into a per-region, per-product report. Each stage is a small pool
//! of threads; stages are connected by bounded `crossbeam_channel`s.
//!
//! Crates: `crossbeam-channel = "0.5"`, `anyhow = "1"`
//!
//! # Concepts
//! - **Throughput = the slowest stage.** A stage faster than its successor blocks on its full
//!   output queue (`blocked`); one slower than its predecessor leaves the next one `waiting`.
//!   The bottleneck is busy all the time: the table at the end measures exactly that.
//! - **Bounded queues** (`--queue`): a fast stage cannot run ahead and fill memory.
//! - **Failure stops everything, promptly, with the cause.** A stage error or panic raises a
//!   shared cancel flag (a drop guard does it even during a panic); every stage checks it between
//!   items; blocked threads wake because the other side of their queue disconnected. The run
//!   returns the first error and writes no report. Ctrl-C and SIGTERM take the same path.
//! - **Measurement through an observer**: stages report `Took`/`Passed` events to a callback;
//!   the statistics and progress bars live outside the lesson.
//! - **Exact money.** Prices are parsed as decimal text into cents (no `f64`: `NaN`, `inf` and
//!   `-1` are not prices), quantities and prices have stated limits, and every sum is checked:
//!   a record that cannot be counted exactly is rejected with its file and line.
//! - **Conservation, checked**: per file, records = accepted + rejected; the sum of the files'
//!   totals equals the report's; every file went through every stage once.
//!
//! # Run
//! ```text
//! cargo run -p examples-patterns --bin pipeline                          # the reader is the bottleneck
//! cargo run -p examples-patterns --bin pipeline -- --readers 2           # now transform is
//! cargo run -p examples-patterns --bin pipeline -- --readers 4 --transformers 2   # needs 2 free cores
//! cargo run -p examples-patterns --bin pipeline -- --fail-at 40          # a bad record: clean error
//! cargo run -p examples-patterns --bin pipeline -- --fail-at 40 --max-rejected 10  # skip it, list it
//! cargo run -p examples-patterns --bin pipeline -- --panic-at 40         # a bug in a stage: clean error
//! cargo run -p examples-patterns --bin pipeline -- --input ./my-csvs --out report.csv
//! cargo run -p examples-patterns --bin pipeline -- --python   # + threads and queue.Queue
//! ```
//! Inputs are generated (seeded) in a temporary directory unless `--input DIR` is given (CSV:
//! `date,region,product,currency,qty,unit_price`).
//!
//! # What to observe
//! - The bottleneck has utilisation near 100%; stages before it are `blocked`, after it `waiting`.
//! - Doubling the bottleneck's threads nearly doubles files/s, until another stage (or the
//!   number of cores) becomes the limit. Doubling any other stage changes nothing.
//! - With `--panic-at`, the panic message is printed by the thread, the pipeline stops within
//!   milliseconds, and the exit code is non-zero.
//! - `--python`: the course's version (threads, `queue.Queue`) writes the same report; with
//!   `--transformers 2` its CPU-bound transform does not speed up (the GIL), Rust's does.
//!
//! # Exercises
//! 1. Set `--queue 1` and then `--queue 1000`. Does the throughput change? What does change
//!    (memory, how long a stop takes)?
//! 2. Make the aggregator parallel (two threads with a `Mutex<SalesReport>`): is it ever the
//!    bottleneck here? When would it be, and what would you do (shard by key)?
//! 3. Preserve the input order at the output (sequence numbers and a reorder buffer in the
//!    aggregator). What does it cost when one file is slow?
//! 4. Replace the cancel flag with a `crossbeam_channel::select!` on a "stop" channel in every
//!    `recv`. Which approach stops faster when a stage is blocked?
//! 5. Checked, backpressure in a stage: `cargo run -p shared --bin exercises -- check patterns/02`.

// === Lesson: copy from here ===

/// Threads per stage, bounded queues between them, one cancel flag for all. Generic: nothing
/// here knows about sales.
mod stages {
    use anyhow::{Result, anyhow};
    use crossbeam_channel::{Receiver, Sender};
    use std::any::Any;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread::{self, Scope, ScopedJoinHandle};
    use std::time::{Duration, Instant};

    /// What a stage thread reports about each item (statistics, progress bars).
    #[derive(Debug, Clone, Copy)]
    pub enum StageEvent {
        /// Took an item, after waiting `waited` on an empty input queue.
        Took { stage: usize, waited: Duration },
        /// Worked on it for `busy`, then was `blocked` on a full output queue.
        Passed {
            stage: usize,
            busy: Duration,
            blocked: Duration,
        },
    }

    /// What every thread of one run shares.
    pub struct Pipeline<'a> {
        /// Raised by the first failure; every stage checks it between items.
        cancel: AtomicBool,
        /// Raised from outside (Ctrl-C, SIGTERM): the same path as a failure, without the error.
        stop: &'a AtomicBool,
        /// The first error (later ones are its consequences).
        first_error: Mutex<Option<anyhow::Error>>,
        observer: &'a (dyn Fn(StageEvent) + Sync),
    }

    impl<'a> Pipeline<'a> {
        pub fn new(stop: &'a AtomicBool, observer: &'a (dyn Fn(StageEvent) + Sync)) -> Self {
            Pipeline {
                cancel: AtomicBool::new(false),
                stop,
                first_error: Mutex::new(None),
                observer,
            }
        }

        pub fn fail(&self, e: anyhow::Error) {
            let mut slot = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert(e);
            self.cancel.store(true, Ordering::Release);
        }

        pub fn cancelled(&self) -> bool {
            self.cancel.load(Ordering::Acquire) || self.interrupted()
        }

        pub fn interrupted(&self) -> bool {
            self.stop.load(Ordering::Acquire)
        }

        pub fn take_error(&self) -> Option<anyhow::Error> {
            self.first_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
        }

        /// The next input item, or `None` when the input is closed and drained (upstream is
        /// done, or gone) or the run is cancelled.
        fn next_item<I>(&self, stage: usize, rx: &Receiver<I>) -> Option<I> {
            let t = Instant::now();
            let item = rx.recv().ok()?;
            let waited = t.elapsed();
            if self.cancelled() {
                return None;
            }
            (self.observer)(StageEvent::Took { stage, waited });
            Some(item)
        }
    }

    /// One stage: its name (threads are `name-0`, `name-1`, …), its place, its thread count.
    pub struct Stage {
        pub name: &'static str,
        pub index: usize,
        pub threads: usize,
    }

    /// Starts a stage's threads: receive, `work`, send, until the input is closed, the output is
    /// gone, or the run is cancelled. When its last thread exits, its `rx` and `tx` clones are
    /// gone: the next stage sees its input closed, the previous one its output.
    pub fn spawn_stage<'scope, I: Send + 'scope, O: Send + 'scope>(
        s: &'scope Scope<'scope, '_>,
        p: &'scope Pipeline<'scope>,
        stage: Stage,
        work: &'scope (dyn Fn(I) -> Result<O> + Sync),
        rx: Receiver<I>,
        tx: Sender<O>,
    ) -> Result<Vec<ScopedJoinHandle<'scope, ()>>> {
        let Stage {
            name,
            index,
            threads,
        } = stage;
        (0..threads)
            .map(|i| {
                let (rx, tx) = (rx.clone(), tx.clone());
                let thread = move || {
                    let _guard = CancelOnPanic(p);
                    while let Some(item) = p.next_item(index, &rx) {
                        let t = Instant::now();
                        let out = match work(item) {
                            Ok(out) => out,
                            Err(e) => return p.fail(e.context(format!("stage {name} failed"))),
                        };
                        let (busy, t) = (t.elapsed(), Instant::now());
                        if tx.send(out).is_err() {
                            return; // every downstream thread has exited: we are stopping
                        }
                        let blocked = t.elapsed();
                        (p.observer)(StageEvent::Passed {
                            stage: index,
                            busy,
                            blocked,
                        });
                    }
                };
                thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn_scoped(s, thread)
                    .map_err(|e| anyhow!("spawn a {name} thread: {e}"))
            })
            .collect()
    }

    /// The last stage: one thread folding every item into `acc` (one owner: no lock).
    pub fn spawn_sink<'scope, I: Send + 'scope, R: Send + 'scope>(
        s: &'scope Scope<'scope, '_>,
        p: &'scope Pipeline<'scope>,
        (name, index): (&'static str, usize),
        rx: Receiver<I>,
        mut acc: R,
        fold: impl Fn(&mut R, I) -> Result<()> + Send + 'scope,
    ) -> Result<ScopedJoinHandle<'scope, R>> {
        let thread = move || {
            let _guard = CancelOnPanic(p);
            while let Some(item) = p.next_item(index, &rx) {
                let t = Instant::now();
                if let Err(e) = fold(&mut acc, item) {
                    p.fail(e.context(format!("stage {name} failed")));
                    break;
                }
                let (busy, blocked) = (t.elapsed(), Duration::ZERO);
                (p.observer)(StageEvent::Passed {
                    stage: index,
                    busy,
                    blocked,
                });
            }
            acc
        };
        thread::Builder::new()
            .name(name.into())
            .spawn_scoped(s, thread)
            .map_err(|e| anyhow!("spawn the {name} thread: {e}"))
    }

    /// Joins threads, turning a panic into the run's error (its message names the thread).
    pub fn join<T>(p: &Pipeline, handles: Vec<ScopedJoinHandle<'_, T>>) -> Vec<T> {
        let mut out = Vec::new();
        for h in handles {
            let name = h.thread().name().unwrap_or("stage").to_string();
            match h.join() {
                Ok(v) => out.push(v),
                Err(payload) => {
                    p.fail(anyhow!("thread {name} panicked: {}", panic_text(&*payload)))
                }
            }
        }
        out
    }

    fn panic_text(payload: &(dyn Any + Send)) -> &str {
        let text = payload.downcast_ref::<&str>().copied();
        text.or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("a non-text panic")
    }

    /// Raises the cancel flag if the thread unwinds from a panic: the other stages must not wait
    /// for work that will never come. (A panic skips the code after the call, never a `Drop`.)
    struct CancelOnPanic<'p, 'a>(&'p Pipeline<'a>);

    impl Drop for CancelOnPanic<'_, '_> {
        fn drop(&mut self) {
            if thread::panicking() {
                self.0.cancel.store(true, Ordering::Release);
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crossbeam_channel::bounded;

        /// Numbers 0..n through a doubling stage (`threads` threads) into a summing sink.
        fn double_and_sum(
            n: u64,
            threads: usize,
            work: &(dyn Fn(u64) -> Result<u64> + Sync),
        ) -> (Result<u64>, u64) {
            let stop = AtomicBool::new(false);
            let passed = std::sync::atomic::AtomicU64::new(0);
            let observe = |e: StageEvent| {
                if let StageEvent::Passed { stage: 1, .. } = e {
                    passed.fetch_add(1, Ordering::Relaxed);
                }
            };
            let p = Pipeline::new(&stop, &observe);
            let sum = thread::scope(|s| -> Result<u64> {
                let (in_tx, in_rx) = bounded(n as usize);
                (0..n).for_each(|i| in_tx.send(i).unwrap());
                drop(in_tx);
                let (out_tx, out_rx) = bounded(2);
                let stage = Stage {
                    name: "double",
                    index: 0,
                    threads,
                };
                let handles = spawn_stage(s, &p, stage, work, in_rx, out_tx)?;
                let sink = spawn_sink(s, &p, ("sum", 1), out_rx, 0u64, |acc: &mut u64, x| {
                    *acc += x;
                    Ok(())
                })?;
                join(&p, handles);
                Ok(join(&p, vec![sink]).pop().unwrap_or(0))
            });
            let result = match p.take_error() {
                Some(e) => Err(e),
                None => sum,
            };
            (result, passed.into_inner())
        }

        #[test]
        fn every_item_passes_every_stage_once() {
            for threads in [1, 3] {
                let (sum, passed) = double_and_sum(100, threads, &|x| Ok(2 * x));
                assert_eq!((sum.unwrap(), passed), (9900, 100));
            }
        }

        #[test]
        fn an_error_or_a_panic_stops_the_run_with_its_cause() {
            let fail = |x| {
                if x == 7 {
                    Err(anyhow!("item 7 is bad"))
                } else {
                    Ok(x)
                }
            };
            let err = double_and_sum(10_000, 2, &fail).0.unwrap_err();
            assert!(
                format!("{err:#}").contains("stage double failed: item 7 is bad"),
                "{err:#}"
            );
            let panic = |x| {
                if x == 7 {
                    panic!("bug on item 7")
                } else {
                    Ok(x)
                }
            };
            let err = double_and_sum(10_000, 2, &panic).0.unwrap_err();
            assert!(
                format!("{err:#}").contains("panicked: bug on item 7"),
                "{err:#}"
            );
        }
    }
}

/// The sales pipeline: read → parse → transform → aggregate, wired with `stages`.
mod sales_pipeline {
    use super::records::{self, ParsedFile};
    use super::stages::{Pipeline, Stage, StageEvent, join, spawn_sink, spawn_stage};
    use super::totals::{self, Enriched, SalesReport};
    use anyhow::{Context, Result, anyhow, bail};
    use crossbeam_channel::bounded;
    use std::io::Read;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::thread;
    use std::time::{Duration, Instant};

    /// A bigger input file is refused rather than read into memory.
    pub const MAX_FILE_BYTES: u64 = 256 << 20;

    pub struct PipelineConfig {
        pub files: Vec<PathBuf>,
        /// Threads of the read, parse and transform stages (the aggregator is one thread).
        pub threads: [usize; 3],
        /// Simulated latency of slow storage, per file (sleeping: I/O-like).
        pub read_delay: Duration,
        /// CPU work per file in the transform stage ([`burn_cpu`] rounds).
        pub transform_rounds: u32,
        pub queue: usize,
        /// Rejected records tolerated over the whole run; one more stops it.
        pub max_rejected: u64,
        /// File name whose transform panics (a deliberate bug, for the demo and the tests).
        pub panic_on: Option<String>,
    }

    pub struct PipelineRun {
        pub result: Result<SalesReport>,
        /// Stopped by Ctrl-C/SIGTERM (then `result` is an error: a partial report is no report).
        pub interrupted: bool,
        pub wall: Duration,
    }

    /// Stage 1 output: a file's bytes.
    pub struct RawFile {
        name: String,
        bytes: Vec<u8>,
    }

    /// Runs the pipeline. Never hangs: on the first failure, or when `stop` is raised, every
    /// stage stops and this returns.
    pub fn run_sales_pipeline(
        cfg: &PipelineConfig,
        stop: &AtomicBool,
        observer: &(dyn Fn(StageEvent) + Sync),
    ) -> PipelineRun {
        let p = Pipeline::new(stop, observer);
        let start = Instant::now();
        let (rejected_so_far, accepted) = (AtomicU64::new(0), AtomicU64::new(0));
        let read = |path: PathBuf| read_file(path, cfg.read_delay);
        let parse = |raw: RawFile| -> Result<ParsedFile> {
            let parsed = records::parse_file(&raw.name, &raw.bytes);
            let n = parsed.rejected.len() as u64;
            let total = rejected_so_far.fetch_add(n, Ordering::Relaxed) + n;
            if let Some(first) = parsed.rejected.first()
                && total > cfg.max_rejected
            {
                bail!(
                    "{} line {}: {} (rejected records so far: {total}, tolerated: {})",
                    raw.name,
                    first.line,
                    first.reason,
                    cfg.max_rejected
                );
            }
            accepted.fetch_add(parsed.sales.len() as u64, Ordering::Relaxed);
            Ok(parsed)
        };
        let transform = |file: ParsedFile| -> Result<Enriched> {
            if cfg.panic_on.as_deref() == Some(file.name.as_str()) {
                panic!("transform: simulated bug on {}", file.name);
            }
            let enriched = totals::enrich(file)?;
            burn_cpu(enriched.lines.len() as u64, cfg.transform_rounds);
            Ok(enriched)
        };

        let run = thread::scope(|s| -> Result<SalesReport> {
            let (path_tx, path_rx) = bounded(cfg.files.len().max(1));
            for path in &cfg.files {
                path_tx
                    .send(path.clone())
                    .expect("room for every path, and a receiver");
            }
            drop(path_tx); // the source is complete: readers stop when it is drained
            let (raw_tx, raw_rx) = bounded(cfg.queue);
            let (parsed_tx, parsed_rx) = bounded(cfg.queue);
            let (enriched_tx, enriched_rx) = bounded(cfg.queue);
            let stage = |name, index| Stage {
                name,
                index,
                threads: cfg.threads[index],
            };
            let mut handles = spawn_stage(s, &p, stage("read", 0), &read, path_rx, raw_tx)?;
            let parse_stage = stage("parse", 1);
            handles.extend(spawn_stage(s, &p, parse_stage, &parse, raw_rx, parsed_tx)?);
            let transform_stage = stage("transform", 2);
            let (input, output) = (parsed_rx, enriched_tx);
            handles.extend(spawn_stage(
                s,
                &p,
                transform_stage,
                &transform,
                input,
                output,
            )?);
            // One aggregator on purpose: it owns the report, so it needs no lock.
            let (report, add) = (SalesReport::default(), SalesReport::add_file);
            let sink = spawn_sink(s, &p, ("aggregate", 3), enriched_rx, report, add)?;
            join(&p, handles);
            join(&p, vec![sink])
                .pop()
                .context("the aggregator panicked")
        });
        let interrupted = p.interrupted();
        let result = match (p.take_error(), run) {
            (Some(e), _) | (None, Err(e)) => Err(e),
            (None, Ok(_)) if interrupted => Err(anyhow!("interrupted")),
            (None, Ok(report)) => check_conservation(report, accepted.load(Ordering::Relaxed)),
        };
        PipelineRun {
            result,
            interrupted,
            wall: start.elapsed(),
        }
    }

    fn read_file(path: PathBuf, delay: Duration) -> Result<RawFile> {
        thread::sleep(delay); // simulated latency of slow storage
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let file =
            std::fs::File::open(&path).with_context(|| format!("open {}", path.display()))?;
        let mut bytes = Vec::new();
        // `take`: a file that grows while we read it cannot exceed the limit either.
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("read {}", path.display()))?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            bail!("{name}: larger than {MAX_FILE_BYTES} bytes");
        }
        Ok(RawFile { name, bytes })
    }

    /// Every record parsed was aggregated, and the report adds up.
    fn check_conservation(report: SalesReport, accepted: u64) -> Result<SalesReport> {
        let grand = report.grand_total()?;
        let per_file = report.per_file_total()?;
        if grand != per_file || grand.rows != accepted {
            bail!(
                "conservation: {accepted} records accepted, report {grand:?}, files {per_file:?}"
            );
        }
        Ok(report)
    }

    /// `rounds` steps of xorshift: real work that needs a core the whole time (unlike `sleep`,
    /// two transform threads on one free core take twice as long each).
    pub fn burn_cpu(seed: u64, rounds: u32) -> u64 {
        let mut x = seed | 1;
        for _ in 0..rounds {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        std::hint::black_box(x)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// A fresh folder under the system's temp dir holding `files` (name, text).
        fn folder(test: &str, files: &[(&str, &str)]) -> (PathBuf, Vec<PathBuf>) {
            let dir = std::env::temp_dir().join(format!("{test}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let paths = files.iter().map(|(name, text)| {
                let path = dir.join(name);
                std::fs::write(&path, text).unwrap();
                path
            });
            let paths = paths.collect();
            (dir, paths)
        }

        fn config(files: Vec<PathBuf>, max_rejected: u64) -> PipelineConfig {
            PipelineConfig {
                files,
                threads: [2, 2, 2],
                read_delay: Duration::ZERO,
                transform_rounds: 0,
                queue: 1,
                max_rejected,
                panic_on: None,
            }
        }

        #[test]
        fn totals_are_exact_and_bad_records_are_named() {
            let (dir, files) = folder(
                "sales-pipeline-totals",
                &[
                    (
                        "a.csv",
                        "2024-01-01,north,pen,EUR,2,1.50\n2024-01-02,north,pen,USD,1,10\n",
                    ),
                    (
                        "b.csv",
                        "2024-01-01,north,pen,EUR,1,0.25\n2024-01-01,north,pen,EUR,1,NaN\n",
                    ),
                ],
            );
            let quiet = |_| {};
            let run =
                run_sales_pipeline(&config(files.clone(), 1), &AtomicBool::new(false), &quiet);
            let report = run.result.unwrap();
            let t = report.grand_total().unwrap();
            // 2 × 1.50 + 10 USD × 0.92 + 0.25 = 12.45 EUR; the NaN line is out.
            assert_eq!((t.rows, t.qty, t.revenue_eur_cents), (3, 4, 1245));
            assert_eq!((report.records(), report.rejected()), (4, 1));
            let run = run_sales_pipeline(&config(files, 0), &AtomicBool::new(false), &quiet);
            let err = format!("{:#}", run.result.unwrap_err());
            assert!(err.contains("b.csv line 2: unit price \"NaN\""), "{err}");
            std::fs::remove_dir_all(dir).unwrap();
        }
    }
}

/// The file format: a record that cannot be counted exactly is rejected, with its line.
mod records {
    /// The first line of a sales file.
    pub const HEADER: &str = "date,region,product,currency,qty,unit_price";
    /// The largest quantity on one record: beyond it, a typo or an attack, not a sale.
    pub const MAX_QTY: u64 = 1_000_000;
    /// The largest unit price, in cents (one million in the record's currency).
    pub const MAX_UNIT_PRICE_CENTS: u64 = 100_000_000;
    /// Region and product names: printed in the report, so short and without control characters.
    pub const MAX_NAME_CHARS: usize = 64;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Currency {
        Eur,
        Usd,
        Gbp,
        Chf,
    }

    impl Currency {
        /// Fixed rates, in thousandths of a euro per unit of the currency.
        pub fn eur_milli(self) -> u64 {
            match self {
                Currency::Eur => 1000,
                Currency::Usd => 920,
                Currency::Gbp => 1170,
                Currency::Chf => 1040,
            }
        }
    }

    /// One accepted record.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Sale {
        pub region: String,
        pub product: String,
        pub currency: Currency,
        pub qty: u64,
        pub unit_price_cents: u64,
    }

    /// A record that was not counted, and why.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Rejection {
        /// 1-based, as editors show it.
        pub line: usize,
        pub reason: String,
    }

    /// One file, parsed: records = `sales.len() + rejected.len()`, always.
    #[derive(Debug)]
    pub struct ParsedFile {
        pub name: String,
        pub records: u64,
        pub sales: Vec<Sale>,
        pub rejected: Vec<Rejection>,
    }

    /// Splits a file into records (blank lines and a first-line header are not records); never
    /// fails: what cannot be read becomes a rejection. Bytes, not `&str`: one stray non-UTF-8
    /// byte rejects its line, not the file.
    pub fn parse_file(name: &str, bytes: &[u8]) -> ParsedFile {
        let mut file = ParsedFile {
            name: name.to_string(),
            records: 0,
            sales: Vec::new(),
            rejected: Vec::new(),
        };
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) || (i == 0 && line == HEADER.as_bytes()) {
                continue;
            }
            file.records += 1;
            let parsed = std::str::from_utf8(line)
                .map_err(|_| "not valid UTF-8".to_string())
                .and_then(parse_record);
            match parsed {
                Ok(sale) => file.sales.push(sale),
                Err(reason) => file.rejected.push(Rejection {
                    line: i + 1,
                    reason,
                }),
            }
        }
        file
    }

    /// `date,region,product,currency,qty,unit_price`.
    pub fn parse_record(line: &str) -> Result<Sale, String> {
        let fields: Vec<&str> = line.split(',').collect();
        let [_date, region, product, currency, qty, price] = fields[..] else {
            return Err(format!("expected 6 fields, found {}", fields.len()));
        };
        let currency = match currency {
            "EUR" => Currency::Eur,
            "USD" => Currency::Usd,
            "GBP" => Currency::Gbp,
            "CHF" => Currency::Chf,
            other => return Err(format!("unknown currency {other:?}")),
        };
        let qty = digits(qty)
            .filter(|&q| q <= MAX_QTY)
            .ok_or_else(|| format!("quantity {qty:?} is not a whole number from 0 to {MAX_QTY}"))?;
        let unit_price_cents = parse_cents(price)
            .filter(|&c| c <= MAX_UNIT_PRICE_CENTS)
            .ok_or_else(|| {
                let max = MAX_UNIT_PRICE_CENTS / 100;
                format!("unit price {price:?} is not an amount like 12.50, from 0 to {max}")
            })?;
        Ok(Sale {
            region: name(region, "region")?,
            product: name(product, "product")?,
            currency,
            qty,
            unit_price_cents,
        })
    }

    /// `12`, `12.5` or `12.50` as cents. Decimal text, not `f64`: exact, and `NaN`, `inf`,
    /// `-1` or `1e3` are not amounts.
    pub fn parse_cents(s: &str) -> Option<u64> {
        let (units, decimals) = s.split_once('.').unwrap_or((s, "00"));
        let cents = match decimals.len() {
            1 => digits(decimals)? * 10,
            2 => digits(decimals)?,
            _ => return None,
        };
        digits(units)?.checked_mul(100)?.checked_add(cents)
    }

    /// ASCII digits only (`u64::from_str` also takes a `+`), without overflow.
    fn digits(s: &str) -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    }

    fn name(s: &str, what: &str) -> Result<String, String> {
        let ok = !s.is_empty() && s.chars().count() <= MAX_NAME_CHARS;
        if !ok || s.chars().any(char::is_control) {
            return Err(format!(
                "{what} {s:?} is empty, too long or has control characters"
            ));
        }
        Ok(s.to_string())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn prices_are_exact_decimal_cents() {
            assert_eq!(parse_cents("10.50"), Some(1050));
            assert_eq!(parse_cents("10.5"), Some(1050));
            assert_eq!(parse_cents("7"), Some(700));
            assert_eq!(parse_cents("0.07"), Some(7));
            for bad in [
                "",
                "-1",
                "NaN",
                "inf",
                "1e3",
                "1.005",
                ".5",
                "5.",
                "+3",
                "18446744073709551615",
            ] {
                assert_eq!(parse_cents(bad), None, "{bad}");
            }
        }

        #[test]
        fn bad_records_are_rejected_with_their_line() {
            let text = format!(
                "{HEADER}\n2024-01-02,north,phone,USD,3,10.50\n\n2024-01-02,north,phone,USD,three,1\n\
                 2024-01-02,north,phone,USD,18446744073709551615,1\n2024-01-02,x,y,EUR,1,NaN\n"
            );
            let mut bytes = text.into_bytes();
            bytes.extend(b"\xff\n"); // not UTF-8
            let f = parse_file("x.csv", &bytes);
            assert_eq!(f.records, 5);
            assert_eq!(f.sales.len(), 1);
            assert_eq!((f.sales[0].qty, f.sales[0].unit_price_cents), (3, 1050));
            let lines: Vec<usize> = f.rejected.iter().map(|r| r.line).collect();
            assert_eq!(lines, [4, 5, 6, 7]);
            assert!(
                f.rejected[1].reason.contains("quantity"),
                "{:?}",
                f.rejected[1]
            );
        }
    }
}

/// Checked accounting: totals are exact, or the run stops. Never a wrapped total.
mod totals {
    use super::records::{ParsedFile, Rejection};
    use anyhow::{Context, Result};
    use std::collections::BTreeMap;

    /// A line worth this much or more (euro cents) is a large order.
    pub const LARGE_ORDER_EUR_CENTS: u64 = 100_000;

    /// One sale in euros.
    #[derive(Debug)]
    pub struct Line {
        pub region: String,
        pub product: String,
        pub qty: u64,
        pub revenue_eur_cents: u64,
    }

    /// Stage 3 output: a file's sales in euros, its record counts carried along.
    #[derive(Debug)]
    pub struct Enriched {
        pub name: String,
        pub records: u64,
        pub lines: Vec<Line>,
        pub rejected: Vec<Rejection>,
    }

    /// Converts every sale to euro cents. Within the records' limits a line's revenue fits in
    /// a `u64` with room to spare (10^6 × 10^8 × 1170 ≈ 1.2 × 10^17 < 1.8 × 10^19); checked anyway.
    pub fn enrich(file: ParsedFile) -> Result<Enriched> {
        let mut lines = Vec::with_capacity(file.sales.len());
        for s in file.sales {
            let revenue = s
                .qty
                .checked_mul(s.unit_price_cents)
                .and_then(|c| c.checked_mul(s.currency.eur_milli()))
                .map(|m| m / 1000)
                .with_context(|| format!("{}: revenue of {s:?} overflows", file.name))?;
            lines.push(Line {
                region: s.region,
                product: s.product,
                qty: s.qty,
                revenue_eur_cents: revenue,
            });
        }
        Ok(Enriched {
            name: file.name,
            records: file.records,
            lines,
            rejected: file.rejected,
        })
    }

    #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
    pub struct Totals {
        pub rows: u64,
        pub qty: u64,
        pub revenue_eur_cents: u64,
        pub large_orders: u64,
    }

    impl Totals {
        /// `None` if any sum would overflow (then `self` is unchanged).
        pub fn plus(&self, o: &Totals) -> Option<Totals> {
            Some(Totals {
                rows: self.rows.checked_add(o.rows)?,
                qty: self.qty.checked_add(o.qty)?,
                revenue_eur_cents: self.revenue_eur_cents.checked_add(o.revenue_eur_cents)?,
                large_orders: self.large_orders.checked_add(o.large_orders)?,
            })
        }

        fn of_line(l: &Line) -> Totals {
            let large = u64::from(l.revenue_eur_cents >= LARGE_ORDER_EUR_CENTS);
            Totals {
                rows: 1,
                qty: l.qty,
                revenue_eur_cents: l.revenue_eur_cents,
                large_orders: large,
            }
        }
    }

    /// What one file contributed.
    #[derive(Debug, Default, Clone, PartialEq)]
    pub struct FileTally {
        pub records: u64,
        pub rejected: Vec<Rejection>,
        pub totals: Totals,
    }

    /// The report: totals per (region, product), and per file.
    #[derive(Debug, Default)]
    pub struct SalesReport {
        pub by_key: BTreeMap<(String, String), Totals>,
        pub per_file: BTreeMap<String, FileTally>,
    }

    impl SalesReport {
        /// Adds a file, or changes nothing and says which sum would have overflowed.
        pub fn add_file(&mut self, e: Enriched) -> Result<()> {
            let mut updates: BTreeMap<(String, String), Totals> = BTreeMap::new();
            let mut file = Totals::default();
            for l in &e.lines {
                let key = (l.region.clone(), l.product.clone());
                let before = updates
                    .get(&key)
                    .or(self.by_key.get(&key))
                    .copied()
                    .unwrap_or_default();
                let overflow = || format!("{}: the totals of {}/{} overflow", e.name, key.0, key.1);
                let after = before.plus(&Totals::of_line(l)).with_context(overflow)?;
                file = file
                    .plus(&Totals::of_line(l))
                    .with_context(|| format!("{}: its totals overflow", e.name))?;
                updates.insert(key, after);
            }
            self.by_key.extend(updates);
            let tally = FileTally {
                records: e.records,
                rejected: e.rejected,
                totals: file,
            };
            self.per_file.insert(e.name, tally);
            Ok(())
        }

        /// The sum of every (region, product) row.
        pub fn grand_total(&self) -> Result<Totals> {
            sum(self.by_key.values())
        }

        /// The sum of every file's totals: equal to [`Self::grand_total`], by conservation.
        pub fn per_file_total(&self) -> Result<Totals> {
            sum(self.per_file.values().map(|f| &f.totals))
        }

        pub fn records(&self) -> u64 {
            self.per_file.values().map(|f| f.records).sum()
        }

        pub fn rejected(&self) -> u64 {
            self.per_file
                .values()
                .map(|f| f.rejected.len() as u64)
                .sum()
        }
    }

    fn sum<'a>(mut all: impl Iterator<Item = &'a Totals>) -> Result<Totals> {
        all.try_fold(Totals::default(), |acc, t| acc.plus(t))
            .context("the report's grand total overflows")
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn an_overflowing_sum_is_an_error_and_changes_nothing() {
            let line = |qty| Line {
                region: "r".into(),
                product: "p".into(),
                qty,
                revenue_eur_cents: u64::MAX / 2 + 1,
            };
            let file = |name: &str| Enriched {
                name: name.into(),
                records: 1,
                lines: vec![line(1)],
                rejected: vec![],
            };
            let mut report = SalesReport::default();
            report.add_file(file("a.csv")).unwrap();
            let err = report.add_file(file("b.csv")).unwrap_err();
            assert!(format!("{err:#}").contains("b.csv"), "{err:#}");
            assert_eq!(report.per_file.len(), 1, "the failed file left no trace");
            assert_eq!(report.grand_total().unwrap().rows, 1);
        }
    }
}

// === Harness: not part of the lesson ===

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser};
use examples_patterns::python_peer;
use indicatif::ProgressBar;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use records::HEADER;
use sales_pipeline::{PipelineConfig, PipelineRun, burn_cpu, run_sales_pipeline};
use serde::Serialize;
use shared::cli;
use shared::report::{fmt_duration, print_json};
use stages::StageEvent;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use totals::SalesReport;

/// A multi-stage file pipeline with threads per stage and a visible bottleneck.
#[derive(Parser, Debug, Clone)]
#[command(version)]
struct Args {
    /// Directory of CSV files to process (default: generate `--files` files in a temp dir).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Write the report here (default: print it only).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Number of generated input files.
    #[arg(long, default_value_t = 300, value_parser = cli::usize_in(0, 100_000))]
    files: usize,
    /// Rows per generated file.
    #[arg(long, default_value_t = 500, value_parser = cli::usize_in(0, 1_000_000))]
    rows: usize,
    /// Seed of the generated files.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Reader threads.
    #[arg(long, default_value_t = 1, value_parser = cli::usize_in(1, 256))]
    readers: usize,
    /// Parser threads.
    #[arg(long, default_value_t = 1, value_parser = cli::usize_in(1, 256))]
    parsers: usize,
    /// Transformer threads.
    #[arg(long, default_value_t = 1, value_parser = cli::usize_in(1, 256))]
    transformers: usize,
    /// Simulated storage latency per file read, in µs (sleeping: I/O-like).
    #[arg(long, default_value_t = 4000, value_parser = cli::u64_in(0, 10_000_000))]
    read_us: u64,
    /// CPU work per file in the transform stage, in µs of one idle core (CPU-bound).
    #[arg(long, default_value_t = 2500, value_parser = cli::u64_in(0, 10_000_000))]
    transform_us: u64,
    /// Capacity of each queue between stages.
    #[arg(long, default_value_t = 16, value_parser = cli::usize_in(1, 100_000))]
    queue: usize,
    /// Rejected records (bad quantity, price, currency…) tolerated before the run stops.
    #[arg(long, default_value_t = 0, value_parser = cli::u64_in(0, 1_000_000_000))]
    max_rejected: u64,
    /// Put a bad record in the generated file number N (files are numbered from 1).
    #[arg(long, value_parser = cli::usize_in(1, 100_000))]
    fail_at: Option<usize>,
    /// Make the transform stage panic on the generated file number N (a bug; from 1).
    #[arg(long, value_parser = cli::usize_in(1, 100_000))]
    panic_at: Option<usize>,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
    /// Also run the course's Python (python/pipeline.py: threads per stage, `queue.Queue`s)
    /// on the same files with the same threads and costs, and print both in one table.
    #[arg(long)]
    python: bool,
}

/// The most generated rows (`--files` × `--rows`): about 2 GB of CSV.
const MAX_GENERATED_ROWS: usize = 50_000_000;
const STAGES: [&str; 4] = ["read", "parse", "transform", "aggregate"];
/// Rejections listed in the output (all are counted).
const LISTED_REJECTIONS: usize = 100;

fn main() -> Result<ExitCode> {
    let args = Args::parse();
    if args.input.is_none() && args.files.saturating_mul(args.rows) > MAX_GENERATED_ROWS {
        Args::command()
            .error(
                clap::error::ErrorKind::ValueValidation,
                format!("--files × --rows is at most {MAX_GENERATED_ROWS} rows"),
            )
            .exit();
    }
    let python = args.python.then(|| python_peer::python_or_exit(&[]));
    let stop = shared::shutdown::stop_flag_on_ctrl_c()?;
    // The generated inputs live in a temporary directory removed when `main` returns.
    let tmp;
    let dir = match &args.input {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().context("create a temp dir")?;
            generate_inputs(tmp.path(), args.files, args.rows, args.seed, args.fail_at)?;
            tmp.path().to_path_buf()
        }
    };
    let cfg = PipelineConfig {
        files: list_csv_files(&dir)?,
        threads: [args.readers, args.parsers, args.transformers],
        read_delay: Duration::from_micros(args.read_us),
        // Float to int `as` saturates: 10 s of work on a fast core stays a valid u32.
        transform_rounds: (args.transform_us as f64 * rounds_per_us()) as u32,
        queue: args.queue,
        max_rejected: args.max_rejected,
        panic_on: args.panic_at.map(file_name),
    };
    if !args.json {
        println!(
            "{} files from {}; threads: read {}, parse {}, transform {}, aggregate 1; queues of {}",
            cfg.files.len(),
            dir.display(),
            args.readers,
            args.parsers,
            args.transformers,
            args.queue
        );
    }

    let stats: [StageStats; 4] = Default::default();
    let mp = shared::progress::multi(args.json);
    let bars: Vec<ProgressBar> = STAGES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let threads = cfg.threads.get(i).copied().unwrap_or(1);
            let b = mp.add(
                ProgressBar::new(cfg.files.len() as u64).with_style(shared::progress::bar_style()),
            );
            b.set_message(format!("{name} x{threads}"));
            b
        })
        .collect();
    let observe = |e: StageEvent| match e {
        StageEvent::Took { stage, waited } => stats[stage].took(waited),
        StageEvent::Passed {
            stage,
            busy,
            blocked,
        } => {
            stats[stage].passed(busy, blocked);
            bars[stage].inc(1);
        }
    };
    let run = run_sales_pipeline(&cfg, &stop, &observe);
    bars.iter().for_each(ProgressBar::finish_and_clear);

    let table = stage_table(
        &stats,
        [args.readers, args.parsers, args.transformers, 1],
        run.wall,
    );
    let done = table[3].items_out;
    // The Python run needs a finished Rust run to compare with (and no Ctrl-C).
    let python = match python.filter(|_| !run.interrupted && run.result.is_ok()) {
        Some(py) => Some(python_run(&py, &args, &dir)?),
        None => None,
    };
    if args.json {
        let mut out = serde_json::to_value(PipelineJson::new(&run, &table, cfg.files.len()))
            .context("serializing the figures")?;
        if let Some(py) = &python {
            out["python"] = py.clone();
        }
        print_json(&out);
    } else {
        print_stage_table(&table, done, run.wall);
    }
    if run.interrupted {
        eprintln!(
            "interrupted: {done} of {} files aggregated; no report written",
            cfg.files.len()
        );
        return Ok(ExitCode::from(130));
    }
    let report = run.result.context("pipeline stopped")?;
    // Conservation at file level: every file went through every stage exactly once.
    anyhow::ensure!(
        done == cfg.files.len() as u64,
        "conservation: {} files in, {done} aggregated",
        cfg.files.len()
    );
    let text = render_report(&report);
    if let Some(out) = &args.out {
        // Write then rename: a reader of `out` never sees a half-written report.
        let tmp = out.with_extension("tmp");
        std::fs::write(&tmp, &text).with_context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, out).with_context(|| format!("rename to {}", out.display()))?;
    }
    if !args.json {
        print_report_summary(&report, &text, args.out.as_deref());
    }
    if let Some(py) = &python {
        if !args.json {
            print_python_table(&table, run.wall, py);
        }
        python_agrees(&report, &text, py)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs python/pipeline.py on the same folder with the same threads, costs and queues.
fn python_run(py: &shared::python::Python, args: &Args, dir: &Path) -> Result<serde_json::Value> {
    let a = [
        dir.display().to_string(),
        format!("--readers={}", args.readers),
        format!("--parsers={}", args.parsers),
        format!("--transformers={}", args.transformers),
        format!("--read-us={}", args.read_us),
        format!("--transform-us={}", args.transform_us),
        format!("--queue={}", args.queue),
        format!("--max-rejected={}", args.max_rejected),
    ];
    python_peer::run_recipe(py, "pipeline", &a)
}

/// The same files must give the same report, line for line, and the same counts.
fn python_agrees(report: &SalesReport, text: &str, py: &serde_json::Value) -> Result<()> {
    anyhow::ensure!(
        py["ok"] == true,
        "the Python version stopped where Rust did not: {}",
        py["error"]
    );
    let rust = [
        report.per_file.len() as u64,
        report.records(),
        report.records() - report.rejected(),
        report.rejected(),
    ];
    let field = |k: &str| python_peer::u64_field(py, k);
    let python = [
        field("files")?,
        field("records")?,
        field("rows")?,
        field("rejected")?,
    ];
    anyhow::ensure!(
        rust == python,
        "files, records, rows, rejected differ: Rust {rust:?}, Python {python:?}"
    );
    anyhow::ensure!(
        py["report_csv"].as_str() == Some(text),
        "the reports differ:\nRust:\n{text}\nPython:\n{}",
        py["report_csv"].as_str().unwrap_or("")
    );
    Ok(())
}

fn print_python_table(table: &[StageRow], wall: Duration, py: &serde_json::Value) {
    let wall_py = py["wall_s"].as_f64().unwrap_or(f64::NAN);
    let pct = |x: Option<f64>| x.map_or_else(|| "-".into(), |u| format!("{:.0}%", u * 100.0));
    let threads: Vec<String> = table.iter().map(|r| r.threads.to_string()).collect();
    let mut rust = vec![
        "Rust (crossbeam bounded)".to_string(),
        fmt_duration(wall),
        format!(
            "{:.0}",
            table[3].items_out as f64 / wall.as_secs_f64().max(1e-9)
        ),
    ];
    rust.extend(table.iter().map(|r| pct(Some(r.utilisation))));
    rust.push(bottleneck(table).to_string());
    let mut python = vec![
        "Python (queue.Queue)".to_string(),
        fmt_duration(Duration::try_from_secs_f64(wall_py).unwrap_or_default()),
        format!("{:.0}", py["files_per_s"].as_f64().unwrap_or(f64::NAN)),
    ];
    python.extend(STAGES.iter().map(|s| pct(py["utilisation"][s].as_f64())));
    python.push(py["bottleneck"].as_str().unwrap_or("-").to_string());
    println!();
    println!(
        "the same files in the course's Python ({}), threads per stage {}:",
        py["interpreter"].as_str().unwrap_or("python3"),
        threads.join("/")
    );
    print!(
        "{}",
        python_peer::table(
            &[
                "version",
                "wall",
                "files/s",
                "read",
                "parse",
                "transform",
                "aggregate",
                "bottleneck",
            ],
            &[rust, python],
        )
    );
    println!(
        "Python / Rust wall time: {}; the same report, line for line. Stage columns: busy share \
         of each stage's threads. Python's transform holds the GIL: more transform threads do \
         not help it, and parsing in Python costs far more than in Rust",
        python_peer::ratio(wall_py, wall.as_secs_f64())
    );
}

/// The `.csv` files of `dir`, sorted (a stable order makes runs comparable).
fn list_csv_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("list {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("list {}", dir.display()))?;
    files.retain(|p| p.extension().is_some_and(|e| e == "csv"));
    files.sort();
    Ok(files)
}

/// How many `burn_cpu` rounds this machine does per microsecond of CPU (measured once, ~20 ms),
/// so `--transform-us` means the same in debug and release builds. CPU time, not wall time: on
/// a busy machine the calibration may be descheduled, which would shrink every transform.
fn rounds_per_us() -> f64 {
    let start = shared::report::self_cpu_time();
    let (mut rounds, mut seed) = (0u64, 1u64);
    let spent = || shared::report::self_cpu_time().saturating_sub(start);
    while spent() < Duration::from_millis(20) {
        seed = burn_cpu(seed, 10_000);
        rounds += 10_000;
    }
    std::hint::black_box(seed);
    rounds as f64 / spent().as_micros().max(1) as f64
}

fn file_name(i: usize) -> String {
    format!("sales-{i:04}.csv")
}

/// Write `files` seeded CSV files, numbered from 1; file `corrupt` gets a bad quantity.
fn generate_inputs(
    dir: &Path,
    files: usize,
    rows: usize,
    seed: u64,
    corrupt: Option<usize>,
) -> Result<()> {
    const REGIONS: [&str; 5] = ["north", "south", "east", "west", "centre"];
    const PRODUCTS: [&str; 6] = ["laptop", "phone", "tablet", "monitor", "keyboard", "cable"];
    const CURRENCIES: [&str; 4] = ["EUR", "USD", "GBP", "CHF"];
    for f in 1..=files {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (f as u64).wrapping_mul(0x9E37_79B9));
        let mut text = String::with_capacity(rows * 48);
        text.push_str(HEADER);
        text.push('\n');
        for r in 0..rows {
            if corrupt == Some(f) && r == rows / 2 {
                text.push_str("2024-03-01,north,laptop,EUR,three,999.00\n");
                continue;
            }
            text.push_str(&format!(
                "2024-{:02}-{:02},{},{},{},{},{}.{:02}\n",
                rng.random_range(1..=12),
                rng.random_range(1..=28),
                REGIONS[rng.random_range(0..REGIONS.len())],
                PRODUCTS[rng.random_range(0..PRODUCTS.len())],
                CURRENCIES[rng.random_range(0..CURRENCIES.len())],
                rng.random_range(1..=20),
                rng.random_range(1..=1500),
                rng.random_range(0..100),
            ));
        }
        let path = dir.join(file_name(f));
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

fn render_report(report: &SalesReport) -> String {
    let mut out = String::from("region,product,rows,qty,revenue_eur,large_orders\n");
    for ((region, product), t) in &report.by_key {
        out.push_str(&format!(
            "{region},{product},{},{},{}.{:02},{}\n",
            t.rows,
            t.qty,
            t.revenue_eur_cents / 100,
            t.revenue_eur_cents % 100,
            t.large_orders
        ));
    }
    out
}

fn print_report_summary(report: &SalesReport, text: &str, out: Option<&Path>) {
    let rejected = report.rejected();
    println!(
        "all {} files and {} records conserved through the 4 stages: {} accepted + {rejected} rejected",
        report.per_file.len(),
        report.records(),
        report.records() - rejected,
    );
    for (file, r) in rejections(report).take(10) {
        println!("  rejected: {file} line {}: {}", r.line, r.reason);
    }
    println!(
        "report ({} lines{}):",
        report.by_key.len(),
        out.map_or(String::new(), |p| format!(", written to {}", p.display()))
    );
    for line in text.lines().take(6) {
        println!("  {line}");
    }
    if report.by_key.len() > 5 {
        println!("  ...");
    }
}

fn rejections(report: &SalesReport) -> impl Iterator<Item = (&str, &records::Rejection)> {
    report
        .per_file
        .iter()
        .flat_map(|(file, t)| t.rejected.iter().map(move |r| (file.as_str(), r)))
}

// ---------------------------------------------------------------------------------------------
// Statistics: the observer's counters, and the table that names the bottleneck.
// ---------------------------------------------------------------------------------------------

/// One stage's counters, fed by the observer (relaxed: read once, after every thread joined).
#[derive(Default)]
struct StageStats {
    items_in: AtomicU64,
    items_out: AtomicU64,
    busy_ns: AtomicU64,
    waiting_ns: AtomicU64,
    blocked_ns: AtomicU64,
}

impl StageStats {
    fn took(&self, waited: Duration) {
        self.items_in.fetch_add(1, Ordering::Relaxed);
        add_ns(&self.waiting_ns, waited);
    }

    fn passed(&self, busy: Duration, blocked: Duration) {
        self.items_out.fetch_add(1, Ordering::Relaxed);
        add_ns(&self.busy_ns, busy);
        add_ns(&self.blocked_ns, blocked);
    }
}

fn add_ns(counter: &AtomicU64, d: Duration) {
    counter.fetch_add(
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

#[derive(Serialize)]
struct StageRow {
    stage: &'static str,
    threads: usize,
    items_in: u64,
    items_out: u64,
    busy_s: f64,
    waiting_s: f64,
    blocked_s: f64,
    /// busy / (wall × threads): 1.0 = never idle, the bottleneck.
    utilisation: f64,
    items_per_s: f64,
}

fn stage_table(stats: &[StageStats; 4], threads: [usize; 4], wall: Duration) -> Vec<StageRow> {
    let wall = wall.as_secs_f64().max(1e-9);
    STAGES
        .iter()
        .zip(stats)
        .zip(threads)
        .map(|((&stage, st), threads)| {
            let secs = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64 / 1e9;
            let out = st.items_out.load(Ordering::Relaxed);
            StageRow {
                stage,
                threads,
                items_in: st.items_in.load(Ordering::Relaxed),
                items_out: out,
                busy_s: secs(&st.busy_ns),
                waiting_s: secs(&st.waiting_ns),
                blocked_s: secs(&st.blocked_ns),
                utilisation: secs(&st.busy_ns) / (wall * threads as f64),
                items_per_s: out as f64 / wall,
            }
        })
        .collect()
}

fn bottleneck(table: &[StageRow]) -> &'static str {
    table
        .iter()
        .max_by(|a, b| a.utilisation.total_cmp(&b.utilisation))
        .map_or("-", |r| r.stage)
}

fn print_stage_table(table: &[StageRow], done: u64, wall: Duration) {
    let slowest = bottleneck(table);
    println!(
        "{:<10} {:>7} {:>6} {:>6} {:>9} {:>9} {:>9} {:>6} {:>9}",
        "stage", "threads", "in", "out", "busy", "waiting", "blocked", "util", "files/s"
    );
    for r in table {
        let d = Duration::from_secs_f64;
        println!(
            "{:<10} {:>7} {:>6} {:>6} {:>9} {:>9} {:>9} {:>5.0}% {:>9.0}{}",
            r.stage,
            r.threads,
            r.items_in,
            r.items_out,
            fmt_duration(d(r.busy_s)),
            fmt_duration(d(r.waiting_s)),
            fmt_duration(d(r.blocked_s)),
            r.utilisation * 100.0,
            r.items_per_s,
            if r.stage == slowest {
                "  <- bottleneck"
            } else {
                ""
            }
        );
    }
    println!(
        "{done} files in {} = {:.0} files/s (busy, waiting and blocked are summed over a stage's threads)",
        fmt_duration(wall),
        done as f64 / wall.as_secs_f64().max(1e-9)
    );
}

#[derive(Serialize)]
struct RejectionJson<'a> {
    file: &'a str,
    line: usize,
    reason: &'a str,
}

#[derive(Serialize)]
struct PipelineJson<'a> {
    ok: bool,
    error: Option<String>,
    files: usize,
    /// Records read (blank lines and headers are not records) = rows + rejected.
    records: u64,
    /// Records accepted into the report.
    rows: u64,
    rejected: u64,
    /// The first rejections, with their file and line.
    rejections: Vec<RejectionJson<'a>>,
    wall_s: f64,
    items_per_s: f64,
    bottleneck: &'static str,
    stages: &'a [StageRow],
}

impl<'a> PipelineJson<'a> {
    fn new(run: &'a PipelineRun, table: &'a [StageRow], files: usize) -> Self {
        let report = run.result.as_ref().ok();
        let wall = run.wall.as_secs_f64().max(1e-9);
        PipelineJson {
            ok: run.result.is_ok(),
            error: run.result.as_ref().err().map(|e| format!("{e:#}")),
            files,
            records: report.map_or(0, SalesReport::records),
            rows: report.map_or(0, |r| r.records() - r.rejected()),
            rejected: report.map_or(0, SalesReport::rejected),
            rejections: report
                .into_iter()
                .flat_map(rejections)
                .take(LISTED_REJECTIONS)
                .map(|(file, r)| RejectionJson {
                    file,
                    line: r.line,
                    reason: &r.reason,
                })
                .collect(),
            wall_s: wall,
            items_per_s: table[3].items_out as f64 / wall,
            bottleneck: bottleneck(table),
            stages: table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::AtomicBool;

    fn config(dir: &Path, threads: [usize; 3]) -> PipelineConfig {
        PipelineConfig {
            files: list_csv_files(dir).unwrap(),
            threads,
            read_delay: Duration::ZERO,
            transform_rounds: 0,
            queue: 2,
            max_rejected: 0,
            panic_on: None,
        }
    }

    /// Runs the pipeline with a counting observer: (run, items out of each stage).
    fn run(cfg: &PipelineConfig) -> (PipelineRun, [u64; 4]) {
        let out: [AtomicU64; 4] = Default::default();
        let observe = |e: StageEvent| {
            if let StageEvent::Passed { stage, .. } = e {
                out[stage].fetch_add(1, Ordering::Relaxed);
            }
        };
        let run = run_sales_pipeline(cfg, &AtomicBool::new(false), &observe);
        (run, out.map(AtomicU64::into_inner))
    }

    /// Run `f` on a thread and fail the test if it does not finish in time (a hang guard, not a
    /// performance assertion: the pipeline normally stops in milliseconds).
    fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()).unwrap());
        rx.recv_timeout(Duration::from_secs(60))
            .expect("the pipeline hung instead of stopping")
    }

    #[test]
    fn counts_and_totals_are_conserved_for_any_thread_counts() {
        let dir = tempfile::tempdir().unwrap();
        generate_inputs(dir.path(), 25, 40, 3, None).unwrap();
        // The expected totals, computed without the pipeline.
        let mut expected_qty = 0;
        for i in 1..=25 {
            let bytes = std::fs::read(dir.path().join(file_name(i))).unwrap();
            let parsed = records::parse_file(&file_name(i), &bytes);
            assert!(parsed.rejected.is_empty());
            expected_qty += parsed.sales.iter().map(|s| s.qty).sum::<u64>();
        }
        let mut reference = None;
        for threads in [[1, 1, 1], [3, 2, 4], [1, 4, 1]] {
            let (run, out) = run(&config(dir.path(), threads));
            let report = run.result.unwrap();
            let grand = report.grand_total().unwrap();
            assert_eq!(grand.rows, 25 * 40, "{threads:?}");
            assert_eq!(grand.qty, expected_qty);
            assert_eq!(out, [25; 4], "{threads:?}");
            // Same report whatever the thread counts (aggregation is order-independent).
            match &reference {
                None => reference = Some(report.by_key),
                Some(r) => assert_eq!(r, &report.by_key, "{threads:?}"),
            }
        }
    }

    #[test]
    fn a_stage_panic_stops_the_pipeline_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        generate_inputs(dir.path(), 200, 20, 5, None).unwrap();
        let mut cfg = config(dir.path(), [2, 2, 2]);
        cfg.panic_on = Some(file_name(7));
        let err = within(move || format!("{:#}", run(&cfg).0.result.unwrap_err()));
        assert!(
            err.contains("panicked") && err.contains("sales-0007.csv"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_record_stops_the_pipeline_and_names_its_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        generate_inputs(dir.path(), 200, 20, 5, Some(3)).unwrap();
        let cfg = config(dir.path(), [1, 3, 1]);
        let (err, aggregated) = within(move || {
            let (run, out) = run(&cfg);
            (format!("{:#}", run.result.unwrap_err()), out[3])
        });
        assert!(
            err.contains("stage parse failed") && err.contains("sales-0003.csv line 12"),
            "{err}"
        );
        assert!(aggregated < 200, "the pipeline should have stopped early");
    }

    #[test]
    fn within_the_budget_bad_records_are_counted_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        generate_inputs(dir.path(), 6, 20, 5, Some(3)).unwrap();
        let mut cfg = config(dir.path(), [1, 1, 1]);
        cfg.max_rejected = 1;
        let report = run(&cfg).0.result.unwrap();
        assert_eq!((report.records(), report.rejected()), (120, 1));
        assert_eq!(report.grand_total().unwrap().rows, 119);
    }

    #[test]
    fn a_stop_from_outside_is_an_interruption_not_a_report() {
        let dir = tempfile::tempdir().unwrap();
        generate_inputs(dir.path(), 50, 5, 5, None).unwrap();
        let mut cfg = config(dir.path(), [1, 1, 1]);
        cfg.read_delay = Duration::from_millis(20);
        let stopped = within(move || {
            let stop = AtomicBool::new(false);
            let observe = |e: StageEvent| {
                if let StageEvent::Passed { stage: 3, .. } = e {
                    stop.store(true, Ordering::Release); // Ctrl-C after the first file
                }
            };
            let run = run_sales_pipeline(&cfg, &stop, &observe);
            (run.interrupted, run.result.is_err())
        });
        assert_eq!(stopped, (true, true));
    }

    /// A line a hostile or careless user may write: well-formed records with arbitrary numbers,
    /// arbitrary text, arbitrary bytes.
    fn any_line() -> impl Strategy<Value = Vec<u8>> {
        let number = prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            (0u64..2_000_000).prop_map(|n| n.to_string()),
            (0u64..200_000_000, 0u8..100).prop_map(|(u, c)| format!("{u}.{c:02}")),
            prop::sample::select(vec![
                "-1", "NaN", "inf", "-inf", "1e30", "", "0.5", "+3", "1.005"
            ])
            .prop_map(str::to_string),
        ];
        let currency = prop::sample::select(vec!["EUR", "USD", "GBP", "CHF", "XXX"]);
        let record = (currency, number.clone(), number)
            .prop_map(|(c, q, p)| format!("2024-01-01,north,laptop,{c},{q},{p}").into_bytes());
        prop_oneof![
            6 => record,
            1 => "[ -~]{0,40}".prop_map(String::into_bytes),
            1 => prop::collection::vec(any::<u8>(), 0..40),
        ]
    }

    fn any_file() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any_line(), 0..30).prop_map(|lines| {
            let mut bytes = format!("{HEADER}\n").into_bytes();
            for l in lines {
                bytes.extend(l.iter().filter(|&&b| b != b'\n'));
                bytes.push(b'\n');
            }
            bytes
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Arbitrary input: no panic; per file, records = accepted + rejected; the sum of the
        /// files' totals is the report's; and every total equals the exact (u128) sum of the
        /// accepted records, or the run refuses to add them up.
        #[test]
        fn parsing_and_accounting_conserve_every_record(files in prop::collection::vec(any_file(), 0..5)) {
            let mut report = SalesReport::default();
            let mut exact_revenue: u128 = 0;
            let mut overflowed = false;
            for (i, bytes) in files.iter().enumerate() {
                let parsed = records::parse_file(&file_name(i), bytes);
                let lines = bytes.split(|&b| b == b'\n').skip(1);
                let non_blank = lines.filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count();
                prop_assert_eq!(parsed.records, non_blank as u64);
                prop_assert_eq!(parsed.records, (parsed.sales.len() + parsed.rejected.len()) as u64);
                for s in &parsed.sales {
                    prop_assert!(s.qty <= records::MAX_QTY);
                    prop_assert!(s.unit_price_cents <= records::MAX_UNIT_PRICE_CENTS);
                    let milli = u128::from(s.currency.eur_milli());
                    exact_revenue += u128::from(s.qty) * u128::from(s.unit_price_cents) * milli / 1000;
                }
                let enriched = totals::enrich(parsed).unwrap();
                overflowed |= report.add_file(enriched).is_err();
            }
            prop_assume!(!overflowed);
            let grand = report.grand_total().unwrap();
            prop_assert_eq!(grand, report.per_file_total().unwrap());
            prop_assert_eq!(grand.rows + report.rejected(), report.records());
            prop_assert_eq!(u128::from(grand.revenue_eur_cents), exact_revenue);
        }
    }
}
