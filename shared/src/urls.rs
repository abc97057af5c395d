//! The URL list and the output-name rule of the two downloaders (`url-downloader` on threads,
//! `async-downloader` on tasks): one parser, one naming rule, so both save the same list under
//! the same names. Harness, not lesson: the downloaders' lessons take finished jobs
//! (URL, final path, temporary path) and never see this module.
//!
//! # The URL file
//!
//! One URL per line (LF or CRLF); blank lines and lines whose first non-blank character is `#`
//! are skipped; a UTF-8 byte-order mark at the start is ignored. Every other line becomes a job,
//! or a [`BadLine`] with its 1-based number and the reason: not UTF-8, not a URL, not `http` or
//! `https`, no host. One bad line never rejects the list: the others are still downloaded.
//!
//! # The output names
//!
//! Every job gets its own file; two jobs never share a final name nor a temporary name, and no
//! temporary name is ever a final name. The rule, applied to the list in order:
//!
//! 1. **Natural name**: the URL's last non-empty path segment (query and fragment ignored),
//!    still percent-encoded, with every character outside `A-Z a-z 0-9 . _ -` replaced by `_`
//!    (so no `/`, no `..`, nothing that escapes the output folder). Then, for folders that must
//!    work everywhere: leading and trailing dots become `_` (a final name never starts with `.`;
//!    Windows drops trailing dots), Windows device names (`CON`, `nul.txt`, `COM1`…) get a `_`
//!    prefix, names longer than 100 bytes are cut (extension kept), and an empty name becomes
//!    `download`.
//! 2. **Uniqueness, case-insensitive**: the first job whose natural name is `file.txt` gets it.
//!    A later job with the same name, in any case (`FILE.TXT`), gets the first free
//!    `file-2.txt`, `file-3.txt`, … where *free* means: no other job's natural name, in any
//!    case, and no number already handed out. So `/ok/file-2.txt` keeps its name even when it
//!    comes after two `file.txt`. Case-insensitive because the output folder may be on (or
//!    copied to) macOS or Windows, where `A.txt` and `a.txt` are one file: a rule that is unique
//!    only on Linux would lose files there without a word.
//! 3. **Temporary name**: `.<final name>.part`. Final names never start with `.`, temporary
//!    names always do, so `k.bin.part` (a final name) and the temporary file of `k.bin`
//!    (`.k.bin.part`) can never meet.
//!
//! The rule is stable: the same list gives the same names, on every run and every machine.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use url::Url;

/// The longest natural name, in bytes (a file name may have 255 on most file systems; this
/// leaves room for the `-N` of a duplicate and the `.` + `.part` of the temporary name).
pub const MAX_NAME_LEN: usize = 100;

/// The name given to a URL whose path has no usable last segment (`http://host/`).
pub const FALLBACK_NAME: &str = "download";

/// The longest text of a bad line kept for the report (a 1 MB line is not printed whole).
const MAX_REPORTED_TEXT: usize = 200;

/// A parsed URL file: the jobs in file order, and the lines that could not be used.
#[derive(Debug, Clone, Default)]
pub struct UrlList {
    pub jobs: Vec<UrlJob>,
    pub bad_lines: Vec<BadLine>,
}

/// One URL to download and the names its file gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlJob {
    /// 1-based line in the URL file (or position in a generated list).
    pub line: usize,
    pub url: Url,
    /// The final file name (unique within the list, case-insensitively).
    pub file_name: String,
    /// Where the body is written until it is complete: `.<file_name>.part`.
    pub temp_name: String,
}

impl UrlJob {
    /// The final path in `out`.
    pub fn final_path(&self, out: &Path) -> PathBuf {
        out.join(&self.file_name)
    }

    /// The temporary path in `out`.
    pub fn temp_path(&self, out: &Path) -> PathBuf {
        out.join(&self.temp_name)
    }
}

/// A line of the URL file that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// The line, trimmed, lossily decoded and shortened to 200 characters.
    pub text: String,
    pub reason: String,
}

/// Reads and parses a URL file (see the module docs). Only reading the file can fail; bad
/// lines are reported in [`UrlList::bad_lines`].
pub fn read_url_file(path: &Path) -> std::io::Result<UrlList> {
    std::fs::read(path).map(|bytes| parse_url_list(&bytes))
}

