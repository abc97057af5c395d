//! Map-reduce word count: rayon `fold`/`reduce` and a shuffle (a partitioned reduce) over
//! word-aligned chunks, against one thread, all checked equal.
//!
//! Course section **8.4 Patterns de concurrence — Map-Reduce**. The Python recipe
//! (`python/wordcount.py`) is `multiprocessing.Pool` + `collections.Counter`: count chunks in
//! worker processes, pickle every `Counter` back, add them up. Here threads share the input.
//!
//! Crates: `rayon = "1.12"`, `rustc-hash = "2.1"`
//!
//! # Concepts
//! - **Map** counts one chunk into a private map; **reduce** merges maps. No locks: with `fold`
//!   every rayon job owns its map. One `Mutex<HashMap>` updated per word would serialise them.
//! - **Chunks end on word boundaries** (a word cut in two counts as two wrong words), and are
//!   many more than threads (≈ 4 MiB each) so that work stealing balances them.
//! - **The shuffle.** With a large vocabulary every job's map holds most words, and merging
//!   those maps costs a fifth or more of the counting. A shuffle routes each word to one of P
//!   shards by a hash during the map; each shard is then reduced on its own, in parallel, and
//!   never merged with another. Spark and Hadoop do this between their map and reduce stages;
//!   `map-reduce-distributed` does it across processes.
//! - **Streamed input** (`--input stream`): blocks read with `read`, the partial last word
//!   carried to the next block, words capped at 1 KiB: memory stays bounded whatever the file.
//!   The default reads each file into memory once (no `mmap`: see the README).
//! - **Words are bytes**, with Python's definition (`data.decode('utf-8', 'replace').lower()
//!   .split()`): ASCII words are never decoded, and the counts equal the Python recipe's.
//!
//! # Run
//! ```text
//! cargo run --release -p examples-patterns --bin map-reduce                 # 200 MB seeded corpus
//! cargo run --release -p examples-patterns --bin map-reduce -- --vocabulary 300000
//! cargo run --release -p examples-patterns --bin map-reduce -- --input stream --shards 64
//! cargo run --release -p examples-patterns --bin map-reduce -- /usr/share/dict/words README.md
//! cargo run --release -p examples-patterns --bin map-reduce -- --python --wc --repeat 3 --json
//! ```
//! The generated corpus is written once to the temp directory and reused (its path is printed).
//!
//! # What to observe
//! - Every row agrees with the sequential loop (`same result`), on any input.
//! - The `cpu` column is the price of parallelism: fold/reduce on 2 threads spends a fifth or
//!   more above its one-thread row (the merges), the shuffle less, and it has no serial tail.
//!   Which is faster depends on the vocabulary (`--vocabulary 300000`, or real text) and the
//!   cores: the README's *Measured* table has the figures.
//! - With `--python`, Rust is several times the recipe's throughput on the same file, for
//!   reasons visible in the code: no decoding of ASCII words, no per-word objects, no pickling.
//!
//! # Exercises
//! 1. Replace `fold`/`reduce` with one `Mutex<FxHashMap>` that every thread updates per word.
//!    Measure with 1 and 2 threads: what happens to the speedup, and why?
//! 2. Run `--shards 1`, `2`, `64`, `4096` with `--vocabulary 300000`. Why is one shard per
//!    thread not enough, and what do thousands of shards cost?
//! 3. In `Hashed::shard`, use the low bits of the hash (`hash % shards`). Why does every shard's
//!    map get slower? (Hint: which bits does the map itself use to pick a bucket?)
//! 4. Swap `FxHashMap` for `std::collections::HashMap` (SipHash). How much slower is it, and why
//!    is SipHash still the right default for a web server's maps?
//! 5. Count bigrams (pairs of consecutive words). What must change at chunk boundaries?
//! 6. Checked: write the shuffle yourself (`cargo run -p shared --bin exercises -- check patterns/04`).

// === Lesson: copy from here ===

/// What a word is, and the map step: counting the words of one chunk.
mod words {
    use rustc_hash::FxHashMap;

    /// Word → count. FxHash instead of SipHash: about twice as fast on short keys, and a word
    /// count's input does not choose its keys to collide (a web server's maps should keep SipHash).
    pub type Counts = FxHashMap<Word, u64>;

    /// The longest word kept. A longer run without a separator (a file of one repeated letter, a
    /// minified file) counts as one word, its first `MAX_WORD` bytes: that bounds the memory of a
    /// streamed count whatever the input, and differs from Python only on such runs.
    pub const MAX_WORD: usize = 1024;

    /// Longest word stored inline in the key itself.
    const INLINE: usize = 22;

    /// A word as a hash-map key. Short words (nearly all) live inside the key: no allocation to
    /// build one, and comparing two follows no pointer. A `Box<[u8]>` key would make every
    /// lookup chase a pointer to a random heap address, the main cost once the table outgrows
    /// the CPU caches. An inline word is zero-padded, so the derived `Eq`/`Hash` are byte equality.
    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    pub enum Word {
        Inline { len: u8, bytes: [u8; INLINE] },
        Heap(Box<[u8]>),
    }

    impl Word {
        pub fn new(word: &[u8]) -> Word {
            Self::mapped(word, |b| b)
        }

        /// The word with `f` applied to each byte (ASCII lower-casing), in one pass.
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

    /// Python's `str.split()` separators that are ASCII: `\t \n \x0b \x0c \r`, `\x1c`..`\x1f`
    /// and space (`u8::is_ascii_whitespace` misses `\x0b` and `\x1c`..`\x1f`: counts would
    /// differ). Non-ASCII ones (U+00A0, U+2003, ...) are handled by the slow path below.
    const IS_SEP: [bool; 256] = {
        let mut t = [false; 256];
        let seps = [
            b'\t', b'\n', 0x0b, 0x0c, b'\r', 0x1c, 0x1d, 0x1e, 0x1f, b' ',
        ];
        let mut i = 0;
        while i < seps.len() {
            t[seps[i] as usize] = true;
            i += 1;
        }
        t
    };

