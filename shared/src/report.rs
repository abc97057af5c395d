//! Timing and reporting: wall and CPU time, peak memory, and the speedup table every measured
//! example prints (sequential first, then the concurrent variants, with an agreement check).
//!
//! Why CPU time next to wall time: it tells *how* a speedup was obtained. Two threads that finish
//! twice as fast burn the same CPU time as one (real parallelism); async tasks waiting on I/O finish
//! fast while burning almost none (concurrency without parallelism); a process pool adds the CPU
//! its workers spent starting up.

use serde::Serialize;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// A value together with how long it took to compute.
#[derive(Debug, Clone)]
pub struct Timed<T> {
    pub value: T,
    pub wall: Duration,
    /// CPU time (user + system) of this process and the children it reaped while `f` ran.
    pub cpu: Duration,
}

/// Run `f` and measure its wall-clock time and the CPU time the process spent meanwhile.
pub fn timed<T>(f: impl FnOnce() -> T) -> Timed<T> {
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    let value = f();
    let wall = t0.elapsed();
    Timed {
        value,
        wall,
        cpu: cpu_time().saturating_sub(cpu0),
    }
}

fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: `getrusage` only writes into the struct we pass; a zeroed `rusage` is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable `rusage` for the duration of the call.
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU time (user + system) used so far by this process and by its children that were waited for.
pub fn cpu_time() -> Duration {
    rusage(libc::RUSAGE_SELF) + rusage(libc::RUSAGE_CHILDREN)
}

/// CPU time (user + system) used so far by this process alone, children excluded.
pub fn self_cpu_time() -> Duration {
    rusage(libc::RUSAGE_SELF)
}

/// User and system CPU time of a whole process (all its threads), kept apart: for a network
/// server the system part is the kernel's socket work, often most of the bill.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CpuSplit {
    pub user: Duration,
    pub system: Duration,
}

impl CpuSplit {
    /// What was spent between `earlier` and `self`.
    pub fn since(self, earlier: CpuSplit) -> CpuSplit {
        CpuSplit {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }

    pub fn total(self) -> Duration {
        self.user + self.system
    }
}

/// CPU time of process `pid` so far, from `/proc/PID/stat` (Linux; `None` elsewhere or if the
/// process is gone). Resolution is one clock tick (10 ms on most kernels): measure over a few
/// hundred milliseconds of work at least.
pub fn process_cpu(pid: u32) -> Option<CpuSplit> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_proc_stat_cpu(&stat, clock_ticks_per_second())
}

/// `utime` and `stime` from a `/proc/PID/stat` line. The command name (field 2) is in parentheses
/// and may itself contain spaces and parentheses, so fields are counted after the *last* `)`.
fn parse_proc_stat_cpu(stat: &str, ticks_per_s: u64) -> Option<CpuSplit> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, so utime (14) and stime (15) are the 12th and 13th here.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = |t: u64| Duration::from_nanos(t.saturating_mul(1_000_000_000) / ticks_per_s.max(1));
    Some(CpuSplit {
        user: ticks(utime),
        system: ticks(stime),
    })
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf reads a configuration value; no memory is involved.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(t).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// A numeric field of `/proc/self/status` (`"VmRSS:"`, `"Threads:"`, …); 0 if unavailable.
pub fn proc_status_field(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Peak resident memory of this process (VmHWM), in KiB; 0 where /proc is not available.
pub fn peak_rss_kib() -> u64 {
    proc_status_field("VmHWM:")
}

/// Current resident memory of this process (VmRSS), in KiB; 0 where /proc is not available.
pub fn current_rss_kib() -> u64 {
    proc_status_field("VmRSS:")
}

/// Reset the peak-RSS mark (VmHWM) to the current RSS, so the next [`peak_rss_kib`] is the peak
/// of what runs from now on. Linux ≥ 4.0 (`/proc/self/clear_refs`); returns false elsewhere.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// `812 µs`, `12.3 ms`, `4.56 s`.
pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1e-3 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else if s < 100.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.0} s")
    }
}

