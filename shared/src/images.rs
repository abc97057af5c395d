//! Seeded sample images: a folder of photo-like JPEGs and PNGs for the image batch examples.
//!
//! The examples must run offline with no arguments, so they generate their input. A folder of
//! flat colour squares would be a poor benchmark: real photos have smooth gradients (cheap to
//! compress), grain (expensive: JPEG cannot throw it away), hard-edged shapes and fine detail
//! such as text. Decoders and encoders spend their time very differently on each, so the
//! generator mixes all of them:
//!
//! - a smooth four-corner gradient with a vignette (sky, walls, out-of-focus background);
//! - soft-edged discs and rectangles, some translucent (objects);
//! - a "page" with rows of small glyph-like marks (text, the finest detail of a photo);
//! - per-pixel grain (sensor noise), which keeps the JPEG files photo-sized (~0.2 bytes/pixel).
//!
//! Sizes are drawn log-uniformly between [`SampleSpec::min_mp`] and [`SampleSpec::max_mp`]
//! megapixels with common aspect ratios (landscape and portrait), so a batch mixes a few large
//! images with many small ones: exactly the case where a work-stealing pool (rayon) beats a
//! static split of the file list. The default mix averages ~3.6 MP per image.
//!
//! Everything is derived from [`SampleSpec::seed`] with ChaCha8 (same stream on every platform),
//! and the encoders are deterministic, so the same spec gives the same bytes on every run, no
//! matter how many threads generate them. Files are written to a temporary name and renamed, so
//! a reader never sees half a file.
//!
//! Generation runs on `std::thread::scope` workers (this crate does not depend on rayon, on
//! purpose: the examples own their concurrency); it writes ~50 images in a few seconds in a
//! release build. In debug builds keep tests small (`max_mp` ≤ 0.3): this crate is compiled
//! without optimisations there.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context as _;
use image::ImageEncoder as _;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What to generate. `SampleSpec::default()` is the folder the examples use (50 images).
#[derive(Debug, Clone, PartialEq)]
pub struct SampleSpec {
    /// Number of images.
    pub count: usize,
    /// Seed of everything (sizes, kinds, content). Same seed, same bytes.
    pub seed: u64,
    /// Smallest image, in megapixels (may be below 0.5 for quick tests).
    pub min_mp: f64,
    /// Largest image, in megapixels. PNGs are capped at [`PNG_MAX_MP`] (screenshots and
    /// graphics are smaller than photos, and big noisy PNGs are slow to write).
    pub max_mp: f64,
    /// Fraction of the images written as PNG (the rest are JPEG).
    pub png_fraction: f64,
    /// Fraction of the PNGs that carry an alpha channel (a cut-out with soft edges).
    pub rgba_fraction: f64,
    /// Fraction of all images that are grayscale (8-bit luma JPEG or PNG).
    pub gray_fraction: f64,
    /// Fraction of the colour JPEGs stored as CMYK (Adobe APP14), as print workflows produce.
    pub cmyk_fraction: f64,
    /// Fraction of the colour PNGs stored with 16 bits per channel.
    pub deep_fraction: f64,
    /// JPEG quality of the generated files (cameras use ~90).
    pub jpeg_quality: u8,
}

/// PNGs are never larger than this many megapixels.
pub const PNG_MAX_MP: f64 = 4.0;

impl Default for SampleSpec {
    fn default() -> Self {
        SampleSpec {
            count: 50,
            seed: 42,
            min_mp: 0.5,
            max_mp: 12.0,
            png_fraction: 0.2,
            rgba_fraction: 0.5,
            gray_fraction: 0.08,
            cmyk_fraction: 0.05,
            deep_fraction: 0.2,
            jpeg_quality: 90,
        }
    }
}

/// How one sample is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleKind {
    /// Baseline JPEG, YCbCr 4:2:0.
    Jpeg,
    /// Grayscale JPEG.
    JpegGray,
    /// CMYK JPEG (Adobe marker).
    JpegCmyk,
    /// 8-bit RGB PNG.
    Png,
    /// 8-bit RGBA PNG (transparent corners).
    PngRgba,
    /// 8-bit grayscale PNG.
    PngGray,
    /// 16-bit RGB PNG.
    Png16,
}

