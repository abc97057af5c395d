//! End-to-end tests of `image-batch`: the real binary on generated folders with good and broken
//! images. They check behaviour (exit codes, reports, files written or not), never timings.
#![allow(clippy::unwrap_used)] // helpers unwrap too

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use shared::images::{self, BrokenKind, SampleSpec};

const BIN: &str = env!("CARGO_BIN_EXE_image-batch");

/// Small images of every kind (the generator is not optimised in debug builds).
fn good_images(dir: &Path, count: usize) -> Vec<PathBuf> {
    let spec = SampleSpec {
        count,
        seed: 5,
        min_mp: 0.01,
        max_mp: 0.1,
        png_fraction: 0.4,
        rgba_fraction: 0.5,
        gray_fraction: 0.2,
        cmyk_fraction: 0.3,
        deep_fraction: 0.5,
        ..SampleSpec::default()
    };
    images::generate_folder(dir, &spec).unwrap()
}

fn run(args: &[&Path], flags: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).args(flags);
    let out = cmd.output().unwrap();
    eprintln!("stdout:\n{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Every file under `dir` with its content.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut map = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                map.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    map
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

#[test]
fn broken_files_are_reported_and_skipped_good_ones_are_processed() {
    let root = tempfile::tempdir().unwrap();
    let (input, output) = (root.path().join("in"), root.path().join("out"));
    let good = good_images(&input, 10);
    let broken = images::write_broken_files(&input).unwrap();
    let before = snapshot(&input);

    let out = run(&[&input, &output], &["--size", "64x48", "--threads", "2"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed file must give exit code 1"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{} file(s) FAILED", broken.len())),
        "{stdout}"
    );
    for (path, kind) in broken.iter().zip(BrokenKind::ALL) {
        let name = path.file_name().unwrap().to_str().unwrap();
        let line = stdout
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} not listed"));
        let reason = match kind {
            BrokenKind::Empty => "empty file",
            BrokenKind::Truncated => "truncated",
            BrokenKind::NotAnImage | BrokenKind::RandomBytes => "not a JPEG or PNG",
            BrokenKind::HugePng => "100000x100000",
            BrokenKind::HugeJpeg => "60000x60000",
        };
        assert!(
            line.contains(reason),
            "{name}: expected `{reason}` in `{line}`"
        );
        assert!(!output.join(format!("{name}.jpg")).exists() && !output.join(name).exists());
    }

    // Every good image has a valid thumbnail that fits the box; nothing else was written.
    let written = snapshot(&output);
    assert_eq!(written.len(), good.len(), "{:?}", written.keys());
    for (name, bytes) in &written {
        assert!(
            !name.to_str().unwrap().starts_with('.'),
            "temporary file left: {name:?}"
        );
        let img = image::load_from_memory(bytes).unwrap();
        assert!(
            img.width() <= 64 && img.height() <= 48,
            "{name:?} is {}x{}",
            img.width(),
            img.height()
        );
        assert!(
            img.width() == 64 || img.height() == 48,
            "{name:?} does not fill the box"
        );
    }
    assert_eq!(snapshot(&input), before, "inputs must never change");
}

#[test]
fn json_counts_add_up() {
    let root = tempfile::tempdir().unwrap();
    let (input, output) = (root.path().join("in"), root.path().join("out"));
    let good = good_images(&input, 6);
    let broken = images::write_broken_files(&input).unwrap();

    let out = run(
        &[&input, &output],
        &["--json", "--format", "png", "--size", "40"],
    );
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["images"], good.len() + broken.len());
    assert_eq!(v["ok"], good.len());
    assert_eq!(v["failed"], broken.len());
    let mut kinds: Vec<&str> = v["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "decode",
            "empty",
            "too_large",
            "too_large",
            "unsupported",
            "unsupported"
        ]
    );
    let per_thread: u64 = v["per_thread"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["images"].as_u64().unwrap())
        .sum();
    assert_eq!(
        per_thread,
        good.len() as u64,
        "every image was done by exactly one thread"
    );
    assert!(v["megapixels"].as_f64().unwrap() > 0.0);
    // PNG output: the generated JPEG `x.jpg` becomes `x.jpg.png`, a PNG `y.png` stays `y.png`.
    for (name, bytes) in snapshot(&output) {
        assert_eq!(name.extension().unwrap(), "png");
        assert_eq!(
            image::guess_format(&bytes).unwrap(),
            image::ImageFormat::Png
        );
    }
}