/// `512 B`, `1.5 KiB`, `12.0 MiB`, `3.25 GiB`.
pub fn fmt_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// `count` events over `per`, as `12.3 k items/s` (units k, M, G).
pub fn fmt_rate(count: f64, per: Duration, unit: &str) -> String {
    let secs = per.as_secs_f64();
    if secs <= 0.0 {
        return format!("-- {unit}/s");
    }
    let r = count / secs;
    let (v, prefix) = if r >= 1e9 {
        (r / 1e9, "G ")
    } else if r >= 1e6 {
        (r / 1e6, "M ")
    } else if r >= 1e3 {
        (r / 1e3, "k ")
    } else {
        (r, "")
    };
    format!("{v:.1} {prefix}{unit}/s")
}

/// One line of a [`SpeedupTable`]: one way of doing the same work.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub name: String,
    #[serde(serialize_with = "secs")]
    pub wall: Duration,
    #[serde(serialize_with = "opt_secs")]
    pub cpu: Option<Duration>,
    pub peak_rss_kib: Option<u64>,
    /// The best this approach could do (e.g. `ceil(N/C)·latency`); shown so a reader can judge
    /// the overhead instead of only the speedup.
    #[serde(serialize_with = "opt_secs")]
    pub ideal: Option<Duration>,
    /// Whether this row computed the same result as the baseline.
    pub agrees: Option<bool>,
    pub note: String,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

impl Row {
    pub fn new(name: impl Into<String>, wall: Duration) -> Row {
        Row {
            name: name.into(),
            wall,
            cpu: None,
            peak_rss_kib: None,
            ideal: None,
            agrees: None,
            note: String::new(),
        }
    }
    pub fn cpu(mut self, cpu: Duration) -> Row {
        self.cpu = Some(cpu);
        self
    }
    pub fn rss(mut self, kib: u64) -> Row {
        self.peak_rss_kib = Some(kib);
        self
    }
    pub fn ideal(mut self, ideal: Duration) -> Row {
        self.ideal = Some(ideal);
        self
    }
    pub fn agrees(mut self, agrees: bool) -> Row {
        self.agrees = Some(agrees);
        self
    }
    pub fn note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }
}

/// Rows of the same work done different ways. The first row is the baseline (speedup 1.00×).
#[derive(Debug, Clone)]
pub struct SpeedupTable {
    title: String,
    rows: Vec<Row>,
}

