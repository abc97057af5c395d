//! A seeded text corpus with a realistic word distribution, for word counts and pipelines.
//!
//! Real text follows Zipf's law: the r-th most frequent word appears about `1/r^s` as often as
//! the first (s ≈ 1). That shape matters for the lesson: a few hot keys dominate (they make
//! contended shared maps slow) and a long tail of rare words makes the final merge non-trivial.
//! The vocabulary mixes common English words, a few accented French ones (so lower-casing must be
//! Unicode-aware) and generated pseudo-words for the tail. Sentences start with a capital and end
//! with a full stop, as text does; lines wrap near 80 columns.
//!
//! Two vocabulary sizes: the default ([`VOCABULARY`], 50,000 words) and any larger one through
//! [`generate_with_vocabulary`] and [`write_with_vocabulary`]: real collections of text (a
//! language's standard library, a year of news) have 10^5 to 10^6 distinct words, and that tail is
//! what makes merging per-thread counts expensive ([`LARGE_VOCABULARY`], 300,000 words).
//!
//! The word counts (`map-reduce`, `map-reduce-distributed`) also share here what they do around
//! their inputs: the corpus cached in the temp directory ([`cached_corpus`]), `--size` values
//! ([`size_in`]), refusing what is not a text file and noticing a file that changes while it is
//! counted ([`InputFiles`]), and printing words from the input safely ([`printable_word`]).

use anyhow::{Context, bail};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The head of the distribution: real words, most frequent first.
#[rustfmt::skip]
const COMMON: &[&str] = &[
    "the", "of", "and", "to", "a", "in", "is", "it", "that", "for", "was", "on", "are", "as",
    "with", "be", "at", "this", "have", "from", "or", "by", "one", "had", "not", "but", "what",
    "all", "were", "when", "we", "there", "can", "an", "your", "which", "their", "said", "if",
    "do", "will", "each", "about", "how", "up", "out", "them", "then", "she", "many", "some", "so",
    "these", "would", "other", "into", "has", "more", "her", "two", "like", "him", "see", "time",
    "could", "no", "make", "than", "first", "been", "its", "who", "now", "people", "my", "made",
    "over", "did", "down", "only", "way", "find", "use", "may", "water", "long", "little", "very",
    "after", "words", "called", "just", "where", "most", "know", "thread", "lock", "queue",
    "process", "task", "worker", "data", "server", "client", "message", "été", "déjà", "français",
    "café", "naïve", "élève", "à", "où", "très", "façade",
];