/// Parses a URL file's bytes (see the module docs). Never fails: every line is a job, skipped
/// (blank, comment) or a [`BadLine`].
pub fn parse_url_list(bytes: &[u8]) -> UrlList {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut urls = Vec::new();
    let mut bad_lines = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let raw = raw.trim_ascii();
        if raw.is_empty() || raw.starts_with(b"#") {
            continue;
        }
        let bad = |reason: String| BadLine {
            line,
            text: shorten(&String::from_utf8_lossy(raw)),
            reason,
        };
        let text = match std::str::from_utf8(raw) {
            Ok(text) => text,
            Err(e) => {
                let at = e.valid_up_to();
                bad_lines.push(bad(format!(
                    "not UTF-8 (byte 0x{:02X} at column {})",
                    raw[at],
                    at + 1
                )));
                continue;
            }
        };
        match Url::parse(text) {
            Ok(url) if !matches!(url.scheme(), "http" | "https") => bad_lines.push(bad(format!(
                "unsupported scheme {:?} (only http and https)",
                url.scheme()
            ))),
            Ok(url) if url.host().is_none() => bad_lines.push(bad("no host".into())),
            Ok(url) => urls.push((line, url)),
            Err(e) => bad_lines.push(bad(format!("not a URL: {e}"))),
        }
    }
    let names = output_names(urls.iter().map(|(_, url)| natural_name(url)));
    let jobs = urls
        .into_iter()
        .zip(names)
        .map(|((line, url), file_name)| UrlJob {
            line,
            temp_name: temp_name(&file_name),
            url,
            file_name,
        })
        .collect();
    UrlList { jobs, bad_lines }
}

/// Parses a generated list (the local test server's URLs), numbered from line 1.
pub fn url_list_of(urls: &[String]) -> UrlList {
    parse_url_list(urls.join("\n").as_bytes())
}

/// The temporary name of the file whose final name is `file_name`.
pub fn temp_name(file_name: &str) -> String {
    format!(".{file_name}.part")
}

/// Step 1 of the rule: the URL's own name, made safe and portable.
pub fn natural_name(url: &Url) -> String {
    let last = url
        .path_segments()
        .and_then(|mut segments| segments.rfind(|s| !s.is_empty()))
        .unwrap_or("");
    let mut name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Leading dots would hide the file (and could meet a temporary name); trailing dots are
    // dropped by Windows. Both become `_`, one for one.
    let lead = name.len() - name.trim_start_matches('.').len();
    let trail = name.len() - name.trim_end_matches('.').len();
    if lead == name.len() {
        name = "_".repeat(name.len());
    } else {
        name = format!(
            "{}{}{}",
            "_".repeat(lead),
            &name[lead..name.len() - trail],
            "_".repeat(trail)
        );
    }
    if name.is_empty() {
        return FALLBACK_NAME.to_string();
    }
    if is_windows_device_name(&name) {
        name.insert(0, '_');
    }
    shorten_name(name)
}

/// `CON`, `nul.txt`, `com1.tar.gz`…: names Windows reserves for devices, whatever follows the
/// first dot.
fn is_windows_device_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).to_ascii_uppercase();
    matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit())
}

/// Cuts `name` (ASCII) to [`MAX_NAME_LEN`] bytes, keeping a short extension.
fn shorten_name(name: String) -> String {
    if name.len() <= MAX_NAME_LEN {
        return name;
    }
    match split_extension(&name) {
        (stem, Some(ext)) if ext.len() <= 16 => {
            let keep = MAX_NAME_LEN - ext.len() - 1;
            format!("{}.{ext}", &stem[..keep.min(stem.len())])
        }
        _ => name[..MAX_NAME_LEN].to_string(),
    }
}

/// `("file.tar", Some("gz"))` for `file.tar.gz`; `("README", None)`. A name's leading dot is
/// not an extension (a natural name never has one anyway).
fn split_extension(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, Some(ext)),
        _ => (name, None),
    }
}

