//! The per-image job of the batch examples: decode → fit in a box (Lanczos3) → encode.
//!
//! This module is the *work*, not the concurrency: `examples-threads/src/bin/image-batch.rs`
//! runs [`thumbnail_file`] on a rayon pool and `examples-processes` runs it in worker
//! processes. Keeping one implementation means both examples measure the same job, and the
//! only thing that differs between them is how the work is spread over the cores.
//!
//! # Why this pipeline (measured, see `shared/notes-image-pipeline.md`)
//!
//! The goal is to beat Python's Pillow `Image.thumbnail()` in a `multiprocessing.Pool` on the
//! same folder with the same number of cores. Pillow is mostly C (libjpeg-turbo, SIMD resize),
//! so "Rust is compiled" is not enough; the naive `image` crate pipeline (`imageops` resize and
//! its JPEG encoder) is actually *slower* than Pillow. Each choice below removes one gap:
//!
//! - **Resize: `fast_image_resize`** (SIMD convolution, Lanczos3), ~2× faster than
//!   `image::imageops`, and it premultiplies alpha so transparent edges do not turn dark.
//!   Its generic code is instantiated in one non-generic function (`resize_lanczos3`) so
//!   crates that use this module do not recompile it.
//! - **Encode: `jpeg-encoder`** (SIMD, 4:2:0 chroma subsampling below q90, like Pillow), ~3×
//!   faster than `image`'s encoder, which always writes 4:2:2.
//! - **Decode, the big one: scaled JPEG decoding.** Pillow's `thumbnail()` calls `draft()`,
//!   which asks libjpeg to decode at 1/2, 1/4 or 1/8 scale: the inverse DCT produces a small
//!   image directly and most of the decode work disappears. `image` decodes with zune-jpeg,
//!   which cannot do that; `jpeg-decoder` 0.3 can (`Decoder::scale`). It only wins at 1/4 or
//!   smaller; at 1/2 zune-jpeg's full decode is faster, so we choose per image
//!   ([`ThumbOptions::scaled_decode`]). Like Pillow (`reducing_gap = 2.0`) we decode to at
//!   least twice the target size, then Lanczos3 does the final step, so quality matches a full
//!   decode.
//! - **PNG: `image`'s `png` decoder** is ~3× faster than Pillow's zlib path already.
//!
//! Measured on the default sample folder (50 images, 165 MP, one core each): PNGs ~2.4× faster
//! than Pillow, JPEGs only ~1.1× (the big ones at parity: `jpeg-decoder`'s Huffman decoding is
//! about half as fast as libjpeg-turbo's, and the scaled decode saves ~15% over a full zune
//! decode); the whole folder ~1.6× on 2 cores. Linking the system libjpeg-turbo (`turbojpeg`
//! crate) would close the JPEG gap, at the price of a C library to install.
//!
//! # Robustness (a batch must survive any file)
//!
//! - The format is sniffed from the first bytes, not trusted from the extension.
//! - The dimensions are read from the header (JPEG SOF / PNG IHDR) and checked against
//!   [`ThumbOptions::max_pixels`] *before* anything is decoded: a 100000×100000 PNG is a few
//!   bytes on disk and 30 GB in memory (a "decompression bomb"). The decoders also get limits,
//!   as a second line of defence.
//! - A JPEG whose entropy-coded data is cut short is reported as truncated.
//! - The output is encoded in memory, written to a temporary file in the output folder and
//!   renamed: a failure never leaves a partial thumbnail, and a reader never sees one.
//! - The output may never be the input (same canonical path): a thumbnail run must not destroy
//!   the originals.
//!
//! # Threads inside the decoder
//!
//! `jpeg-decoder` decodes the colour components of one image in parallel with rayon when it
//! runs inside a rayon pool (`rayon::in_place_scope`), so in `image-batch` it stays within the
//! pool's `--threads`. Called from a plain thread it would use rayon's *global* pool (one
//! thread per core): a process pool should start its workers with `RAYON_NUM_THREADS=1` so
//! N processes use N cores, not N².

use std::io::{self, Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use image::ImageEncoder as _;

/// Output encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Baseline JPEG, 4:2:0 below quality 90 (the web default; what Pillow writes).
    Jpeg {
        /// 1..=100; 85 is a common web default.
        quality: u8,
    },
    /// Lossless PNG (keeps alpha).
    Png,
}

impl OutputFormat {
    /// The file extension written for this format (`jpg` or `png`).
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg { .. } => "jpg",
            OutputFormat::Png => "png",
        }
    }
}

impl Default for OutputFormat {
    fn default() -> Self {
        OutputFormat::Jpeg { quality: 85 }
    }
}

/// What [`thumbnail_file`] produces.
#[derive(Debug, Clone, PartialEq)]
pub struct ThumbOptions {
    /// The thumbnail fits in `max_width` × `max_height`, aspect ratio kept; images already
    /// smaller are not enlarged (like Pillow's `thumbnail()`).
    pub max_width: u32,
    pub max_height: u32,
    pub format: OutputFormat,
    /// Convert to grayscale (BT.601 luma) before resizing.
    pub grayscale: bool,
    /// Gaussian blur of the thumbnail, sigma in thumbnail pixels.
    pub blur: Option<f32>,
    /// Refuse images with more pixels than this, checked from the header before decoding.
    pub max_pixels: u64,
    /// Decode large JPEGs at 1/4 or 1/8 scale (`jpeg-decoder`), like Pillow's `draft()`.
    /// Turn off to compare with a full decode.
    pub scaled_decode: bool,
}

/// 100 megapixels: larger than any camera photo, far below what would exhaust memory.
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

impl Default for ThumbOptions {
    fn default() -> Self {
        ThumbOptions {
            max_width: 256,
            max_height: 256,
            format: OutputFormat::default(),
            grayscale: false,
            blur: None,
            max_pixels: DEFAULT_MAX_PIXELS,
            scaled_decode: true,
        }
    }
}

/// The input container, sniffed from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    Jpeg,
    Png,
}