#[rustfmt::skip]
const ONSETS: &[&str] = &[
    "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "br",
    "ch", "cl", "cr", "dr", "fl", "gr", "pl", "pr", "sh", "st", "th", "tr",
];
const NUCLEI: &[&str] = &["a", "e", "i", "o", "u", "ai", "ea", "ee", "ou", "io"];
const CODAS: &[&str] = &["", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ng", "ck"];

/// Default vocabulary size: large enough for a long tail (real corpora have 10^5+ distinct words).
pub const VOCABULARY: usize = 50_000;
/// A realistic large vocabulary: a 200 MB corpus drawn from it holds nearly all of them.
pub const LARGE_VOCABULARY: usize = 300_000;
/// The largest vocabulary the generator accepts (its pseudo-words could give far more; the
/// cumulative table costs 8 bytes per word).
pub const MAX_VOCABULARY: usize = 5_000_000;
/// Zipf exponent; ~1.0–1.1 for natural language.
pub const ZIPF_S: f64 = 1.07;

fn vocabulary(rng: &mut ChaCha8Rng, size: usize) -> Vec<String> {
    let mut words: Vec<String> = COMMON.iter().map(|w| w.to_string()).collect();
    let mut seen: std::collections::HashSet<String> = words.iter().cloned().collect();
    while words.len() < size {
        let syllables = rng.random_range(1..=4);
        let mut w = String::new();
        for _ in 0..syllables {
            w.push_str(ONSETS[rng.random_range(0..ONSETS.len())]);
            w.push_str(NUCLEI[rng.random_range(0..NUCLEI.len())]);
            w.push_str(CODAS[rng.random_range(0..CODAS.len())]);
        }
        if seen.insert(w.clone()) {
            words.push(w);
        }
    }
    words
}

/// Cumulative Zipf weights for ranks 1..=n, normalised so the last is 1.0.
fn zipf_cdf(n: usize, s: f64) -> Vec<f64> {
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = (1..=n)
        .map(|r| {
            acc += 1.0 / (r as f64).powf(s);
            acc
        })
        .collect();
    for c in &mut cdf {
        *c /= acc;
    }
    cdf
}

/// Generate about `bytes` bytes of text (never more; ends with a newline when non-empty).
/// The same `(bytes, seed)` always gives the same text.
pub fn generate(bytes: usize, seed: u64) -> Vec<u8> {
    generate_with_vocabulary(bytes, seed, VOCABULARY)
}

/// [`generate`] with `vocabulary` distinct words (clamped to the common words at least and
/// [`MAX_VOCABULARY`] at most), still Zipf-distributed. The default vocabulary gives exactly the
/// text of [`generate`].
pub fn generate_with_vocabulary(bytes: usize, seed: u64, vocabulary: usize) -> Vec<u8> {
    let words = Words::new(seed, vocabulary);
    words.text(bytes, &mut words.stream())
}

/// The vocabulary and its Zipf distribution for one seed. Built once per corpus, however many
/// pieces the text is written in, so the whole corpus shares one vocabulary and one set of hot
/// words.
struct Words {
    vocab: Vec<String>,
    cdf: Vec<f64>,
    seed: u64,
}

impl Words {
    fn new(seed: u64, size: usize) -> Words {
        let size = size.clamp(COMMON.len(), MAX_VOCABULARY);
        let vocab = vocabulary(&mut ChaCha8Rng::seed_from_u64(seed), size);
        let cdf = zipf_cdf(vocab.len(), ZIPF_S);
        Words { vocab, cdf, seed }
    }

    /// The random stream that picks words, separate from the one that made the vocabulary.
    fn stream(&self) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.seed ^ 0x5EED_F00D_7E47)
    }

    /// About `bytes` bytes of text (never more; ends with a newline when non-empty), drawing
    /// words from `rng`.
    fn text(&self, bytes: usize, rng: &mut ChaCha8Rng) -> Vec<u8> {
        let (vocab, cdf) = (&self.vocab, &self.cdf);
        let mut out = Vec::with_capacity(bytes);
        let mut line_len = 0usize;
        let mut sentence_left = 0usize;
        // Stop early enough that the last word, its punctuation and the newline always fit.
        while out.len() + 40 < bytes {
            let u: f64 = rng.random();
            let rank = cdf.partition_point(|&c| c < u).min(vocab.len() - 1);
            let word = &vocab[rank];
            if line_len > 0 {
                if line_len + word.len() > 78 {
                    out.push(b'\n');
                    line_len = 0;
                } else {
                    out.push(b' ');
                    line_len += 1;
                }
            }
            let start = out.len();
            if sentence_left == 0 {
                sentence_left = rng.random_range(4..=18);
                // Capitalise ASCII initials only, so the corpus also holds lower-case accented
                // words that must not be confused with their capitalised forms.
                let mut chars = word.chars();
                if let Some(c) = chars.next().filter(char::is_ascii_lowercase) {
                    out.push(c.to_ascii_uppercase() as u8);
                    out.extend_from_slice(chars.as_str().as_bytes());
                } else {
                    out.extend_from_slice(word.as_bytes());
                }
            } else {
                out.extend_from_slice(word.as_bytes());
            }
            sentence_left -= 1;
            if sentence_left == 0 {
                out.push(b'.');
            } else if rng.random_range(0..20) == 0 {
                out.push(b',');
            }
            line_len += out.len() - start;
        }
        if !out.is_empty() {
            out.push(b'\n');
        }
        debug_assert!(out.len() <= bytes.max(1));
        out
    }
}