/// Step 2 of the rule: unique final names, in list order, from the natural names.
pub fn output_names(natural: impl IntoIterator<Item = String>) -> Vec<String> {
    let natural: Vec<String> = natural.into_iter().collect();
    // Every natural name is reserved up front, so a numbered name handed to an early duplicate
    // can never be one a later line would have had by itself.
    let mut taken: HashSet<String> = natural.iter().map(|n| n.to_ascii_lowercase()).collect();
    let mut claimed: HashSet<String> = HashSet::with_capacity(natural.len());
    // Where the numbering of each name resumes: without it, the 10,000th copy of one name would
    // try 9,999 taken numbers first (quadratic on a hostile list).
    let mut next_number: HashMap<String, u64> = HashMap::new();
    let mut names = Vec::with_capacity(natural.len());
    for name in natural {
        let key = name.to_ascii_lowercase();
        if claimed.insert(key.clone()) {
            names.push(name);
            continue;
        }
        let (stem, ext) = split_extension(&name);
        let number = next_number.entry(key).or_insert(2);
        loop {
            let candidate = match ext {
                Some(ext) => format!("{stem}-{number}.{ext}"),
                None => format!("{stem}-{number}"),
            };
            *number += 1;
            if taken.insert(candidate.to_ascii_lowercase()) {
                names.push(candidate);
                break;
            }
        }
    }
    names
}

/// A bad line's text, cut for the report.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_REPORTED_TEXT) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// Deletes every temporary file of `jobs` in `out` if the process is forced to exit by a second
/// Ctrl-C (see [`crate::shutdown::on_forced_exit`]): the harness knows every temporary name up
/// front, so even a forced exit leaves no `.part` file behind.
pub fn remove_temp_files_on_forced_exit(jobs: &[UrlJob], out: &Path) {
    let temps: Vec<PathBuf> = jobs.iter().map(|j| j.temp_path(out)).collect();
    crate::shutdown::on_forced_exit(move || {
        for temp in &temps {
            let _ = std::fs::remove_file(temp); // most never existed
        }
    });
}

/// Writes one `URL<TAB>final name` line per job: the job file the Python downloaders
/// (`async_downloader.py`, `url_downloader.py`) read with `--python`, so that they save every URL
/// under the name this module's rule gave it, and both runs can be compared file by file.
pub fn write_job_file(path: &Path, jobs: &[UrlJob]) -> std::io::Result<()> {
    let mut text = String::new();
    for job in jobs {
        text.push_str(job.url.as_str());
        text.push('\t');
        text.push_str(&job.file_name);
        text.push('\n');
    }
    std::fs::write(path, text)
}

