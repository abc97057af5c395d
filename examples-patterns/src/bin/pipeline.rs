//! Pipeline: read → parse → transform → aggregate, threads per stage, bounded queues, a visible bottleneck.
//!
//! Course section **8.4 Patterns de concurrence — Pipeline de traitement** (the course's "data
//! analysis / report generation" case). Sales files (CSV) are read, parsed, converted to euros
//! and scored, then aggregated into a per-region, per-product report. Each stage is a small pool
//! of threads; stages are connected by bounded `crossbeam_channel`s.
//!
//! # Concepts
//! - **Throughput = the slowest stage.** A stage with idle threads waits on its input queue
//!   (`waiting`); a stage faster than its successor blocks on its full output queue
//!   (`blocked`). The bottleneck is the stage that is busy all the time. The table at the end
//!   measures exactly that, and the live bars (one per stage, with items/s) show it.
//! - **Moving the bottleneck.** Reading is I/O-like (`--read-us` of simulated storage latency:
//!   sleeping threads do not need cores), transforming is CPU-bound (`--transform-us` of real
//!   computation per file). More reader threads help even on one core; more transform threads
//!   help only up to the number of cores.
//! - **Bounded queues** between stages (`--queue`): a fast stage cannot run ahead and fill memory;
//!   it blocks, and the blocking is the signal that it is not the bottleneck.
//! - **Failure stops everything, promptly, with the cause.** A stage that returns an error or
//!   panics raises a shared cancel flag (a drop guard does it even during a panic). Every stage
//!   checks the flag between items, exits, and drops its channel ends; a thread blocked on a
//!   queue wakes up because the other side disconnected. `main` joins every thread, turns the
//!   first error or panic into the run's error, and writes no report (no half-written output
//!   that looks complete). Nothing is lost silently: each stage's counts are printed.
//! - **Conservation, checked**: files read = parsed = transformed = aggregated, and the rows and
//!   quantities in the report equal those parsed.
//!
//! # Run
//! ```text
//! cargo run -p examples-patterns --bin pipeline                          # the reader is the bottleneck
//! cargo run -p examples-patterns --bin pipeline -- --readers 2           # now transform is
//! cargo run -p examples-patterns --bin pipeline -- --readers 4 --transformers 2   # needs 2 free cores
//! cargo run -p examples-patterns --bin pipeline -- --fail-at 40          # a corrupt file: clean error
//! cargo run -p examples-patterns --bin pipeline -- --panic-at 40         # a bug in a stage: clean error
//! cargo run -p examples-patterns --bin pipeline -- --input ./my-csvs --out report.csv
//! ```
//! Input files are generated (seeded) in a temporary directory unless `--input DIR` is given
//! (CSV: `date,region,product,currency,qty,unit_price`).
//!
//! # What to observe
//! - The bottleneck stage has utilisation near 100%; stages before it are `blocked` on their
//!   full output queue, stages after it are `waiting` on an empty input queue.
//! - Doubling the bottleneck's threads nearly doubles items/s, until another stage (or the
//!   number of cores) becomes the limit. Doubling any other stage changes nothing.
//! - With `--panic-at`, the panic message is printed by the thread, the pipeline stops within
//!   milliseconds, and the exit code is non-zero.
//!
//! Measured on 2 idle cores (release, defaults: 300 files): 240 files/s with the reader as the
//! bottleneck; `--readers 2`: 406 files/s, transform is now the bottleneck (99% busy);
//! `--readers 4 --transformers 2`: 617 files/s, transform still the limit with both cores busy.
//!
//! # Exercises
//! 1. Set `--queue 1` and then `--queue 1000`. Does the throughput change? What does change
//!    (memory, how long a stop takes)?
//! 2. Make the aggregator parallel (two threads with a `Mutex<BTreeMap>`): is it ever the
//!    bottleneck here? When would it be, and what would you do (shard by key)?
//! 3. Preserve the input order at the output (sequence numbers and a reorder buffer in the
//!    aggregator). What does it cost when one file is slow?
//! 4. Replace the cancel flag with a `crossbeam_channel::select!` on a "stop" channel in every
//!    `recv`. Which approach stops faster when a stage is blocked?

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use crossbeam_channel::{Receiver, Sender, bounded};
use indicatif::{MultiProgress, ProgressBar};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use shared::report::{fmt_duration, print_json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

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
    #[arg(long, default_value_t = 300)]
    files: usize,
    /// Rows per generated file.
    #[arg(long, default_value_t = 500)]
    rows: usize,
    /// Seed of the generated files.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Reader threads.
    #[arg(long, default_value_t = 1)]
    readers: usize,
    /// Parser threads.
    #[arg(long, default_value_t = 1)]
    parsers: usize,
    /// Transformer threads.
    #[arg(long, default_value_t = 1)]
    transformers: usize,
    /// Simulated storage latency per file read, in µs (sleeping: I/O-like).
    #[arg(long, default_value_t = 4000)]
    read_us: u64,
    /// CPU work per file in the transform stage, in µs of one idle core (CPU-bound).
    #[arg(long, default_value_t = 2500)]
    transform_us: u64,
    /// Capacity of each queue between stages.
    #[arg(long, default_value_t = 16)]
    queue: usize,
    /// Corrupt the generated file number N: the parse stage fails on it.
    #[arg(long)]
    fail_at: Option<usize>,
    /// Make the transform stage panic on the generated file number N (a bug).
    #[arg(long)]
    panic_at: Option<usize>,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

// ---------------------------------------------------------------------------------------------
// The data flowing through the stages.
// ---------------------------------------------------------------------------------------------

/// Stage 1 output: a file's bytes.
struct Raw {
    name: String,
    text: String,
}

/// One CSV row.
#[derive(Debug, Clone, PartialEq)]
struct Sale {
    region: String,
    product: String,
    currency: String,
    qty: u64,
    unit_price_cents: u64,
}

/// Stage 2 output.
struct Parsed {
    name: String,
    sales: Vec<Sale>,
}

/// Stage 3 output: euros, plus a flag for large orders.
struct Enriched {
    lines: Vec<Line>,
}

struct Line {
    region: String,
    product: String,
    qty: u64,
    revenue_eur_cents: u64,
    large: bool,
}

/// One row of the report.
#[derive(Debug, Default, Clone, Serialize, PartialEq)]
struct Totals {
    rows: u64,
    qty: u64,
    revenue_eur_cents: u64,
    large_orders: u64,
}

type Report = BTreeMap<(String, String), Totals>;

// ---------------------------------------------------------------------------------------------
// The work of each stage (plain functions: testable without threads).
// ---------------------------------------------------------------------------------------------

const HEADER: &str = "date,region,product,currency,qty,unit_price";

fn parse(raw: &Raw) -> Result<Vec<Sale>> {
    let mut sales = Vec::new();
    for (i, line) in raw.text.lines().enumerate() {
        if i == 0 && line == HEADER || line.trim().is_empty() {
            continue;
        }
        let bad = || format!("{} line {}: {line:?}", raw.name, i + 1);
        let f: Vec<&str> = line.split(',').collect();
        let [_date, region, product, currency, qty, price] = f[..] else {
            bail!("{}: expected 6 fields", bad());
        };
        let price: f64 = price
            .parse()
            .with_context(|| format!("{}: bad price", bad()))?;
        sales.push(Sale {
            region: region.to_string(),
            product: product.to_string(),
            currency: currency.to_string(),
            qty: qty
                .parse()
                .with_context(|| format!("{}: bad quantity", bad()))?,
            unit_price_cents: (price * 100.0).round() as u64,
        });
    }
    Ok(sales)
}

/// Convert to euros and flag large orders, then do `rounds` of computation (a stand-in for
/// scoring, geocoding, ...: whatever makes a real transform CPU-bound).
fn transform(p: Parsed, rounds: u32) -> Result<Enriched> {
    let mut lines = Vec::with_capacity(p.sales.len());
    for s in p.sales {
        // Fixed rates, in thousandths of a euro per unit of currency.
        let rate_milli = match s.currency.as_str() {
            "EUR" => 1000,
            "USD" => 920,
            "GBP" => 1170,
            "CHF" => 1040,
            other => bail!("{}: unknown currency {other:?}", p.name),
        };
        let revenue = s.qty * s.unit_price_cents * rate_milli / 1000;
        lines.push(Line {
            region: s.region,
            product: s.product,
            qty: s.qty,
            revenue_eur_cents: revenue,
            large: revenue >= 100_000,
        });
    }
    // A fixed amount of real work: unlike `sleep`, this needs a core the whole time, so two
    // transform threads on one free core take twice as long each.
    std::hint::black_box(shared::work::cpu_task(lines.len() as u64, rounds));
    Ok(Enriched { lines })
}

/// How many `cpu_task` rounds this machine does per microsecond (measured once, ~20 ms), so
/// `--transform-us` means the same in debug and release builds.
fn rounds_per_us() -> f64 {
    let start = Instant::now();
    let (mut rounds, mut seed) = (0u64, 1u64);
    while start.elapsed() < Duration::from_millis(20) {
        seed = shared::work::cpu_task(seed, 10_000);
        rounds += 10_000;
    }
    std::hint::black_box(seed);
    rounds as f64 / start.elapsed().as_micros().max(1) as f64
}

fn aggregate(report: &mut Report, e: Enriched) -> u64 {
    let rows = e.lines.len() as u64;
    for l in e.lines {
        let t = report.entry((l.region, l.product)).or_default();
        t.rows += 1;
        t.qty += l.qty;
        t.revenue_eur_cents += l.revenue_eur_cents;
        t.large_orders += u64::from(l.large);
    }
    rows
}

// ---------------------------------------------------------------------------------------------
// The pipeline machinery.
// ---------------------------------------------------------------------------------------------

/// Per-stage counters, updated by the stage's threads (relaxed: they are statistics, read once
/// after every thread has been joined, and joining synchronises).
#[derive(Default)]
struct StageStats {
    items_in: AtomicU64,
    items_out: AtomicU64,
    busy_ns: AtomicU64,
    waiting_ns: AtomicU64,
    blocked_ns: AtomicU64,
}

fn add(counter: &AtomicU64, d: Duration) {
    counter.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
}

/// What every stage thread shares.
struct Ctx {
    /// Raised by the first failure; every stage checks it between items.
    cancel: AtomicBool,
    /// The first error, with its stage (later ones are consequences, usually "cancelled").
    first_error: Mutex<Option<anyhow::Error>>,
}

impl Ctx {
    fn fail(&self, e: anyhow::Error) {
        let mut slot = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(e);
        self.cancel.store(true, Ordering::Release);
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Acquire)
    }
}