/// Write a corpus of about `bytes` bytes to `path`: written to `path.tmp` first, then renamed,
/// so an interrupted run never leaves a short corpus that looks complete.
pub fn write(path: &Path, bytes: usize, seed: u64) -> std::io::Result<()> {
    write_with_vocabulary(path, bytes, seed, VOCABULARY)
}

/// [`write()`] with `vocabulary` distinct words (see [`generate_with_vocabulary`]).
pub fn write_with_vocabulary(
    path: &Path,
    bytes: usize,
    seed: u64,
    vocabulary: usize,
) -> std::io::Result<()> {
    // 16 MiB pieces keep memory flat for large corpora.
    write_in_pieces(path, bytes, seed, vocabulary, 16 << 20)
}

fn write_in_pieces(
    path: &Path,
    bytes: usize,
    seed: u64,
    vocabulary: usize,
    piece: usize,
) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        // One vocabulary and one word stream for the whole file: the pieces continue each
        // other, so a corpus written in pieces has the same word distribution as one generated
        // at once.
        let words = Words::new(seed, vocabulary);
        let mut rng = words.stream();
        let mut left = bytes;
        while left > 0 {
            let n = left.min(piece);
            f.write_all(&words.text(n, &mut rng))?;
            left -= n;
        }
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

// ---------------------------------------------------------------------------------------------
// Word-count inputs.
// ---------------------------------------------------------------------------------------------

/// The seeded corpus of `bytes` bytes in the temp directory, written on first use and reused
/// after (the same arguments always give the same file, so the Python recipe, `wc` and every
/// host of a distributed run can read the same bytes). The default vocabulary keeps the name
/// earlier versions used: `map-reduce-corpus-<bytes>-<seed>.txt`.
pub fn cached_corpus(bytes: usize, seed: u64, vocabulary: usize) -> anyhow::Result<PathBuf> {
    let name = if vocabulary == VOCABULARY {
        format!("map-reduce-corpus-{bytes}-{seed}.txt")
    } else {
        format!("map-reduce-corpus-{bytes}-{seed}-v{vocabulary}.txt")
    };
    let path = std::env::temp_dir().join(name);
    // Written under a name unique to this process, then linked into place: a file at `path` is
    // always complete, two runs generating the same corpus at once do not write into each
    // other's, and the first one done wins. (A rename would replace the file under a run that
    // is already counting it: a new inode, which that run rightly reports as a changed input.)
    if !path.exists() {
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let part = path.with_extension(format!("{}-{n}.part", std::process::id()));
        write_with_vocabulary(&part, bytes, seed, vocabulary)
            .with_context(|| format!("write corpus {}", part.display()))?;
        let linked = std::fs::hard_link(&part, &path);
        let _ = std::fs::remove_file(&part);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("link {} to {}", part.display(), path.display()));
            }
        }
    }
    Ok(path)
}

/// A clap value parser for byte sizes with an optional unit (B, KB, MB, GB, KiB, MiB, GiB), in
/// `min..=max` bytes. Digits and a dot only: `NaN`, `inf`, `-1` and `1e30` are refused.
pub fn size_in(
    min: usize,
    max: usize,
) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let v = parse_size(s)?;
        if v < min as f64 || v > max as f64 {
            return Err(format!(
                "{s} is out of range: use {min} bytes to {max} bytes"
            ));
        }
        Ok(v as usize)
    }
}

fn parse_size(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} (use B, KB, MB, GB, KiB, MiB, GiB)"
            ));
        }
    };
    Ok(num * mult)
}

/// Bytes looked at to tell a binary file from text (a NUL among them), as git and grep do.
pub const SNIFF_BYTES: usize = 8000;

/// What identifies one version of a file: if any of it differs later, the file changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

fn stamp(path: &Path) -> anyhow::Result<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).with_context(|| format!("stat {}", path.display()))?;
    Ok(FileStamp {
        len: m.len(),
        modified: m.modified().ok(),
        inode: m.ino(),
    })
}