/// What one thumbnail cost and produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThumbInfo {
    pub format: InputFormat,
    /// Size of the source image (from its header).
    pub src_w: u32,
    pub src_h: u32,
    /// Size the decoder produced: smaller than the source when the JPEG was decoded scaled.
    pub decoded_w: u32,
    pub decoded_h: u32,
    /// Size of the thumbnail.
    pub dst_w: u32,
    pub dst_h: u32,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl ThumbInfo {
    /// Source megapixels (what a "MP/s" throughput counts).
    pub fn src_megapixels(&self) -> f64 {
        self.src_w as f64 * self.src_h as f64 / 1e6
    }
}

/// Why one image failed. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ThumbError {
    #[error("{}: cannot {op}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
    #[error("{}: empty file", path.display())]
    Empty { path: PathBuf },
    #[error("{}: not a JPEG or PNG file (unrecognised signature)", path.display())]
    Unsupported { path: PathBuf },
    #[error(
        "{}: {width}x{height} pixels ({:.0} MP) is over the limit of {:.0} MP",
        path.display(),
        *width as f64 * *height as f64 / 1e6,
        *max_pixels as f64 / 1e6
    )]
    TooLarge {
        path: PathBuf,
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    #[error("{}: cannot decode: {message}", path.display())]
    Decode { path: PathBuf, message: String },
    #[error("{}: cannot encode: {message}", path.display())]
    Encode { path: PathBuf, message: String },
    #[error("{}: refusing to overwrite the input with its thumbnail", path.display())]
    SameAsInput { path: PathBuf },
}

impl ThumbError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ThumbError::Io { path, .. }
            | ThumbError::Empty { path }
            | ThumbError::Unsupported { path }
            | ThumbError::TooLarge { path, .. }
            | ThumbError::Decode { path, .. }
            | ThumbError::Encode { path, .. }
            | ThumbError::SameAsInput { path } => path,
        }
    }

    /// A short stable name for reports and JSON: `io`, `empty`, `unsupported`, `too_large`,
    /// `decode`, `encode`, `same_as_input`.
    pub fn kind(&self) -> &'static str {
        match self {
            ThumbError::Io { .. } => "io",
            ThumbError::Empty { .. } => "empty",
            ThumbError::Unsupported { .. } => "unsupported",
            ThumbError::TooLarge { .. } => "too_large",
            ThumbError::Decode { .. } => "decode",
            ThumbError::Encode { .. } => "encode",
            ThumbError::SameAsInput { .. } => "same_as_input",
        }
    }

    /// The reason without the path (for tables that print the path in their own column).
    pub fn reason(&self) -> String {
        let full = self.to_string();
        let prefix = format!("{}: ", self.path().display());
        full.strip_prefix(&prefix).unwrap_or(&full).to_string()
    }
}

/// An encoded thumbnail in memory.
#[derive(Debug, Clone)]
pub struct Thumbnail {
    pub bytes: Vec<u8>,
    pub info: ThumbInfo,
}

/// Makes the thumbnail of `input` and writes it to `output` (parent folders are created).
///
/// The output is written to a temporary file next to it and renamed, so on any error there is
/// no output file at all (an older file at `output` is left as it was). Refuses to write over
/// `input` itself.
pub fn thumbnail_file(
    input: &Path,
    output: &Path,
    opts: &ThumbOptions,
) -> Result<ThumbInfo, ThumbError> {
    if same_file(input, output) {
        return Err(ThumbError::SameAsInput {
            path: input.to_path_buf(),
        });
    }
    let data = std::fs::read(input).map_err(|source| ThumbError::Io {
        path: input.to_path_buf(),
        op: "read",
        source,
    })?;
    let thumb = thumbnail_bytes(&data, input, opts)?;
    write_output(output, &thumb.bytes)?;
    Ok(thumb.info)
}

/// The whole job on bytes in memory: `name` is only used in error messages. Useful when the
/// bytes come from somewhere else than a file (a pipe to a worker process, a network body).
pub fn thumbnail_bytes(
    data: &[u8],
    name: &Path,
    opts: &ThumbOptions,
) -> Result<Thumbnail, ThumbError> {
    let path = || name.to_path_buf();
    let decode_err = |message: String| ThumbError::Decode {
        path: path(),
        message,
    };
    let encode_err = |message: String| ThumbError::Encode {
        path: path(),
        message,
    };

    // 1. What is it, and how big is it? Only the header is read.
    let (format, src_w, src_h) = match header_dimensions(data) {
        Ok(v) => v,
        Err(HeaderError::Empty) => return Err(ThumbError::Empty { path: path() }),
        Err(HeaderError::Unsupported) => return Err(ThumbError::Unsupported { path: path() }),
        Err(HeaderError::Invalid(m)) => return Err(decode_err(m)),
    };
    if src_w as u64 * src_h as u64 > opts.max_pixels {
        return Err(ThumbError::TooLarge {
            path: path(),
            width: src_w,
            height: src_h,
            max_pixels: opts.max_pixels,
        });
    }
    if format == InputFormat::Jpeg && !jpeg_is_complete(data) {
        return Err(decode_err(
            "truncated JPEG (no end-of-image marker after the scan data)".into(),
        ));
    }
    let (dst_w, dst_h) = fit_within(src_w, src_h, opts.max_width, opts.max_height);

    // 2. Decode, scaled when that saves most of the work. CMYK JPEGs always go through
    //    jpeg-decoder: zune-jpeg (image 0.25) reads Adobe CMYK inverted compared with libjpeg
    //    and Pillow, jpeg-decoder agrees with them (tested in shared/tests/images.rs).
    let scaled = opts.scaled_decode && jpeg_scale_for(src_w, src_h, dst_w, dst_h) <= 2;
    let mut img = match format {
        InputFormat::Jpeg if scaled || jpeg_component_count(data) == Some(4) => {
            decode_jpeg_scaled(data, dst_w, dst_h, opts.max_pixels).map_err(decode_err)?
        }
        _ => decode_full(data, format, opts.max_pixels).map_err(|e| match e {
            FullDecodeError::Limits => ThumbError::TooLarge {
                path: path(),
                width: src_w,
                height: src_h,
                max_pixels: opts.max_pixels,
            },
            FullDecodeError::Other(m) => decode_err(m),
        })?,
    };
    let (decoded_w, decoded_h) = (img.width, img.height);
    if opts.grayscale {
        img = img.into_gray();
    }

    // 3. Resize, blur, flatten.
    let mut img = resize_lanczos3(img, dst_w, dst_h).map_err(decode_err)?;
    if let Some(sigma) = opts.blur.filter(|s| *s > 0.0) {
        gaussian_blur(&mut img, sigma);
    }
    if matches!(opts.format, OutputFormat::Jpeg { .. }) {
        img = img.flatten_on_white();
    }

    // 4. Encode in memory.
    let bytes = encode(&img, opts.format).map_err(encode_err)?;
    Ok(Thumbnail {
        info: ThumbInfo {
            format,
            src_w,
            src_h,
            decoded_w,
            decoded_h,
            dst_w: img.width,
            dst_h: img.height,
            bytes_in: data.len() as u64,
            bytes_out: bytes.len() as u64,
        },
        bytes,
    })
}

