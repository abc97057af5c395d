//! The harness of the two image batches, in one place: `image-batch` (rayon threads, in
//! examples-threads) and `image-batch-processes` (worker processes, in examples-processes).
//!
//! Nothing here is concurrent, and nothing here is the lesson: each binary keeps its threads or
//! processes in its own file. What both need around them lives here: the command-line flags,
//! the input folder (a real one or seeded samples), the rule that protects the originals, the
//! job plan, the comparison of two runs and the report, so the two examples measure the very
//! same batch and print it the same way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::cli;
use crate::images::{self, SampleSpec};
use crate::report::{fmt_bytes, fmt_duration, fmt_rate};
use crate::thumbnail::{self, OutputFormat, ThumbInfo, ThumbOptions};

/// The flags both batches take (`#[command(flatten)]` in each binary's `Args`).
#[derive(clap::Args, Debug, Clone)]
pub struct BatchArgs {
    /// Folder of images (default: generate sample images into a temporary folder).
    pub in_dir: Option<PathBuf>,
    /// Where thumbnails go, with the same relative paths (default: a new temporary folder,
    /// kept). Must not be IN_DIR and must not contain it.
    pub out_dir: Option<PathBuf>,
    /// Also process sub-folders (a sub-folder that cannot be read is reported, not fatal).
    #[arg(long)]
    pub recursive: bool,
    /// Thumbnail box: `256` (square) or `WxH`; aspect ratio is kept, images are never enlarged.
    #[arg(long, default_value = "256", value_parser = parse_size)]
    pub size: (u32, u32),
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Jpeg)]
    pub format: Format,
    /// JPEG quality (1-100).
    #[arg(long, default_value_t = 85, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub quality: u8,
    /// Convert to grayscale.
    #[arg(long)]
    pub grayscale: bool,
    /// Gaussian blur of the thumbnail (sigma in thumbnail pixels, up to 100).
    #[arg(long, value_name = "SIGMA", value_parser = cli::f64_in(0.0, MAX_BLUR))]
    pub blur: Option<f64>,
    /// Decode JPEGs in full instead of at 1/4 or 1/8 scale (to measure what scaling saves).
    #[arg(long)]
    pub full_decode: bool,
    /// Refuse images with more megapixels than this (checked from the header, before decoding).
    #[arg(long, default_value_t = 100.0, value_parser = cli::f64_in(0.01, MAX_MEGAPIXELS))]
    pub max_megapixels: f64,
    /// Decode budget, in MiB: images are admitted while their estimated decoded size fits; an
    /// image larger than the whole budget runs alone.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MEMORY_BUDGET_MIB,
          value_parser = cli::u64_in(16, 1 << 20))]
    pub memory_budget: u64,
    /// Generate the sample images into this folder and keep them (to run the Python peer on
    /// the very same files). Ignored when IN_DIR is given.
    #[arg(long, visible_alias = "keep-samples", value_name = "DIR")]
    pub samples_dir: Option<PathBuf>,
    /// Number of sample images to generate.
    #[arg(long, default_value_t = 50, value_parser = cli::usize_in(0, 10_000))]
    pub count: usize,
    /// Seed of the sample images.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Largest sample image, in megapixels (small values make quick runs).
    #[arg(long, value_name = "MP", default_value_t = SampleSpec::default().max_mp,
          value_parser = cli::f64_in(0.01, 50.0))]
    pub sample_max_mp: f64,
    /// Add broken files to the generated samples (empty, truncated, text, huge dimensions).
    #[arg(long)]
    pub with_broken: bool,
    /// Print the results as one JSON object (no progress bar).
    #[arg(long)]
    pub json: bool,
    /// Also run the course's Python version (examples-threads/python/image_batch.py:
    /// `multiprocessing.Pool` + Pillow's `thumbnail()`) on the same folder with as many worker
    /// processes, into a temporary folder, and check that it writes the same files with the same
    /// dimensions. Needs python3 and Pillow (`pip install Pillow`).
    #[arg(long)]
    pub python: bool,
}