/// The input files of a word count, checked to be text files, with what they looked like when
/// checked: [`InputFiles::check_unchanged`] says whether one changed since (counts of a file
/// that changed mix two versions of it; a file truncated under a memory map kills the process).
#[derive(Debug, Clone)]
pub struct InputFiles {
    paths: Vec<PathBuf>,
    stamps: Vec<FileStamp>,
}

impl InputFiles {
    /// Checks every file, naming the first that is missing, not a regular file, or binary (a
    /// NUL byte in its first [`SNIFF_BYTES`]). An empty file is accepted: it has 0 words.
    pub fn check(paths: &[PathBuf]) -> anyhow::Result<InputFiles> {
        let mut stamps = Vec::with_capacity(paths.len());
        for path in paths {
            let mut file =
                std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
            let meta = file
                .metadata()
                .with_context(|| format!("stat {}", path.display()))?;
            if !meta.is_file() {
                bail!(
                    "{}: not a regular file (a word count reads files)",
                    path.display()
                );
            }
            let mut head = Vec::with_capacity(SNIFF_BYTES);
            (&mut file)
                .take(SNIFF_BYTES as u64)
                .read_to_end(&mut head)
                .with_context(|| format!("read {}", path.display()))?;
            if let Some(at) = head.iter().position(|&b| b == 0) {
                bail!(
                    "{}: a binary file (NUL byte at offset {at}); a word count reads text",
                    path.display()
                );
            }
            stamps.push(stamp(path)?);
        }
        Ok(InputFiles {
            paths: paths.to_vec(),
            stamps,
        })
    }

    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Total size, as checked.
    pub fn bytes(&self) -> u64 {
        self.stamps.iter().map(|s| s.len).sum()
    }

    /// Fails, naming the file, if any input changed since it was checked.
    pub fn check_unchanged(&self) -> anyhow::Result<()> {
        for (path, then) in self.paths.iter().zip(&self.stamps) {
            let now = stamp(path)
                .with_context(|| format!("{} changed during the run", path.display()))?;
            if now != *then {
                let how = if now.len != then.len {
                    format!("{} bytes before, {} after", then.len, now.len)
                } else if now.inode != then.inode {
                    "replaced by another file".to_string()
                } else {
                    "modified".to_string()
                };
                bail!(
                    "{} changed while it was being counted ({how}): the counts mix versions of \
                     the file; count a copy that does not change",
                    path.display(),
                );
            }
        }
        Ok(())
    }
}

