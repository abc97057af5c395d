//! Image batch: a thumbnail for every image of a folder, one image per core, with rayon.
//!
//! Course section **8.1 — Threading et multiprocessing**: "Traiter chaque image d'un dossier sur
//! un cœur différent", the course's textbook case for `multiprocessing.Pool`. In Python the GIL
//! forces one process per core, and every task crosses a pipe (the path goes in, the result comes
//! back pickled). In Rust the same job is `jobs.par_iter().map(thumbnail).collect()`: threads
//! share the job list and the options by reference, results come back as ordinary values, and an
//! error in one image is just an `Err` in the result vector.
//!
//! Why rayon rather than a hand-made pool: the images are *mixed* — a 12-megapixel photo costs
//! 20× a 0.5 MP one. A static split (half of the files to each core) leaves one core idle while
//! the other finishes its big images. Rayon splits the list lazily and an idle thread *steals*
//! half of another thread's remaining range (work stealing), so both cores stay busy until the
//! end, with no queue or channel to write. `Pool.map(chunksize=1)` gets the same balance in
//! Python, at the price of one pipe round trip per image.
//!
//! # Concepts
//! - Data parallelism with `par_iter()`: the loop body is the same as the sequential one.
//! - A local pool (`rayon::ThreadPoolBuilder` + `install`) sized by `--threads`, instead of the
//!   global one: a library should not decide how many cores the whole program uses.
//! - Work stealing: per-thread counts at the end show each thread processed a different number
//!   of images but similar megapixels.
//! - Errors as values: broken files become `Err` entries, reported with their path; the batch
//!   never stops, never leaves partial output, and exits with code 1 if anything failed.
//! - Cooperative cancellation: Ctrl-C sets a flag; images not started yet are skipped, images in
//!   flight finish (their output is written atomically), then the program exits 130.
//! - Determinism: `--sequential` runs the same batch on one thread first, prints the speedup and
//!   checks that both runs wrote byte-identical files.
//!
//! # Run
//! ```text
//! cargo run --release -p examples-threads --bin image-batch                     # 50 seeded samples
//! cargo run --release -p examples-threads --bin image-batch -- --sequential     # + speedup table
//! cargo run --release -p examples-threads --bin image-batch -- --threads 1      # one core
//! cargo run --release -p examples-threads --bin image-batch -- --with-broken    # bad files: exit 1
//! cargo run --release -p examples-threads --bin image-batch -- ~/Photos /tmp/thumbs --recursive
//! cargo run --release -p examples-threads --bin image-batch -- --size 320x200 --format png --grayscale --blur 1.5
//! cargo run --release -p examples-threads --bin image-batch -- --samples-dir /tmp/samples   # keep the inputs
//! cargo run --release -p examples-threads --bin image-batch -- --json
//! ```
//! (Always `--release` for timings: a debug build is 10-50× slower.)
//!
//! # What to observe
//! - `--sequential` on 2 cores: speedup ~1.8-1.9×, `cpu` about the same in both rows (parallelism
//!   spends the same CPU time, in less wall time), and `agrees: yes` (identical bytes).
//! - The per-thread lines: counts differ (4 big images vs 20 small ones), megapixels are close.
//! - `--name-order` instead of the default largest-first order: the run ends with one core
//!   alone on a late big image (compare the wall times, and the per-thread megapixels).
//! - `--full-decode` (no scaled JPEG decoding): 2-3× slower on big JPEGs. That one trick is
//!   most of Pillow's speed.
//! - `--with-broken`: each bad file is listed with its reason (empty, truncated, not an image,
//!   100000×100000 declared in the header), no output for it, the rest processed, exit code 1.
//! - `top -H` in another terminal: two busy `image-batch` threads, not two processes.
//!
//! # Exercises
//! 1. Replace `par_iter()` by a static split: `std::thread::scope` with
//!    `jobs.chunks(jobs.len().div_ceil(2))`. Compare with and without `--name-order`. Why is
//!    largest-first order the *worst* case for a static split and the best one for rayon?
//! 2. Add `--max-mp` to skip images above a size, reported as failures with their own reason.
//! 3. Write the JPEG outputs with progressive encoding (`jpeg_encoder::Encoder::set_progressive`)
//!    behind a flag. Are the outputs still identical between `--sequential` and parallel? Why?
//! 4. Apply the EXIF orientation (photos taken in portrait) before resizing. Where in
//!    `shared::thumbnail` does it belong, and what does Pillow do (`ImageOps.exif_transpose`)?
//! 5. Run with `--threads 4` on 2 cores: throughput stays flat but memory grows. Why? What does
//!    that tell you about sizing a pool for CPU-bound work?
//!
//! # The per-image path, and Pillow
//! Why this per-image path (in `shared::thumbnail`, measured in `shared/notes-image-pipeline.md`):
//! Pillow's `thumbnail()` is fast because it asks libjpeg to decode big JPEGs at 1/2, 1/4 or 1/8
//! scale (`draft()`), skipping most of the decoding. We do the same with `jpeg-decoder`'s scaled
//! decode (at 1/4 or less; zune-jpeg's full decode wins at 1/2), then a SIMD Lanczos3 resize
//! (`fast_image_resize`) and a SIMD JPEG encoder (`jpeg-encoder`). With the `image` crate's
//! defaults instead, Rust on 2 threads is *slower* than Pillow on 2 processes.
//!
//! - The Pillow peer on the same inputs (keep them with `--samples-dir /tmp/samples`):
//!   `python3 ../shared/peers/py_image_batch.py /tmp/samples /tmp/py-thumbs --workers 2`.
//! - Against the Pillow peer on the same folder with 2 workers: ~1.6× the throughput here
//!   (PNGs ~2.4× faster per core, JPEGs only ~1.1×: libjpeg-turbo's Huffman decoding is faster
//!   than any pure-Rust decoder; see `shared/src/thumbnail.rs`).
//! - `--default-malloc`: glibc returns every big decoded image to the kernel; `/usr/bin/time -v`
//!   shows 2.4× more page faults and the 2-thread speedup drops (see `keep_freed_buffers`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use indicatif::ParallelProgressIterator as _;
use rayon::prelude::*;
use shared::images::{self, SampleSpec};
use shared::report::{Row, SpeedupTable, fmt_bytes, fmt_duration, fmt_rate, print_json, timed};
use shared::thumbnail::{self, OutputFormat, ThumbError, ThumbInfo, ThumbOptions};