impl SampleKind {
    fn tag(self) -> &'static str {
        match self {
            SampleKind::Jpeg | SampleKind::Png => "rgb",
            SampleKind::JpegGray | SampleKind::PngGray => "gray",
            SampleKind::JpegCmyk => "cmyk",
            SampleKind::PngRgba => "rgba",
            SampleKind::Png16 => "rgb16",
        }
    }
    fn extension(self) -> &'static str {
        match self {
            SampleKind::Jpeg | SampleKind::JpegGray | SampleKind::JpegCmyk => "jpg",
            _ => "png",
        }
    }
}

/// The plan for one image: everything but the pixels, drawn up front so that the result does
/// not depend on which thread renders which image.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplePlan {
    /// File name inside the folder, e.g. `img-007-rgb-3024x2016.jpg`.
    pub file_name: String,
    pub width: u32,
    pub height: u32,
    pub kind: SampleKind,
    /// Seed of this image's content.
    pub seed: u64,
}

const ASPECTS: [(u32, u32); 7] = [(4, 3), (3, 2), (16, 9), (1, 1), (3, 4), (2, 3), (9, 16)];

/// The list of images `spec` describes, in order, without rendering anything.
pub fn plan(spec: &SampleSpec) -> Vec<SamplePlan> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let min_mp = spec.min_mp.max(0.001);
    let max_mp = spec.max_mp.max(min_mp);
    (0..spec.count)
        .map(|i| {
            let png = rng.random::<f64>() < spec.png_fraction;
            let gray = rng.random::<f64>() < spec.gray_fraction;
            let variant = rng.random::<f64>();
            let kind = match (png, gray) {
                (false, true) => SampleKind::JpegGray,
                (false, false) if variant < spec.cmyk_fraction => SampleKind::JpegCmyk,
                (false, false) => SampleKind::Jpeg,
                (true, true) => SampleKind::PngGray,
                (true, false) if variant < spec.rgba_fraction => SampleKind::PngRgba,
                (true, false) if variant < spec.rgba_fraction + spec.deep_fraction => {
                    SampleKind::Png16
                }
                (true, false) => SampleKind::Png,
            };
            // Log-uniform: as many 0.5-1 MP images as 6-12 MP ones, like a real photo folder
            // with thumbnails, phone shots and a few big camera files.
            let mut mp = (min_mp.ln() + rng.random::<f64>() * (max_mp.ln() - min_mp.ln())).exp();
            if png {
                mp = mp.min(PNG_MAX_MP.max(min_mp));
            }
            let (aw, ah) = ASPECTS[rng.random_range(0..ASPECTS.len())];
            let pixels = mp * 1e6;
            let width = ((pixels * aw as f64 / ah as f64).sqrt().round() as u32).clamp(8, 65_000);
            let height = ((pixels / width as f64).round() as u32).clamp(8, 65_000);
            let seed = rng.random::<u64>();
            SamplePlan {
                file_name: format!(
                    "img-{i:03}-{}-{width}x{height}.{}",
                    kind.tag(),
                    kind.extension()
                ),
                width,
                height,
                kind,
                seed,
            }
        })
        .collect()
}

