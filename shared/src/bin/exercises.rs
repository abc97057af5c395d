//! The learner's loop for the exercises: list them with their status, check one, watch one.
//! Crates: none to copy (a tool, not a lesson: clap and anyhow around `cargo test`).
//!
//! ```text
//! cargo run -p shared --bin exercises -- list               # every exercise, with its status
//! cargo run -p shared --bin exercises -- check threads/02   # check one: the failed property and a hint
//! cargo run -p shared --bin exercises -- watch threads/02   # re-check on every save
//! cargo run -p shared --bin exercises -- verify             # CI: skeletons fail, solutions pass, wrong ones fail
//! cargo run -p shared --bin exercises -- catch-rate --runs 20   # how often each wrong solution is caught
//! ```
//!
//! An exercise is a folder `<crate>/exercises/NN-name/` with the learner's `exercise.rs` (the
//! statement, then a skeleton with `todo!()`), `solution.rs`, `wrong_*.rs` (plausible wrong
//! solutions) and `checks.rs`; `<crate>/tests/exercises.rs` compiles them all (`shared::exercise!`).
//! This tool only builds that test binary and runs the right test in it. Exercises of
//! examples-sync that are primitives also have a loom model: `check` runs it too (a build with
//! `RUSTFLAGS="--cfg loom"` in `target/loom`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

/// Lists, checks and watches the workspace's exercises.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Every exercise with its status (runs each learner check once).
    List {
        /// Only this crate (threads, processes, async, sync, patterns).
        krate: Option<String>,
    },
    /// Check one exercise: `threads/02`, `02-work-queue` or `work-queue`.
    Check { id: String },
    /// Check one exercise again every time its file changes (Ctrl-C to stop).
    Watch { id: String },
    /// For CI: every learner file as shipped fails (`todo!()`), every reference solution passes
    /// and every wrong solution is rejected, including under loom where an exercise has a model.
    Verify,
    /// Runs each wrong solution's check `--runs` times and prints how often it was caught.
    CatchRate {
        #[arg(long, default_value_t = 20, value_parser = shared::cli::u32_in(1, 1000))]
        runs: u32,
        /// Only this crate (threads, processes, async, sync, patterns) or exercise id.
        only: Option<String>,
    },
}

/// One exercise folder.
#[derive(Debug, Clone)]
struct Exercise {
    /// `examples-threads`
    krate: String,
    /// `threads`
    short: String,
    /// `02-work-queue`
    dir: String,
    /// `ex02_work_queue`: the module in tests/exercises.rs.
    module: String,
    path: PathBuf,
    title: String,
    concept: String,
    hint: String,
    wrong: Vec<String>,
    /// checks.rs has a `cfg(loom)` model.
    loom: bool,
}

impl Exercise {
    fn id(&self) -> String {
        format!("{}/{}", self.short, &self.dir[..2])
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("shared/ lives in the workspace root")
        .to_path_buf()
}

/// The paragraphs of a statement, each opened by `// Key:`.
const STATEMENT_KEYS: [&str; 5] = ["Concept", "Goal", "Hint", "Checked by", "Run"];

/// The `// Key: text` paragraph of a statement (continued on the following `//` lines).
fn statement_field(text: &str, key: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        let Some(l) = line.strip_prefix("//") else {
            break;
        };
        let l = l.trim();
        if let Some(rest) = l.strip_prefix(&format!("{key}:")) {
            inside = true;
            out.push_str(rest.trim());
        } else if inside {
            let starts_other = STATEMENT_KEYS
                .iter()
                .any(|k| l.starts_with(&format!("{k}:")));
            if l.is_empty() || starts_other {
                break;
            }
            out.push(' ');
            out.push_str(l);
        }
    }
    out
}