    pub fn is_sep(b: u8) -> bool {
        IS_SEP[usize::from(b)]
    }

    /// Calls `emit` with every word of `text`, lower-cased, the way Python splits it.
    pub fn for_each_word(text: &[u8], mut emit: impl FnMut(Word)) {
        for run in text.split(|&b| is_sep(b)).filter(|w| !w.is_empty()) {
            let run = &run[..run.len().min(MAX_WORD)];
            if run.is_ascii() {
                // Fast path (~99% of words): ASCII lower-casing is a byte map, done while
                // building the key; an inline key costs no allocation.
                emit(Word::mapped(run, |b| b.to_ascii_lowercase()));
            } else {
                // Slow path: decode (invalid bytes become U+FFFD, like Python's 'replace'),
                // Unicode lower-case ("Été" → "été"), split again on Unicode spaces (NBSP, ...).
                let decoded = String::from_utf8_lossy(run).to_lowercase();
                for w in decoded.split(char::is_whitespace).filter(|w| !w.is_empty()) {
                    emit(Word::new(w.as_bytes()));
                }
            }
        }
    }

    /// The map step: count the words of `text` into `counts`.
    pub fn count_words(text: &[u8], counts: &mut Counts) {
        for_each_word(text, |word| *counts.entry(word).or_insert(0) += 1);
    }

    /// The reduce step: merge two maps, the smaller into the larger (fewer inserts).
    pub fn merge(mut a: Counts, mut b: Counts) -> Counts {
        if a.len() < b.len() {
            std::mem::swap(&mut a, &mut b);
        }
        for (word, n) in b {
            *a.entry(word).or_insert(0) += n;
        }
        a
    }

    /// The `k` most frequent words, most frequent first, ties by word (a deterministic output).
    pub fn top_k<'a>(
        counts: impl Iterator<Item = (&'a Word, u64)>,
        k: usize,
    ) -> Vec<(&'a Word, u64)> {
        let mut all: Vec<(&Word, u64)> = counts.collect();
        let order = |a: &(&Word, u64), b: &(&Word, u64)| {
            b.1.cmp(&a.1)
                .then_with(|| a.0.as_bytes().cmp(b.0.as_bytes()))
        };
        if k < all.len() {
            // Partition around the k-th first: sorting 300,000 words to print 10 is waste.
            all.select_nth_unstable_by(k, order);
            all.truncate(k);
        }
        all.sort_unstable_by(order);
        all
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn count(text: &[u8]) -> Counts {
            let mut c = Counts::default();
            count_words(text, &mut c);
            c
        }

        fn get(c: &Counts, w: &str) -> u64 {
            c.get(&Word::new(w.as_bytes())).copied().unwrap_or(0)
        }

        #[test]
        fn python_word_definition() {
            let c = count(b"The the THE\tthe\x0bthe\x1cthe\r\nthe.");
            assert_eq!(get(&c, "the"), 6);
            assert_eq!(get(&c, "the."), 1);
            // Unicode lower-case and Unicode separators (NBSP, EM SPACE), like str.split().
            let c = count("Été été\u{a0}ÉTÉ\u{2003}x".as_bytes());
            assert_eq!(get(&c, "été"), 3);
            assert_eq!(get(&c, "x"), 1);
            // Invalid UTF-8 becomes U+FFFD, as with decode('utf-8', 'replace').
            let c = count(b"caf\xe9 caf\xe9 ok");
            assert_eq!(get(&c, "caf\u{fffd}"), 2);
            assert_eq!(c.len(), 2);
            // Truncated and stray bytes: the same replacements as Python (checked with python3).
            let c = count(b"a\xff\xfeb c\xc3 \xc3\xa9t\xc3\xa9 \xe2\x82 end");
            let mut words: Vec<String> = c
                .keys()
                .map(|w| String::from_utf8(w.as_bytes().to_vec()).expect("utf-8"))
                .collect();
            words.sort();
            assert_eq!(
                words,
                ["a\u{fffd}\u{fffd}b", "c\u{fffd}", "end", "été", "\u{fffd}"]
            );
        }

        #[test]
        fn inline_and_heap_keys_count_alike() {
            let (short, long) = ("k".repeat(INLINE), "l".repeat(INLINE + 1));
            let text = format!(
                "{short} {} {long} {}",
                short.to_uppercase(),
                long.to_uppercase()
            );
            let c = count(text.as_bytes());
            assert_eq!((get(&c, &short), get(&c, &long), c.len()), (2, 2, 2));
            assert!(matches!(Word::new(short.as_bytes()), Word::Inline { .. }));
            assert!(matches!(Word::new(long.as_bytes()), Word::Heap(_)));
        }

        #[test]
        fn a_word_longer_than_the_cap_counts_once_by_its_prefix() {
            let long = "y".repeat(MAX_WORD + 500);
            let c = count(format!("{long} {long} x").as_bytes());
            assert_eq!(c.len(), 2);
            assert_eq!(get(&c, &"y".repeat(MAX_WORD)), 2);
        }

        #[test]
        fn merge_adds_counts_and_top_k_breaks_ties_by_word() {
            let m = merge(count(b"x y y"), count(b"y z"));
            assert_eq!((get(&m, "x"), get(&m, "y"), get(&m, "z")), (1, 3, 1));
            let c = count(b"b a c a b d");
            let top: Vec<(&[u8], u64)> = top_k(c.iter().map(|(w, &n)| (w, n)), 3)
                .into_iter()
                .map(|(w, n)| (w.as_bytes(), n))
                .collect();
            assert_eq!(top, [(&b"a"[..], 2), (b"b", 2), (b"c", 1)]);
            assert_eq!(top_k(c.iter().map(|(w, &n)| (w, n)), 0), []);
            assert_eq!(top_k(c.iter().map(|(w, &n)| (w, n)), 99).len(), 4);
        }
    }
}

/// Cutting the input into chunks that end on word boundaries: slices of bytes already in
/// memory, or blocks read from a file with bounded memory.
mod chunks {
    use super::words::{MAX_WORD, is_sep};
    use std::io::{self, Read};

