//! Memory shared between processes: atomics in a shared mapping (`multiprocessing.Value`,
//! `Array`, `shared_memory`), against sending the same updates through pipes, measured.
//!
//! Course section **8.1 — Threading et multiprocessing** (*Mémoire partagée*, ❌ for
//! multiprocessing in the course's table: not by default, but processes can opt in); the
//! course's Python is `python/shared_memory.py` (`--python`).
//!
//! Crates: `libc = "0.2"` (the harness adds clap and serde).
//!
//! # Concepts
//! - Processes share nothing until they map the same pages: a named file in `/dev/shm` (what
//!   `shm_open` and Python's `SharedMemory(name=…)` use), mapped `MAP_SHARED` by every worker.
//! - The mapping is a `&[AtomicU64]`: lock-free atomics are CPU instructions on the physical
//!   memory, so `fetch_add` is as atomic between processes as between threads. A `load` then a
//!   `store` loses updates, exactly like `counter.value += 1` without its lock.
//! - The name is removed as soon as every worker has mapped it: the memory lives on until the
//!   last mapping goes, and a crash from then on leaves nothing behind in `/dev/shm`.
//! - Workers start in step ("ready", then "go"; a spin barrier in the mapping), so the clock
//!   measures the updates, not process start-up.
//!
//! # Run
//! ```text
//! cargo run --release -p examples-processes --bin shared-memory
//! cargo run --release -p examples-processes --bin shared-memory -- --workers 4 --increments 2000000
//! cargo run --release -p examples-processes --bin shared-memory -- --cells 33554432   # a 256 MiB array
//! cargo run --release -p examples-processes --bin shared-memory -- --python  # + Value, Array, Pipe
//! ```
//!
//! # What to observe
//! - Counters: one `write(2)` per update is about a hundred times slower than a `fetch_add` in
//!   shared memory; batched into 64 KiB writes, the pipe keeps up. The racy row loses updates
//!   (its window is widened once every 256 updates, as a preemption would widen it).
//! - Fill: the array written in place beats the same bytes streamed through pipes (copied into
//!   the kernel, out of it, and into the parent's copy) by about 2×, more as it grows.
//! - `--python`: every row correct except `Value` without its lock, which loses updates too;
//!   `Value` with its lock and `Pipe.send()` cost microseconds per update: tens to hundreds of
//!   times the Rust rows.
//! - `ls /dev/shm` during and after a run: no segment of ours is left.
//!
//! # Exercises
//! 1. Make each worker count in a local variable and `store` its total into its slot once at
//!    the end. How much faster? This is `multiprocessing`'s advice: share as little as possible.
//! 2. Put the slots 8 bytes apart (`SLOT_STRIDE = 1`) and compare the slot row: it slows down
//!    although no two workers touch the same counter. Why (false sharing)?
//! 3. Send the pipe's updates 1,000 per message: how close to shared memory does it get?
//! 4. Guard a non-atomic `u64` in the mapping with a spinlock on an `AtomicBool` that lives in the
//!    mapping too: what happens to the other workers if one dies holding it?
//! 5. Checked: worker processes tally into shared counters, and the name is unlinked once they
//!    have all mapped it (`cargo run -p shared --bin exercises -- check processes/06`).

// === Lesson: copy from here ===

/// A named shared memory segment, mapped into this process: `shared_memory.SharedMemory`.
mod shm {
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    use std::path::PathBuf;
    use std::ptr::NonNull;
    use std::sync::atomic::AtomicU64;

    // Atomics between processes must be lock-free (a lock-based fallback would keep its lock in
    // one process's private memory). Every 64-bit target with 64-bit atomics has them native.
    #[cfg(not(target_has_atomic = "64"))]
    compile_error!("this lesson needs native 64-bit atomics");

    /// Where named shared memory lives on Linux: `shm_open("/name")` opens `/dev/shm/name`.
    pub const SHM_DIR: &str = "/dev/shm";

    pub struct SharedMemory {
        ptr: NonNull<AtomicU64>,
        /// In `AtomicU64`s.
        slots: usize,
        name: String,
        /// The creator removes the name (once, on `unlink` or on drop).
        owns_name: bool,
    }

    impl SharedMemory {
        /// Creates `/dev/shm/<name>` with `slots` zeroed `u64`s and maps it. `create_new`
        /// (O_EXCL) refuses an existing name: never adopt someone else's segment by accident.
        pub fn create(name: &str, slots: usize) -> io::Result<SharedMemory> {
            let path = path_of(name)?;
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600) // Only our user may map it.
                .open(&path)?;
            let bytes = slots
                .checked_mul(8)
                .ok_or_else(|| invalid("too many slots"))?;
            let mapped = reserve(&file, bytes).and_then(|()| map(&file, bytes));
            match mapped {
                Ok(ptr) => Ok(SharedMemory {
                    ptr,
                    slots,
                    name: name.into(),
                    owns_name: true,
                }),
                Err(e) => {
                    let _ = std::fs::remove_file(&path);
                    Err(e)
                }
            }
        }

