// Given parts of processes/06, from shared-memory.rs: a named segment mapped as `&[AtomicU64]`
// (its `shm` module) and workers started in step (its `team` module). Every variant of the
// exercise and the checks' worker processes use them as `support::Segment`, `support::Team`.
//
// One difference from shared-memory.rs, on purpose: dropping a `Segment` only unmaps it, like
// Python's `SharedMemory.close()`. Removing the name (`unlink`) is left to the exercise.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

/// Where named shared memory lives on Linux: `shm_open("/name")` opens `/dev/shm/name`.
pub const SHM_DIR: &str = "/dev/shm";

/// A named shared memory segment of `u64` counters, mapped into this process.
pub struct Segment {
    ptr: NonNull<AtomicU64>,
    /// In counters.
    len: usize,
    name: String,
    /// This process created the name and has not removed it yet.
    owns_name: bool,
}

impl Segment {
    /// Creates `/dev/shm/<name>` with `len` counters at zero and maps it. Refuses a name that
    /// exists (never adopt someone else's segment).
    pub fn create(name: &str, len: usize) -> io::Result<Segment> {
        let path = path_of(name)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        let bytes = len
            .checked_mul(8)
            .ok_or_else(|| invalid("too many counters"))?;
        match reserve(&file, bytes).and_then(|()| map(&file, bytes)) {
            Ok(ptr) => Ok(Segment {
                ptr,
                len,
                name: name.into(),
                owns_name: true,
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(e)
            }
        }
    }

    /// Maps the existing segment `name` (a worker attaching by name).
    pub fn open(name: &str) -> io::Result<Segment> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path_of(name)?)?;
        let bytes = usize::try_from(file.metadata()?.len()).map_err(|_| invalid("too big"))?;
        let ptr = map(&file, bytes)?;
        Ok(Segment {
            ptr,
            len: bytes / 8,
            name: name.into(),
            owns_name: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The counters. Every process that maps the segment sees the same memory.
    pub fn counters(&self) -> &[AtomicU64] {
        // SAFETY: `ptr` starts a live mapping (unmapped only in `drop`, and the slice borrows
        // `self`) of `len * 8` bytes, page-aligned; every bit pattern is a valid `AtomicU64`,
        // and every access to the memory, in every process, is atomic.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// `SharedMemory.unlink()`: removes the name, once, if this process created it. Mappings
    /// stay valid; later `open`s of the name fail.
    pub fn unlink(&mut self) -> io::Result<()> {
        if !std::mem::take(&mut self.owns_name) {
            return Ok(());
        }
        std::fs::remove_file(path_of(&self.name)?)
    }
}

impl Drop for Segment {
    /// `SharedMemory.close()`: unmaps. The name, if not unlinked, stays in /dev/shm.
    fn drop(&mut self) {
        // SAFETY: the pointer and length `mmap` returned; no slice from `counters` outlives
        // `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len * 8) };
    }
}

/// Sizes the new file and reserves its pages now (they read as zeros): a full /dev/shm fails
/// here, not later as a SIGBUS in a worker.
fn reserve(file: &File, bytes: usize) -> io::Result<()> {
    let len = libc::off_t::try_from(bytes).map_err(|_| invalid("too big"))?;
    // SAFETY: a descriptor we own and two integers.
    match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) } {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// Maps `bytes` of `file`, shared: every process mapping the file sees our writes.
fn map(file: &File, bytes: usize) -> io::Result<NonNull<AtomicU64>> {
    if bytes < 8 || !bytes.is_multiple_of(8) {
        return Err(invalid("a segment holds a whole number of u64s"));
    }
    // SAFETY: a new mapping where the kernel chooses, of a file opened read-write.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(ptr.cast()).ok_or_else(|| invalid("mmap returned null"))
}

/// A name is one plain path component: nothing that escapes /dev/shm.
fn path_of(name: &str) -> io::Result<PathBuf> {
    if name.is_empty() || name.starts_with('.') || name.contains('/') {
        return Err(invalid("a shared memory name is one plain file name"));
    }
    Ok(PathBuf::from(SHM_DIR).join(name))
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why.to_owned())
}

/// Worker processes started in step: each says "ready" once it has mapped the segment, then
/// waits for "go". Dropping a `Team` kills and reaps the workers still running.
pub struct Team {
    children: Vec<Child>,
    outputs: Vec<BufReader<ChildStdout>>,
}

impl Team {
    /// Starts every command (stdin and stdout piped) and returns once each worker said
    /// "ready"; an error if one ended or said anything else first.
    pub fn start(commands: Vec<Command>) -> io::Result<Team> {
        let mut team = Team {
            children: Vec::new(),
            outputs: Vec::new(),
        };
        for mut cmd in commands {
            let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
            let stdout = child.stdout.take().expect("stdout is piped");
            team.children.push(child); // Owned by the team before anything can fail.
            team.outputs.push(BufReader::new(stdout));
        }
        for (i, out) in team.outputs.iter_mut().enumerate() {
            let mut line = String::new();
            out.read_line(&mut line)?;
            if line != "ready\n" {
                return Err(io::Error::other(format!(
                    "worker {i} said {line:?}, not \"ready\" (it could not start or map)"
                )));
            }
        }
        Ok(team)
    }

    /// Tells every worker to start.
    pub fn go(&mut self) -> io::Result<()> {
        for child in &mut self.children {
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(b"go\n")?;
            }
        }
        Ok(())
    }

    /// Waits for every worker; an error if one failed.
    pub fn wait_all(&mut self) -> io::Result<()> {
        for (i, child) in self.children.iter_mut().enumerate() {
            let status = child.wait()?;
            if !status.success() {
                return Err(io::Error::other(format!("worker {i} failed: {status}")));
            }
        }
        Ok(())
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill(); // A no-op for a child already reaped.
            let _ = child.wait();
        }
    }
}