    /// Splits `data` into chunks of about `target` bytes, each extended to the end of its last
    /// word so that no word is cut in two. The chunks cover `data` exactly, in order.
    pub fn split_on_words(data: &[u8], target: usize) -> Vec<&[u8]> {
        let target = target.max(1);
        let mut chunks = Vec::with_capacity(data.len() / target + 1);
        let mut start = 0;
        while start < data.len() {
            let mut end = (start + target).min(data.len());
            // Walk forward to a separator. One huge word makes one big chunk: correct, if slow.
            while end < data.len() && !is_sep(data[end]) {
                end += 1;
            }
            chunks.push(&data[start..end]);
            start = end;
        }
        chunks
    }

    /// A reader cut into blocks of about `block` bytes, each ending on a word boundary. Memory
    /// stays bounded: one block, plus the start of a word cut by the block's end (at most
    /// `MAX_WORD` bytes are kept of a longer word, and the rest of it is skipped).
    pub struct Blocks<R> {
        reader: R,
        block: usize,
        /// The partial word at the end of the previous read, carried into the next block.
        carry: Vec<u8>,
        /// The carried word reached `MAX_WORD`: drop its remaining bytes up to a separator.
        skipping: bool,
        done: bool,
    }

    pub fn blocks<R: Read>(reader: R, block: usize) -> Blocks<R> {
        Blocks {
            reader,
            block: block.max(1),
            carry: Vec::new(),
            skipping: false,
            done: false,
        }
    }

    impl<R: Read> Blocks<R> {
        fn carry_over(&mut self, partial_word: Vec<u8>) {
            self.carry = partial_word;
            if self.carry.len() > MAX_WORD {
                self.carry.truncate(MAX_WORD);
                self.skipping = true;
            }
        }
    }

    impl<R: Read> Iterator for Blocks<R> {
        type Item = io::Result<Vec<u8>>;

        fn next(&mut self) -> Option<Self::Item> {
            loop {
                let mut buf = std::mem::take(&mut self.carry);
                if self.done {
                    // EOF: whatever is left is the last word.
                    return (!buf.is_empty()).then_some(Ok(buf));
                }
                let old_len = buf.len();
                // `take(..).read_to_end` reads up to `block` bytes, retrying short reads and EINTR.
                match (&mut self.reader)
                    .take(self.block as u64)
                    .read_to_end(&mut buf)
                {
                    Ok(0) => self.done = true,
                    Ok(_) => {}
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                if self.skipping {
                    match buf[old_len..].iter().position(|&b| is_sep(b)) {
                        Some(end) => {
                            buf.drain(old_len..old_len + end);
                            self.skipping = false;
                        }
                        None => buf.truncate(old_len),
                    }
                }
                // Only the new bytes can hold a separator (the carry never does).
                match buf[old_len..].iter().rposition(|&b| is_sep(b)) {
                    Some(pos) if !self.done => {
                        let partial_word = buf.split_off(old_len + pos + 1);
                        self.carry_over(partial_word);
                        return Some(Ok(buf));
                    }
                    // No separator yet (a word longer than a block), or EOF: keep reading.
                    _ => self.carry_over(buf),
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// A reader that returns at most `step` bytes per call, as pipes and sockets do.
        struct Trickle<'a> {
            data: &'a [u8],
            step: usize,
        }

        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.step.min(buf.len()).min(self.data.len());
                buf[..n].copy_from_slice(&self.data[..n]);
                self.data = &self.data[n..];
                Ok(n)
            }
        }

        #[test]
        fn slices_cover_the_input_and_end_on_separators() {
            let text = b"alpha beta  gamma\ndelta";
            for target in 1..30 {
                let chunks = split_on_words(text, target);
                assert_eq!(chunks.concat(), text.to_vec());
                let mut at = 0;
                for c in &chunks[..chunks.len() - 1] {
                    at += c.len();
                    assert!(is_sep(text[at]), "chunk ends inside a word");
                }
            }
        }

        #[test]
        fn blocks_cover_the_input_and_end_on_separators() {
            let text = b"one two  three\nfour five six seven";
            for (block, step) in [(1, 1), (3, 2), (5, 7), (64, 3)] {
                let reader = Trickle { data: text, step };
                let got: Vec<Vec<u8>> = blocks(reader, block).map(|b| b.expect("read")).collect();
                assert_eq!(got.concat(), text.to_vec(), "block {block}, step {step}");
                for b in &got[..got.len() - 1] {
                    assert!(is_sep(*b.last().expect("non-empty")), "{b:?}");
                }
            }
        }

        #[test]
        fn blocks_keep_the_start_of_an_over_long_word_and_stay_small() {
            let mut text = b"a ".to_vec();
            text.extend(std::iter::repeat_n(b'z', 10 * MAX_WORD + 3));
            text.extend_from_slice(b" b");
            let got: Vec<Vec<u8>> = blocks(&text[..], 100).map(|b| b.expect("read")).collect();
            assert!(
                got.iter().all(|b| b.len() <= MAX_WORD + 100 + 1),
                "a block grew"
            );
            let mut expected = b"a ".to_vec();
            expected.extend(std::iter::repeat_n(b'z', MAX_WORD));
            expected.extend_from_slice(b" b");
            assert_eq!(got.concat(), expected);
        }
    }
}

/// Map-reduce with rayon: `fold` counts into one map per job, `reduce` merges them pairwise.
mod fold_reduce {
    use super::words::{Counts, count_words, merge};
    use rayon::prelude::*;

    /// One thread, one map: the baseline every parallel version must agree with.
    pub fn count_sequential<C: AsRef<[u8]>>(chunks: impl IntoIterator<Item = C>) -> Counts {
        let mut counts = Counts::default();
        for chunk in chunks {
            count_words(chunk.as_ref(), &mut counts);
        }
        counts
    }

