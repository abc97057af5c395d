//! Sample images and the thumbnail job: generated files decode and are reproducible, thumbnails
//! fit their box, and every kind of broken input fails cleanly without leaving output.
#![cfg(feature = "images")]
#![allow(clippy::unwrap_used)] // test helpers, not only #[test] fns, unwrap freely

use std::path::{Path, PathBuf};

use shared::images::{self, BrokenKind, SampleKind, SamplePlan, SampleSpec};
use shared::thumbnail::{self, OutputFormat, ThumbError, ThumbOptions};

/// Small images: this crate is not optimised in debug builds.
fn small_spec(seed: u64) -> SampleSpec {
    SampleSpec {
        count: 24,
        seed,
        min_mp: 0.01,
        max_mp: 0.12,
        png_fraction: 0.5,
        rgba_fraction: 0.4,
        gray_fraction: 0.2,
        cmyk_fraction: 0.3,
        deep_fraction: 0.4,
        ..SampleSpec::default()
    }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).abs())
        .sum::<f64>()
        / a.len() as f64
}

#[test]
fn generated_folder_decodes_matches_the_plan_and_is_reproducible() {
    let spec = small_spec(7);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let paths = images::generate_folder(a.path(), &spec).unwrap();
    images::generate_folder(b.path(), &spec).unwrap();
    let plans = images::plan(&spec);
    assert_eq!(paths.len(), spec.count);
    // Only the images, no temporary files left behind.
    assert_eq!(files_in(a.path()), {
        let mut p = paths.clone();
        p.sort();
        p
    });
    let mut kinds = std::collections::HashSet::new();
    for (path, plan) in paths.iter().zip(&plans) {
        assert_eq!(path.file_name().unwrap().to_str().unwrap(), plan.file_name);
        let bytes = std::fs::read(path).unwrap();
        let again = std::fs::read(b.path().join(&plan.file_name)).unwrap();
        assert!(
            bytes == again,
            "{} differs between two runs",
            plan.file_name
        );
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!((img.width(), img.height()), (plan.width, plan.height));
        let mp = plan.width as f64 * plan.height as f64 / 1e6;
        assert!(
            mp >= spec.min_mp * 0.95 && mp <= spec.max_mp * 1.05,
            "{mp} MP"
        );
        let expected = match plan.kind {
            SampleKind::Jpeg | SampleKind::JpegCmyk | SampleKind::Png => image::ColorType::Rgb8,
            SampleKind::JpegGray | SampleKind::PngGray => image::ColorType::L8,
            SampleKind::PngRgba => image::ColorType::Rgba8,
            SampleKind::Png16 => image::ColorType::Rgb16,
        };
        assert_eq!(img.color(), expected, "{}", plan.file_name);
        kinds.insert(format!("{:?}", plan.kind));
    }
    assert!(
        kinds.len() >= 6,
        "the spec should produce every kind, got {kinds:?}"
    );

    let other = tempfile::tempdir().unwrap();
    let p2 = images::generate_folder(other.path(), &small_spec(8)).unwrap();
    assert_ne!(
        std::fs::read(&p2[0]).unwrap(),
        std::fs::read(&paths[0]).unwrap()
    );
}

#[test]
fn thumbnails_fit_the_box_keep_the_aspect_and_are_valid_files() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let paths = images::generate_folder(src.path(), &small_spec(11)).unwrap();
    for (format, max_w, max_h) in [
        (OutputFormat::Jpeg { quality: 85 }, 96, 64),
        (OutputFormat::Png, 64, 96),
    ] {
        let opts = ThumbOptions {
            max_width: max_w,
            max_height: max_h,
            format,
            ..Default::default()
        };
        for input in &paths {
            let output = thumbnail::output_path(src.path(), out.path(), input, format);
            let info = thumbnail::thumbnail_file(input, &output, &opts).unwrap();
            assert!(info.dst_w <= max_w && info.dst_h <= max_h, "{info:?}");
            assert!(
                info.dst_w == max_w || info.dst_h == max_h,
                "box not filled: {info:?}"
            );
            // Aspect kept: the other side is the exact proportion, give or take one pixel of rounding.
            let (sw, sh, dw, dh) = (
                info.src_w as f64,
                info.src_h as f64,
                info.dst_w as f64,
                info.dst_h as f64,
            );
            assert!(
                (dw - dh * sw / sh).abs() <= 1.0 || (dh - dw * sh / sw).abs() <= 1.0,
                "{info:?}"
            );
            let bytes = std::fs::read(&output).unwrap();
            assert_eq!(bytes.len() as u64, info.bytes_out);
            let img = image::load_from_memory(&bytes).unwrap();
            assert_eq!((img.width(), img.height()), (info.dst_w, info.dst_h));
            let name = input.file_name().unwrap().to_str().unwrap();
            match format {
                OutputFormat::Jpeg { .. } => {
                    assert_eq!(
                        image::guess_format(&bytes).unwrap(),
                        image::ImageFormat::Jpeg
                    );
                    assert!(!img.color().has_alpha());
                }
                OutputFormat::Png => {
                    assert_eq!(
                        image::guess_format(&bytes).unwrap(),
                        image::ImageFormat::Png
                    );
                    assert_eq!(img.color().has_alpha(), name.contains("-rgba-"), "{name}");
                }
            }
            assert_eq!(img.color().has_color(), !name.contains("-gray-"), "{name}");
        }
    }
    // Nothing but thumbnails in the output folder (no temporary files).
    assert!(
        files_in(out.path()).iter().all(|p| !p
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with('.'))
    );
    assert_eq!(files_in(out.path()).len(), paths.len() * 2);
}