/// Where the thumbnail of `input` goes: the same relative path under `out_root`. The file name
/// is kept if its extension already matches the output format (`photo.jpg` → `photo.jpg`),
/// otherwise the output extension is appended (`logo.png` → `logo.png.jpg`), so `a.jpg` and
/// `a.png` never collide. An `input` outside `in_root` keeps only its file name.
pub fn output_path(in_root: &Path, out_root: &Path, input: &Path, format: OutputFormat) -> PathBuf {
    let rel = input
        .strip_prefix(in_root)
        .ok()
        .filter(|r| !r.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(input.file_name().unwrap_or_default()));
    let ext = format.extension();
    let keeps = rel
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case(ext));
    let mut out = out_root.join(&rel);
    if !keeps {
        let mut name = out.file_name().unwrap_or_default().to_os_string();
        name.push(".");
        name.push(ext);
        out.set_file_name(name);
    }
    out
}

/// True if the file name has an extension this module handles (`jpg`, `jpeg`, `png`, any case).
/// The content is sniffed anyway; this only decides what a folder walk picks up.
pub fn is_image_path(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        ["jpg", "jpeg", "png"]
            .iter()
            .any(|x| e.eq_ignore_ascii_case(x))
    })
}

/// The image files of `dir` (see [`is_image_path`]), sorted, hidden files (`.name`, such as our
/// own temporary files) skipped. With `recursive`, sub-folders too (symlinked folders are not
/// followed, so a link loop cannot hang the walk). Fails on the first folder or entry that cannot
/// be read; [`list_images`] reports those and goes on.
pub fn find_images(dir: &Path, recursive: bool) -> io::Result<Vec<PathBuf>> {
    let mut listing = list_images(dir, recursive)?;
    match listing.problems.iter().position(|p| p.kind == "listing") {
        Some(i) => {
            let p = listing.problems.swap_remove(i);
            Err(io::Error::other(format!(
                "{}: {}",
                p.path.display(),
                p.reason
            )))
        }
        None => Ok(listing.images),
    }
}

/// What [`list_images`] found: the images, and what it had to pass over.
#[derive(Debug, Default)]
pub struct ImageListing {
    /// Regular files with an image extension, sorted.
    pub images: Vec<PathBuf>,
    /// Folders that could not be listed and image-named entries that are not regular files,
    /// sorted by path. A batch reports them as failures and goes on.
    pub problems: Vec<ListingProblem>,
}

/// One path [`list_images`] passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingProblem {
    pub path: PathBuf,
    /// `listing` (a folder or entry that cannot be read) or `not_a_file` (a FIFO, socket or
    /// device with an image name: reading it could block forever).
    pub kind: &'static str,
    pub reason: String,
}

/// Like [`find_images`], but a sub-folder that cannot be listed (permissions, removed during the
/// walk) is recorded in [`ImageListing::problems`] instead of ending the walk: one unreadable
/// folder must not cost the other ten thousand images. Only `dir` itself must be readable.
/// Only regular files (or links to them) are returned.
pub fn list_images(dir: &Path, recursive: bool) -> io::Result<ImageListing> {
    let mut listing = ImageListing::default();
    // Folders still to list, by path: opened one at a time, so a tree of 10,000 folders does
    // not hold 10,000 open descriptors.
    let mut pending = Vec::new();
    scan_folder(
        dir,
        std::fs::read_dir(dir)?,
        recursive,
        &mut listing,
        &mut pending,
    );
    while let Some(folder) = pending.pop() {
        match std::fs::read_dir(&folder) {
            Ok(entries) => scan_folder(&folder, entries, recursive, &mut listing, &mut pending),
            Err(e) => {
                let problem = listing_problem(&folder, "cannot list the folder", &e);
                listing.problems.push(problem);
            }
        }
    }
    listing.images.sort();
    listing.problems.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(listing)
}

/// One folder of [`list_images`]: its images go to `listing`, its sub-folders to `pending`.
fn scan_folder(
    folder: &Path,
    entries: std::fs::ReadDir,
    recursive: bool,
    listing: &mut ImageListing,
    pending: &mut Vec<PathBuf>,
) {
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let what = "cannot read an entry of the folder";
                listing.problems.push(listing_problem(folder, what, &e));
                continue;
            }
        };
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        match entry.file_type() {
            Ok(ft) if ft.is_dir() => {
                if recursive {
                    pending.push(path);
                }
            }
            // `metadata` follows a symlink: a link to a photo counts, a link to a folder does
            // not, and a FIFO is reported (reading it would block until someone writes).
            Ok(_) if is_image_path(&path) => match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => listing.images.push(path),
                Ok(m) if m.is_dir() => {}
                Ok(_) => listing.problems.push(ListingProblem {
                    path,
                    kind: "not_a_file",
                    reason: "not a regular file (a FIFO, socket or device)".into(),
                }),
                // A dangling link: the job reports it with the others ("cannot read").
                Err(_) => listing.images.push(path),
            },
            Ok(_) => {}
            Err(e) => listing
                .problems
                .push(listing_problem(&path, "cannot stat", &e)),
        }
    }
}