/// Make a thumbnail of every JPEG/PNG of a folder on all cores (rayon), skipping broken files.
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
    /// Decode JPEGs in full instead of at 1/4 or 1/8 scale (to measure what scaling saves).
    #[arg(long)]
    full_decode: bool,
    /// Refuse images with more megapixels than this (checked from the header, before decoding).
    #[arg(long, default_value_t = 100.0)]
    max_megapixels: f64,
    /// Keep glibc's default of returning every large freed buffer to the kernel (munmap), to
    /// measure what `keep_freed_buffers` saves.
    #[arg(long)]
    default_malloc: bool,
    /// Process the files in name order instead of largest first (to see the tail effect).
    #[arg(long)]
    name_order: bool,
    /// Worker threads of the rayon pool (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// First run the same batch on one thread, then print the speedup and check that both runs
    /// wrote identical files.
    #[arg(long)]
    sequential: bool,
    /// Generate the sample images into this folder and keep them (to run the Python peer on
    /// the very same files). Ignored when IN_DIR is given.
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

/// One image to process. Planned up front so that the sequential and parallel runs do exactly
/// the same work, and so that output collisions are caught before anything is written.
#[derive(Debug, Clone)]
struct Job {
    input: PathBuf,
    /// Output path relative to the output folder.
    rel_output: PathBuf,
}