/// One mid-sized photo-like image, encoded as `kind`.
fn write_sample(dir: &Path, name: &str, w: u32, h: u32, kind: SampleKind) -> PathBuf {
    let plan = SamplePlan {
        file_name: name.into(),
        width: w,
        height: h,
        kind,
        seed: 99,
    };
    let path = dir.join(name);
    std::fs::write(&path, images::encode_sample(&plan, 92).unwrap()).unwrap();
    path
}

fn thumb_pixels(input: &Path, out: &Path, opts: &ThumbOptions) -> (thumbnail::ThumbInfo, Vec<u8>) {
    let info = thumbnail::thumbnail_file(input, out, opts).unwrap();
    let img = image::open(out).unwrap().to_rgb8();
    (info, img.into_raw())
}

#[test]
fn scaled_jpeg_decode_matches_a_full_decode_and_cmyk_matches_rgb() {
    let dir = tempfile::tempdir().unwrap();
    let rgb = write_sample(dir.path(), "rgb.jpg", 1200, 900, SampleKind::Jpeg);
    let cmyk = write_sample(dir.path(), "cmyk.jpg", 1200, 900, SampleKind::JpegCmyk);
    let scaled = ThumbOptions {
        max_width: 96,
        max_height: 96,
        ..Default::default()
    };
    let full = ThumbOptions {
        scaled_decode: false,
        ..scaled.clone()
    };
    let o = |n: &str| dir.path().join("out").join(n);

    let (info_s, px_s) = thumb_pixels(&rgb, &o("s.jpg"), &scaled);
    let (info_f, px_f) = thumb_pixels(&rgb, &o("f.jpg"), &full);
    // 1200x900 -> 96x72: decoded at 1/4 (300x225 >= 2 x 96x72), not in full.
    assert_eq!((info_s.decoded_w, info_s.decoded_h), (300, 225));
    assert_eq!((info_f.decoded_w, info_f.decoded_h), (1200, 900));
    assert_eq!((info_s.dst_w, info_s.dst_h), (96, 72));
    let d = mean_abs_diff(&px_s, &px_f);
    assert!(
        d < 4.0,
        "scaled decode differs from the full decode by {d:.2} on average"
    );

    // CMYK through both decoders gives the colours of the RGB original (no inverted image).
    let (_, cmyk_s) = thumb_pixels(&cmyk, &o("cs.jpg"), &scaled);
    let (_, cmyk_f) = thumb_pixels(&cmyk, &o("cf.jpg"), &full);
    for (name, px) in [("scaled", &cmyk_s), ("full", &cmyk_f)] {
        let d = mean_abs_diff(px, &px_f);
        assert!(d < 8.0, "CMYK {name} decode is off by {d:.2} on average");
    }
}

#[test]
fn options_grayscale_blur_alpha_and_sixteen_bit() {
    let dir = tempfile::tempdir().unwrap();
    let rgba = write_sample(dir.path(), "a.png", 300, 200, SampleKind::PngRgba);
    let deep = write_sample(dir.path(), "d.png", 300, 200, SampleKind::Png16);
    let plain = write_sample(dir.path(), "p.png", 300, 200, SampleKind::Png);
    let base = ThumbOptions {
        max_width: 120,
        max_height: 120,
        ..Default::default()
    };
    let out = |n: &str| dir.path().join("out").join(n);

    // RGBA -> JPEG: transparent corners become white.
    thumbnail::thumbnail_file(&rgba, &out("a.jpg"), &base).unwrap();
    let img = image::open(out("a.jpg")).unwrap().to_rgb8();
    let corner = img.get_pixel(0, 0).0;
    assert!(
        corner.iter().all(|&c| c > 240),
        "corner should be white, is {corner:?}"
    );

    // 16-bit PNG: same picture as the 8-bit one.
    let (_, p8) = thumb_pixels(&plain, &out("p.jpg"), &base);
    let (_, p16) = thumb_pixels(&deep, &out("d.jpg"), &base);
    assert!(mean_abs_diff(&p8, &p16) < 1.0);

    // Grayscale: one channel out.
    let gray = ThumbOptions {
        grayscale: true,
        ..base.clone()
    };
    thumbnail::thumbnail_file(&plain, &out("g.jpg"), &gray).unwrap();
    assert_eq!(
        image::open(out("g.jpg")).unwrap().color(),
        image::ColorType::L8
    );

    // Blur: smoother than the sharp thumbnail (less difference between neighbours).
    let blur = ThumbOptions {
        blur: Some(2.0),
        ..base
    };
    let (_, blurred) = thumb_pixels(&plain, &out("b.jpg"), &blur);
    let roughness = |px: &[u8]| mean_abs_diff(&px[3..], &px[..px.len() - 3]);
    assert!(roughness(&blurred) < roughness(&p8) * 0.8);
}