/// Raises the cancel flag if the thread unwinds from a panic: the other stages must not wait
/// for work that will never come. (A panic skips the code after the call, never a `Drop`.)
struct CancelOnPanic<'a>(&'a Ctx);

impl Drop for CancelOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.cancel.store(true, Ordering::Release);
        }
    }
}

/// Start `threads` workers for one stage: receive, `work`, send, until the input is closed, the
/// output is gone, or the pipeline is cancelled. Returns the join handles.
#[allow(clippy::too_many_arguments)]
fn spawn_stage<'scope, I: Send + 'scope, O: Send + 'scope>(
    s: &'scope Scope<'scope, '_>,
    name: &'static str,
    threads: usize,
    rx: Receiver<I>,
    tx: Sender<O>,
    ctx: &'scope Ctx,
    stats: &'scope StageStats,
    bar: ProgressBar,
    work: &'scope (dyn Fn(I) -> Result<O> + Sync),
) -> Result<Vec<ScopedJoinHandle<'scope, ()>>> {
    (0..threads)
        .map(|i| {
            let (rx, tx, bar) = (rx.clone(), tx.clone(), bar.clone());
            thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn_scoped(s, move || {
                    let _guard = CancelOnPanic(ctx);
                    loop {
                        let t = Instant::now();
                        // Err = input closed and drained: the upstream stage is done (or gone).
                        let Ok(item) = rx.recv() else { break };
                        add(&stats.waiting_ns, t.elapsed());
                        if ctx.cancelled() {
                            break;
                        }
                        stats.items_in.fetch_add(1, Ordering::Relaxed);
                        let t = Instant::now();
                        let out = match work(item) {
                            Ok(out) => out,
                            Err(e) => {
                                ctx.fail(e.context(format!("stage {name} failed")));
                                break;
                            }
                        };
                        add(&stats.busy_ns, t.elapsed());
                        let t = Instant::now();
                        // Err = every downstream thread has exited (the pipeline is stopping).
                        if tx.send(out).is_err() {
                            break;
                        }
                        add(&stats.blocked_ns, t.elapsed());
                        stats.items_out.fetch_add(1, Ordering::Relaxed);
                        bar.inc(1);
                    }
                    // Our `rx` and `tx` clones drop here: when the last thread of the stage
                    // exits, the next stage sees its input closed, the previous one its output.
                })
                .with_context(|| format!("spawn {name} thread"))
        })
        .collect()
}