        /// Maps an existing segment (a worker attaching by name).
        pub fn open(name: &str) -> io::Result<SharedMemory> {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(path_of(name)?)?;
            let bytes = usize::try_from(file.metadata()?.len()).map_err(|_| invalid("too big"))?;
            let ptr = map(&file, bytes)?;
            Ok(SharedMemory {
                ptr,
                slots: bytes / 8,
                name: name.into(),
                owns_name: false,
            })
        }

        pub fn name(&self) -> &str {
            &self.name
        }

        /// The segment as counters. Every process that maps it sees the same memory.
        pub fn slots(&self) -> &[AtomicU64] {
            // SAFETY: `ptr` is the start of a live mapping (unmapped only in `drop`, and the
            // slice borrows `self`) of at least `slots * 8` bytes, page-aligned hence aligned
            // for `AtomicU64`, whose every bit pattern is valid. Other processes write it
            // concurrently, which is sound because every access, here and there, is atomic.
            unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.slots) }
        }

        /// `SharedMemory.unlink()`: removes the name. Mappings stay valid; new `open`s fail.
        pub fn unlink(&mut self) -> io::Result<()> {
            if !std::mem::take(&mut self.owns_name) {
                return Ok(());
            }
            std::fs::remove_file(path_of(&self.name)?)
        }
    }

    impl Drop for SharedMemory {
        fn drop(&mut self) {
            let _ = self.unlink();
            // SAFETY: `ptr` and the length are those `mmap` returned, and no slice handed out
            // by `slots` outlives `self`, so nothing can touch the memory after this.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.slots * 8) };
        }
    }

    /// Sizes the new file and reserves its pages now; it reads as zeros (every counter starts
    /// at 0). `set_len` alone would reserve nothing: a full `/dev/shm` would then show up later,
    /// as a SIGBUS in whichever worker first writes a page that cannot be allocated.
    fn reserve(file: &File, bytes: usize) -> io::Result<()> {
        let len = libc::off_t::try_from(bytes).map_err(|_| invalid("too big"))?;
        // SAFETY: posix_fallocate takes a descriptor we own and two integers.
        match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) } {
            0 => Ok(()),
            errno => Err(io::Error::from_raw_os_error(errno)), // It returns the error number.
        }
    }

    /// Maps `bytes` of `file`, shared: our writes reach the file's pages, which every process
    /// mapping the file sees. The descriptor can be closed afterwards; the mapping stays.
    fn map(file: &File, bytes: usize) -> io::Result<NonNull<AtomicU64>> {
        if bytes < 8 || !bytes.is_multiple_of(8) {
            return Err(invalid("a segment holds a whole number of u64s"));
        }
        // SAFETY: a new mapping at an address the kernel chooses (no existing memory is
        // replaced) of a file we opened read-write; no Rust reference points into it yet.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                // MAP_POPULATE: fault every page in now, not on first touch in the measured part.
                libc::MAP_SHARED | libc::MAP_POPULATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        NonNull::new(ptr.cast()).ok_or_else(|| invalid("mmap returned null"))
    }

    /// A name is one path component: no `/`, no `..`, nothing that escapes `/dev/shm`.
    fn path_of(name: &str) -> io::Result<PathBuf> {
        let ok = !name.is_empty() && !name.starts_with('.') && !name.contains('/');
        if !ok {
            return Err(invalid("a shared memory name is one plain file name"));
        }
        Ok(PathBuf::from(SHM_DIR).join(name))
    }

    fn invalid(why: &str) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, why.to_owned())
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::sync::atomic::Ordering;

        fn unique(tag: &str) -> String {
            format!("shm-test-{}-{tag}", std::process::id())
        }

        #[test]
        fn two_mappings_of_one_name_see_the_same_counters() {
            let name = unique("same");
            let mut created = SharedMemory::create(&name, 4).unwrap();
            let opened = SharedMemory::open(&name).unwrap();
            created.slots()[2].fetch_add(5, Ordering::Relaxed);
            assert_eq!(opened.slots()[2].load(Ordering::Relaxed), 5);
            assert_eq!(opened.slots().len(), 4);
            created.unlink().unwrap();
            assert!(SharedMemory::open(&name).is_err(), "the name is gone");
            opened.slots()[0].store(9, Ordering::Relaxed); // The mappings are not.
            assert_eq!(created.slots()[0].load(Ordering::Relaxed), 9);
        }

        #[test]
        fn names_are_never_reused_or_escaped_and_the_creator_cleans_up() {
            let name = unique("excl");
            let first = SharedMemory::create(&name, 1).unwrap();
            let again = SharedMemory::create(&name, 1).err().unwrap();
            assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
            drop(first);
            assert!(!PathBuf::from(SHM_DIR).join(&name).exists());
            for bad in ["", "../etc", "a/b", ".hidden"] {
                let e = SharedMemory::create(bad, 1).err().unwrap();
                assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
            }
            assert!(SharedMemory::create(&unique("empty"), 0).is_err());
            assert!(!PathBuf::from(SHM_DIR).join(unique("empty")).exists());
        }
    }
}

