// Checks of processes/02, compiled against the learner's file, the solution and each wrong one.

use shared::exercise::{Check, Failure, Jitter, Progress, ensure, stress, watchdog};
use std::time::Duration;

/// `len` bytes that are not all alike, so a reordering or a lost chunk shows.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(31).wrapping_add(seed) % 251) as u8)
        .collect()
}

fn run(program: &str, args: &[&str], input: &[u8]) -> Result<(Vec<u8>, i32), Failure> {
    let what = format!("{program} {}", args.join(" "));
    let (out, status) = filter_through(program, args, input).map_err(|e| {
        Failure::property(
            "no error when the child does its job",
            format!("{what} with {} bytes of input: {e}", input.len()),
        )
    })?;
    Ok((out, status.code().unwrap_or(-1)))
}

fn one_run(seed: u64, progress: &Progress) -> Check {
    let mut draw = Jitter::new(seed, 0);
    // Over both pipe buffers: the deadlock of writing everything first.
    let big = pattern(1024 * 1024 + draw.below(3 * 1024 * 1024) as usize, seed);
    let (out, code) = run("cat", &[], &big)?;
    progress.tick();
    ensure(out == big && code == 0, "every byte comes back, in order", || {
        format!("cat of {} bytes gave {} bytes", big.len(), out.len())
    })?;

    let (out, _) = run("cat", &[], &[])?;
    progress.tick();
    ensure(out.is_empty(), "an empty input gives an empty output", || {
        format!("cat of nothing gave {} bytes", out.len())
    })?;

    let (out, _) = run("tr", &["a-z", "A-Z"], b"hello, world\n")?;
    progress.tick();
    ensure(out == b"HELLO, WORLD\n", "the child's output is returned", || {
        format!("tr gave {:?}", String::from_utf8_lossy(&out))
    })?;

    let input = pattern(100_000 + draw.below(100_000) as usize, seed);
    let (out, _) = run("wc", &["-c"], &input)?;
    progress.tick();
    let counted = String::from_utf8_lossy(&out).trim().to_string();
    ensure(counted == input.len().to_string(), "the child sees the whole input, then its end", || {
        format!("wc -c counted {counted:?} of {} bytes", input.len())
    })?;

    let (out, code) = run("sh", &["-c", "cat; exit 5"], &input)?;
    progress.tick();
    ensure(out == input && code == 5, "the exit status is the child's", || {
        format!("sh -c 'cat; exit 5' gave {} bytes and code {code}", out.len())
    })?;

    // Reads 10 bytes and exits: the rest of the input meets a closed pipe.
    let (out, code) = run("head", &["-c", "10"], &big)?;
    progress.tick();
    ensure(out == big[..10] && code == 0, "a child that stops reading early is fine", || {
        format!("head -c 10 gave {} bytes and code {code}", out.len())
    })
}

pub fn all() -> Check {
    watchdog("feed-stdin", Duration::from_secs(5), |progress| {
        stress(5, |seed| one_run(seed, progress))
    })
}