    /// `fold` gives every rayon job its own map (a job counts several consecutive chunks);
    /// `reduce` merges those maps two by two, in parallel, down to one. With a large vocabulary
    /// the last merges are big and only one or two threads can do them: that tail is what the
    /// shuffle removes.
    pub fn count_parallel<C: AsRef<[u8]> + Send>(
        chunks: impl ParallelIterator<Item = C>,
    ) -> Counts {
        chunks
            .fold(Counts::default, |mut counts, chunk| {
                count_words(chunk.as_ref(), &mut counts);
                counts
            })
            .reduce(Counts::default, merge)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn parallel_equals_sequential_for_any_chunking() {
            let text = "déjà vu, Déjà VU; the THE the\u{a0}x caf\u{e9} ".repeat(200);
            let seq = count_sequential([text.as_bytes()]);
            for chunk in [1, 2, 7, 64, 1 << 20] {
                let chunks = super::super::chunks::split_on_words(text.as_bytes(), chunk);
                assert_eq!(count_parallel(chunks.into_par_iter()), seq, "chunk {chunk}");
            }
        }
    }
}

/// The shuffle: route each word to one of P shards by its hash during the map, then reduce
/// every shard on its own, into a map that only one task ever touches. No merge of big maps.
mod shuffle {
    use super::words::{Counts, Word, for_each_word, top_k};
    use rayon::prelude::*;
    use rustc_hash::FxBuildHasher;
    use std::collections::HashMap;
    use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};

    /// A word and its hash, computed once: the shard comes from the hash's top half, and the
    /// shuffle's maps use the hash as it is instead of hashing the word again (and again when
    /// a piece is added into a shard's map).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Hashed {
        hash: u64,
        word: Word,
    }

    impl Hashed {
        pub fn new(word: Word) -> Hashed {
            Hashed {
                hash: FxBuildHasher.hash_one(&word),
                word,
            }
        }

        /// Which of `shards` shards the word belongs to. The maps pick a bucket with the low
        /// bits of the hash and a tag with the top 7: the shard comes from the bits in between,
        /// or all the words of a shard would crowd into the same buckets.
        pub fn shard(&self, shards: usize) -> usize {
            ((self.hash >> 32) % shards as u64) as usize
        }
    }

    impl Hash for Hashed {
        fn hash<H: Hasher>(&self, state: &mut H) {
            state.write_u64(self.hash);
        }
    }

    /// A hasher that passes the precomputed hash through.
    #[derive(Default)]
    pub struct PassThrough(u64);

    impl Hasher for PassThrough {
        fn write(&mut self, bytes: &[u8]) {
            for &b in bytes {
                self.0 = self.0.rotate_left(8) ^ u64::from(b); // not used by `Hashed`
            }
        }
        fn write_u64(&mut self, hash: u64) {
            self.0 = hash;
        }
        fn finish(&self) -> u64 {
            self.0
        }
    }

    /// One shard's counts.
    pub type ShardMap = HashMap<Hashed, u64, BuildHasherDefault<PassThrough>>;

    /// Word counts split by a hash of the word: every word lives in exactly one shard.
    pub struct ShardedCounts {
        shards: Vec<ShardMap>,
    }

    /// Counts `chunks` in rounds of a few chunks per thread, each round in two parallel steps:
    /// - **map**, one task per chunk: count its words into one small map per shard (a combiner:
    ///   each map holds a few thousand words, so it stays in the CPU's cache);
    /// - **reduce**, one task per shard: add shard s of every chunk into shard s's own map.
    ///
    /// Moving the pieces from the first step to the second is the shuffle (across machines, it
    /// is the network: see `map-reduce-distributed`). Every word is added to its final map once
    /// per chunk, by the one task that owns its shard, instead of climbing a tree of merges of
    /// maps that each hold most of the vocabulary. Rounds keep memory bounded on a stream.
    pub fn count_shuffled<C: AsRef<[u8]> + Sync>(
        mut chunks: impl Iterator<Item = C>,
        shards: usize,
    ) -> ShardedCounts {
        let shards = shards.max(1);
        let round = 4 * rayon::current_num_threads();
        let mut owned: Vec<ShardMap> = vec![ShardMap::default(); shards];
        loop {
            let batch: Vec<C> = chunks.by_ref().take(round).collect();
            if batch.is_empty() {
                return ShardedCounts { shards: owned };
            }
            let per_chunk: Vec<Vec<ShardMap>> = batch
                .par_iter()
                .map(|chunk| {
                    let mut maps = vec![ShardMap::default(); shards];
                    for_each_word(chunk.as_ref(), |word| {
                        let key = Hashed::new(word);
                        *maps[key.shard(shards)].entry(key).or_insert(0) += 1;
                    });
                    maps
                })
                .collect();
            let mut columns: Vec<Vec<ShardMap>> = (0..shards).map(|_| Vec::new()).collect();
            for maps in per_chunk {
                for (column, map) in columns.iter_mut().zip(maps) {
                    column.push(map);
                }
            }
            owned.par_iter_mut().zip(columns).for_each(|(map, pieces)| {
                for (key, n) in pieces.into_iter().flatten() {
                    *map.entry(key).or_insert(0) += n;
                }
            });
        }
    }

    impl ShardedCounts {
        pub fn get(&self, word: &Word) -> Option<u64> {
            let key = Hashed::new(word.clone());
            self.shards[key.shard(self.shards.len())].get(&key).copied()
        }

        /// Distinct words in all shards (each is in one shard only: a sum, no de-duplication).
        pub fn distinct(&self) -> usize {
            self.shards.iter().map(ShardMap::len).sum()
        }

        /// Every occurrence of every word.
        pub fn words(&self) -> u64 {
            self.shards.iter().flat_map(|s| s.values()).sum()
        }

        /// Distinct words per shard: how evenly the hash spread the work.
        pub fn shard_sizes(&self) -> Vec<usize> {
            self.shards.iter().map(ShardMap::len).collect()
        }

