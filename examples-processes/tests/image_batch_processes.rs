//! End-to-end tests of `image-batch-processes`: the real binary, its worker processes and the
//! files they write. Behaviour only (exit codes, reports, files), never timings.

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_image-batch-processes");

/// Small images: `shared` is not optimised in debug builds.
fn small_images(dir: &Path, count: usize) -> Vec<PathBuf> {
    let spec = shared::images::SampleSpec {
        count,
        max_mp: 0.15,
        min_mp: 0.05,
        ..Default::default()
    };
    shared::images::generate_folder(dir, &spec).unwrap()
}

/// Runs `cmd` with a hang guard: kills it and fails if it is still running after `bound`.
fn output_within(cmd: &mut Command, bound: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + bound;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running after {bound:?}: a hang");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    eprintln!("stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
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

#[test]
fn image_batch_processes_reports_broken_files_and_matches_threads() {
    let root = tempfile::tempdir().unwrap();
    let (in_dir, out_dir) = (root.path().join("in"), root.path().join("out"));
    let good = small_images(&in_dir, 5);
    let broken = shared::images::write_broken_files(&in_dir).unwrap();

    let out = Command::new(BIN)
        .arg(&in_dir)
        .arg(&out_dir)
        .args(["--workers", "2", "--size", "64", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "broken files make the run fail: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], good.len());
    assert_eq!(json["failed"], broken.len());
    assert_eq!(
        json["identical"], true,
        "processes and rayon wrote the same bytes"
    );
    let kinds: Vec<&str> = json["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    for kind in ["empty", "decode", "unsupported", "too_large"] {
        assert!(kinds.contains(&kind), "no {kind} failure in {kinds:?}");
    }
    // Exactly one thumbnail per good image, none for the broken ones, no temporary leftovers.
    let mut written: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    let mut expected: Vec<String> = good
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .replace(".png", ".png.jpg")
        })
        .collect();
    expected.sort();
    assert_eq!(written, expected);
    let per_worker: u64 = json["per_worker"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["images"].as_u64().unwrap())
        .sum();
    assert_eq!(
        per_worker,
        good.len() as u64,
        "every good image was done by exactly one worker"
    );
}

/// `--python` runs the course's own `Pool` + Pillow recipe (examples-threads/python/image_batch.py)
/// on the same folder: the same files, with the same dimensions, read back from both folders.
/// Skipped (with a printed reason) where python3 or Pillow is missing; CI installs them.
#[test]
fn python_pool_with_pillow_writes_the_same_files_with_the_same_dimensions() {
    if let Err(e) = shared::python::Python::find(&["PIL"]) {
        println!("SKIPPED: {e}");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let (in_dir, out_dir) = (root.path().join("in"), root.path().join("out"));
    let good = small_images(&in_dir, 4);
    let broken = shared::images::write_broken_files(&in_dir).unwrap();
    let out = Command::new(BIN)
        .arg(&in_dir)
        .arg(&out_dir)
        .args(["--workers", "2", "--size", "80x50", "--python", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "broken files make the run fail");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let python = &json["python"];
    assert_eq!(python["same_files_and_dimensions"], true, "{python}");
    assert_eq!(python["ok"], good.len(), "{python}");
    assert_eq!(python["failed"], broken.len(), "{python}");
    let rows = json["comparison"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "rayon, processes, Python: {rows:?}");
    assert_eq!(rows[2]["agrees"], true);
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Issue 12, defect 8: with `--recursive`, one unreadable sub-folder used to end the batch
/// before any image was processed, without naming the folder. Now it is one failure, named.
#[test]
fn an_unreadable_subfolder_is_reported_and_the_rest_processed() {
    use std::os::unix::process::CommandExt;
    let root = tempfile::tempdir().unwrap();
    let (input, output) = (root.path().join("in"), root.path().join("out"));
    let top = small_images(&input, 2);
    let nested = small_images(&input.join("2024"), 1);
    let locked = input.join("private");
    small_images(&locked, 1);
    std::fs::create_dir_all(&output).unwrap();
    // root reads any folder whatever its mode: run as `nobody` then (see image-batch's test).
    chmod(root.path(), 0o755);
    chmod(&output, 0o777);
    chmod(&locked, 0o000);
    let mut cmd = Command::new(BIN);
    cmd.arg(&input)
        .arg(&output)
        .args(["--recursive", "--json", "--workers", "2"]);
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        cmd.uid(65534).gid(65534);
    }
    let out = output_within(&mut cmd, Duration::from_secs(120));
    chmod(&locked, 0o755);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["ok"], top.len() + nested.len());
    assert_eq!(v["failed"], 1);
    assert_eq!(v["identical"], true, "the rayon run saw the same batch");
    let failure = &v["failures"][0];
    assert_eq!(failure["kind"], "listing");
    assert_eq!(
        failure["path"],
        locked.canonicalize().unwrap().to_str().unwrap()
    );
}

/// Writes a `w`×`h` 16-bit RGBA PNG by hand (all zeros: tiny on disk, 8 bytes a pixel once
/// decoded), with a stored (uncompressed) zlib stream: no encoder needed.
fn deep_png(path: &Path, w: u32, h: u32) {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in bytes {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let raw_len = (1 + w as usize * 8) * h as usize; // a filter byte, then RGBA16 per row
    let mut zlib = vec![0x78, 0x01];
    let mut left = raw_len;
    while left > 0 {
        let n = left.min(65_535);
        left -= n;
        zlib.push(u8::from(left == 0));
        let n = u16::try_from(n).unwrap();
        zlib.extend_from_slice(&n.to_le_bytes());
        zlib.extend_from_slice(&(!n).to_le_bytes());
        zlib.resize(zlib.len() + usize::from(n), 0);
    }
    // Adler-32 of `raw_len` zero bytes: a = 1, b = raw_len (mod 65521).
    let b = u32::try_from(raw_len % 65_521).unwrap();
    zlib.extend_from_slice(&((b << 16) | 1).to_be_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[16, 6, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &zlib);
    chunk(&mut png, b"IEND", &[]);
    std::fs::write(path, png).unwrap();
}

/// Issue 12, defect 8: big 16-bit PNGs used to be decoded by both workers at once. The parent's
/// decode budget admits an image larger than the budget alone, whichever worker takes it.
#[test]
fn images_larger_than_the_budget_are_admitted_one_at_a_time() {
    let root = tempfile::tempdir().unwrap();
    let (input, output) = (root.path().join("in"), root.path().join("out"));
    std::fs::create_dir_all(&input).unwrap();
    for name in ["a.png", "b.png", "c.png"] {
        deep_png(&input.join(name), 1_500, 1_500); // 27 MB decoded, over a 16 MiB budget
    }
    let mut cmd = Command::new(BIN);
    cmd.arg(&input)
        .arg(&output)
        .args(["--workers", "2", "--memory-budget", "16", "--json"]);
    let out = output_within(&mut cmd, Duration::from_secs(300));
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["ok"], 3);
    assert_eq!(v["identical"], true);
    let budget = &v["memory_budget"];
    assert_eq!(budget["capacity_bytes"], 16 << 20);
    assert_eq!(budget["oversized"], 3);
    assert!(
        budget["peak_bytes"].as_u64().unwrap() <= 16 << 20,
        "{budget}"
    );
}

/// Pids of the live processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            out.push(pid);
        }
    }
    out
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    unsafe { libc::kill(i32::try_from(pid).unwrap(), sig) };
}

