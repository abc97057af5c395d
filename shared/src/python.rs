//! `--python`: run the course's Python version of an example on the same input, in the same run.
//!
//! The recipes live next to the crate they mirror (`examples-threads/python/image_batch.py`, …),
//! written the way the course writes Python. Each prints **one JSON object** on its last line of
//! stdout: its own measured figures (`"wall_s"`, timed inside Python so that interpreter start-up
//! is not billed to the work) and its result (counts, checksums), which the Rust side compares
//! with its own. This module finds the interpreter and the packages a recipe needs, and says
//! exactly what to install when something is missing.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! let py = shared::python::Python::find(&["PIL"])?; // or: "install Pillow: pip install Pillow"
//! let out = py.run_recipe("examples-threads/python/image_batch.py", &["IN", "OUT", "--workers", "2"])?;
//! let wall = out.json["wall_s"].as_f64();
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The pip package that provides an import name, where they differ.
fn pip_name(import: &str) -> &str {
    match import {
        "PIL" => "Pillow",
        "yaml" => "PyYAML",
        other => other,
    }
}

/// A Python interpreter that has every package a recipe asked for.
#[derive(Debug, Clone)]
pub struct Python {
    pub exe: PathBuf,
    /// `Python 3.11.7`
    pub version: String,
}

/// What a recipe printed, and how long the whole process took (start-up included).
#[derive(Debug, Clone)]
pub struct RecipeOutput {
    /// The JSON object of the recipe's last stdout line.
    pub json: serde_json::Value,
    /// Wall time of the whole `python3` process, interpreter start included.
    pub process_wall: Duration,
    /// Everything the recipe wrote to stderr (progress, warnings).
    pub stderr: String,
}

impl Python {
    /// Finds `python3` (or `$PYTHON`) with the given import names available. The error says
    /// exactly what to install.
    pub fn find(imports: &[&str]) -> Result<Python> {
        let exe =
            std::env::var_os("PYTHON").map_or_else(|| PathBuf::from("python3"), PathBuf::from);
        Self::find_at(exe, imports)
    }

    /// [`Python::find`] with the interpreter given.
    pub fn find_at(exe: PathBuf, imports: &[&str]) -> Result<Python> {
        let version = Command::new(&exe)
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
                text.trim().to_string()
            });
        let Some(version) = version else {
            bail!(
                "--python needs python3, which was not found (looked for `{}`; set $PYTHON to \
                 choose another). Install it: `apt-get install python3 python3-pip` (Debian/Ubuntu) \
                 or see python.org.",
                exe.display()
            );
        };
        let missing: Vec<&str> = imports
            .iter()
            .copied()
            .filter(|m| {
                !Command::new(&exe)
                    .args(["-c", &format!("import {m}")])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
            .collect();
        if !missing.is_empty() {
            let pkgs: Vec<&str> = missing.iter().map(|m| pip_name(m)).collect();
            bail!(
                "--python needs the Python package(s) {} for {version}: install with \
                 `{} -m pip install {}` (or `pip install -r <crate>/python/requirements.txt`).",
                pkgs.join(", "),
                exe.display(),
                pkgs.join(" ")
            );
        }
        Ok(Python { exe, version })
    }

    /// Runs `script` (a path relative to the workspace root, or absolute) with `args`, and
    /// parses the JSON object on its last stdout line. A non-zero exit is an error that carries
    /// the recipe's stderr.
    pub fn run_recipe(&self, script: impl AsRef<Path>, args: &[&str]) -> Result<RecipeOutput> {
        let script = recipe_path(script.as_ref());
        let start = Instant::now();
        let out = Command::new(&self.exe)
            .arg(&script)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {} {}", self.exe.display(), script.display()))?;
        let process_wall = start.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            bail!(
                "{} failed ({}):\n{}",
                script.display(),
                crate::report::describe_exit(out.status),
                stderr.trim_end()
            );
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .with_context(|| format!("{} printed nothing", script.display()))?;
        let json = serde_json::from_str(last).with_context(|| {
            format!(
                "{} did not end with a JSON line: {last:?}",
                script.display()
            )
        })?;
        Ok(RecipeOutput {
            json,
            process_wall,
            stderr,
        })
    }
}

/// A recipe path: absolute as is, otherwise relative to the workspace root (found from this
/// crate's manifest at build time, so binaries work from any current directory).
pub fn recipe_path(script: &Path) -> PathBuf {
    if script.is_absolute() {
        return script.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| script.to_path_buf(), |root| root.join(script))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python_or_skip() -> Option<Python> {
        match Python::find(&[]) {
            Ok(p) => Some(p),
            Err(e) => {
                println!("SKIPPED: {e}");
                None
            }
        }
    }

    #[test]
    fn a_missing_package_names_what_to_pip_install() {
        let Some(_) = python_or_skip() else { return };
        let err = Python::find(&["PIL_surely_not_installed_xyz"]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("pip install PIL_surely_not_installed_xyz"),
            "{msg}"
        );
    }

    #[test]
    fn a_missing_interpreter_says_how_to_install_it() {
        let err = Python::find_at("/nonexistent/python3".into(), &[]).unwrap_err();
        assert!(err.to_string().contains("apt-get install python3"), "{err}");
    }

    #[test]
    fn a_recipe_last_json_line_is_parsed_and_failures_carry_stderr() {
        let Some(py) = python_or_skip() else { return };
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = dir.path().join("ok.py");
        std::fs::write(&ok, "import json, sys\nprint('warming up')\nprint(json.dumps({'wall_s': 0.5, 'n': int(sys.argv[1])}))\n").expect("write");
        let out = py.run_recipe(&ok, &["7"]).expect("runs");
        assert_eq!(out.json["n"], 7);
        assert_eq!(out.json["wall_s"], 0.5);
        let bad = dir.path().join("bad.py");
        std::fs::write(
            &bad,
            "import sys\nsys.stderr.write('boom\\n')\nsys.exit(3)\n",
        )
        .expect("write");
        let err = py.run_recipe(&bad, &[]).unwrap_err().to_string();
        assert!(
            err.contains("exited with code 3") && err.contains("boom"),
            "{err}"
        );
    }
}
