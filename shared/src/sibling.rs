//! Start a server binary that sits next to the current executable (`target/release/chat-server`
//! next to `target/release/chat-load`), read the addresses it prints, stop it cleanly.
//!
//! Tools that "start their own server when given no address" (chat-load, chat-client) share this
//! instead of each carrying a copy. The server must print its addresses as the last word of its
//! first stdout lines (`chat-server listening on 127.0.0.1:41234`).
//!
//! The child is asked to stop with SIGINT (its Ctrl-C path: goodbyes, summary) when this handle
//! is stopped or dropped; and because a parent killed by a signal runs no `Drop`, the child also
//! gets SIGTERM from the kernel when the parent dies (`PR_SET_PDEATHSIG`), so it is never orphaned.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};

/// A running sibling server.
pub struct Sibling {
    child: Child,
    /// Its first stdout lines (as many as asked for), in order.
    pub banner: Vec<String>,
}

impl Sibling {
    /// Starts `name` (a binary in the same directory as this executable) with `args`, and reads
    /// its first `banner_lines` stdout lines. The rest of its stdout is drained in the background,
    /// so it never blocks on a full pipe. `build_hint` is added to the error when the binary is
    /// missing (`cargo build -p …`).
    pub fn start(
        name: &str,
        args: &[&str],
        banner_lines: usize,
        build_hint: &str,
    ) -> anyhow::Result<Sibling> {
        let exe = std::env::current_exe().context("locating our own executable")?;
        let path: PathBuf = exe.with_file_name(name);
        if !path.exists() {
            bail!(
                "{} does not exist; build it first: {build_hint}",
                path.display()
            );
        }
        let mut command = Command::new(&path);
        command.args(args);
        Sibling::spawn(command, name, banner_lines)
    }

    /// [`Sibling::start`] for any command (a Python server: `python3 chat_server.py …`): the
    /// same banner reading, draining, parent-death signal and clean stop. `name` is for errors.
    pub fn spawn(mut command: Command, name: &str, banner_lines: usize) -> anyhow::Result<Sibling> {
        // stderr is piped too: its last lines explain a failed start (a port in use), and a
        // healthy server's own shutdown chatter does not end up in the tool's output.
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        // SAFETY: prctl(2) is async-signal-safe and touches no memory of ours; it runs in the
        // child between fork and exec, as `pre_exec` requires.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let stdout = child.stdout.take().context("the child's stdout")?;
        let stderr = child.stderr.take().context("the child's stderr")?;
        let errors = std::thread::spawn(move || {
            let mut last: Vec<String> = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if last.len() == 5 {
                    last.remove(0);
                }
                last.push(line);
            }
            last
        });
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = Vec::with_capacity(banner_lines);
        for _ in 0..banner_lines {
            match lines.next() {
                Some(Ok(line)) => banner.push(line),
                _ => {
                    let _ = child.wait();
                    let stderr = errors.join().unwrap_or_default().join("\n");
                    bail!("{name} exited before printing its addresses: {stderr}");
                }
            }
        }
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        Ok(Sibling { child, banner })
    }

    /// The address that ends banner line `index` (`… listening on 127.0.0.1:41234`).
    pub fn addr(&self, index: usize) -> anyhow::Result<SocketAddr> {
        let line = self
            .banner
            .get(index)
            .with_context(|| format!("no banner line {index}: {:?}", self.banner))?;
        line.rsplit(' ')
            .next()
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("no address at the end of {line:?}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGINT (the server's Ctrl-C path), then wait for it to exit.
    pub fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait()
            && let Ok(pid) = i32::try_from(self.child.id())
        {
            // SAFETY: kill(2) on our own, not yet reaped child: the pid cannot have been reused.
            unsafe { libc::kill(pid, libc::SIGINT) };
        }
        let _ = self.child.wait();
    }
}

impl Drop for Sibling {
    fn drop(&mut self) {
        self.stop();
    }
}
