//! Map-reduce across processes: `map-reduce`'s word count on timely dataflow, N processes × W
//! workers exchanging words by hash over TCP, checked against rayon on one machine.
//!
//! Course section **8.4 Patterns de concurrence — Map-Reduce**, one step past
//! `multiprocessing.Pool`: the workers are whole programs, on this machine or on others.
//!
//! Crates: `timely = { version = "0.32", default-features = false }`, `rustc-hash = "2.1"`
//!
//! # Concepts
//! - **One program, many processes.** Every process runs the same binary with the same
//!   arguments and hostfile; only `--process I` differs. Timely connects them all to all (TCP)
//!   and numbers the N×W worker threads 0..P: that index is all a worker needs to find its work.
//! - **Map where the data is.** Files are cut into 4 MiB ranges and worker i reads ranges i,
//!   i+P, i+2P, ... A word that crosses a range's start belongs to the range before, one that
//!   crosses its end to this one (Hadoop's rule): no word is cut, none is counted twice.
//! - **Combine, then shuffle.** A worker counts a range into a local map, then sends one
//!   (word, count) record per distinct word, routed by a hash of the word: each word ends at one
//!   worker, which adds its counts up. (Timely's own `wordcount.rs` routes by word length.)
//! - **Gather.** Every worker sends its totals, a checksum and its top-K to worker 0; the top-K
//!   of those is exact, because a word lives at one worker only.
//! - **Failure.** Timely has no fault tolerance: when a process dies, its peers' network threads
//!   panic. Here that panic ends the process with a clear message (exit 4), not a hang; Spark or
//!   Flink would re-run the lost work from their lineage or checkpoints.
//!
//! # Run
//! ```text
//! cargo run --release -p examples-patterns --features distributed --bin map-reduce-distributed
//! ... -- --processes 2 --workers 2 --vocabulary 300000 --top 20
//! ... -- --scaling                 # 1×1, 1×2, 2×1, 2×2 processes × workers, and rayon
//! ... -- --pace-ms 300             # slow; `kill -9` one process and watch the others stop
//! ```
//! **On real hosts**: write a hostfile, one `host:port` per line (process I listens on line I).
//! Put the input at the same path on every host (a shared filesystem or a copy), or give no
//! files and each host writes the same seeded corpus. Then on host I run the same binary with
//! the same arguments: `map-reduce-distributed --hostfile hosts.txt --process I [FILES]`.
//! Process 0 prints the merged result. Open the ports between the hosts; nothing is encrypted.
//!
//! # What to observe
//! - The merged counts equal rayon's on one machine: words, distinct words and a checksum of
//!   every (word, count). Each process prints its share: bytes read, words it owns.
//! - The hash spreads words evenly: the processes own about the same number of them.
//! - `--scaling` puts the exchange's price in its `cpu` column, against rayon on one machine: a
//!   little between the threads of one process, about half again between processes (every
//!   record serialised and sent over TCP). Start-up with 2 processes takes about a second.
//!
//! # Exercises
//! 1. Route by word length, as timely's `wordcount.rs` does. What happens to the shares?
//! 2. Drop the combiner: send `(word, 1)` for every word. How many more records, how much slower?
//! 3. Run `--pace-ms 300` and `kill -9` a process. What do the others print? Why can't timely
//!    carry on without it?
//! 4. Add a second stage: the 10 most frequent word *lengths*, with one more exchange.

// === Lesson: copy from here ===

/// What a word is: the same definition as `map-reduce` (Python's `split()`), so both count alike.
mod words {
    use rustc_hash::FxHashMap;

    /// Word → count (FxHash: fast on short keys; the input does not choose its keys).
    pub type Counts = FxHashMap<Word, u64>;

    /// The longest word kept: a longer run without a separator counts as its first 1 KiB.
    pub const MAX_WORD: usize = 1024;

    const INLINE: usize = 22;

    /// A word as a key: short words inline (no allocation, no pointer to chase), long ones boxed.
    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    pub enum Word {
        Inline { len: u8, bytes: [u8; INLINE] },
        Heap(Box<[u8]>),
    }

    impl Word {
        pub fn new(word: &[u8]) -> Word {
            Self::mapped(word, |b| b)
        }

        fn mapped(word: &[u8], f: impl Fn(u8) -> u8) -> Word {
            if word.len() <= INLINE {
                let mut bytes = [0u8; INLINE];
                for (d, &s) in bytes.iter_mut().zip(word) {
                    *d = f(s);
                }
                let len = u8::try_from(word.len()).expect("INLINE fits in a u8");
                Word::Inline { len, bytes }
            } else {
                Word::Heap(word.iter().map(|&b| f(b)).collect())
            }
        }

        pub fn as_bytes(&self) -> &[u8] {
            match self {
                Word::Inline { len, bytes } => &bytes[..usize::from(*len)],
                Word::Heap(b) => b,
            }
        }
    }

    /// Python's ASCII separators: `\t \n \x0b \x0c \r`, `\x1c`..`\x1f` and space.
    pub fn is_sep(b: u8) -> bool {
        matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0x1c..=0x1f | b' ')
    }

    /// Counts the words of `text` into `counts`, lower-cased, the way Python splits them.
    pub fn count_words(text: &[u8], counts: &mut Counts) {
        for run in text.split(|&b| is_sep(b)).filter(|w| !w.is_empty()) {
            let run = &run[..run.len().min(MAX_WORD)];
            if run.is_ascii() {
                *counts
                    .entry(Word::mapped(run, |b| b.to_ascii_lowercase()))
                    .or_insert(0) += 1;
            } else {
                // Decode (invalid bytes → U+FFFD), Unicode lower-case, split on Unicode spaces.
                let decoded = String::from_utf8_lossy(run).to_lowercase();
                for w in decoded.split(char::is_whitespace).filter(|w| !w.is_empty()) {
                    *counts.entry(Word::new(w.as_bytes())).or_insert(0) += 1;
                }
            }
        }
    }

    /// The `k` most frequent, most frequent first, ties by word (a deterministic output).
    pub fn top_k(mut all: Vec<(Vec<u8>, u64)>, k: usize) -> Vec<(Vec<u8>, u64)> {
        all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(k);
        all
    }
}

/// Which bytes each worker reads: fixed ranges of every file, dealt round-robin, each extended
/// so that its words are whole.
mod ranges {
    use super::words::{MAX_WORD, is_sep};
    use std::fs::File;
    use std::io;
    use std::os::unix::fs::FileExt;