fn listing_problem(path: &Path, what: &str, e: &io::Error) -> ListingProblem {
    ListingProblem {
        path: path.to_path_buf(),
        kind: "listing",
        reason: format!("{what}: {e}"),
    }
}

/// How many bytes of a file [`estimated_peak_bytes`] reads to find its header. JPEG metadata
/// (EXIF, ICC profiles, XMP) sits before the frame header and is rarely over a few dozen KiB.
const HEADER_PREFIX: u64 = 256 * 1024;

/// An upper estimate of the memory [`thumbnail_file`] holds at once for `input`, from its header
/// only: the file's bytes, the decoded image at the decoder's depth (16-bit PNGs decode to
/// 16-bit), the 8-bit copy made from a 16-bit image, and the decoder's own planes for a JPEG.
///
/// A batch admits images by this figure (a decode budget), so that two 100 MP images are not
/// decoded at the same time. A file that is not a regular file costs 0; a file whose header
/// cannot be read, or that the size limit refuses, costs its length: it fails before decoding.
/// A JPEG whose frame header lies beyond the first 256 KiB is assumed to be as
/// large as [`ThumbOptions::max_pixels`] allows.
pub fn estimated_peak_bytes(input: &Path, opts: &ThumbOptions) -> u64 {
    use std::io::Read as _;
    // Never `open` a FIFO: that blocks until someone writes to it.
    let Ok(meta) = std::fs::metadata(input) else {
        return 0;
    };
    if !meta.is_file() {
        return 0;
    }
    let mut head = Vec::new();
    let read =
        std::fs::File::open(input).and_then(|f| f.take(HEADER_PREFIX).read_to_end(&mut head));
    if read.is_err() {
        return meta.len();
    }
    let decoded = match header_dimensions(&head) {
        Ok((format, w, h)) => decoded_bytes(&head, format, w, h, opts),
        // A JPEG signature without a frame header in the prefix: assume the worst it may be.
        Err(HeaderError::Invalid(_)) if head.starts_with(&[0xFF, 0xD8, 0xFF]) => {
            opts.max_pixels.saturating_mul(2 * 3)
        }
        Err(_) => 0,
    };
    meta.len().saturating_add(decoded)
}

/// The decoded part of [`estimated_peak_bytes`], for a header already parsed.
fn decoded_bytes(head: &[u8], format: InputFormat, w: u32, h: u32, opts: &ThumbOptions) -> u64 {
    let pixels = u64::from(w) * u64::from(h);
    if pixels > opts.max_pixels {
        return 0; // refused from its header, nothing is decoded
    }
    match format {
        InputFormat::Png => {
            // IHDR: bit depth at byte 24, colour type at 25 (palette images expand to RGBA).
            let depth = head.get(24).copied().unwrap_or(8);
            let channels: u64 = match head.get(25).copied().unwrap_or(6) {
                0 => 1,
                2 => 3,
                4 => 2,
                _ => 4,
            };
            let decoded = pixels * channels * if depth == 16 { 2 } else { 1 };
            let eight_bit_copy = if depth == 16 { pixels * channels } else { 0 };
            decoded + eight_bit_copy
        }
        InputFormat::Jpeg => {
            let components = u64::from(jpeg_component_count(head).unwrap_or(3).max(1));
            let (dst_w, dst_h) = fit_within(w, h, opts.max_width, opts.max_height);
            let eighths = jpeg_scale_for(w, h, dst_w, dst_h);
            // The same choice as `thumbnail_bytes`: scaled with jpeg-decoder, or full.
            let scaled = (opts.scaled_decode && eighths <= 2) || components == 4;
            let eighths = if scaled { u64::from(eighths) } else { 8 };
            let out = (u64::from(w) * eighths).div_ceil(8) * (u64::from(h) * eighths).div_ceil(8);
            // The decoder's component planes plus the interleaved output, and the RGB copy of a
            // CMYK image.
            out * components * 2 + if components == 4 { out * 3 } else { 0 }
        }
    }
}

/// Fits `w`×`h` into `max_w`×`max_h`, aspect ratio kept, never enlarged, at least 1×1: the
/// size Pillow's `thumbnail()` picks. The limiting side takes the box's length; the other side
/// takes, of the two whole lengths around the exact one, the one whose aspect ratio is closest
/// to the original's (the shorter one on a tie). That is not always the nearest pixel: 6239×329
/// gives 256×14 (13.4996 px, but 256/14 is closer to 6239/329 than 256/13 is).
pub fn fit_within(w: u32, h: u32, max_w: u32, max_h: u32) -> (u32, u32) {
    let (w, h) = (w.max(1), h.max(1));
    let (max_w, max_h) = (max_w.max(1), max_h.max(1));
    if w <= max_w && h <= max_h {
        return (w, h);
    }
    let aspect = f64::from(w) / f64::from(h);
    // Pillow's `round_aspect`: floor or ceil, whichever `error` rates lower (floor on a tie).
    let closest = |exact: f64, error: &dyn Fn(f64) -> f64| {
        let (lo, hi) = (exact.floor(), exact.ceil());
        let pick = if error(hi) < error(lo) { hi } else { lo };
        (pick as u32).max(1)
    };
    let (bw, bh) = (f64::from(max_w), f64::from(max_h));
    if bw / bh >= aspect {
        // Height-limited: the width whose ratio n / max_h is closest to the aspect.
        (closest(bh * aspect, &|n| (aspect - n / bh).abs()), max_h)
    } else {
        // Width-limited: the height whose ratio max_w / n is closest (a zero height rates best,
        // as in Pillow, and then becomes 1).
        let error = |n: f64| {
            if n == 0.0 {
                0.0
            } else {
                (aspect - bw / n).abs()
            }
        };
        (max_w, closest(bw / aspect, &error))
    }
}