const STAGES: [&str; 4] = ["read", "parse", "transform", "aggregate"];

/// Everything a run needs, separate from the CLI so tests can build one.
struct Config {
    files: Vec<PathBuf>,
    threads: [usize; 3],
    read_delay: Duration,
    /// `cpu_task` rounds per file in the transform stage.
    transform_rounds: u32,
    queue: usize,
    /// File name whose transform panics (a deliberate bug, for the demo and the tests).
    panic_on: Option<String>,
}

struct Outcome {
    stats: [StageStats; 4],
    wall: Duration,
    result: Result<(Report, u64)>,
}

/// Run the pipeline. Never hangs: on the first failure every stage stops and this returns.
fn run(cfg: &Config, mp: &MultiProgress) -> Outcome {
    let ctx = Ctx {
        cancel: AtomicBool::new(false),
        first_error: Mutex::new(None),
    };
    let stats: [StageStats; 4] = Default::default();
    let n = cfg.files.len() as u64;
    let bars: Vec<ProgressBar> = STAGES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let threads = cfg.threads.get(i).copied().unwrap_or(1);
            let b = mp.add(ProgressBar::new(n).with_style(shared::progress::bar_style()));
            b.set_message(format!("{name} x{threads}"));
            b
        })
        .collect();
    let start = Instant::now();

    let read_delay = cfg.read_delay;
    let read = |path: PathBuf| -> Result<Raw> {
        thread::sleep(read_delay); // simulated latency of slow storage
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        Ok(Raw { name, text })
    };
    let parse_stage = |raw: Raw| -> Result<Parsed> {
        let sales = parse(&raw)?;
        Ok(Parsed {
            name: raw.name,
            sales,
        })
    };
    let rows_parsed = AtomicU64::new(0);
    let count_rows = |p: &Parsed| rows_parsed.fetch_add(p.sales.len() as u64, Ordering::Relaxed);
    let parse_and_count = |raw: Raw| -> Result<Parsed> {
        let p = parse_stage(raw)?;
        count_rows(&p);
        Ok(p)
    };
    let transform_stage = |p: Parsed| -> Result<Enriched> {
        if cfg.panic_on.as_deref() == Some(p.name.as_str()) {
            panic!("transform: simulated bug on {}", p.name);
        }
        transform(p, cfg.transform_rounds)
    };

    let result = thread::scope(|s| -> Result<(Report, u64)> {
        let (path_tx, path_rx) = bounded::<PathBuf>(cfg.files.len().max(1));
        for p in &cfg.files {
            path_tx
                .send(p.clone())
                .expect("the receiver is alive and the queue fits");
        }
        drop(path_tx); // the source is complete: readers stop when it is drained
        let (raw_tx, raw_rx) = bounded::<Raw>(cfg.queue);
        let (parsed_tx, parsed_rx) = bounded::<Parsed>(cfg.queue);
        let (enriched_tx, enriched_rx) = bounded::<Enriched>(cfg.queue);

        let mut handles = Vec::new();
        handles.extend(spawn_stage(
            s,
            "read",
            cfg.threads[0],
            path_rx,
            raw_tx,
            &ctx,
            &stats[0],
            bars[0].clone(),
            &read,
        )?);
        handles.extend(spawn_stage(
            s,
            "parse",
            cfg.threads[1],
            raw_rx,
            parsed_tx,
            &ctx,
            &stats[1],
            bars[1].clone(),
            &parse_and_count,
        )?);
        handles.extend(spawn_stage(
            s,
            "transform",
            cfg.threads[2],
            parsed_rx,
            enriched_tx,
            &ctx,
            &stats[2],
            bars[2].clone(),
            &transform_stage,
        )?);

        // The last stage is one thread on purpose: it owns the report, so it needs no lock.
        let (agg_stats, agg_bar, ctx_ref) = (&stats[3], bars[3].clone(), &ctx);
        let aggregator = thread::Builder::new()
            .name("aggregate".into())
            .spawn_scoped(s, move || {
                let _guard = CancelOnPanic(ctx_ref);
                let mut report = Report::new();
                let mut rows = 0;
                loop {
                    let t = Instant::now();
                    let Ok(e) = enriched_rx.recv() else { break };
                    add(&agg_stats.waiting_ns, t.elapsed());
                    if ctx_ref.cancelled() {
                        break;
                    }
                    agg_stats.items_in.fetch_add(1, Ordering::Relaxed);
                    let t = Instant::now();
                    rows += aggregate(&mut report, e);
                    add(&agg_stats.busy_ns, t.elapsed());
                    agg_stats.items_out.fetch_add(1, Ordering::Relaxed);
                    agg_bar.inc(1);
                }
                (report, rows)
            })
            .context("spawn aggregator")?;

        // Join everything, turning panics into errors (the message is in the payload).
        for h in handles {
            let name = h.thread().name().unwrap_or("stage").to_string();
            if let Err(payload) = h.join() {
                ctx.fail(anyhow!(
                    "thread {name} panicked: {}",
                    panic_message(&payload)
                ));
            }
        }
        let (report, rows) = aggregator
            .join()
            .map_err(|p| anyhow!("thread aggregate panicked: {}", panic_message(&p)))?;
        if let Some(e) = ctx
            .first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return Err(e);
        }
        Ok((report, rows))
    });
    for b in &bars {
        b.finish_and_clear();
    }
    let result = result.and_then(|(report, rows)| {
        let parsed = rows_parsed.load(Ordering::Relaxed);
        if rows != parsed {
            bail!("conservation: {parsed} rows parsed but {rows} aggregated");
        }
        Ok((report, rows))
    });
    Outcome {
        stats,
        wall: start.elapsed(),
        result,
    }
}

fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}

// ---------------------------------------------------------------------------------------------
// Inputs, output, main.
// ---------------------------------------------------------------------------------------------

fn file_name(i: usize) -> String {
    format!("sales-{i:04}.csv")
}

/// Write `files` seeded CSV files; file number `corrupt` gets a malformed row.
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
    for f in 0..files {
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

fn render_report(report: &Report) -> String {
    let mut out = String::from("region,product,rows,qty,revenue_eur,large_orders\n");
    for ((region, product), t) in report {
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

#[derive(Serialize)]
struct Summary {
    ok: bool,
    error: Option<String>,
    files: usize,
    rows: u64,
    wall_s: f64,
    items_per_s: f64,
    bottleneck: &'static str,
    stages: Vec<StageRow>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.readers == 0 || args.parsers == 0 || args.transformers == 0 || args.queue == 0 {
        bail!("every stage needs at least one thread, and queues at least one slot");
    }
    // The generated inputs live in a temporary directory removed at the end (also on error).
    let tmp;
    let dir = match &args.input {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().context("create a temp dir")?;
            generate_inputs(tmp.path(), args.files, args.rows, args.seed, args.fail_at)?;
            tmp.path().to_path_buf()
        }
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("list {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("list {}", dir.display()))?;
    files.retain(|p| p.extension().is_some_and(|e| e == "csv"));
    files.sort();
    let cfg = Config {
        threads: [args.readers, args.parsers, args.transformers],
        read_delay: Duration::from_micros(args.read_us),
        transform_rounds: (args.transform_us as f64 * rounds_per_us()) as u32,
        queue: args.queue,
        panic_on: args.panic_at.map(file_name),
        files,
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

    let mp = shared::progress::multi(args.json);
    let outcome = run(&cfg, &mp);

    let wall = outcome.wall.as_secs_f64().max(1e-9);
    let threads = [args.readers, args.parsers, args.transformers, 1];
    let rows: Vec<StageRow> = STAGES
        .iter()
        .zip(&outcome.stats)
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
        .collect();
    let bottleneck = rows
        .iter()
        .max_by(|a, b| a.utilisation.total_cmp(&b.utilisation))
        .map_or("-", |r| r.stage);
    let done = rows[3].items_out;

    if args.json {
        print_json(&Summary {
            ok: outcome.result.is_ok(),
            error: outcome.result.as_ref().err().map(|e| format!("{e:#}")),
            files: cfg.files.len(),
            rows: outcome.result.as_ref().map_or(0, |(_, r)| *r),
            wall_s: wall,
            items_per_s: done as f64 / wall,
            bottleneck,
            stages: rows,
        });
    } else {
        println!(
            "{:<10} {:>7} {:>6} {:>6} {:>9} {:>9} {:>9} {:>6} {:>9}",
            "stage", "threads", "in", "out", "busy", "waiting", "blocked", "util", "files/s"
        );
        for r in &rows {
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
                if r.stage == bottleneck {
                    "  <- bottleneck"
                } else {
                    ""
                }
            );
        }
        println!(
            "{done} files in {} = {:.0} files/s (busy, waiting and blocked are summed over a stage's threads)",
            fmt_duration(outcome.wall),
            done as f64 / wall
        );
    }

    let (report, rows_total) = outcome.result.context("pipeline stopped")?;
    // Conservation at file level: every file went through every stage exactly once.
    if done != cfg.files.len() as u64 {
        bail!(
            "conservation: {} files in, {done} aggregated",
            cfg.files.len()
        );
    }
    let text = render_report(&report);
    if let Some(out) = &args.out {
        // Write then rename: a reader of `out` never sees a half-written report.
        let tmp = out.with_extension("tmp");
        std::fs::write(&tmp, &text).with_context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, out).with_context(|| format!("rename to {}", out.display()))?;
    }
    if !args.json {
        println!(
            "all {} files and {rows_total} rows conserved through the 4 stages",
            done
        );
        println!(
            "report ({} lines{}):",
            report.len(),
            args.out
                .as_ref()
                .map_or(String::new(), |p| format!(", written to {}", p.display()))
        );
        for line in text.lines().take(6) {
            println!("  {line}");
        }
        if report.len() > 5 {
            println!("  ...");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, threads: [usize; 3]) -> Config {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        Config {
            files,
            threads,
            read_delay: Duration::ZERO,
            transform_rounds: 0,
            queue: 2,
            panic_on: None,
        }
    }

    fn hidden() -> MultiProgress {
        shared::progress::multi(true)
    }

    #[test]
    fn parse_reads_rows_and_reports_bad_ones() {
        let raw = Raw {
            name: "x.csv".into(),
            text: format!("{HEADER}\n2024-01-02,north,phone,USD,3,10.50\n"),
        };
        let sales = parse(&raw).unwrap();
        assert_eq!(sales.len(), 1);
        assert_eq!((sales[0].qty, sales[0].unit_price_cents), (3, 1050));
        let bad = Raw {
            name: "y.csv".into(),
            text: "2024-01-02,north,phone,USD,three,10.50\n".into(),
        };
        let err = format!("{:#}", parse(&bad).unwrap_err());
        assert!(
            err.contains("y.csv line 1") && err.contains("bad quantity"),
            "{err}"
        );
    }

    #[test]
    fn counts_and_quantities_are_conserved_for_any_thread_counts() {
        let dir = tempfile::tempdir().unwrap();
        generate_inputs(dir.path(), 25, 40, 3, None).unwrap();
        // The expected totals, computed without the pipeline.
        let mut expected_qty = 0;
        for i in 0..25 {
            let text = std::fs::read_to_string(dir.path().join(file_name(i))).unwrap();
            let raw = Raw {
                name: file_name(i),
                text,
            };
            expected_qty += parse(&raw).unwrap().iter().map(|s| s.qty).sum::<u64>();
        }
        let mut reference = None;
        for threads in [[1, 1, 1], [3, 2, 4], [1, 4, 1]] {
            let out = run(&config(dir.path(), threads), &hidden());
            let (report, rows) = out.result.unwrap();
            assert_eq!(rows, 25 * 40, "{threads:?}");
            assert_eq!(report.values().map(|t| t.qty).sum::<u64>(), expected_qty);
            for st in &out.stats {
                assert_eq!(st.items_in.load(Ordering::Relaxed), 25, "{threads:?}");
                assert_eq!(st.items_out.load(Ordering::Relaxed), 25, "{threads:?}");
            }
            // Same report whatever the thread counts (aggregation is order-independent).
            match &reference {
                None => reference = Some(report),
                Some(r) => assert_eq!(r, &report, "{threads:?}"),
            }
        }
    }

    /// Run `f` on a thread and fail the test if it does not finish in time (a hang guard, not a
    /// performance assertion: the pipeline normally stops in milliseconds).
    fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || tx.send(f()).unwrap());
        rx.recv_timeout(Duration::from_secs(60))
            .expect("the pipeline hung instead of stopping")
    }

    #[test]
    fn a_stage_panic_stops_the_pipeline_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        generate_inputs(dir.path(), 200, 20, 5, None).unwrap();
        let mut cfg = config(dir.path(), [2, 2, 2]);
        cfg.panic_on = Some(file_name(7));
        let err = within(move || {
            let out = run(&cfg, &hidden());
            format!("{:#}", out.result.unwrap_err())
        });
        assert!(
            err.contains("panicked") && err.contains("sales-0007.csv"),
            "{err}"
        );
    }

    #[test]
    fn a_stage_error_stops_the_pipeline_and_names_the_cause() {
        let dir = tempfile::tempdir().unwrap();
        generate_inputs(dir.path(), 200, 20, 5, Some(3)).unwrap();
        let cfg = config(dir.path(), [1, 3, 1]);
        let (err, aggregated) = within(move || {
            let out = run(&cfg, &hidden());
            let n = out.stats[3].items_out.load(Ordering::Relaxed);
            (format!("{:#}", out.result.unwrap_err()), n)
        });
        assert!(
            err.contains("stage parse failed") && err.contains("sales-0003.csv"),
            "{err}"
        );
        assert!(aggregated < 200, "the pipeline should have stopped early");
    }
}