    /// The ranges `[start, end)` that worker `index` of `peers` reads in a file of `len` bytes:
    /// every `peers`-th range of `size` bytes, from the `index`-th on.
    pub fn ranges_of(len: u64, size: u64, index: usize, peers: usize) -> Vec<(u64, u64)> {
        let size = size.max(1);
        (0..len.div_ceil(size))
            .skip(index)
            .step_by(peers.max(1))
            .map(|k| (k * size, ((k + 1) * size).min(len)))
            .collect()
    }

    /// The bytes of `[start, end)` in `file`, whole words only: the tail of a word that began
    /// before `start` is skipped (the range before reads it), and a word still going at `end`
    /// is read to its end (at most `MAX_WORD` bytes of it are kept: the rest is not counted).
    /// `pread` (`read_exact_at`): no shared file position, so workers never disturb each other.
    pub fn read_range(file: &File, start: u64, end: u64) -> io::Result<Vec<u8>> {
        let len = usize::try_from(end - start).map_err(io::Error::other)?;
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, start)?;
        if start > 0 {
            let mut before = [0u8];
            file.read_exact_at(&mut before, start - 1)?;
            if !is_sep(before[0]) {
                match buf.iter().position(|&b| is_sep(b)) {
                    Some(first) => drop(buf.drain(..first)),
                    // All of it is inside a word that started before: not ours at all.
                    None => return Ok(Vec::new()),
                }
            }
        }
        let mut word = buf.len() - buf.iter().rposition(|&b| is_sep(b)).map_or(0, |p| p + 1);
        let mut at = end;
        let mut piece = [0u8; 4096];
        while word > 0 {
            let n = file.read_at(&mut piece, at)?;
            if n == 0 {
                break; // end of file: the word ends here
            }
            let stop = piece[..n].iter().position(|&b| is_sep(b));
            let take = stop.unwrap_or(n);
            let keep = take.min(MAX_WORD.saturating_sub(word));
            buf.extend_from_slice(&piece[..keep]);
            word += take;
            at += n as u64;
            if stop.is_some() {
                break;
            }
        }
        Ok(buf)
    }

    #[cfg(test)]
    pub mod tests {
        use super::super::words::{Counts, count_words};
        use super::*;

        /// A file in the temp directory, removed when dropped.
        pub struct TempFile(pub std::path::PathBuf);

        impl TempFile {
            pub fn new(name: &str, bytes: &[u8]) -> TempFile {
                // Unique per process and per call: tests run in parallel threads.
                static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let path = std::env::temp_dir().join(format!("{name}-{}-{n}", std::process::id()));
                std::fs::write(&path, bytes).expect("write a temp file");
                TempFile(path)
            }
        }

        impl Drop for TempFile {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }

        /// The counts of every worker's ranges, added up, must be the counts of the whole text.
        pub fn counts_by_ranges(text: &[u8], size: u64, peers: usize) -> Counts {
            let tmp = TempFile::new(&format!("ranges-{size}-{peers}"), text);
            let file = File::open(&tmp.0).expect("open");
            let mut counts = Counts::default();
            for index in 0..peers {
                for (start, end) in ranges_of(text.len() as u64, size, index, peers) {
                    count_words(&read_range(&file, start, end).expect("read"), &mut counts);
                }
            }
            counts
        }

        #[test]
        fn every_word_is_read_once_whatever_the_ranges() {
            let mut text = "Été été\u{a0}ÉTÉ caf\u{e9}  the THE\tend\n"
                .repeat(40)
                .into_bytes();
            text.extend(std::iter::repeat_n(b'z', 3 * MAX_WORD + 5)); // a word over many ranges
            text.extend_from_slice(b" last");
            let mut whole = Counts::default();
            count_words(&text, &mut whole);
            for size in [1, 2, 3, 7, 64, 1000, 1 << 20] {
                for peers in [1, 2, 3] {
                    assert_eq!(
                        counts_by_ranges(&text, size, peers),
                        whole,
                        "size {size}, {peers} peers"
                    );
                }
            }
        }

        #[test]
        fn ranges_are_dealt_round_robin() {
            assert_eq!(ranges_of(10, 4, 0, 2), [(0, 4), (8, 10)]);
            assert_eq!(ranges_of(10, 4, 1, 2), [(4, 8)]);
            assert_eq!(ranges_of(0, 4, 0, 1), []);
        }
    }
}

/// The timely dataflow: map with a combiner, exchange by hash, reduce per worker, gather.
mod dataflow {
    use super::ranges::{ranges_of, read_range};
    use super::words::{Counts, Word, count_words, top_k};
    use rustc_hash::FxBuildHasher;
    use std::cell::RefCell;
    use std::fs::File;
    use std::hash::BuildHasher;
    use std::io;
    use std::path::PathBuf;
    use std::rc::Rc;
    use std::time::{Duration, Instant};
    use timely::dataflow::operators::{Exchange, Inspect, Probe};
    use timely::dataflow::{InputHandleVec, ProbeHandle};
    use timely::synchronization::Barrier;
    use timely::worker::Worker;

    /// What one worker did and what it holds at the end. Sent to worker 0 as a tuple: records
    /// that cross processes must be serialisable, and tuples of std types already are.
    #[derive(Debug, Clone, PartialEq)]
    pub struct WorkerReport {
        pub worker: usize,
        pub bytes_read: u64,
        pub words_mapped: u64,
        pub records_sent: u64,
        pub words_owned: u64,
        pub distinct_owned: u64,
        /// Sum of [`checksum`] over the (word, count) pairs this worker owns.
        pub checksum: u64,
        pub top: Vec<(Vec<u8>, u64)>,
        pub seconds: f64,
    }

    /// What `count_on_worker` returns: this worker's report, and on worker 0 every worker's
    /// (its own included; empty elsewhere).
    pub struct WorkerResult {
        pub own: WorkerReport,
        pub gathered: Vec<WorkerReport>,
    }

    type ReportRecord = (usize, [u64; 6], Vec<(Vec<u8>, u64)>, f64);

    impl WorkerReport {
        fn to_record(&self) -> ReportRecord {
            let totals = [
                self.bytes_read,
                self.words_mapped,
                self.records_sent,
                self.words_owned,
                self.distinct_owned,
                self.checksum,
            ];
            (self.worker, totals, self.top.clone(), self.seconds)
        }

        fn from_record((worker, t, top, seconds): ReportRecord) -> WorkerReport {
            let [
                bytes_read,
                words_mapped,
                records_sent,
                words_owned,
                distinct_owned,
                checksum,
            ] = t;
            WorkerReport {
                worker,
                bytes_read,
                words_mapped,
                records_sent,
                words_owned,
                distinct_owned,
                checksum,
                top,
                seconds,
            }
        }
    }

    /// Which worker owns `word`: timely keeps the low bits of this (modulo the peers), so take
    /// them from the top half of the hash, which the owner's own map does not use for buckets.
    pub fn route(word: &[u8]) -> u64 {
        FxBuildHasher.hash_one(word) >> 32
    }