/// What happened to one job.
#[derive(Debug)]
enum Outcome {
    Done {
        info: ThumbInfo,
        /// rayon's index of the thread that did it (for the per-thread lines).
        thread: usize,
    },
    Failed(ThumbError),
    /// Ctrl-C arrived before this image was started.
    Cancelled,
}

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    if !args.default_malloc {
        keep_freed_buffers();
    }
    let opts = ThumbOptions {
        max_width: args.size.0,
        max_height: args.size.1,
        format: match args.format {
            Format::Jpeg => OutputFormat::Jpeg {
                quality: args.quality,
            },
            Format::Png => OutputFormat::Png,
        },
        grayscale: args.grayscale,
        blur: args.blur,
        max_pixels: (args.max_megapixels * 1e6) as u64,
        scaled_decode: !args.full_decode,
    };
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    if threads == 0 {
        bail!("--threads must be at least 1");
    }

    // --- Inputs: a real folder, or seeded samples. The TempDir guard deletes them at the end.
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
            let gen_ = timed(|| images::generate_folder(&dir, &spec));
            let files = gen_.value?;
            let broken = if args.with_broken {
                images::write_broken_files(&dir)?.len()
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
                    fmt_duration(gen_.wall)
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

    // --- Output folder, and the rule that protects the originals.
    let out_dir = match &args.out_dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.canonicalize()
                .with_context(|| format!("output folder {}", d.display()))?
        }
        None => tempfile::Builder::new()
            .prefix("image-batch-thumbs-")
            .tempdir()
            .context("creating a temporary output folder")?
            .keep(),
    };
    check_no_overlap(&in_dir, &out_dir)?;

    // --- Plan every job before running any.
    let mut inputs = thumbnail::find_images(&in_dir, args.recursive)
        .with_context(|| format!("listing {}", in_dir.display()))?;
    // OUT_DIR may live inside IN_DIR: never take our own outputs as inputs.
    inputs.retain(|p| !p.starts_with(&out_dir));
    let (mut jobs, collisions) = plan_jobs(&in_dir, &inputs, opts.format);
    // Largest files first. Rayon hands each thread a contiguous range and steals from the
    // *front* of another thread's remaining range, so whatever runs last is at the end of the
    // list: with small images there, both threads finish within a few milliseconds of each
    // other. In name order a 12 MP photo may start last and keep one core busy alone.
    // (File size is a cheap proxy for cost; `ls -S` order.)
    if !args.name_order {
        jobs.sort_by_cached_key(|j| {
            std::cmp::Reverse(std::fs::metadata(&j.input).map_or(0, |m| m.len()))
        });
    }

    let stop = shared::shutdown::stop_flag_on_ctrl_c()?;
    let pool = |n: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("thumb-{i}"))
            .build()
            .context("building the rayon pool")
    };

    // --- Optional sequential baseline, into a scratch folder, on a pool of one thread.
    // (Not a plain loop on the main thread: jpeg-decoder spreads one image's colour
    // components over the *current* rayon pool, so only a one-thread pool is truly sequential.)
    let mut table = SpeedupTable::new(format!("{} images, {} threads", jobs.len(), threads));
    let mut baseline = None;
    if args.sequential {
        let scratch = tempfile::Builder::new()
            .prefix("image-batch-seq-")
            .tempdir()
            .context("creating a scratch folder for the sequential run")?;
        let one = pool(1)?;
        let t = timed(|| {
            run_batch(
                &one,
                &jobs,
                scratch.path(),
                &opts,
                &stop,
                "sequential",
                args.json,
            )
        });
        table.push(
            Row::new("sequential (1 thread)", t.wall)
                .cpu(t.cpu)
                .note("same code on a 1-thread pool"),
        );
        baseline = Some((scratch, t.value, t.wall));
    }

    // --- The parallel run.
    let par_pool = pool(threads)?;
    let run = timed(|| {
        run_batch(
            &par_pool,
            &jobs,
            &out_dir,
            &opts,
            &stop,
            "thumbnails",
            args.json,
        )
    });
    let outcomes = run.value;

    let mut identical = None;
    if let Some((scratch, seq_outcomes, seq_wall)) = &baseline {
        let same = same_results(&jobs, seq_outcomes, scratch.path(), &outcomes, &out_dir)?;
        identical = Some(same);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        table.push(
            Row::new(format!("rayon ({threads} threads)"), run.wall)
                .cpu(run.cpu)
                .ideal(seq_wall.div_f64(threads.min(cores) as f64))
                .agrees(same)
                .note("par_iter on a local pool"),
        );
    }

    // --- Report.
    let summary = Summary::new(&jobs, &collisions, &outcomes, run.wall, run.cpu, threads);
    if args.json {
        let mut v = summary.to_json(&in_dir, &out_dir);
        v["speedup"] = if args.sequential {
            table.to_json()
        } else {
            serde_json::Value::Null
        };
        v["identical"] = serde_json::json!(identical);
        print_json(&v);
    } else {
        summary.print(&in_dir, &out_dir);
        if args.sequential {
            println!();
            table.print();
            if identical == Some(false) {
                println!("sequential and parallel outputs DIFFER (see above)");
            }
        }
    }

    Ok(if stop.load(Ordering::Relaxed) {
        ExitCode::from(130)
    } else if summary.failed() > 0 || identical == Some(false) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Threads share one address space, and that has a cost processes do not pay. glibc's malloc
/// serves every buffer over 128 KiB-32 MiB with a fresh `mmap` and gives it back with `munmap`
/// when freed: a decoded 12 MP photo is a 36 MB buffer, so each image costs thousands of page
/// faults (zeroed pages) and an `munmap` that makes the kernel interrupt the *other* core to
/// flush its TLB (a "TLB shootdown": the other thread uses the same page tables). Measured
/// on the default folder: 2.4× fewer page faults, about half the system time, and ~10% less
/// wall time on 2 threads with the freed buffers kept in the heap for the next image. The price: memory is not returned to the
/// OS until exit (fine for a batch; a long-running server would rather reuse its buffers
/// explicitly or use an allocator such as mimalloc or jemalloc).
fn keep_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes allocator parameters; it is called before any other
    // thread exists. Values: serve allocations up to 256 MiB from the heap, trim the heap
    // only when 512 MiB are free at its top.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

/// Refuses output folders that could overwrite an input: the same folder, or a folder that
/// contains the input folder (with `--recursive`, `in/sub/x.jpg` would be written to
/// `out/sub/x.jpg`, which may be another input). An output folder *inside* the input folder is
/// fine: it is excluded from the walk.
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

/// Maps every input to its output path; two inputs that would write the same output are both
/// reported instead of racing for the file.
fn plan_jobs(
    in_dir: &Path,
    inputs: &[PathBuf],
    format: OutputFormat,
) -> (Vec<Job>, Vec<(PathBuf, String)>) {
    let mut by_output: HashMap<PathBuf, Vec<&PathBuf>> = HashMap::new();
    for input in inputs {
        let out = thumbnail::output_path(in_dir, Path::new(""), input, format);
        by_output.entry(out).or_default().push(input);
    }
    let mut jobs = Vec::new();
    let mut collisions = Vec::new();
    for input in inputs {
        let rel_output = thumbnail::output_path(in_dir, Path::new(""), input, format);
        let same = &by_output[&rel_output];
        if same.len() == 1 {
            jobs.push(Job {
                input: input.clone(),
                rel_output,
            });
        } else {
            let others: Vec<String> = same
                .iter()
                .filter(|p| **p != input)
                .map(|p| p.display().to_string())
                .collect();
            collisions.push((
                input.clone(),
                format!(
                    "output {} would also be written for {}",
                    rel_output.display(),
                    others.join(", ")
                ),
            ));
        }
    }
    (jobs, collisions)
}

/// The concurrent part, all of it: every job on the pool's threads, results in job order.
fn run_batch(
    pool: &rayon::ThreadPool,
    jobs: &[Job],
    out_dir: &Path,
    opts: &ThumbOptions,
    stop: &Arc<AtomicBool>,
    label: &str,
    json: bool,
) -> Vec<Outcome> {
    let bar = shared::progress::bar(jobs.len() as u64, json);
    bar.set_message(label.to_string());
    let outcomes = pool.install(|| {
        jobs.par_iter()
            .progress_with(bar.clone())
            .map(|job| {
                if stop.load(Ordering::Relaxed) {
                    return Outcome::Cancelled;
                }
                let output = out_dir.join(&job.rel_output);
                match thumbnail::thumbnail_file(&job.input, &output, opts) {
                    Ok(info) => Outcome::Done {
                        info,
                        thread: rayon::current_thread_index().unwrap_or(0),
                    },
                    Err(e) => Outcome::Failed(e),
                }
            })
            .collect()
    });
    bar.finish_and_clear();
    outcomes
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
            (Outcome::Failed(e1), Outcome::Failed(e2)) if e1.kind() == e2.kind() => {}
            (Outcome::Cancelled, _) | (_, Outcome::Cancelled) => {}
            _ => {
                eprintln!("different outcome: {}", job.input.display());
                same = false;
            }
        }
    }
    Ok(same)
}

