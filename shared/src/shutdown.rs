//! Ctrl-C and SIGTERM: a stop flag for threads, a `CancellationToken` for tasks.
//!
//! The examples never exit from inside a signal handler: the handler only *asks* to stop, and the
//! code that owns the work decides how to finish (drain a queue, delete `.part` files, join its
//! workers). That is the difference between "stopped" and "stopped cleanly".
//!
//! - **SIGTERM is Ctrl-C.** `docker stop`, systemd and Kubernetes send SIGTERM, then SIGKILL a few
//!   seconds later; a program that only handles SIGINT is killed mid-write by all three.
//! - **A second signal forces the exit** (status 130), for when the clean stop itself hangs.
//!   Before exiting, the cleanups registered with [`on_forced_exit`] run, so even a forced exit
//!   leaves no partial file behind.
//! - **One key press can arrive as two signals.** Under `timeout`, or any wrapper that forwards
//!   the terminal's SIGINT to a child that already received it, Ctrl-C delivers SIGINT twice,
//!   microseconds apart. A repeat within [`SAME_PRESS`] counts as the same press.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Signals closer together than this are one press (see the module docs).
pub const SAME_PRESS: Duration = Duration::from_millis(300);

/// How many distinct presses so far.
static PRESSES: AtomicUsize = AtomicUsize::new(0);
/// When the last signal arrived, in µs since [`epoch`] (0: never).
static LAST_SIGNAL_US: AtomicU64 = AtomicU64::new(0);

type Cleanup = Box<dyn Fn() + Send>;
static CLEANUPS: Mutex<Vec<Cleanup>> = Mutex::new(Vec::new());

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// What one received signal means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Press {
    /// The first: stop cleanly.
    First,
    /// A repeat of the same press (forwarded twice): ignore.
    Echo,
    /// A later, separate press: force the exit.
    Force,
}

/// Classifies a signal arriving at `now_us` (µs since [`epoch`]), updating the counters.
fn classify(now_us: u64) -> Press {
    // `max(1)`: 0 means "no signal yet".
    let last = LAST_SIGNAL_US.swap(now_us.max(1), Ordering::SeqCst);
    if last != 0 && now_us.saturating_sub(last) < SAME_PRESS.as_micros() as u64 {
        return Press::Echo;
    }
    if PRESSES.fetch_add(1, Ordering::SeqCst) == 0 {
        Press::First
    } else {
        Press::Force
    }
}

fn now_us() -> u64 {
    u64::try_from(epoch().elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Registers `cleanup` to run if the process is forced to exit by a second signal: delete the
/// temporary files of in-flight work, for instance. Cleanups must be quick and must not block
/// on locks the interrupted work may hold. They run in registration order, once.
pub fn on_forced_exit(cleanup: impl Fn() + Send + 'static) {
    // Touch the epoch now, so a signal's timestamp is never the first call (cheap, idempotent).
    epoch();
    CLEANUPS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(Box::new(cleanup));
}

/// Runs the registered cleanups and exits with status 130.
fn force_exit() -> ! {
    eprintln!("\nsecond interrupt: cleaning up and exiting now");
    // `try_lock`: never wait here; a cleanup registered while we exit is simply not run.
    if let Ok(cleanups) = CLEANUPS.try_lock() {
        for cleanup in cleanups.iter() {
            cleanup();
        }
    }
    std::process::exit(130);
}

/// Reacts to one signal: `Some(())` when the caller should start a clean stop.
fn on_signal() -> Option<()> {
    match classify(now_us()) {
        Press::First => {
            eprintln!("\ninterrupt: finishing cleanly (press Ctrl-C again to force)");
            Some(())
        }
        Press::Echo => None,
        Press::Force => force_exit(),
    }
}

/// A flag set on the first SIGINT (Ctrl-C), SIGTERM or SIGHUP; worker threads poll it between
/// jobs. A second signal runs the [`on_forced_exit`] cleanups and exits with status 130.
///
/// Only one handler can be installed per process, so call this once, in `main`.
pub fn stop_flag_on_ctrl_c() -> anyhow::Result<Arc<AtomicBool>> {
    epoch();
    let flag = Arc::new(AtomicBool::new(false));
    let f = Arc::clone(&flag);
    // ctrlc's `termination` feature (see the workspace Cargo.toml) adds SIGTERM and SIGHUP.
    ctrlc::set_handler(move || {
        if on_signal().is_some() {
            // Release pairs with the Acquire loads in the workers: what the handler did before
            // setting the flag is visible to whoever sees it set.
            f.store(true, Ordering::Release);
        }
    })
    .map_err(|e| anyhow::anyhow!("cannot install the Ctrl-C handler: {e}"))?;
    Ok(flag)
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM. Await it in a `select!`, or pass it to a
/// server as its shutdown signal (`serve(listener, shutdown_signal())`). Must be called from
/// inside a tokio runtime.
///
/// The handlers are registered when this is *called*, not when the future is first polled: a
/// signal that arrives in between (a script that sends SIGTERM as soon as the program prints
/// its address) is not lost to the default action, which would kill the process.
///
/// This only waits: it does not force an exit on a second signal. Use [`cancel_on_ctrl_c`] for
/// the whole policy.
#[cfg(feature = "async")]
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let streams = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    async move {
        match streams {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            // No signal support (not a Unix process): never resolve rather than stop at once.
            _ => std::future::pending().await,
        }
    }
}

/// A token cancelled on the first SIGINT or SIGTERM; a second, separate signal runs the
/// [`on_forced_exit`] cleanups and exits with status 130.
///
/// Must be called from inside a tokio runtime (it spawns the task that waits for the signals).
#[cfg(feature = "async")]
pub fn cancel_on_ctrl_c() -> tokio_util::sync::CancellationToken {
    use tokio::signal::unix::{SignalKind, signal};
    epoch();
    let token = tokio_util::sync::CancellationToken::new();
    let t = token.clone();
    // Register both streams now, before returning: a signal that arrives between this call and
    // the task's first poll must not fall back to the default action (kill the process).
    let streams = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    tokio::spawn(async move {
        let (Ok(mut int), Ok(mut term)) = streams else {
            return; // no signal support: the token simply never fires
        };
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            if on_signal().is_some() {
                t.cancel();
            }
        }
    });
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counters are process-wide, so the whole sequence is one test.
    #[test]
    fn one_press_delivered_twice_is_one_press_and_a_later_one_forces() {
        let t0 = 10_000_000;
        assert_eq!(classify(t0), Press::First);
        // The same press, forwarded by a wrapper a few µs later.
        assert_eq!(classify(t0 + 40), Press::Echo);
        // Echoes keep being echoes while they come close together.
        assert_eq!(classify(t0 + 200_000), Press::Echo);
        // A real second press, well after the last signal.
        let later = t0 + 200_000 + SAME_PRESS.as_micros() as u64 + 1;
        assert_eq!(classify(later), Press::Force);
    }
}