/// Workers started in step: each says "ready" once set up and waits for "go", so the clock
/// measures the work, not process start-up. A `Team` dropped early kills and reaps them all.
mod team {
    use std::io::{self, BufRead, BufReader, Write};
    use std::process::{Child, ChildStdout, Command, Stdio};

    pub struct Team {
        children: Vec<Child>,
        /// Each worker's stdout, after its "ready" line.
        pub outputs: Vec<BufReader<ChildStdout>>,
    }

    impl Team {
        /// Starts `command(i)` for each worker `i` and waits until every one is ready.
        pub fn start(workers: usize, command: impl Fn(usize) -> Command) -> io::Result<Team> {
            let mut team = Team {
                children: Vec::new(),
                outputs: Vec::new(),
            };
            for i in 0..workers {
                let mut cmd = command(i);
                let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
                let stdout = child.stdout.take().expect("stdout is piped");
                team.children.push(child); // Owned by the team before anything can fail.
                team.outputs.push(BufReader::new(stdout));
            }
            for out in &mut team.outputs {
                let mut line = String::new();
                out.read_line(&mut line)?;
                if line != "ready\n" {
                    return Err(io::Error::other(format!(
                        "a worker said {line:?}, not ready"
                    )));
                }
            }
            Ok(team)
        }

        pub fn go(&mut self) -> io::Result<()> {
            for child in &mut self.children {
                child
                    .stdin
                    .take()
                    .expect("stdin is piped")
                    .write_all(b"go\n")?;
            }
            Ok(())
        }

        /// Reads every worker's output at once, one thread each: a pipe holds 64 KiB, then
        /// its writer blocks until someone reads.
        pub fn read_outputs<T: Send>(
            &mut self,
            read: impl Fn(usize, &mut BufReader<ChildStdout>) -> io::Result<T> + Sync,
        ) -> io::Result<Vec<T>> {
            let read = &read;
            std::thread::scope(|s| {
                let readers: Vec<_> = (self.outputs.iter_mut().enumerate())
                    .map(|(i, out)| s.spawn(move || read(i, out)))
                    .collect();
                readers
                    .into_iter()
                    .map(|r| r.join().expect("a reader panicked"))
                    .collect()
            })
        }