    /// One (word, count) pair's share of a checksum: summed (wrapping) over any split of the
    /// counts, it equals the sum over one map, so shards can be checked without moving them.
    pub fn checksum(word: &[u8], count: u64) -> u64 {
        FxBuildHasher.hash_one((word, count))
    }

    /// Runs on every worker thread of every process. Returns this worker's report, and on
    /// worker 0 every worker's (its own included). `pace` slows the map down, to watch a run.
    pub fn count_on_worker(
        worker: &mut Worker,
        files: &[PathBuf],
        range_size: u64,
        k: usize,
        pace: Duration,
    ) -> io::Result<WorkerResult> {
        let (index, peers) = (worker.index(), worker.peers());
        // Every worker waits here for all the others, so the clock times the count, not the
        // start-up of the other processes.
        Barrier::new(worker).wait();
        let started = Instant::now();
        let owned: Rc<RefCell<Counts>> = Rc::default();
        let mut input = InputHandleVec::<u64, (Vec<u8>, u64)>::new();
        let probe = ProbeHandle::new();
        let shard = Rc::clone(&owned);
        worker.dataflow::<u64, _, _>(|scope| {
            input
                .to_stream(scope)
                .exchange(|(word, _)| route(word))
                .inspect(move |(word, n)| {
                    *shard.borrow_mut().entry(Word::new(word)).or_insert(0) += n
                })
                .probe_with(&probe);
        });

        // Map: this worker's ranges of every file, each counted by the combiner, then sent.
        let (mut bytes_read, mut words_mapped, mut records_sent) = (0, 0, 0);
        let mut map_phase = || -> io::Result<()> {
            for path in files {
                let file = File::open(path)?;
                for (start, end) in ranges_of(file.metadata()?.len(), range_size, index, peers) {
                    std::thread::sleep(pace);
                    let bytes = read_range(&file, start, end)?;
                    let mut combined = Counts::default();
                    count_words(&bytes, &mut combined);
                    bytes_read += end - start;
                    words_mapped += combined.values().sum::<u64>();
                    records_sent += combined.len() as u64;
                    for (word, n) in combined {
                        input.send((word.as_bytes().to_vec(), n));
                    }
                    worker.step(); // move what is ready, so incoming records do not pile up
                }
            }
            Ok(())
        };
        let mapped = map_phase();
        // Closing the input tells every peer "no more from me"; even after an error, so the
        // others finish instead of waiting for us forever.
        drop(input);
        worker.step_or_park_while(None, || !probe.done());

        let owned = std::mem::take(&mut *owned.borrow_mut());
        let own = WorkerReport {
            worker: index,
            bytes_read,
            words_mapped,
            records_sent,
            words_owned: owned.values().sum(),
            distinct_owned: owned.len() as u64,
            checksum: owned.iter().fold(0, |acc, (w, &n)| {
                acc.wrapping_add(checksum(w.as_bytes(), n))
            }),
            top: top_k(
                owned
                    .iter()
                    .map(|(w, &n)| (w.as_bytes().to_vec(), n))
                    .collect(),
                k,
            ),
            seconds: started.elapsed().as_secs_f64(),
        };
        let gathered = gather_at_worker_0(worker, &own);
        mapped.map(|()| WorkerResult { own, gathered })
    }

    /// A second, tiny dataflow: every worker sends its report to worker 0.
    fn gather_at_worker_0(worker: &mut Worker, own: &WorkerReport) -> Vec<WorkerReport> {
        let received: Rc<RefCell<Vec<WorkerReport>>> = Rc::default();
        let mut input = InputHandleVec::<u64, ReportRecord>::new();
        let probe = ProbeHandle::new();
        let sink = Rc::clone(&received);
        worker.dataflow::<u64, _, _>(|scope| {
            input
                .to_stream(scope)
                .exchange(|_| 0)
                .inspect(move |r| sink.borrow_mut().push(WorkerReport::from_record(r.clone())))
                .probe_with(&probe);
        });
        input.send(own.to_record());
        drop(input);
        worker.step_or_park_while(None, || !probe.done());
        let mut all = std::mem::take(&mut *received.borrow_mut());
        all.sort_by_key(|r| r.worker);
        all
    }

    /// When a peer process dies, timely's network threads panic ("timely communication error",
    /// then "MergeQueue poisoned" in the workers) and the workers would wait forever for the
    /// dead peer. Turn that panic into a clear message and exit status 4 for the whole process.
    pub fn exit_when_a_peer_is_lost(process: usize) {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            if message.contains("timely communication error")
                || message.contains("MergeQueue poisoned")
            {
                eprintln!(
                    "process {process}: lost the connection to another process (it died, or the \
                     network failed): {message}; stopping"
                );
                std::process::exit(4);
            }
            default_hook(info);
        }));
    }

    #[cfg(test)]
    mod tests {
        use super::super::ranges::tests::TempFile;
        use super::super::words::{Counts, count_words};
        use super::*;

        #[test]
        fn two_workers_count_like_one_loop_and_gather_at_worker_0() {
            let text = "b a c a b d é É x\u{a0}y ".repeat(500);
            let tmp = TempFile::new("dataflow-two-workers", text.as_bytes());
            let files = vec![tmp.0.clone()];
            let guards = timely::execute(timely::Config::process(2), move |worker| {
                count_on_worker(worker, &files, 100, 3, Duration::ZERO).expect("count")
            })
            .expect("start two workers");
            let results: Vec<_> = guards
                .join()
                .into_iter()
                .map(|r| r.expect("no panic"))
                .collect();
            let mut whole = Counts::default();
            count_words(text.as_bytes(), &mut whole);
            let reports = &results[0].gathered;
            assert_eq!(reports.len(), 2, "worker 0 gathered both reports");
            assert!(results[1].gathered.is_empty(), "only worker 0 gathers");
            let words: u64 = reports.iter().map(|r| r.words_owned).sum();
            assert_eq!(words, whole.values().sum::<u64>());
            let sum = whole.iter().fold(0u64, |acc, (w, &n)| {
                acc.wrapping_add(checksum(w.as_bytes(), n))
            });
            let gathered = reports
                .iter()
                .fold(0u64, |acc, r| acc.wrapping_add(r.checksum));
            assert_eq!(
                gathered, sum,
                "the shards hold exactly the sequential counts"
            );
            assert!(
                reports.iter().all(|r| r.bytes_read > 0),
                "both workers read ranges"
            );
        }
    }
}

// === Harness: not part of the lesson ===