// ---------------------------------------------------------------------------------------------
// Header parsing: a few bytes, no allocation, no decoder.

enum HeaderError {
    Empty,
    Unsupported,
    Invalid(String),
}

const PNG_SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// Sniffs the format and reads the declared dimensions from the JPEG SOF or PNG IHDR.
fn header_dimensions(data: &[u8]) -> Result<(InputFormat, u32, u32), HeaderError> {
    if data.is_empty() {
        return Err(HeaderError::Empty);
    }
    let (format, w, h) = if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        let (w, h) = jpeg_dimensions(data).map_err(HeaderError::Invalid)?;
        (InputFormat::Jpeg, w, h)
    } else if data.starts_with(PNG_SIGNATURE) {
        if data.len() < 24 || &data[12..16] != b"IHDR" {
            return Err(HeaderError::Invalid("PNG without an IHDR header".into()));
        }
        let be = |i: usize| u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
        (InputFormat::Png, be(16), be(20))
    } else {
        return Err(HeaderError::Unsupported);
    };
    if w == 0 || h == 0 {
        return Err(HeaderError::Invalid(format!("declared size {w}x{h}")));
    }
    Ok((format, w, h))
}

/// Walks the JPEG markers up to the first SOFn and returns its width and height.
fn jpeg_dimensions(data: &[u8]) -> Result<(u32, u32), String> {
    let i = jpeg_find_sof(data).ok_or("JPEG header is truncated or has no frame header")?;
    if data.len() < i + 9 {
        return Err("JPEG frame header is truncated".into());
    }
    let h = u16::from_be_bytes([data[i + 5], data[i + 6]]) as u32;
    let w = u16::from_be_bytes([data[i + 7], data[i + 8]]) as u32;
    Ok((w, h))
}

/// Position of the frame header (SOF0..SOF15 except DHT, JPG and DAC).
fn jpeg_find_sof(data: &[u8]) -> Option<usize> {
    jpeg_find_marker(data, |m| {
        matches!(m, 0xC0..=0xCF) && !matches!(m, 0xC4 | 0xC8 | 0xCC)
    })
    .map(|(i, _)| i)
}

/// Number of colour components declared in the frame header (1 gray, 3 YCbCr, 4 CMYK/YCCK).
fn jpeg_component_count(data: &[u8]) -> Option<u8> {
    data.get(jpeg_find_sof(data)? + 9).copied()
}

/// Position and code of the first marker segment (before any SOS) for which `want` is true.
fn jpeg_find_marker(data: &[u8], want: impl Fn(u8) -> bool) -> Option<(usize, u8)> {
    let mut i = 2; // after SOI
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        while *data.get(i)? == 0xFF && *data.get(i + 1)? == 0xFF {
            i += 1;
        }
        if *data.get(i)? != 0xFF {
            return None;
        }
        let m = *data.get(i + 1)?;
        if want(m) {
            return Some((i, m));
        }
        match m {
            0xD9 | 0xDA => return None, // EOI or start of scan: no more header segments
            0x01 | 0xD0..=0xD7 => i += 2, // standalone markers
            _ => {
                let len = u16::from_be_bytes([*data.get(i + 2)?, *data.get(i + 3)?]) as usize;
                i += 2 + len;
            }
        }
    }
}

/// A JPEG whose scan data is cut short has no EOI (FF D9) after its first SOS. Entropy-coded
/// data never contains FF D9 (an FF byte is stuffed as FF 00), so searching backwards from the
/// end finds the real EOI quickly in a complete file, even with trailing bytes after it.
/// zune-jpeg would silently decode a truncated file with a grey bottom; Pillow raises
/// "image file is truncated". We side with Pillow: a batch should report it.
fn jpeg_is_complete(data: &[u8]) -> bool {
    let Some((sos, _)) = jpeg_find_marker(data, |m| m == 0xDA) else {
        return false;
    };
    data[sos..].windows(2).rev().any(|w| w == [0xFF, 0xD9])
}

// ---------------------------------------------------------------------------------------------
// Decoding into one small raster type.

/// Interleaved 8-bit pixels: 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA) channels.
struct Raster {
    width: u32,
    height: u32,
    channels: u8,
    data: Vec<u8>,
}

impl Raster {
    fn new(width: u32, height: u32, channels: u8, data: Vec<u8>) -> Result<Raster, String> {
        let need = width as usize * height as usize * channels as usize;
        if data.len() < need {
            return Err(format!(
                "decoder returned {} bytes for {width}x{height}x{channels}",
                data.len()
            ));
        }
        Ok(Raster {
            width,
            height,
            channels,
            data,
        })
    }

    /// BT.601 luma (as JPEG and Pillow's `convert("L")`), alpha kept.
    fn into_gray(self) -> Raster {
        let luma = |p: &[u8]| {
            ((p[0] as u32 * 299 + p[1] as u32 * 587 + p[2] as u32 * 114 + 500) / 1000) as u8
        };
        let data: Vec<u8> = match self.channels {
            3 => self.data.chunks_exact(3).map(luma).collect(),
            4 => self
                .data
                .chunks_exact(4)
                .flat_map(|p| [luma(p), p[3]])
                .collect(),
            _ => return self,
        };
        let channels = if self.channels == 4 { 2 } else { 1 };
        Raster {
            data,
            channels,
            ..self
        }
    }

