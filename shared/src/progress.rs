//! Progress-bar styles used across the workspace (indicatif).
//!
//! Bars draw on stderr. They are hidden when stdout or stderr is not a terminal (piped into a
//! file, run by a test or by CI) or when the example was asked for `--json`, so machine-readable
//! output is never interleaved with escape codes.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// Whether progress bars should be drawn: only for a human at a terminal, never with `--json`.
pub fn enabled(json: bool) -> bool {
    !json && std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

fn target(json: bool) -> ProgressDrawTarget {
    if enabled(json) {
        // 10 Hz is plenty for a human and keeps redraws off the hot path.
        ProgressDrawTarget::stderr_with_hz(10)
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// `[=====>    ] 42/100 12.3/s eta 4s` with an optional `{msg}` prefix.
pub fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{msg:12} [{elapsed_precise}] [{wide_bar:.cyan/blue}] {pos}/{len} {per_sec} eta {eta}",
    )
    .expect("the template is valid")
    .progress_chars("=> ")
}

/// Like [`bar_style`] but counting bytes.
pub fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{msg:12} [{elapsed_precise}] [{wide_bar:.green/blue}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .expect("the template is valid")
    .progress_chars("=> ")
}

/// One status line per worker: `worker-03  downloading 000042.bin (3/5)`.
pub fn line_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:.bold.dim} {spinner} {wide_msg}")
        .expect("the template is valid")
}

/// A counting bar of `len` steps, hidden when [`enabled`] says so.
pub fn bar(len: u64, json: bool) -> ProgressBar {
    ProgressBar::with_draw_target(Some(len), target(json)).with_style(bar_style())
}

/// A byte-counting bar of `len` bytes, hidden when [`enabled`] says so.
pub fn bytes_bar(len: u64, json: bool) -> ProgressBar {
    ProgressBar::with_draw_target(Some(len), target(json)).with_style(bytes_style())
}

/// A spinner for work of unknown length.
pub fn spinner(json: bool) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(None, target(json)).with_style(line_style());
    if enabled(json) {
        pb.enable_steady_tick(std::time::Duration::from_millis(100));
    }
    pb
}

/// A container for several bars (an overall bar plus one line per worker).
pub fn multi(json: bool) -> MultiProgress {
    MultiProgress::with_draw_target(target(json))
}

/// Add a worker status line to `mp`, named `name` (shown as the prefix).
pub fn worker_line(mp: &MultiProgress, name: &str) -> ProgressBar {
    let pb = mp.add(ProgressBar::new_spinner().with_style(line_style()));
    pb.set_prefix(name.to_string());
    pb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_always_hides_the_bars() {
        assert!(!enabled(true));
        let pb = bar(10, true);
        assert!(pb.is_hidden());
        pb.inc(3);
        assert_eq!(pb.position(), 3, "hidden bars still count");
        let mp = multi(true);
        let line = worker_line(&mp, "worker-1");
        line.set_message("busy");
        assert_eq!(line.prefix(), "worker-1");
    }

    #[test]
    fn tests_are_not_a_terminal_so_bars_hide() {
        // `cargo test` captures stdout, so a test never draws bars.
        assert!(bytes_bar(100, false).is_hidden());
        assert!(spinner(false).is_hidden());
    }
}