fn exercises() -> Result<Vec<Exercise>> {
    let root = workspace_root();
    let mut out = Vec::new();
    let mut crates: Vec<PathBuf> = std::fs::read_dir(&root)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("exercises").is_dir())
        .collect();
    crates.sort();
    for c in crates {
        let krate = c
            .file_name()
            .and_then(|n| n.to_str())
            .context("crate name")?
            .to_string();
        let short = krate.trim_start_matches("examples-").to_string();
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(c.join("exercises"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("exercise.rs").is_file())
            .collect();
        dirs.sort();
        for d in dirs {
            let dir = d
                .file_name()
                .and_then(|n| n.to_str())
                .context("exercise folder name")?
                .to_string();
            let text = std::fs::read_to_string(d.join("exercise.rs"))?;
            let title = text
                .lines()
                .next()
                .and_then(|l| l.split_once('—').map(|(_, t)| t.trim().to_string()))
                .unwrap_or_else(|| dir.clone());
            let mut wrong: Vec<String> = std::fs::read_dir(&d)?
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let n = e.file_name().to_str()?.to_string();
                    Some(n.strip_prefix("wrong_")?.strip_suffix(".rs")?.to_string())
                })
                .collect();
            wrong.sort();
            let checks = std::fs::read_to_string(d.join("checks.rs")).unwrap_or_default();
            out.push(Exercise {
                module: format!("ex{}", dir.replace('-', "_")),
                krate: krate.clone(),
                short: short.clone(),
                concept: statement_field(&text, "Concept"),
                hint: statement_field(&text, "Hint"),
                title,
                wrong,
                loom: checks.contains("cfg(loom)"),
                path: d.join("exercise.rs"),
                dir,
            });
        }
    }
    Ok(out)
}