/// Compares what two runs saved for `jobs` in folders `a` and `b`: every final name present in
/// both or in neither, with the same bytes, and nothing else in `b` (no temporary file, no
/// name outside the list). Returns the differences, at most 20 (empty: the same files).
pub fn compare_downloads(jobs: &[UrlJob], a: &Path, b: &Path) -> Vec<String> {
    const MAX: usize = 20;
    let mut out = Vec::new();
    for job in jobs {
        if out.len() == MAX {
            return out;
        }
        let (x, y) = (
            std::fs::read(job.final_path(a)).ok(),
            std::fs::read(job.final_path(b)).ok(),
        );
        match (x, y) {
            (None, None) => {}
            (Some(_), None) => out.push(format!("{}: only in {}", job.file_name, a.display())),
            (None, Some(_)) => out.push(format!("{}: only in {}", job.file_name, b.display())),
            (Some(x), Some(y)) if x.len() != y.len() => out.push(format!(
                "{}: {} bytes against {}",
                job.file_name,
                x.len(),
                y.len()
            )),
            (Some(x), Some(y)) if x != y => {
                out.push(format!("{}: same size, different bytes", job.file_name));
            }
            _ => {}
        }
    }
    let names: HashSet<&str> = jobs.iter().map(|j| j.file_name.as_str()).collect();
    if let Ok(entries) = std::fs::read_dir(b) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !names.contains(name.as_str()) && out.len() < MAX {
                out.push(format!(
                    "{name}: not a file of the list, in {}",
                    b.display()
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_compare_by_name_size_and_bytes() {
        let list = url_list_of(&[
            "http://h/a/file.txt".to_string(),
            "http://h/b/file.txt".to_string(),
            "http://h/c.bin".to_string(),
        ]);
        let dir = std::env::temp_dir().join(format!("compare-downloads-{}", std::process::id()));
        let (a, b) = (dir.join("a"), dir.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        write_job_file(&dir.join("jobs.tsv"), &list.jobs).unwrap();
        let text = std::fs::read_to_string(dir.join("jobs.tsv")).unwrap();
        assert_eq!(text.lines().nth(1), Some("http://h/b/file.txt\tfile-2.txt"));
        for d in [&a, &b] {
            std::fs::write(d.join("file.txt"), b"one").unwrap();
            std::fs::write(d.join("file-2.txt"), b"two").unwrap();
        }
        assert!(compare_downloads(&list.jobs, &a, &b).is_empty());
        std::fs::write(b.join("file-2.txt"), b"tw0").unwrap();
        std::fs::write(a.join("c.bin"), b"c").unwrap();
        std::fs::write(b.join(".c.bin.part"), b"").unwrap();
        let found = compare_downloads(&list.jobs, &a, &b);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].starts_with("file-2.txt: same size"), "{found:?}");
        assert!(found[1].starts_with("c.bin: only in"), "{found:?}");
        assert!(found[2].starts_with(".c.bin.part: not a file"), "{found:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
    use proptest::prelude::*;

    fn names(text: &str) -> Vec<String> {
        parse_url_list(text.as_bytes())
            .jobs
            .into_iter()
            .map(|j| j.file_name)
            .collect()
    }

    #[test]
    fn bad_lines_are_reported_with_their_numbers_and_the_rest_is_kept() {
        let text = b"# my downloads\r\n\
                     http://example.com/a.txt\r\n\
                     \n\
                     not a url\n\
                     ftp://example.com/b.txt\n\
                     https://example.com/dir/c.tar.gz?x=1\n\
                     \t  # indented comment\n\
                     mailto:someone@example.com\n\
                     http://example.com/caf\xE9.txt\n\
                     # caf\xE9 in a comment is fine\n\
                     https://example.com/a.txt\n";
        let list = parse_url_list(text);
        let jobs: Vec<(usize, &str)> = list
            .jobs
            .iter()
            .map(|j| (j.line, j.file_name.as_str()))
            .collect();
        assert_eq!(jobs, vec![(2, "a.txt"), (6, "c.tar.gz"), (11, "a-2.txt")]);
        let bad: Vec<usize> = list.bad_lines.iter().map(|b| b.line).collect();
        assert_eq!(bad, vec![4, 5, 8, 9]);
        assert!(list.bad_lines[0].reason.starts_with("not a URL"));
        assert!(list.bad_lines[1].reason.contains("\"ftp\""));
        assert!(list.bad_lines[2].reason.contains("\"mailto\""));
        assert_eq!(
            list.bad_lines[3].reason,
            "not UTF-8 (byte 0xE9 at column 23)"
        );
        assert_eq!(list.bad_lines[3].text, "http://example.com/caf\u{FFFD}.txt");
    }

    #[test]
    fn a_byte_order_mark_and_crlf_are_ignored() {
        let list = parse_url_list(b"\xEF\xBB\xBFhttp://h/x.bin\r\nhttp://h/y.bin\r\n");
        assert!(list.bad_lines.is_empty(), "{:?}", list.bad_lines);
        assert_eq!(list.jobs.len(), 2);
        assert_eq!(list.jobs[1].url.as_str(), "http://h/y.bin");
    }

    #[test]
    fn natural_names_are_safe_and_portable() {
        let name = |u: &str| natural_name(&Url::parse(u).unwrap());
        assert_eq!(name("http://h/"), "download");
        assert_eq!(name("http://h/x/.."), "download"); // the URL parser resolves `..`
        assert_eq!(name("http://h/dir/"), "dir");
        assert_eq!(name("http://h/x/%2e%2e"), "download"); // so is its encoded form
        assert_eq!(name("http://h/%2e%2e%2e"), "_2e_2e_2e");
        assert_eq!(name("http://h/a%2Fb"), "a_2Fb");
        assert_eq!(name("http://h/.htaccess"), "_htaccess");
        assert_eq!(name("http://h/..."), "___");
        assert_eq!(name("http://h/file."), "file_");
        assert_eq!(name("http://h/k.bin.part"), "k.bin.part");
        assert_eq!(name("http://h/nul.txt"), "_nul.txt");
        assert_eq!(name("http://h/COM1"), "_COM1");
        assert_eq!(name("http://h/COM10"), "COM10");
        assert_eq!(name("http://h/caf%C3%A9?q=1#f"), "caf_C3_A9");
        let long = name(&format!("http://h/{}.tar.gz", "x".repeat(300)));
        assert_eq!(long.len(), MAX_NAME_LEN);
        assert!(long.ends_with("x.gz"), "{long}");
    }

    #[test]
    fn duplicates_get_the_first_free_number_and_never_take_a_later_lines_name() {
        // Issue 12, defect 1: `/a/file.txt` and `/b/file.txt` were one file; a numbered
        // duplicate (`file-2.txt`) was not checked against names later lines had.
        let text = "http://h/a/file.txt\nhttp://h/b/file.txt\nhttp://h/ok/file-2.txt\n\
                    http://h/c/FILE.TXT\nhttp://h/k.bin\nhttp://h/k.bin.part\nhttp://h/README\n\
                    http://h/x/README\n";
        assert_eq!(
            names(text),
            vec![
                "file.txt",
                "file-3.txt",
                "file-2.txt",
                "FILE-4.TXT",
                "k.bin",
                "k.bin.part",
                "README",
                "README-2"
            ]
        );
        let list = parse_url_list(text.as_bytes());
        assert_eq!(list.jobs[4].temp_name, ".k.bin.part");
        assert_eq!(list.jobs[5].temp_name, ".k.bin.part.part");
    }

    #[test]
    fn many_copies_of_one_name_are_numbered_in_linear_time() {
        let text = "http://h/f.txt\n".repeat(50_000);
        let names = names(&text);
        assert_eq!(names[49_999], "f-50000.txt");
    }

    /// Every name a list produced: unique case-insensitively, temporary names never final ones,
    /// all safe to join to an output folder.
    fn assert_names_are_sound(list: &UrlList) -> Result<(), TestCaseError> {
        let mut finals = HashSet::new();
        for job in &list.jobs {
            let name = &job.file_name;
            prop_assert!(finals.insert(name.to_ascii_lowercase()), "duplicate {name}");
            prop_assert!(!name.is_empty() && !name.starts_with('.') && !name.ends_with('.'));
            prop_assert!(name.len() <= MAX_NAME_LEN + 21, "{name}");
            prop_assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
                "{name}"
            );
            prop_assert_eq!(&job.temp_name, &temp_name(name));
        }
        for job in &list.jobs {
            prop_assert!(!finals.contains(&job.temp_name.to_ascii_lowercase()));
        }
        Ok(())
    }

    proptest! {
        /// Any bytes: a result, never a panic; every line that is not blank or a comment is
        /// either a job or a bad line, in order.
        #[test]
        fn any_bytes_parse_and_every_line_is_accounted_for(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let list = parse_url_list(&bytes);
            let used: Vec<usize> = {
                let mut v: Vec<usize> = list.jobs.iter().map(|j| j.line)
                    .chain(list.bad_lines.iter().map(|b| b.line)).collect();
                v.sort_unstable();
                v
            };
            let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
            let expected: Vec<usize> = body.split(|&b| b == b'\n').enumerate()
                .filter(|(_, l)| { let t = l.trim_ascii(); !t.is_empty() && !t.starts_with(b"#") })
                .map(|(i, _)| i + 1).collect();
            prop_assert_eq!(used, expected);
            assert_names_are_sound(&list)?;
        }

        /// Lists of URLs with hostile last segments (dots, case, `%`, slashes, Unicode, `.part`):
        /// distinct URLs give distinct files, temporary names are never final names, and the
        /// same list gives the same names again.
        #[test]
        fn distinct_urls_give_distinct_files(
            segments in proptest::collection::vec("[a-cA-C.%/_\\-é]{0,6}(\\.part)?", 1..40),
        ) {
            let text: String = segments.iter().enumerate()
                .map(|(i, s)| format!("http://h{}/{s}\n", i % 3)).collect();
            let list = parse_url_list(text.as_bytes());
            prop_assert!(list.bad_lines.is_empty(), "{:?}", list.bad_lines);
            prop_assert_eq!(list.jobs.len(), segments.len());
            assert_names_are_sound(&list)?;
            let again = parse_url_list(text.as_bytes());
            prop_assert_eq!(list.jobs, again.jobs);
        }
    }
}