/// Totals of one run.
struct Summary<'a> {
    ok: Vec<&'a ThumbInfo>,
    failures: Vec<(PathBuf, &'static str, String)>,
    cancelled: usize,
    per_thread: Vec<(usize, f64)>,
    wall: Duration,
    cpu: Duration,
    threads: usize,
}

impl<'a> Summary<'a> {
    fn new(
        jobs: &[Job],
        collisions: &[(PathBuf, String)],
        outcomes: &'a [Outcome],
        wall: Duration,
        cpu: Duration,
        threads: usize,
    ) -> Self {
        let mut s = Summary {
            ok: Vec::new(),
            failures: Vec::new(),
            cancelled: 0,
            per_thread: vec![(0, 0.0); threads],
            wall,
            cpu,
            threads,
        };
        for (p, reason) in collisions {
            s.failures.push((p.clone(), "collision", reason.clone()));
        }
        for (job, o) in jobs.iter().zip(outcomes) {
            match o {
                Outcome::Done { info, thread } => {
                    s.ok.push(info);
                    if let Some(t) = s.per_thread.get_mut(*thread) {
                        t.0 += 1;
                        t.1 += info.src_megapixels();
                    }
                }
                Outcome::Failed(e) => s.failures.push((job.input.clone(), e.kind(), e.reason())),
                Outcome::Cancelled => s.cancelled += 1,
            }
        }
        s.failures.sort();
        s
    }