use anyhow::{Context, Result, bail};
use clap::Parser;
use dataflow::{WorkerReport, WorkerResult, checksum, count_on_worker, exit_when_a_peer_is_lost};
use ranges::{ranges_of, read_range};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use shared::cli::{seconds_in, u64_in, usize_in};
use shared::corpus::{self, InputFiles};
use shared::report::{Row, SpeedupTable, describe_exit, fmt_bytes, fmt_duration, print_json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use words::{Counts, count_words, top_k};

/// Default corpus: the same file `map-reduce` counts by default (same size, seed, vocabulary).
const DEFAULT_SIZE: &str = "200MB";
/// The ranges workers read: many per worker (so the work is balanced), each a few MiB.
const DEFAULT_RANGE: &str = "4MiB";
/// Longest word printed in the tables (the JSON has the word as counted).
const PRINTED_WORD: usize = 40;
/// A process's exit status when it could not listen or connect: the launcher retries with new
/// ports (another program may take a port between our probe and the process's bind).
const EXIT_NETWORK: i32 = 3;
/// The exit status `exit_when_a_peer_is_lost` uses.
const EXIT_PEER_LOST: i32 = 4;
/// How long the other processes get to stop on their own after one of them failed.
const GRACE: Duration = Duration::from_secs(10);
/// Launches tried when a port was taken meanwhile.
const LAUNCH_ATTEMPTS: usize = 3;
/// The configurations of `--scaling`: (processes, workers per process).
const SCALING: [(usize, usize); 4] = [(1, 1), (1, 2), (2, 1), (2, 2)];

/// The word count of map-reduce on timely dataflow: N processes × W workers, checked against
/// rayon. Without --process, starts its own processes on this machine.
#[derive(Parser, Debug, Clone)]
#[command(version)]
struct Args {
    /// Files to count (the same path on every host). Without files, the seeded corpus of
    /// `--size` bytes is written to the temp directory (the same one `map-reduce` counts).
    files: Vec<PathBuf>,
    /// Size of the generated corpus (e.g. 200MB, 20MB, 512KiB; at most 64GB).
    #[arg(long, default_value = DEFAULT_SIZE, value_parser = corpus::size_in(1, 64_000_000_000))]
    size: usize,
    /// Seed of the generated corpus.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Distinct words the generated corpus draws from (Zipf).
    #[arg(long, default_value_t = corpus::VOCABULARY,
          value_parser = usize_in(1_000, corpus::MAX_VOCABULARY))]
    vocabulary: usize,
    /// Processes to start on this machine (each listens on a free 127.0.0.1 port).
    #[arg(long, default_value_t = 2, value_parser = usize_in(1, 16))]
    processes: usize,
    /// Worker threads per process.
    #[arg(long, default_value_t = 1, value_parser = usize_in(1, 64))]
    workers: usize,
    /// Size of the ranges the workers read (each extended to whole words).
    #[arg(long, default_value = DEFAULT_RANGE, value_parser = corpus::size_in(1024, 1 << 30))]
    range_size: usize,
    /// How many of the most frequent words to print.
    #[arg(long, default_value_t = 10, value_parser = usize_in(0, 1_000_000))]
    top: usize,
    /// Run 1×1, 1×2, 2×1 and 2×2 processes × workers and rayon on 1 and 2 threads, and print
    /// a scaling table.
    #[arg(long, conflicts_with_all = ["process", "processes", "workers"])]
    scaling: bool,
    /// Sleep this many milliseconds before each range: to watch a run, or to kill a process in
    /// the middle of one.
    #[arg(long, default_value_t = 0, value_parser = u64_in(0, 10_000))]
    pace_ms: u64,
    /// Be process I of the hostfile's processes (a member of a cluster you start yourself, one
    /// process per host). Without it, this program starts its own processes.
    #[arg(long, requires = "hostfile", value_parser = usize_in(0, 1023))]
    process: Option<usize>,
    /// With --process: one `host:port` per line; process I listens on line I.
    #[arg(long, requires = "process")]
    hostfile: Option<PathBuf>,
    /// With --process: how long to wait for every process to connect, in seconds.
    #[arg(long, default_value = "30", value_parser = seconds_in(1.0, 3600.0))]
    connect_timeout: Duration,
    /// Print the figures as one JSON object instead of tables.
    #[arg(long)]
    json: bool,
}

/// A run the user stopped (Ctrl-C, SIGTERM): exit 130, after the processes are stopped.
#[derive(Debug, thiserror::Error)]
#[error("interrupted: the processes were stopped")]
struct Interrupted;

/// Timely could not listen or connect.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct NetworkFailed(String);

fn main() {
    let args = Args::parse();
    let result = match args.process {
        Some(process) => run_cluster_member(&args, process),
        None if args.scaling => run_scaling(&args),
        None => run_local_cluster(&args),
    };
    if let Err(e) = result {
        eprintln!("Error: {e:#}");
        let code = if e.is::<Interrupted>() {
            130
        } else if e.is::<NetworkFailed>() {
            EXIT_NETWORK
        } else {
            1
        };
        std::process::exit(code);
    }
}

/// The files to count: the arguments, or the seeded corpus (written once, then reused).
fn input_files(args: &Args) -> Result<Vec<PathBuf>> {
    if args.files.is_empty() {
        Ok(vec![corpus::cached_corpus(
            args.size,
            args.seed,
            args.vocabulary,
        )?])
    } else {
        Ok(args.files.clone())
    }
}

// ---------------------------------------------------------------------------------------------
// One process of the cluster (`--process I --hostfile F`): what runs on every host.
// ---------------------------------------------------------------------------------------------

/// One worker's share, as a process reports it.
#[derive(Serialize, Deserialize, Debug, Clone)]
struct WorkerShare {
    worker: usize,
    bytes_read: u64,
    words_mapped: u64,
    records_sent: u64,
    words_owned: u64,
    distinct_owned: u64,
    seconds: f64,
}

/// The result gathered at worker 0: every shard's totals added up, and the top words.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct MergedCount {
    words: u64,
    distinct: u64,
    checksum: u64,
    top: Vec<(String, u64)>,
}

/// What one process prints (one JSON line with `--json`): its workers' shares, and on process 0
/// the merged count.
#[derive(Serialize, Deserialize, Debug, Clone)]
struct ProcessShare {
    process: usize,
    processes: usize,
    workers: Vec<WorkerShare>,
    /// From the start to every process connected.
    connect_seconds: f64,
    /// The dataflow itself: the slowest of this process's workers.
    seconds: f64,
    /// CPU time (user + system) of the whole process, start to end.
    cpu_seconds: f64,
    merged: Option<MergedCount>,
}

impl ProcessShare {
    fn total(&self, field: impl Fn(&WorkerShare) -> u64) -> u64 {
        self.workers.iter().map(field).sum()
    }
}