/// A word from the input as a table prints it: control and direction-override characters
/// escaped (bytes from a file must not drive the terminal), invalid UTF-8 as U+FFFD, and at
/// most `max_chars` characters (then `…`).
pub fn printable_word(word: &[u8], max_chars: usize) -> String {
    let text = String::from_utf8_lossy(word);
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == max_chars {
            out.push('…');
            break;
        }
        let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn deterministic_for_a_seed_and_bounded_in_size() {
        let a = generate(200_000, 7);
        assert_eq!(a, generate(200_000, 7));
        assert_ne!(a, generate(200_000, 8));
        assert!(a.len() <= 200_000 && a.len() > 199_000, "{}", a.len());
        assert!(std::str::from_utf8(&a).is_ok());
        assert_eq!(a.last(), Some(&b'\n'));
        assert!(generate(0, 1).is_empty());
    }

    #[test]
    fn word_frequencies_are_zipf_like() {
        let text = String::from_utf8(generate(2_000_000, 1)).expect("utf-8");
        let mut counts: HashMap<String, usize> = HashMap::new();
        for w in text.split_whitespace() {
            let w = w.trim_end_matches(['.', ',']).to_lowercase();
            *counts.entry(w).or_default() += 1;
        }
        let mut freq: Vec<usize> = counts.values().copied().collect();
        freq.sort_unstable_by(|a, b| b.cmp(a));
        // Zipf: rank 1 is ~2^s times rank 2 and ~10^s times rank 10; allow sampling noise.
        let r1 = freq[0] as f64;
        assert!(
            (1.6..2.6).contains(&(r1 / freq[1] as f64)),
            "{:?}",
            &freq[..3]
        );
        assert!(
            (8.0..17.0).contains(&(r1 / freq[9] as f64)),
            "{:?}",
            &freq[..10]
        );
        assert!(counts.len() > 10_000, "long tail: {}", counts.len());
        assert_eq!(
            counts
                .iter()
                .max_by_key(|(_, c)| **c)
                .map(|(w, _)| w.as_str()),
            Some("the")
        );
    }

    #[test]
    fn a_corpus_written_in_pieces_keeps_one_vocabulary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("pieces.txt");
        write_in_pieces(&p, 2_000_000, 5, VOCABULARY, 300_000).expect("write");
        let text = String::from_utf8(std::fs::read(&p).expect("read")).expect("utf-8");
        let vocab: std::collections::HashSet<String> =
            Words::new(5, VOCABULARY).vocab.into_iter().collect();
        for w in text.split_whitespace() {
            let w = w.trim_end_matches(['.', ',']);
            let mut c = w.chars();
            let first = c.next().expect("no empty words").to_lowercase().to_string();
            let lower = first + c.as_str();
            assert!(
                vocab.contains(&lower),
                "{w:?} is not from the corpus's vocabulary"
            );
        }
    }

    #[test]
    fn write_renames_into_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("corpus.txt");
        write(&p, 100_000, 3).expect("write");
        let on_disk = std::fs::read(&p).expect("read");
        assert_eq!(on_disk, generate(100_000, 3));
        assert!(!p.with_extension("tmp").exists());
    }

    /// Distinct words of `text` as the corpus writes them (lower-cased, punctuation dropped).
    fn distinct_words(text: &[u8]) -> HashMap<String, usize> {
        let text = std::str::from_utf8(text).expect("utf-8");
        let mut counts: HashMap<String, usize> = HashMap::new();
        for w in text.split_whitespace() {
            let w = w.trim_end_matches(['.', ',']).to_lowercase();
            *counts.entry(w).or_default() += 1;
        }
        counts
    }

    #[test]
    fn a_large_vocabulary_gives_a_long_tail_and_keeps_the_zipf_head() {
        let (bytes, seed) = (6_000_000, 11);
        let large = generate_with_vocabulary(bytes, seed, LARGE_VOCABULARY);
        assert_eq!(
            large,
            generate_with_vocabulary(bytes, seed, LARGE_VOCABULARY)
        );
        assert!(large.len() <= bytes && large.len() > bytes - 1000);
        let small = distinct_words(&generate(bytes, seed));
        let counts = distinct_words(&large);
        // ~1 M words drawn from 300,000 (Zipf, s = 1.07): about 96,000 distinct, where the
        // default vocabulary cannot give more than 50,000.
        assert!(small.len() <= VOCABULARY, "{}", small.len());
        assert!(counts.len() > 80_000, "{}", counts.len());
        let mut freq: Vec<usize> = counts.values().copied().collect();
        freq.sort_unstable_by(|a, b| b.cmp(a));
        let ratio = freq[0] as f64 / freq[1] as f64;
        assert!((1.6..2.6).contains(&ratio), "{:?}", &freq[..3]);
        // The default vocabulary is the same text as before this mode existed.
        assert_eq!(
            generate_with_vocabulary(bytes, seed, VOCABULARY),
            generate(bytes, seed)
        );
    }

    #[test]
    fn the_vocabulary_size_is_clamped() {
        assert_eq!(Words::new(1, 0).vocab.len(), COMMON.len());
        assert_eq!(Words::new(1, 1_000).vocab.len(), 1_000);
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("large.txt");
        write_with_vocabulary(&p, 500_000, 2, LARGE_VOCABULARY).expect("write");
        let on_disk = std::fs::read(&p).expect("read");
        assert_eq!(
            on_disk,
            generate_with_vocabulary(500_000, 2, LARGE_VOCABULARY)
        );
    }

    #[test]
    fn sizes_parse_and_stay_in_range() {
        let p = size_in(1, 1 << 30);
        assert_eq!(p("200MB"), Ok(200_000_000));
        assert_eq!(p("4MiB"), Ok(4 << 20));
        assert_eq!(p("512"), Ok(512));
        for bad in [
            "12 parsecs",
            "0",
            "-1",
            "NaN",
            "inf",
            "1e30",
            "2GiB",
            "18446744073709551615",
        ] {
            assert!(p(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn inputs_refuse_binary_files_and_notice_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = dir.path().join("f.txt");
        std::fs::write(&text, "a b c").expect("write");
        let empty = dir.path().join("empty.txt");
        std::fs::write(&empty, "").expect("write");
        let inputs = InputFiles::check(&[text.clone(), empty]).expect("text files");
        assert_eq!(inputs.bytes(), 5);
        assert!(inputs.check_unchanged().is_ok());
        std::fs::write(&text, "a b c d").expect("write");
        let err = inputs.check_unchanged().expect_err("changed");
        assert!(err.to_string().contains("f.txt changed"), "{err}");

        let inputs = InputFiles::check(std::slice::from_ref(&text)).expect("text file");
        let other = dir.path().join("other.txt");
        std::fs::write(&other, "a b c d").expect("write");
        std::fs::rename(&other, &text).expect("rename");
        let err = inputs.check_unchanged().expect_err("replaced");
        assert!(
            err.to_string().contains("replaced by another file"),
            "{err}"
        );

        let bin = dir.path().join("x.bin");
        std::fs::write(&bin, b"ab\0cd").expect("write");
        let err = InputFiles::check(&[bin]).expect_err("binary");
        assert!(err.to_string().contains("x.bin: a binary file"), "{err}");
        let err = InputFiles::check(&[dir.path().to_path_buf()]).expect_err("a directory");
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn printed_words_are_escaped_and_shortened() {
        assert_eq!(printable_word(b"caf\xc3\xa9", 40), "café");
        assert_eq!(
            printable_word(b"\x1b[31mred\x07", 40),
            "\\u{1b}[31mred\\u{7}"
        );
        assert_eq!(printable_word("a\u{202e}b".as_bytes(), 40), "a\\u{202e}b");
        let long = printable_word(&[b'w'; 500], 40);
        assert_eq!(long.chars().count(), 41);
        assert!(long.ends_with("w…"));
    }

    #[test]
    fn the_cached_corpus_is_written_once() {
        let a = cached_corpus(10_000, 99, VOCABULARY).expect("corpus");
        let b = cached_corpus(10_000, 99, VOCABULARY).expect("corpus");
        assert_eq!(a, b);
        assert_eq!(std::fs::read(&a).expect("read"), generate(10_000, 99));
        let large = cached_corpus(10_000, 99, LARGE_VOCABULARY).expect("corpus");
        assert_ne!(large, a);
        // Runs that generate the same corpus at once all end with the same, untouched file.
        use std::os::unix::fs::MetadataExt;
        let fresh = (20_000 + std::process::id() as usize % 1000, 7);
        let paths: Vec<PathBuf> = std::thread::scope(|s| {
            let runs: Vec<_> = (0..4)
                .map(|_| s.spawn(|| cached_corpus(fresh.0, fresh.1, VOCABULARY).expect("corpus")))
                .collect();
            runs.into_iter()
                .map(|r| r.join().expect("no panic"))
                .collect()
        });
        let inode = std::fs::metadata(&paths[0]).expect("stat").ino();
        assert!(paths.iter().all(|p| *p == paths[0]));
        let again = cached_corpus(fresh.0, fresh.1, VOCABULARY).expect("corpus");
        assert_eq!(std::fs::metadata(&again).expect("stat").ino(), inode);
        let _ = std::fs::remove_file(&paths[0]);
    }
}