        pub fn wait_all(&mut self) -> io::Result<()> {
            for child in &mut self.children {
                let status = child.wait()?;
                if !status.success() {
                    return Err(io::Error::other(format!("a worker failed: {status}")));
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

    /// Worker side: say "ready", then block until the parent says "go".
    pub fn ready_then_wait_for_go() -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(b"ready\n")?;
        out.flush()?;
        io::stdin().lock().read_line(&mut String::new())?;
        Ok(())
    }

    /// Our stdout as a plain `File` (a duplicate of descriptor 1): `io::stdout()` buffers by
    /// lines, which would batch, and split at every `\n` byte, what we mean to write ourselves.
    pub fn stdout_file() -> io::Result<std::fs::File> {
        use std::os::fd::AsFd;
        Ok(io::stdout().as_fd().try_clone_to_owned()?.into())
    }

    /// A worker's order, from the environment the parent gave it.
    pub fn order<T: std::str::FromStr>(key: &str) -> io::Result<T> {
        let text = std::env::var(key).map_err(|e| io::Error::other(format!("{key}: {e}")))?;
        text.parse()
            .map_err(|_| io::Error::other(format!("{key}={text:?}")))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn sh(script: &'static str) -> impl Fn(usize) -> Command {
            move |_| {
                let mut cmd = Command::new("sh");
                cmd.args(["-c", script]);
                cmd
            }
        }

        #[test]
        fn workers_start_on_go_and_their_output_is_read_in_full() {
            let worker = "echo ready; read go; head -c 100000 /dev/zero";
            let mut team = Team::start(3, sh(worker)).unwrap();
            team.go().unwrap();
            let sizes = team.read_outputs(|_, out| {
                let mut all = Vec::new();
                std::io::Read::read_to_end(out, &mut all)?;
                Ok(all.len())
            });
            assert_eq!(
                sizes.unwrap(),
                vec![100_000; 3],
                "more than a pipe buffer each"
            );
            team.wait_all().unwrap();
        }

        #[test]
        fn a_worker_that_dies_or_babbles_before_ready_is_an_error_not_a_hang() {
            assert!(Team::start(2, sh("exit 3")).is_err());
            assert!(Team::start(1, sh("echo hello")).is_err());
            let mut team = Team::start(1, sh("echo ready; read go; exit 4")).unwrap();
            team.go().unwrap();
            let failed = team.wait_all().unwrap_err();
            assert!(failed.to_string().contains("exit status: 4"), "{failed}");
        }
    }
}

/// `multiprocessing.Value`: N workers each add 1 to a total, `increments` times, through the
/// shared segment (three ways) or through pipes (two ways); the parent checks the total.
mod counters {
    use std::io::{self, BufWriter, Read, Write};
    use std::process::Command;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use super::shm::SharedMemory;
    use super::team::{Team, order, ready_then_wait_for_go, stdout_file};

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Method {
        /// One `write(2)` of 8 bytes per update, what Python's `conn.send(1)` does.
        PipePerUpdate,
        /// The same messages, written 64 KiB at a time.
        PipeBuffered,
        /// Every worker `fetch_add`s one counter: `Value` with its lock held around `+= 1`.
        SharedCounter,
        /// Each worker adds into its own slot; the parent sums: `Array`, a cell per worker.
        SlotPerWorker,
        /// `load` then `store` on the one counter: `value += 1` without the lock. The bug.
        RacyLoadStore,
    }

    impl Method {
        pub const ALL: [Method; 5] = [
            Method::PipePerUpdate,
            Method::PipeBuffered,
            Method::SharedCounter,
            Method::SlotPerWorker,
            Method::RacyLoadStore,
        ];

        pub fn name(self) -> &'static str {
            match self {
                Method::PipePerUpdate => "pipe",
                Method::PipeBuffered => "pipe-buffered",
                Method::SharedCounter => "counter",
                Method::SlotPerWorker => "slots",
                Method::RacyLoadStore => "racy",
            }
        }
    }

    /// Slots 128 bytes apart: a cache line is 64 bytes, and x86 fetches lines in pairs.
    /// Adjacent slots would bounce between cores although no two workers share a counter.
    pub const SLOT_STRIDE: usize = 128 / 8;

    pub struct Measured {
        pub total: u64,
        /// From "go" to the last worker reaped (start-up and attaching excluded).
        pub elapsed: Duration,
    }

    /// Runs `workers` processes started by `worker_command` (this binary in a worker mode that
    /// calls `worker_main`), each adding 1 `increments` times with `method`.
    pub fn run(
        method: Method,
        workers: usize,
        increments: u64,
        worker_command: &dyn Fn() -> Command,
    ) -> io::Result<Measured> {
        let shared = !matches!(method, Method::PipePerUpdate | Method::PipeBuffered);
        // A slot per worker, and one more for the start line (`start_together`).
        let slots = (workers + 1) * SLOT_STRIDE;
        let mut segment = shared
            .then(|| SharedMemory::create(&unique_name(), slots))
            .transpose()?;
        let mut team = Team::start(workers, |i| {
            let mut cmd = worker_command();
            cmd.env("COUNTERS_METHOD", method.name())
                .env("COUNTERS_WORKER", i.to_string())
                .env("COUNTERS_WORKERS", workers.to_string())
                .env("COUNTERS_INCREMENTS", increments.to_string());
            if let Some(segment) = &segment {
                cmd.env("COUNTERS_SEGMENT", segment.name());
            }
            cmd
        })?;
        if let Some(segment) = &mut segment {
            segment.unlink()?; // Every worker has mapped it: the name has served.
        }
        let start = Instant::now();
        team.go()?;
        let piped: Vec<u64> = team.read_outputs(|_, pipe| {
            let (mut total, mut update) = (0u64, [0u8; 8]);
            loop {
                match pipe.read_exact(&mut update) {
                    Ok(()) => total = total.wrapping_add(u64::from_le_bytes(update)),
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(total),
                    Err(e) => return Err(e),
                }
            }
        })?;
        team.wait_all()?;
        let elapsed = start.elapsed();
        // Relaxed is enough: each worker's exit, reaped by `wait`, orders its stores before us.
        let total = match (&segment, method) {
            (None, _) => piped.iter().sum(),
            (Some(seg), Method::SlotPerWorker) => (0..workers)
                .map(|w| seg.slots()[w * SLOT_STRIDE].load(Ordering::Relaxed))
                .sum(),
            (Some(seg), _) => seg.slots()[0].load(Ordering::Relaxed),
        };
        Ok(Measured { total, elapsed })
    }

    /// The worker: attach, get ready, wait for "go", then make the updates.
    pub fn worker_main() -> io::Result<()> {
        let method: String = order("COUNTERS_METHOD")?;
        let method = Method::ALL.into_iter().find(|m| m.name() == method);
        let method = method.ok_or_else(|| io::Error::other("unknown method"))?;
        let (me, workers): (usize, usize) = (order("COUNTERS_WORKER")?, order("COUNTERS_WORKERS")?);
        let increments: u64 = order("COUNTERS_INCREMENTS")?;
        let segment = match method {
            Method::PipePerUpdate | Method::PipeBuffered => None,
            _ => Some(SharedMemory::open(&order::<String>("COUNTERS_SEGMENT")?)?),
        };
        let slot = |index: usize| -> io::Result<&AtomicU64> {
            let slots = segment.as_ref().map_or(&[][..], SharedMemory::slots);
            slots
                .get(index)
                .ok_or_else(|| io::Error::other("slot out of range"))
        };
        ready_then_wait_for_go()?;
        if segment.is_some() {
            start_together(slot(workers * SLOT_STRIDE)?, workers as u64);
        }
        match method {
            Method::PipePerUpdate => {
                let mut pipe = stdout_file()?;
                for _ in 0..increments {
                    pipe.write_all(&1u64.to_le_bytes())?; // One system call each.
                }
            }
            Method::PipeBuffered => {
                let mut pipe = BufWriter::with_capacity(64 * 1024, stdout_file()?);
                for _ in 0..increments {
                    pipe.write_all(&1u64.to_le_bytes())?; // A copy into our buffer.
                }
                pipe.flush()?;
            }
            Method::SharedCounter => {
                let total = slot(0)?;
                for _ in 0..increments {
                    total.fetch_add(1, Ordering::Relaxed); // One indivisible read-modify-write.
                }
            }
            Method::SlotPerWorker => {
                let mine = slot(me * SLOT_STRIDE)?;
                for _ in 0..increments {
                    mine.fetch_add(1, Ordering::Relaxed); // Nobody else writes this line.
                }
            }
            Method::RacyLoadStore => {
                let total = slot(0)?;
                for i in 0..increments {
                    // `black_box`: the compiler may not fuse the loop into one add of `increments`.
                    let seen = std::hint::black_box(total.load(Ordering::Relaxed));
                    if i % 256 == 255 {
                        // The window, widened as a preemption would (and as CPython's switch
                        // between bytecodes does): on a busy or single core, too, it loses.
                        std::thread::yield_now();
                    }
                    // Another worker's updates between our load and our store are overwritten.
                    total.store(seen + 1, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }

    /// A start line in shared memory: each worker checks in, then spins until all have. After
    /// "go", waking N processes takes tens of µs each; this makes them really run together.
    /// It only helps the measurement, so a worker that never arrives delays the rest 1 s at most.
    fn start_together(arrived: &AtomicU64, workers: u64) {
        arrived.fetch_add(1, Ordering::Relaxed);
        let give_up = Instant::now() + Duration::from_secs(1);
        let mut spins = 0u32;
        while arrived.load(Ordering::Relaxed) < workers {
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(64) {
                std::hint::spin_loop();
            } else if Instant::now() < give_up {
                std::thread::yield_now(); // Let a worker sharing our core check in.
            } else {
                return;
            }
        }
    }

    /// A fresh name per segment: pid, time and a counter. `create` refuses a clash anyway.
    pub fn unique_name() -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        let nanos = now.map_or(0, |d| d.subsec_nanos());
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!("shm-lesson-{}-{nanos}-{n}", std::process::id())
    }
}

/// `multiprocessing.Array`: N workers fill one big array, each its own part, written in
/// place in shared memory, or streamed through pipes into the parent's copy.
mod fill {
    use std::io::{self, BufWriter, Read, Write};
    use std::process::Command;
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use super::counters::unique_name;
    use super::shm::SharedMemory;
    use super::team::{Team, order, ready_then_wait_for_go, stdout_file};

    /// Cell `i` of the array: anything cheap that depends on `i`.
    pub fn value(i: u64) -> u64 {
        i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// Worker `w`'s part: `[start, end)` of `len` cells shared by `workers`.
    pub fn part(w: usize, workers: usize, len: usize) -> std::ops::Range<usize> {
        len * w / workers..len * (w + 1) / workers
    }

    pub struct Filled {
        /// The wrapping sum of every cell, as the parent reads them.
        pub checksum: u64,
        pub elapsed: Duration,
    }

    /// Fills `len` cells with `value(i)` on `workers` processes; `in_place`: in a shared array,
    /// otherwise through each worker's stdout into the parent's `Vec`.
    pub fn run(
        in_place: bool,
        workers: usize,
        len: usize,
        worker_command: &dyn Fn() -> Command,
    ) -> io::Result<Filled> {
        let mut segment = in_place
            .then(|| SharedMemory::create(&unique_name(), len))
            .transpose()?;
        let mut team = Team::start(workers, |w| {
            let range = part(w, workers, len);
            let mut cmd = worker_command();
            cmd.env("FILL_START", range.start.to_string())
                .env("FILL_END", range.end.to_string());
            if let Some(segment) = &segment {
                cmd.env("FILL_SEGMENT", segment.name());
            }
            cmd
        })?;
        if let Some(segment) = &mut segment {
            segment.unlink()?;
        }
        // The parent's copy, for the pipe: allocated and touched before the clock starts, as
        // the segment is (`vec![0; n]` would get untouched pages, faulted in while measured).
        let mut copy = if in_place {
            Vec::new()
        } else {
            vec![u64::MAX; len]
        };
        let start = Instant::now();
        team.go()?;
        if segment.is_none() {
            // Each reader fills its own part of our copy: disjoint `&mut` slices, one
            // thread per worker (a pipe holds 64 KiB, then its writer waits for a reader).
            std::thread::scope(|s| {
                let mut readers = Vec::with_capacity(workers);
                let mut rest = &mut copy[..];
                for (w, pipe) in team.outputs.iter_mut().enumerate() {
                    let cells = part(w, workers, len).len();
                    let (mine, tail) = std::mem::take(&mut rest).split_at_mut(cells);
                    rest = tail;
                    readers.push(s.spawn(move || -> io::Result<()> {
                        let mut cell = [0u8; 8];
                        for slot in mine {
                            pipe.read_exact(&mut cell)?;
                            *slot = u64::from_le_bytes(cell);
                        }
                        Ok(())
                    }));
                }
                let results = readers
                    .into_iter()
                    .map(|r| r.join().expect("reader panicked"));
                results.collect::<io::Result<()>>()
            })?;
        }
        team.wait_all()?;
        let elapsed = start.elapsed(); // The parent now holds the whole array, either way.
        let checksum = match &segment {
            Some(segment) => (segment.slots().iter())
                .fold(0u64, |sum, c| sum.wrapping_add(c.load(Ordering::Relaxed))),
            None => copy.iter().fold(0u64, |sum, &c| sum.wrapping_add(c)),
        };
        Ok(Filled { checksum, elapsed })
    }

    /// The worker: compute its part and write it in place, or send it.
    pub fn worker_main() -> io::Result<()> {
        let (start, end): (u64, u64) = (order("FILL_START")?, order("FILL_END")?);
        let segment = std::env::var("FILL_SEGMENT").ok();
        let segment = segment.map(|name| SharedMemory::open(&name)).transpose()?;
        ready_then_wait_for_go()?;
        match &segment {
            Some(segment) => {
                let cells = usize::try_from(start).ok().zip(usize::try_from(end).ok());
                let cells = cells.and_then(|(s, e)| segment.slots().get(s..e));
                let cells = cells.ok_or_else(|| io::Error::other("part out of range"))?;
                for (i, cell) in (start..).zip(cells) {
                    cell.store(value(i), Ordering::Relaxed); // A plain `mov` on x86-64.
                }
            }
            None => {
                let mut pipe = BufWriter::with_capacity(64 * 1024, stdout_file()?);
                for i in start..end {
                    pipe.write_all(&value(i).to_le_bytes())?;
                }
                pipe.flush()?;
            }
        }
        Ok(())
    }
}

// === Harness: not part of the lesson ===

use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use clap::builder::PossibleValuesParser;
use counters::{Method, SLOT_STRIDE};
use serde::Serialize;
use shared::cli;
use shared::python::Python;
use shared::report::{Row, SpeedupTable};

/// The course's version (`Value`, `Array`, `shared_memory`, `Pipe`), run by `--python`.
const PYTHON_RECIPE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/shared_memory.py");

/// N worker processes update a counter and fill an array, through shared memory and through pipes.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Worker processes [default: available cores].
    #[arg(long, value_parser = cli::usize_in(1, 64))]
    workers: Option<usize>,
    /// Counter updates per worker.
    #[arg(long, default_value_t = 200_000, value_parser = cli::u64_in(1, 100_000_000))]
    increments: u64,
    /// Cells of the array the workers fill (8 bytes each; 4 Mi cells = 32 MiB).
    #[arg(long, default_value_t = 4 << 20, value_parser = cli::usize_in(1, 1 << 26))]
    cells: usize,
    /// Also run the course's Python version (python/shared_memory.py) with the same workers,
    /// updates and cells; its rows join the tables, and its results are checked.
    #[arg(long)]
    python: bool,
    /// Print one JSON object instead of the tables.
    #[arg(long)]
    json: bool,
    /// Hidden: be a worker of one experiment (its orders are in the environment).
    #[arg(long, hide = true, value_parser = PossibleValuesParser::new(["counters", "fill"]))]
    worker: Option<String>,
}

/// One row, Rust or Python, of either experiment.
#[derive(Debug, Serialize)]
struct MethodRun {
    language: &'static str,
    /// `pipe`, `counter`, …, or for Python `value_lock`, …
    method: String,
    /// The counter's total, or the array's checksum.
    result: u64,
    /// The racy variants are expected to lose updates; every other row must be exact.
    must_be_exact: bool,
    wall_s: f64,
}

/// Python's counter variants and the Rust row each one mirrors (for the ratio in the notes).
const PYTHON_COUNTERS: [(&str, &str); 4] = [
    ("pipe", "pipe"),
    ("value_lock", "counter"),
    ("shared_memory_slots", "slots"),
    ("value_no_lock", "racy"),
];
const PYTHON_FILL: [(&str, &str); 2] = [("send_bytes", "stream"), ("array", "shared-array")];

fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    match args.worker.as_deref() {
        Some("counters") => return worker(counters::worker_main()),
        Some(_) => return worker(fill::worker_main()),
        None => {}
    }
    let python = match args.python.then(|| Python::find(&[])).transpose() {
        Ok(python) => python,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get().min(64)));
    let expected_total = args.increments * workers as u64; // ≤ 64 × 10^8: no overflow.
    let expected_checksum =
        (0..args.cells as u64).fold(0u64, |s, i| s.wrapping_add(fill::value(i)));

    let exe = std::env::current_exe().context("finding our own binary")?;
    let worker_of = |experiment: &'static str| {
        let exe = exe.clone();
        move || {
            let mut cmd = Command::new(&exe);
            cmd.args(["--worker", experiment]);
            cmd
        }
    };
    let mut counter_runs = Vec::new();
    for method in Method::ALL {
        let measured = counters::run(method, workers, args.increments, &worker_of("counters"))
            .with_context(|| format!("the {} counter run", method.name()))?;
        counter_runs.push(MethodRun {
            language: "rust",
            method: method.name().into(),
            result: measured.total,
            must_be_exact: method != Method::RacyLoadStore,
            wall_s: measured.elapsed.as_secs_f64(),
        });
    }
    let mut fill_runs = Vec::new();
    for (name, in_place) in [("stream", false), ("shared-array", true)] {
        let filled = fill::run(in_place, workers, args.cells, &worker_of("fill"))
            .with_context(|| format!("the {name} fill"))?;
        fill_runs.push(MethodRun {
            language: "rust",
            method: name.into(),
            result: filled.checksum,
            must_be_exact: true,
            wall_s: filled.elapsed.as_secs_f64(),
        });
    }
    if let Some(py) = &python {
        let (w, n, c) = (
            workers.to_string(),
            args.increments.to_string(),
            args.cells.to_string(),
        );
        let recipe_args = ["--workers", &w, "--increments", &n, "--cells", &c];
        let out = py.run_recipe(PYTHON_RECIPE, &recipe_args)?;
        let pick = |part: &str, name: &str, field: &str| -> anyhow::Result<MethodRun> {
            let row = &out.json[part][name];
            let result = row[field].as_u64();
            let wall = row["wall_s"]
                .as_f64()
                .filter(|s| s.is_finite() && *s >= 0.0);
            let (Some(result), Some(wall_s)) = (result, wall) else {
                anyhow::bail!("{PYTHON_RECIPE}: no {field} or wall_s for {part}.{name}: {row}");
            };
            let method = name.to_owned();
            let must_be_exact = name != "value_no_lock";
            Ok(MethodRun {
                language: "python",
                method,
                result,
                must_be_exact,
                wall_s,
            })
        };
        for (name, _) in PYTHON_COUNTERS {
            counter_runs.push(pick("counters", name, "total")?);
        }
        for (name, _) in PYTHON_FILL {
            fill_runs.push(pick("fill", name, "checksum")?);
        }
    }
    let title = format!(
        "{workers} worker processes × {} increments",
        args.increments
    );
    let counter_table = make_table(title, &counter_runs, expected_total, &PYTHON_COUNTERS);
    let title = format!(
        "{workers} worker processes fill {} cells of 8 bytes",
        args.cells
    );
    let fill_table = make_table(title, &fill_runs, expected_checksum, &PYTHON_FILL);
    let exact = counter_runs
        .iter()
        .all(|r| !r.must_be_exact || r.result == expected_total)
        && fill_runs.iter().all(|r| r.result == expected_checksum);
    if args.json {
        shared::report::print_json(&serde_json::json!({
            "workers": workers,
            "increments": args.increments,
            "cells": args.cells,
            "expected_total": expected_total,
            "expected_checksum": expected_checksum,
            "slot_stride_bytes": SLOT_STRIDE * 8,
            "counters": counter_runs,
            "fill": fill_runs,
            "python_version": python.as_ref().map(|p| &p.version),
            "exact": exact,
            "tables": [counter_table.to_json(), fill_table.to_json()],
        }));
    } else {
        counter_table.print();
        println!();
        fill_table.print();
        println!();
        println!(
            "Every process saw the same memory: `fetch_add` lost nothing, `load` + `store` lost the"
        );
        println!(
            "updates that fell between another worker's load and its store. A message per update"
        );
        println!(
            "pays a system call; batched, a pipe keeps up with atomics on one counter. A big array"
        );
        println!("is where shared memory wins outright: written in place, never copied.");
    }
    if !exact {
        eprintln!("a result that must be exact is not: see the tables");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn worker(result: std::io::Result<()>) -> anyhow::Result<ExitCode> {
    result.context("shared-memory worker")?;
    Ok(ExitCode::SUCCESS)
}

/// One table: the rows in order, the exact ones checked against `expected`, the racy ones
/// reporting what they lost, and each Python row's time against its Rust counterpart.
fn make_table(
    title: String,
    runs: &[MethodRun],
    expected: u64,
    counterparts: &[(&str, &str)],
) -> SpeedupTable {
    let mut table = SpeedupTable::new(title);
    let rust_wall = |method: &str| {
        let rust = runs
            .iter()
            .find(|r| r.language == "rust" && r.method == method);
        rust.map(|r| r.wall_s)
    };
    for r in runs {
        let mut row = Row::new(
            describe(r.language, &r.method),
            Duration::from_secs_f64(r.wall_s),
        );
        let mut note = format!("{}", r.result);
        if r.must_be_exact {
            row = row.agrees(r.result == expected);
        } else {
            let lost = expected.saturating_sub(r.result);
            let share = lost as f64 * 100.0 / expected.max(1) as f64;
            note = if lost == 0 {
                format!("{note}: lost none this time (the workers barely overlapped): still a race")
            } else {
                format!("{note}: lost {lost} updates ({share:.0}%), a race")
            };
        }
        let counterpart = (counterparts.iter())
            .find(|(py, _)| r.language == "python" && *py == r.method)
            .and_then(|(_, rust)| rust_wall(rust));
        if let Some(rust) = counterpart {
            note = format!(
                "{note}; {:.0}x the Rust row's time",
                r.wall_s / rust.max(1e-9)
            );
        }
        table.push(row.note(note));
    }
    table
}

fn describe(language: &str, method: &str) -> String {
    match (language, method) {
        ("rust", "pipe") => "pipes, one write(2) per message".into(),
        ("rust", "pipe-buffered") => "pipes, messages batched (64 KiB writes)".into(),
        ("rust", "counter") => "shared memory, one counter (fetch_add)".into(),
        ("rust", "slots") => "shared memory, a slot per worker".into(),
        ("rust", "racy") => "shared memory, load + store (racy)".into(),
        ("rust", "stream") => "pipes, streamed into the parent's copy".into(),
        ("rust", "shared-array") => "shared memory, filled in place".into(),
        ("python", "pipe") => "Python Pipe, one send() per message".into(),
        ("python", "value_lock") => "Python Value, `with get_lock(): += 1`".into(),
        ("python", "value_no_lock") => "Python Value, `+= 1` without the lock".into(),
        ("python", "shared_memory_slots") => "Python SharedMemory, a slot per worker".into(),
        ("python", "send_bytes") => "Python Pipe, send_bytes() of each part".into(),
        ("python", "array") => "Python Array(lock=False), filled in place".into(),
        (language, other) => format!("{language} {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_flags_refuse_out_of_range_values() {
        for bad in [
            ["--workers", "0"],
            ["--workers", "65"],
            ["--increments", "0"],
            ["--increments", "1e30"],
            ["--increments", "100000001"],
            ["--cells", "0"],
            ["--cells", "67108865"],
        ] {
            let parsed = Args::try_parse_from(["x", bad[0], bad[1]]);
            assert!(parsed.is_err(), "{bad:?}");
        }
        let ok = Args::try_parse_from(["x", "--workers", "3", "--increments", "10"]).unwrap();
        assert_eq!((ok.workers, ok.increments), (Some(3), 10));
    }

    #[test]
    fn the_racy_row_reports_its_losses_and_the_exact_rows_their_agreement() {
        let run = |language, method: &str, result, must_be_exact| MethodRun {
            language,
            method: method.into(),
            result,
            must_be_exact,
            wall_s: 0.01,
        };
        let runs = [
            run("rust", "counter", 100, true),
            run("rust", "racy", 60, false),
            run("python", "value_lock", 99, true),
        ];
        let table = make_table("t".into(), &runs, 100, &PYTHON_COUNTERS);
        assert_eq!(table.rows()[0].agrees, Some(true));
        assert_eq!(table.rows()[1].agrees, None);
        assert!(table.rows()[1].note.contains("lost 40 updates (40%)"));
        assert_eq!(table.rows()[2].agrees, Some(false));
        assert!(table.rows()[2].note.contains("1x the Rust row's time"));
        assert!(!table.all_agree());
    }

    #[test]
    fn parts_cover_the_array_once() {
        for (workers, len) in [(1, 10), (3, 10), (4, 3), (7, 1000)] {
            let mut next = 0;
            for w in 0..workers {
                let p = fill::part(w, workers, len);
                assert_eq!(p.start, next);
                next = p.end;
            }
            assert_eq!(next, len);
        }
    }
}