fn read_hostfile(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read the hostfile {}", path.display()))?;
    let hosts: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    if let Some(bad) = hosts.iter().find(|h| !h.contains(':')) {
        bail!("{}: {bad:?} is not host:port", path.display());
    }
    if hosts.is_empty() {
        bail!("{}: no host:port line", path.display());
    }
    Ok(hosts)
}

fn run_cluster_member(args: &Args, process: usize) -> Result<()> {
    let hostfile = args
        .hostfile
        .as_deref()
        .expect("clap: --process requires --hostfile");
    let addresses = read_hostfile(hostfile)?;
    if process >= addresses.len() {
        bail!(
            "--process {process}, but {} lists {} processes",
            hostfile.display(),
            addresses.len()
        );
    }
    let files = input_files(args)?;
    let inputs = InputFiles::check(&files)?;
    let share = run_timely(args, files, addresses, process)?;
    inputs.check_unchanged()?;
    if args.json {
        print_json(&share);
    } else {
        print_share(&share);
        if let Some(m) = &share.merged {
            print_merged(m);
        }
    }
    Ok(())
}

fn run_timely(
    args: &Args,
    files: Vec<PathBuf>,
    addresses: Vec<String>,
    process: usize,
) -> Result<ProcessShare> {
    exit_when_a_peer_is_lost(process);
    let processes = addresses.len();
    let workers = args.workers;
    let communication = if processes == 1 {
        timely::CommunicationConfig::Process(workers)
    } else {
        timely::CommunicationConfig::Cluster {
            threads: workers,
            process,
            addresses,
            report: false,
            zerocopy: false,
        }
    };
    let connected = Arc::new(AtomicBool::new(false));
    exit_unless_connected_within(
        args.connect_timeout,
        Arc::clone(&connected),
        process,
        processes,
    );
    let started = Instant::now();
    let (range_size, top, pace) = (
        args.range_size as u64,
        args.top,
        Duration::from_millis(args.pace_ms),
    );
    let files = Arc::new(files);
    let config = timely::Config {
        communication,
        worker: timely::WorkerConfig::default(),
    };
    let guards = timely::execute(config, move |worker| {
        if !connected.swap(true, Ordering::SeqCst) {
            let first = process * workers;
            eprintln!(
                "connected: process {process} of {processes}, workers {first}..{}",
                first + workers - 1
            );
        }
        count_on_worker(worker, &files, range_size, top, pace)
    })
    .map_err(NetworkFailed)?;
    let connect_seconds = started.elapsed().as_secs_f64();
    let mut shares = Vec::new();
    let mut merged = None;
    for joined in guards.join() {
        let WorkerResult { own, gathered } = joined
            .map_err(|panic| anyhow::anyhow!("a worker panicked: {panic}"))?
            .context("a worker could not read its input")?;
        if own.worker == 0 {
            merged = Some(merge_reports(&gathered, top));
        }
        shares.push(WorkerShare {
            worker: own.worker,
            bytes_read: own.bytes_read,
            words_mapped: own.words_mapped,
            records_sent: own.records_sent,
            words_owned: own.words_owned,
            distinct_owned: own.distinct_owned,
            seconds: own.seconds,
        });
    }
    let seconds = shares.iter().map(|s| s.seconds).fold(0.0, f64::max);
    let cpu_seconds = shared::report::self_cpu_time().as_secs_f64();
    Ok(ProcessShare {
        process,
        processes,
        workers: shares,
        connect_seconds,
        seconds,
        cpu_seconds,
        merged,
    })
}

/// Worker 0's view: the sum of every shard, and the top words of the shards' tops.
fn merge_reports(reports: &[WorkerReport], k: usize) -> MergedCount {
    let tops = reports.iter().flat_map(|r| r.top.iter().cloned()).collect();
    MergedCount {
        words: reports.iter().map(|r| r.words_owned).sum(),
        distinct: reports.iter().map(|r| r.distinct_owned).sum(),
        checksum: reports
            .iter()
            .fold(0, |acc, r| acc.wrapping_add(r.checksum)),
        top: top_k(tops, k)
            .into_iter()
            .map(|(w, n)| (String::from_utf8_lossy(&w).into_owned(), n))
            .collect(),
    }
}

/// Timely retries a connection to a peer that is not up yet every second, forever. A watchdog:
/// if the workers have not started within `limit`, say so and exit.
fn exit_unless_connected_within(
    limit: Duration,
    connected: Arc<AtomicBool>,
    process: usize,
    processes: usize,
) {
    std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        while !connected.load(Ordering::SeqCst) {
            if Instant::now() >= deadline {
                eprintln!(
                    "process {process}: the {processes} processes did not all connect within {}: \
                     is every one started, with the same hostfile?",
                    fmt_duration(limit)
                );
                std::process::exit(EXIT_NETWORK);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}

// ---------------------------------------------------------------------------------------------
// The launcher: N local processes on 127.0.0.1, supervised.
// ---------------------------------------------------------------------------------------------

/// How one launch ended.
enum LaunchResult {
    /// Every process finished: their shares, in process order, and the wall time.
    Finished(Vec<ProcessShare>, Duration),
    /// A process could not listen or connect (most likely a port taken meanwhile): retry.
    PortsTaken,
}

/// One free port per process: bind port 0, read the port, release it. Another program may take
/// it before our process binds it; the launch is then retried with new ports.
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .context("find free ports on 127.0.0.1")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// Starts `processes` processes of this very program, supervises them, retries on a port race.
fn launch(
    args: &Args,
    files: &[PathBuf],
    processes: usize,
    workers: usize,
    stop: &AtomicBool,
) -> Result<(Vec<ProcessShare>, Duration)> {
    for attempt in 1..=LAUNCH_ATTEMPTS {
        let dir = tempfile::tempdir().context("a folder for the hostfile")?;
        let hostfile = dir.path().join("hosts.txt");
        let hosts: Vec<String> = free_ports(processes)?
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        std::fs::write(&hostfile, hosts.join("\n") + "\n").context("write the hostfile")?;
        match run_processes(args, files, &hostfile, processes, workers, stop)? {
            LaunchResult::Finished(shares, wall) => return Ok((shares, wall)),
            LaunchResult::PortsTaken => {
                eprintln!(
                    "a port was taken before a process could listen on it (attempt {attempt}): retrying"
                );
            }
        }
    }
    bail!("could not start the processes: their ports were taken {LAUNCH_ATTEMPTS} times")
}

/// One line a process wrote, or the end of one of its streams.
enum ChildEvent {
    Stdout(usize, String),
    Stderr(usize, String),
}

fn spawn_process(
    args: &Args,
    files: &[PathBuf],
    hostfile: &Path,
    process: usize,
    workers: usize,
) -> Result<Child> {
    let exe = std::env::current_exe().context("locate this program")?;
    let mut command = Command::new(exe);
    command
        .args(files)
        .arg("--process")
        .arg(process.to_string())
        .arg("--hostfile")
        .arg(hostfile)
        .args(["--workers", &workers.to_string()])
        .args(["--range-size", &args.range_size.to_string()])
        .args(["--top", &args.top.to_string()])
        .args(["--pace-ms", &args.pace_ms.to_string()])
        .args([
            "--connect-timeout",
            &args.connect_timeout.as_secs_f64().to_string(),
        ])
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl(2) is async-signal-safe and touches no memory of ours; it runs in the child
    // between fork and exec, as `pre_exec` requires. If this launcher dies (even by SIGKILL, which
    // runs no cleanup), the kernel kills its processes too: none is left orphaned.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
        .spawn()
        .with_context(|| format!("start process {process}"))
}

/// Forwards each line of `stream` as an event (a thread per stream: a full pipe never blocks a
/// process).
fn forward_lines(
    stream: impl std::io::Read + Send + 'static,
    process: usize,
    is_stdout: bool,
    events: mpsc::Sender<ChildEvent>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let event = if is_stdout {
                ChildEvent::Stdout(process, line)
            } else {
                ChildEvent::Stderr(process, line)
            };
            if events.send(event).is_err() {
                break;
            }
        }
    })
}

