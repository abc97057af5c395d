//! Harness plumbing for `--python`: run the course's Python version of an example (the recipes
//! in `examples-sync/python/`) on the same parameters, in the same run. Not a lesson.
//!
//! Each recipe prints one JSON object on its last stdout line (its figures, timed inside Python,
//! and its results); the binary prints both languages in one table and exits non-zero when the
//! results that must agree do not. Without python3, `--python` exits 2 with the message of
//! `shared::python::Python::find`, which says what to install.

use anyhow::{Result, bail};
use serde_json::Value;
use shared::python::Python;

/// Finds python3, or exits 2 (a usage error) with what to install.
pub fn python_or_exit() -> Python {
    match Python::find(&[]) {
        Ok(py) => py,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}

/// Runs `examples-sync/python/<recipe>.py` with `args` and returns its JSON object, with the
/// interpreter's version added as `"interpreter"`.
pub fn run_recipe(recipe: &str, args: &[String]) -> Result<Value> {
    let py = python_or_exit();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = py.run_recipe(format!("examples-sync/python/{recipe}.py"), &args)?;
    let mut json = out.json;
    if !json.is_object() {
        bail!("{recipe}.py did not print a JSON object: {json}");
    }
    json["interpreter"] = Value::String(py.version);
    Ok(json)
}

/// "12.3x" (Python's time over Rust's): how many times longer Python took.
pub fn slower(python_s: f64, rust_s: f64) -> String {
    if rust_s <= 0.0 || !python_s.is_finite() {
        return "-".into();
    }
    let r = python_s / rust_s;
    if r >= 10.0 {
        format!("{r:.0}x")
    } else {
        format!("{r:.1}x")
    }
}

/// A number field of a recipe's JSON, or an error naming it.
pub fn f64_field(v: &Value, key: &str) -> Result<f64> {
    match v[key].as_f64() {
        Some(x) => Ok(x),
        None => bail!("the Python recipe's JSON has no number {key:?}: {v}"),
    }
}

/// An integer field of a recipe's JSON, or an error naming it.
pub fn u64_field(v: &Value, key: &str) -> Result<u64> {
    match v[key].as_u64() {
        Some(x) => Ok(x),
        None => bail!("the Python recipe's JSON has no integer {key:?}: {v}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_read_as_times_slower() {
        assert_eq!(slower(2.0, 1.0), "2.0x");
        assert_eq!(slower(50.0, 1.0), "50x");
        assert_eq!(slower(1.0, 0.0), "-");
    }
}
