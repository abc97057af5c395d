//! Harness plumbing for `--python`: run the course's Python version of an example (the recipes
//! in `examples-patterns/python/`) on the same input, in the same run. Not a lesson.
//!
//! Each recipe prints one JSON object on its last stdout line (its figures, timed inside Python,
//! and its results); the binary prints both languages in one table and exits non-zero when the
//! results that must agree do not. Without python3 (or a package), `--python` exits 2 with the
//! message of `shared::python::Python::find`, which says what to install.

use anyhow::{Result, bail};
use serde_json::Value;
use shared::python::Python;

/// Finds python3 with `imports`, or exits 2 (a usage error) with what to install.
pub fn python_or_exit(imports: &[&str]) -> Python {
    match Python::find(imports) {
        Ok(py) => py,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}

/// Runs `examples-patterns/python/<recipe>.py` with `args` and returns its JSON object, with the
/// interpreter's version added as `"interpreter"`.
pub fn run_recipe(py: &Python, recipe: &str, args: &[String]) -> Result<Value> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = py.run_recipe(format!("examples-patterns/python/{recipe}.py"), &args)?;
    let mut json = out.json;
    if !json.is_object() {
        bail!("{recipe}.py did not print a JSON object: {json}");
    }
    json["interpreter"] = Value::String(py.version.clone());
    Ok(json)
}

/// A number field of a recipe's JSON, or an error naming it.
pub fn f64_field(v: &Value, key: &str) -> Result<f64> {
    match v[key].as_f64() {
        Some(x) if x.is_finite() => Ok(x),
        _ => bail!("the Python recipe's JSON has no number {key:?}: {v}"),
    }
}

/// An integer field of a recipe's JSON, or an error naming it.
pub fn u64_field(v: &Value, key: &str) -> Result<u64> {
    match v[key].as_u64() {
        Some(x) => Ok(x),
        None => bail!("the Python recipe's JSON has no integer {key:?}: {v}"),
    }
}

/// "1.3x": Python's figure over Rust's (times: how many times longer Python took).
pub fn ratio(python: f64, rust: f64) -> String {
    if rust <= 0.0 || !python.is_finite() {
        return "-".into();
    }
    let r = python / rust;
    if r >= 10.0 {
        format!("{r:.0}x")
    } else {
        format!("{r:.1}x")
    }
}

/// Rows of cells as an aligned table under a header and a rule: the first and last columns
/// left-aligned (names, notes), the others right-aligned (figures).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    lines.extend(rows.iter().cloned());
    shared::report::align_columns(&lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_read_as_times_python_over_rust() {
        assert_eq!(ratio(2.0, 1.0), "2.0x");
        assert_eq!(ratio(50.0, 1.0), "50x");
        assert_eq!(ratio(1.0, 0.0), "-");
    }

    #[test]
    fn tables_align_figures_right_and_names_left() {
        let t = table(
            &["language", "wall", "note"],
            &[
                vec!["Rust".into(), "1.0 s".into(), "a".into()],
                vec!["Python".into(), "12.0 s".into(), "b".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "language    wall  note");
        assert!(lines[1].chars().all(|c| c == '-'));
        assert_eq!(lines[2], "Rust       1.0 s  a");
        assert_eq!(lines[3], "Python    12.0 s  b");
    }

    #[test]
    fn missing_fields_are_named() {
        let v = serde_json::json!({"wall_s": 1.5, "n": 3});
        assert_eq!(f64_field(&v, "wall_s").unwrap(), 1.5);
        assert_eq!(u64_field(&v, "n").unwrap(), 3);
        assert!(
            f64_field(&v, "nope")
                .unwrap_err()
                .to_string()
                .contains("nope")
        );
    }
}