        /// The `k` most frequent words: the top `k` of each shard, then the top `k` of those.
        /// Exact, because a word's whole count is in one shard.
        pub fn top(&self, k: usize) -> Vec<(&Word, u64)> {
            let candidates: Vec<(&Word, u64)> = self
                .shards
                .par_iter()
                .flat_map_iter(|s| top_k(s.iter().map(|(key, &n)| (&key.word, n)), k))
                .collect();
            top_k(candidates.into_iter(), k)
        }

        /// The same counts as `counts` (one map, from another method)?
        pub fn same_as(&self, counts: &Counts) -> bool {
            self.distinct() == counts.len()
                && counts.iter().all(|(word, &n)| self.get(word) == Some(n))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::super::{chunks::split_on_words, fold_reduce::count_sequential};
        use super::*;

        #[test]
        fn every_shard_count_equals_the_sequential_count() {
            let text = "b a c a b d é É x\u{a0}y ".repeat(300);
            let seq = count_sequential([text.as_bytes()]);
            for shards in [1, 2, 3, 16] {
                let chunks = split_on_words(text.as_bytes(), 13);
                let sharded = count_shuffled(chunks.into_iter(), shards);
                assert!(sharded.same_as(&seq), "{shards} shards");
                assert_eq!(sharded.words(), seq.values().sum::<u64>());
                assert_eq!(sharded.shard_sizes().len(), shards);
                let top: Vec<(&[u8], u64)> = sharded
                    .top(2)
                    .into_iter()
                    .map(|(w, n)| (w.as_bytes(), n))
                    .collect();
                assert_eq!(top, [(&b"a"[..], 600), (b"b", 600)]);
            }
        }

        #[test]
        fn a_word_lives_in_one_shard() {
            let text = "one two three four five six seven eight nine ten ".repeat(50);
            let sharded = count_shuffled(split_on_words(text.as_bytes(), 7).into_iter(), 4);
            let six = Hashed::new(Word::new(b"six"));
            let homes = sharded.shards.iter().filter(|s| s.contains_key(&six));
            assert_eq!(homes.count(), 1);
        }
    }
}

// === Harness: not part of the lesson ===

use anyhow::{Context, Result, bail};
use chunks::{blocks, split_on_words};
use clap::{Parser, ValueEnum};
use fold_reduce::{count_parallel, count_sequential};
use rayon::prelude::*;
use serde::Serialize;
use shared::cli::{u32_in, usize_in};
use shared::corpus::{self, InputFiles};
use shared::report::{Row, SpeedupTable, Timed, fmt_bytes, fmt_duration, print_json, timed};
use shuffle::{ShardedCounts, count_shuffled};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use words::{Counts, Word, top_k};

/// Default corpus size: big enough that counting takes a noticeable fraction of a second.
const DEFAULT_SIZE: &str = "200MB";
/// Target chunk size: many more chunks than cores (so stealing balances), few enough that the
/// per-chunk map and its merge stay cheap.
const DEFAULT_CHUNK: &str = "4MiB";
/// Shards of the shuffle: enough that each shard's map stays small (cache-sized) and that the
/// reduce step has many more tasks than threads.
const DEFAULT_SHARDS: usize = 64;
/// The course's recipe, next to this crate.
const PYTHON_RECIPE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/wordcount.py");
/// Longest word printed in the tables (the JSON has the word as counted).
const PRINTED_WORD: usize = 40;

/// Word count with rayon fold/reduce and a shuffle vs a sequential loop, checked equal.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Files to count. Without files, a seeded corpus of `--size` bytes is generated.
    files: Vec<PathBuf>,
    /// Size of the generated corpus (e.g. 200MB, 20MB, 512KiB; at most 64GB).
    #[arg(long, default_value = DEFAULT_SIZE, value_parser = corpus::size_in(1, 64_000_000_000))]
    size: usize,
    /// Seed of the generated corpus.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Distinct words the generated corpus draws from (Zipf): 50000 by default, 300000 is
    /// realistic for a large collection of text.
    #[arg(long, default_value_t = corpus::VOCABULARY,
          value_parser = usize_in(1_000, corpus::MAX_VOCABULARY))]
    vocabulary: usize,
    /// Worker threads for the parallel runs (default: available cores).
    #[arg(long, value_parser = usize_in(1, 1024))]
    threads: Option<usize>,
    /// Shards of the shuffle.
    #[arg(long, value_parser = usize_in(1, 65_536))]
    shards: Option<usize>,
    /// How the input is read: whole files into memory, or blocks with `read`.
    #[arg(long, value_enum, default_value_t = InputMode::Read)]
    input: InputMode,
    /// Target chunk size (a chunk is extended to the end of its last word), at most 1GiB.
    #[arg(long, default_value = DEFAULT_CHUNK, value_parser = corpus::size_in(1, 1 << 30))]
    chunk_size: usize,
    /// How many of the most frequent words to print.
    #[arg(long, default_value_t = 10, value_parser = usize_in(0, 1_000_000))]
    top: usize,
    /// Run each approach this many times and keep the fastest (less noise on a busy machine).
    #[arg(long, default_value_t = 1, value_parser = u32_in(1, 100))]
    repeat: u32,
    /// Also run the course's Python recipe (python/wordcount.py) on the same input;
    /// `--python=other.py` runs another script with the same interface.
    #[arg(long, num_args = 0..=1, default_missing_value = PYTHON_RECIPE, value_parser = python_script)]
    python: Option<PathBuf>,
    /// Also time `wc -w` (C locale) on the same files: the floor of a one-pass word count.
    #[arg(long)]
    wc: bool,
    /// Print the figures as one JSON object instead of tables.
    #[arg(long)]
    json: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum InputMode {
    /// Read each file into memory once, then split it into chunks (`mmap` is an alias: earlier
    /// versions mapped the file, see the README for why they no longer do).
    #[value(alias = "mmap")]
    Read,
    /// Read blocks with `read(2)` and hand them to rayon as they arrive: bounded memory.
    Stream,
}