fn find(id: &str) -> Result<Exercise> {
    let all = exercises()?;
    let matches: Vec<&Exercise> = all
        .iter()
        .filter(|e| e.id() == id || e.dir == id || e.dir.ends_with(id) || e.id().ends_with(id))
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!("no exercise matches `{id}`: try `exercises list`"),
        many => bail!(
            "`{id}` matches {}: be more precise",
            many.iter().map(|e| e.id()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Builds `<crate>`'s exercises test binary (optionally the loom build) and returns its path.
fn build_test_binary(krate: &str, loom: bool) -> Result<PathBuf> {
    let root = workspace_root();
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&root).args([
        "test",
        "-p",
        krate,
        "--test",
        "exercises",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ]);
    if loom {
        cmd.arg("--release")
            .env("RUSTFLAGS", "--cfg loom")
            .env("CARGO_TARGET_DIR", root.join("target/loom"));
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo")?;
    if !out.status.success() {
        bail!("the exercises of {krate} do not compile (see the errors above)");
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact"
            && msg["target"]["name"] == "exercises"
            && let Some(exe) = msg["executable"].as_str()
        {
            return Ok(PathBuf::from(exe));
        }
    }
    bail!("cargo built no exercises test binary for {krate}")
}

/// How one run of one test ended.
struct TestRun {
    passed: bool,
    /// The line that says why (the check's failure), or the last lines of output.
    why: String,
    output: String,
}

fn run_test(exe: &Path, name: &str, ignored: bool, seed: Option<u64>) -> Result<TestRun> {
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", name, "--nocapture", "--test-threads", "1"]);
    if ignored {
        cmd.arg("--ignored");
    }
    if let Some(s) = seed {
        cmd.env("EXERCISE_SEED", s.to_string());
    }
    let out = cmd
        .env("RUST_BACKTRACE", "0")
        .output()
        .with_context(|| format!("running {}", exe.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !text.contains("running 1 test") {
        bail!("{name}: no such test in {}", exe.display());
    }
    let why = text
        .lines()
        .skip_while(|l| {
            !(l.contains("not solved yet")
                || l.contains("not yet implemented")
                || l.contains("property violated")
                || l.contains("rejected as expected")
                || l.contains("passed every check"))
        })
        .take_while(|l| !l.starts_with("note:") && !l.starts_with("stack backtrace"))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(TestRun {
        passed: out.status.success(),
        why: if why.is_empty() {
            text.lines()
                .rev()
                .take(6)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            why
        },
        output: text,
    })
}

/// Checks one exercise, printing what the learner needs; true when it passes.
fn check(ex: &Exercise) -> Result<bool> {
    println!("{} — {}  ({})", ex.id(), ex.title, ex.path.display());
    if !ex.concept.is_empty() {
        println!("concept: {}", ex.concept);
    }
    let exe = build_test_binary(&ex.krate, false)?;
    let run = run_test(&exe, &format!("{}::check", ex.module), true, None)?;
    if !run.passed {
        println!("\n✗ {}\n", run.why.trim());
        if !ex.hint.is_empty() {
            println!("hint: {}", ex.hint);
        }
        return Ok(false);
    }
    println!("✓ stress and watchdog checks pass");
    if ex.loom {
        println!("  model-checking every interleaving with loom (a release build in target/loom)…");
        let exe = build_test_binary(&ex.krate, true)?;
        let run = run_test(&exe, &format!("{}::check", ex.module), true, None)?;
        if !run.passed {
            println!("\n✗ loom: {}\n", run.why.trim());
            if !ex.hint.is_empty() {
                println!("hint: {}", ex.hint);
            }
            return Ok(false);
        }
        println!("✓ loom: no interleaving breaks it");
    }
    println!("\nDone. Compare with solution.rs next to your file.");
    Ok(true)
}

/// The learner has not started: the check reached a `todo!()` (stress checks say "not solved
/// yet"; under loom the model's own panic says "not yet implemented").
fn is_unsolved(run: &TestRun) -> bool {
    !run.passed && (run.why.contains("not solved yet") || run.why.contains("not yet implemented"))
}

fn status_word(run: &TestRun) -> String {
    if run.passed {
        "done".into()
    } else if is_unsolved(run) {
        "not started".into()
    } else {
        let property = run
            .why
            .lines()
            .find_map(|l| {
                l.split_once("property violated: ")
                    .map(|(_, p)| p.trim().to_string())
            })
            .unwrap_or_else(|| "does not compile or crashed".into());
        format!("in progress: {property}")
    }
}

fn list(krate: Option<&str>) -> Result<()> {
    let all: Vec<Exercise> = exercises()?
        .into_iter()
        .filter(|e| krate.is_none_or(|k| e.short == k || e.krate == k))
        .collect();
    let mut by_crate: BTreeMap<String, Vec<Exercise>> = BTreeMap::new();
    for e in all {
        by_crate.entry(e.krate.clone()).or_default().push(e);
    }
    for (krate, list) in by_crate {
        let exe = build_test_binary(&krate, false)?;
        println!("\n{krate}");
        for ex in list {
            let run = run_test(&exe, &format!("{}::check", ex.module), true, None)?;
            println!("  {:<14} {:<44} {}", ex.id(), ex.title, status_word(&run));
        }
    }
    println!("\nCheck one: cargo run -p shared --bin exercises -- check <id>");
    Ok(())
}

fn watch(ex: &Exercise) -> Result<()> {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut last: Option<SystemTime> = None;
    loop {
        let now = mtime(&ex.path);
        if now != last {
            last = now;
            print!("\x1b[2J\x1b[H");
            let _ = check(ex);
            println!("\nwatching {} (Ctrl-C to stop)", ex.path.display());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// CI: the promise of the exercises, proved on this checkout.
fn verify() -> Result<bool> {
    let all = exercises()?;
    let mut ok = true;
    let mut by_crate: BTreeMap<String, Vec<Exercise>> = BTreeMap::new();
    for e in all {
        by_crate.entry(e.krate.clone()).or_default().push(e);
    }
    for (krate, list) in &by_crate {
        let loom_needed = list.iter().any(|e| e.loom);
        let builds: Vec<(bool, PathBuf)> = std::iter::once(false)
            .chain(loom_needed.then_some(true))
            .map(|loom| build_test_binary(krate, loom).map(|exe| (loom, exe)))
            .collect::<Result<_>>()?;
        for ex in list {
            for (loom, exe) in &builds {
                if *loom && !ex.loom {
                    continue;
                }
                let mode = if *loom { " (loom)" } else { "" };
                let skeleton = run_test(exe, &format!("{}::check", ex.module), true, None)?;
                if skeleton.passed || !is_unsolved(&skeleton) {
                    ok = false;
                    println!(
                        "✗ {}{mode}: the skeleton does not fail with `todo!()`: {}",
                        ex.id(),
                        skeleton.why
                    );
                }
                let sol = run_test(exe, &format!("{}::solution_passes", ex.module), false, None)?;
                if !sol.passed {
                    ok = false;
                    println!(
                        "✗ {}{mode}: the reference solution fails: {}",
                        ex.id(),
                        sol.why
                    );
                }
                if ex.wrong.is_empty() {
                    ok = false;
                    println!("✗ {}: no wrong solution to prove the checks check", ex.id());
                }
                for w in &ex.wrong {
                    let r = run_test(exe, &format!("{}::rejects::{w}", ex.module), false, None)?;
                    if !r.passed {
                        ok = false;
                        println!(
                            "✗ {}{mode}: wrong solution `{w}` is not rejected: {}",
                            ex.id(),
                            r.why
                        );
                    }
                }
                if !skeleton.passed && sol.passed {
                    println!(
                        "✓ {}{mode} {}: skeleton fails, solution passes, {} wrong solution(s) rejected",
                        ex.id(),
                        ex.title,
                        ex.wrong.len()
                    );
                }
            }
        }
    }
    Ok(ok)
}

/// Which kind of check caught a wrong solution, from its failure text.
fn caught_by(text: &str, loom: bool) -> &'static str {
    if loom {
        "loom"
    } else if text.contains("no progress in") {
        "watchdog"
    } else if text.contains("failing seed") {
        "stress"
    } else {
        "invariant"
    }
}

fn catch_rate(runs: u32, only: Option<&str>) -> Result<()> {
    let all: Vec<Exercise> = exercises()?
        .into_iter()
        .filter(|e| {
            only.is_none_or(|o| e.short == o || e.krate == o || e.id() == o || e.dir.contains(o))
        })
        .collect();
    println!("| exercise (its concept) | wrong solution | caught by | caught |");
    println!("|---|---|---|---|");
    let mut built: BTreeMap<(String, bool), PathBuf> = BTreeMap::new();
    for ex in &all {
        for loom in [false, true] {
            if loom && !ex.loom {
                continue;
            }
            let key = (ex.krate.clone(), loom);
            if !built.contains_key(&key) {
                built.insert(key.clone(), build_test_binary(&ex.krate, loom)?);
            }
            let exe = &built[&key];
            for w in &ex.wrong {
                let mut caught = 0;
                let mut by = "-";
                for _ in 0..runs {
                    let r = run_test(exe, &format!("{}::rejects::{w}", ex.module), false, None)?;
                    if r.passed {
                        caught += 1;
                        by = caught_by(&r.output, loom);
                    }
                }
                println!(
                    "| {} {} | `{w}` | {by} | {caught}/{runs} |",
                    ex.id(),
                    ex.title
                );
            }
        }
    }
    Ok(())
}

fn main() -> Result<ExitCode> {
    let args = Args::parse();
    let ok = match args.command {
        Cmd::List { krate } => list(krate.as_deref()).map(|()| true)?,
        Cmd::Check { id } => check(&find(&id)?)?,
        Cmd::Watch { id } => watch(&find(&id)?).map(|()| true)?,
        Cmd::Verify => verify()?,
        Cmd::CatchRate { runs, only } => catch_rate(runs, only.as_deref()).map(|()| true)?,
    };
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_fields_span_lines_until_the_next_field() {
        let text = "// Exercise threads/02 — A queue\n//\n// Concept: one\n// two.\n// Hint: use\n// fetch_add.\n// Checked by: stress\n\nuse x;";
        assert_eq!(statement_field(text, "Concept"), "one two.");
        assert_eq!(statement_field(text, "Hint"), "use fetch_add.");
    }

    #[test]
    fn caught_by_reads_the_failure() {
        assert_eq!(caught_by("no progress in 3.0 s", false), "watchdog");
        assert_eq!(caught_by("failing seed: 12", false), "stress");
        assert_eq!(caught_by("anything", true), "loom");
        assert_eq!(caught_by("property violated: x", false), "invariant");
    }
}