#[test]
fn every_broken_file_fails_with_its_reason_and_leaves_no_output() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let broken = images::write_broken_files(src.path()).unwrap();
    assert_eq!(broken.len(), BrokenKind::ALL.len());
    let opts = ThumbOptions::default();
    for (path, kind) in broken.iter().zip(BrokenKind::ALL) {
        let output = out.path().join(path.file_name().unwrap());
        let before = std::fs::read(path).unwrap();
        let err = thumbnail::thumbnail_file(path, &output, &opts).unwrap_err();
        assert_eq!(err.path(), path.as_path());
        assert!(
            err.to_string().starts_with(&path.display().to_string()),
            "{err}"
        );
        let expected = match kind {
            BrokenKind::Empty => "empty",
            BrokenKind::Truncated => "decode",
            BrokenKind::NotAnImage | BrokenKind::RandomBytes => "unsupported",
            BrokenKind::HugePng | BrokenKind::HugeJpeg => "too_large",
        };
        assert_eq!(err.kind(), expected, "{kind:?}: {err}");
        match (&err, kind) {
            (ThumbError::TooLarge { width, height, .. }, BrokenKind::HugePng) => {
                assert_eq!((*width, *height), (100_000, 100_000))
            }
            (ThumbError::TooLarge { width, height, .. }, BrokenKind::HugeJpeg) => {
                assert_eq!((*width, *height), (60_000, 60_000))
            }
            (ThumbError::Decode { message, .. }, _) => {
                assert!(message.contains("truncated"), "{message}")
            }
            _ => {}
        }
        assert_eq!(std::fs::read(path).unwrap(), before, "input modified");
    }
    assert!(
        files_in(out.path()).is_empty(),
        "left behind: {:?}",
        files_in(out.path())
    );
}

#[test]
fn a_failure_leaves_an_older_output_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let broken = images::write_broken_files(dir.path()).unwrap();
    let output = dir.path().join("previous-thumbnail.jpg");
    std::fs::write(&output, b"older thumbnail").unwrap();
    thumbnail::thumbnail_file(&broken[1], &output, &ThumbOptions::default()).unwrap_err();
    assert_eq!(std::fs::read(&output).unwrap(), b"older thumbnail");
}

#[test]
fn refuses_to_overwrite_its_input_however_it_is_spelled() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_sample(dir.path(), "x.jpg", 200, 100, SampleKind::Jpeg);
    let before = std::fs::read(&input).unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    for output in [
        input.clone(),
        sub.join("..").join("x.jpg"),
        dir.path().join(".").join("x.jpg"),
    ] {
        let err = thumbnail::thumbnail_file(&input, &output, &ThumbOptions::default()).unwrap_err();
        assert_eq!(err.kind(), "same_as_input", "{err}");
    }
    assert_eq!(std::fs::read(&input).unwrap(), before);
}

#[test]
fn a_tight_pixel_limit_rejects_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_sample(dir.path(), "x.png", 200, 100, SampleKind::Png);
    let opts = ThumbOptions {
        max_pixels: 19_999,
        ..Default::default()
    };
    let err = thumbnail::thumbnail_file(&input, &dir.path().join("o.jpg"), &opts).unwrap_err();
    assert!(matches!(
        err,
        ThumbError::TooLarge {
            width: 200,
            height: 100,
            max_pixels: 19_999,
            ..
        }
    ));
    assert!(err.to_string().contains("200x100"), "{err}");
}

#[test]
fn find_images_is_sorted_skips_hidden_files_and_recurses_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("sub/deeper")).unwrap();
    for f in [
        "b.jpg",
        "a.PNG",
        "c.jpeg",
        "notes.txt",
        ".hidden.jpg",
        "sub/d.jpg",
        "sub/deeper/e.png",
    ] {
        std::fs::write(d.join(f), b"x").unwrap();
    }
    let names = |v: Vec<PathBuf>| -> Vec<String> {
        v.iter()
            .map(|p| p.strip_prefix(d).unwrap().to_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(thumbnail::find_images(d, false).unwrap()),
        ["a.PNG", "b.jpg", "c.jpeg"]
    );
    assert_eq!(
        names(thumbnail::find_images(d, true).unwrap()),
        ["a.PNG", "b.jpg", "c.jpeg", "sub/d.jpg", "sub/deeper/e.png"]
    );
}