fn python_script(s: &str) -> Result<PathBuf, String> {
    if s.ends_with(".py") {
        Ok(PathBuf::from(s))
    } else {
        Err(format!(
            "{s:?} is not a Python script (*.py); the files to count go before --python"
        ))
    }
}

/// The memory the kernel says is available (`MemAvailable`), if it says.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Where the chunks come from: whole files in memory, or blocks streamed from the files.
enum Source {
    InMemory(Vec<Vec<u8>>),
    Streamed(Vec<PathBuf>),
}

impl Source {
    fn sequential(&self, block: usize) -> Result<Counts> {
        match self {
            Source::InMemory(data) => Ok(count_sequential(data)),
            Source::Streamed(paths) => streamed(paths, block, |b| count_sequential(b)),
        }
    }

    fn fold_reduce(&self, chunk: usize) -> Result<Counts> {
        match self {
            Source::InMemory(data) => Ok(count_parallel(in_chunks(data, chunk).into_par_iter())),
            Source::Streamed(paths) => streamed(paths, chunk, |b| count_parallel(b.par_bridge())),
        }
    }

    fn shuffle(&self, chunk: usize, shards: usize) -> Result<ShardedCounts> {
        match self {
            Source::InMemory(data) => {
                Ok(count_shuffled(in_chunks(data, chunk).into_iter(), shards))
            }
            Source::Streamed(paths) => streamed(paths, chunk, |b| count_shuffled(b, shards)),
        }
    }
}

fn in_chunks(data: &[Vec<u8>], chunk: usize) -> Vec<&[u8]> {
    data.iter().flat_map(|d| split_on_words(d, chunk)).collect()
}