/// Generates the folder `spec` describes into `dir` (created if needed) and returns the paths,
/// in plan order. Existing files with the same names are replaced.
pub fn generate_folder(dir: &Path, spec: &SampleSpec) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let plans = plan(spec);
    // Largest first, so that the last image to start is a small one (the same reason a
    // work-stealing pool balances better than a static split).
    let mut order: Vec<usize> = (0..plans.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(plans[i].width as u64 * plans[i].height as u64));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<anyhow::Result<PathBuf>>>> =
        Mutex::new((0..plans.len()).map(|_| None).collect());
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(plans.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = order.get(k) else { break };
                    let p = &plans[i];
                    let path = dir.join(&p.file_name);
                    let r = encode_sample(p, spec.jpeg_quality)
                        .and_then(|bytes| write_atomically(&path, &bytes))
                        .map(|()| path.clone())
                        .with_context(|| format!("generating {}", path.display()));
                    results.lock().expect("a generator thread panicked")[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("a generator thread panicked")
        .into_iter()
        .map(|r| r.expect("every planned image was generated"))
        .collect()
}

/// Renders and encodes one planned image (JPEG or PNG bytes).
pub fn encode_sample(p: &SamplePlan, jpeg_quality: u8) -> anyhow::Result<Vec<u8>> {
    let (w, h) = (p.width, p.height);
    // Grain sized for realistic files: the JPEGs come out at ~0.2 bytes per pixel at q90, like
    // phone photos (the camera's denoiser leaves only faint sensor noise); PNGs are mostly
    // graphics and screenshots, nearly noise-free.
    let grain = if p.kind.extension() == "jpg" {
        5..11
    } else {
        1..3
    };
    let rgb = render_rgb(w, h, p.seed, grain);
    let mut out = Vec::with_capacity((w * h) as usize / 4);
    match p.kind {
        SampleKind::Jpeg | SampleKind::JpegGray | SampleKind::JpegCmyk => {
            let (w16, h16) = (u16::try_from(w)?, u16::try_from(h)?);
            let mut enc = jpeg_encoder::Encoder::new(&mut out, jpeg_quality);
            enc.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
            match p.kind {
                SampleKind::Jpeg => enc.encode(&rgb, w16, h16, jpeg_encoder::ColorType::Rgb)?,
                SampleKind::JpegGray => {
                    enc.encode(&to_gray(&rgb), w16, h16, jpeg_encoder::ColorType::Luma)?
                }
                _ => enc.encode(&to_cmyk(&rgb), w16, h16, jpeg_encoder::ColorType::Cmyk)?,
            }
        }
        _ => {
            use image::ExtendedColorType as C;
            let enc = image::codecs::png::PngEncoder::new_with_quality(
                &mut out,
                image::codecs::png::CompressionType::Fast,
                image::codecs::png::FilterType::Adaptive,
            );
            match p.kind {
                SampleKind::Png => enc.write_image(&rgb, w, h, C::Rgb8)?,
                SampleKind::PngGray => enc.write_image(&to_gray(&rgb), w, h, C::L8)?,
                SampleKind::PngRgba => enc.write_image(&with_alpha(&rgb, w, h), w, h, C::Rgba8)?,
                _ => {
                    // 16-bit big-endian samples (PNG byte order); v * 257 maps 255 to 65535.
                    let deep: Vec<u8> = rgb
                        .iter()
                        .flat_map(|&v| (v as u16 * 257).to_be_bytes())
                        .collect();
                    enc.write_image(&deep, w, h, C::Rgb16)?
                }
            }
        }
    }
    Ok(out)
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so the
/// file appears complete or not at all.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .context("path has no file name")?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let r = (|| -> io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        std::fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r.with_context(|| format!("writing {}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Rendering. Plain loops over a byte buffer; no per-pixel allocation, no trait objects.

/// Renders the photo-like RGB content of one image (row-major, 3 bytes per pixel).
/// `grain` is the range the noise amplitude is drawn from (±amplitude per channel).
pub fn render_rgb(w: u32, h: u32, seed: u64, grain: std::ops::Range<u32>) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (wu, hu) = (w as usize, h as usize);
    let mut buf = vec![0u8; wu * hu * 3];

    // 1. Four-corner gradient times a vignette (separable: vx[x] * vy[y]).
    let corners = [
        color(&mut rng),
        color(&mut rng),
        color(&mut rng),
        color(&mut rng),
    ];
    let strength: f32 = rng.random_range(0.15..0.45);
    let vig = |i: usize, n: usize| {
        let t = (i as f32 + 0.5) / n as f32 * 2.0 - 1.0;
        1.0 - strength * t * t
    };
    let vx: Vec<f32> = (0..wu).map(|x| vig(x, wu)).collect();
    for (y, row) in buf.chunks_exact_mut(wu * 3).enumerate() {
        let t = y as f32 / hu as f32;
        let vy = vig(y, hu);
        let left: [f32; 3] =
            std::array::from_fn(|c| corners[0][c] + (corners[2][c] - corners[0][c]) * t);
        let right: [f32; 3] =
            std::array::from_fn(|c| corners[1][c] + (corners[3][c] - corners[1][c]) * t);
        let step: [f32; 3] = std::array::from_fn(|c| (right[c] - left[c]) / wu as f32);
        for (x, (px, &v)) in row.chunks_exact_mut(3).zip(&vx).enumerate() {
            let v = v * vy;
            for ((p, l), s) in px.iter_mut().zip(left).zip(step) {
                *p = ((l + s * x as f32) * v) as u8;
            }
        }
    }

    // 2. Shapes: soft-edged discs and rectangles, some translucent.
    let scale = w.min(h) as f32;
    for _ in 0..rng.random_range(5..12) {
        let col = color(&mut rng);
        let opacity: f32 = if rng.random::<f32>() < 0.4 {
            rng.random_range(0.3..0.7)
        } else {
            1.0
        };
        let cx = rng.random_range(0.0..w as f32);
        let cy = rng.random_range(0.0..h as f32);
        let r = rng.random_range(0.04..0.3) * scale;
        if rng.random::<bool>() {
            fill_disc(&mut buf, wu, hu, cx, cy, r, col, opacity);
        } else {
            let rw = r * rng.random_range(0.6..2.0);
            fill_rect(
                &mut buf,
                wu,
                hu,
                cx - rw,
                cy - r,
                cx + rw,
                cy + r,
                col,
                opacity,
            );
        }
    }

    // 3. A "page" with rows of glyph-like marks (text-like fine detail).
    let glyph = ((scale / 180.0).round() as usize).max(1); // size of one glyph dot, in pixels
    let pw = (w as f32 * rng.random_range(0.3..0.6)) as usize;
    let ph = (h as f32 * rng.random_range(0.15..0.35)) as usize;
    let px0 = rng.random_range(0..(wu - pw).max(1));
    let py0 = rng.random_range(0..(hu - ph).max(1));
    fill_rect(
        &mut buf,
        wu,
        hu,
        px0 as f32,
        py0 as f32,
        (px0 + pw) as f32,
        (py0 + ph) as f32,
        [236.0, 232.0, 220.0],
        1.0,
    );
    let ink = [30.0, 30.0, 40.0];
    let (cell_w, cell_h) = (4 * glyph, 8 * glyph);
    let mut y = py0 + 2 * glyph;
    while y + cell_h < py0 + ph {
        let mut x = px0 + 2 * glyph;
        while x + cell_w < px0 + pw {
            if rng.random::<f32>() < 0.15 {
                x += cell_w; // a space between words
                continue;
            }
            // A 3x6 glyph: random dots, biased towards vertical strokes like letters.
            let bits: u32 = rng.random();
            for gy in 0..6 {
                for gx in 0..3 {
                    if bits >> (gy * 3 + gx) & 1 == 1 || (gx == 0 && gy > 0 && bits >> 20 & 1 == 1)
                    {
                        let x0 = x + gx * glyph;
                        let y0 = y + gy * glyph;
                        fill_rect(
                            &mut buf,
                            wu,
                            hu,
                            x0 as f32,
                            y0 as f32,
                            (x0 + glyph) as f32,
                            (y0 + glyph) as f32,
                            ink,
                            1.0,
                        );
                    }
                }
            }
            x += cell_w;
        }
        y += cell_h + glyph;
    }

    // 4. Grain: a cheap xorshift per pixel.
    let amp = rng.random_range(grain) as i32;
    let mut s: u32 = rng.random::<u32>() | 1;
    for v in buf.iter_mut() {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        let n = (s >> 24) as i32 * (2 * amp + 1) / 256 - amp;
        *v = (*v as i32 + n).clamp(0, 255) as u8;
    }
    buf
}

fn color(rng: &mut ChaCha8Rng) -> [f32; 3] {
    std::array::from_fn(|_| rng.random_range(20.0..235.0))
}

#[allow(clippy::too_many_arguments)]
fn fill_disc(buf: &mut [u8], w: usize, h: usize, cx: f32, cy: f32, r: f32, col: [f32; 3], op: f32) {
    let x0 = (cx - r - 1.0).max(0.0) as usize;
    let x1 = ((cx + r + 1.0).max(0.0) as usize).min(w);
    let y0 = (cy - r - 1.0).max(0.0) as usize;
    let y1 = ((cy + r + 1.0).max(0.0) as usize).min(h);
    let (inner, outer) = ((r - 1.0).max(0.0).powi(2), (r + 1.0).powi(2));
    for y in y0..y1 {
        let dy = y as f32 + 0.5 - cy;
        let row = &mut buf[y * w * 3..(y + 1) * w * 3];
        for x in x0..x1 {
            let dx = x as f32 + 0.5 - cx;
            let d2 = dx * dx + dy * dy;
            if d2 >= outer {
                continue;
            }
            // Anti-aliased edge: coverage falls from 1 to 0 over two pixels.
            let cover = if d2 <= inner {
                1.0
            } else {
                ((r + 1.0 - d2.sqrt()) / 2.0).clamp(0.0, 1.0)
            };
            blend(&mut row[x * 3..x * 3 + 3], col, cover * op);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn fill_rect(
    buf: &mut [u8],
    w: usize,
    h: usize,
    x0: f32,
    y0: f32,
    x1: f32,
    y1: f32,
    col: [f32; 3],
    op: f32,
) {
    let (xa, xb) = ((x0.max(0.0) as usize).min(w), (x1.max(0.0) as usize).min(w));
    let (ya, yb) = ((y0.max(0.0) as usize).min(h), (y1.max(0.0) as usize).min(h));
    for y in ya..yb {
        for px in buf[(y * w + xa) * 3..(y * w + xb) * 3].chunks_exact_mut(3) {
            blend(px, col, op);
        }
    }
}

#[inline]
fn blend(px: &mut [u8], col: [f32; 3], a: f32) {
    for (p, c) in px.iter_mut().zip(col) {
        *p = (*p as f32 * (1.0 - a) + c * a) as u8;
    }
}

/// ITU-R BT.601 luma (what JPEG and Pillow's `convert("L")` use), integer arithmetic.
pub fn to_gray(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3)
        .map(|p| ((p[0] as u32 * 299 + p[1] as u32 * 587 + p[2] as u32 * 114 + 500) / 1000) as u8)
        .collect()
}

/// Naive RGB → CMYK (no colour profile), as stored in Adobe CMYK JPEGs: `jpeg-encoder`
/// writes the Adobe marker and the decoders invert the samples back.
fn to_cmyk(rgb: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rgb.len() / 3 * 4);
    for p in rgb.chunks_exact(3) {
        let k = 255 - p[0].max(p[1]).max(p[2]);
        let f = |v: u8| -> u8 {
            if k == 255 {
                0
            } else {
                ((255 - v - k) as u32 * 255 / (255 - k) as u32) as u8
            }
        };
        out.extend_from_slice(&[f(p[0]), f(p[1]), f(p[2]), k]);
    }
    out
}

/// Adds an alpha channel: an opaque rounded "sticker" with soft, transparent edges.
fn with_alpha(rgb: &[u8], w: u32, h: u32) -> Vec<u8> {
    let (wf, hf) = (w as f32, h as f32);
    let mut out = Vec::with_capacity(rgb.len() / 3 * 4);
    for (i, p) in rgb.chunks_exact(3).enumerate() {
        let x = (i % w as usize) as f32 / wf * 2.0 - 1.0;
        let y = (i / w as usize) as f32 / hf * 2.0 - 1.0;
        let d = (x * x * x * x + y * y * y * y).sqrt(); // a squircle
        let a = ((1.0 - d) * 6.0).clamp(0.0, 1.0);
        out.extend_from_slice(&[p[0], p[1], p[2], (a * 255.0) as u8]);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Broken files, for the "never crash the batch" part of the examples and tests.

/// One kind of broken input and the reason a thumbnailer should give for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokenKind {
    /// `empty.jpg`: zero bytes.
    Empty,
    /// `truncated.jpg`: the first 60% of a valid JPEG.
    Truncated,
    /// `not-an-image.jpg`: a text file with an image extension.
    NotAnImage,
    /// `huge-dimensions.png`: a valid PNG header declaring 100000×100000 pixels (a
    /// "decompression bomb": 30 GB once decoded).
    HugePng,
    /// `huge-dimensions.jpg`: a JPEG header declaring 60000×60000 pixels.
    HugeJpeg,
    /// `random-bytes.png`: seeded random bytes.
    RandomBytes,
}

impl BrokenKind {
    pub const ALL: [BrokenKind; 6] = [
        BrokenKind::Empty,
        BrokenKind::Truncated,
        BrokenKind::NotAnImage,
        BrokenKind::HugePng,
        BrokenKind::HugeJpeg,
        BrokenKind::RandomBytes,
    ];

    /// The file name [`write_broken_files`] uses.
    pub fn file_name(self) -> &'static str {
        match self {
            BrokenKind::Empty => "empty.jpg",
            BrokenKind::Truncated => "truncated.jpg",
            BrokenKind::NotAnImage => "not-an-image.jpg",
            BrokenKind::HugePng => "huge-dimensions.png",
            BrokenKind::HugeJpeg => "huge-dimensions.jpg",
            BrokenKind::RandomBytes => "random-bytes.png",
        }
    }

    /// The bytes of the broken file (deterministic).
    pub fn bytes(self) -> Vec<u8> {
        match self {
            BrokenKind::Empty => Vec::new(),
            BrokenKind::Truncated => {
                let p = SamplePlan {
                    file_name: String::new(),
                    width: 160,
                    height: 120,
                    kind: SampleKind::Jpeg,
                    seed: 7,
                };
                let mut full = encode_sample(&p, 90).expect("encoding a small in-memory JPEG");
                full.truncate(full.len() * 6 / 10);
                full
            }
            BrokenKind::NotAnImage => b"This is not a JPEG, just text with a .jpg name.\n".to_vec(),
            BrokenKind::HugePng => huge_png(100_000, 100_000),
            BrokenKind::HugeJpeg => huge_jpeg(60_000, 60_000),
            BrokenKind::RandomBytes => {
                let mut rng = ChaCha8Rng::seed_from_u64(0xBAD);
                (0..4096).map(|_| rng.random::<u8>()).collect()
            }
        }
    }
}

/// Writes one file of each [`BrokenKind`] into `dir` and returns their paths (in
/// [`BrokenKind::ALL`] order).
pub fn write_broken_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    BrokenKind::ALL
        .iter()
        .map(|k| {
            let path = dir.join(k.file_name());
            write_atomically(&path, &k.bytes())?;
            Ok(path)
        })
        .collect()
}

/// A PNG whose IHDR declares `w`×`h` RGB pixels, followed by a tiny IDAT and IEND: the header
/// is valid (correct CRCs), so only a size check stops a decoder from allocating w×h×3 bytes.
fn huge_png(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8; 4], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit, RGB, deflate, adaptive filter, no interlace
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    out
}