    /// Composites the alpha channel onto white (JPEG has no alpha).
    fn flatten_on_white(self) -> Raster {
        if self.channels % 2 == 1 {
            return self; // no alpha
        }
        let color = (self.channels - 1) as usize;
        let mut data = Vec::with_capacity(self.data.len() / (color + 1) * color);
        for p in self.data.chunks_exact(color + 1) {
            let a = p[color] as u32;
            for &c in &p[..color] {
                data.push(((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8);
            }
        }
        Raster {
            data,
            channels: color as u8,
            ..self
        }
    }
}

/// The 1/8 scale `jpeg-decoder` will pick for a request of `req_w`×`req_h` (1, 2, 4 or 8
/// eighths; the same rule as its `choose_idct_size`). We request twice the thumbnail size.
fn jpeg_scale_for(src_w: u32, src_h: u32, dst_w: u32, dst_h: u32) -> u32 {
    let (req_w, req_h) = ((dst_w * 2).min(src_w), (dst_h * 2).min(src_h));
    let scaled = |len: u32, s: u32| (len * s).div_ceil(8);
    [1, 2, 4]
        .into_iter()
        .find(|&s| scaled(src_w, s) >= req_w || scaled(src_h, s) >= req_h)
        .unwrap_or(8)
}

fn decode_jpeg_scaled(
    data: &[u8],
    dst_w: u32,
    dst_h: u32,
    max_pixels: u64,
) -> Result<Raster, String> {
    let mut dec = jpeg_decoder::Decoder::new(data);
    dec.set_max_decoding_buffer_size(
        usize::try_from(max_pixels.saturating_mul(4)).unwrap_or(usize::MAX),
    );
    dec.read_info().map_err(|e| e.to_string())?;
    let req = |v: u32| u16::try_from(v * 2).unwrap_or(u16::MAX);
    let (w, h) = dec
        .scale(req(dst_w), req(dst_h))
        .map_err(|e| e.to_string())?;
    let pixels = dec.decode().map_err(|e| e.to_string())?;
    let info = dec.info().ok_or("no image info after decoding")?;
    let (w, h) = (w as u32, h as u32);
    use jpeg_decoder::PixelFormat as F;
    match info.pixel_format {
        F::L8 => Raster::new(w, h, 1, pixels),
        F::L16 => Raster::new(w, h, 1, pixels.chunks_exact(2).map(|p| p[0]).collect()),
        F::RGB24 => Raster::new(w, h, 3, pixels),
        F::CMYK32 => {
            // jpeg-decoder has already undone Adobe's inversion: these are ink amounts.
            let rgb = pixels
                .chunks_exact(4)
                .flat_map(|p| {
                    let k = 255 - p[3] as u32;
                    p[..3]
                        .iter()
                        .map(move |&c| ((255 - c as u32) * k / 255) as u8)
                        .collect::<Vec<_>>()
                })
                .collect();
            Raster::new(w, h, 3, rgb)
        }
    }
}

enum FullDecodeError {
    Limits,
    Other(String),
}

fn decode_full(
    data: &[u8],
    format: InputFormat,
    max_pixels: u64,
) -> Result<Raster, FullDecodeError> {
    let fmt = match format {
        InputFormat::Jpeg => image::ImageFormat::Jpeg,
        InputFormat::Png => image::ImageFormat::Png,
    };
    let mut reader = image::ImageReader::with_format(Cursor::new(data), fmt);
    let mut limits = image::Limits::default();
    // Second line of defence after the header check: 8 bytes a pixel covers RGBA16.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).max(64 << 20));
    reader.limits(limits);
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => FullDecodeError::Limits,
        e => FullDecodeError::Other(e.to_string()),
    })?;
    let (w, h) = (img.width(), img.height());
    use image::DynamicImage as D;
    let r = match img {
        D::ImageLuma8(b) => Raster::new(w, h, 1, b.into_raw()),
        D::ImageLumaA8(b) => Raster::new(w, h, 2, b.into_raw()),
        D::ImageRgb8(b) => Raster::new(w, h, 3, b.into_raw()),
        D::ImageRgba8(b) => Raster::new(w, h, 4, b.into_raw()),
        D::ImageLuma16(_) => Raster::new(w, h, 1, img.to_luma8().into_raw()),
        D::ImageLumaA16(_) => Raster::new(w, h, 2, img.to_luma_alpha8().into_raw()),
        D::ImageRgb16(_) | D::ImageRgb32F(_) => Raster::new(w, h, 3, img.to_rgb8().into_raw()),
        _ => Raster::new(w, h, 4, img.to_rgba8().into_raw()),
    };
    r.map_err(FullDecodeError::Other)
}

// ---------------------------------------------------------------------------------------------
// Resize, blur, encode.

/// Lanczos3 resize with `fast_image_resize`: the one place its generic code is instantiated
/// (see the module docs). Alpha is premultiplied during the convolution.
fn resize_lanczos3(src: Raster, dst_w: u32, dst_h: u32) -> Result<Raster, String> {
    use fast_image_resize as fr;
    if (src.width, src.height) == (dst_w, dst_h) {
        return Ok(src);
    }
    let pixel_type = match src.channels {
        1 => fr::PixelType::U8,
        2 => fr::PixelType::U8x2,
        3 => fr::PixelType::U8x3,
        _ => fr::PixelType::U8x4,
    };
    let channels = src.channels;
    let src_img = fr::images::Image::from_vec_u8(src.width, src.height, src.data, pixel_type)
        .map_err(|e| e.to_string())?;
    let mut dst_img = fr::images::Image::new(dst_w, dst_h, pixel_type);
    let opts =
        fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3));
    fr::Resizer::new()
        .resize(&src_img, &mut dst_img, &opts)
        .map_err(|e| e.to_string())?;
    Raster::new(dst_w, dst_h, channels, dst_img.into_vec())
}

/// Separable Gaussian blur (kernel radius 3σ, edges clamped), in place. It runs on the
/// thumbnail, so a straightforward float implementation is cheap enough.
fn gaussian_blur(img: &mut Raster, sigma: f32) {
    let radius = (sigma * 3.0).ceil().max(1.0) as isize;
    let kernel: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f32 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.iter().map(|k| k / sum).collect();
    let (w, h, c) = (
        img.width as isize,
        img.height as isize,
        img.channels as isize,
    );
    let pass = |src: &[u8], horizontal: bool| -> Vec<u8> {
        let mut out = vec![0u8; src.len()];
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    let mut acc = 0.0;
                    for (k, &kv) in kernel.iter().enumerate() {
                        let d = k as isize - radius;
                        let (sx, sy) = if horizontal {
                            ((x + d).clamp(0, w - 1), y)
                        } else {
                            (x, (y + d).clamp(0, h - 1))
                        };
                        acc += kv * src[((sy * w + sx) * c + ch) as usize] as f32;
                    }
                    out[((y * w + x) * c + ch) as usize] = acc.round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        out
    };
    let tmp = pass(&img.data, true);
    img.data = pass(&tmp, false);
}