/// A started process and what is known about it.
struct Supervised {
    child: Child,
    exit: Option<ExitStatus>,
    /// When the exit was seen: failures are listed in this order, the cause first.
    exited_at: Option<Instant>,
    share: Option<ProcessShare>,
    killed_after_grace: bool,
}

fn run_processes(
    args: &Args,
    files: &[PathBuf],
    hostfile: &Path,
    processes: usize,
    workers: usize,
    stop: &AtomicBool,
) -> Result<LaunchResult> {
    let started = Instant::now();
    let (events, received) = mpsc::channel();
    let mut all = Vec::with_capacity(processes);
    let mut readers = Vec::new();
    for process in 0..processes {
        let mut child = match spawn_process(args, files, hostfile, process, workers) {
            Ok(c) => c,
            Err(e) => {
                stop_all(&mut all);
                return Err(e);
            }
        };
        let out = child.stdout.take().expect("stdout is piped");
        let err = child.stderr.take().expect("stderr is piped");
        readers.push(forward_lines(out, process, true, events.clone()));
        readers.push(forward_lines(err, process, false, events.clone()));
        eprintln!("[launcher] started process {process} (pid {})", child.id());
        all.push(Supervised {
            child,
            exit: None,
            exited_at: None,
            share: None,
            killed_after_grace: false,
        });
    }
    drop(events);

    let mut first_failure: Option<Instant> = None;
    let handle = |event: ChildEvent, all: &mut Vec<Supervised>| match event {
        ChildEvent::Stdout(p, line) if line.starts_with('{') => match serde_json::from_str(&line) {
            Ok(share) => all[p].share = Some(share),
            Err(e) => eprintln!("[process {p}] unreadable report ({e}): {line}"),
        },
        ChildEvent::Stdout(p, line) | ChildEvent::Stderr(p, line) => {
            eprintln!("[process {p}] {line}")
        }
    };
    loop {
        while let Ok(event) = received.try_recv() {
            handle(event, &mut all);
        }
        if stop.load(Ordering::Acquire) {
            stop_all(&mut all);
            return Err(Interrupted.into());
        }
        for s in all.iter_mut().filter(|s| s.exit.is_none()) {
            if let Some(status) = s.child.try_wait().context("wait for a process")? {
                s.exit = Some(status);
                s.exited_at = Some(Instant::now());
                if !status.success() && first_failure.is_none() {
                    first_failure = Some(Instant::now());
                }
            }
        }
        if all.iter().all(|s| s.exit.is_some()) {
            break;
        }
        if all
            .iter()
            .any(|s| s.exit.and_then(|e| e.code()) == Some(EXIT_NETWORK))
        {
            stop_all(&mut all);
            return Ok(LaunchResult::PortsTaken);
        }
        if first_failure.is_some_and(|t| t.elapsed() > GRACE) {
            for s in all.iter_mut().filter(|s| s.exit.is_none()) {
                s.killed_after_grace = true;
            }
            stop_all(&mut all);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let wall = started.elapsed();
    for r in readers {
        let _ = r.join();
    }
    while let Ok(event) = received.try_recv() {
        handle(event, &mut all);
    }

    let mut by_exit: Vec<(usize, &Supervised)> = all.iter().enumerate().collect();
    // Causes first: a process that stopped because it lost a peer is an effect of another's
    // failure, even when both exits were noticed in the same poll.
    by_exit.sort_by_key(|(_, s)| {
        let lost_a_peer = s.exit.and_then(|e| e.code()) == Some(EXIT_PEER_LOST);
        (lost_a_peer, s.exited_at)
    });
    let failures: Vec<String> = by_exit
        .into_iter()
        .filter_map(|(p, s)| {
            let Some(status) = s.exit else {
                return Some(format!(
                    "process {p} (pid {}) could not be waited for",
                    s.child.id()
                ));
            };
            if status.success() && s.share.is_some() {
                return None;
            }
            let why = match status.code() {
                _ if s.killed_after_grace => format!(
                    "did not stop within {} of the first failure: killed",
                    fmt_duration(GRACE)
                ),
                Some(EXIT_PEER_LOST) => "stopped: it lost the connection to another process".into(),
                Some(0) => "exited without a report".into(),
                _ => describe_exit(status),
            };
            Some(format!("process {p} (pid {}) {why}", s.child.id()))
        })
        .collect();
    if !failures.is_empty() {
        bail!("the distributed run failed: {}", failures.join("; "));
    }
    let shares = all
        .into_iter()
        .map(|s| s.share.expect("checked above"))
        .collect();
    Ok(LaunchResult::Finished(shares, wall))
}

/// SIGKILL every process still running, and wait for each (no zombie, no orphan).
fn stop_all(all: &mut [Supervised]) {
    for s in all.iter_mut().filter(|s| s.exit.is_none()) {
        let _ = s.child.kill();
        s.exit = s.child.wait().ok();
        s.exited_at = Some(Instant::now());
    }
}

// ---------------------------------------------------------------------------------------------
// The single-machine check, the report, the scaling table.
// ---------------------------------------------------------------------------------------------

/// The same count with rayon on one machine (fold/reduce over the same ranges): the baseline.
fn count_with_rayon(
    files: &[PathBuf],
    range_size: u64,
    threads: usize,
) -> Result<(Counts, Duration, Duration)> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("build the rayon pool")?;
    let opened = files
        .iter()
        .map(|p| std::fs::File::open(p).with_context(|| format!("open {}", p.display())))
        .collect::<Result<Vec<_>>>()?;
    let mut ranges = Vec::new();
    for (i, f) in opened.iter().enumerate() {
        let len = f
            .metadata()
            .with_context(|| format!("stat {}", files[i].display()))?
            .len();
        ranges.extend(
            ranges_of(len, range_size, 0, 1)
                .into_iter()
                .map(|(s, e)| (i, s, e)),
        );
    }
    let started = Instant::now();
    let cpu = shared::report::self_cpu_time();
    let counts = pool.install(|| {
        ranges
            .par_iter()
            .try_fold(Counts::default, |mut counts, &(i, start, end)| {
                count_words(&read_range(&opened[i], start, end)?, &mut counts);
                Ok::<_, std::io::Error>(counts)
            })
            .try_reduce(Counts::default, |a, b| Ok(merge(a, b)))
    });
    let counts = counts.context("read the input")?;
    let cpu = shared::report::self_cpu_time().saturating_sub(cpu);
    Ok((counts, started.elapsed(), cpu))
}

fn merge(mut a: Counts, mut b: Counts) -> Counts {
    if a.len() < b.len() {
        std::mem::swap(&mut a, &mut b);
    }
    for (word, n) in b {
        *a.entry(word).or_insert(0) += n;
    }
    a
}

/// The single-machine count in the shape of a merged one, to compare the two.
fn as_merged(counts: &Counts, k: usize) -> MergedCount {
    let all = counts
        .iter()
        .map(|(w, &n)| (w.as_bytes().to_vec(), n))
        .collect();
    MergedCount {
        words: counts.values().sum(),
        distinct: counts.len() as u64,
        checksum: counts.iter().fold(0, |acc, (w, &n)| {
            acc.wrapping_add(checksum(w.as_bytes(), n))
        }),
        top: top_k(all, k)
            .into_iter()
            .map(|(w, n)| (String::from_utf8_lossy(&w).into_owned(), n))
            .collect(),
    }
}

/// What `--json` prints for one run.
#[derive(Serialize)]
struct DistributedReport {
    files: Vec<PathBuf>,
    bytes: u64,
    processes: usize,
    workers: usize,
    shares: Vec<ProcessShare>,
    merged: MergedCount,
    rayon: MergedCount,
    /// The merged count equals rayon's: words, distinct words, checksum and top words.
    agrees: bool,
    dataflow_seconds: f64,
    throughput_mb_s: f64,
    rayon_threads: usize,
    rayon_seconds: f64,
    /// Dataflow time over rayon's on as many threads, minus one (0.25: 25% slower).
    overhead: f64,
    /// From starting the first process to the last one's exit.
    wall_seconds: f64,
}

fn run_local_cluster(args: &Args) -> Result<()> {
    let stop = shared::shutdown::stop_flag_on_ctrl_c()?;
    let files = input_files(args)?;
    let inputs = InputFiles::check(&files)?;
    let bytes = inputs.bytes();
    let (processes, workers) = (args.processes, args.workers);
    if !args.json {
        println!(
            "input: {} in {} file(s), first {}; {processes} process(es) × {workers} worker(s) on 127.0.0.1",
            fmt_bytes(bytes),
            files.len(),
            files[0].display()
        );
    }
    let (shares, wall) = launch(args, &files, processes, workers, &stop)?;
    let threads = processes * workers;
    let (counts, rayon_time, _) = count_with_rayon(&files, args.range_size as u64, threads)?;
    inputs.check_unchanged()?;
    let rayon = as_merged(&counts, args.top);
    let merged = shares
        .iter()
        .find_map(|s| s.merged.clone())
        .context("process 0 sent no merged count")?;
    let agrees = merged == rayon;
    let dataflow = shares.iter().map(|s| s.seconds).fold(0.0, f64::max);
    let report = DistributedReport {
        files,
        bytes,
        processes,
        workers,
        shares,
        merged,
        rayon,
        agrees,
        dataflow_seconds: dataflow,
        throughput_mb_s: bytes as f64 / 1e6 / dataflow.max(1e-9),
        rayon_threads: threads,
        rayon_seconds: rayon_time.as_secs_f64(),
        overhead: dataflow / rayon_time.as_secs_f64().max(1e-9) - 1.0,
        wall_seconds: wall.as_secs_f64(),
    };
    if args.json {
        print_json(&report);
    } else {
        println!(
            "{:>7} {:>8} {:>11} {:>13} {:>13} {:>13} {:>15} {:>10}",
            "process",
            "workers",
            "read",
            "words mapped",
            "records sent",
            "words owned",
            "distinct owned",
            "time"
        );
        for s in &report.shares {
            print_share_row(s);
        }
        print_merged(&report.merged);
        println!(
            "same counts as rayon on one machine (words, distinct, checksum, top words): {}",
            if agrees { "yes" } else { "NO" }
        );
        println!(
            "dataflow {} ({:.0} MB/s); rayon, {threads} thread(s): {}, so the exchange costs {:+.0}%; \
             start-up and connections: {}",
            fmt_duration(Duration::from_secs_f64(dataflow)),
            report.throughput_mb_s,
            fmt_duration(rayon_time),
            report.overhead * 100.0,
            fmt_duration(wall.saturating_sub(Duration::from_secs_f64(dataflow))),
        );
    }
    if !agrees {
        bail!("the distributed count differs from rayon's: this is a bug");
    }
    Ok(())
}

fn print_share_row(s: &ProcessShare) {
    let first = s.workers.iter().map(|w| w.worker).min().unwrap_or(0);
    let last = s.workers.iter().map(|w| w.worker).max().unwrap_or(0);
    println!(
        "{:>7} {:>8} {:>11} {:>13} {:>13} {:>13} {:>15} {:>10}",
        s.process,
        format!("{first}-{last}"),
        fmt_bytes(s.total(|w| w.bytes_read)),
        s.total(|w| w.words_mapped),
        s.total(|w| w.records_sent),
        s.total(|w| w.words_owned),
        s.total(|w| w.distinct_owned),
        fmt_duration(Duration::from_secs_f64(s.seconds)),
    );
}

fn print_share(s: &ProcessShare) {
    println!(
        "process {} of {}: read {}, mapped {} words, sent {} (word, count) records; owns {} \
         distinct words ({} occurrences); dataflow {}",
        s.process,
        s.processes,
        fmt_bytes(s.total(|w| w.bytes_read)),
        s.total(|w| w.words_mapped),
        s.total(|w| w.records_sent),
        s.total(|w| w.distinct_owned),
        s.total(|w| w.words_owned),
        fmt_duration(Duration::from_secs_f64(s.seconds)),
    );
}

fn print_merged(m: &MergedCount) {
    println!(
        "merged at worker 0: {} words, {} distinct, checksum {:016x}",
        m.words, m.distinct, m.checksum
    );
    println!("top {} words:", m.top.len());
    for (i, (w, n)) in m.top.iter().enumerate() {
        println!(
            "{:>4}. {:<20} {n:>12}",
            i + 1,
            corpus::printable_word(w.as_bytes(), PRINTED_WORD)
        );
    }
}

/// One row of the scaling table, for `--json`.
#[derive(Serialize)]
struct ScalingRow {
    processes: usize,
    workers: usize,
    dataflow_seconds: f64,
    throughput_mb_s: f64,
    wall_seconds: f64,
    agrees: bool,
}

/// "2 processes × 1 worker".
fn shape(processes: usize, workers: usize) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "{} × {}",
        plural(processes, "process"),
        plural(workers, "worker")
    )
    .replace("processs", "processes")
}