/// A JPEG with SOI, a baseline SOF0 declaring `w`×`h` (3 components) and EOI.
fn huge_jpeg(w: u16, h: u16) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 17, 8];
    out.extend_from_slice(&h.to_be_bytes());
    out.extend_from_slice(&w.to_be_bytes());
    out.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// CRC-32 (IEEE), bit by bit: only used for a few tiny PNG chunks.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_reference_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn plan_is_deterministic_and_within_bounds() {
        let spec = SampleSpec {
            count: 200,
            ..SampleSpec::default()
        };
        let a = plan(&spec);
        assert_eq!(a, plan(&spec));
        assert_eq!(a.len(), 200);
        for p in &a {
            let mp = p.width as f64 * p.height as f64 / 1e6;
            assert!(mp > spec.min_mp * 0.97 && mp < spec.max_mp * 1.03, "{p:?}");
        }
        let pngs = a.iter().filter(|p| p.kind.extension() == "png").count();
        assert!((20..=60).contains(&pngs), "{pngs} PNGs out of 200");
        let other = plan(&SampleSpec { seed: 43, ..spec });
        assert_ne!(a, other);
    }

    #[test]
    fn huge_headers_declare_what_they_say() {
        let png = huge_png(100_000, 100_000);
        assert_eq!(&png[16..24], &[0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0]);
        let jpeg = huge_jpeg(60_000, 60_000);
        assert_eq!(&jpeg[7..11], &[0xEA, 0x60, 0xEA, 0x60]);
    }
}
