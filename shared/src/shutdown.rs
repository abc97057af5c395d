//! Ctrl-C handling: a stop flag for threads, a `CancellationToken` for tasks.
//!
//! The examples never exit from inside a signal handler: the handler only *asks* to stop, and the
//! code that owns the work decides how to finish (drain a queue, delete `.part` files, join its
//! workers). That is the difference between "stopped" and "stopped cleanly". A second Ctrl-C
//! exits at once with status 130, for when the clean stop itself hangs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static PRESSES: AtomicUsize = AtomicUsize::new(0);

/// A flag set on the first SIGINT (Ctrl-C) or SIGTERM; worker threads poll it between jobs.
///
/// Only one handler can be installed per process, so call this once, in `main`.
pub fn stop_flag_on_ctrl_c() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = Arc::clone(&flag);
    ctrlc::set_handler(move || {
        if PRESSES.fetch_add(1, Ordering::SeqCst) >= 1 {
            eprintln!("\nsecond interrupt: exiting now");
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: finishing cleanly (press Ctrl-C again to force)");
        // Release pairs with the Acquire loads in the workers: what the handler did before
        // setting the flag is visible to whoever sees it set (here: nothing, but it is the habit).
        f.store(true, Ordering::Release);
    })
    .map_err(|e| anyhow::anyhow!("cannot install the Ctrl-C handler: {e}"))?;
    Ok(flag)
}

/// A token cancelled on the first Ctrl-C; a second Ctrl-C exits with status 130.
///
/// Must be called from inside a tokio runtime (it spawns the task that waits for the signal).
#[cfg(feature = "async")]
pub fn cancel_on_ctrl_c() -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return; // no signal support: the token simply never fires
        }
        eprintln!("\ninterrupt: finishing cleanly (press Ctrl-C again to force)");
        t.cancel();
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nsecond interrupt: exiting now");
            std::process::exit(130);
        }
    });
    token
}