fn encode(img: &Raster, format: OutputFormat) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(img.data.len() / 8 + 1024);
    match format {
        OutputFormat::Jpeg { quality } => {
            let (w, h) = (
                u16::try_from(img.width).map_err(|_| "JPEG is limited to 65535 pixels a side")?,
                u16::try_from(img.height).map_err(|_| "JPEG is limited to 65535 pixels a side")?,
            );
            let color = match img.channels {
                1 => jpeg_encoder::ColorType::Luma,
                3 => jpeg_encoder::ColorType::Rgb,
                c => return Err(format!("{c} channels cannot be written as JPEG")),
            };
            jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100))
                .encode(&img.data, w, h, color)
                .map_err(|e| e.to_string())?;
        }
        OutputFormat::Png => {
            let color = match img.channels {
                1 => image::ExtendedColorType::L8,
                2 => image::ExtendedColorType::La8,
                3 => image::ExtendedColorType::Rgb8,
                _ => image::ExtendedColorType::Rgba8,
            };
            image::codecs::png::PngEncoder::new(&mut out)
                .write_image(&img.data, img.width, img.height, color)
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Output files.

/// True if `output` names the same file as `input` (after resolving `..` and symlinks).
fn same_file(input: &Path, output: &Path) -> bool {
    let Ok(input) = input.canonicalize() else {
        return false; // the read will report the missing input
    };
    let output = match output.canonicalize() {
        Ok(p) => p,
        Err(_) => match (output.parent(), output.file_name()) {
            (Some(dir), Some(name)) => {
                let dir = if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                };
                match dir.canonicalize() {
                    Ok(d) => d.join(name),
                    Err(_) => return false, // the folder does not exist yet: cannot be the input
                }
            }
            _ => return false,
        },
    };
    input == output
}

/// True if `path` is the temporary file of an output still being written by [`thumbnail_file`]
/// (`.{name}.{pid}-{n}.tmp`, renamed over the output once complete). Used to clean up after a
/// forced exit, which does not wait for the writes in flight.
pub fn is_partial_output(path: &Path) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix('.')?.strip_suffix(".tmp"))
        .and_then(|rest| rest.rsplit_once('.'))
        .and_then(|(_, tag)| tag.split_once('-'))
        .is_some_and(|(pid, n)| digits(pid) && digits(n))
}