    fn failed(&self) -> usize {
        self.failures.len()
    }
    fn megapixels(&self) -> f64 {
        self.ok.iter().map(|i| i.src_megapixels()).sum()
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

    fn print(&self, in_dir: &Path, out_dir: &Path) {
        let rel = |p: &Path| p.strip_prefix(in_dir).unwrap_or(p).display().to_string();
        if !self.failures.is_empty() {
            println!(
                "{} file(s) FAILED (skipped, no output written):",
                self.failed()
            );
            let width = self
                .failures
                .iter()
                .map(|f| rel(&f.0).len())
                .max()
                .unwrap_or(0);
            for (path, _, reason) in &self.failures {
                println!("  {:width$}  {reason}", rel(path));
            }
        }
        let cancelled = if self.cancelled > 0 {
            format!(", {} cancelled (Ctrl-C)", self.cancelled)
        } else {
            String::new()
        };
        println!(
            "ok {}, failed {}{cancelled} in {} (cpu {}, {} threads)",
            self.ok.len(),
            self.failed(),
            fmt_duration(self.wall),
            fmt_duration(self.cpu),
            self.threads,
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
            out_dir.display()
        );
        for (i, (n, mp)) in self.per_thread.iter().enumerate() {
            println!("  thread thumb-{i}: {n:3} images, {mp:7.1} MP");
        }
    }

    fn to_json(&self, in_dir: &Path, out_dir: &Path) -> serde_json::Value {
        let secs = self.wall.as_secs_f64().max(1e-9);
        serde_json::json!({
            "in_dir": in_dir,
            "out_dir": out_dir,
            "threads": self.threads,
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
            "per_thread": self.per_thread.iter().map(|(n, mp)| serde_json::json!({"images": n, "megapixels": mp})).collect::<Vec<_>>(),
            "failures": self.failures.iter().map(|(p, kind, reason)| serde_json::json!({"path": p, "kind": kind, "reason": reason})).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("256"), Ok((256, 256)));
        assert_eq!(parse_size("320x200"), Ok((320, 200)));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12xq").is_err());
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
                .all(|(p, _)| p.to_str().unwrap().contains("b.png"))
        );
    }
}