/// Runs `count` on the blocks of every file in turn (one stream), and returns the first I/O
/// error, naming its file, instead of a count of part of the input.
fn streamed<T>(
    paths: &[PathBuf],
    block: usize,
    count: impl FnOnce(Box<dyn Iterator<Item = Vec<u8>> + Send + '_>) -> T,
) -> Result<T> {
    let error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let all = paths.iter().flat_map(|path| {
        let opened = File::open(path).map(|f| blocks(f, block));
        let (file_blocks, open_error) = match opened {
            Ok(b) => (Some(b), None),
            Err(e) => (None, Some(Err(e))),
        };
        open_error
            .into_iter()
            .chain(file_blocks.into_iter().flatten())
            .map(move |r| r.with_context(|| format!("read {}", path.display())))
    });
    let ok_blocks = all.map_while(|r| match r {
        Ok(b) => Some(b),
        Err(e) => {
            *error.lock().expect("no panic while holding this lock") = Some(e);
            None
        }
    });
    let value = count(Box::new(ok_blocks));
    match error
        .into_inner()
        .expect("no panic while holding this lock")
    {
        Some(e) => Err(e),
        None => Ok(value),
    }
}

/// What the Python recipe prints: `{"words":..,"distinct":..,"top":[w,n],"seconds":..}`.
#[derive(serde::Deserialize, Serialize, Debug)]
struct PythonPeer {
    words: u64,
    distinct: u64,
    top: (String, u64),
    workers: usize,
    seconds: f64,
}

fn run_python(script: &Path, files: &[PathBuf], workers: usize) -> Result<PythonPeer> {
    let out = std::process::Command::new("python3")
        .arg(script)
        .args(files)
        .args(["--workers", &workers.to_string()])
        .output()
        .with_context(|| format!("run python3 {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "python3 {} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).context("parse the Python recipe's JSON line")
}

/// `wc -w` on the same files, in the C locale (bytes, no decoding: its fastest mode).
#[derive(Serialize, Debug)]
struct WcRun {
    words: u64,
    seconds: f64,
}

fn run_wc(files: &[PathBuf]) -> Result<WcRun> {
    let t0 = Instant::now();
    let out = std::process::Command::new("wc")
        .arg("-w")
        .args(files)
        .env("LC_ALL", "C")
        .output()
        .context("run wc -w")?;
    let seconds = t0.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("wc -w failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    let words = last
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("parse wc's output {last:?}"))?;
    Ok(WcRun { words, seconds })
}

fn top_for_json(top: &[(&Word, u64)]) -> Vec<(String, u64)> {
    top.iter()
        .map(|(w, n)| (String::from_utf8_lossy(w.as_bytes()).into_owned(), *n))
        .collect()
}

/// Everything `--json` prints (the field names are what scripts and tests read).
#[derive(Serialize)]
struct WordCountReport {
    files: Vec<PathBuf>,
    input: InputMode,
    bytes: u64,
    /// Seconds to read the files into memory (`--input read`), outside the timed rows.
    read_seconds: Option<f64>,
    threads: usize,
    chunk_size: usize,
    shards: usize,
    words: u64,
    distinct: usize,
    /// Distinct words in the smallest and the largest shard: how evenly the hash spread them.
    shard_sizes: Option<(usize, usize)>,
    agrees: bool,
    /// fold/reduce on all threads, over the sequential loop.
    speedup: f64,
    /// The shuffle on all threads, over the sequential loop and over itself on one thread.
    shuffle_speedup: f64,
    shuffle_speedup_over_one_thread: f64,
    fold_reduce_speedup_over_one_thread: f64,
    /// MB/s of fold/reduce on all threads (and of the shuffle).
    throughput_mb_s: f64,
    shuffle_throughput_mb_s: f64,
    top: Vec<(String, u64)>,
    table: serde_json::Value,
    python: Option<PythonPeer>,
    python_ratio: Option<f64>,
    wc: Option<WcRun>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let shards = args.shards.unwrap_or(DEFAULT_SHARDS);

    let files = if args.files.is_empty() {
        vec![corpus::cached_corpus(
            args.size,
            args.seed,
            args.vocabulary,
        )?]
    } else {
        args.files.clone()
    };
    // Missing, binary or not-a-file inputs fail the run here, named, before any work.
    let inputs = InputFiles::check(&files)?;
    let bytes = inputs.bytes();
    if args.input == InputMode::Read
        && let Some(avail) = available_memory()
        && bytes > avail / 2
    {
        bail!(
            "the input ({}) is more than half of the available memory ({}): use --input stream",
            fmt_bytes(bytes),
            fmt_bytes(avail)
        );
    }
    if !args.json {
        println!(
            "input: {} in {} file(s), first {} ({:?} mode), {threads} thread(s), {shards} shards",
            fmt_bytes(bytes),
            files.len(),
            files[0].display(),
            args.input
        );
    }

    // Separate pools so "1 thread" really is one thread and "N threads" is exactly N.
    let pool = |n: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("count-{i}"))
            .build()
            .context("build the rayon pool")
    };
    let (one, many) = (pool(1)?, pool(threads)?);

    let (source, read_seconds) = match args.input {
        InputMode::Read => {
            let t0 = Instant::now();
            let data = files
                .iter()
                .map(|p| std::fs::read(p).with_context(|| format!("read {}", p.display())))
                .collect::<Result<Vec<_>>>()?;
            let read = t0.elapsed().as_secs_f64();
            inputs.check_unchanged()?;
            (Source::InMemory(data), Some(read))
        }
        InputMode::Stream => (Source::Streamed(files.clone()), None),
    };
    let (n, chunk) = (args.repeat, args.chunk_size);
    // After every pass, before judging agreement: a file that changed between two passes makes
    // them differ, and counts of a file that changed mix two versions of it. Stop at once.
    let unchanged = || inputs.check_unchanged();
    let sequential = best_of(n, || source.sequential(chunk), unchanged)?;
    let fold_one = one.install(|| best_of(n, || source.fold_reduce(chunk), unchanged))?;
    let fold_many = many.install(|| best_of(n, || source.fold_reduce(chunk), unchanged))?;
    let shuffle_one = one.install(|| best_of(n, || source.shuffle(chunk, shards), unchanged))?;
    let shuffle_many = many.install(|| best_of(n, || source.shuffle(chunk, shards), unchanged))?;

    let counts = &sequential.value;
    let agree = [
        fold_one.value == *counts,
        fold_many.value == *counts,
        shuffle_one.value.same_as(counts),
        shuffle_many.value.same_as(counts)
            && shuffle_many.value.words() == counts.values().sum::<u64>(),
    ];
    let ideal = sequential.wall / u32::try_from(threads).unwrap_or(u32::MAX);
    let mut table = SpeedupTable::new(format!("word count, {}", fmt_bytes(bytes)));
    table.push(Row::new("sequential loop", sequential.wall).cpu(sequential.cpu));
    for (name, wall, cpu, ok, ideal) in [
        (
            "fold/reduce, 1 thread".to_string(),
            fold_one.wall,
            fold_one.cpu,
            agree[0],
            None,
        ),
        (
            format!("fold/reduce, {}", threads_label(threads)),
            fold_many.wall,
            fold_many.cpu,
            agree[1],
            Some(ideal),
        ),
        (
            "shuffle, 1 thread".to_string(),
            shuffle_one.wall,
            shuffle_one.cpu,
            agree[2],
            None,
        ),
        (
            format!("shuffle, {}", threads_label(threads)),
            shuffle_many.wall,
            shuffle_many.cpu,
            agree[3],
            Some(ideal),
        ),
    ] {
        let row = Row::new(name, wall).cpu(cpu).agrees(ok);
        table.push(match ideal {
            Some(i) => row.ideal(i),
            None => row,
        });
    }

    let words: u64 = counts.values().sum();
    // The top words from the shards (exact: see `ShardedCounts::top`), checked against the map.
    let top = shuffle_many.value.top(args.top);
    debug_assert_eq!(top, top_k(counts.iter().map(|(w, &n)| (w, n)), args.top));
    let sizes = shuffle_many.value.shard_sizes();
    let (smallest, largest) = (sizes.iter().min(), sizes.iter().max());
    let secs = |d: Duration| d.as_secs_f64().max(1e-9);
    let mb_s = |d: Duration| bytes as f64 / 1e6 / secs(d);

    let python = match &args.python {
        Some(script) => Some(run_python(script, &files, threads)?),
        None => None,
    };
    let python_ratio = python.as_ref().map(|p| p.seconds / secs(shuffle_many.wall));
    // The recipe uses the same word definition: a different count is a bug on one side, and a
    // run that prints it must not exit 0.
    let python_agrees = python
        .as_ref()
        .is_none_or(|p| p.words == words && p.distinct == counts.len() as u64);
    let python_mismatch = (python.as_ref())
        .filter(|_| !python_agrees)
        .map(|p| (p.words, p.distinct));
    if let Some(p) = &python {
        let agrees = python_agrees;
        table.push(
            Row::new(
                format!("python Pool({}) + Counter", p.workers),
                Duration::from_secs_f64(p.seconds),
            )
            .agrees(agrees)
            .note("same files, same word definition"),
        );
    }
    let wc = if args.wc { Some(run_wc(&files)?) } else { None };
    if let Some(w) = &wc {
        table.push(
            Row::new(
                "wc -w (C locale, 1 thread)",
                Duration::from_secs_f64(w.seconds),
            )
            .note(format!(
                "{} words by its own definition; reads the files",
                w.words
            )),
        );
    }

    let all_agree = agree.iter().all(|&a| a);
    if args.json {
        print_json(&WordCountReport {
            files,
            input: args.input,
            bytes,
            read_seconds,
            threads,
            chunk_size: chunk,
            shards,
            words,
            distinct: counts.len(),
            shard_sizes: smallest.copied().zip(largest.copied()),
            agrees: all_agree,
            speedup: table.speedup(2),
            shuffle_speedup: table.speedup(4),
            shuffle_speedup_over_one_thread: secs(shuffle_one.wall) / secs(shuffle_many.wall),
            fold_reduce_speedup_over_one_thread: secs(fold_one.wall) / secs(fold_many.wall),
            throughput_mb_s: mb_s(fold_many.wall),
            shuffle_throughput_mb_s: mb_s(shuffle_many.wall),
            top: top_for_json(&top),
            table: table.to_json(),
            python,
            python_ratio,
            wc,
        });
    } else {
        table.print();
        println!(
            "{words} words, {} distinct; every method == sequential: {}; with {threads} threads \
             fold/reduce {:.0} MB/s, shuffle {:.0} MB/s ({}; {shards} shards of {} to {} words)",
            counts.len(),
            if all_agree { "yes" } else { "NO" },
            mb_s(fold_many.wall),
            mb_s(shuffle_many.wall),
            fmt_duration(shuffle_many.wall),
            smallest.unwrap_or(&0),
            largest.unwrap_or(&0),
        );
        if let Some(r) = python_ratio {
            println!(
                "the Rust shuffle is {r:.1}x the throughput of the Python recipe on this input"
            );
        }
        println!("top {} words:", top.len());
        for (i, (w, n)) in top.iter().enumerate() {
            println!(
                "{:>4}. {:<20} {n:>12}",
                i + 1,
                corpus::printable_word(w.as_bytes(), PRINTED_WORD)
            );
        }
    }
    if !all_agree {
        bail!("the parallel and sequential counts differ: this is a bug");
    }
    if let Some((py_words, py_distinct)) = python_mismatch {
        bail!(
            "the Python recipe counted {py_words} words, {py_distinct} distinct; we counted \
             {words}, {}",
            counts.len()
        );
    }
    Ok(())
}