#[test]
fn sequential_and_parallel_runs_write_identical_files() {
    let root = tempfile::tempdir().unwrap();
    let (input, output) = (root.path().join("in"), root.path().join("out"));
    let good = good_images(&input, 8);
    let out = run(
        &[&input, &output],
        &[
            "--sequential",
            "--threads",
            "2",
            "--json",
            "--grayscale",
            "--blur",
            "1",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["identical"], true);
    assert_eq!(v["ok"], good.len());
    let rows = v["speedup"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["agrees"], true);
    // Grayscale thumbnails: one channel.
    for bytes in snapshot(&output).values() {
        assert_eq!(
            image::load_from_memory(bytes).unwrap().color(),
            image::ColorType::L8
        );
    }
}

#[test]
fn refuses_to_write_into_or_around_the_input_folder() {
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("photos");
    good_images(&input, 2);
    let before = snapshot(root.path());
    for out_dir in [input.clone(), input.join("."), root.path().to_path_buf()] {
        let out = run(&[&input, &out_dir], &[]);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("refusing"),
            "{out_dir:?}"
        );
    }
    assert_eq!(
        snapshot(root.path()),
        before,
        "nothing may be written or changed"
    );
}

#[test]
fn recursive_keeps_the_tree_and_ignores_its_own_output_inside_the_input() {
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("in");
    let top = good_images(&input, 2);
    let nested = good_images(&input.join("2024/summer"), 2);
    let output = input.join("thumbs"); // inside the input folder: allowed, excluded from the walk
    for _ in 0..2 {
        let out = run(&[&input, &output], &["--recursive", "--json"]);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(
            json(&out)["images"],
            top.len() + nested.len(),
            "outputs were taken as inputs"
        );
    }
    for p in nested {
        let rel = p.strip_prefix(&input).unwrap();
        let thumb = output.join(thumbnail_name(rel));
        assert!(thumb.exists(), "{thumb:?} missing");
    }
    let flat = run(&[&input, &root.path().join("flat")], &["--json"]);
    assert_eq!(
        json(&flat)["images"],
        top.len(),
        "without --recursive, sub-folders are skipped"
    );
}

fn thumbnail_name(rel: &Path) -> PathBuf {
    shared::thumbnail::output_path(
        Path::new(""),
        Path::new(""),
        rel,
        shared::thumbnail::OutputFormat::Jpeg { quality: 85 },
    )
}

#[test]
fn without_arguments_it_generates_samples_and_processes_them() {
    let root = tempfile::tempdir().unwrap();
    let samples = root.path().join("samples");
    // --count keeps the debug-build test quick; the rest is the default path.
    let out = run(
        &[],
        &[
            "--samples-dir",
            samples.to_str().unwrap(),
            "--count",
            "3",
            "--with-broken",
            "--json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "--with-broken adds failing files"
    );
    let v = json(&out);
    assert_eq!(v["ok"], 3);
    assert_eq!(v["failed"], BrokenKind::ALL.len());
    assert_eq!(
        snapshot(&samples).len(),
        3 + BrokenKind::ALL.len(),
        "samples are kept in --samples-dir"
    );
    // Without OUT_DIR the thumbnails go to a new temporary folder, kept and reported.
    let out_dir = PathBuf::from(v["out_dir"].as_str().unwrap());
    assert_eq!(snapshot(&out_dir).len(), 3);
    std::fs::remove_dir_all(out_dir).unwrap();
}

#[test]
fn help_exits_zero() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--sequential"));
}