/// Lines of cells as a text table, the first line its header with a rule under it: every column
/// padded to its widest cell, the first and last columns (names, notes) left-aligned, the others
/// (figures) right-aligned. A short row leaves its last cells empty.
pub fn align_columns(lines: &[Vec<String>]) -> String {
    let ncols = lines.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..ncols)
        .map(|c| {
            (lines.iter())
                .map(|l| l.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (li, l) in lines.iter().enumerate() {
        let mut line = String::new();
        for (c, width) in widths.iter().enumerate() {
            let cell = l.get(c).map_or("", String::as_str);
            let pad = " ".repeat(width - cell.chars().count());
            if c == 0 || c == ncols - 1 {
                line.push_str(cell);
                line.push_str(&pad);
            } else {
                line.push_str(&pad);
                line.push_str(cell);
            }
            line.push_str("  ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
        if li == 0 {
            let total = widths.iter().sum::<usize>() + 2 * ncols.saturating_sub(1);
            let _ = writeln!(out, "{}", "-".repeat(total));
        }
    }
    out
}

impl SpeedupTable {
    pub fn new(title: impl Into<String>) -> Self {
        SpeedupTable {
            title: title.into(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    /// Wall-time speedup of row `i` over the first row (1.0 for the baseline, 0.0 when empty).
    pub fn speedup(&self, i: usize) -> f64 {
        match (self.rows.first(), self.rows.get(i)) {
            (Some(base), Some(row)) if !row.wall.is_zero() => {
                base.wall.as_secs_f64() / row.wall.as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// True when every row that was checked agrees with the baseline.
    pub fn all_agree(&self) -> bool {
        self.rows.iter().all(|r| r.agrees != Some(false))
    }

    /// The table as aligned text; only the columns that some row fills are shown.
    pub fn render(&self) -> String {
        let has_cpu = self.rows.iter().any(|r| r.cpu.is_some());
        let has_rss = self.rows.iter().any(|r| r.peak_rss_kib.is_some());
        let has_ideal = self.rows.iter().any(|r| r.ideal.is_some());
        let has_agree = self.rows.iter().any(|r| r.agrees.is_some());
        let mut header = vec!["approach", "wall", "speedup"];
        if has_cpu {
            header.push("cpu");
        }
        if has_rss {
            header.push("peak rss");
        }
        if has_ideal {
            header.push("ideal");
        }
        if has_agree {
            header.push("same result");
        }
        header.push("note");
        let mut lines: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
        for (i, r) in self.rows.iter().enumerate() {
            let mut cells = vec![
                r.name.clone(),
                fmt_duration(r.wall),
                format!("{:.2}x", self.speedup(i)),
            ];
            if has_cpu {
                cells.push(r.cpu.map(fmt_duration).unwrap_or_else(|| "-".into()));
            }
            if has_rss {
                cells.push(
                    r.peak_rss_kib
                        .map(|k| fmt_bytes(k * 1024))
                        .unwrap_or_else(|| "-".into()),
                );
            }
            if has_ideal {
                cells.push(r.ideal.map(fmt_duration).unwrap_or_else(|| "-".into()));
            }
            if has_agree {
                cells.push(
                    match r.agrees {
                        Some(true) => "yes",
                        Some(false) => "NO",
                        None => "-",
                    }
                    .into(),
                );
            }
            cells.push(r.note.clone());
            lines.push(cells);
        }
        let mut out = String::new();
        if !self.title.is_empty() {
            let _ = writeln!(out, "{}", self.title);
        }
        out.push_str(&align_columns(&lines));
        out
    }

    /// Print [`render`](Self::render) on stdout.
    pub fn print(&self) {
        print!("{}", self.render());
    }

    /// `{"title": .., "rows": [{"name", "wall", "speedup", "cpu", ..}]}` with times in seconds.
    pub fn to_json(&self) -> serde_json::Value {
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut v = serde_json::to_value(r).expect("a Row always serializes");
                v["speedup"] = serde_json::json!(self.speedup(i));
                v
            })
            .collect();
        serde_json::json!({ "title": self.title, "rows": rows })
    }
}

/// How a child process ended, in words: "exited with code 3", "killed by signal 9 (SIGKILL)".
pub fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exited with code {code}");
    }
    match status.signal() {
        Some(sig) => format!("killed by signal {sig} ({})", signal_name(sig)),
        None => "ended without a code or a signal".into(),
    }
}

/// The usual name of a signal number (`SIGKILL`), or `?`.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        _ => "?",
    }
}

/// The message of a caught panic (`thread::Result`'s error, `catch_unwind`'s payload): panics
/// carry a `&str` or a `String`, anything else is rare.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

/// Print `v` as one line of JSON on stdout (the `--json` output of every measured example).
pub fn print_json(v: &impl Serialize) {
    match serde_json::to_string(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot serialize the report: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_exit_names_codes_and_signals() {
        use std::os::unix::process::ExitStatusExt;
        let code = std::process::ExitStatus::from_raw(3 << 8);
        assert_eq!(describe_exit(code), "exited with code 3");
        let killed = std::process::ExitStatus::from_raw(libc::SIGKILL);
        assert_eq!(describe_exit(killed), "killed by signal 9 (SIGKILL)");
    }

    #[test]
    fn panic_message_reads_str_and_string_payloads() {
        let r = std::panic::catch_unwind(|| panic!("static"));
        assert_eq!(panic_message(r.unwrap_err().as_ref()), "static");
        let n = 7;
        let r = std::panic::catch_unwind(|| panic!("formatted {n}"));
        assert_eq!(panic_message(r.unwrap_err().as_ref()), "formatted 7");
        let r = std::panic::catch_unwind(|| std::panic::panic_any(42u8));
        assert_eq!(
            panic_message(r.unwrap_err().as_ref()),
            "<non-string panic payload>"
        );
    }

    #[test]
    fn durations_bytes_and_rates_are_human() {
        assert_eq!(fmt_duration(Duration::from_micros(812)), "812 µs");
        assert_eq!(fmt_duration(Duration::from_micros(12_345)), "12.3 ms");
        assert_eq!(fmt_duration(Duration::from_millis(4_560)), "4.56 s");
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(1536), "1.5 KiB");
        assert_eq!(fmt_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(
            fmt_rate(12_300.0, Duration::from_secs(1), "items"),
            "12.3 k items/s"
        );
        assert_eq!(fmt_rate(5.0, Duration::from_secs(2), "req"), "2.5 req/s");
    }

    #[test]
    fn proc_stat_cpu_fields_are_found_after_the_last_parenthesis() {
        // A command name with a space and a ')' must not shift the fields.
        let line = "4242 (a) b) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 99 0 0";
        let cpu = parse_proc_stat_cpu(line, 100).expect("parsed");
        assert_eq!(cpu.user, Duration::from_millis(2500));
        assert_eq!(cpu.system, Duration::from_millis(750));
        assert_eq!(cpu.total(), Duration::from_millis(3250));
        assert!(parse_proc_stat_cpu("4242 (truncated", 100).is_none());
        assert!(parse_proc_stat_cpu("4242 (x) S 1 2", 100).is_none());
    }

    #[test]
    fn our_own_cpu_time_is_readable_and_grows() {
        let pid = std::process::id();
        let before = process_cpu(pid).expect("/proc/self/stat");
        // Spin until at least one clock tick is charged to us (bounded, so a broken reader fails
        // instead of hanging); no assumption about how fast that happens on a busy machine.
        let t0 = Instant::now();
        let mut x = 0u64;
        let mut after = before;
        while after == before && t0.elapsed() < Duration::from_secs(20) {
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            after = process_cpu(pid).expect("/proc/self/stat");
        }
        assert!(
            after.since(before).total() > Duration::ZERO,
            "{before:?} -> {after:?}"
        );
        assert!(process_cpu(u32::MAX).is_none());
    }

    #[test]
    fn speedup_is_relative_to_the_first_row() {
        let mut t = SpeedupTable::new("t");
        t.push(Row::new("sequential", Duration::from_secs(4)).agrees(true));
        t.push(Row::new("threads", Duration::from_secs(2)).agrees(true));
        assert!((t.speedup(0) - 1.0).abs() < 1e-9);
        assert!((t.speedup(1) - 2.0).abs() < 1e-9);
        assert!(t.all_agree());
        t.push(Row::new("broken", Duration::from_secs(1)).agrees(false));
        assert!(!t.all_agree());
        let text = t.render();
        assert!(text.contains("2.00x"), "{text}");
        assert!(text.contains("NO"), "{text}");
        let j = t.to_json();
        assert_eq!(j["rows"][1]["speedup"], 2.0);
        assert_eq!(j["rows"][1]["wall"], 2.0);
        assert_eq!(j["rows"][2]["agrees"], false);
    }

    #[test]
    fn cpu_time_grows_with_work_and_memory_is_read() {
        let t = timed(|| {
            let mut x = 0u64;
            for i in 0..20_000_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x)
        });
        assert!(t.cpu > Duration::ZERO);
        // Both fields from one read: other tests in this process allocate concurrently, so the
        // RSS read a moment after the peak may legitimately exceed it.
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        let field = |name: &str| -> u64 {
            let line = status.lines().find(|l| l.starts_with(name)).expect(name);
            line.split_whitespace()
                .nth(1)
                .expect(name)
                .parse()
                .expect(name)
        };
        assert!(field("VmHWM:") >= field("VmRSS:"), "{status}");
        assert!(current_rss_kib() > 0);
        // Touch 256 MiB, free it, reset: the peak must come back down. Other tests of this
        // process allocate concurrently (decoded images: tens of MiB), so the check compares
        // with the peak before the reset rather than with a fixed figure.
        let big = vec![1u8; 256 << 20];
        std::hint::black_box(&big);
        drop(big);
        let before = peak_rss_kib();
        assert!(
            before >= 256 * 1024,
            "peak {before} KiB after touching 256 MiB"
        );
        if reset_peak_rss() {
            let after = peak_rss_kib();
            assert!(
                after < before - 128 * 1024,
                "peak {after} KiB after the reset, {before} KiB before"
            );
        }
    }
}