/// SIGTERM stops the batch like Ctrl-C: slots stop taking images, the ones in flight finish,
/// every worker gets EOF and is reaped, no partial file is left, exit 130.
#[test]
fn sigterm_mid_batch_stops_cleanly_and_reaps_every_worker() {
    let root = tempfile::tempdir().unwrap();
    let (input, output) = (root.path().join("in"), root.path().join("out"));
    let seeds = small_images(&input, 4);
    let total = 120;
    for i in 0..total - seeds.len() {
        let src = &seeds[i % seeds.len()];
        let name = format!("copy-{i:03}-{}", src.file_name().unwrap().to_str().unwrap());
        std::fs::copy(src, input.join(name)).unwrap();
    }
    let child = Command::new(BIN)
        .arg(&input)
        .arg(&output)
        .args(["--workers", "1", "--no-compare", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first thumbnail, freeze the parent so the count holds still, queue the
    // SIGTERM and let it go on: the batch is provably mid-way.
    let thumbs = || std::fs::read_dir(&output).map_or(0, |d| d.count());
    let deadline = Instant::now() + Duration::from_secs(120);
    while thumbs() == 0 {
        assert!(Instant::now() < deadline, "no thumbnail after 120 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(child.id(), libc::SIGSTOP);
    let written = thumbs();
    signal(child.id(), libc::SIGTERM);
    signal(child.id(), libc::SIGCONT);
    assert!(written < total, "the batch ended before the signal");
    let parent = child.id();
    let out = child.wait_with_output().unwrap();
    eprintln!("stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(130), "stopped as for Ctrl-C");
    let v = json(&out);
    let (ok, cancelled) = (v["ok"].as_u64().unwrap(), v["cancelled"].as_u64().unwrap());
    assert!(cancelled > 0, "{v}");
    assert_eq!(ok + cancelled, total as u64);
    assert_eq!(v["failed"], 0);
    let files = snapshot(&output);
    assert_eq!(files.len() as u64, ok);
    for name in files.keys() {
        assert!(
            !name.to_str().unwrap().starts_with('.'),
            "partial file {name:?}"
        );
    }
    let left = processes_with(&format!("--parent-pid {parent}"));
    assert!(left.is_empty(), "workers left behind: {left:?}");
}

/// Issue 12: `--blur inf` and `--workers 18446744073709551615` panicked, `--workers 0` and
/// `--max-megapixels NaN` ended with exit 1 after generating the samples. Refused by clap now.
#[test]
fn bad_numbers_are_refused_before_any_work() {
    let max = "18446744073709551615";
    for args in [
        ["--blur", "inf"],
        ["--max-megapixels", "NaN"],
        ["--workers", "0"],
        ["--workers", max],
        ["--count", max],
        ["--memory-budget", "-1"],
    ] {
        // `--flag=value`: `-1` on its own would be read as a flag.
        let arg = format!("{}={}", args[0], args[1]);
        let out = Command::new(BIN).arg(&arg).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(args[0]), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: work started");
    }
}