/// "1 thread", "2 threads".
fn threads_label(n: usize) -> String {
    if n == 1 {
        "1 thread".into()
    } else {
        format!("{n} threads")
    }
}

/// The fastest of `n` runs (at least one): the usual way to time on a machine doing other work.
/// `check` runs after each (untimed) and stops the series on its error.
fn best_of<T>(
    n: u32,
    mut f: impl FnMut() -> Result<T>,
    check: impl Fn() -> Result<()>,
) -> Result<Timed<T>> {
    let mut best: Option<Timed<T>> = None;
    for _ in 0..n.max(1) {
        let t = timed(&mut f);
        check()?;
        let t = Timed {
            value: t.value?,
            wall: t.wall,
            cpu: t.cpu,
        };
        if best.as_ref().is_none_or(|b| t.wall < b.wall) {
            best = Some(t);
        }
    }
    Ok(best.expect("at least one run"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every way of counting `text` must give the sequential answer; say which one did not.
    fn check_all_agree(text: &[u8], chunk: usize, shards: usize) -> Result<(), TestCaseError> {
        let seq = count_sequential([text]);
        let chunks = split_on_words(text, chunk);
        prop_assert_eq!(chunks.concat(), text.to_vec(), "chunks cover the input");
        let par = count_parallel(chunks.par_iter());
        prop_assert_eq!(&par, &seq, "fold/reduce, chunk {}", chunk);
        let sharded = count_shuffled(chunks.iter(), shards);
        prop_assert!(
            sharded.same_as(&seq),
            "shuffle, chunk {}, {} shards",
            chunk,
            shards
        );
        let streamed = count_sequential(blocks(text, chunk).map(|b| b.expect("in memory")));
        prop_assert_eq!(&streamed, &seq, "blocks, chunk {}", chunk);
        let streamed_shuffle =
            count_shuffled(blocks(text, chunk).map(|b| b.expect("in memory")), shards);
        prop_assert!(
            streamed_shuffle.same_as(&seq),
            "streamed shuffle, chunk {}",
            chunk
        );
        Ok(())
    }

    /// Bytes that look like text often enough to matter: words, every separator, broken UTF-8,
    /// Unicode spaces, and now and then a run longer than `MAX_WORD`.
    fn texty_bytes() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            4 => "[a-zA-Zé]{1,8}".prop_map(String::into_bytes),
            3 => prop::sample::select(vec![&b" "[..], b"\n", b"\t", b"\x0b", b"\x1c", b"\r\n", "\u{a0}".as_bytes(), "\u{2003}".as_bytes()]).prop_map(<[u8]>::to_vec),
            2 => prop::collection::vec(any::<u8>(), 1..6),
            1 => (1usize..3 * words::MAX_WORD).prop_map(|n| vec![b'q'; n]),
        ];
        prop::collection::vec(piece, 0..60).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn any_bytes_any_chunking_any_shards_parallel_equals_sequential(
            text in texty_bytes(),
            chunk in 1usize..4096,
            shards in 1usize..40,
        ) {
            check_all_agree(&text, chunk, shards)?;
        }

        #[test]
        fn raw_bytes_parallel_equals_sequential(
            text in prop::collection::vec(any::<u8>(), 0..3000),
            chunk in 1usize..64,
            shards in 1usize..9,
        ) {
            check_all_agree(&text, chunk, shards)?;
        }
    }

    #[test]
    fn edge_cases_parallel_equals_sequential() {
        for text in [
            &b""[..],
            b"   \n\t ",
            &[b'x'; 100_000], // one huge word, bigger than any chunk and than MAX_WORD
            b"word",
            b"a\xff\xfeb c\xc3 \xc3\xa9t\xc3\xa9 \xe2\x82 end",
        ] {
            for chunk in [1, 7, 1000, 1 << 20] {
                check_all_agree(text, chunk, 5).expect("agree");
            }
        }
        let corpus = shared::corpus::generate_with_vocabulary(300_000, 7, 20_000);
        check_all_agree(&corpus, 4096, 16).expect("agree");
    }

    #[test]
    fn python_needs_a_script() {
        assert!(python_script("peer.py").is_ok());
        assert!(python_script("corpus.txt").is_err());
        let a = Args::try_parse_from(["map-reduce", "a.txt", "--python"]).expect("parses");
        assert_eq!(a.python.as_deref(), Some(Path::new(PYTHON_RECIPE)));
        assert_eq!(a.files, [PathBuf::from("a.txt")]);
    }
}