/// Largest `--blur` sigma: the kernel is 6σ wide, and more than a thumbnail's width is a grey
/// square anyway.
const MAX_BLUR: f64 = 100.0;
/// Largest `--max-megapixels`: 1,000 MP would be 4 GB decoded, per image.
const MAX_MEGAPIXELS: f64 = 1_000.0;
/// The default decode budget: a hundred 12 MP photos decoded at 1/4 scale at once, or one
/// 16-bit 100 MP PNG (1.2 GB) alone.
pub const DEFAULT_MEMORY_BUDGET_MIB: u64 = 1024;

/// Output format of `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Jpeg,
    Png,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let parse = |v: &str| match v.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_SIDE).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{s}`: expected a size like 256 or 320x200 (1 to {MAX_SIDE} pixels a side)"
        )),
    };
    match s.split_once(['x', 'X']) {
        Some((w, h)) => Ok((parse(w)?, parse(h)?)),
        None => parse(s).map(|n| (n, n)),
    }
}

/// Largest thumbnail side (JPEG's own limit is 65,535).
const MAX_SIDE: u32 = 16_384;

impl BatchArgs {
    /// The per-image options these flags describe.
    pub fn thumb_options(&self) -> ThumbOptions {
        ThumbOptions {
            max_width: self.size.0,
            max_height: self.size.1,
            format: match self.format {
                Format::Jpeg => OutputFormat::Jpeg {
                    quality: self.quality,
                },
                Format::Png => OutputFormat::Png,
            },
            grayscale: self.grayscale,
            // Validated to 0..=100 by clap: exact in f32.
            blur: self.blur.map(|b| b as f32),
            // Validated to at most 1,000 MP: no overflow.
            max_pixels: (self.max_megapixels * 1e6) as u64,
            scaled_decode: !self.full_decode,
        }
    }

    /// `--memory-budget` in bytes.
    pub fn memory_budget_bytes(&self) -> u64 {
        self.memory_budget.saturating_mul(1 << 20)
    }

    fn sample_spec(&self) -> SampleSpec {
        let defaults = SampleSpec::default();
        SampleSpec {
            count: self.count,
            seed: self.seed,
            min_mp: defaults.min_mp.min(self.sample_max_mp),
            max_mp: self.sample_max_mp,
            ..defaults
        }
    }
}

/// The input and output folders of a run, both canonical.
#[derive(Debug)]
pub struct BatchFolders {
    pub in_dir: PathBuf,
    pub out_dir: PathBuf,
    /// Deletes generated samples at the end (unless `--samples-dir` asked to keep them).
    _samples: Option<tempfile::TempDir>,
}

impl BatchFolders {
    /// IN_DIR, or seeded samples generated into `--samples-dir` or a temporary folder; OUT_DIR,
    /// or a new temporary folder named after `tool` (kept, and reported). Refuses an OUT_DIR
    /// that could overwrite an input (see [`check_no_overlap`]).
    pub fn prepare(args: &BatchArgs, tool: &str) -> anyhow::Result<BatchFolders> {
        let mut samples = None;
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
                        samples = Some(t);
                        p
                    }
                };
                generate_samples(&dir, args)?;
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
                .prefix(&format!("{tool}-thumbs-"))
                .tempdir()
                .context("creating a temporary output folder")?
                .keep(),
        };
        check_no_overlap(&in_dir, &out_dir)?;
        Ok(BatchFolders {
            in_dir,
            out_dir,
            _samples: samples,
        })
    }
}

fn generate_samples(dir: &Path, args: &BatchArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let files = images::generate_folder(dir, &args.sample_spec())?;
    let broken = if args.with_broken {
        images::write_broken_files(dir)?.len()
    } else {
        0
    };
    if !args.json {
        println!(
            "generated {} sample images (seed {}){} in {} [{}]",
            files.len(),
            args.seed,
            if broken > 0 {
                format!(" + {broken} broken files")
            } else {
                String::new()
            },
            dir.display(),
            fmt_duration(started.elapsed())
        );
    }
    Ok(())
}

/// Everything a batch needs before its first image: the stop flag, the folders and the plan.
#[derive(Debug)]
pub struct PreparedBatch {
    /// Set on the first Ctrl-C or SIGTERM (see [`crate::shutdown::stop_flag_on_ctrl_c`]).
    pub stop: Arc<AtomicBool>,
    pub folders: BatchFolders,
    pub plan: BatchPlan,
}

impl PreparedBatch {
    /// In this order: installs the Ctrl-C/SIGTERM handler (so a signal during sample generation
    /// stops cleanly instead of killing the process mid-write), prepares the folders
    /// ([`BatchFolders::prepare`]), plans the jobs ([`plan_batch`]), and registers the cleanup
    /// of a forced exit (a second signal does not wait for the images in flight: their
    /// temporary files are removed on the way out).
    pub fn prepare(args: &BatchArgs, tool: &str, order: JobOrder) -> anyhow::Result<Self> {
        let stop = crate::shutdown::stop_flag_on_ctrl_c()?;
        let folders = BatchFolders::prepare(args, tool)?;
        let plan = plan_batch(&folders, args, order)?;
        let out_dir = folders.out_dir.clone();
        crate::shutdown::on_forced_exit(move || remove_partial_outputs(&out_dir));
        Ok(PreparedBatch {
            stop,
            folders,
            plan,
        })
    }
}

/// What a decode budget saw, for `--json` (each lesson has its own stats type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BudgetFigures {
    pub capacity_bytes: u64,
    /// Most bytes admitted at once.
    pub peak_bytes: u64,
    /// Admissions that waited for memory.
    pub waits: u64,
    /// Images larger than the whole budget (each ran alone).
    pub oversized: u64,
}

impl BudgetFigures {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// One line for the text report, when the budget made anything wait.
    pub fn print(&self) {
        if self.waits > 0 {
            println!(
                "decode budget {}: {} image(s) waited for memory, {} ran alone (larger than the budget)",
                fmt_bytes(self.capacity_bytes),
                self.waits,
                self.oversized
            );
        }
    }
}

/// Refuses output folders that could overwrite an input: the same folder, or a folder that
/// contains the input folder (with `--recursive`, `in/sub/x.jpg` would be written to
/// `out/sub/x.jpg`, which may be another input). An output folder *inside* the input folder is
/// fine: it is excluded from the walk.
pub fn check_no_overlap(in_dir: &Path, out_dir: &Path) -> anyhow::Result<()> {
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

/// One image to process. Planned up front so that two runs (threads and processes, parallel and
/// sequential) do exactly the same work, and output collisions are caught before anything is
/// written.
#[derive(Debug, Clone)]
pub struct BatchJob {
    pub input: PathBuf,
    /// Output path relative to the output folder.
    pub rel_output: PathBuf,
    /// [`thumbnail::estimated_peak_bytes`]: what the decode budget admits it by.
    pub decode_bytes: u64,
}

/// A file the batch could not process, with a stable `kind` for JSON (`decode`, `collision`,
/// `listing`, `worker_crash`, …) and a reason without the path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ItemFailure {
    pub path: PathBuf,
    pub kind: String,
    pub reason: String,
}

/// The jobs of a run, and the paths refused before it starts.
#[derive(Debug)]
pub struct BatchPlan {
    pub jobs: Vec<BatchJob>,
    /// Colliding outputs, sub-folders that cannot be listed, image names that are not files.
    pub refused: Vec<ItemFailure>,
}

/// In which order the jobs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOrder {
    /// Largest files first (`ls -S`): whatever runs last is small, so no core is left alone
    /// with a big image at the end.
    LargestFirst,
    /// Name order: a big image may start last (the tail effect).
    Name,
}

/// Lists the images of the input folder (an unreadable sub-folder is refused, not fatal), maps
/// each to its output, estimates its decode cost, and orders the jobs.
pub fn plan_batch(
    folders: &BatchFolders,
    args: &BatchArgs,
    order: JobOrder,
) -> anyhow::Result<BatchPlan> {
    let listing = thumbnail::list_images(&folders.in_dir, args.recursive)
        .with_context(|| format!("listing {}", folders.in_dir.display()))?;
    let mut inputs = listing.images;
    // OUT_DIR may live inside IN_DIR: never take our own outputs as inputs.
    inputs.retain(|p| !p.starts_with(&folders.out_dir));
    let opts = args.thumb_options();
    let (mut jobs, mut refused) = plan_jobs(&folders.in_dir, &inputs, opts.format);
    for job in &mut jobs {
        job.decode_bytes = thumbnail::estimated_peak_bytes(&job.input, &opts);
    }
    refused.extend(
        listing
            .problems
            .into_iter()
            .filter(|p| !p.path.starts_with(&folders.out_dir))
            .map(|p| ItemFailure {
                path: p.path,
                kind: p.kind.into(),
                reason: p.reason,
            }),
    );
    if order == JobOrder::LargestFirst {
        // File size is a cheap proxy for cost.
        jobs.sort_by_cached_key(|j| {
            std::cmp::Reverse(std::fs::metadata(&j.input).map_or(0, |m| m.len()))
        });
    }
    Ok(BatchPlan { jobs, refused })
}

/// Maps every input to its output path; two inputs that would write the same output are both
/// refused instead of racing for the file.
fn plan_jobs(
    in_dir: &Path,
    inputs: &[PathBuf],
    format: OutputFormat,
) -> (Vec<BatchJob>, Vec<ItemFailure>) {
    let rel = |input: &Path| thumbnail::output_path(in_dir, Path::new(""), input, format);
    let mut by_output: HashMap<PathBuf, Vec<&PathBuf>> = HashMap::new();
    for input in inputs {
        by_output.entry(rel(input)).or_default().push(input);
    }
    let mut jobs = Vec::new();
    let mut collisions = Vec::new();
    for input in inputs {
        let rel_output = rel(input);
        let same = &by_output[&rel_output];
        if same.len() == 1 {
            jobs.push(BatchJob {
                input: input.clone(),
                rel_output,
                decode_bytes: 0,
            });
        } else {
            let others: Vec<String> = same
                .iter()
                .filter(|p| **p != input)
                .map(|p| p.display().to_string())
                .collect();
            collisions.push(ItemFailure {
                path: input.clone(),
                kind: "collision".into(),
                reason: format!(
                    "output {} would also be written for {}",
                    rel_output.display(),
                    others.join(", ")
                ),
            });
        }
    }
    (jobs, collisions)
}

/// What one finished thumbnail reports (the part of [`ThumbInfo`] that crosses a pipe).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemDone {
    pub src_w: u32,
    pub src_h: u32,
    pub decoded_w: u32,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl ItemDone {
    pub fn megapixels(&self) -> f64 {
        f64::from(self.src_w) * f64::from(self.src_h) / 1e6
    }
}

impl From<&ThumbInfo> for ItemDone {
    fn from(i: &ThumbInfo) -> ItemDone {
        ItemDone {
            src_w: i.src_w,
            src_h: i.src_h,
            decoded_w: i.decoded_w,
            bytes_in: i.bytes_in,
            bytes_out: i.bytes_out,
        }
    }
}

/// What happened to one job, whichever way it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemResult {
    /// Done by thread (or worker slot) number `lane`.
    Done {
        done: ItemDone,
        lane: usize,
    },
    Failed {
        kind: String,
        reason: String,
    },
    /// Stopped (Ctrl-C, SIGTERM) before it started.
    Cancelled,
}

/// True if both runs succeeded and failed on the same images and wrote the same bytes.
/// Differences are listed on stderr.
pub fn same_results(
    jobs: &[BatchJob],
    a: &[ItemResult],
    a_dir: &Path,
    b: &[ItemResult],
    b_dir: &Path,
) -> anyhow::Result<bool> {
    let mut same = true;
    for ((job, x), y) in jobs.iter().zip(a).zip(b) {
        match (x, y) {
            (ItemResult::Done { .. }, ItemResult::Done { .. }) => {
                let read = |d: &Path| {
                    let p = d.join(&job.rel_output);
                    std::fs::read(&p).with_context(|| format!("reading {}", p.display()))
                };
                if read(a_dir)? != read(b_dir)? {
                    eprintln!("differs: {}", job.rel_output.display());
                    same = false;
                }
            }
            (ItemResult::Failed { kind: k1, .. }, ItemResult::Failed { kind: k2, .. })
                if k1 == k2 => {}
            (ItemResult::Cancelled, _) | (_, ItemResult::Cancelled) => {}
            _ => {
                eprintln!("different outcome: {}", job.input.display());
                same = false;
            }
        }
    }
    Ok(same)
}

/// How a run names its lanes: `("threads", "per_thread", "thread thumb-")` for rayon threads.
#[derive(Debug, Clone, Copy)]
pub struct Lanes {
    /// How many.
    pub count: usize,
    /// JSON key of the count (`threads`, `workers`).
    pub count_key: &'static str,
    /// JSON key of the per-lane figures (`per_thread`, `per_worker`).
    pub per_lane_key: &'static str,
    /// Printed before a lane's number (`thread thumb-`, `worker slot-`).
    pub label: &'static str,
}

/// The totals of one run: what the report prints and `--json` says.
#[derive(Debug)]
pub struct BatchReport {
    ok: Vec<ItemDone>,
    failures: Vec<ItemFailure>,
    cancelled: usize,
    /// Images and megapixels per lane.
    per_lane: Vec<(usize, f64)>,
    lanes: Lanes,
    wall: Duration,
    cpu: Duration,
}

impl BatchReport {
    pub fn new(
        plan: &BatchPlan,
        results: &[ItemResult],
        lanes: Lanes,
        wall: Duration,
        cpu: Duration,
    ) -> BatchReport {
        let mut r = BatchReport {
            ok: Vec::new(),
            failures: plan.refused.clone(),
            cancelled: 0,
            per_lane: vec![(0, 0.0); lanes.count],
            lanes,
            wall,
            cpu,
        };
        for (job, result) in plan.jobs.iter().zip(results) {
            match result {
                ItemResult::Done { done, lane } => {
                    if let Some(l) = r.per_lane.get_mut(*lane) {
                        l.0 += 1;
                        l.1 += done.megapixels();
                    }
                    r.ok.push(done.clone());
                }
                ItemResult::Failed { kind, reason } => r.failures.push(ItemFailure {
                    path: job.input.clone(),
                    kind: kind.clone(),
                    reason: reason.clone(),
                }),
                ItemResult::Cancelled => r.cancelled += 1,
            }
        }
        r.failures.sort();
        r
    }

    pub fn failed(&self) -> usize {
        self.failures.len()
    }
    pub fn cancelled(&self) -> usize {
        self.cancelled
    }
    fn megapixels(&self) -> f64 {
        self.ok.iter().map(ItemDone::megapixels).sum()
    }
    fn bytes_in(&self) -> u64 {
        self.ok.iter().map(|i| i.bytes_in).sum()
    }
    fn bytes_out(&self) -> u64 {
        self.ok.iter().map(|i| i.bytes_out).sum()
    }
    fn scaled(&self) -> usize {
        self.ok.iter().filter(|i| i.decoded_w < i.src_w).count()
    }

    pub fn print(&self, folders: &BatchFolders) {
        let in_dir = &folders.in_dir;
        let rel = |p: &Path| p.strip_prefix(in_dir).unwrap_or(p).display().to_string();
        if !self.failures.is_empty() {
            println!(
                "{} file(s) FAILED (skipped, no output written):",
                self.failed()
            );
            let width = self
                .failures
                .iter()
                .map(|f| rel(&f.path).len())
                .max()
                .unwrap_or(0);
            for f in &self.failures {
                println!("  {:width$}  {}", rel(&f.path), f.reason);
            }
        }
        let cancelled = if self.cancelled > 0 {
            format!(", {} cancelled (interrupted)", self.cancelled)
        } else {
            String::new()
        };
        println!(
            "ok {}, failed {}{cancelled} in {} (cpu {}, {} {})",
            self.ok.len(),
            self.failed(),
            fmt_duration(self.wall),
            fmt_duration(self.cpu),
            self.lanes.count,
            self.lanes.count_key,
        );
        println!(
            "throughput: {}, {}, {}  ({:.1} MP, {} read; {}/{} decoded at reduced scale)",
            fmt_rate(self.ok.len() as f64, self.wall, "images"),
            fmt_rate(self.megapixels(), self.wall, "MP"),
            fmt_rate(self.bytes_in() as f64 / 1e6, self.wall, "MB"),
            self.megapixels(),
            fmt_bytes(self.bytes_in()),
            self.scaled(),
            self.ok.len(),
        );
        println!(
            "thumbnails: {} in {}",
            fmt_bytes(self.bytes_out()),
            folders.out_dir.display()
        );
        for (i, (n, mp)) in self.per_lane.iter().enumerate() {
            println!("  {}{i}: {n:3} images, {mp:7.1} MP", self.lanes.label);
        }
    }

    pub fn to_json(&self, folders: &BatchFolders) -> serde_json::Value {
        let secs = self.wall.as_secs_f64().max(1e-9);
        let mut v = serde_json::json!({
            "in_dir": folders.in_dir,
            "out_dir": folders.out_dir,
            "images": self.ok.len() + self.failed() + self.cancelled,
            "ok": self.ok.len(),
            "failed": self.failed(),
            "cancelled": self.cancelled,
            "megapixels": self.megapixels(),
            "bytes_in": self.bytes_in(),
            "bytes_out": self.bytes_out(),
            "scaled_decodes": self.scaled(),
            "wall_s": self.wall.as_secs_f64(),
            "cpu_s": self.cpu.as_secs_f64(),
            "images_per_s": self.ok.len() as f64 / secs,
            "mp_per_s": self.megapixels() / secs,
            "mb_per_s": self.bytes_in() as f64 / 1e6 / secs,
            "failures": self.failures.iter().map(|f| serde_json::json!({
                "path": f.path, "kind": f.kind, "reason": f.reason,
            })).collect::<Vec<_>>(),
        });
        v[self.lanes.count_key] = self.lanes.count.into();
        v[self.lanes.per_lane_key] = self
            .per_lane
            .iter()
            .map(|(n, mp)| serde_json::json!({"images": n, "megapixels": mp}))
            .collect();
        v
    }
}

/// The course's Python version of both batches, run by `--python`.
pub const PYTHON_RECIPE: &str = "examples-threads/python/image_batch.py";

/// What the course's Python version did on the same folder, and where it differs from ours.
#[derive(Debug)]
pub struct PythonBatch {
    /// `Python 3.11.7, Pillow 13.0.0`
    pub version: String,
    pub workers: usize,
    /// Timed inside Python: the pool's start, the work and the pool's end, not the interpreter's.
    pub wall: Duration,
    /// Every worker's CPU time included.
    pub cpu: Duration,
    pub ok: usize,
    pub failed: usize,
    /// Outputs only one side wrote, and thumbnails whose dimensions differ.
    pub differences: Vec<String>,
}

impl PythonBatch {
    /// python3 with Pillow, or an error that says what to install.
    pub fn find() -> anyhow::Result<crate::python::Python> {
        crate::python::Python::find(&["PIL"])
    }

    /// Runs the recipe on `folders.in_dir` with the flags of `args` and `workers` processes, into
    /// a temporary folder, then compares its files with the `results` our run wrote under
    /// `folders.out_dir`: the same names, and each thumbnail the same width and height (read
    /// back from the files, not taken from either side's word).
    pub fn run(
        py: &crate::python::Python,
        args: &BatchArgs,
        folders: &BatchFolders,
        plan: &BatchPlan,
        results: &[ItemResult],
        workers: usize,
    ) -> anyhow::Result<PythonBatch> {
        let scratch = tempfile::Builder::new()
            .prefix("image-batch-python-")
            .tempdir()
            .context("creating a scratch folder for the Python run")?;
        let mut cli: Vec<String> = vec![
            folders.in_dir.display().to_string(),
            scratch.path().display().to_string(),
            "--workers".into(),
            workers.to_string(),
            "--size".into(),
            format!("{}x{}", args.size.0, args.size.1),
            "--format".into(),
            match args.format {
                Format::Jpeg => "jpeg".into(),
                Format::Png => "png".into(),
            },
            "--quality".into(),
            args.quality.to_string(),
            "--max-megapixels".into(),
            args.max_megapixels.to_string(),
        ];
        if let Some(sigma) = args.blur {
            cli.extend(["--blur".into(), sigma.to_string()]);
        }
        cli.extend(args.grayscale.then(|| "--grayscale".into()));
        cli.extend(args.recursive.then(|| "--recursive".into()));
        let cli: Vec<&str> = cli.iter().map(String::as_str).collect();
        let out = py.run_recipe(PYTHON_RECIPE, &cli)?;
        let json = &out.json;
        let secs = |key: &str| {
            json[key]
                .as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
                .with_context(|| format!("the recipe's {key:?} is not a duration: {}", json[key]))
        };
        let theirs: std::collections::BTreeSet<PathBuf> = json["outputs"]
            .as_object()
            .context("the recipe reported no \"outputs\" object")?
            .keys()
            .map(PathBuf::from)
            .collect();
        let ours: std::collections::BTreeSet<PathBuf> = plan
            .jobs
            .iter()
            .zip(results)
            .filter(|(_, r)| matches!(r, ItemResult::Done { .. }))
            .map(|(job, _)| job.rel_output.clone())
            .collect();
        let mut differences = Vec::new();
        for only in ours.difference(&theirs) {
            differences.push(format!("{}: written by Rust only", only.display()));
        }
        for only in theirs.difference(&ours) {
            differences.push(format!("{}: written by Python only", only.display()));
        }
        for rel in ours.intersection(&theirs) {
            let size = |dir: &Path| {
                let p = dir.join(rel);
                image::image_dimensions(&p).with_context(|| format!("reading {}", p.display()))
            };
            let (a, b) = (size(&folders.out_dir)?, size(scratch.path())?);
            if a != b {
                differences.push(format!(
                    "{}: Rust {}x{}, Python {}x{}",
                    rel.display(),
                    a.0,
                    a.1,
                    b.0,
                    b.1
                ));
            }
        }
        let failed = json["failed"].as_object().map_or(0, |f| f.len());
        Ok(PythonBatch {
            version: format!(
                "{}, Pillow {}",
                py.version,
                json["pillow"].as_str().unwrap_or("?")
            ),
            workers,
            wall: secs("wall_s")?,
            cpu: secs("cpu_s")?,
            ok: theirs.len(),
            failed,
            differences,
        })
    }

    /// Same files, same dimensions.
    pub fn agrees(&self) -> bool {
        self.differences.is_empty()
    }

    /// Its row in a [`crate::report::SpeedupTable`], with its time against `rust_wall`.
    pub fn row(&self, rust_wall: Duration) -> crate::report::Row {
        let ratio = self.wall.as_secs_f64() / rust_wall.as_secs_f64().max(1e-9);
        crate::report::Row::new(format!("Python Pool({}) + Pillow", self.workers), self.wall)
            .cpu(self.cpu)
            .agrees(self.agrees())
            .note(format!(
                "{}: {ratio:.2}x our time; {} ok, {} failed",
                self.version, self.ok, self.failed
            ))
    }

    pub fn to_json(&self, rust_wall: Duration) -> serde_json::Value {
        serde_json::json!({
            "version": self.version,
            "workers": self.workers,
            "wall_s": self.wall.as_secs_f64(),
            "cpu_s": self.cpu.as_secs_f64(),
            "ok": self.ok,
            "failed": self.failed,
            "same_files_and_dimensions": self.agrees(),
            "differences": self.differences,
            "time_vs_rust": self.wall.as_secs_f64() / rust_wall.as_secs_f64().max(1e-9),
        })
    }

    /// The differences, one per line on stderr (at most 20).
    pub fn print_differences(&self) {
        for d in self.differences.iter().take(20) {
            eprintln!("python differs: {d}");
        }
        if self.differences.len() > 20 {
            eprintln!("… and {} more", self.differences.len() - 20);
        }
    }
}

/// The exit status of a batch: 130 when interrupted (as a shell reports Ctrl-C), 1 when a file
/// failed or two runs disagreed, 0 otherwise.
pub fn exit_code(interrupted: bool, report: &BatchReport, identical: Option<bool>) -> ExitCode {
    if interrupted {
        ExitCode::from(130)
    } else if report.failed() > 0 || identical == Some(false) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Deletes the temporary files of thumbnails being written under `out_dir` (see
/// [`thumbnail::is_partial_output`]). For a forced exit (a second Ctrl-C), which does not wait
/// for the images in flight: best effort, errors are ignored.
pub fn remove_partial_outputs(out_dir: &Path) {
    let mut pending = vec![out_dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(path);
            } else if thumbnail::is_partial_output(&path) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct TestArgs {
        #[command(flatten)]
        batch: BatchArgs,
    }

    fn parse(args: &[&str]) -> Result<BatchArgs, clap::Error> {
        TestArgs::try_parse_from(std::iter::once("x").chain(args.iter().copied())).map(|a| a.batch)
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("256"), Ok((256, 256)));
        assert_eq!(parse_size("320x200"), Ok((320, 200)));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12xq").is_err());
        assert!(parse_size("99999").is_err());
    }

    #[test]
    fn hostile_numbers_are_refused_by_clap() {
        for bad in ["0", "-1", "NaN", "inf", "1e30", "18446744073709551615"] {
            for flag in [
                "--max-megapixels",
                "--memory-budget",
                "--size",
                "--sample-max-mp",
            ] {
                assert!(parse(&[flag, bad]).is_err(), "{flag} {bad} accepted");
            }
            if bad != "0" {
                assert!(parse(&["--blur", bad]).is_err(), "--blur {bad} accepted");
                assert!(parse(&["--count", bad]).is_err(), "--count {bad} accepted");
            }
        }
        let ok = parse(&["--blur", "1.5", "--memory-budget", "64"]).unwrap();
        assert_eq!(ok.thumb_options().blur, Some(1.5));
        assert_eq!(ok.memory_budget_bytes(), 64 << 20);
    }

    #[test]
    fn overlapping_folders_are_refused() {
        let (a, b) = (Path::new("/x/in"), Path::new("/x/in/thumbs"));
        assert!(check_no_overlap(a, a).is_err());
        assert!(check_no_overlap(a, Path::new("/x")).is_err()); // out contains in
        assert!(check_no_overlap(a, b).is_ok()); // out inside in: excluded from the walk
        assert!(check_no_overlap(a, Path::new("/y")).is_ok());
    }

    #[test]
    fn colliding_outputs_are_reported_not_raced() {
        let d = Path::new("/in");
        let inputs = vec![
            d.join("a.jpg"),
            d.join("a.JPG"),
            d.join("b.png"),
            d.join("b.png.jpg"),
        ];
        let (jobs, collisions) = plan_jobs(d, &inputs, OutputFormat::Jpeg { quality: 85 });
        assert_eq!(jobs.len(), 2);
        assert_eq!(collisions.len(), 2, "{collisions:?}");
        assert!(
            collisions
                .iter()
                .all(|f| f.kind == "collision" && f.path.to_str().unwrap().contains("b.png"))
        );
    }

    #[test]
    fn the_report_counts_every_job_once() {
        let plan = BatchPlan {
            jobs: ["a.jpg", "b.jpg", "c.jpg"]
                .iter()
                .map(|n| BatchJob {
                    input: PathBuf::from(n),
                    rel_output: PathBuf::from(n),
                    decode_bytes: 0,
                })
                .collect(),
            refused: vec![ItemFailure {
                path: "sub".into(),
                kind: "listing".into(),
                reason: "cannot list the folder".into(),
            }],
        };
        let done = ItemDone {
            src_w: 1000,
            src_h: 1000,
            decoded_w: 250,
            bytes_in: 10,
            bytes_out: 1,
        };
        let results = [
            ItemResult::Done { done, lane: 1 },
            ItemResult::Failed {
                kind: "decode".into(),
                reason: "bad".into(),
            },
            ItemResult::Cancelled,
        ];
        let lanes = Lanes {
            count: 2,
            count_key: "threads",
            per_lane_key: "per_thread",
            label: "thread thumb-",
        };
        let r = BatchReport::new(&plan, &results, lanes, Duration::ZERO, Duration::ZERO);
        assert_eq!((r.ok.len(), r.failed(), r.cancelled()), (1, 2, 1));
        let folders = BatchFolders {
            in_dir: "/in".into(),
            out_dir: "/out".into(),
            _samples: None,
        };
        let v = r.to_json(&folders);
        assert_eq!(v["images"], 4);
        assert_eq!(v["threads"], 2);
        assert_eq!(v["per_thread"][1]["images"], 1);
        assert_eq!(v["scaled_decodes"], 1);
        assert_eq!(exit_code(false, &r, None), ExitCode::from(1));
        assert_eq!(exit_code(true, &r, None), ExitCode::from(130));
    }
}