/// Writes `bytes` to a unique temporary file next to `output`, then renames it over `output`.
fn write_output(output: &Path, bytes: &[u8]) -> Result<(), ThumbError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let io_err = |op, source| ThumbError::Io {
        path: output.to_path_buf(),
        op,
        source,
    };
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| io_err("create the output folder", e))?;
    let name = output.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::File::create_new(&tmp)?;
        f.write_all(bytes)?;
        // No fsync: we want all-or-nothing visibility, not durability across a power cut
        // (a production service that must not lose thumbnails would `f.sync_all()` here).
        drop(f);
        std::fs::rename(&tmp, output)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err("write the output", e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_aspect_and_never_enlarges() {
        assert_eq!(fit_within(4000, 3000, 256, 256), (256, 192));
        assert_eq!(fit_within(3000, 4000, 256, 256), (192, 256));
        assert_eq!(fit_within(100, 50, 256, 256), (100, 50));
        assert_eq!(fit_within(10_000, 10, 256, 256), (256, 1));
        assert_eq!(fit_within(1000, 1000, 300, 100), (100, 100));
    }

    /// Pillow's `thumbnail()` keeps the length whose aspect ratio is closest to the original's
    /// (the shorter one on a tie), not the nearest whole pixel: they differ in about 1 size in
    /// 700. Each pair below is what Pillow 10-13 computes (`image-batch --python` compares).
    #[test]
    fn fit_rounds_like_pillow_thumbnail() {
        assert_eq!(fit_within(6239, 329, 256, 256), (256, 14)); // 13.4996 px: 14 keeps the ratio
        assert_eq!(fit_within(7794, 4856, 256, 256), (256, 160));
        assert_eq!(fit_within(2407, 2045, 256, 256), (256, 218));
        assert_eq!(fit_within(3, 512, 256, 256), (1, 256)); // 1.5 px: a tie keeps the shorter
        assert_eq!(fit_within(5, 512, 256, 256), (2, 256));
        assert_eq!(fit_within(100_000, 1, 256, 256), (256, 1)); // never 0
    }

    #[test]
    fn scale_choice_matches_pillow_draft_with_a_reducing_gap_of_two() {
        // 12 MP to 256: decode at 1/4 (1000x750 >= 2 x 256x192).
        assert_eq!(jpeg_scale_for(4000, 3000, 256, 192), 2);
        // 2 MP: 1/2 would be enough; we then decode in full with zune (faster at 1/2).
        assert_eq!(jpeg_scale_for(1600, 1200, 256, 192), 4);
        assert_eq!(jpeg_scale_for(16000, 12000, 256, 192), 1);
        assert_eq!(jpeg_scale_for(200, 100, 200, 100), 8);
    }

    #[test]
    fn output_paths_keep_the_tree_and_never_collide() {
        let (i, o) = (Path::new("/in"), Path::new("/out"));
        let jpeg = OutputFormat::Jpeg { quality: 85 };
        assert_eq!(
            output_path(i, o, Path::new("/in/a/b.jpg"), jpeg),
            Path::new("/out/a/b.jpg")
        );
        assert_eq!(
            output_path(i, o, Path::new("/in/B.JPG"), jpeg),
            Path::new("/out/B.JPG")
        );
        assert_eq!(
            output_path(i, o, Path::new("/in/b.png"), jpeg),
            Path::new("/out/b.png.jpg")
        );
        assert_eq!(
            output_path(i, o, Path::new("/in/b.jpeg"), jpeg),
            Path::new("/out/b.jpeg.jpg")
        );
        assert_eq!(
            output_path(i, o, Path::new("/in/b.jpg"), OutputFormat::Png),
            Path::new("/out/b.jpg.png")
        );
        assert_eq!(
            output_path(i, o, Path::new("/elsewhere/c.png"), OutputFormat::Png),
            Path::new("/out/c.png")
        );
    }

    #[test]
    fn flatten_composites_onto_white() {
        let r = Raster::new(2, 1, 4, vec![0, 0, 0, 0, 10, 20, 30, 255]).unwrap();
        let f = r.flatten_on_white();
        assert_eq!((f.channels, f.data), (3, vec![255, 255, 255, 10, 20, 30]));
    }

    #[test]
    fn blur_keeps_flat_images_flat_and_spreads_a_dot() {
        let mut flat = Raster::new(5, 5, 1, vec![100; 25]).unwrap();
        gaussian_blur(&mut flat, 1.5);
        assert!(flat.data.iter().all(|&v| v == 100));
        let mut dot = vec![0; 25];
        dot[12] = 255;
        let mut dot = Raster::new(5, 5, 1, dot).unwrap();
        gaussian_blur(&mut dot, 1.0);
        assert!(dot.data[12] < 255 && dot.data[11] > 0 && dot.data[7] > 0);
    }

    /// A PNG file made of its signature and IHDR only (enough for the estimate).
    fn png_header(w: u32, h: u32, depth: u8, color: u8) -> Vec<u8> {
        let mut v = PNG_SIGNATURE.to_vec();
        v.extend_from_slice(&13u32.to_be_bytes());
        v.extend_from_slice(b"IHDR");
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&[depth, color, 0, 0, 0]);
        v
    }

    #[test]
    fn peak_estimate_counts_the_16_bit_decode_and_its_8_bit_copy() {
        let dir = tempfile::tempdir().unwrap();
        let opts = ThumbOptions::default();
        let big = dir.path().join("big.png");
        let bytes = png_header(10_000, 9_999, 16, 6);
        std::fs::write(&big, &bytes).unwrap();
        let pixels = 10_000u64 * 9_999;
        // RGBA16 (8 bytes a pixel) plus the RGBA8 copy (4), plus the file itself.
        assert_eq!(
            estimated_peak_bytes(&big, &opts),
            pixels * 12 + bytes.len() as u64
        );
        let small = dir.path().join("small.png");
        std::fs::write(&small, png_header(100, 100, 8, 2)).unwrap();
        assert_eq!(
            estimated_peak_bytes(&small, &opts),
            100 * 100 * 3 + bytes.len() as u64
        );
        // Over the limit: refused from the header, nothing decoded.
        let tiny_limit = ThumbOptions {
            max_pixels: 1_000,
            ..ThumbOptions::default()
        };
        assert_eq!(estimated_peak_bytes(&big, &tiny_limit), bytes.len() as u64);
        assert_eq!(
            estimated_peak_bytes(&dir.path().join("missing.png"), &opts),
            0
        );
        assert_eq!(
            estimated_peak_bytes(dir.path(), &opts),
            0,
            "a folder costs nothing"
        );
    }

    #[test]
    fn a_scaled_jpeg_decode_is_estimated_smaller_than_a_full_one() {
        // SOI, then SOF0: 4000x3000, 3 components.
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 8, 0x0B, 0xB8, 0x0F, 0xA0, 3,
        ];
        let scaled = decoded_bytes(
            &jpeg,
            InputFormat::Jpeg,
            4000,
            3000,
            &ThumbOptions::default(),
        );
        let full_opts = ThumbOptions {
            scaled_decode: false,
            ..ThumbOptions::default()
        };
        let full = decoded_bytes(&jpeg, InputFormat::Jpeg, 4000, 3000, &full_opts);
        assert_eq!(full, 4000 * 3000 * 3 * 2);
        assert_eq!(scaled, 1000 * 750 * 3 * 2, "decoded at 1/4");
    }

    #[test]
    fn the_listing_passes_over_unreadable_folders_and_fifos() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("a.jpg"), b"x").unwrap();
        std::fs::write(d.join("sub/b.jpg"), b"x").unwrap();
        let fifo = std::ffi::CString::new(d.join("pipe.jpg").into_os_string().into_encoded_bytes())
            .unwrap();
        // SAFETY: mkfifo(3) with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let listing = list_images(d, true).unwrap();
        assert_eq!(listing.images, [d.join("a.jpg"), d.join("sub/b.jpg")]);
        assert_eq!(listing.problems.len(), 1);
        assert_eq!(listing.problems[0].kind, "not_a_file");
        assert!(
            list_images(&d.join("missing"), true).is_err(),
            "the top folder must be readable"
        );
    }

    #[test]
    fn partial_outputs_are_recognised_by_their_exact_pattern() {
        assert!(is_partial_output(Path::new("/o/.a.jpg.123-0.tmp")));
        assert!(is_partial_output(Path::new(".b c.png.jpg.9-17.tmp")));
        for other in [
            "a.jpg",
            ".a.jpg",
            ".notes.tmp",
            ".a.jpg.12.tmp",
            "a.jpg.1-2.tmp",
        ] {
            assert!(!is_partial_output(Path::new(other)), "{other}");
        }
    }

    #[test]
    fn jpeg_completeness_ignores_trailing_bytes_and_catches_truncation() {
        let mut j = vec![
            0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 1, 2, 3, 0xFF, 0x00, 4, 0xFF, 0xD9,
        ];
        assert!(jpeg_is_complete(&j));
        j.extend_from_slice(b"trailing junk");
        assert!(jpeg_is_complete(&j));
        assert!(!jpeg_is_complete(&j[..10]));
    }
}