fn run_scaling(args: &Args) -> Result<()> {
    let stop = shared::shutdown::stop_flag_on_ctrl_c()?;
    let files = input_files(args)?;
    let inputs = InputFiles::check(&files)?;
    let bytes = inputs.bytes();
    let mb_s = |secs: f64| bytes as f64 / 1e6 / secs.max(1e-9);
    let (one_counts, rayon_one, one_cpu) = count_with_rayon(&files, args.range_size as u64, 1)?;
    let (_, rayon_two, two_cpu) = count_with_rayon(&files, args.range_size as u64, 2)?;
    let expected = as_merged(&one_counts, args.top);
    let mut rows = Vec::new();
    let mut table = SpeedupTable::new(format!(
        "word count, {}, timely dataflow vs rayon",
        fmt_bytes(bytes)
    ));
    for (processes, workers) in SCALING {
        let (shares, wall) = launch(args, &files, processes, workers, &stop)?;
        let dataflow = shares.iter().map(|s| s.seconds).fold(0.0, f64::max);
        let agrees = shares.iter().find_map(|s| s.merged.as_ref()) == Some(&expected);
        let cpu: f64 = shares.iter().map(|s| s.cpu_seconds).sum();
        table.push(
            Row::new(
                format!("timely {}", shape(processes, workers)),
                Duration::from_secs_f64(dataflow),
            )
            .cpu(Duration::from_secs_f64(cpu))
            .agrees(agrees)
            .note(format!(
                "{:.0} MB/s; start-up {}",
                mb_s(dataflow),
                fmt_duration(wall.saturating_sub(Duration::from_secs_f64(dataflow)))
            )),
        );
        rows.push(ScalingRow {
            processes,
            workers,
            dataflow_seconds: dataflow,
            throughput_mb_s: mb_s(dataflow),
            wall_seconds: wall.as_secs_f64(),
            agrees,
        });
    }
    for (threads, time, cpu) in [(1, rayon_one, one_cpu), (2, rayon_two, two_cpu)] {
        table.push(
            Row::new(format!("rayon, {threads} thread(s), one process"), time)
                .cpu(cpu)
                .agrees(true)
                .note(format!("{:.0} MB/s", mb_s(time.as_secs_f64()))),
        );
    }
    inputs.check_unchanged()?;
    let all_agree = rows.iter().all(|r| r.agrees);
    if args.json {
        print_json(&serde_json::json!({
            "files": files,
            "bytes": bytes,
            "rows": rows,
            "rayon_seconds": [rayon_one.as_secs_f64(), rayon_two.as_secs_f64()],
            "agrees": all_agree,
            "table": table.to_json(),
        }));
    } else {
        table.print();
        println!(
            "speedup is over timely 1 process × 1 worker; every row counted the same words as \
             rayon: {}",
            if all_agree { "yes" } else { "NO" }
        );
        let over_rayon =
            |r: &ScalingRow| r.dataflow_seconds / rayon_two.as_secs_f64().max(1e-9) - 1.0;
        let two_way: Vec<String> = rows
            .iter()
            .filter(|r| r.processes * r.workers == 2)
            .map(|r| {
                format!(
                    "{} {:+.0}%",
                    shape(r.processes, r.workers),
                    over_rayon(r) * 100.0
                )
            })
            .collect();
        println!(
            "against rayon on 2 threads (the overhead of the exchange): {}",
            two_way.join(", ")
        );
    }
    if !all_agree {
        bail!("a distributed count differs from rayon's: this is a bug");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(150))]

        /// Whatever the bytes, the range size and the number of workers, the ranges of all the
        /// workers hold every word exactly once.
        #[test]
        fn ranges_split_any_bytes_without_losing_or_doubling_a_word(
            text in prop::collection::vec(prop_oneof![
                6 => prop::sample::select(b"ab \n\t\x0b\x1c\xc3\xa9\xff".to_vec()),
                1 => any::<u8>(),
            ], 0..3000),
            size in 1u64..200,
            peers in 1usize..5,
        ) {
            let mut whole = Counts::default();
            count_words(&text, &mut whole);
            prop_assert_eq!(ranges::tests::counts_by_ranges(&text, size, peers), whole);
        }
    }

    #[test]
    fn hostfiles_list_host_port_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("hosts.txt");
        std::fs::write(&p, "# two hosts\n10.0.0.1:2101\n\n  10.0.0.2:2101  \n").expect("write");
        assert_eq!(
            read_hostfile(&p).expect("parses"),
            ["10.0.0.1:2101", "10.0.0.2:2101"]
        );
        std::fs::write(&p, "10.0.0.1\n").expect("write");
        assert!(read_hostfile(&p).is_err(), "a line without a port");
        std::fs::write(&p, "\n# nothing\n").expect("write");
        assert!(read_hostfile(&p).is_err(), "no host at all");
    }

    #[test]
    fn merging_reports_sums_the_shards_and_keeps_the_top_words() {
        let report = |worker, words, top: Vec<(&str, u64)>| WorkerReport {
            worker,
            bytes_read: 0,
            words_mapped: 0,
            records_sent: 0,
            words_owned: words,
            distinct_owned: top.len() as u64,
            checksum: words,
            top: top
                .into_iter()
                .map(|(w, n)| (w.as_bytes().to_vec(), n))
                .collect(),
            seconds: 0.0,
        };
        let m = merge_reports(
            &[
                report(0, 9, vec![("a", 5), ("c", 4)]),
                report(1, 7, vec![("b", 5), ("d", 2)]),
            ],
            3,
        );
        assert_eq!((m.words, m.distinct, m.checksum), (16, 4, 16));
        let top: Vec<(&str, u64)> = m.top.iter().map(|(w, n)| (w.as_str(), *n)).collect();
        assert_eq!(top, [("a", 5), ("b", 5), ("c", 4)]);
    }
}
