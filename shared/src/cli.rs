//! Value parsers for the examples' numeric flags: a bad value is refused by clap, with a message
//! and exit status 2, before the program starts any work.
//!
//! Every numeric flag states its range: `0`, `-1`, `NaN`, `inf` and `1e30` are values users do
//! type (by mistake, or to see what happens), and each one that slips through becomes a panic
//! (`Duration::from_secs_f64(-1.0)`), a hang (a rate of 0 per second) or an allocation of 2^64
//! elements. `shared/tests/hostile_flags.rs` tries them all on every binary.
//!
//! ```
//! use clap::Parser;
//! use shared::cli;
//!
//! #[derive(Parser)]
//! struct Args {
//!     /// Worker threads.
//!     #[arg(long, default_value_t = 4, value_parser = cli::usize_in(1, 1024))]
//!     workers: usize,
//!     /// Probability that a request fails.
//!     #[arg(long, default_value_t = 0.1, value_parser = cli::probability)]
//!     fail_rate: f64,
//!     /// Run time, in seconds.
//!     #[arg(long, default_value = "2", value_parser = cli::seconds_in(0.001, 3600.0))]
//!     duration: std::time::Duration,
//! }
//!
//! assert!(Args::try_parse_from(["x", "--workers", "0"]).is_err());
//! assert!(Args::try_parse_from(["x", "--fail-rate", "NaN"]).is_err());
//! assert!(Args::try_parse_from(["x", "--duration", "-1"]).is_err());
//! let ok = Args::try_parse_from(["x", "--duration", "0.5"]).unwrap();
//! assert_eq!(ok.duration.as_millis(), 500);
//! ```

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

/// A number of type `T` in `min..=max`.
pub fn int_in<T>(
    min: T,
    max: T,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: FromStr + PartialOrd + Display + Copy + Send + Sync + 'static,
    T::Err: Display,
{
    move |s: &str| {
        let v: T = s
            .trim()
            .parse()
            .map_err(|e| format!("`{s}` is not a whole number ({e})"))?;
        if v < min || v > max {
            return Err(format!("{v} is out of range: use {min} to {max}"));
        }
        Ok(v)
    }
}

/// A `usize` in `min..=max` (counts, threads, capacities).
pub fn usize_in(
    min: usize,
    max: usize,
) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync + 'static {
    int_in(min, max)
}

/// A `u64` in `min..=max`.
pub fn u64_in(
    min: u64,
    max: u64,
) -> impl Fn(&str) -> Result<u64, String> + Clone + Send + Sync + 'static {
    int_in(min, max)
}

/// A `u32` in `min..=max`.
pub fn u32_in(
    min: u32,
    max: u32,
) -> impl Fn(&str) -> Result<u32, String> + Clone + Send + Sync + 'static {
    int_in(min, max)
}

/// A finite `f64` in `min..=max`: `NaN` and the infinities are refused whatever the bounds.
pub fn f64_in(
    min: f64,
    max: f64,
) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|e| format!("`{s}` is not a number ({e})"))?;
        if !v.is_finite() {
            return Err(format!("`{s}` is not a finite number"));
        }
        if v < min || v > max {
            return Err(format!("{v} is out of range: use {min} to {max}"));
        }
        Ok(v)
    }
}

/// A probability: a finite number in `0..=1`.
pub fn probability(s: &str) -> Result<f64, String> {
    f64_in(0.0, 1.0)(s)
}

/// A duration written as (fractional) seconds, `0.25` or `3`, in `min..=max` seconds.
pub fn seconds_in(
    min: f64,
    max: f64,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    let parse = f64_in(min, max);
    move |s: &str| parse(s).map(Duration::from_secs_f64)
}

/// A duration with its unit (`250ms`, `2s`, `1m 30s`, parsed by `humantime`), in `min..=max`.
/// A bare number is refused: `--timeout 2` could mean seconds or milliseconds.
pub fn duration_in(
    min: Duration,
    max: Duration,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let d = humantime::parse_duration(s.trim()).map_err(|e| {
            format!("`{s}` is not a duration with a unit, like 250ms, 2s or 1m ({e})")
        })?;
        if d < min || d > max {
            return Err(format!(
                "{} is out of range: use {} to {}",
                humantime::format_duration(d),
                humantime::format_duration(min),
                humantime::format_duration(max)
            ));
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: [&str; 6] = ["0", "-1", "NaN", "inf", "1e30", "18446744073709551616"];

    #[test]
    fn integers_refuse_out_of_range_and_non_integers() {
        let p = usize_in(1, 64);
        for bad in HOSTILE {
            assert!(p(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(p("64"), Ok(64));
        assert_eq!(p(" 3 "), Ok(3));
        let zero_ok = u64_in(0, 10);
        assert_eq!(zero_ok("0"), Ok(0));
        assert!(zero_ok("11").unwrap_err().contains("use 0 to 10"));
    }

    #[test]
    fn floats_refuse_nan_infinities_and_out_of_range() {
        let p = f64_in(0.001, 1e6);
        for bad in HOSTILE {
            assert!(p(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(p("2.5"), Ok(2.5));
        assert!(probability("1.5").is_err());
        assert!(probability("-0.1").is_err());
        assert_eq!(probability("0"), Ok(0.0));
        assert_eq!(probability("1"), Ok(1.0));
    }

    #[test]
    fn seconds_and_durations_stay_in_bounds() {
        let secs = seconds_in(0.01, 3600.0);
        for bad in HOSTILE {
            assert!(secs(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(secs("0.5"), Ok(Duration::from_millis(500)));
        let d = duration_in(Duration::from_millis(1), Duration::from_secs(3600));
        for bad in HOSTILE {
            assert!(d(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(d("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(d("1m 30s"), Ok(Duration::from_secs(90)));
        assert!(d("2").is_err(), "a bare number must name its unit");
        assert!(d("2h").unwrap_err().contains("out of range"));
    }
}
